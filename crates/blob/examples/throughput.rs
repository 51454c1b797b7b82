//! Throughput check of the filesystem blob store (not a test): 4 clients push 256 MiB each
//! concurrently through upload writers, commit, then read everything back concurrently.
//!
//! ```text
//! cargo run -p berth-blob --release --example throughput -- /tmp/some-dir [MiB/s per client]
//! ```
//!
//! With a rate, each client produces its chunks no faster than that, as a client behind a
//! network (and a server busy hashing) would: the push then shows how much of the final
//! flush overlaps the transfer. Works in a fresh subdirectory of the given directory and removes it afterwards. Prints
//! MiB/s for push (with and without the final fdatasync) and pull, the fdatasync cost, and
//! the process's peak RSS.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_blob::FsBlobStore;
use berth_core::Digest;
use berth_core::ports::BlobStore;
use bytes::Bytes;
use futures_util::StreamExt;

const CLIENTS: usize = 4;
const BLOB_MIB: usize = 256;
const CHUNK: usize = 1 << 20;
const PULL_ROUNDS: usize = 4;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("usage: throughput <scratch directory>")?;
    let pace = match std::env::args().nth(2) {
        Some(rate) => Some(rate.parse::<f64>()?),
        None => None,
    };
    let root = base.join(format!("berth-blob-throughput-{}", std::process::id()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(run(&root, pace));
    std::fs::remove_dir_all(&root)?;
    result
}

async fn run(root: &std::path::Path, pace: Option<f64>) -> Result<(), Box<dyn std::error::Error>> {
    let store = std::sync::Arc::new(FsBlobStore::open(root)?);
    let total_mib = (CLIENTS * BLOB_MIB) as f64;
    let pattern: Vec<u8> = (0..CHUNK).map(|i| (i * 31 % 251) as u8).collect();
    let pattern = Bytes::from(pattern);

    let started = Instant::now();
    let mut pushes = Vec::new();
    for client in 0..CLIENTS {
        let store = store.clone();
        let pattern = pattern.clone();
        pushes.push(tokio::spawn(async move {
            let id = format!("client-{client}");
            let mut writer = store.upload_writer(&id, &[], 0).await?;
            let begun = tokio::time::Instant::now();
            for n in 0..BLOB_MIB {
                if let Some(rate) = pace {
                    let due = begun + Duration::from_secs_f64(n as f64 / rate);
                    tokio::time::sleep_until(due).await;
                }
                // A fresh buffer per chunk, as an HTTP body would hand over.
                writer.write(Bytes::copy_from_slice(&pattern)).await?;
            }
            let written = Instant::now();
            let done = writer.finish().await?;
            let finished = Instant::now();
            assert_eq!(done.len, (BLOB_MIB * CHUNK) as u64);
            // The store does not check content; any distinct digest will do here.
            let digest = Digest::sha256(id.as_bytes());
            store.commit_upload(&id, &done.state, &digest).await?;
            let committed = Instant::now();
            Ok::<_, berth_core::StoreError>((
                digest,
                written,
                finished - written,
                committed - finished,
            ))
        }));
    }
    let mut digests = Vec::new();
    let mut last_write = started;
    let mut syncs = Vec::new();
    for push in pushes {
        let (digest, written, sync, commit) = push.await??;
        digests.push(digest);
        last_write = last_write.max(written);
        syncs.push((sync, commit));
    }
    let push_time = started.elapsed();
    let write_time = last_write - started;
    if let Some(rate) = pace {
        println!("clients paced at {rate} MiB/s each");
    }
    println!(
        "push: {CLIENTS} x {BLOB_MIB} MiB in {:.2} s = {:.0} MiB/s total (writes alone {:.0} MiB/s)",
        push_time.as_secs_f64(),
        total_mib / push_time.as_secs_f64(),
        total_mib / write_time.as_secs_f64(),
    );
    for (i, (sync, commit)) in syncs.iter().enumerate() {
        println!(
            "  client {i}: finish (fdatasync) {:.0} ms, commit (fsync + rename + dir fsync) {:.1} ms",
            ms(*sync),
            ms(*commit),
        );
    }

    let cpu_before = cpu_seconds();
    let pulls_started = Instant::now();
    for round in 1..=PULL_ROUNDS {
        let started = Instant::now();
        let mut pulls = Vec::new();
        for digest in &digests {
            let store = store.clone();
            let digest = digest.clone();
            pulls.push(tokio::spawn(async move {
                let mut stream = store.read(&digest, 0, (BLOB_MIB * CHUNK) as u64).await?;
                let mut total = 0u64;
                while let Some(chunk) = stream.next().await {
                    total += chunk?.len() as u64;
                }
                assert_eq!(total, (BLOB_MIB * CHUNK) as u64);
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            }));
        }
        for pull in pulls {
            pull.await?.map_err(|e| e.to_string())?;
        }
        let pull_time = started.elapsed();
        println!(
            "pull {round}: {CLIENTS} x {BLOB_MIB} MiB in {:.2} s = {:.0} MiB/s total",
            pull_time.as_secs_f64(),
            total_mib / pull_time.as_secs_f64(),
        );
    }
    if let (Some(before), Some(after)) = (cpu_before, cpu_seconds()) {
        let gib = total_mib * PULL_ROUNDS as f64 / 1024.0;
        println!(
            "pull CPU: {:.2} s user+sys per GiB ({:.0} MiB/s over all rounds)",
            (after - before) / gib,
            total_mib * PULL_ROUNDS as f64 / pulls_started.elapsed().as_secs_f64(),
        );
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM"))
    {
        println!("peak RSS: {}", line.trim_start_matches("VmHWM:").trim());
    }
    Ok(())
}

/// User plus system CPU time of this process so far, from `/proc/self/stat` (Linux only).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
