//! Garbage collection's queries (ARCHITECTURE.md "Garbage collection"). Nodes collect while
//! others push, so every change locks its rows first (`FOR UPDATE SKIP LOCKED`: a row a push
//! holds is in use, and is left for the next pass) and re-checks the references in a second
//! statement, whose snapshot is taken after the locks were granted and so sees every push
//! that held them. A new link takes the blob's row `FOR NO KEY UPDATE` ([`crate::blobs`]), so
//! it either commits before a pass flags the blob (and the pass sees the link) or waits and
//! then finds the flag.

use async_trait::async_trait;
use berth_core::digest::Digest;
use berth_core::error::StoreError;
use berth_core::ports::{GcStore, Millis, SizedBlob, StoreResult, now_millis};
use tracing::instrument;

use crate::store::{PgMetadataStore, failed, from_sql, parse_digest, to_sql};

/// Rows a scan reads, and a transaction changes, at a time.
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
impl GcStore for PgMetadataStore {
    #[instrument(level = "debug", skip(self), fields(%digest))]
    async fn claim_blob(&self, digest: &Digest) -> StoreResult<()> {
        let doing = || format!("claiming blob {digest}");
        let state: Option<(bool, bool)> = sqlx::query_as(
            "SELECT deleting_at IS NOT NULL, unreferenced_since IS NOT NULL FROM blobs WHERE digest = $1",
        )
        .bind(digest.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(failed(doing()))?;
        match state {
            None | Some((false, false)) => Ok(()),
            Some((true, _)) => Err(StoreError::collecting(digest)),
            Some((false, true)) => {
                // One statement: clears the mark unless the blob is flagged, and says which.
                let flagged: Option<bool> = sqlx::query_scalar(
                    "WITH cleared AS (UPDATE blobs SET unreferenced_since = NULL \
                         WHERE digest = $1 AND deleting_at IS NULL RETURNING digest) \
                     SELECT NOT EXISTS (SELECT 1 FROM cleared) \
                         AND EXISTS (SELECT 1 FROM blobs WHERE digest = $1)",
                )
                .bind(digest.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(failed(doing()))?;
                if flagged == Some(true) {
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
            let page: Vec<(i64, String, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT rb.repository_id, rb.digest, rb.linked_at <= $3 AND {UNUSED_LINK} \
                 FROM repository_blobs rb \
                 WHERE (rb.repository_id, rb.digest) > ($1, $2) \
                 ORDER BY rb.repository_id, rb.digest LIMIT $4"
            )))
            .bind(after.0)
            .bind(&after.1)
            .bind(cutoff)
            .bind(PAGE)
            .fetch_all(&self.pool)
            .await
            .map_err(failed(doing()))?;
            let Some(last) = page.last() else {
                return Ok(total);
            };
            after = (last.0, last.1.clone());
            let done = page.len() < PAGE as usize;
            let (ids, digests): (Vec<i64>, Vec<String>) = page
                .into_iter()
                .filter(|row| row.2)
                .map(|(id, digest, _)| (id, digest))
                .unzip();
            if ids.is_empty() {
            } else if dry_run {
                total += ids.len() as u64;
            } else {
                let mut tx = self.pool.begin().await.map_err(failed(doing()))?;
                let (ids, digests): (Vec<i64>, Vec<String>) = sqlx::query_as::<_, (i64, String)>(
                    "SELECT repository_id, digest FROM repository_blobs \
                     WHERE (repository_id, digest) IN \
                         (SELECT * FROM unnest($1::bigint[], $2::text[])) \
                       AND linked_at <= $3 \
                     ORDER BY repository_id, digest FOR UPDATE SKIP LOCKED",
                )
                .bind(&ids)
                .bind(&digests)
                .bind(cutoff)
                .fetch_all(&mut *tx)
                .await
                .map_err(failed(doing()))?
                .into_iter()
                .unzip();
                total += sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM repository_blobs rb \
                     WHERE (rb.repository_id, rb.digest) IN \
                         (SELECT * FROM unnest($1::bigint[], $2::text[])) \
                       AND {UNUSED_LINK}"
                )))
                .bind(&ids)
                .bind(&digests)
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
            let page: Vec<String> = sqlx::query_scalar(
                "SELECT digest FROM blobs WHERE digest > $1 ORDER BY digest LIMIT $2",
            )
            .bind(&after)
            .bind(PAGE)
            .fetch_all(&self.pool)
            .await
            .map_err(failed(doing()))?;
            let Some(last) = page.last() else { break };
            after = last.clone();
            let done = page.len() < PAGE as usize;
            marked += sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE blobs b SET unreferenced_since = $2 \
                 WHERE b.digest = ANY($1) \
                   AND b.unreferenced_since IS NULL AND b.deleting_at IS NULL AND {UNREFERENCED}"
            )))
            .bind(&page)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(failed(doing()))?
            .rows_affected();
            if done {
                break;
            }
        }
        let cleared = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE blobs b SET unreferenced_since = NULL \
             WHERE b.unreferenced_since IS NOT NULL AND b.deleting_at IS NULL AND NOT ({UNREFERENCED})"
        )))
        .execute(&self.pool)
        .await
        .map_err(failed(doing()))?
        .rows_affected();
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
        let rows: Vec<(String, i64)> = if dry_run {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT b.digest, b.size FROM blobs b \
                 WHERE b.digest > $1 AND (b.deleting_at IS NOT NULL \
                     OR (b.unreferenced_since <= $2 AND {UNREFERENCED})) \
                 ORDER BY b.digest LIMIT $3"
            )))
            .bind(after)
            .bind(cutoff)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(failed(doing()))?
        } else {
            let mut tx = self.pool.begin().await.map_err(failed(doing()))?;
            // Locked first; rows a new link holds are skipped (they are in use).
            let locked: Vec<String> = sqlx::query_scalar(
                "SELECT digest FROM blobs \
                 WHERE digest > $1 AND (deleting_at IS NOT NULL OR unreferenced_since <= $2) \
                 ORDER BY digest LIMIT $3 FOR UPDATE SKIP LOCKED",
            )
            .bind(after)
            .bind(cutoff)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .map_err(failed(doing()))?;
            // A new statement, a new snapshot: every link made before the locks is seen.
            let mut rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "UPDATE blobs b SET deleting_at = COALESCE(b.deleting_at, $3) \
                 WHERE b.digest = ANY($1) AND (b.deleting_at IS NOT NULL \
                     OR (b.unreferenced_since <= $2 AND {UNREFERENCED})) \
                 RETURNING b.digest, b.size"
            )))
            .bind(&locked)
            .bind(cutoff)
            .bind(now_millis())
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
        let digests: Vec<&str> = digests.iter().map(Digest::as_str).collect();
        Ok(
            sqlx::query("DELETE FROM blobs WHERE digest = ANY($1) AND deleting_at IS NOT NULL")
                .bind(&digests)
                .execute(&self.pool)
                .await
                .map_err(failed("forgetting deleted blobs"))?
                .rows_affected(),
        )
    }

    #[instrument(level = "debug", skip_all, fields(blobs = stored.len()))]
    async fn unknown_blobs(&self, stored: &[Digest]) -> StoreResult<Vec<Digest>> {
        let digests: Vec<&str> = stored.iter().map(Digest::as_str).collect();
        let unknown: Vec<String> = sqlx::query_scalar(
            "SELECT d FROM unnest($1::text[]) AS s(d) \
             WHERE NOT EXISTS (SELECT 1 FROM blobs WHERE digest = s.d)",
        )
        .bind(&digests)
        .fetch_all(&self.pool)
        .await
        .map_err(failed(
            "looking for stored blobs the metadata does not know",
        ))?;
        unknown.iter().map(|d| parse_digest(d)).collect()
    }

    #[instrument(level = "debug", skip_all, fields(blobs = strays.len()))]
    async fn adopt_strays(&self, strays: &[SizedBlob]) -> StoreResult<Vec<SizedBlob>> {
        let digests: Vec<&str> = strays.iter().map(|b| b.digest.as_str()).collect();
        let sizes = strays
            .iter()
            .map(|b| to_sql(b.size, "blob size"))
            .collect::<Result<Vec<i64>, _>>()?;
        // Unless an upload recorded it meanwhile.
        let adopted: Vec<String> = sqlx::query_scalar(
            "INSERT INTO blobs (digest, size, deleting_at) \
             SELECT d, s, $3 FROM unnest($1::text[], $2::bigint[]) AS t(d, s) \
             ON CONFLICT (digest) DO NOTHING RETURNING digest",
        )
        .bind(&digests)
        .bind(&sizes)
        .bind(now_millis())
        .fetch_all(&self.pool)
        .await
        .map_err(failed("adopting stored blobs the metadata does not know"))?;
        let adopted: std::collections::HashSet<String> = adopted.into_iter().collect();
        Ok(strays
            .iter()
            .filter(|b| adopted.contains(b.digest.as_str()))
            .cloned()
            .collect())
    }

    #[instrument(level = "debug", skip(self))]
    async fn unreferenced_blobs(&self) -> StoreResult<(u64, u64)> {
        let (count, bytes): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*), COALESCE(SUM(b.size), 0)::BIGINT FROM blobs b WHERE {UNREFERENCED}"
        )))
        .fetch_one(&self.pool)
        .await
        .map_err(failed("counting unreferenced blobs"))?;
        Ok((
            from_sql(count, "blob count")?,
            from_sql(bytes, "blob bytes")?,
        ))
    }
}
