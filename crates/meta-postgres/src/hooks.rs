//! [`HookStore`] on PostgreSQL: hooks, the delivery queue and its attempts
//! (`migrations/0003_hooks.sql`).
//!
//! The queue keeps the port's invariants for several nodes sharing the database, each running
//! a delivery worker. A hook's row is the lock of its queue: a claim takes the hooks whose
//! oldest pending delivery is due and unleased with `FOR UPDATE OF h SKIP LOCKED` (so two
//! workers never wait for, nor both take, one hook), then leases the hooks' heads in a second
//! statement, whose fresh snapshot sees every delivery committed before the locks were taken.
//! Everything else that changes a hook's queue takes the same row first: queueing (the foreign
//! key's share lock on the hook), recording an attempt (it updates the hook's last response
//! before its delivery), editing and deleting a hook. So a hook's head is computed on a stable
//! queue, only heads are ever leased, and two deliveries of one hook are never leased at once.
//! A lease is a token and an expiry; an expired lease is claimed again, and an attempt is
//! recorded only under the token it was claimed with (a conditional update). Leases are
//! never voided at startup: other nodes may hold them.
//!
//! Header lists and event lists are stored as JSON text, as on SQLite. Statements built with
//! `format!` join constant column lists and constant filters; values are always bound, never
//! formatted in (hence `AssertSqlSafe`).

use async_trait::async_trait;
use berth_core::access::{AccountId, RepoId};
use berth_core::digest::Digest;
use berth_core::error::StoreError;
use berth_core::hooks::model::{
    Attempt, AttemptOutcome, ContentType, Delivery, DeliveryId, DeliveryState, Hook, HookConfig,
    HookId, HookScope, HookSettings, LastResponse, NewDelivery,
};
use berth_core::hooks::store::{Claimed, HookStore, PackageFacts};
use berth_core::ids::{AppId, InstallationId, PackageId, VersionId};
use berth_core::name::RepoName;
use berth_core::ports::{Millis, StoreResult};
use sqlx::{AssertSqlSafe, PgConnection};
use tracing::instrument;

use crate::store::{PgMetadataStore, failed, sql_limit};

/// Columns of a hook, with its account's kind (organization or user hooks).
const HOOK: &str = "SELECT h.id, h.repo_id, h.account_id, h.app_id, a.kind AS account_kind, h.active, \
         h.events, h.url, h.content_type, h.secret, h.insecure_ssl, h.deleted_events, \
         h.created_at, h.updated_at, h.last_code, h.last_status, h.last_message \
     FROM hooks h LEFT JOIN accounts a ON a.id = h.account_id";

/// A row of [`HOOK`].
#[derive(sqlx::FromRow)]
struct HookRow {
    id: i64,
    repo_id: Option<i64>,
    account_id: Option<i64>,
    app_id: Option<i64>,
    account_kind: Option<String>,
    active: bool,
    events: String,
    url: String,
    content_type: String,
    secret: Option<String>,
    insecure_ssl: bool,
    deleted_events: bool,
    created_at: i64,
    updated_at: i64,
    last_code: Option<i32>,
    last_status: String,
    last_message: Option<String>,
}

impl HookRow {
    /// The hook the row describes.
    fn into_hook(self) -> Result<Hook, StoreError> {
        let scope = match (self.repo_id, self.account_id, self.account_kind.as_deref()) {
            _ if self.app_id.is_some() => HookScope::App(AppId(self.app_id.unwrap_or_default())),
            (Some(repo), _, _) => HookScope::Repository(RepoId(repo)),
            (None, Some(account), Some("organization")) => {
                HookScope::Organization(AccountId(account))
            }
            (None, Some(account), Some("user")) => HookScope::User(AccountId(account)),
            _ => return Err(unexpected("hook owner", &format!("hook {}", self.id))),
        };
        let events: Vec<String> = serde_json::from_str(&self.events)
            .map_err(|e| StoreError::new(format!("reading the events of hook {}", self.id), e))?;
        Ok(Hook {
            id: HookId(self.id),
            scope,
            active: self.active,
            events,
            config: HookConfig {
                url: self.url,
                content_type: ContentType::parse(&self.content_type)
                    .ok_or_else(|| unexpected("hook content type", &self.content_type))?,
                secret: self.secret,
                insecure_ssl: self.insecure_ssl,
            },
            deleted_events: self.deleted_events,
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_response: LastResponse {
                code: self.last_code.and_then(|c| u16::try_from(c).ok()),
                status: self.last_status,
                message: self.last_message,
            },
        })
    }
}

