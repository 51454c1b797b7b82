//! `--growth`: what four reads cost as the store grows. On each backend (SQLite, PostgreSQL)
//! it builds two stores, an almost empty one and a big one ([`Shape`]), seeded directly in
//! the database ([`crate::seed`]), and measures on each, with `berth serve` started on it:
//!
//! 1. a page of tags after a tag in the middle of [`TAGS_REPO`]
//!    (`GET /v2/bench/tags/tags/list?n=100&last=…`);
//! 2. a page of the catalog after a repository in the middle
//!    (`GET /v2/_catalog?n=100&last=…`);
//! 3. a middle page of the Packages API listing of the organization
//!    (`GET /api/v3/orgs/bench/packages?package_type=container&per_page=100&page=…`);
//! 4. a manifest GET by tag, round-robin over 100 tags spread over [`TAGS_REPO`].
//!
//! Each answer is checked once (status, a full page, the expected first entry, the
//! manifest's digest). Per request it measures the latency of sequential requests on one
//! connection after a warm-up (p50 and p99), then the throughput of `--clients` concurrent
//! clients for `--growth-seconds`. With `--rounds N` the stores are seeded once and each round
//! starts a fresh `berth serve` on each (the order alternating); the table shows the medians
//! and ranges and the ratio big/empty, with the target: within 2× (latency at most 2× the
//! empty store's, throughput at least half of it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::ValueEnum;
use sha2::{Digest as _, Sha256};
use sqlx::{AssertSqlSafe, Connection as _, PgConnection};
use tempfile::TempDir;
use tokio::task::JoinSet;

use crate::oci::Registry;
use crate::report::Spread;
use crate::seed::{self, ORG, Shape, TAGS_REPO};
use crate::server::{self, Server};

/// The almost empty store: a full page of each listing, and no more than that.
pub const EMPTY: Shape = Shape {
    tags: 300,
    packages: 300,
    manifests: 599,
};

/// Page size of the three listings.
const PAGE: usize = 100;
/// How many tags the manifest GETs go round.
const MANIFEST_TAGS: usize = 100;
/// The target: the big store's figure within this factor of the empty store's.
const TARGET: f64 = 2.0;

/// Which backends `--growth` measures.
#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum Backends {
    /// SQLite, then PostgreSQL.
    Both,
    /// SQLite (`sqlite:<data dir>/metadata.sqlite`).
    Sqlite,
    /// PostgreSQL (a database created on `--database-url`'s server).
    Postgres,
}

/// One metadata backend.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// What `--growth` was told.
pub struct Settings {
    /// The backends to measure.
    pub backends: Backends,
    /// A PostgreSQL database the bench may connect to, to create (and drop) its own.
    pub database_url: Option<String>,
    /// The big store.
    pub big: Shape,
    /// Timed sequential requests per figure.
    pub requests: usize,
    /// Untimed requests before them.
    pub warmup: usize,
    /// Concurrent clients of the throughput measurement.
    pub clients: usize,
    /// How long the throughput of each request is measured.
    pub seconds: f64,
    /// Rounds over both stores.
    pub rounds: usize,
    /// Keep the stores (data directories and databases) after the run, for EXPLAIN.
    pub keep: bool,
    /// `--berth-env`, applied after the bench's own settings.
    pub berth_env: Vec<(String, String)>,
}

/// A store to measure: its data directory, database and bootstrap token.
struct Store {
    label: &'static str,
    shape: Shape,
    /// Holds `data` (and `metadata.sqlite` on SQLite).
    dir: TempDir,
    /// The environment of `berth admin` and `berth serve` on it.
    env: Vec<(String, String)>,
    /// `bench-admin`'s token.
    token: String,
    /// On PostgreSQL, the database's name (created on the server of `--database-url`).
    database: Option<String>,
}

impl Store {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

/// Runs the growth benchmark.
pub fn run(settings: &Settings, bin: &Path) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let backends = match settings.backends {
        Backends::Both => vec![Backend::Sqlite, Backend::Postgres],
        Backends::Sqlite => vec![Backend::Sqlite],
        Backends::Postgres => vec![Backend::Postgres],
    };
    if backends.contains(&Backend::Postgres) {
        ensure!(
            settings.database_url.is_some(),
            "--growth on PostgreSQL needs --database-url (or TEST_POSTGRES): a database \
             on the server where the bench may create its own"
        );
    }
    let mut tables = Vec::new();
    for backend in backends {
        let table = runtime.block_on(async {
            tokio::select! {
                table = run_backend(settings, bin, backend) => table,
                _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
            }
        })?;
        print!("{table}");
        tables.push(table);
    }
    println!("\n══ summary");
    for table in tables {
        print!("{table}");
    }
    Ok(())
}

