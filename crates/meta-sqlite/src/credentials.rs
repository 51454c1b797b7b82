//! Credentials: tokens, stored as the SHA-256 of their secret.
//!
//! A credential's grant lives in columns of its row chosen by kind (see the schema's comment)
//! plus, for the kinds that carry lists, the child tables `credential_sso`,
//! `credential_repos` and `credential_packages`. Those lists are sets: they are stored once
//! each and read back sorted.

use async_trait::async_trait;
use berth_core::access::store::CredentialStore;
use berth_core::ports::StoreResult;
use std::collections::HashMap;
use tracing::instrument;

use berth_core::access::store::{
    CredentialInfo, NewCredential, Resolved, SessionFacts, WebSession,
};
use berth_core::access::token::TokenKind;
use berth_core::access::{AccountId, Credential, CredentialId, Grant, Principal, RepoId, Scopes};
use berth_core::error::StoreError;
use berth_core::ports::Millis;
use sqlx::SqliteConnection;

use crate::access::{insert_list, parse_role, permission_text, same_hash};
use crate::store::{SqliteMetadataStore, failed};

/// The query reading a [`CredentialRow`] under the given `WHERE` condition (on `c`, the
/// credential; `u` is its user, if any).
macro_rules! select_credential {
    ($condition:literal) => {
        concat!(
            "SELECT c.id, c.kind, c.token_hash, c.user_id, c.note, c.scopes, c.owner_id, \
                 c.permission, c.all_repositories, c.repo_id, c.created_at, c.expires_at, \
                 c.last_used_at, c.revoked_at, u.login, u.site_admin, c.via_private_repos \
             FROM credentials c LEFT JOIN accounts u ON u.id = c.user_id WHERE ",
            $condition
        )
    };
}

/// A credential row with its user's login and site-admin flag.
#[derive(sqlx::FromRow)]
struct CredentialRow {
    id: i64,
    kind: String,
    token_hash: Vec<u8>,
    user_id: Option<i64>,
    note: String,
    scopes: Option<String>,
    owner_id: Option<i64>,
    permission: Option<String>,
    all_repositories: bool,
    repo_id: Option<i64>,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
    login: Option<String>,
    site_admin: Option<bool>,
    via_private_repos: bool,
}

/// The lists of a grant, read from the child tables.
#[derive(Debug, Default)]
struct Lists {
    /// `credential_sso`: organizations that authorized a classic token.
    sso: Vec<AccountId>,
    /// `credential_repos`: selected repositories.
    repos: Vec<RepoId>,
    /// `credential_packages`: selected package names.
    packages: Vec<String>,
}

impl Lists {
    /// Adds one row of [`LISTS_OF_ONE`] or [`LISTS_OF_USER`].
    fn add(&mut self, (_, list, id, name): ListRow) {
        match (list.as_str(), id, name) {
            ("sso", Some(org), _) => self.sso.push(AccountId(org)),
            ("repo", Some(repo), _) => self.repos.push(RepoId(repo)),
            ("package", _, Some(name)) => self.packages.push(name),
            _ => {}
        }
    }

    fn sorted(mut self) -> Self {
        self.sso.sort_unstable();
        self.repos.sort_unstable();
        self.packages.sort_unstable();
        self
    }
}

/// A row of the child tables: credential id, which list, an id or a name.
type ListRow = (i64, String, Option<i64>, Option<String>);

/// The lists of credential `?1`.
const LISTS_OF_ONE: &str = "\
    SELECT credential_id, 'sso', org_id, NULL FROM credential_sso WHERE credential_id = ?1 \
    UNION ALL SELECT credential_id, 'repo', repo_id, NULL FROM credential_repos \
        WHERE credential_id = ?1 \
    UNION ALL SELECT credential_id, 'package', NULL, package_name FROM credential_packages \
        WHERE credential_id = ?1";

/// The lists of every credential of user `?1`.
const LISTS_OF_USER: &str = "\
    SELECT s.credential_id, 'sso', s.org_id, NULL FROM credentials c \
        JOIN credential_sso s ON s.credential_id = c.id WHERE c.user_id = ?1 \
    UNION ALL SELECT r.credential_id, 'repo', r.repo_id, NULL FROM credentials c \
        JOIN credential_repos r ON r.credential_id = c.id WHERE c.user_id = ?1 \
    UNION ALL SELECT p.credential_id, 'package', NULL, p.package_name FROM credentials c \
        JOIN credential_packages p ON p.credential_id = c.id WHERE c.user_id = ?1";

