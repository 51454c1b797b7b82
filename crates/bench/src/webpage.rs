//! `--web-page`: how long the web UI takes to render a package with many versions.
//!
//! It starts `berth serve` (SQLite + disk), pushes `--web-versions` versions of one package
//! (`bench/app`: each its own manifest over one config and one layer, every other one tagged,
//! with a description label) through the registry API, signs the site administrator in
//! through the sign-in form, then times `--web-requests` sequential `GET`s (after a warm-up)
//! of each page on one connection: the package page and the first page of all its versions.
//! The time is the client's on loopback — the server's work plus one local round trip, no
//! browser. Each answer is checked once (200, the package's name on it). Target: p99 under
//! 50 ms. With `--rounds N` each round starts a fresh server on the same data.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use tempfile::TempDir;

use crate::oci::Registry;
use crate::payload::{Blob, MANIFEST_MEDIA_TYPE};
use crate::report::Spread;
use crate::server::{self, Server};

/// The package the versions are pushed to.
const PACKAGE: &str = "bench/app";
/// The password the administrator signs in with.
const PASSWORD: &str = "bench-password-1";
/// The target p99, in milliseconds.
const TARGET_MS: f64 = 50.0;
/// Requests before the timed ones.
const WARMUP: usize = 20;

/// What `--web-page` measures.
pub struct Settings {
    /// Versions pushed.
    pub versions: usize,
    /// Timed requests per page and round.
    pub requests: usize,
    /// Rounds.
    pub rounds: usize,
    /// Extra settings for `berth`.
    pub berth_env: Vec<(String, String)>,
}

/// The pages timed: a name and the path.
const PAGES: [(&str, &str); 2] = [
    ("package page", "/orgs/bench/packages/container/package/app"),
    (
        "all versions, first page",
        "/orgs/bench/packages/container/app/versions",
    ),
];

/// Runs the web page benchmark.
pub fn run(settings: &Settings, bin: &Path) -> anyhow::Result<()> {
    ensure!(
        settings.versions > 0 && settings.requests > 0,
        "nothing to measure"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = TempDir::with_prefix("berth-web-bench-")?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data)?;
    let env = settings.berth_env.clone();
    let token = server::bootstrap_berth(bin, &data, &env)?;
    set_password(bin, &data, &env)?;
    let mut figures: Vec<Vec<(f64, f64)>> = vec![Vec::new(); PAGES.len()];
    for round in 0..settings.rounds {
        let server = Server::start_berth_at(bin, "Berth", &data, &env, &token)?;
        if round == 0 {
            let started = Instant::now();
            runtime.block_on(push_versions(&server, settings.versions))?;
            println!(
                "pushed {} versions of {PACKAGE} in {:.1} s",
                settings.versions,
                started.elapsed().as_secs_f64()
            );
        }
        let measured = runtime.block_on(measure(&server, settings.requests))?;
        for (index, (p50, p99)) in measured.into_iter().enumerate() {
            println!(
                "round {}: {}: p50 {p50:.2} ms, p99 {p99:.2} ms",
                round + 1,
                PAGES[index].0
            );
            figures[index].push((p50, p99));
        }
    }
    println!();
    println!(
        "web UI pages of a package with {} versions ({} sequential requests per page and round, {} rounds; medians [ranges]):",
        settings.versions, settings.requests, settings.rounds
    );
    println!("| page | p50 ms | p99 ms | target p99 | met? |");
    println!("|---|---|---|---|---|");
    for (index, (name, path)) in PAGES.iter().enumerate() {
        let p50: Vec<f64> = figures[index].iter().map(|f| f.0).collect();
        let p99: Vec<f64> = figures[index].iter().map(|f| f.1).collect();
        let (p50, p99) = (
            Spread::of(&p50).context("no figures")?,
            Spread::of(&p99).context("no figures")?,
        );
        println!(
            "| {name} (`{path}`) | {:.2} [{:.2}–{:.2}] | {:.2} [{:.2}–{:.2}] | < {TARGET_MS} | {} |",
            p50.median,
            p50.min,
            p50.max,
            p99.median,
            p99.min,
            p99.max,
            if p99.median < TARGET_MS { "yes" } else { "no" }
        );
    }
    Ok(())
}