/// Seeds both stores of `backend`, measures them round after round, returns the table.
async fn run_backend(settings: &Settings, bin: &Path, backend: Backend) -> anyhow::Result<String> {
    println!("\n── {}", backend.name());
    let mut stores = Vec::new();
    for (label, shape) in [("empty", EMPTY), ("big", settings.big)] {
        stores.push(create_store(settings, bin, backend, label, shape).await?);
    }
    let mut figures: Vec<Vec<[Figures; 4]>> = vec![Vec::new(), Vec::new()];
    let result = async {
        for round in 0..settings.rounds {
            let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for index in order {
                let store = &stores[index];
                let server =
                    Server::start_berth_at(bin, "Berth", &store.data(), &store.env, &store.token)?;
                println!(
                    "  round {}, {} store, {} at {}:",
                    round + 1,
                    store.label,
                    backend.name(),
                    server.base
                );
                let measured = measure_store(settings, &server, &store.shape)
                    .await
                    .with_context(|| {
                        format!(
                            "{} store on {}; server log:\n{}",
                            store.label,
                            backend.name(),
                            server.recent_log()
                        )
                    })?;
                figures[index].push(measured);
            }
        }
        anyhow::Ok(())
    }
    .await;
    for store in stores {
        if settings.keep {
            let kept = store.dir.keep();
            match &store.database {
                Some(name) => println!(
                    "  kept the {} store: data {}, database {name}",
                    store.label,
                    kept.display()
                ),
                None => println!("  kept the {} store: {}", store.label, kept.display()),
            }
        } else if let Some(name) = &store.database {
            drop_database(settings, name).await?;
        }
    }
    result?;
    Ok(render(backend, settings, &figures))
}

/// Creates the `label` store of `shape` on `backend`: a data directory, on PostgreSQL a
/// database, `berth admin` to make the schema and the bench's accounts, then the seed.
async fn create_store(
    settings: &Settings,
    bin: &Path,
    backend: Backend,
    label: &'static str,
    shape: Shape,
) -> anyhow::Result<Store> {
    let dir = TempDir::with_prefix(format!("berth-growth-{label}-"))?;
    let data = dir.path().join("data");
    let mut env = vec![
        // The listings are timed, not rationed: lift the API's rate limits.
        (
            "BERTH_API_RATE_LIMIT_PER_HOUR".to_owned(),
            "1000000000".to_owned(),
        ),
        (
            "BERTH_API_RATE_LIMIT_PER_MINUTE".to_owned(),
            "1000000000".to_owned(),
        ),
    ];
    let mut database = None;
    let url = match backend {
        Backend::Sqlite => format!("sqlite:{}", data.join("metadata.sqlite").display()),
        Backend::Postgres => {
            let admin_url = settings.database_url.as_deref().unwrap_or_default();
            let name = format!("berth_growth_{}_{label}", std::process::id());
            let mut conn = PgConnection::connect(admin_url).await?;
            sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                .execute(&mut conn)
                .await?;
            sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await?;
            conn.close().await?;
            database = Some(name.clone());
            let mut url = reqwest::Url::parse(admin_url).context("--database-url")?;
            url.set_path(&format!("/{name}"));
            url.to_string()
        }
    };
    env.push(("BERTH_DATABASE_URL".to_owned(), url.clone()));
    env.extend(settings.berth_env.iter().cloned());
    std::fs::create_dir_all(&data)?;
    // `berth admin` opens the store (which creates the schema) and bootstraps the accounts.
    let token = server::bootstrap_berth(bin, &data, &env)?;
    match backend {
        Backend::Sqlite => seed::seed_sqlite(&data.join("metadata.sqlite"), &shape).await?,
        Backend::Postgres => seed::seed_postgres(&url, &shape).await?,
    }
    seed::write_blob_files(&data)?;
    Ok(Store {
        label,
        shape,
        dir,
        env,
        token,
        database,
    })
}

/// Drops the bench's database `name`.
async fn drop_database(settings: &Settings, name: &str) -> anyhow::Result<()> {
    let admin_url = settings.database_url.as_deref().unwrap_or_default();
    let mut conn = PgConnection::connect(admin_url).await?;
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await?;
    conn.close().await?;
    Ok(())
}

/// What one request measured: p50 and p99 latency in µs, and concurrent requests/s.
#[derive(Clone, Copy, Debug)]
struct Figures {
    p50_us: f64,
    p99_us: f64,
    rate: f64,
}

