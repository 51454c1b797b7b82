//! The timed phases. Each runs the same load against whichever server it is given: it builds
//! one [`Registry`] client per concurrent worker, resets the server's peak RSS, starts the
//! clock, runs the workers to completion, stops the clock and reads the peak RSS.
//!
//! Phases only call [`crate::oci`] and [`Server`]'s memory probes; payloads are prepared by the
//! caller so that nothing but HTTP happens while the clock runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use tokio::task::JoinSet;

use crate::oci::Registry;
use crate::payload::{Blob, SmallImage};
use crate::server::Server;

/// Repository of the monolithically pushed blobs.
pub const MONO_REPO: &str = "bench/mono";
/// Repository of the chunk-pushed blobs.
pub const CHUNKED_REPO: &str = "bench/chunked";
/// Repository of the small images.
pub const SMALL_REPO: &str = "bench/small";

/// What one phase measured on one server.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    /// The phase's rate: MiB/s, images/s or requests/s.
    pub rate: f64,
    /// Median and 99th-percentile request latency in microseconds, where measured.
    pub latency: Option<(u32, u32)>,
    /// The server's peak resident set size during the phase, in MiB.
    pub peak_rss_mib: f64,
    /// CPU time the server used during the phase, in seconds.
    pub server_cpu_s: f64,
    /// CPU time its object store (Garage) used during the phase, in seconds; NaN without one.
    pub store_cpu_s: f64,
    /// CPU time the balancer in front of the nodes (nginx) used during the phase, in seconds;
    /// NaN without one.
    pub balancer_cpu_s: f64,
}

/// The phases' shared settings.
pub struct Load {
    /// Concurrent workers per phase.
    pub clients: usize,
    /// `PATCH` size of the chunked push.
    pub chunk_size: usize,
    /// Rounds of the pull phase; each worker pulls one blob per round.
    pub pull_rounds: usize,
    /// How long the manifest-GET phase runs.
    pub manifest_duration: Duration,
}

/// Runs `phase` against `server` between a peak-RSS reset and read; prints and returns the
/// figures. `phase` returns the rate and, if it measured them, latencies.
async fn measure<F>(server: &Server, label: &str, unit: &str, phase: F) -> anyhow::Result<Measured>
where
    F: Future<Output = anyhow::Result<(f64, Option<(u32, u32)>)>>,
{
    server.reset_peak_rss();
    let cpu_before = server.cpu_seconds()?;
    let store_before = server.store_cpu_seconds()?;
    let balancer_before = server.balancer_cpu_seconds()?;
    let client_before = crate::server::process_cpu_seconds(std::process::id())?;
    let steal_before = crate::server::machine_steal_seconds()?;
    let (rate, latency) = phase.await.with_context(|| {
        format!(
            "{} {label}; server log:\n{}",
            server.name,
            server.recent_log()
        )
    })?;
    let peak_rss_mib = server.peak_rss_mib()?;
    let server_cpu_s = server.cpu_seconds()? - cpu_before;
    let store_cpu_s = match (server.store_cpu_seconds()?, store_before) {
        (Some(after), Some(before)) => after - before,
        _ => f64::NAN,
    };
    let balancer_cpu_s = match (server.balancer_cpu_seconds()?, balancer_before) {
        (Some(after), Some(before)) => after - before,
        _ => f64::NAN,
    };
    let mut store_text = String::new();
    if store_cpu_s.is_finite() {
        store_text += &format!(", Garage CPU {store_cpu_s:.2} s");
    }
    if balancer_cpu_s.is_finite() {
        store_text += &format!(", nginx CPU {balancer_cpu_s:.2} s");
    }
    let client_cpu_s = crate::server::process_cpu_seconds(std::process::id())? - client_before;
    let steal_s = crate::server::machine_steal_seconds()? - steal_before;
    let latency_text = latency
        .map(|(p50, p99)| format!(", p50 {p50} µs, p99 {p99} µs"))
        .unwrap_or_default();
    println!(
        "  {label:<18} {rate:>10.1} {unit}{latency_text}, peak RSS {peak_rss_mib:.1} MiB, \
         server CPU {server_cpu_s:.2} s{store_text}, client CPU {client_cpu_s:.2} s, \
         steal {steal_s:.2} s"
    );
    Ok(Measured {
        rate,
        latency,
        peak_rss_mib,
        server_cpu_s,
        store_cpu_s,
        balancer_cpu_s,
    })
}