/// Gives `bench-admin` the web password [`PASSWORD`].
fn set_password(bin: &Path, data: &Path, env: &[(String, String)]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut child = Command::new(bin)
        .args(["admin", "--data-dir"])
        .arg(data)
        .args(["set-password", "bench-admin"])
        .env("BERTH_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running berth admin set-password")?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(format!("{PASSWORD}\n").as_bytes())?;
    let output = child.wait_with_output()?;
    ensure!(
        output.status.success(),
        "berth admin set-password failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// Pushes `count` versions of [`PACKAGE`], eight at a time.
async fn push_versions(server: &Server, count: usize) -> anyhow::Result<()> {
    let registry = Registry::new(&server.base, server.authorization.as_deref())?;
    let layer = Blob::new(vec![7u8; 4096]);
    let config = Blob::new(
        format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            layer.digest
        )
        .into_bytes(),
    );
    registry.push_monolithic(PACKAGE, &layer).await?;
    registry.push_monolithic(PACKAGE, &config).await?;
    let registry = std::sync::Arc::new(registry);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let registry = registry.clone();
        let (config, layer, config_size) = (
            config.digest.clone(),
            layer.digest.clone(),
            config.bytes.len(),
        );
        tasks.spawn(async move {
            let mut index = worker;
            while index < count {
                let manifest = format!(
                    r#"{{"schemaVersion":2,"mediaType":"{MANIFEST_MEDIA_TYPE}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":4096}}],"annotations":{{"org.opencontainers.image.description":"A benchmark image","org.opencontainers.image.version":"{index}"}}}}"#,
                    config_size,
                );
                let reference = if index % 2 == 0 {
                    format!("v{index}")
                } else {
                    format!("sha256:{}", sha256_hex(manifest.as_bytes()))
                };
                registry
                    .put_manifest(PACKAGE, &reference, manifest.into_bytes().into())
                    .await?;
                index += 8;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Signs in through the form; the session cookie.
async fn sign_in(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let form = client.get(format!("{base}/login")).send().await?;
    let csrf_cookie = cookie(&form, "berth_csrf").context("no CSRF cookie")?;
    let body = form.text().await?;
    let token = body
        .split("name=\"authenticity_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("no CSRF token on the sign-in form")?
        .to_owned();
    let answer = client
        .post(format!("{base}/login"))
        .header(COOKIE, format!("berth_csrf={csrf_cookie}"))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(format!(
            "login=bench-admin&password={PASSWORD}&authenticity_token={token}&return_to=%2F"
        ))
        .send()
        .await?;
    ensure!(
        answer.status() == reqwest::StatusCode::SEE_OTHER
            && answer.headers().contains_key(LOCATION),
        "signing in answered {}",
        answer.status()
    );
    cookie(&answer, "berth_session").context("no session cookie")
}

fn cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

/// Each page's p50 and p99 in milliseconds.
async fn measure(server: &Server, requests: usize) -> anyhow::Result<Vec<(f64, f64)>> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .http1_only()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(60))
        .build()?;
    let session = sign_in(&client, &server.base).await?;
    let mut figures = Vec::new();
    for (name, path) in PAGES {
        let url = format!("{}{path}", server.base);
        let get = || {
            client
                .get(&url)
                .header(COOKIE, format!("berth_session={session}"))
                .send()
        };
        let first = get().await?;
        let status = first.status();
        let body = first.text().await?;
        if !status.is_success() || !body.contains("app") {
            bail!("{name} answered {status}: {}", &body[..body.len().min(300)]);
        }
        for _ in 0..WARMUP {
            get().await?.bytes().await?;
        }
        let mut times = Vec::with_capacity(requests);
        for _ in 0..requests {
            let started = Instant::now();
            let response = get().await?;
            ensure!(
                response.status().is_success(),
                "{name}: {}",
                response.status()
            );
            response.bytes().await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        figures.push((percentile(&times, 50), percentile(&times, 99)));
    }
    Ok(figures)
}

/// The nearest-rank percentile of ascending `sorted`.
fn percentile(sorted: &[f64], pct: usize) -> f64 {
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted[rank - 1]
}