impl CredentialRow {
    fn kind(&self) -> Result<TokenKind, StoreError> {
        TokenKind::from_name(&self.kind).ok_or_else(|| self.corrupt("kind"))
    }

    /// Whether the grant has lists in the child tables.
    fn has_lists(&self) -> Result<bool, StoreError> {
        Ok(match self.kind()? {
            TokenKind::Classic | TokenKind::FineGrained => true,
            TokenKind::App => !self.all_repositories,
            TokenKind::Job | TokenKind::AppSecret | TokenKind::Session => false,
        })
    }

    /// The grant, from the row's columns and its lists.
    fn grant(&self, lists: Lists) -> Result<Grant, StoreError> {
        let owner = || {
            self.owner_id
                .map(AccountId)
                .ok_or_else(|| self.corrupt("owner"))
        };
        let permission = || {
            self.permission
                .as_deref()
                .ok_or_else(|| self.corrupt("permission"))
                .and_then(parse_role)
        };
        let lists = lists.sorted();
        Ok(match self.kind()? {
            TokenKind::Classic => Grant::Classic {
                scopes: self
                    .scopes
                    .as_deref()
                    .ok_or_else(|| self.corrupt("scopes"))?
                    .parse::<Scopes>()
                    .map_err(|e| StoreError::new(format!("reading credential {}", self.id), e))?,
                sso_authorized: lists.sso,
            },
            TokenKind::FineGrained => Grant::FineGrained {
                owner: owner()?,
                packages: lists.packages,
                repositories: lists.repos,
                permission: permission()?,
                private_repositories: self.via_private_repos,
            },
            TokenKind::App => Grant::App {
                account: owner()?,
                repositories: (!self.all_repositories).then_some(lists.repos),
                permission: permission()?,
            },
            TokenKind::Job => Grant::Job {
                repository: self
                    .repo_id
                    .map(RepoId)
                    .ok_or_else(|| self.corrupt("repository"))?,
                owner: owner()?,
                permission: permission()?,
            },
            TokenKind::AppSecret | TokenKind::Session => return Err(self.corrupt("kind")),
        })
    }

    fn info(self, lists: Lists) -> Result<CredentialInfo, StoreError> {
        Ok(CredentialInfo {
            id: CredentialId(self.id),
            kind: self.kind()?,
            user: self.user_id.map(AccountId),
            grant: self.grant(lists)?,
            note: self.note,
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            revoked_at: self.revoked_at,
        })
    }

    fn corrupt(&self, what: &str) -> StoreError {
        StoreError::new(
            format!("reading credential {}", self.id),
            format!("its {what} column does not fit its kind `{}`", self.kind),
        )
    }
}

/// The columns a grant is stored in (besides the child tables).
struct GrantColumns<'a> {
    scopes: Option<String>,
    owner: Option<AccountId>,
    permission: Option<&'static str>,
    all_repositories: bool,
    repo: Option<RepoId>,
    sso: &'a [AccountId],
    repos: &'a [RepoId],
    packages: &'a [String],
    via_private_repos: bool,
}

impl<'a> GrantColumns<'a> {
    /// The columns of `credential`'s grant; an error when its kind does not match its grant or
    /// it grants more than write.
    fn of(credential: &'a NewCredential) -> Result<Self, StoreError> {
        let mut columns = GrantColumns {
            scopes: None,
            owner: None,
            permission: None,
            all_repositories: false,
            repo: None,
            via_private_repos: true,
            sso: &[],
            repos: &[],
            packages: &[],
        };
        match (credential.kind, &credential.grant) {
            (
                TokenKind::Classic,
                Grant::Classic {
                    scopes,
                    sso_authorized,
                },
            ) => {
                columns.scopes = Some(scopes.to_string());
                columns.sso = sso_authorized;
            }
            (
                TokenKind::FineGrained,
                Grant::FineGrained {
                    owner,
                    packages,
                    repositories,
                    permission,
                    private_repositories,
                },
            ) => {
                columns.owner = Some(*owner);
                columns.permission = Some(permission_text(*permission)?);
                columns.repos = repositories;
                columns.packages = packages;
                columns.via_private_repos = *private_repositories;
            }
            (
                TokenKind::App,
                Grant::App {
                    account,
                    repositories,
                    permission,
                },
            ) => {
                columns.owner = Some(*account);
                columns.permission = Some(permission_text(*permission)?);
                columns.all_repositories = repositories.is_none();
                columns.repos = repositories.as_deref().unwrap_or_default();
            }
            (
                TokenKind::Job,
                Grant::Job {
                    repository,
                    owner,
                    permission,
                },
            ) => {
                columns.repo = Some(*repository);
                columns.owner = Some(*owner);
                columns.permission = Some(permission_text(*permission)?);
            }
            (kind, grant) => {
                return Err(StoreError::new(
                    "storing a credential",
                    format!(
                        "a credential of kind `{}` cannot carry the grant {grant:?}",
                        kind.as_str()
                    ),
                ));
            }
        }
        Ok(columns)
    }
}

