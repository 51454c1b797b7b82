//! [`HookStore`] on SQLite: hooks, the delivery queue and its attempts
//! (`migrations/0004_webhooks.sql`).
//!
//! The queue keeps the port's invariants with SQL alone: a claim leases, in one write
//! transaction, only the oldest pending delivery of each active hook (`hook_deliveries_pending`
//! finds it), and an attempt is recorded only under the claim's lease token. Header lists
//! and event lists are stored as JSON text. Statements built with `format!` join constant
//! column lists and constant filters; values are always bound, never formatted in (hence
//! `AssertSqlSafe`).

use async_trait::async_trait;
use berth_core::access::{AccountId, RepoId};
use berth_core::digest::Digest;
use berth_core::error::StoreError;
use berth_core::hooks::model::{
    Attempt, AttemptOutcome, ContentType, Delivery, DeliveryId, DeliveryState, Hook, HookConfig,
    HookId, HookScope, HookSettings, LastResponse, NewDelivery,
};
use berth_core::hooks::store::{Claimed, EventTargets, HookStore, PackageFacts};
use berth_core::ids::VersionId;
use berth_core::ids::{AppId, InstallationId, PackageId};
use berth_core::name::RepoName;
use berth_core::ports::{Millis, StoreResult};
use sqlx::{AssertSqlSafe, FromRow, Row as _, SqliteConnection};
use tracing::instrument;

use crate::access::unexpected;
use crate::store::{SqliteMetadataStore, failed, sql_limit};

/// Columns of a hook (`h`), with its account's kind (`a`: organization or user hooks); a
/// macro, so that [`HOOK`] and [`EVENT_TARGETS`] are built from the same text.
macro_rules! hook_columns {
    () => {
        "h.id, h.repo_id, h.account_id, h.app_id, a.kind AS account_kind, h.active, \
         h.events, h.url, h.content_type, h.secret, h.insecure_ssl, h.deleted_events, \
         h.created_at, h.updated_at, h.last_code, h.last_status, h.last_message \
         FROM hooks h LEFT JOIN accounts a ON a.id = h.account_id"
    };
}

/// A hook's row (see [`hook_columns`]).
const HOOK: &str = concat!("SELECT ", hook_columns!());

/// A package and its version (`?` digest, `?` name).
macro_rules! package_facts_query {
    () => {
        "SELECT p.id, p.owner_id, p.created_at, p.linked_repo_id, v.id, v.created_at \
         FROM packages p \
         LEFT JOIN repositories r ON r.name = p.name \
         LEFT JOIN package_versions v ON v.repository_id = r.id AND v.digest = ? \
         WHERE p.name = ?"
    };
}

/// [`HookStore::package_event_targets`] in one round trip to SQLite's thread: the package (a
/// `facts` row), the active hooks of its owner and linked repository (`hook` rows) and of the
/// apps installed on its owner for that repository (`app` rows: hook and installation). Each
/// row names its kind in its column `what`, so the others decode by position or name as they
/// would alone. Parameters are positional (see `quotas::LINK`): the version's digest, then the
/// package's name three times.
const EVENT_TARGETS: &str = concat!(
    "SELECT *, 'facts' AS what FROM (",
    package_facts_query!(),
    "); SELECT 'hook' AS what, ",
    hook_columns!(),
    " JOIN packages p ON p.name = ? \
     WHERE h.active = 1 AND h.app_id IS NULL \
       AND (h.account_id = p.owner_id OR h.repo_id = p.linked_repo_id) \
     ORDER BY h.id; ",
    "SELECT h.id, i.id, 'app' AS what FROM hooks h \
     JOIN app_installations i ON i.app_id = h.app_id \
     JOIN packages p ON p.name = ? \
     WHERE h.active = 1 AND i.account_id = p.owner_id \
       AND (i.all_repositories OR EXISTS (SELECT 1 FROM app_installation_repos r \
            WHERE r.installation_id = i.id AND r.repo_id = p.linked_repo_id)) \
     ORDER BY h.id"
);

