//! What the operator's tools and the readiness check need of the database as a whole: the
//! health probe and the records `berth fsck` checks blobs and manifests against. Read-only.

use async_trait::async_trait;
use berth_core::digest::Digest;
use berth_core::error::StoreError;
use berth_core::ports::{HealthProbe, LiveManifest, StoreResult};
use bytes::Bytes;

use crate::store::{PgMetadataStore, failed, from_sql, parse_digest};

#[async_trait]
impl HealthProbe for PgMetadataStore {
    /// A query through the pool: it fails when the server is down, out of connections or
    /// refusing this node.
    async fn probe(&self) -> StoreResult<()> {
        sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(&self.pool)
            .await
            .map_err(failed("probing the PostgreSQL database"))?;
        Ok(())
    }
}

impl PgMetadataStore {
    /// Every blob the database records as stored: digest and size.
    pub async fn blob_records(&self) -> Result<Vec<(Digest, u64)>, StoreError> {
        // Not those garbage collection is deleting: their bytes may be gone already.
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT digest, size FROM blobs WHERE deleting_at IS NULL")
                .fetch_all(&self.pool)
                .await
                .map_err(failed("listing stored blobs"))?;
        rows.iter()
            .map(|(digest, size)| Ok((parse_digest(digest)?, from_sql(*size, "blob size")?)))
            .collect()
    }

    /// Every blob link: which repository (by name) holds which blob.
    pub async fn blob_links(&self) -> Result<Vec<(String, Digest)>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT r.name, rb.digest FROM repository_blobs rb \
             JOIN repositories r ON r.id = rb.repository_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(failed("listing blob links"))?;
        rows.into_iter()
            .map(|(repo, digest)| Ok((repo, parse_digest(&digest)?)))
            .collect()
    }

    /// Every manifest not deleted, with its bytes.
    pub async fn live_manifests(&self) -> Result<Vec<LiveManifest>, StoreError> {
        let rows: Vec<(String, String, String, Vec<u8>)> = sqlx::query_as(
            "SELECT r.name, m.digest, m.media_type, m.content FROM manifests m \
             JOIN repositories r ON r.id = m.repository_id WHERE m.deleted_at IS NULL \
             ORDER BY r.name, m.digest",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(failed("listing manifests"))?;
        rows.into_iter()
            .map(|(repository, digest, media_type, content)| {
                Ok(LiveManifest {
                    repository,
                    digest: parse_digest(&digest)?,
                    media_type,
                    content: Bytes::from(content),
                })
            })
            .collect()
    }
}