/// Columns of a delivery with its latest attempt (`a.*` NULL before the first).
const DELIVERY: &str = "SELECT d.id, d.hook_id, d.guid, d.event, d.action, d.payload, \
         d.redelivery, d.repository_id, d.state, d.attempts, d.next_attempt_at, d.created_at, \
         a.number, a.started_at, a.duration_ms, a.request_headers, a.status_code, \
         a.response_headers, a.response_body, a.error \
     FROM hook_deliveries d \
     LEFT JOIN hook_attempts a ON a.delivery_id = d.id AND a.number = d.attempts";

/// A row of [`DELIVERY`].
#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    hook_id: i64,
    guid: String,
    event: String,
    action: Option<String>,
    payload: String,
    redelivery: bool,
    repository_id: Option<i64>,
    state: String,
    attempts: i32,
    next_attempt_at: i64,
    created_at: i64,
    #[sqlx(flatten)]
    attempt: AttemptColumns,
}

/// An attempt's columns, all NULL when a delivery's latest attempt is joined and there is none.
#[derive(sqlx::FromRow)]
struct AttemptColumns {
    number: Option<i32>,
    started_at: Option<i64>,
    duration_ms: Option<i64>,
    request_headers: Option<String>,
    status_code: Option<i32>,
    response_headers: Option<String>,
    response_body: Option<String>,
    error: Option<String>,
}

impl AttemptColumns {
    /// The attempt, `None` when the columns are NULL (no attempt yet).
    fn into_attempt(self) -> Result<Option<Attempt>, StoreError> {
        let (Some(number), Some(started_at)) = (self.number, self.started_at) else {
            return Ok(None);
        };
        Ok(Some(Attempt {
            number: u32::try_from(number).unwrap_or(u32::MAX),
            started_at,
            duration_ms: u64::try_from(self.duration_ms.unwrap_or(0)).unwrap_or(0),
            request_headers: headers(self.request_headers.as_deref())?,
            status_code: self.status_code.and_then(|c| u16::try_from(c).ok()),
            response_headers: headers(self.response_headers.as_deref())?,
            response_body: self.response_body.unwrap_or_default(),
            error: self.error,
        }))
    }
}

impl DeliveryRow {
    /// The delivery the row describes, with its latest attempt.
    fn into_delivery(self) -> Result<Delivery, StoreError> {
        let state = match self.state.as_str() {
            "pending" => DeliveryState::Pending,
            "delivered" => DeliveryState::Delivered,
            "failed" => DeliveryState::Failed,
            other => return Err(unexpected("delivery state", other)),
        };
        Ok(Delivery {
            id: DeliveryId(self.id),
            queued: NewDelivery {
                hook: HookId(self.hook_id),
                guid: self.guid,
                event: self.event,
                action: self.action,
                payload: self.payload,
                redelivery: self.redelivery,
                repository_id: self.repository_id.map(RepoId),
            },
            state,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            next_attempt_at: self.next_attempt_at,
            created_at: self.created_at,
            last_attempt: self.attempt.into_attempt()?,
        })
    }
}

/// A header list stored as JSON text; empty when there is none.
fn headers(text: Option<&str>) -> Result<Vec<(String, String)>, StoreError> {
    match text {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| StoreError::new("reading recorded webhook headers", e)),
    }
}

