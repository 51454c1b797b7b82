//! Storage quotas: each account's usage (kept by the triggers of migration 0012 as blob
//! links come and go) and the quota it is checked against when a link is made.

use async_trait::async_trait;
use berth_core::access::AccountId;
use berth_core::digest::Digest;
use berth_core::error::StoreError;
use berth_core::ports::{Linked, Millis, QuotaStore, StorageUsage, StoreResult};
use sqlx::Row as _;
use tracing::instrument;

use crate::store::{SqliteMetadataStore, WriteTx, failed, from_sql, now_millis, to_sql};

/// The two columns that read the usage and the quota of account `?1` (of the next two
/// positional parameters, `?` twice, when given `"?"`): two indexed single-row lookups. A
/// macro, so that [`USAGE`], [`LINK`] and the upload checks' statement (`uploads.rs`) are
/// built from the same text.
macro_rules! usage_columns {
    () => {
        usage_columns!("?1")
    };
    ($owner:literal) => {
        concat!(
            "(SELECT bytes FROM account_usage WHERE owner = ",
            $owner,
            "), (SELECT q.limit_bytes FROM storage_quotas q JOIN accounts a ON a.id = q.account_id \
             WHERE a.login = ",
            $owner,
            ")"
        )
    };
}
pub(crate) use usage_columns;

/// Usage and quota of `owner` in one statement.
const USAGE: &str = concat!("SELECT ", usage_columns!());

#[async_trait]
impl QuotaStore for SqliteMetadataStore {
    #[instrument(level = "debug", skip(self))]
    async fn storage_usage(&self, owner: &str) -> StoreResult<StorageUsage> {
        let row: (Option<i64>, Option<i64>) = sqlx::query_as(USAGE)
            .bind(owner)
            .fetch_one(&mut *self.reader.conn().await?)
            .await
            .map_err(failed(format!("reading the storage usage of {owner}")))?;
        usage(row)
    }

    #[instrument(level = "debug", skip(self), fields(%digest))]
    async fn account_holds_blob(&self, owner: &str, digest: &Digest) -> StoreResult<bool> {
        let held: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM account_blobs WHERE owner = ?1 AND digest = ?2")
                .bind(owner)
                .bind(digest.as_str())
                .fetch_optional(&mut *self.reader.conn().await?)
                .await
                .map_err(failed(format!(
                    "looking up blob {digest} in account {owner}"
                )))?;
        Ok(held.is_some())
    }

    #[instrument(level = "debug", skip(self))]
    async fn set_storage_quota(
        &self,
        account: AccountId,
        limit: Option<u64>,
        now: Millis,
    ) -> StoreResult<()> {
        let doing = || format!("setting the storage quota of account {account}");
        let statement = match limit {
            Some(limit) => sqlx::query(
                "INSERT INTO storage_quotas (account_id, limit_bytes, updated_at) \
                 VALUES (?1, ?2, ?3) ON CONFLICT (account_id) \
                 DO UPDATE SET limit_bytes = excluded.limit_bytes, updated_at = excluded.updated_at",
            )
            .bind(account.0)
            .bind(to_sql(limit, "storage quota")?)
            .bind(now),
            None => sqlx::query("DELETE FROM storage_quotas WHERE account_id = ?1").bind(account.0),
        };
        statement
            .execute(&mut *self.writer.conn().await?)
            .await
            .map_err(failed(doing()))?;
        self.writer.durable().await
    }
}

pub(crate) fn usage((used, limit): (Option<i64>, Option<i64>)) -> StoreResult<StorageUsage> {
    Ok(StorageUsage {
        used: from_sql(used.unwrap_or(0), "storage usage")?,
        limit: limit.map(|l| from_sql(l, "storage quota")).transpose()?,
    })
}

