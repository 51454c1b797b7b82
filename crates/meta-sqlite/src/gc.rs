//! Garbage collection's queries (ARCHITECTURE.md "Garbage collection"). Candidates are found
//! with the reader, a page at a time, and changed in short write transactions that check them
//! again: SQLite's one writer means a link or flag written there cannot interleave with a
//! push's check-and-write, and the reader's scans never hold the writer.

use async_trait::async_trait;
use berth_core::digest::Digest;
use berth_core::error::StoreError;
use berth_core::ports::{GcStore, Millis, SizedBlob, StoreResult};
use tracing::instrument;

use crate::store::{SqliteMetadataStore, failed, from_sql, json_list, parse_digest, to_sql};

/// Rows a scan reads, and a write transaction changes, at a time.
const PAGE: i64 = 2_000;

/// The condition "blob `b` is referenced by nothing": no link, no manifest (live or deleted),
/// no verified upload.
const UNREFERENCED: &str = "NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest) \
     AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.blob_digest = b.digest) \
     AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.verified_digest = b.digest)";

/// The condition "link `rb` is used by no manifest of its repository".
const UNUSED_LINK: &str = "NOT EXISTS (SELECT 1 FROM manifest_blobs mb \
     WHERE mb.blob_digest = rb.digest AND mb.repository_id = rb.repository_id)";

