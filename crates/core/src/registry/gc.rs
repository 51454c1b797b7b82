//! Online garbage collection of blobs (ARCHITECTURE.md "Garbage collection"): a pass removes
//! the repository links no manifest uses, then deletes the bytes of blobs referenced by nothing
//! for a grace period, while pushes, pulls and deletes go on, on any node. Manifests are never
//! collected: only a user's delete or a retention policy removes them, and the purge after the
//! restore window takes their references with them.

use std::time::{Duration, Instant};

use futures_util::{StreamExt as _, TryStreamExt as _};

use super::Registry;
use crate::digest::Digest;
use crate::error::Result;
use crate::ports::{SizedBlob, now_millis};

/// Blobs flagged, deleted and forgotten at a time.
const BATCH: usize = 500;
/// Blob deletions in flight at once (an object store answers each in a round trip).
const DELETING: usize = 8;
/// Stored blobs listed at a time when looking for strays.
const LISTING: usize = 1_000;

/// What a pass does.
#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// How long a blob (or a link no manifest uses) is left alone before it goes.
    pub grace: Duration,
    /// Only report what would go.
    pub dry_run: bool,
    /// Leave the machine to requests half the time: after each step, pause as long as the
    /// step took (what scheduled passes do; `berth gc` runs at full speed).
    pub gentle: bool,
}

/// Paces a pass (see [`GcOptions::gentle`]).
struct Pacer {
    gentle: bool,
    since: Instant,
}

impl Pacer {
    fn new(gentle: bool) -> Self {
        Pacer {
            gentle,
            since: Instant::now(),
        }
    }

    /// After a step: when gentle, waits as long as the step took.
    async fn step(&mut self) {
        if self.gentle {
            tokio::time::sleep(self.since.elapsed()).await;
        }
        self.since = Instant::now();
    }
}

/// What a pass did (or, in a dry run, would do).
#[derive(Debug, Clone, Default)]
pub struct GcReport {
    /// Links from repositories to blobs no manifest of theirs uses, removed.
    pub links_removed: u64,
    /// Blobs found referenced by nothing for the first time (deleted by a pass at least a
    /// grace period later, if still referenced by nothing).
    pub blobs_marked: u64,
    /// Stored blobs the metadata did not know (left by a stopped process), deleted.
    pub strays: u64,
    /// Blobs whose bytes were deleted (strays included).
    pub blobs_deleted: u64,
    /// Their bytes.
    pub bytes_deleted: u64,
    /// In a dry run, the blobs that would be deleted; empty otherwise.
    pub would_delete: Vec<SizedBlob>,
    /// Blobs referenced by nothing after the pass, and their bytes: the next passes' work.
    pub unreferenced_left: (u64, u64),
    /// How long the pass took.
    pub duration: Duration,
}

impl Registry {
    /// Runs one garbage-collection pass. Safe beside every other request and beside passes
    /// on other nodes; a pass stopped anywhere is finished by the next one.
    pub async fn collect_garbage(&self, options: GcOptions) -> Result<GcReport> {
        let started = Instant::now();
        let now = now_millis();
        let grace = i64::try_from(options.grace.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now.saturating_sub(grace);
        let dry_run = options.dry_run;
        let mut pacer = Pacer::new(options.gentle);
        let mut report = GcReport {
            links_removed: self.meta.collect_links(cutoff, dry_run).await?,
            ..GcReport::default()
        };
        pacer.step().await;
        self.adopt_strays(cutoff, dry_run, &mut report, &mut pacer)
            .await?;
        if !dry_run {
            report.blobs_marked = self.meta.mark_unreferenced(now).await?.0;
            pacer.step().await;
        }
        let mut after: Option<Digest> = None;
        loop {
            let doomed = self
                .meta
                .doom_blobs(cutoff, after.as_ref(), BATCH, dry_run)
                .await?;
            let Some(last) = doomed.last() else { break };
            after = Some(last.digest.clone());
            let full = doomed.len() == BATCH;
            if dry_run {
                report.blobs_deleted += doomed.len() as u64;
                report.bytes_deleted += doomed.iter().map(|b| b.size).sum::<u64>();
                report.would_delete.extend(doomed);
            } else {
                self.delete_doomed(&doomed, &mut report).await?;
            }
            pacer.step().await;
            if !full {
                break;
            }
        }
        report.unreferenced_left = self.meta.unreferenced_blobs().await?;
        report.duration = started.elapsed();
        if !dry_run {
            metrics::counter!("berth_gc_passes_total").increment(1);
            metrics::counter!("berth_gc_links_removed_total").increment(report.links_removed);
            metrics::counter!("berth_gc_blobs_deleted_total").increment(report.blobs_deleted);
            metrics::counter!("berth_gc_bytes_reclaimed_total").increment(report.bytes_deleted);
            metrics::histogram!("berth_gc_pass_duration_seconds")
                .record(report.duration.as_secs_f64());
            metrics::gauge!("berth_gc_unreferenced_bytes").set(report.unreferenced_left.1 as f64);
        }
        Ok(report)
    }

    /// Deletes the bytes of `doomed` (flagged in the metadata), then forgets them.
    async fn delete_doomed(&self, doomed: &[SizedBlob], report: &mut GcReport) -> Result<()> {
        let deletions: Vec<_> = doomed
            .iter()
            .cloned()
            .map(|blob| {
                let blobs = self.blobs.clone();
                async move {
                    let deleted = blobs.delete(&blob.digest).await?;
                    tracing::debug!(digest = %blob.digest, size = blob.size, deleted, "collected blob");
                    Ok::<_, crate::error::StoreError>(())
                }
            })
            .collect();
        futures_util::stream::iter(deletions)
            .buffer_unordered(DELETING)
            .try_collect::<Vec<()>>()
            .await?;
        let digests: Vec<Digest> = doomed.iter().map(|b| b.digest.clone()).collect();
        self.meta.forget_blobs(&digests).await?;
        report.blobs_deleted += doomed.len() as u64;
        report.bytes_deleted += doomed.iter().map(|b| b.size).sum::<u64>();
        Ok(())
    }

    /// Finds stored blobs last written before `cutoff` that the metadata does not know and
    /// flags them for deletion (the pass's deletion loop then takes them).
    async fn adopt_strays(
        &self,
        cutoff: i64,
        dry_run: bool,
        report: &mut GcReport,
        pacer: &mut Pacer,
    ) -> Result<()> {
        let mut after: Option<Digest> = None;
        loop {
            let (old, next) = self
                .blobs
                .list_blobs(after.as_ref(), LISTING, cutoff)
                .await?;
            if !old.is_empty() {
                let unknown = self.meta.unknown_blobs(&old).await?;
                let mut strays = Vec::with_capacity(unknown.len());
                for digest in unknown {
                    if let Some(size) = self.blobs.stat(&digest).await? {
                        strays.push(SizedBlob { digest, size });
                    }
                }
                if dry_run {
                    report.strays += strays.len() as u64;
                    report.blobs_deleted += strays.len() as u64;
                    report.bytes_deleted += strays.iter().map(|b| b.size).sum::<u64>();
                    report.would_delete.extend(strays);
                } else if !strays.is_empty() {
                    let adopted = self.meta.adopt_strays(&strays).await?;
                    report.strays += adopted.len() as u64;
                    for blob in &adopted {
                        tracing::info!(digest = %blob.digest, size = blob.size, "found stored bytes no metadata names; deleting them");
                    }
                }
            }
            pacer.step().await;
            match next {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
    }
}