/// A [`package_facts_query`] row.
type FactsRow = (i64, i64, i64, Option<i64>, Option<i64>, Option<i64>);

fn facts(
    (package_id, owner, created_at, linked_repo, version_id, version_created_at): FactsRow,
) -> PackageFacts {
    PackageFacts {
        package_id: PackageId(package_id),
        owner: AccountId(owner),
        created_at,
        linked_repo: linked_repo.map(RepoId),
        version_id: version_id.map(VersionId),
        version_created_at,
    }
}

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
    last_code: Option<i64>,
    last_status: String,
    last_message: Option<String>,
}

impl HookRow {
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
    attempts: i64,
    next_attempt_at: i64,
    created_at: i64,
    #[sqlx(flatten)]
    attempt: AttemptColumns,
}

#[derive(sqlx::FromRow)]
struct AttemptColumns {
    number: Option<i64>,
    started_at: Option<i64>,
    duration_ms: Option<i64>,
    request_headers: Option<String>,
    status_code: Option<i64>,
    response_headers: Option<String>,
    response_body: Option<String>,
    error: Option<String>,
}

impl AttemptColumns {
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

fn headers(text: Option<&str>) -> Result<Vec<(String, String)>, StoreError> {
    match text {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| StoreError::new("reading recorded webhook headers", e)),
    }
}

