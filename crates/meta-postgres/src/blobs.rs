//! Blob links: which repository holds which blob.

use async_trait::async_trait;
use berth_core::digest::Digest;
use berth_core::error::StoreError;
use berth_core::name::RepoName;
use berth_core::ports::StoreResult;
use berth_core::ports::{BlobLinkStore, Linked};
use sqlx::{PgConnection, Postgres, Transaction};
use tracing::instrument;

use crate::quotas::link_counted;
use crate::registry_sql::ensure_repository;
use crate::store::{PgMetadataStore, failed, from_sql, now_millis, to_sql};

#[async_trait]
impl BlobLinkStore for PgMetadataStore {
    /// The size of `digest` if `repo` holds it: one indexed join.
    #[instrument(level = "debug", skip(self), fields(%repo, %digest))]
    async fn linked_blob_size(&self, repo: &RepoName, digest: &Digest) -> StoreResult<Option<u64>> {
        let repo = repo.as_str();
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT b.size FROM repositories r \
             JOIN repository_blobs rb ON rb.repository_id = r.id \
             JOIN blobs b ON b.digest = rb.digest \
             WHERE r.name = $1 AND rb.digest = $2",
        )
        .bind(repo)
        .bind(digest.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(failed(format!("looking up blob {digest} in {repo}")))?;
        size.map(|s| from_sql(s, "blob size")).transpose()
    }

    /// Links `digest` to `repo` in its own transaction, within the account's quota.
    #[instrument(level = "debug", skip(self), fields(%repo, %digest))]
    async fn link_blob(&self, repo: &RepoName, digest: &Digest, size: u64) -> StoreResult<Linked> {
        let repo = repo.as_str();
        let doing = || format!("linking blob {digest} to {repo}");
        let mut tx = self.pool.begin().await.map_err(failed(doing()))?;
        // A refused link rolls back now rather than when the connection is next used: the
        // blob's row lock goes with it, so a garbage-collection pass does not skip the blob.
        let linked = match link_counted(&mut tx, repo, digest, size).await {
            Ok(linked) => linked,
            Err(err) => {
                let _ = tx.rollback().await;
                return Err(err);
            }
        };
        finish(tx, linked, doing).await
    }

    /// Removes the link from `repo` to `digest`; false when there was none. A manifest push
    /// that checked the link holds it `FOR SHARE`, so this waits for that push to commit.
    #[instrument(level = "debug", skip(self), fields(%repo, %digest))]
    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> StoreResult<bool> {
        let repo = repo.as_str();
        let done = sqlx::query(
            "DELETE FROM repository_blobs \
             WHERE repository_id = (SELECT id FROM repositories WHERE name = $1) AND digest = $2",
        )
        .bind(repo)
        .bind(digest.as_str())
        .execute(&self.pool)
        .await
        .map_err(failed(format!("unlinking blob {digest} from {repo}")))?;
        Ok(done.rows_affected() > 0)
    }
}

/// Records blob `digest` of `size` bytes and links it to `repo` (created if new), inside the
/// caller's transaction. The blob's row is taken `FOR NO KEY UPDATE` first, so a garbage
/// collection pass flagging it either sees this link (it waits for the pass, or the pass
/// skips the locked row) or has flagged it already, and the link is refused
/// ([`StoreError::collecting`]): its bytes may be gone. A new reference clears the pass's
/// mark on the blob and makes the link young again.
pub(crate) async fn link_in(
    conn: &mut PgConnection,
    repo: &str,
    digest: &Digest,
    size: u64,
) -> Result<(), StoreError> {
    let repository_id = ensure_repository(conn, repo).await?;
    sqlx::query("INSERT INTO blobs (digest, size) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING")
        .bind(digest.as_str())
        .bind(to_sql(size, "blob size")?)
        .execute(&mut *conn)
        .await
        .map_err(failed(format!("recording blob {digest}")))?;
    let state: Option<(bool, bool)> = sqlx::query_as(
        "SELECT deleting_at IS NOT NULL, unreferenced_since IS NOT NULL FROM blobs \
         WHERE digest = $1 FOR NO KEY UPDATE",
    )
    .bind(digest.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(failed(format!("recording blob {digest}")))?;
    match state {
        // Flagged, or forgotten by a pass since the insert above saw it.
        Some((true, _)) | None => return Err(StoreError::collecting(digest)),
        Some((false, true)) => {
            sqlx::query("UPDATE blobs SET unreferenced_since = NULL WHERE digest = $1")
                .bind(digest.as_str())
                .execute(&mut *conn)
                .await
                .map_err(failed(format!("recording blob {digest}")))?;
        }
        Some((false, false)) => {}
    }
    sqlx::query(
        "INSERT INTO repository_blobs (repository_id, digest, linked_at) VALUES ($1, $2, $3) \
         ON CONFLICT (repository_id, digest) DO UPDATE SET linked_at = excluded.linked_at",
    )
    .bind(repository_id)
    .bind(digest.as_str())
    .bind(now_millis())
    .execute(&mut *conn)
    .await
    .map_err(failed(format!("linking blob {digest} to {repo}")))?;
    Ok(())
}

/// Commits a transaction that linked a blob, or rolls it back when the link went over the
/// account's quota.
pub(crate) async fn finish(
    tx: Transaction<'_, Postgres>,
    linked: Linked,
    doing: impl Fn() -> String,
) -> Result<Linked, StoreError> {
    match linked {
        Linked::Done { .. } => tx.commit().await.map_err(failed(doing()))?,
        Linked::OverQuota { .. } => tx.rollback().await.map_err(failed(doing()))?,
    }
    Ok(linked)
}
