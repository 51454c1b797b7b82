//! `--gc`: what a garbage-collection pass costs on a big store, and what it costs the pulls
//! running beside it.
//!
//! The store (SQLite + disk) is seeded directly: `--gc-blobs` blobs (their bytes on disk, each
//! a few bytes hashing to its digest), all linked to one repository long ago, and
//! `--gc-manifests` manifests using one blob each, so the other blobs' links are unused. Then:
//!
//! 1. `berth gc` with no grace (`BERTH_GC_GRACE_SECS=0`): the pass that removes the unused
//!    links and deletes their blobs — its duration and the process's peak RSS;
//! 2. `berth gc` again: the steady-state pass that finds nothing to do, over what is left;
//! 3. `berth serve` on the store, the pull phase (`--clients` clients, `--pull-rounds` rounds
//!    of `--size-mib` blobs) on a server with no pass and on one whose scheduled passes run
//!    every second with no grace (so one is nearly always running, paced as the server paces
//!    them), alternating `--rounds` times; the ratio of the medians.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use sha2::{Digest as _, Sha256};
use sqlx::{Connection as _, SqliteConnection};
use tempfile::TempDir;

use crate::phases::{self, Load};
use crate::server::{self, Server};

/// The repository every seeded blob is linked to.
const REPO: &str = "bench/gc";
/// Rows per seeding `INSERT`.
const BATCH: usize = 300;

/// What `--gc` measures.
pub struct Settings {
    /// Blobs seeded.
    pub blobs: usize,
    /// Manifests seeded, each using one blob.
    pub manifests: usize,
    /// Rounds of the pulls without and with passes beside them.
    pub rounds: usize,
    /// The pull phase's load.
    pub load: Load,
    /// Size of each pulled blob, in bytes.
    pub size: usize,
    /// Extra settings for `berth`.
    pub berth_env: Vec<(String, String)>,
}

/// One `berth gc` run: how long, the process's peak RSS, and what it printed.
struct Pass {
    seconds: f64,
    peak_rss_mib: f64,
    output: String,
}

