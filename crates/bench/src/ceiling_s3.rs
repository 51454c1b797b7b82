//! The object store's ceiling for `--scale-out`: the least work any registry on S3 must do
//! for the push and pull phases, done by the bench itself straight against a fresh Garage of
//! the same size, with nothing in between (the best of a few runs, each on a fresh Garage):
//!
//! - push: each client's blob hashed (SHA-256, as a registry must to check its digest) and
//!   written as one multipart upload of 8 MiB parts, two in flight, as Berth's S3 writer does;
//!   chunked, each `chunk_size` piece's parts are complete in S3 before the next piece starts,
//!   as a `PATCH` answered `202` only for durable bytes requires;
//! - pull: the pull phase's plan (each client reads one blob whole per round), the bytes
//!   counted and dropped.
//!
//! Same S3 client as Berth's store (`object_store`), same concurrency as the bench's clients,
//! parts sent as `UNSIGNED-PAYLOAD` as Berth's are, but without the CRC-64/NVME Berth sends
//! with each body for the store to check: the least work leaves that out. A registry in between
//! adds an HTTP hop, its own work and its metadata, so its rate on that Garage is at most this
//! one; and this rate divided by another registry's is the greatest ratio any registry could
//! reach against it on this machine.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, ensure};
use bytes::Bytes;
use futures_util::StreamExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStoreExt as _, PutPayload};
use sha2::{Digest as _, Sha256};
use tokio::task::JoinSet;

use crate::garage::Garage;
use crate::payload::Blob;
use crate::phases::{mib_per_second, total_len};

/// The part size (Berth's S3 writer's).
const PART: usize = 8 << 20;
/// Parts in flight per upload (Berth's S3 writer's).
const PARTS_IN_FLIGHT: usize = 2;

/// The ceiling's rates on one Garage size, in MiB/s: the best of its runs in each phase (one
/// run is a few seconds of pulls on a noisy machine: two single runs on Garage3 measured 993
/// and 629 MiB/s).
pub struct S3Ceiling {
    /// Garage nodes (replication factor the same).
    pub nodes: usize,
    pub monolithic: f64,
    pub chunked: f64,
    pub pull: f64,
}

/// Measures the ceiling's three phases `runs` times, each time on a fresh `nodes`-node
/// Garage from `garage_bin`: `mono` pushed whole, `chunked` in `chunk_size` pieces, then
/// `pull_rounds` rounds of reads alternating between the two sets, as [`crate::phases::pull`]
/// plans them. Prints each run; returns the best rate of each phase.
pub fn measure(
    garage_bin: &std::path::Path,
    nodes: usize,
    mono: &[Blob],
    chunked: &[Blob],
    chunk_size: usize,
    pull_rounds: usize,
    runs: usize,
) -> anyhow::Result<S3Ceiling> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut best = S3Ceiling {
        nodes,
        monolithic: 0.0,
        chunked: 0.0,
        pull: 0.0,
    };
    for run in 1..=runs {
        let garage = Garage::start(garage_bin, nodes, "ceiling")?;
        let store = Arc::new(client(&garage)?);
        // Garage's CPU seconds at the start and after each phase.
        let mut cpu = vec![crate::server::cpu_of(garage.pids())?];
        let mut phase_cpu = || -> anyhow::Result<()> {
            cpu.push(crate::server::cpu_of(garage.pids())?);
            Ok(())
        };
        let (monolithic, chunked_rate, pull) = runtime.block_on(async {
            // Each push right after a warm-up, as the servers' are (`crate::warm_pages`).
            crate::warm_pages(crate::warm_bytes(mono))?;
            let monolithic = push_all(&store, "mono", mono, None).await?;
            phase_cpu()?;
            crate::warm_pages(crate::warm_bytes(chunked))?;
            let chunked_rate = push_all(&store, "chunked", chunked, Some(chunk_size)).await?;
            phase_cpu()?;
            let pull = pull_all(&store, mono, chunked, pull_rounds).await?;
            phase_cpu()?;
            anyhow::Ok((monolithic, chunked_rate, pull))
        })?;
        let spent: Vec<f64> = cpu.windows(2).map(|w| w[1] - w[0]).collect();
        println!(
            "  Garage{nodes} ceiling run {run} of {runs}: monolithic {monolithic:.1} MiB/s, \
             chunked {chunked_rate:.1} MiB/s, pull {pull:.1} MiB/s; Garage CPU {:.2} / {:.2} / \
             {:.2} s",
            spent[0], spent[1], spent[2]
        );
        best.monolithic = best.monolithic.max(monolithic);
        best.chunked = best.chunked.max(chunked_rate);
        best.pull = best.pull.max(pull);
    }
    Ok(best)
}

