//! [`SharedCounters`]: the limiters' counts every node adds into, one statement per batch.

use std::collections::HashMap;

use async_trait::async_trait;
use berth_core::ports::{CountDelta, Millis, SharedCount, SharedCounters, StoreResult};

use crate::store::{PgMetadataStore, failed, from_sql};

/// Rows one cleanup deletes at most: it runs again soon, and a short statement holds few
/// locks.
const FORGET_BATCH: i64 = 10_000;

#[async_trait]
impl SharedCounters for PgMetadataStore {
    async fn add_counts(
        &self,
        deltas: &[CountDelta],
        window: Millis,
        now: Millis,
    ) -> StoreResult<Vec<SharedCount>> {
        if deltas.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<&str> = deltas.iter().map(|d| d.key.as_str()).collect();
        let amounts: Vec<i64> = deltas.iter().map(|d| d.delta).collect();
        let since: Vec<Millis> = deltas.iter().map(|d| d.since).collect();
        // A key given twice is summed first (one statement may not update a row twice), and
        // rows are locked in key order, so two nodes' batches wait for each other instead of
        // deadlocking. A new window begins at the node's `since`, kept within the window
        // that is live at `now`; one that follows an ended window begins no earlier than its
        // end. A stored count below zero reads as zero.
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "INSERT INTO shared_counters AS c (key, count, started_at, ends_at) \
             SELECT key, total, start, start + $4 FROM ( \
                 SELECT d.key, sum(d.delta)::bigint AS total, \
                     LEAST($3, GREATEST(min(d.since), $3 - $4 + 1)) AS start \
                 FROM unnest($1::text[], $2::bigint[], $5::bigint[]) AS d(key, delta, since) \
                 GROUP BY d.key) AS n \
             ORDER BY key \
             ON CONFLICT (key) DO UPDATE SET \
                 count = CASE WHEN c.ends_at <= $3 THEN 0 ELSE GREATEST(c.count, 0) END \
                     + EXCLUDED.count, \
                 started_at = CASE WHEN c.ends_at <= $3 \
                     THEN GREATEST(EXCLUDED.started_at, c.ends_at) ELSE c.started_at END, \
                 ends_at = CASE WHEN c.ends_at <= $3 \
                     THEN GREATEST(EXCLUDED.started_at, c.ends_at) + $4 ELSE c.ends_at END \
             RETURNING key, GREATEST(count, 0), started_at",
        )
        .bind(&keys)
        .bind(&amounts)
        .bind(now)
        .bind(window)
        .bind(&since)
        .fetch_all(&self.pool)
        .await
        .map_err(failed(format!("adding {} shared counts", deltas.len())))?;
        let mut by_key = HashMap::with_capacity(rows.len());
        for (key, total, started_at) in rows {
            let total = from_sql(total, "a shared count")?;
            by_key.insert(key, SharedCount { total, started_at });
        }
        deltas
            .iter()
            .map(|d| {
                by_key.get(&d.key).copied().ok_or_else(|| {
                    berth_core::StoreError::new(
                        "adding shared counts",
                        format!("the database answered nothing for the key {}", d.key),
                    )
                })
            })
            .collect()
    }

    async fn forget_counts(&self, ended_before: Millis) -> StoreResult<u64> {
        // Rows a batch is counting into are skipped, not waited for: no lock order to keep.
        let deleted = sqlx::query(
            "DELETE FROM shared_counters WHERE key IN ( \
                 SELECT key FROM shared_counters WHERE ends_at < $1 \
                 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(ended_before)
        .bind(FORGET_BATCH)
        .execute(&self.pool)
        .await
        .map_err(failed("forgetting ended shared counts"))?
        .rows_affected();
        Ok(deleted)
    }
}