/// Runs the GC benchmark.
pub fn run(settings: &Settings, bin: &Path) -> anyhow::Result<()> {
    ensure!(
        settings.manifests <= settings.blobs,
        "--gc-manifests must not exceed --gc-blobs (each manifest uses a blob of its own)"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = TempDir::with_prefix("berth-gc-bench-")?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data)?;
    let mut env: Vec<(String, String)> = vec![("BERTH_GC_INTERVAL_SECS".into(), "0".into())];
    env.extend(settings.berth_env.iter().cloned());
    let token = server::bootstrap_berth(bin, &data, &env)?;
    let started = Instant::now();
    runtime.block_on(seed(&data, settings.blobs, settings.manifests))?;
    println!(
        "seeded {} blobs and {} manifests in {:.1} s",
        settings.blobs,
        settings.manifests,
        started.elapsed().as_secs_f64()
    );

    let collecting = pass(bin, &data, &env)?;
    println!(
        "pass over {} blobs and {} manifests (removes {} links and {} blobs): {:.2} s, peak RSS {:.1} MiB\n{}",
        settings.blobs,
        settings.manifests,
        settings.blobs - settings.manifests,
        settings.blobs - settings.manifests,
        collecting.seconds,
        collecting.peak_rss_mib,
        indent(&collecting.output)
    );
    ensure!(
        collecting.output.contains(&format!(
            "deleted {} blob(s)",
            settings.blobs - settings.manifests
        )),
        "the pass did not delete every unused blob:\n{}",
        collecting.output
    );
    let idle = pass(bin, &data, &env)?;
    println!(
        "pass with nothing to do ({} blobs, {} manifests): {:.2} s, peak RSS {:.1} MiB",
        settings.manifests, settings.manifests, idle.seconds, idle.peak_rss_mib
    );

    // Pulls against a server with scheduled passes back to back (every second, no grace:
    // each finds the whole store to scan) and against one with none, alternating.
    let mut passing = env.clone();
    passing.push(("BERTH_GC_INTERVAL_SECS".into(), "1".into()));
    passing.push(("BERTH_GC_GRACE_SECS".into(), "0".into()));
    let blobs = crate::payload::random_blobs(settings.load.clients, settings.size, 0);
    let chunked = crate::payload::random_blobs(settings.load.clients, settings.size, 1_000);
    let (mut without, mut with, mut passes) = (Vec::new(), Vec::new(), Vec::new());
    runtime.block_on(async {
        {
            let server = Server::start_berth_at(bin, "Berth", &data, &env, &token)?;
            phases::push_monolithic(&server, &blobs).await?;
            phases::push_chunked(&server, &chunked, &settings.load).await?;
            // Manifests that use the pulled blobs: without them a pass takes their links.
            let registry =
                crate::oci::Registry::new(&server.base, server.authorization.as_deref())?;
            for (repo, set) in [
                (phases::MONO_REPO, &blobs),
                (phases::CHUNKED_REPO, &chunked),
            ] {
                registry
                    .put_manifest(repo, "pulled", image_using(set))
                    .await?;
            }
        }
        for round in 0..settings.rounds {
            let order = if round % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            };
            for beside in order {
                let server = Server::start_berth_at(
                    bin,
                    "Berth",
                    &data,
                    if beside { &passing } else { &env },
                    &token,
                )?;
                println!(
                    "  round {}, {}:",
                    round + 1,
                    if beside {
                        "scheduled passes every second"
                    } else {
                        "no pass"
                    }
                );
                // The first pass starts with the server.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let before = passes_done(&server).await?;
                let measured = phases::pull(&server, &blobs, &chunked, &settings.load).await?;
                if beside {
                    passes.push(passes_done(&server).await? - before);
                    with.push(measured.rate);
                } else {
                    without.push(measured.rate);
                }
            }
        }
        anyhow::Ok(())
    })?;
    let (w, wo) = (median(&with), median(&without));
    println!(
        "\npull MiB/s without a pass: {wo:.0} ({}), with scheduled passes beside it: {w:.0} ({}), \
         passes completed during the pulls: {passes:?}; with / without: {:.2}",
        range(&without),
        range(&with),
        w / wo
    );
    Ok(())
}

/// `text` indented for the report.
fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

fn range(values: &[f64]) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{min:.0}–{max:.0}")
}

