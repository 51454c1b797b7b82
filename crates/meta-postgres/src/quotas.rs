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

/// The two columns that read the usage and the quota of account `$1`: two indexed
/// single-row lookups. A macro, so that [`USAGE`] and the upload checks' statement
/// (`uploads.rs`) are built from the same text.
macro_rules! usage_columns {
    () => {
        "(SELECT bytes FROM account_usage WHERE owner = $1), \
         (SELECT q.limit_bytes FROM storage_quotas q JOIN accounts a ON a.id = q.account_id \
          WHERE lower(a.login) = lower($1))"
    };
}
pub(crate) use usage_columns;

/// Usage and quota of `owner` in one statement.
const USAGE: &str = concat!("SELECT ", usage_columns!());

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

pub(crate) fn usage((used, limit): (Option<i64>, Option<i64>)) -> StoreResult<StorageUsage> {
    Ok(StorageUsage {
        used: from_sql(used.unwrap_or(0), "storage usage")?,
        limit: limit.map(|l| from_sql(l, "storage quota")).transpose()?,
    })
}

/// Links `digest` of `size` bytes into `repo` inside the caller's transaction. Under a
/// quota it learns what the link added (the trigger adds it to the transaction's
/// `berth.bytes_linked` setting) and reads the usage after it: a link that added bytes
/// holds the account's usage row locked (the trigger locked it), so no other link of the
/// account, on any node, lands before this transaction ends, and when the usage is over the
/// quota the answer is [`Linked::OverQuota`] and the caller rolls back. Nothing is locked
/// before the link, so locks are taken in the order garbage collection takes them (links,
/// then usage rows). Without a quota it only links: the triggers keep the usage all the same.
pub(crate) async fn link_counted(
    conn: &mut PgConnection,
    repo: &str,
    digest: &Digest,
    size: u64,
) -> Result<Linked, StoreError> {
    let owner = repo.split('/').next().unwrap_or(repo);
    let doing = || format!("reading the storage usage of {owner}");
    let (used, limit, _): (Option<i64>, Option<i64>, String) = sqlx::query_as(
        "SELECT          (SELECT bytes FROM account_usage WHERE owner = $1),          (SELECT q.limit_bytes FROM storage_quotas q JOIN accounts a ON a.id = q.account_id           WHERE lower(a.login) = lower($1)),          set_config('berth.bytes_linked', '0', true)",
    )
    .bind(owner)
    .fetch_one(&mut *conn)
    .await
    .map_err(failed(doing()))?;
    let first = usage((used, limit))?;
    link_in(&mut *conn, repo, digest, size).await?;
    let Some(limit) = first.limit else {
        return Ok(Linked::Done {
            before: first.used,
            after: first.used,
            limit: None,
        });
    };
    let (after, added): (Option<i64>, Option<String>) = sqlx::query_as(
        "SELECT (SELECT bytes FROM account_usage WHERE owner = $1),          current_setting('berth.bytes_linked', true)",
    )
    .bind(owner)
    .fetch_one(&mut *conn)
    .await
    .map_err(failed(doing()))?;
    let after = from_sql(after.unwrap_or(0), "storage usage")?;
    let added: u64 = added
        .as_deref()
        .unwrap_or("0")
        .parse()
        .map_err(|e| StoreError::new(doing(), e))?;
    let before = after.saturating_sub(added);
    Ok(if added > 0 && after > limit {
        Linked::OverQuota {
            used: before,
            limit,
            adds: added,
        }
    } else {
        Linked::Done {
            before,
            after,
            limit: Some(limit),
        }
    })
}
