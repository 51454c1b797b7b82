//! Blob links: which repository holds which blob.

use async_trait::async_trait;
use berth_core::digest::Digest;
use berth_core::error::StoreError;
use berth_core::name::RepoName;
use berth_core::ports::StoreResult;
use berth_core::ports::{BlobLinkStore, Linked};
use tracing::instrument;

use crate::quotas::link_counted;
use crate::store::{SqliteMetadataStore, WriteTx, failed, from_sql};

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
        .fetch_optional(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(format!("looking up blob {digest} in {repo}")))?;
        size.map(|s| from_sql(s, "blob size")).transpose()
    }

    /// Links `digest` to `repo` in its own transaction, within the account's quota.
    #[instrument(level = "debug", skip(self), fields(%repo, %digest))]
    async fn link_blob(&self, repo: &RepoName, digest: &Digest, size: u64) -> StoreResult<Linked> {
        let repo = repo.as_str();
        let mut tx = self.begin_write_with_first().await?;
        let linked = link_counted(&mut tx, repo, digest, size, None).await?;
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
        .execute(&mut *self.writer.conn().await?)
        .await
        .map_err(failed(format!("unlinking blob {digest} from {repo}")))?;
        self.writer.durable().await?;
        Ok(done.rows_affected() > 0)
    }
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
