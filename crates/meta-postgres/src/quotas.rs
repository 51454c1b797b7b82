//! Storage quotas: each account's usage (kept by the triggers of migration 0011 as blob
//! links come and go, on any node) and the quota it is checked against when a link is made.

use async_trait::async_trait;
use berth_core::access::AccountId;
use berth_core::digest::Digest;
use berth_core::error::StoreError;
use berth_core::ports::{Linked, Millis, QuotaStore, StorageUsage, StoreResult};
use sqlx::PgConnection;
use tracing::instrument;

use crate::blobs::link_in;
use crate::store::{PgMetadataStore, failed, from_sql, to_sql};

/// Usage and quota of `owner` in one statement: two indexed single-row lookups.
const USAGE: &str = "SELECT \
     (SELECT bytes FROM account_usage WHERE owner = $1), \
     (SELECT q.limit_bytes FROM storage_quotas q JOIN accounts a ON a.id = q.account_id \
      WHERE lower(a.login) = lower($1))";

#[async_trait]
impl QuotaStore for PgMetadataStore {
    #[instrument(level = "debug", skip(self))]
    async fn storage_usage(&self, owner: &str) -> StoreResult<StorageUsage> {
        let row: (Option<i64>, Option<i64>) = sqlx::query_as(USAGE)
            .bind(owner)
            .fetch_one(&self.pool)
            .await
            .map_err(failed(format!("reading the storage usage of {owner}")))?;
        usage(row)
    }

    #[instrument(level = "debug", skip(self), fields(%digest))]
    async fn account_holds_blob(&self, owner: &str, digest: &Digest) -> StoreResult<bool> {
        let held: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM account_blobs WHERE owner = $1 AND digest = $2")
                .bind(owner)
                .bind(digest.as_str())
                .fetch_optional(&self.pool)
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
        let statement = match limit {
            Some(limit) => sqlx::query(
                "INSERT INTO storage_quotas (account_id, limit_bytes, updated_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (account_id) \
                 DO UPDATE SET limit_bytes = EXCLUDED.limit_bytes, updated_at = EXCLUDED.updated_at",
            )
            .bind(account.0)
            .bind(to_sql(limit, "storage quota")?)
            .bind(now),
            None => sqlx::query("DELETE FROM storage_quotas WHERE account_id = $1").bind(account.0),
        };
        statement.execute(&self.pool).await.map_err(failed(format!(
            "setting the storage quota of account {account}"
        )))?;
        Ok(())
    }
}

fn usage((used, limit): (Option<i64>, Option<i64>)) -> StoreResult<StorageUsage> {
    Ok(StorageUsage {
        used: from_sql(used.unwrap_or(0), "storage usage")?,
        limit: limit.map(|l| from_sql(l, "storage quota")).transpose()?,
    })
}

/// Links `digest` of `size` bytes into `repo` inside the caller's transaction. Under a
/// quota the account's usage row is locked first (created if missing), so no other link of
/// the account lands between the usage read before the link and the one after, on any node:
/// when the link takes the usage over the quota, the answer is [`Linked::OverQuota`] and the
/// caller rolls back. Without a quota it only links (the triggers keep the usage all the
/// same, and lock its row themselves).
pub(crate) async fn link_counted(
    conn: &mut PgConnection,
    repo: &str,
    digest: &Digest,
    size: u64,
) -> Result<Linked, StoreError> {
    let owner = repo.split('/').next().unwrap_or(repo);
    let doing = || format!("reading the storage usage of {owner}");
    let first: (Option<i64>, Option<i64>) = sqlx::query_as(USAGE)
        .bind(owner)
        .fetch_one(&mut *conn)
        .await
        .map_err(failed(doing()))?;
    let first = usage(first)?;
    if first.limit.is_none() {
        link_in(&mut *conn, repo, digest, size).await?;
        return Ok(Linked::Done {
            before: first.used,
            after: first.used,
            limit: None,
        });
    }
    sqlx::query(
        "INSERT INTO account_usage (owner, bytes) VALUES ($1, 0) ON CONFLICT (owner) DO NOTHING",
    )
    .bind(owner)
    .execute(&mut *conn)
    .await
    .map_err(failed(doing()))?;
    let before: i64 =
        sqlx::query_scalar("SELECT bytes FROM account_usage WHERE owner = $1 FOR UPDATE")
            .bind(owner)
            .fetch_one(&mut *conn)
            .await
            .map_err(failed(doing()))?;
    link_in(&mut *conn, repo, digest, size).await?;
    let after: (Option<i64>, Option<i64>) = sqlx::query_as(USAGE)
        .bind(owner)
        .fetch_one(&mut *conn)
        .await
        .map_err(failed(doing()))?;
    let after = usage(after)?;
    let before = from_sql(before, "storage usage")?;
    Ok(match after.limit {
        Some(limit) if after.used > before && after.used > limit => Linked::OverQuota {
            used: before,
            limit,
            adds: after.used - before,
        },
        _ => Linked::Done {
            before,
            after: after.used,
            limit: after.limit,
        },
    })
}