/// The owner of app `app` (whose hook count an app's hook adds to).
async fn app_owner(conn: &mut SqliteConnection, app: AppId) -> StoreResult<i64> {
    sqlx::query_scalar::<_, i64>("SELECT owner_id FROM apps WHERE id = ?1")
        .bind(app.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(failed("reading the owner of a hook's app"))?
        .ok_or_else(|| unexpected("hook app", &app.to_string()))
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("lists of strings serialize")
}

/// The oldest pending delivery of each active hook, due at `?1` and not leased.
const HEADS_DUE: &str = "SELECT d.id FROM hooks h \
     JOIN hook_deliveries d ON d.id = (SELECT min(p.id) FROM hook_deliveries p \
         WHERE p.hook_id = h.id AND p.state = 'pending') \
     WHERE h.active = 1 AND d.next_attempt_at <= ?1 \
       AND (d.lease_until IS NULL OR d.lease_until <= ?1) \
     ORDER BY d.next_attempt_at, d.id LIMIT ?2";

impl SqliteMetadataStore {
    /// Hooks matching `filter`, whose placeholders `?1`, `?2`, … take `binds`.
    async fn hook_rows(&self, filter: &str, binds: &[Option<i64>]) -> StoreResult<Vec<Hook>> {
        let sql = format!("{HOOK} WHERE {filter} ORDER BY h.id");
        let mut query = sqlx::query_as(AssertSqlSafe(sql));
        for bind in binds {
            query = query.bind(*bind);
        }
        let rows: Vec<HookRow> = query
            .fetch_all(&mut *self.reader.conn().await?)
            .await
            .map_err(failed("reading hooks"))?;
        rows.into_iter().map(HookRow::into_hook).collect()
    }

    async fn insert_deliveries(
        conn: &mut SqliteConnection,
        deliveries: &[NewDelivery],
        now: Millis,
    ) -> StoreResult<()> {
        for d in deliveries {
            sqlx::query(
                "INSERT INTO hook_deliveries (hook_id, guid, event, action, payload, redelivery, \
                     repository_id, state, attempts, next_attempt_at, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', 0, ?8, ?8)",
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
impl HookStore for SqliteMetadataStore {
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
        let mut tx = self.begin_write().await?;
        // The account's hooks and its repositories' hooks, counted in the transaction that
        // inserts, so concurrent creations never pass the cap.
        let owner = match scope {
            HookScope::Repository(id) => {
                sqlx::query_scalar::<_, i64>("SELECT owner_id FROM source_repos WHERE id = ?1")
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
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM hooks h LEFT JOIN source_repos r ON r.id = h.repo_id \
             WHERE h.account_id = ?1 OR r.owner_id = ?1",
        )
        .bind(owner)
        .fetch_one(&mut *tx)
        .await
        .map_err(failed("counting an account's hooks"))?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= max_per_account {
            return Ok(None);
        }
        let result = sqlx::query(
            "INSERT INTO hooks (repo_id, account_id, active, events, url, content_type, secret, \
                 insecure_ssl, deleted_events, created_at, updated_at, app_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11)",
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
        .execute(&mut *tx)
        .await
        .map_err(failed("creating a hook"))?;
        tx.commit().await.map_err(failed("committing a new hook"))?;
        Ok(Some(HookId(result.last_insert_rowid())))
    }

    #[instrument(level = "debug", skip(self))]
    async fn hook(&self, id: HookId) -> StoreResult<Option<Hook>> {
        Ok(self
            .hook_rows("h.id = ?1", &[Some(id.0)])
            .await?
            .into_iter()
            .next())
    }

    #[instrument(level = "debug", skip(self))]
    async fn hooks_of(&self, scope: HookScope) -> StoreResult<Vec<Hook>> {
        match scope {
            HookScope::Repository(id) => self.hook_rows("h.repo_id = ?1", &[Some(id.0)]).await,
            HookScope::Organization(id) | HookScope::User(id) => {
                self.hook_rows("h.account_id = ?1 AND h.app_id IS NULL", &[Some(id.0)])
                    .await
            }
            HookScope::App(id) => self.hook_rows("h.app_id = ?1", &[Some(id.0)]).await,
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
            "UPDATE hooks SET active = ?2, events = ?3, url = ?4, content_type = ?5, \
                 secret = ?6, insecure_ssl = ?7, deleted_events = ?8, updated_at = ?9 \
             WHERE id = ?1",
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
        .execute(&mut *self.writer.conn().await?)
        .await
        .map_err(failed(format!("updating hook {id}")))?;
        self.writer.durable().await?;
        Ok(result.rows_affected() > 0)
    }

    #[instrument(level = "debug", skip(self))]
    async fn delete_hook(&self, id: HookId) -> StoreResult<bool> {
        let result = sqlx::query("DELETE FROM hooks WHERE id = ?1")
            .bind(id.0)
            .execute(&mut *self.writer.conn().await?)
            .await
            .map_err(failed(format!("deleting hook {id}")))?;
        self.writer.durable().await?;
        Ok(result.rows_affected() > 0)
    }

    #[instrument(level = "debug", skip(self))]
    async fn hooks_for_package(
        &self,
        owner: AccountId,
        repo: Option<RepoId>,
    ) -> StoreResult<Vec<Hook>> {
        self.hook_rows(
            "h.active = 1 AND h.app_id IS NULL AND (h.account_id = ?1 OR h.repo_id = ?2)",
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
             WHERE h.active = 1 AND i.account_id = ?1 \
               AND (i.all_repositories OR EXISTS (SELECT 1 FROM app_installation_repos r \
                    WHERE r.installation_id = i.id AND r.repo_id = ?2)) \
             ORDER BY h.id",
        )
        .bind(owner.0)
        .bind(repo.map(|id| id.0))
        .fetch_all(&mut *self.reader.conn().await?)
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
        let row: Option<FactsRow> = sqlx::query_as(package_facts_query!())
            .bind(digest.as_str())
            .bind(name.as_str())
            .fetch_optional(&mut *self.reader.conn().await?)
            .await
            .map_err(failed(format!("reading package {name} for a webhook")))?;
        Ok(row.map(facts))
    }

    #[instrument(level = "debug", skip(self), fields(%name, %digest))]
    async fn package_event_targets(
        &self,
        name: &RepoName,
        digest: &Digest,
    ) -> StoreResult<Option<EventTargets>> {
        let doing = || format!("reading package {name} and its hooks for a webhook");
        let rows = sqlx::query(EVENT_TARGETS)
            .bind(digest.as_str())
            .bind(name.as_str())
            .bind(name.as_str())
            .bind(name.as_str())
            .fetch_all(&mut *self.reader.conn().await?)
            .await
            .map_err(failed(doing()))?;
        let (mut found, mut hooks, mut apps) = (None, Vec::new(), Vec::new());
        for row in &rows {
            let what: &str = row.try_get("what").map_err(failed(doing()))?;
            match what {
                "facts" => found = Some(facts(FactsRow::from_row(row).map_err(failed(doing()))?)),
                "hook" => hooks.push(
                    HookRow::from_row(row)
                        .map_err(failed(doing()))?
                        .into_hook()?,
                ),
                _ => {
                    let (hook, installation): (i64, i64) =
                        FromRow::from_row(row).map_err(failed(doing()))?;
                    apps.push((HookId(hook), InstallationId(installation)));
                }
            }
        }
        let Some(facts) = found else {
            return Ok(None);
        };
        let mut app_hooks = Vec::with_capacity(apps.len());
        for (hook, installation) in apps {
            if let Some(hook) = self.hook(hook).await? {
                app_hooks.push((hook, installation));
            }
        }
        Ok(Some(EventTargets {
            facts,
            hooks,
            app_hooks,
        }))
    }

    #[instrument(level = "debug", skip_all, fields(count = deliveries.len()))]
    async fn enqueue(&self, deliveries: &[NewDelivery], now: Millis) -> StoreResult<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
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
        let mut tx = self.begin_write().await?;
        let ids: Vec<i64> = sqlx::query_scalar(HEADS_DUE)
            .bind(now)
            .bind(sql_limit(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(failed("finding due webhook deliveries"))?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = json(&ids);
        sqlx::query(
            "UPDATE hook_deliveries SET lease_token = ?1, lease_until = ?2 \
             WHERE id IN (SELECT value FROM json_each(?3))",
        )
        .bind(token)
        .bind(lease_until)
        .bind(&list)
        .execute(&mut *tx)
        .await
        .map_err(failed("leasing webhook deliveries"))?;
        let sql =
            format!("{DELIVERY} WHERE d.id IN (SELECT value FROM json_each(?1)) ORDER BY d.id");
        let rows: Vec<DeliveryRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(&list)
            .fetch_all(&mut *tx)
            .await
            .map_err(failed("reading leased webhook deliveries"))?;
        let hook_sql = format!("{HOOK} WHERE h.id = ?1");
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let delivery = row.into_delivery()?;
            let hook: HookRow = sqlx::query_as(AssertSqlSafe(hook_sql.clone()))
                .bind(delivery.queued.hook.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(failed("reading the hook of a leased delivery"))?;
            claimed.push(Claimed {
                delivery,
                hook: hook.into_hook()?,
            });
        }
        tx.commit()
            .await
            .map_err(failed("committing webhook delivery leases"))?;
        Ok(claimed)
    }

    #[instrument(level = "debug", skip(self))]
    async fn next_due(&self) -> StoreResult<Option<Millis>> {
        sqlx::query_scalar(
            "SELECT min(max(d.next_attempt_at, coalesce(d.lease_until, 0))) FROM hooks h \
             JOIN hook_deliveries d ON d.id = (SELECT min(p.id) FROM hook_deliveries p \
                 WHERE p.hook_id = h.id AND p.state = 'pending') \
             WHERE h.active = 1",
        )
        .fetch_one(&mut *self.reader.conn().await?)
        .await
        .map_err(failed("reading when the next webhook delivery is due"))
    }

    #[instrument(level = "debug", skip(self))]
    async fn pending_deliveries(&self) -> StoreResult<u64> {
        let count: i64 =
            sqlx::query_scalar("SELECT count(*) FROM hook_deliveries WHERE state = 'pending'")
                .fetch_one(&mut *self.reader.conn().await?)
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
        let mut tx = self.begin_write().await?;
        let hook: Option<i64> = sqlx::query_scalar(
            "SELECT hook_id FROM hook_deliveries WHERE id = ?1 AND lease_token = ?2",
        )
        .bind(delivery.0)
        .bind(token)
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed(format!("checking the lease of delivery {delivery}")))?;
        let Some(hook) = hook else {
            return Err(StoreError::lease_lost(format!(
                "webhook delivery {delivery}"
            )));
        };
        sqlx::query(
            "INSERT INTO hook_attempts (delivery_id, number, started_at, duration_ms, \
                 request_headers, status_code, response_headers, response_body, error) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .bind(delivery.0)
        .bind(i64::from(attempt.number))
        .bind(attempt.started_at)
        .bind(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX))
        .bind(json(&attempt.request_headers))
        .bind(attempt.status_code.map(i64::from))
        .bind(json(&attempt.response_headers))
        .bind(&attempt.response_body)
        .bind(&attempt.error)
        .execute(&mut *tx)
        .await
        .map_err(failed(format!(
            "recording an attempt of delivery {delivery}"
        )))?;
        let (state, next) = match outcome {
            AttemptOutcome::Delivered => (DeliveryState::Delivered, attempt.started_at),
            AttemptOutcome::Failed => (DeliveryState::Failed, attempt.started_at),
            AttemptOutcome::RetryAt(at) => (DeliveryState::Pending, at),
        };
        sqlx::query(
            "UPDATE hook_deliveries SET state = ?2, attempts = ?3, next_attempt_at = ?4, \
                 lease_token = NULL, lease_until = NULL WHERE id = ?1",
        )
        .bind(delivery.0)
        .bind(state.as_str())
        .bind(i64::from(attempt.number))
        .bind(next)
        .execute(&mut *tx)
        .await
        .map_err(failed(format!("updating delivery {delivery}")))?;
        sqlx::query(
            "UPDATE hooks SET last_code = ?2, last_status = ?3, last_message = ?4 WHERE id = ?1",
        )
        .bind(hook)
        .bind(attempt.status_code.map(i64::from))
        .bind(if attempt.succeeded() {
            "active"
        } else {
            "failed"
        })
        .bind(attempt.status_text())
        .execute(&mut *tx)
        .await
        .map_err(failed(format!("updating the last response of hook {hook}")))?;
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
            "{DELIVERY} WHERE d.hook_id = ?1 AND (?2 IS NULL OR d.id < ?2) \
             ORDER BY d.id DESC LIMIT ?3"
        );
        let rows: Vec<DeliveryRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(hook.0)
            .bind(before.map(|id| id.0))
            .bind(sql_limit(limit))
            .fetch_all(&mut *self.reader.conn().await?)
            .await
            .map_err(failed(format!("listing the deliveries of hook {hook}")))?;
        rows.into_iter().map(DeliveryRow::into_delivery).collect()
    }

    #[instrument(level = "debug", skip(self))]
    async fn purge_deliveries(&self, before: Millis) -> StoreResult<u64> {
        let result =
            sqlx::query("DELETE FROM hook_deliveries WHERE state <> 'pending' AND created_at < ?1")
                .bind(before)
                .execute(&mut *self.writer.conn().await?)
                .await
                .map_err(failed("purging old webhook deliveries"))?;
        self.writer.durable().await?;
        Ok(result.rows_affected())
    }

    #[instrument(level = "debug", skip(self))]
    async fn delivery(
        &self,
        hook: HookId,
        id: DeliveryId,
    ) -> StoreResult<Option<(Delivery, Vec<Attempt>)>> {
        let sql = format!("{DELIVERY} WHERE d.hook_id = ?1 AND d.id = ?2");
        let row: Option<DeliveryRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(hook.0)
            .bind(id.0)
            .fetch_optional(&mut *self.reader.conn().await?)
            .await
            .map_err(failed(format!("reading delivery {id}")))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let attempts: Vec<AttemptColumns> = sqlx::query_as(
            "SELECT number, started_at, duration_ms, request_headers, status_code, \
                 response_headers, response_body, error \
             FROM hook_attempts WHERE delivery_id = ?1 ORDER BY number",
        )
        .bind(id.0)
        .fetch_all(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(format!("reading the attempts of delivery {id}")))?;
        let attempts = attempts
            .into_iter()
            .filter_map(|a| a.into_attempt().transpose())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((row.into_delivery()?, attempts)))
    }
}