#[async_trait]
impl GcStore for SqliteMetadataStore {
    #[instrument(level = "debug", skip(self), fields(%digest))]
    async fn claim_blob(&self, digest: &Digest) -> StoreResult<()> {
        let state: Option<(bool, bool)> = sqlx::query_as(
            "SELECT deleting_at IS NOT NULL, unreferenced_since IS NOT NULL FROM blobs WHERE digest = ?1",
        )
        .bind(digest.as_str())
        .fetch_optional(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(format!("claiming blob {digest}")))?;
        match state {
            None | Some((false, false)) => Ok(()),
            Some((true, _)) => Err(StoreError::collecting(digest)),
            Some((false, true)) => {
                let cleared = sqlx::query(
                    "UPDATE blobs SET unreferenced_since = NULL \
                     WHERE digest = ?1 AND deleting_at IS NULL",
                )
                .bind(digest.as_str())
                .execute(&mut *self.writer.unsynced().await?)
                .await
                .map_err(failed(format!("claiming blob {digest}")))?
                .rows_affected();
                let flagged: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM blobs WHERE digest = ?1 AND deleting_at IS NOT NULL)",
                )
                .bind(digest.as_str())
                .fetch_one(&mut *self.writer.unsynced().await?)
                .await
                .map_err(failed(format!("claiming blob {digest}")))?;
                if cleared == 0 && flagged {
                    Err(StoreError::collecting(digest))
                } else {
                    Ok(())
                }
            }
        }
    }

    #[instrument(level = "debug", skip(self))]
    async fn collect_links(&self, cutoff: Millis, dry_run: bool) -> StoreResult<u64> {
        let doing = || "collecting unused blob links".to_owned();
        let mut after: (i64, String) = (i64::MIN, String::new());
        let mut total = 0;
        loop {
            // A page of links in key order, and the unused old ones among them.
            let page: Vec<(i64, String, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT rb.repository_id, rb.digest, rb.linked_at <= ?3 AND {UNUSED_LINK} \
                 FROM repository_blobs rb \
                 WHERE (rb.repository_id, rb.digest) > (?1, ?2) \
                 ORDER BY rb.repository_id, rb.digest LIMIT ?4"
            )))
            .bind(after.0)
            .bind(&after.1)
            .bind(cutoff)
            .bind(PAGE)
            .fetch_all(&mut *self.reader.conn().await?)
            .await
            .map_err(failed(doing()))?;
            let Some(last) = page.last() else {
                return Ok(total);
            };
            after = (last.0, last.1.clone());
            let done = page.len() < PAGE as usize;
            let unused: Vec<(i64, String)> = page
                .into_iter()
                .filter(|row| row.2)
                .map(|(id, digest, _)| (id, digest))
                .collect();
            if unused.is_empty() {
            } else if dry_run {
                total += unused.len() as u64;
            } else {
                let keys =
                    serde_json::to_string(&unused).map_err(|e| StoreError::new(doing(), e))?;
                let mut tx = self.begin_write().await?;
                total += sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM repository_blobs AS rb \
                     WHERE (rb.repository_id, rb.digest) IN \
                         (SELECT value ->> 0, value ->> 1 FROM json_each(?1)) \
                       AND rb.linked_at <= ?2 AND {UNUSED_LINK}"
                )))
                .bind(keys)
                .bind(cutoff)
                .execute(&mut *tx)
                .await
                .map_err(failed(doing()))?
                .rows_affected();
                tx.commit().await.map_err(failed(doing()))?;
            }
            if done {
                return Ok(total);
            }
        }
    }

    #[instrument(level = "debug", skip(self))]
    async fn mark_unreferenced(&self, now: Millis) -> StoreResult<(u64, u64)> {
        let doing = || "marking unreferenced blobs".to_owned();
        let mut after = String::new();
        let mut marked = 0;
        loop {
            let page: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT b.digest FROM blobs b \
                 WHERE b.digest > ?1 AND b.unreferenced_since IS NULL AND b.deleting_at IS NULL \
                   AND {UNREFERENCED} \
                 ORDER BY b.digest LIMIT ?2"
            )))
            .bind(&after)
            .bind(PAGE)
            .fetch_all(&mut *self.reader.conn().await?)
            .await
            .map_err(failed(doing()))?;
            let Some(last) = page.last() else { break };
            after = last.clone();
            let done = page.len() < PAGE as usize;
            let mut tx = self.begin_write().await?;
            marked += sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE blobs AS b SET unreferenced_since = ?2 \
                 WHERE b.digest IN (SELECT value FROM json_each(?1)) \
                   AND b.unreferenced_since IS NULL AND b.deleting_at IS NULL AND {UNREFERENCED}"
            )))
            .bind(serde_json::to_string(&page).map_err(|e| StoreError::new(doing(), e))?)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(failed(doing()))?
            .rows_affected();
            tx.commit().await.map_err(failed(doing()))?;
            if done {
                break;
            }
        }
        // Marked blobs referenced again (a path that made a reference without clearing it).
        let cleared = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE blobs AS b SET unreferenced_since = NULL \
             WHERE b.unreferenced_since IS NOT NULL AND b.deleting_at IS NULL AND NOT ({UNREFERENCED})"
        )))
        .execute(&mut *self.writer.conn().await?)
        .await
        .map_err(failed(doing()))?
        .rows_affected();
        self.writer.durable().await?;
        Ok((marked, cleared))
    }

    #[instrument(level = "debug", skip(self))]
    async fn doom_blobs(
        &self,
        cutoff: Millis,
        after: Option<&Digest>,
        limit: usize,
        dry_run: bool,
    ) -> StoreResult<Vec<SizedBlob>> {
        let doing = || "choosing blobs to delete".to_owned();
        let after = after.map_or("", Digest::as_str);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let candidates = format!(
            "SELECT b.digest FROM blobs b \
             WHERE b.digest > ?1 AND (b.deleting_at IS NOT NULL \
                 OR (b.unreferenced_since <= ?2 AND {UNREFERENCED})) \
             ORDER BY b.digest LIMIT ?3"
        );
        let rows: Vec<(String, i64)> = if dry_run {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT digest, size FROM blobs WHERE digest IN ({candidates}) ORDER BY digest"
            )))
            .bind(after)
            .bind(cutoff)
            .bind(limit)
            .fetch_all(&mut *self.reader.conn().await?)
            .await
            .map_err(failed(doing()))?
        } else {
            // Found and flagged in one statement of the writer: no link can come between.
            let mut tx = self.begin_write().await?;
            let mut rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "UPDATE blobs SET deleting_at = COALESCE(deleting_at, ?4) \
                 WHERE digest IN ({candidates}) RETURNING digest, size"
            )))
            .bind(after)
            .bind(cutoff)
            .bind(limit)
            .bind(berth_core::ports::now_millis())
            .fetch_all(&mut *tx)
            .await
            .map_err(failed(doing()))?;
            tx.commit().await.map_err(failed(doing()))?;
            rows.sort_unstable();
            rows
        };
        rows.into_iter()
            .map(|(digest, size)| {
                Ok(SizedBlob {
                    digest: parse_digest(&digest)?,
                    size: from_sql(size, "blob size")?,
                })
            })
            .collect()
    }

    #[instrument(level = "debug", skip_all, fields(blobs = digests.len()))]
    async fn forget_blobs(&self, digests: &[Digest]) -> StoreResult<u64> {
        let forgotten = sqlx::query(
            "DELETE FROM blobs WHERE digest IN (SELECT value FROM json_each(?1)) \
               AND deleting_at IS NOT NULL",
        )
        .bind(json_list(digests))
        .execute(&mut *self.writer.conn().await?)
        .await
        .map_err(failed("forgetting deleted blobs"))?
        .rows_affected();
        self.writer.durable().await?;
        Ok(forgotten)
    }

    #[instrument(level = "debug", skip_all, fields(blobs = stored.len()))]
    async fn unknown_blobs(&self, stored: &[Digest]) -> StoreResult<Vec<Digest>> {
        let unknown: Vec<String> = sqlx::query_scalar(
            "SELECT value FROM json_each(?1) \
             WHERE NOT EXISTS (SELECT 1 FROM blobs WHERE digest = value) \
               AND NOT EXISTS (SELECT 1 FROM uploads WHERE verified_digest = value)",
        )
        .bind(json_list(stored))
        .fetch_all(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(
            "looking for stored blobs the metadata does not know",
        ))?;
        unknown.iter().map(|d| parse_digest(d)).collect()
    }

    #[instrument(level = "debug", skip_all, fields(blobs = strays.len()))]
    async fn adopt_strays(&self, strays: &[SizedBlob]) -> StoreResult<Vec<SizedBlob>> {
        let doing = || "adopting stored blobs the metadata does not know".to_owned();
        let now = berth_core::ports::now_millis();
        let mut adopted = Vec::with_capacity(strays.len());
        let mut tx = self.begin_write().await?;
        for blob in strays {
            // Unless an upload recorded it meanwhile.
            let inserted = sqlx::query(
                "INSERT INTO blobs (digest, size, deleting_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (digest) DO NOTHING",
            )
            .bind(blob.digest.as_str())
            .bind(to_sql(blob.size, "blob size")?)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(failed(doing()))?
            .rows_affected();
            if inserted > 0 {
                adopted.push(blob.clone());
            }
        }
        tx.commit().await.map_err(failed(doing()))?;
        Ok(adopted)
    }

    #[instrument(level = "debug", skip(self))]
    async fn unreferenced_blobs(&self) -> StoreResult<(u64, u64)> {
        let (count, bytes): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*), COALESCE(SUM(b.size), 0) FROM blobs b WHERE {UNREFERENCED}"
        )))
        .fetch_one(&mut *self.reader.conn().await?)
        .await
        .map_err(failed("counting unreferenced blobs"))?;
        Ok((
            from_sql(count, "blob count")?,
            from_sql(bytes, "blob bytes")?,
        ))
    }
}