/// An S3 client on `garage`'s first node, set up as Berth's store sets up its own but for
/// the checksum.
fn client(garage: &Garage) -> anyhow::Result<AmazonS3> {
    let target = &garage.target;
    AmazonS3Builder::new()
        .with_bucket_name(&target.bucket)
        .with_region(&target.region)
        .with_access_key_id(&target.key_id)
        .with_secret_access_key(&target.secret)
        .with_endpoint(&target.endpoint)
        .with_virtual_hosted_style_request(false)
        .with_unsigned_payload(true)
        .with_client_options(
            ClientOptions::new()
                .with_allow_http(true)
                .with_timeout_disabled()
                .with_pool_max_idle_per_host(64),
        )
        .build()
        .context("an S3 client for the ceiling")
}

/// The object a blob of a set is written to.
fn key(set: &str, blob: &Blob) -> Path {
    Path::from(format!("{set}/{}", blob.digest.replace(':', "-")))
}

/// Pushes every blob of `blobs` at once, one task each; MiB/s over the wall time until all are
/// complete.
async fn push_all(
    store: &Arc<AmazonS3>,
    set: &'static str,
    blobs: &[Blob],
    chunk_size: Option<usize>,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for blob in blobs {
        let (store, bytes, digest) = (store.clone(), blob.bytes.clone(), blob.digest.clone());
        let path = key(set, blob);
        tasks.spawn(async move { push(&store, &path, bytes, &digest, chunk_size).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a ceiling push panicked")??;
    }
    Ok(mib_per_second(total_len(blobs), started.elapsed()))
}

/// One blob as one multipart upload: hashed part by part, at most [`PARTS_IN_FLIGHT`] parts
/// sent at once; with `chunk_size`, every part of a piece is complete before the next piece's
/// first is sent.
async fn push(
    store: &AmazonS3,
    path: &Path,
    bytes: Bytes,
    digest: &str,
    chunk_size: Option<usize>,
) -> anyhow::Result<()> {
    let id = store.create_multipart(path).await?;
    let piece = chunk_size.unwrap_or(bytes.len()).max(1);
    let mut hasher = Sha256::new();
    let mut parts: Vec<Option<PartId>> = Vec::new();
    let mut in_flight: JoinSet<anyhow::Result<(usize, PartId)>> = JoinSet::new();
    for start in (0..bytes.len()).step_by(piece) {
        let piece = bytes.slice(start..(start + piece).min(bytes.len()));
        for part_start in (0..piece.len()).step_by(PART) {
            let part = piece.slice(part_start..(part_start + PART).min(piece.len()));
            hasher.update(&part);
            while in_flight.len() >= PARTS_IN_FLIGHT {
                record(&mut parts, in_flight.join_next().await)?;
            }
            let (store, path, id, index) = (store.clone(), path.clone(), id.clone(), parts.len());
            parts.push(None);
            in_flight.spawn(async move {
                let part = store
                    .put_part(&path, &id, index, PutPayload::from_bytes(part))
                    .await?;
                Ok((index, part))
            });
        }
        if chunk_size.is_some() {
            while !in_flight.is_empty() {
                record(&mut parts, in_flight.join_next().await)?;
            }
        }
    }
    while !in_flight.is_empty() {
        record(&mut parts, in_flight.join_next().await)?;
    }
    let hashed = format!("sha256:{}", hex::encode(hasher.finalize()));
    ensure!(
        hashed == digest,
        "the ceiling hashed {hashed}, not {digest}"
    );
    let parts = parts
        .into_iter()
        .map(|part| part.expect("joined"))
        .collect();
    store.complete_multipart(path, &id, parts).await?;
    Ok(())
}

/// Records a finished part in its slot.
fn record(
    parts: &mut [Option<PartId>],
    joined: Option<Result<anyhow::Result<(usize, PartId)>, tokio::task::JoinError>>,
) -> anyhow::Result<()> {
    let (index, part) = joined
        .context("a part was expected in flight")?
        .context("a part upload panicked")??;
    parts[index] = Some(part);
    Ok(())
}

/// Each of `mono.len()` clients reads one blob whole per round, alternating between the sets
/// round by round; MiB/s over the wall time.
async fn pull_all(
    store: &Arc<AmazonS3>,
    mono: &[Blob],
    chunked: &[Blob],
    rounds: usize,
) -> anyhow::Result<f64> {
    let sets = [("mono", mono), ("chunked", chunked)];
    let mut bytes = 0;
    let mut tasks = JoinSet::new();
    let started = Instant::now();
    for client in 0..mono.len() {
        let plan: Vec<(Path, u64)> = (0..rounds)
            .map(|round| {
                let (set, blobs) = sets[round % 2];
                let blob = &blobs[client % blobs.len()];
                (key(set, blob), blob.bytes.len() as u64)
            })
            .collect();
        bytes += plan.iter().map(|(_, len)| len).sum::<u64>();
        let store = store.clone();
        tasks.spawn(async move {
            for (path, len) in plan {
                let mut read = 0u64;
                let mut stream = store.get(&path).await?.into_stream();
                while let Some(chunk) = stream.next().await {
                    read += chunk?.len() as u64;
                }
                ensure!(read == len, "read {read} bytes of {path}, expected {len}");
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a ceiling pull panicked")??;
    }
    Ok(mib_per_second(bytes, started.elapsed()))
}