/// Worker `i` pushes `blobs[i]` to [`MONO_REPO`] as POST + one PUT; rate in MiB/s.
pub async fn push_monolithic(server: &Server, blobs: &[Blob]) -> anyhow::Result<Measured> {
    let workers = clients(server, blobs.len())?;
    measure(server, "monolithic push", "MiB/s", async {
        let started = Instant::now();
        let mut tasks = JoinSet::new();
        for (registry, blob) in workers.into_iter().zip(blobs.iter().cloned()) {
            tasks.spawn(async move { registry.push_monolithic(MONO_REPO, &blob).await });
        }
        join_all(tasks).await?;
        Ok((mib_per_second(total_len(blobs), started.elapsed()), None))
    })
    .await
}

/// Worker `i` pushes `blobs[i]` to [`CHUNKED_REPO`] in `PATCH`es; rate in MiB/s.
pub async fn push_chunked(
    server: &Server,
    blobs: &[Blob],
    load: &Load,
) -> anyhow::Result<Measured> {
    let workers = clients(server, blobs.len())?;
    let chunk_size = load.chunk_size;
    measure(server, "chunked push", "MiB/s", async {
        let started = Instant::now();
        let mut tasks = JoinSet::new();
        for (registry, blob) in workers.into_iter().zip(blobs.iter().cloned()) {
            tasks
                .spawn(async move { registry.push_chunked(CHUNKED_REPO, &blob, chunk_size).await });
        }
        join_all(tasks).await?;
        Ok((mib_per_second(total_len(blobs), started.elapsed()), None))
    })
    .await
}

