//! Storage quotas: each account's usage (kept by the triggers of migration 0012 as blob
//! links come and go) and the quota it is checked against when a link is made.

use async_trait::async_trait;
use berth_core::access::AccountId;
use berth_core::digest::Digest;
use berth_core::error::StoreError;
use berth_core::ports::{Linked, Millis, QuotaStore, StorageUsage, StoreResult};
use sqlx::SqliteConnection;
use tracing::instrument;

use crate::blobs::link_in;
use crate::store::{SqliteMetadataStore, failed, from_sql, to_sql};

/// The two columns that read the usage and the quota of account `?1`: two indexed
/// single-row lookups. A macro, so that [`USAGE`] and the upload checks' statement
/// (`uploads.rs`) are built from the same text.
macro_rules! usage_columns {
    () => {
        "(SELECT bytes FROM account_usage WHERE owner = ?1), \
         (SELECT q.limit_bytes FROM storage_quotas q JOIN accounts a ON a.id = q.account_id \
          WHERE a.login = ?1)"
    };
}
pub(crate) use usage_columns;

/// Usage and quota of `owner` in one statement.
const USAGE: &str = concat!("SELECT ", usage_columns!());

/// Usage and quota of owner `?1`, and the id of repository `?2` (`NULL`: new).
const USAGE_AND_REPOSITORY: &str = concat!(
    "SELECT ",
    usage_columns!(),
    ", (SELECT id FROM repositories WHERE name = ?2)"
);

#[async_trait]
impl QuotaStore for SqliteMetadataStore {
    #[instrument(level = "debug", skip(self))]
    async fn storage_usage(&self, owner: &str) -> StoreResult<StorageUsage> {
        let row: (Option<i64>, Option<i64>) = sqlx::query_as(USAGE)
            .bind(owner)
            .fetch_one(&self.reader)
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
                .fetch_optional(&self.reader)
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
            .execute(self.writer.pool())
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

/// Links `digest` of `size` bytes into `repo` inside the caller's write transaction. It reads
/// the account's usage and quota, with the repository's id, in one statement; under a quota
/// it reads the usage again after the link, and when the link took it over the quota the
/// answer is [`Linked::OverQuota`] and the caller rolls back. (SQLite has one writer, so
/// nothing changes the usage between the two reads but this link.) Without a quota it only
/// links: the triggers keep the usage all the same.
pub(crate) async fn link_counted(
    conn: &mut SqliteConnection,
    repo: &str,
    digest: &Digest,
    size: u64,
) -> Result<Linked, StoreError> {
    let owner = repo.split('/').next().unwrap_or(repo);
    let (used, limit, repository_id): (Option<i64>, Option<i64>, Option<i64>) =
        sqlx::query_as(USAGE_AND_REPOSITORY)
            .bind(owner)
            .bind(repo)
            .fetch_one(&mut *conn)
            .await
            .map_err(failed(format!("reading the storage usage of {owner}")))?;
    let before = usage((used, limit))?;
    link_in(&mut *conn, repo, repository_id, digest, size).await?;
    if before.limit.is_none() {
        return Ok(Linked::Done {
            before: before.used,
            after: before.used,
            limit: None,
        });
    }
    let after = read_usage(conn, owner).await?;
    Ok(outcome(before.used, after.used, after.limit))
}

async fn read_usage(conn: &mut SqliteConnection, owner: &str) -> Result<StorageUsage, StoreError> {
    let row: (Option<i64>, Option<i64>) =
        sqlx::query_as(USAGE)
            .bind(owner)
            .fetch_one(conn)
            .await
            .map_err(failed(format!("reading the storage usage of {owner}")))?;
    usage(row)
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