/// A list (of event names or headers) as the JSON text it is stored as.
/// The owner of app `app` (whose hook count an app's hook adds to).
async fn app_owner(conn: &mut PgConnection, app: AppId) -> StoreResult<i64> {
    sqlx::query_scalar::<_, i64>("SELECT owner_id FROM apps WHERE id = $1")
        .bind(app.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(failed("reading the owner of a hook's app"))?
        .ok_or_else(|| unexpected("hook app", &app.to_string()))
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("lists of strings serialize")
}

/// A value read from the database that no code writes.
fn unexpected(what: &str, text: &str) -> StoreError {
    StoreError::new(
        format!("reading a {what} from the database"),
        format!("unexpected {what} `{text}`"),
    )
}

/// Locks, skipping those another transaction holds, up to `$2` active hooks whose oldest
/// pending delivery is due at `$1` and not leased, the earliest due first.
const LOCK_DUE_HOOKS: &str = "SELECT h.id FROM hooks h \
     JOIN hook_deliveries d ON d.id = (SELECT min(p.id) FROM hook_deliveries p \
         WHERE p.hook_id = h.id AND p.state = 'pending') \
     WHERE h.active AND d.next_attempt_at <= $1 \
       AND (d.lease_until IS NULL OR d.lease_until <= $1) \
     ORDER BY d.next_attempt_at, d.id LIMIT $2 \
     FOR UPDATE OF h SKIP LOCKED";

/// Leases, under `$2` until `$3` for node `$5`, the oldest pending delivery of each hook of
/// `$4` (hooks the transaction has locked) if it is due at `$1` and not leased; the leased
/// ids.
const LEASE_HEADS: &str = "UPDATE hook_deliveries d \
     SET lease_token = $2, lease_until = $3, lease_holder = $5 \
     WHERE d.id IN (SELECT min(p.id) FROM hook_deliveries p \
             WHERE p.hook_id = ANY($4) AND p.state = 'pending' GROUP BY p.hook_id) \
       AND d.state = 'pending' AND d.next_attempt_at <= $1 \
       AND (d.lease_until IS NULL OR d.lease_until <= $1) \
     RETURNING d.id";

impl PgMetadataStore {
    /// Hooks matching `filter`, whose placeholders `$1`, `$2`, … take `binds`.
    async fn hook_rows(&self, filter: &str, binds: &[Option<i64>]) -> StoreResult<Vec<Hook>> {
        let sql = format!("{HOOK} WHERE {filter} ORDER BY h.id");
        let mut query = sqlx::query_as(AssertSqlSafe(sql));
        for bind in binds {
            query = query.bind(*bind);
        }
        let rows: Vec<HookRow> = query
            .fetch_all(&self.pool)
            .await
            .map_err(failed("reading hooks"))?;
        rows.into_iter().map(HookRow::into_hook).collect()
    }

    /// Inserts `deliveries`, due at `now`, in the order given.
    async fn insert_deliveries(
        conn: &mut PgConnection,
        deliveries: &[NewDelivery],
        now: Millis,
    ) -> StoreResult<()> {
        for d in deliveries {
            sqlx::query(
                "INSERT INTO hook_deliveries (hook_id, guid, event, action, payload, redelivery, \
                     repository_id, state, attempts, next_attempt_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8)",
            )
            .bind(d.hook.0)
            .bind(&d.guid)
            .bind(&d.event)
            .bind(&d.action)
            .bind(&d.payload)
            .bind(d.redelivery)
            .bind(d.repository_id.map(|id| id.0))
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(failed(format!("queueing a delivery to hook {}", d.hook)))?;
        }
        Ok(())
    }
}

#[async_trait]
impl HookStore for PgMetadataStore {
    #[instrument(level = "debug", skip(self, settings))]
    async fn create_hook(
        &self,
        scope: HookScope,
        settings: &HookSettings,
        now: Millis,
        max_per_account: usize,
    ) -> StoreResult<Option<HookId>> {
        let (repo, account): (Option<RepoId>, Option<AccountId>) = match scope {
            HookScope::Repository(id) => (Some(id), None),
            HookScope::Organization(id) | HookScope::User(id) => (None, Some(id)),
            HookScope::App(_) => (None, None),
        };
        let app = match scope {
            HookScope::App(id) => Some(id),
            _ => None,
        };
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(failed("starting to create a hook"))?;
        let owner = match scope {
            HookScope::Repository(id) => {
                sqlx::query_scalar::<_, i64>("SELECT owner_id FROM source_repos WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(failed("reading the owner of a hook's repository"))?
                    .ok_or_else(|| unexpected("hook repository", &id.to_string()))?
            }
            HookScope::Organization(id) | HookScope::User(id) => id.0,
            HookScope::App(id) => app_owner(&mut tx, id).await?,
        };
        let account = account.or_else(|| app.map(|_| AccountId(owner)));
        // The owning account's row serializes the creations of its hooks and its
        // repositories' hooks, so concurrent creations never pass the cap. (NO KEY: foreign
        // key checks of other writes referencing the account are not held up.) An unknown
        // account locks nothing and fails the insert's foreign key below.
        sqlx::query("SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE")
            .bind(owner)
            .execute(&mut *tx)
            .await
            .map_err(failed("locking an account to count its hooks"))?;
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM hooks h LEFT JOIN source_repos r ON r.id = h.repo_id \
             WHERE h.account_id = $1 OR r.owner_id = $1",
        )
        .bind(owner)
        .fetch_one(&mut *tx)
        .await
        .map_err(failed("counting an account's hooks"))?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= max_per_account {
            return Ok(None);
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO hooks (repo_id, account_id, active, events, url, content_type, secret, \
                 insecure_ssl, deleted_events, created_at, updated_at, app_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11) RETURNING id",
        )
        .bind(repo.map(|id| id.0))
        .bind(account.map(|id| id.0))
        .bind(settings.active)
        .bind(json(&settings.events))
        .bind(&settings.config.url)
        .bind(settings.config.content_type.as_str())
        .bind(&settings.config.secret)
        .bind(settings.config.insecure_ssl)
        .bind(settings.deleted_events)
        .bind(now)
        .bind(app.map(|id| id.0))
        .fetch_one(&mut *tx)
        .await
        .map_err(failed("creating a hook"))?;
        tx.commit().await.map_err(failed("committing a new hook"))?;
        Ok(Some(HookId(id)))
    }

    #[instrument(level = "debug", skip(self))]
    async fn hook(&self, id: HookId) -> StoreResult<Option<Hook>> {
        Ok(self
            .hook_rows("h.id = $1", &[Some(id.0)])
            .await?
            .into_iter()
            .next())
    }

    #[instrument(level = "debug", skip(self))]
    async fn hooks_of(&self, scope: HookScope) -> StoreResult<Vec<Hook>> {
        match scope {
            HookScope::Repository(id) => self.hook_rows("h.repo_id = $1", &[Some(id.0)]).await,
            HookScope::Organization(id) | HookScope::User(id) => {
                self.hook_rows("h.account_id = $1 AND h.app_id IS NULL", &[Some(id.0)])
                    .await
            }
            HookScope::App(id) => self.hook_rows("h.app_id = $1", &[Some(id.0)]).await,
        }
    }

    #[instrument(level = "debug", skip(self, settings))]
    async fn update_hook(
        &self,
        id: HookId,
        settings: &HookSettings,
        now: Millis,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE hooks SET active = $2, events = $3, url = $4, content_type = $5, \
                 secret = $6, insecure_ssl = $7, deleted_events = $8, updated_at = $9 \
             WHERE id = $1",
        )
        .bind(id.0)
        .bind(settings.active)
        .bind(json(&settings.events))
        .bind(&settings.config.url)
        .bind(settings.config.content_type.as_str())
        .bind(&settings.config.secret)
        .bind(settings.config.insecure_ssl)
        .bind(settings.deleted_events)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(failed(format!("updating hook {id}")))?;
        Ok(result.rows_affected() > 0)
    }

    #[instrument(level = "debug", skip(self))]
    async fn delete_hook(&self, id: HookId) -> StoreResult<bool> {
        let result = sqlx::query("DELETE FROM hooks WHERE id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(failed(format!("deleting hook {id}")))?;
        Ok(result.rows_affected() > 0)
    }

    #[instrument(level = "debug", skip(self))]
    async fn hooks_for_package(
        &self,
        owner: AccountId,
        repo: Option<RepoId>,
    ) -> StoreResult<Vec<Hook>> {
        self.hook_rows(
            "h.active AND h.app_id IS NULL AND (h.account_id = $1 OR h.repo_id = $2)",
            &[Some(owner.0), repo.map(|id| id.0)],
        )
        .await
    }

    #[instrument(level = "debug", skip(self))]
    async fn app_hooks_for_package(
        &self,
        owner: AccountId,
        repo: Option<RepoId>,
    ) -> StoreResult<Vec<(Hook, InstallationId)>> {
        let found: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT h.id, i.id FROM hooks h \
             JOIN app_installations i ON i.app_id = h.app_id \
             WHERE h.active AND i.account_id = $1 \
               AND (i.all_repositories OR EXISTS (SELECT 1 FROM app_installation_repos r \
                    WHERE r.installation_id = i.id AND r.repo_id = $2)) \
             ORDER BY h.id",
        )
        .bind(owner.0)
        .bind(repo.map(|id| id.0))
        .fetch_all(&self.pool)
        .await
        .map_err(failed("reading the app hooks of a package"))?;
        let mut hooks = Vec::with_capacity(found.len());
        for (hook, installation) in found {
            if let Some(hook) = self.hook(HookId(hook)).await? {
                hooks.push((hook, InstallationId(installation)));
            }
        }
        Ok(hooks)
    }

    #[instrument(level = "debug", skip(self), fields(%name, %digest))]
    async fn package_facts(
        &self,
        name: &RepoName,
        digest: &Digest,
    ) -> StoreResult<Option<PackageFacts>> {
        let row: Option<(i64, i64, i64, Option<i64>, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT p.id, p.owner_id, p.created_at, p.linked_repo_id, v.id, v.created_at \
             FROM packages p \
             LEFT JOIN repositories r ON r.name = p.name \
             LEFT JOIN package_versions v ON v.repository_id = r.id AND v.digest = $2 \
             WHERE p.name = $1",
        )
        .bind(name.as_str())
        .bind(digest.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(failed(format!("reading package {name} for a webhook")))?;
        Ok(row.map(
            |(package_id, owner, created_at, linked_repo, version_id, version_created_at)| {
                PackageFacts {
                    package_id: PackageId(package_id),
                    owner: AccountId(owner),
                    created_at,
                    linked_repo: linked_repo.map(RepoId),
                    version_id: version_id.map(VersionId),
                    version_created_at,
                }
            },
        ))
    }

    #[instrument(level = "debug", skip_all, fields(count = deliveries.len()))]
    async fn enqueue(&self, deliveries: &[NewDelivery], now: Millis) -> StoreResult<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(failed("starting to queue deliveries"))?;
        Self::insert_deliveries(&mut tx, deliveries, now).await?;
        tx.commit()
            .await
            .map_err(failed("committing queued deliveries"))
    }

    #[instrument(level = "debug", skip(self, token))]
    async fn claim_due(
        &self,
        now: Millis,
        token: &str,
        lease_until: Millis,
        limit: usize,
    ) -> StoreResult<Vec<Claimed>> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(failed("starting to claim webhook deliveries"))?;
        let hooks: Vec<i64> = sqlx::query_scalar(LOCK_DUE_HOOKS)
            .bind(now)
            .bind(sql_limit(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(failed("finding hooks with due webhook deliveries"))?;
        if hooks.is_empty() {
            return Ok(Vec::new());
        }
        // A new statement, so a new snapshot: it sees whatever was committed to these hooks'
        // queues before their rows were locked, and nothing can change them until commit.
        let ids: Vec<i64> = sqlx::query_scalar(LEASE_HEADS)
            .bind(now)
            .bind(token)
            .bind(lease_until)
            .bind(&hooks)
            .bind(&*self.node)
            .fetch_all(&mut *tx)
            .await
            .map_err(failed("leasing webhook deliveries"))?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("{DELIVERY} WHERE d.id = ANY($1) ORDER BY d.id");
        let rows: Vec<DeliveryRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await
            .map_err(failed("reading leased webhook deliveries"))?;
        let hook_sql = format!("{HOOK} WHERE h.id = ANY($1)");
        let hook_rows: Vec<HookRow> = sqlx::query_as(AssertSqlSafe(hook_sql))
            .bind(&hooks)
            .fetch_all(&mut *tx)
            .await
            .map_err(failed("reading the hooks of leased deliveries"))?;
        tx.commit()
            .await
            .map_err(failed("committing webhook delivery leases"))?;
        let hooks = hook_rows
            .into_iter()
            .map(HookRow::into_hook)
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|row| {
                let delivery = row.into_delivery()?;
                let hook = hooks
                    .iter()
                    .find(|h| h.id == delivery.queued.hook)
                    .cloned()
                    .ok_or_else(|| {
                        unexpected("leased delivery's hook", &delivery.id.to_string())
                    })?;
                Ok(Claimed { delivery, hook })
            })
            .collect()
    }

    #[instrument(level = "debug", skip(self))]
    async fn next_due(&self) -> StoreResult<Option<Millis>> {
        sqlx::query_scalar(
            "SELECT min(greatest(d.next_attempt_at, coalesce(d.lease_until, 0))) FROM hooks h \
             JOIN hook_deliveries d ON d.id = (SELECT min(p.id) FROM hook_deliveries p \
                 WHERE p.hook_id = h.id AND p.state = 'pending') \
             WHERE h.active",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(failed("reading when the next webhook delivery is due"))
    }

    #[instrument(level = "debug", skip(self))]
    async fn pending_deliveries(&self) -> StoreResult<u64> {
        let count: i64 =
            sqlx::query_scalar("SELECT count(*) FROM hook_deliveries WHERE state = 'pending'")
                .fetch_one(&self.pool)
                .await
                .map_err(failed("counting pending webhook deliveries"))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    #[instrument(level = "debug", skip(self, token, attempt))]
    async fn record_attempt(
        &self,
        delivery: DeliveryId,
        token: &str,
        attempt: &Attempt,
        outcome: AttemptOutcome,
    ) -> StoreResult<()> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(failed(format!("starting to record delivery {delivery}")))?;
        // The hook's row first, as a claim takes it: the hook's last response, under the lock
        // that keeps claims off its queue until this commits.
        let hook: Option<i64> = sqlx::query_scalar(
            "UPDATE hooks SET last_code = $3, last_status = $4, last_message = $5 \
             WHERE id = (SELECT hook_id FROM hook_deliveries WHERE id = $1 AND lease_token = $2) \
             RETURNING id",
        )
        .bind(delivery.0)
        .bind(token)
        .bind(attempt.status_code.map(i32::from))
        .bind(if attempt.succeeded() {
            "active"
        } else {
            "failed"
        })
        .bind(attempt.status_text())
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed(format!(
            "updating the last response of the hook of delivery {delivery}"
        )))?;
        let lost = || StoreError::lease_lost(format!("webhook delivery {delivery}"));
        if hook.is_none() {
            return Err(lost());
        }
        let (state, next) = match outcome {
            AttemptOutcome::Delivered => (DeliveryState::Delivered, attempt.started_at),
            AttemptOutcome::Failed => (DeliveryState::Failed, attempt.started_at),
            AttemptOutcome::RetryAt(at) => (DeliveryState::Pending, at),
        };
        // Only under the token: a claim that took the lease over since (it expired) wins.
        let updated = sqlx::query(
            "UPDATE hook_deliveries SET state = $3, attempts = $4, next_attempt_at = $5, \
                 lease_token = NULL, lease_until = NULL WHERE id = $1 AND lease_token = $2",
        )
        .bind(delivery.0)
        .bind(token)
        .bind(state.as_str())
        .bind(i32::try_from(attempt.number).unwrap_or(i32::MAX))
        .bind(next)
        .execute(&mut *tx)
        .await
        .map_err(failed(format!("updating delivery {delivery}")))?;
        if updated.rows_affected() == 0 {
            return Err(lost());
        }
        sqlx::query(
            "INSERT INTO hook_attempts (delivery_id, number, started_at, duration_ms, \
                 request_headers, status_code, response_headers, response_body, error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(delivery.0)
        .bind(i32::try_from(attempt.number).unwrap_or(i32::MAX))
        .bind(attempt.started_at)
        .bind(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX))
        .bind(json(&attempt.request_headers))
        .bind(attempt.status_code.map(i32::from))
        .bind(json(&attempt.response_headers))
        .bind(&attempt.response_body)
        .bind(&attempt.error)
        .execute(&mut *tx)
        .await
        .map_err(failed(format!(
            "recording an attempt of delivery {delivery}"
        )))?;
        tx.commit().await.map_err(failed(format!(
            "committing an attempt of delivery {delivery}"
        )))
    }

    #[instrument(level = "debug", skip(self))]
    async fn deliveries(
        &self,
        hook: HookId,
        before: Option<DeliveryId>,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        let sql = format!(
            "{DELIVERY} WHERE d.hook_id = $1 AND ($2::BIGINT IS NULL OR d.id < $2) \
             ORDER BY d.id DESC LIMIT $3"
        );
        let rows: Vec<DeliveryRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(hook.0)
            .bind(before.map(|id| id.0))
            .bind(sql_limit(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(failed(format!("listing the deliveries of hook {hook}")))?;
        rows.into_iter().map(DeliveryRow::into_delivery).collect()
    }

    #[instrument(level = "debug", skip(self))]
    async fn purge_deliveries(&self, before: Millis) -> StoreResult<u64> {
        let result =
            sqlx::query("DELETE FROM hook_deliveries WHERE state <> 'pending' AND created_at < $1")
                .bind(before)
                .execute(&self.pool)
                .await
                .map_err(failed("purging old webhook deliveries"))?;
        Ok(result.rows_affected())
    }

    #[instrument(level = "debug", skip(self))]
    async fn delivery(
        &self,
        hook: HookId,
        id: DeliveryId,
    ) -> StoreResult<Option<(Delivery, Vec<Attempt>)>> {
        let sql = format!("{DELIVERY} WHERE d.hook_id = $1 AND d.id = $2");
        let row: Option<DeliveryRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(hook.0)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(failed(format!("reading delivery {id}")))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let attempts: Vec<AttemptColumns> = sqlx::query_as(
            "SELECT number, started_at, duration_ms, request_headers, status_code, \
                 response_headers, response_body, error \
             FROM hook_attempts WHERE delivery_id = $1 ORDER BY number",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await
        .map_err(failed(format!("reading the attempts of delivery {id}")))?;
        let attempts = attempts
            .into_iter()
            .filter_map(|a| a.into_attempt().transpose())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((row.into_delivery()?, attempts)))
    }
}
