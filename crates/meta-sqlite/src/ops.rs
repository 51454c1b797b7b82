//! What the operator's tools and the readiness check need of the database as a whole: the
//! health probe, an online backup, and the records `berth fsck` checks blobs and manifests
//! against. Read-only except the backup's copy.

use std::path::Path;

use async_trait::async_trait;
use berth_core::digest::Digest;
use berth_core::error::{StoreError, StoreErrorKind};
use berth_core::ports::{HealthProbe, LiveManifest, StoreResult};
use bytes::Bytes;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{ConnectOptions as _, Connection as _};

use crate::store::{SqliteMetadataStore, failed, from_sql, parse_digest};

#[async_trait]
impl HealthProbe for SqliteMetadataStore {
    /// A query on a read connection, then the database file opened for reading and writing:
    /// open connections keep answering after the file is moved away or its directory is
    /// locked, so the file itself is checked too.
    async fn probe(&self) -> StoreResult<()> {
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(&mut *self.reader.conn().await?)
            .await
            .map_err(failed("probing the metadata database"))?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map(drop)
                .map_err(|e| {
                    StoreError::of_kind(
                        StoreErrorKind::Unavailable,
                        format!("opening the metadata database {}", path.display()),
                        e,
                    )
                })
        })
        .await
        .map_err(|e| StoreError::new("probing the metadata database", e))?
    }
}

impl SqliteMetadataStore {
    /// Copies the database to `dest` (which must not exist) while it stays in use: `VACUUM
    /// INTO` through a connection of its own reads one consistent snapshot, so writers go on
    /// and the copy is whole. The copy is left in rollback-journal mode, one self-contained
    /// file. Returns every blob the copy records (digest and size), which are the blobs a
    /// backup must hold beside it.
    pub async fn backup_to(&self, dest: &Path) -> Result<Vec<(Digest, u64)>, StoreError> {
        let doing = || format!("copying the metadata database to {}", dest.display());
        let dest_text = dest
            .to_str()
            .ok_or_else(|| StoreError::new(doing(), "the destination path is not UTF-8"))?;
        let mut live = SqliteConnectOptions::new()
            .filename(&*self.path)
            .busy_timeout(std::time::Duration::from_secs(30))
            .connect()
            .await
            .map_err(failed(doing()))?;
        sqlx::query("VACUUM INTO ?1")
            .bind(dest_text)
            .execute(&mut live)
            .await
            .map_err(failed(doing()))?;
        live.close().await.map_err(failed(doing()))?;
        let mut copy = SqliteConnectOptions::new()
            .filename(dest)
            .journal_mode(SqliteJournalMode::Delete)
            .connect()
            .await
            .map_err(failed(format!("opening the copy {}", dest.display())))?;
        // Blobs referenced by nothing are garbage collection's, which may delete their
        // bytes while the copy runs: the backup leaves them out.
        sqlx::query(
            "DELETE FROM blobs AS b WHERE b.deleting_at IS NOT NULL OR ( \
                 NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest) \
                 AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.blob_digest = b.digest) \
                 AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.verified_digest = b.digest))",
        )
        .execute(&mut copy)
        .await
        .map_err(failed(doing()))?;
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT digest, size FROM blobs")
            .fetch_all(&mut copy)
            .await
            .map_err(failed(format!(
                "listing the blobs {} records",
                dest.display()
            )))?;
        copy.close().await.map_err(failed(doing()))?;
        rows.iter()
            .map(|(digest, size)| Ok((parse_digest(digest)?, from_sql(*size, "blob size")?)))
            .collect()
    }

    /// Every blob the database records as stored: digest and size.
    pub async fn blob_records(&self) -> Result<Vec<(Digest, u64)>, StoreError> {
        // Not those garbage collection is deleting: their bytes may be gone already.
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT digest, size FROM blobs WHERE deleting_at IS NULL")
                .fetch_all(&mut *self.reader.conn().await?)
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
        .fetch_all(&mut *self.reader.conn().await?)
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
        .fetch_all(&mut *self.reader.conn().await?)
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
