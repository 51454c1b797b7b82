//! Blob links: which repository holds which blob.

use async_trait::async_trait;
use berth_core::digest::Digest;
use berth_core::error::StoreError;
use berth_core::name::RepoName;
use berth_core::ports::StoreResult;
use berth_core::ports::{BlobLinkStore, Linked};
use sqlx::SqliteConnection;
use tracing::instrument;

use crate::quotas::link_counted;
use crate::store::{
    SqliteMetadataStore, WriteTx, ensure_repository, failed, from_sql, now_millis, to_sql,
};

#[async_trait]
impl BlobLinkStore for SqliteMetadataStore {
    /// The size of `digest` if `repo` holds it: one indexed join.
    #[instrument(level = "debug", skip(self), fields(%repo, %digest))]
    async fn linked_blob_size(&self, repo: &RepoName, digest: &Digest) -> StoreResult<Option<u64>> {
        let repo = repo.as_str();
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT b.size FROM repositories r \
             JOIN repository_blobs rb ON rb.repository_id = r.id \
             JOIN blobs b ON b.digest = rb.digest \
             WHERE r.name = ?1 AND rb.digest = ?2",
        )
        .bind(repo)
        .bind(digest.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(failed(format!("looking up blob {digest} in {repo}")))?;
        size.map(|s| from_sql(s, "blob size")).transpose()
    }

    /// Links `digest` to `repo` in its own transaction, within the account's quota.
    #[instrument(level = "debug", skip(self), fields(%repo, %digest))]
    async fn link_blob(&self, repo: &RepoName, digest: &Digest, size: u64) -> StoreResult<Linked> {
        let repo = repo.as_str();
        let mut tx = self.begin_write().await?;
        let linked = link_counted(&mut tx, repo, digest, size).await?;
        finish(tx, linked, || format!("linking blob {digest} to {repo}")).await
    }

    /// Removes the link from `repo` to `digest`; false when there was none.
    #[instrument(level = "debug", skip(self), fields(%repo, %digest))]
    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> StoreResult<bool> {
        let repo = repo.as_str();
        let done = sqlx::query(
            "DELETE FROM repository_blobs \
             WHERE repository_id = (SELECT id FROM repositories WHERE name = ?1) AND digest = ?2",
        )
        .bind(repo)
        .bind(digest.as_str())
        .execute(self.writer.pool())
        .await
        .map_err(failed(format!("unlinking blob {digest} from {repo}")))?;
        self.writer.durable().await?;
        Ok(done.rows_affected() > 0)
    }
}

/// Records blob `digest` of `size` bytes and links it to `repo` (whose id the caller `found`,
/// or created here if new), inside the caller's write transaction. A new reference clears garbage collection's mark on the blob
/// and makes the link young again; a blob garbage collection has flagged is refused
/// ([`StoreError::collecting`]): its bytes may be gone already.
pub(crate) async fn link_in(
    conn: &mut SqliteConnection,
    repo: &str,
    found: Option<i64>,
    digest: &Digest,
    size: u64,
) -> Result<(), StoreError> {
    let repository_id = ensure_repository(conn, repo, found).await?;
    let flagged: Option<bool> = sqlx::query_scalar(
        "INSERT INTO blobs (digest, size) VALUES (?1, ?2) \
         ON CONFLICT (digest) DO UPDATE SET unreferenced_since = NULL \
         WHERE blobs.unreferenced_since IS NOT NULL OR blobs.deleting_at IS NOT NULL \
         RETURNING deleting_at IS NOT NULL",
    )
    .bind(digest.as_str())
    .bind(to_sql(size, "blob size")?)
    .fetch_optional(&mut *conn)
    .await
    .map_err(failed(format!("recording blob {digest}")))?;
    if flagged == Some(true) {
        return Err(StoreError::collecting(digest));
    }
    sqlx::query(
        "INSERT INTO repository_blobs (repository_id, digest, linked_at) VALUES (?1, ?2, ?3) \
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
    tx: WriteTx,
    linked: Linked,
    doing: impl Fn() -> String,
) -> Result<Linked, StoreError> {
    match linked {
        Linked::Done { .. } => tx.commit().await.map_err(failed(doing()))?,
        Linked::OverQuota { .. } => tx.rollback().await.map_err(failed(doing()))?,
    }
    Ok(linked)
}