/// The lists of credential `id`, on the caller's connection.
async fn lists_of(conn: &mut SqliteConnection, id: CredentialId) -> Result<Lists, StoreError> {
    let rows: Vec<ListRow> = sqlx::query_as(LISTS_OF_ONE)
        .bind(id.0)
        .fetch_all(&mut *conn)
        .await
        .map_err(failed(format!("reading the grant of credential {id}")))?;
    let mut lists = Lists::default();
    rows.into_iter().for_each(|row| lists.add(row));
    Ok(lists)
}

/// What `row` (if any) resolves to at `now`; the lists are read on `conn` only for a usable
/// credential whose kind has them.
async fn resolve(
    conn: &mut SqliteConnection,
    row: Option<CredentialRow>,
    now: Millis,
) -> Result<Resolved, StoreError> {
    let Some(row) = row else {
        return Ok(Resolved::Unknown);
    };
    if row.revoked_at.is_some() {
        return Ok(Resolved::Revoked);
    }
    if let Some(expires_at) = row.expires_at.filter(|&at| at <= now) {
        return Ok(Resolved::Expired(expires_at));
    }
    let lists = if row.has_lists()? {
        lists_of(conn, CredentialId(row.id)).await?
    } else {
        Lists::default()
    };
    let grant = row.grant(lists)?;
    let login = match (row.user_id, row.login) {
        (Some(_), Some(login)) => login,
        _ => row.note,
    };
    Ok(Resolved::Valid(Principal::Token(Credential {
        id: CredentialId(row.id),
        user: row.user_id.map(AccountId),
        login,
        site_admin: row.site_admin.unwrap_or(false),
        grant,
        expires_at: row.expires_at,
    })))
}

/// The integers of `pairs` as a JSON array of two-element arrays, for `json_each`.
fn json_pairs(pairs: &[(CredentialId, Millis)]) -> String {
    let items: Vec<String> = pairs.iter().map(|(a, b)| format!("[{a},{b}]")).collect();
    format!("[{}]", items.join(","))
}

/// Inserts `credential` and its grant's lists in `tx`.
async fn insert_credential(
    tx: &mut SqliteConnection,
    credential: &NewCredential,
) -> StoreResult<CredentialId> {
    let columns = GrantColumns::of(credential)?;
    let doing = || format!("storing a {} credential", credential.kind.as_str());
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO credentials (kind, token_hash, user_id, note, scopes, owner_id, \
             permission, all_repositories, repo_id, created_at, expires_at, via_private_repos) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) RETURNING id",
    )
    .bind(credential.kind.as_str())
    .bind(&credential.hash)
    .bind(credential.user.map(|id| id.0))
    .bind(&credential.note)
    .bind(columns.scopes)
    .bind(columns.owner.map(|id| id.0))
    .bind(columns.permission)
    .bind(columns.all_repositories)
    .bind(columns.repo.map(|id| id.0))
    .bind(credential.created_at)
    .bind(credential.expires_at)
    .bind(columns.via_private_repos)
    .fetch_one(&mut *tx)
    .await
    .map_err(failed(doing()))?;
    let doing = doing();
    insert_list(
        tx,
        "INSERT OR IGNORE INTO credential_sso (credential_id, org_id) VALUES (?1, ?2)",
        id,
        columns.sso.iter().map(|org| org.0).collect::<Vec<_>>(),
        &doing,
    )
    .await?;
    insert_list(
        tx,
        "INSERT OR IGNORE INTO credential_repos (credential_id, repo_id) VALUES (?1, ?2)",
        id,
        columns.repos.iter().map(|repo| repo.0).collect::<Vec<_>>(),
        &doing,
    )
    .await?;
    insert_list(
        tx,
        "INSERT OR IGNORE INTO credential_packages (credential_id, package_name) \
         VALUES (?1, ?2)",
        id,
        columns.packages,
        &doing,
    )
    .await?;
    Ok(CredentialId(id))
}