/// How one of the four requests' first answer is checked.
enum Check {
    /// A JSON object whose `key` is an array of [`PAGE`] strings starting with `first`.
    Page { key: &'static str, first: String },
    /// A JSON array of [`PAGE`] packages whose first is named `first`.
    Packages { first: String },
    /// A manifest whose bytes hash to its `Docker-Content-Digest`.
    Manifest,
}

/// One of the four requests: its label, the paths it goes round, the check.
struct Probe {
    label: &'static str,
    paths: Vec<String>,
    check: Check,
}

/// The four requests on a store of `shape`.
fn probes(shape: &Shape) -> Vec<Probe> {
    let middle_tag = shape.tags / 2;
    let names = shape.repository_names_sorted();
    let middle_repo = names.len() / 2;
    let mut packages = names.clone();
    packages.sort();
    let page = (shape.packages / 2 / PAGE).max(2);
    let stride = (shape.tags / MANIFEST_TAGS).max(1);
    vec![
        Probe {
            label: "tags page",
            paths: vec![format!(
                "/v2/{TAGS_REPO}/tags/list?n={PAGE}&last={}",
                seed::tag_name(middle_tag, shape.tags)
            )],
            check: Check::Page {
                key: "tags",
                first: seed::tag_name(middle_tag + 1, shape.tags),
            },
        },
        Probe {
            label: "catalog page",
            paths: vec![format!("/v2/_catalog?n={PAGE}&last={}", names[middle_repo])],
            check: Check::Page {
                key: "repositories",
                first: names[middle_repo + 1].clone(),
            },
        },
        Probe {
            label: "packages page",
            paths: vec![format!(
                "/api/v3/orgs/{ORG}/packages?package_type=container&per_page={PAGE}&page={page}"
            )],
            check: Check::Packages {
                first: packages[(page - 1) * PAGE].clone(),
            },
        },
        Probe {
            label: "manifest GET",
            paths: (0..shape.tags.min(MANIFEST_TAGS))
                .map(|i| {
                    format!(
                        "/v2/{TAGS_REPO}/manifests/{}",
                        seed::tag_name(i * stride, shape.tags)
                    )
                })
                .collect(),
            check: Check::Manifest,
        },
    ]
}

/// Checks the first answer to `probe`.
fn check(probe: &Probe, digest: Option<&str>, body: &[u8]) -> anyhow::Result<()> {
    let strings = |value: &serde_json::Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    match &probe.check {
        Check::Page { key, first } => {
            let json: serde_json::Value = serde_json::from_slice(body)?;
            let items = strings(&json[key]);
            ensure!(
                items.len() == PAGE && items.first() == Some(first),
                "{}: expected {PAGE} {key} from {first}, got {} from {:?}",
                probe.label,
                items.len(),
                items.first()
            );
        }
        Check::Packages { first } => {
            let json: serde_json::Value = serde_json::from_slice(body)?;
            let items = json
                .as_array()
                .context("the packages listing is an array")?;
            let name = items.first().and_then(|item| item["name"].as_str());
            ensure!(
                items.len() == PAGE && name.is_some_and(|name| first.ends_with(name)),
                "{}: expected {PAGE} packages from {first}, got {} from {name:?}",
                probe.label,
                items.len()
            );
        }
        Check::Manifest => {
            let computed = format!("sha256:{}", hex::encode(Sha256::digest(body)));
            ensure!(
                digest == Some(computed.as_str()),
                "{}: the body hashes to {computed}, Docker-Content-Digest is {digest:?}",
                probe.label
            );
        }
    }
    Ok(())
}

/// Measures the four requests on `server` (a store of `shape`).
async fn measure_store(
    settings: &Settings,
    server: &Server,
    shape: &Shape,
) -> anyhow::Result<[Figures; 4]> {
    let registry = Registry::new(&server.base, server.authorization.as_deref())?;
    let mut figures = Vec::new();
    for probe in probes(shape) {
        let (digest, body) = registry.get(&probe.paths[0]).await?;
        check(&probe, digest.as_deref(), &body)?;
        for i in 0..settings.warmup {
            registry.get(&probe.paths[i % probe.paths.len()]).await?;
        }
        let mut latencies = Vec::with_capacity(settings.requests);
        for i in 0..settings.requests {
            let sent = Instant::now();
            registry.get(&probe.paths[i % probe.paths.len()]).await?;
            latencies.push(sent.elapsed().as_secs_f64() * 1e6);
        }
        latencies.sort_by(f64::total_cmp);
        let rate = throughput(settings, server, &probe.paths).await?;
        let measured = Figures {
            p50_us: percentile(&latencies, 50),
            p99_us: percentile(&latencies, 99),
            rate,
        };
        println!(
            "    {:<14} p50 {:>9.0} µs, p99 {:>9.0} µs, {:>8.1} req/s ({} clients)",
            probe.label, measured.p50_us, measured.p99_us, measured.rate, settings.clients
        );
        figures.push(measured);
    }
    figures
        .try_into()
        .map_err(|_| anyhow::anyhow!("four probes"))
}

/// Requests/s of `settings.clients` clients going round `paths` for `settings.seconds`.
async fn throughput(settings: &Settings, server: &Server, paths: &[String]) -> anyhow::Result<f64> {
    let paths: Arc<Vec<String>> = Arc::new(paths.to_vec());
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(settings.seconds);
    let mut tasks = JoinSet::new();
    for worker in 0..settings.clients {
        let registry = Registry::new(&server.base, server.authorization.as_deref())?;
        let paths = paths.clone();
        tasks.spawn(async move {
            let mut done = 0u64;
            let mut index = worker;
            while Instant::now() < deadline {
                registry.get(&paths[index % paths.len()]).await?;
                index += 1;
                done += 1;
            }
            anyhow::Ok(done)
        });
    }
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        done += joined.context("client panicked")??;
    }
    if done == 0 {
        bail!("no request completed");
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

/// The `pct`th percentile (nearest rank) of ascending `sorted`, which is not empty.
fn percentile(sorted: &[f64], pct: usize) -> f64 {
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// The table of one backend: per request and figure, the empty and big stores' medians (with
/// ranges over several rounds), the ratio big/empty of the medians (with the range of the
/// per-round ratios) and whether it is within the target.
fn render(backend: Backend, settings: &Settings, figures: &[Vec<[Figures; 4]>]) -> String {
    use std::fmt::Write as _;
    let big = settings.big;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{}: empty = {} manifests, {} packages, {} tags; big = {} manifests, {} packages, \
         {} tags; {} rounds, {} sequential requests after {} warm-up, {} clients × {} s",
        backend.name(),
        EMPTY.manifests,
        EMPTY.packages,
        EMPTY.tags,
        big.manifests,
        big.packages,
        big.tags,
        settings.rounds,
        settings.requests,
        settings.warmup,
        settings.clients,
        settings.seconds
    );
    let _ = writeln!(
        out,
        "{:<26} {:>26} {:>26} {:>22}  target ≤{TARGET}×",
        "", "empty", "big", "big/empty"
    );
    let labels = ["tags page", "catalog page", "packages page", "manifest GET"];
    type Pick = fn(&Figures) -> f64;
    let metrics: [(&str, Pick, bool); 3] = [
        ("p50 µs", |f| f.p50_us, true),
        ("p99 µs", |f| f.p99_us, true),
        ("req/s", |f| f.rate, false),
    ];
    for (index, label) in labels.iter().enumerate() {
        for (name, pick, lower_is_better) in metrics {
            let empty: Vec<f64> = figures[0].iter().map(|f| pick(&f[index])).collect();
            let big: Vec<f64> = figures[1].iter().map(|f| pick(&f[index])).collect();
            let (Some(e), Some(b)) = (Spread::of(&empty), Spread::of(&big)) else {
                continue;
            };
            let ratio = b.median / e.median;
            let per_round: Vec<f64> = big.iter().zip(&empty).map(|(b, e)| b / e).collect();
            let range = Spread::of(&per_round)
                .filter(|_| per_round.len() > 1)
                .map(|s| format!(" ({:.2}–{:.2})", s.min, s.max))
                .unwrap_or_default();
            // Latency may grow to TARGET×, throughput may fall to 1/TARGET.
            let met = if lower_is_better {
                ratio <= TARGET
            } else {
                ratio >= 1.0 / TARGET
            };
            let row = format!("{label} {name}");
            let _ = writeln!(
                out,
                "{row:<26} {:>26} {:>26} {:>22}  {}",
                spread_cell(&empty),
                spread_cell(&big),
                format!("{ratio:.2}{range}"),
                if met { "met" } else { "MISSED" }
            );
        }
    }
    out
}

/// A figure's median and, over several rounds, its range.
fn spread_cell(values: &[f64]) -> String {
    match Spread::of(values) {
        None => "n/a".to_owned(),
        Some(s) if values.len() == 1 => format!("{:.0}", s.median),
        Some(s) => format!("{:.0} ({:.0}–{:.0})", s.median, s.min, s.max),
    }
}
