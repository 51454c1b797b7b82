//! `berth gc`: one garbage-collection pass now, beside running servers (or `--dry-run`: what
//! a pass would remove), and the pass `berth serve` runs on a schedule.

use std::sync::Arc;
use std::time::Duration;

use berth_core::registry::{GcOptions, GcReport, Registry};

use crate::config::Config;
use crate::stores::{Opener, Stores};

/// Runs one pass against the stores `config` names and prints what it did.
pub async fn run(config: &Config, dry_run: bool) -> anyhow::Result<()> {
    let (database, blobs) = config.store_urls()?;
    let stores = Stores::open(&database, &blobs, Opener::Admin).await?;
    let registry = Registry::new(stores.metadata.clone(), stores.blobs.clone());
    let grace = Duration::from_secs(config.gc_grace_secs);
    let report = registry
        .collect_garbage(GcOptions {
            grace,
            dry_run,
            gentle: false,
        })
        .await?;
    print!("{}", describe(&report, grace, dry_run));
    Ok(())
}

/// What a pass did, for a person.
pub fn describe(report: &GcReport, grace: Duration, dry_run: bool) -> String {
    let mut out = String::new();
    let (links, deleted) = if dry_run {
        ("would remove", "would delete")
    } else {
        ("removed", "deleted")
    };
    out.push_str(&format!(
        "{links} {} repository link(s) to blobs no manifest of the repository uses\n",
        report.links_removed
    ));
    out.push_str(&format!(
        "{deleted} {} blob(s), {} ({} byte(s)){}\n",
        report.blobs_deleted,
        human_bytes(report.bytes_deleted),
        report.bytes_deleted,
        if report.strays > 0 {
            format!(
                ", of which {} stored bytes no metadata named",
                report.strays
            )
        } else {
            String::new()
        }
    ));
    for blob in &report.would_delete {
        out.push_str(&format!("  {}  {} byte(s)\n", blob.digest, blob.size));
    }
    if !dry_run {
        out.push_str(&format!(
            "marked {} blob(s) newly referenced by nothing\n",
            report.blobs_marked
        ));
    }
    let (count, bytes) = report.unreferenced_left;
    out.push_str(&format!(
        "{count} blob(s), {}, referenced by nothing are left: each goes once a pass finds it \
         still unreferenced {} s after the first pass that found it so (gc_grace_secs)\n",
        human_bytes(bytes),
        grace.as_secs()
    ));
    out.push_str(&format!("took {:.3} s\n", report.duration.as_secs_f64()));
    out
}

/// `bytes` in the largest binary unit that keeps it at least 1.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Every `interval`, one pass with `grace`. Runs until the process exits. Nodes sharing
/// PostgreSQL take turns, as with the purge (passes on two nodes at once would be safe, only
/// wasted).
pub async fn collect_periodically(
    registry: Registry,
    shared: Option<Arc<berth_meta_postgres::PgMetadataStore>>,
    grace: Duration,
    interval: Duration,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if !crate::my_turn(shared.as_deref(), "gc", interval).await {
            continue;
        }
        let options = GcOptions {
            grace,
            dry_run: false,
            gentle: true,
        };
        match registry.collect_garbage(options).await {
            Ok(report) => tracing::info!(
                links_removed = report.links_removed,
                blobs_marked = report.blobs_marked,
                blobs_deleted = report.blobs_deleted,
                bytes_reclaimed = report.bytes_deleted,
                strays = report.strays,
                unreferenced_blobs_left = report.unreferenced_left.0,
                unreferenced_bytes_left = report.unreferenced_left.1,
                seconds = report.duration.as_secs_f64(),
                "garbage collection pass"
            ),
            Err(err) => {
                tracing::warn!(error = %err, "garbage collection pass failed; the next pass goes on from where it stopped")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn bytes_read_in_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }
}