/// Each round, worker `i` pulls blob `i` of the round's repository, alternating between the
/// monolithic and chunked blobs; rate in MiB/s.
pub async fn pull(
    server: &Server,
    mono: &[Blob],
    chunked: &[Blob],
    load: &Load,
) -> anyhow::Result<Measured> {
    let workers = clients(server, load.clients)?;
    let rounds = load.pull_rounds;
    let sets = [(MONO_REPO, mono), (CHUNKED_REPO, chunked)];
    // Per worker: the (repository, digest, length) of each round's blob.
    let plans: Vec<Vec<(&'static str, String, u64)>> = (0..load.clients)
        .map(|worker| {
            (0..rounds)
                .map(|round| {
                    let (repo, blobs) = sets[round % 2];
                    let blob = &blobs[worker % blobs.len()];
                    (repo, blob.digest.clone(), blob.bytes.len() as u64)
                })
                .collect()
        })
        .collect();
    let total: u64 = plans.iter().flatten().map(|(_, _, len)| len).sum();
    measure(server, "pull", "MiB/s", async {
        let started = Instant::now();
        let mut tasks = JoinSet::new();
        for (registry, plan) in workers.into_iter().zip(plans) {
            tasks.spawn(async move {
                for (repo, digest, len) in plan {
                    let read = registry.pull_blob(repo, &digest).await?;
                    ensure!(
                        read == len,
                        "pulled {read} bytes of {digest}, expected {len}"
                    );
                }
                Ok(())
            });
        }
        join_all(tasks).await?;
        Ok((mib_per_second(total, started.elapsed()), None))
    })
    .await
}

/// Workers take images off a shared queue and push each (layer, config, manifest by tag) to
/// [`SMALL_REPO`]; rate in images/s.
pub async fn push_small_images(
    server: &Server,
    images: &Arc<Vec<SmallImage>>,
    load: &Load,
) -> anyhow::Result<Measured> {
    let workers = clients(server, load.clients)?;
    let next = Arc::new(AtomicUsize::new(0));
    measure(server, "small images push", "images/s", async {
        let started = Instant::now();
        let mut tasks = JoinSet::new();
        for registry in workers {
            let (images, next) = (images.clone(), next.clone());
            tasks.spawn(async move {
                while let Some(image) = images.get(next.fetch_add(1, Ordering::Relaxed)) {
                    registry.push_monolithic(SMALL_REPO, &image.layer).await?;
                    registry.push_monolithic(SMALL_REPO, &image.config).await?;
                    registry
                        .put_manifest(SMALL_REPO, &image.tag, image.manifest.clone())
                        .await?;
                }
                Ok(())
            });
        }
        join_all(tasks).await?;
        Ok((images.len() as f64 / started.elapsed().as_secs_f64(), None))
    })
    .await
}

/// For the load's duration, worker `i` GETs the manifests of `tags` round-robin starting at
/// tag `i`; rate in requests/s, with p50 and p99 latency.
pub async fn get_manifests(
    server: &Server,
    tags: &Arc<Vec<String>>,
    load: &Load,
) -> anyhow::Result<Measured> {
    let workers = clients(server, load.clients)?;
    let duration = load.manifest_duration;
    measure(server, "manifest GET", "req/s", async {
        let started = Instant::now();
        let deadline = started + duration;
        let mut tasks = JoinSet::new();
        for (worker, registry) in workers.into_iter().enumerate() {
            let tags = tags.clone();
            tasks.spawn(async move {
                let mut latencies_us: Vec<u32> = Vec::with_capacity(1 << 16);
                let mut index = worker;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let read = registry
                        .get_manifest(SMALL_REPO, &tags[index % tags.len()])
                        .await?;
                    latencies_us
                        .push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                    ensure!(read > 0, "empty manifest body");
                    index += 1;
                }
                Ok(latencies_us)
            });
        }
        let mut latencies_us: Vec<u32> = join_all(tasks).await?.into_iter().flatten().collect();
        let elapsed = started.elapsed();
        ensure!(!latencies_us.is_empty(), "no manifest GET completed");
        latencies_us.sort_unstable();
        let rate = latencies_us.len() as f64 / elapsed.as_secs_f64();
        Ok((
            rate,
            Some((percentile(&latencies_us, 50), percentile(&latencies_us, 99))),
        ))
    })
    .await
}

/// `count` fresh clients of `server`, built before the clock starts.
fn clients(server: &Server, count: usize) -> anyhow::Result<Vec<Registry>> {
    (0..count)
        .map(|_| Registry::new(&server.base, server.authorization.as_deref()))
        .collect()
}

/// Waits for every task; fails with the first error or panic.
async fn join_all<T: 'static>(mut tasks: JoinSet<anyhow::Result<T>>) -> anyhow::Result<Vec<T>> {
    let mut results = Vec::with_capacity(tasks.len());
    while let Some(joined) = tasks.join_next().await {
        results.push(joined.context("worker panicked")??);
    }
    Ok(results)
}

/// Total length of `blobs` in bytes.
pub(crate) fn total_len(blobs: &[Blob]) -> u64 {
    blobs.iter().map(|blob| blob.bytes.len() as u64).sum()
}

/// `bytes` per `elapsed`, in MiB/s.
pub(crate) fn mib_per_second(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64()
}

/// The `pct`th percentile (nearest rank) of ascending `sorted`, which is not empty.
fn percentile(sorted: &[u32], pct: usize) -> u32 {
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentile_is_nearest_rank() {
        let values: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&values, 50), 50);
        assert_eq!(percentile(&values, 99), 99);
        assert_eq!(percentile(&[7], 99), 7);
    }
}