/// Runs `berth gc` with no grace on `data`; its duration and peak RSS (the largest `VmHWM`
/// read while it ran).
fn pass(bin: &Path, data: &Path, env: &[(String, String)]) -> anyhow::Result<Pass> {
    let started = Instant::now();
    let mut child = gc_command(bin, data, env)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting berth gc")?;
    let mut peak_kib = 0;
    loop {
        if let Some(kib) = vm_hwm_kib(child.id()) {
            peak_kib = peak_kib.max(kib);
        }
        if child.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let seconds = started.elapsed().as_secs_f64();
    let output = child.wait_with_output()?;
    ensure!(output.status.success(), "berth gc failed");
    Ok(Pass {
        seconds,
        peak_rss_mib: peak_kib as f64 / 1024.0,
        output: String::from_utf8_lossy(&output.stdout).into_owned(),
    })
}

fn gc_command(bin: &Path, data: &Path, env: &[(String, String)]) -> Command {
    let mut command = Command::new(bin);
    command
        .arg("gc")
        .arg("--data-dir")
        .arg(data)
        .env("BERTH_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("BERTH_GC_GRACE_SECS", "0")
        .stderr(Stdio::null());
    command
}

/// `VmHWM` of process `pid`, in KiB, while it runs.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Passes the server has completed (`berth_gc_passes_total` on `/metrics`).
async fn passes_done(server: &Server) -> anyhow::Result<u64> {
    let text = reqwest::get(format!("{}/metrics", server.base))
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(text
        .lines()
        .find(|l| l.starts_with("berth_gc_passes_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64))
}

/// An image manifest whose config and layers are `blobs`.
fn image_using(blobs: &[crate::payload::Blob]) -> bytes::Bytes {
    let descriptor = |blob: &crate::payload::Blob, media_type: &str| serde_json::json!({"mediaType": media_type, "digest": blob.digest, "size": blob.bytes.len()});
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor(&blobs[0], "application/vnd.oci.image.config.v1+json"),
        "layers": blobs.iter().map(|b| descriptor(b, "application/vnd.oci.image.layer.v1.tar")).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&manifest)
        .expect("a manifest serializes")
        .into()
}

/// `sha256:` and the hex digest of `bytes`.
fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Seeds `blobs` blobs (bytes on disk, rows linked to [`REPO`] at time 0) and `manifests`
/// manifests, manifest `i` using blob `i`.
async fn seed(data: &Path, blobs: usize, manifests: usize) -> anyhow::Result<()> {
    let url = format!("sqlite://{}", data.join("metadata.sqlite").display());
    let mut conn = SqliteConnection::connect(&url).await?;
    let mut tx = conn.begin().await?;
    let repository_id: i64 = sqlx::query_scalar(
        "INSERT INTO repositories (name, created_at) VALUES (?1, 0) RETURNING id",
    )
    .bind(REPO)
    .fetch_one(&mut *tx)
    .await?;
    let digests: Vec<(String, Vec<u8>)> = (0..blobs)
        .map(|i| {
            let bytes = format!("gc bench blob {i}").into_bytes();
            (digest(&bytes), bytes)
        })
        .collect();
    for chunk in digests.chunks(BATCH) {
        let values = vec!["(?, ?)"; chunk.len()].join(", ");
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO blobs (digest, size) VALUES {values}"
        )));
        for (d, bytes) in chunk {
            insert = insert.bind(d).bind(bytes.len() as i64);
        }
        insert.execute(&mut *tx).await?;
        let values = vec!["(?, ?, 0)"; chunk.len()].join(", ");
        let mut link = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO repository_blobs (repository_id, digest, linked_at) VALUES {values}"
        )));
        for (d, _) in chunk {
            link = link.bind(repository_id).bind(d);
        }
        link.execute(&mut *tx).await?;
    }
    let manifest_rows: Vec<(String, Vec<u8>, &str)> = digests[..manifests]
        .iter()
        .enumerate()
        .map(|(i, (blob, _))| {
            let content = format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{blob}","size":1}},"layers":[],"annotations":{{"n":"{i}"}}}}"#
            )
            .into_bytes();
            (digest(&content), content, blob.as_str())
        })
        .collect();
    for chunk in manifest_rows.chunks(BATCH) {
        let values =
            vec!["(?, ?, 'application/vnd.oci.image.manifest.v1+json', ?, ?, 0)"; chunk.len()]
                .join(", ");
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO manifests (repository_id, digest, media_type, size, content, created_at) \
             VALUES {values}"
        )));
        for (d, content, _) in chunk {
            insert = insert
                .bind(repository_id)
                .bind(d)
                .bind(content.len() as i64)
                .bind(content.clone());
        }
        insert.execute(&mut *tx).await?;
        let values = vec!["(?, ?, ?)"; chunk.len()].join(", ");
        let mut uses = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO manifest_blobs (repository_id, manifest_digest, blob_digest) VALUES {values}"
        )));
        for (d, _, blob) in chunk {
            uses = uses.bind(repository_id).bind(d).bind(*blob);
        }
        uses.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    conn.close().await?;
    for (d, bytes) in &digests {
        let hex = &d["sha256:".len()..];
        let dir = data.join("blobs").join("sha256").join(&hex[..2]);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(hex), bytes)?;
    }
    Ok(())
}