/// Ends an upload (if its id is given), then links a blob into a repository (see
/// [`link_counted`]). Six statements sent as one, so that SQLite's thread runs them all for
/// one round trip to it instead of six. Their parameters are positional (`?`), bound in the
/// order they appear: sqlx 0.9 takes the numbers a statement skips (`?3` alone skips 1 and 2)
/// for positional parameters, and in a later statement runs out of arguments before binding
/// its numbered ones. Each row says what it is: the usage before the link
/// (`before`), a flag on the blob (`flagged`: only when its row existed with a mark of garbage
/// collection's), the usage after (`after`).
const LINK: &str = concat!(
    "DELETE FROM uploads WHERE id = ?; ",
    "SELECT 'before', ",
    usage_columns!("?"),
    "; INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING; ",
    "INSERT INTO blobs (digest, size) VALUES (?, ?) \
     ON CONFLICT (digest) DO UPDATE SET unreferenced_since = NULL \
     WHERE blobs.unreferenced_since IS NOT NULL OR blobs.deleting_at IS NOT NULL \
     RETURNING 'flagged', deleting_at IS NOT NULL, NULL; ",
    "INSERT INTO repository_blobs (repository_id, digest, linked_at) \
     SELECT id, ?, ? FROM repositories WHERE name = ? \
     ON CONFLICT (repository_id, digest) DO UPDATE SET linked_at = excluded.linked_at; ",
    "SELECT 'after', ",
    usage_columns!("?")
);

/// Links `digest` of `size` bytes into `repo` inside the caller's write transaction, ending
/// upload `ending` in it when given. The repository is created if new. A new reference
/// clears garbage collection's mark on the blob and makes the link young again; a blob
/// garbage collection has flagged is refused ([`StoreError::collecting`]), and the caller's
/// transaction, dropped, undoes the rest.
///
/// It reads the account's usage and quota before and after the link; when the link took the
/// usage over the quota the answer is [`Linked::OverQuota`] and the caller rolls back.
/// (SQLite has one writer, so nothing changes the usage between the two reads but this
/// link.) The triggers of migration 0012 keep the usage.
pub(crate) async fn link_counted(
    tx: &mut WriteTx,
    repo: &str,
    digest: &Digest,
    size: u64,
    ending: Option<&str>,
) -> Result<Linked, StoreError> {
    let owner = repo.split('/').next().unwrap_or(repo);
    let doing = || format!("linking blob {digest} to {repo}");
    let now = now_millis();
    let rows = sqlx::query(tx.opening(LINK))
        .bind(ending)
        .bind(owner)
        .bind(owner)
        .bind(repo)
        .bind(now)
        .bind(digest.as_str())
        .bind(to_sql(size, "blob size")?)
        .bind(digest.as_str())
        .bind(now)
        .bind(repo)
        .bind(owner)
        .bind(owner)
        .fetch_all(&mut **tx)
        .await
        .map_err(failed(doing()))?;
    let (mut before, mut after) = (None, None);
    for row in &rows {
        let what: &str = row.try_get(0).map_err(failed(doing()))?;
        let columns = || -> Result<(Option<i64>, Option<i64>), sqlx::Error> {
            Ok((row.try_get(1)?, row.try_get(2)?))
        };
        match what {
            "before" => before = Some(usage(columns().map_err(failed(doing()))?)?),
            "after" => after = Some(usage(columns().map_err(failed(doing()))?)?),
            _ => {
                let flagged: bool = row.try_get(1).map_err(failed(doing()))?;
                if flagged {
                    return Err(StoreError::collecting(digest));
                }
            }
        }
    }
    let (Some(before), Some(after)) = (before, after) else {
        return Err(StoreError::new(
            doing(),
            "the usage was not read around the link",
        ));
    };
    Ok(match before.limit {
        None => Linked::Done {
            before: before.used,
            after: before.used,
            limit: None,
        },
        Some(_) => outcome(before.used, after.used, after.limit),
    })
}

/// [`Linked`] from the usage before and after a link and the quota.
fn outcome(before: u64, after: u64, limit: Option<u64>) -> Linked {
    match limit {
        Some(limit) if after > before && after > limit => Linked::OverQuota {
            used: before,
            limit,
            adds: after - before,
        },
        _ => Linked::Done {
            before,
            after,
            limit,
        },
    }
}