#[async_trait]
impl CredentialStore for SqliteMetadataStore {
    /// Inserts a credential and its grant's lists in one transaction.
    #[instrument(level = "debug", skip_all, fields(kind = credential.kind.as_str(), user = ?credential.user))]
    async fn create_credential(&self, credential: &NewCredential) -> StoreResult<CredentialId> {
        let mut tx = self.begin_write().await?;
        let id = insert_credential(&mut tx, credential).await?;
        tx.commit().await.map_err(|e| {
            StoreError::new(
                format!("storing a {} credential", credential.kind.as_str()),
                e,
            )
        })?;
        Ok(id)
    }

    /// What the secret hashed to `hash` resolves to at `now`: one indexed query for the row
    /// and its user, and one for the grant's lists when the kind has them.
    #[instrument(level = "debug", skip(self, hash))]
    async fn resolve_secret(&self, hash: &[u8], now: Millis) -> StoreResult<Resolved> {
        let doing = || "resolving a token".to_owned();
        let mut conn = self.reader.conn().await?;
        let row: Option<CredentialRow> = sqlx::query_as(select_credential!("c.token_hash = ?1"))
            .bind(hash)
            .fetch_optional(&mut *conn)
            .await
            .map_err(failed(doing()))?;
        // The index lookup found an equal hash; compare again in constant time so a match
        // never rests on a comparison whose timing depends on the bytes.
        let row = row.filter(|row| same_hash(&row.token_hash, hash));
        resolve(&mut conn, row, now).await
    }

    /// What credential `id` resolves to at `now`.
    #[instrument(level = "debug", skip(self))]
    async fn resolve_credential(&self, id: CredentialId, now: Millis) -> StoreResult<Resolved> {
        let doing = || format!("resolving credential {id}");
        let mut conn = self.reader.conn().await?;
        let row: Option<CredentialRow> = sqlx::query_as(select_credential!("c.id = ?1"))
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await
            .map_err(failed(doing()))?;
        resolve(&mut conn, row, now).await
    }

    /// Moves each credential's last use to the given time when later, in one statement.
    /// Committed without waiting for an fsync (see [`SqliteMetadataStore::unsynced`]): a
    /// last-use time lost with the machine only makes a credential look a little less
    /// recently used.
    #[instrument(level = "debug", skip_all, fields(count = uses.len()))]
    async fn touch_credentials(&self, uses: &[(CredentialId, Millis)]) -> StoreResult<()> {
        if uses.is_empty() {
            return Ok(());
        }
        let done = sqlx::query(
            "UPDATE credentials SET last_used_at = max(coalesce(last_used_at, u.used), u.used) \
             FROM (SELECT value ->> 0 AS id, max(value ->> 1) AS used FROM json_each(?1) \
                   GROUP BY 1) AS u \
             WHERE credentials.id = u.id",
        )
        .bind(json_pairs(uses))
        .execute(&mut *self.writer.unsynced().await?)
        .await;
        done.map_err(failed("recording credential uses"))?;
        Ok(())
    }

    /// Sets the revocation time of credential `id` unless already revoked; false when there
    /// is no such credential.
    #[instrument(level = "debug", skip(self))]
    async fn revoke_credential(&self, id: CredentialId, now: Millis) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE credentials SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
        )
        .bind(id.0)
        .bind(now)
        .execute(&mut *self.writer.conn().await?)
        .await
        .map_err(failed(format!("revoking credential {id}")))?;
        self.writer.durable().await?;
        Ok(done.rows_affected() > 0)
    }

    /// The credentials of `user`, newest first: two queries, rows and lists.
    #[instrument(level = "debug", skip(self))]
    async fn list_credentials(&self, user: AccountId) -> StoreResult<Vec<CredentialInfo>> {
        let doing = || format!("listing the credentials of account {user}");
        let mut conn = self.reader.conn().await?;
        let rows: Vec<CredentialRow> = sqlx::query_as(select_credential!(
            "c.user_id = ?1 \
             AND NOT EXISTS (SELECT 1 FROM web_sessions s WHERE s.credential_id = c.id) \
             ORDER BY c.created_at DESC, c.id DESC"
        ))
        .bind(user.0)
        .fetch_all(&mut *conn)
        .await
        .map_err(failed(doing()))?;
        let list_rows: Vec<ListRow> = sqlx::query_as(LISTS_OF_USER)
            .bind(user.0)
            .fetch_all(&mut *conn)
            .await
            .map_err(failed(doing()))?;
        let mut lists: HashMap<i64, Lists> = HashMap::new();
        for row in list_rows {
            lists.entry(row.0).or_default().add(row);
        }
        rows.into_iter()
            .map(|row| {
                let its = lists.remove(&row.id).unwrap_or_default();
                row.info(its)
            })
            .collect()
    }

    /// Credential `id` as listed.
    #[instrument(level = "debug", skip(self))]
    async fn credential(&self, id: CredentialId) -> StoreResult<Option<CredentialInfo>> {
        let doing = || format!("reading credential {id}");
        let mut conn = self.reader.conn().await?;
        let row: Option<CredentialRow> = sqlx::query_as(select_credential!("c.id = ?1"))
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await
            .map_err(failed(doing()))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let lists = lists_of(&mut conn, id).await?;
        row.info(lists).map(Some)
    }

    /// Records that organization `org` authorized credential `id`; idempotent.
    #[instrument(level = "debug", skip(self))]
    async fn authorize_sso(&self, id: CredentialId, org: AccountId) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO credential_sso (credential_id, org_id) VALUES (?1, ?2) \
             ON CONFLICT (credential_id, org_id) DO NOTHING",
        )
        .bind(id.0)
        .bind(org.0)
        .execute(&mut *self.writer.conn().await?)
        .await
        .map_err(failed(format!(
            "authorizing credential {id} for organization {org}"
        )))?;
        self.writer.durable().await?;
        Ok(())
    }

    /// The session's credential and its row, in one transaction.
    #[instrument(level = "debug", skip_all, fields(user = ?credential.user))]
    async fn create_session(
        &self,
        credential: &NewCredential,
        facts: &SessionFacts,
    ) -> StoreResult<CredentialId> {
        let doing = || "storing a web session".to_owned();
        let mut tx = self.begin_write().await?;
        let id = insert_credential(&mut tx, credential).await?;
        sqlx::query(
            "INSERT INTO web_sessions (credential_id, user_agent, address) VALUES (?1, ?2, ?3)",
        )
        .bind(id.0)
        .bind(&facts.user_agent)
        .bind(&facts.address)
        .execute(&mut *tx)
        .await
        .map_err(failed(doing()))?;
        tx.commit().await.map_err(|e| StoreError::new(doing(), e))?;
        Ok(id)
    }

    #[instrument(level = "debug", skip(self))]
    async fn list_sessions(&self, user: AccountId, now: Millis) -> StoreResult<Vec<WebSession>> {
        let rows: Vec<(i64, String, String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT c.id, s.user_agent, s.address, c.created_at, c.expires_at, c.last_used_at \
             FROM web_sessions s JOIN credentials c ON c.id = s.credential_id \
             WHERE c.user_id = ?1 AND c.revoked_at IS NULL \
               AND (c.expires_at IS NULL OR c.expires_at > ?2) \
             ORDER BY c.created_at DESC, c.id DESC",
        )
        .bind(user.0)
        .bind(now)
        .fetch_all(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(format!(
            "listing the web sessions of account {user}"
        )))?;
        Ok(rows
            .into_iter()
            .map(
                |(id, user_agent, address, created_at, expires_at, last_used_at)| WebSession {
                    id: CredentialId(id),
                    facts: SessionFacts {
                        user_agent,
                        address,
                    },
                    created_at,
                    expires_at,
                    last_used_at,
                },
            )
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use berth_core::access::Role;

    use super::*;

    #[test]
    fn pairs_become_a_json_array() {
        assert_eq!(json_pairs(&[]), "[]");
        assert_eq!(
            json_pairs(&[(CredentialId(1), 20), (CredentialId(3), 40)]),
            "[[1,20],[3,40]]"
        );
    }

    #[test]
    fn kind_and_grant_must_match() {
        let credential = NewCredential {
            kind: TokenKind::Classic,
            hash: vec![1],
            user: Some(AccountId(1)),
            note: String::new(),
            grant: Grant::Job {
                repository: RepoId(1),
                owner: AccountId(1),
                permission: Role::Read,
            },
            expires_at: None,
            created_at: 0,
        };
        assert!(GrantColumns::of(&credential).is_err());
        let admin = NewCredential {
            kind: TokenKind::Job,
            grant: Grant::Job {
                repository: RepoId(1),
                owner: AccountId(1),
                permission: Role::Admin,
            },
            ..credential
        };
        assert!(GrantColumns::of(&admin).is_err());
    }

    #[tokio::test]
    async fn resolving_only_probes_indexes() {
        for sql in [
            select_credential!("c.token_hash = ?1"),
            select_credential!("c.id = ?1"),
            LISTS_OF_ONE,
            LISTS_OF_USER,
        ] {
            assert_eq!(
                crate::access::full_scans(sql).await,
                Vec::<String>::new(),
                "{sql}"
            );
        }
    }
}
