//! `berth-bench`: throughput, latency and memory of Berth side by side with CNCF Distribution
//! (`docker-registry`), or of two Berth configurations (`--observability-cost`), under the same
//! load, one server after the other. It is not a test: it prints figures. It speaks only the
//! OCI distribution HTTP API (v1.1), so it works against any registry.
//!
//! For each server it starts a fresh instance on a free local port with an empty temporary data
//! directory, then runs these phases, printing each phase's rate and the server's peak RSS
//! (`VmHWM`, reset through `/proc/<pid>/clear_refs` before the phase):
//!
//! a. **monolithic push**: each of 4 clients pushes its own 256 MiB blob to `bench/mono` as
//!    `POST /v2/<name>/blobs/uploads/` then one `PUT <location>?digest=` with the whole body
//!    (MiB/s over the phase's wall time);
//! b. **chunked push**: the same with other blobs to `bench/chunked`, as 8 MiB `PATCH`es with
//!    `Content-Range`, following each `Location`, then `PUT ?digest=` without a body;
//! c. **pull**: each client GETs one blob per round, 2 rounds (mono then chunked), 2 GiB in all;
//! d. **small images push**: 1,000 one-layer images (~1 KiB layer, config, OCI manifest by tag) to
//!    `bench/small` (images/s);
//! e. **manifest GET**: for 10 s, each client GETs the 1,000 tags' manifests round-robin
//!    (req/s, p50 and p99 latency).
//!
//! Over the whole run of a server, from its start to the end of phase e, it also reports the
//! server's CPU time and its peak RSS as if `VmHWM` had never been reset: the largest `VmHWM`
//! read just before each reset and at the end, which covers the moments between phases too.
//!
//! Right before and right after each push phase of a server that writes to the local disk (the
//! chunked push's second run after the pull), it measures the machine's ceiling for that phase
//! ([`ceiling`]: the same blobs over loopback TCP, hashed and written durably by a bare program,
//! no HTTP; the server runs idle meanwhile); after the table it prints each server's share of
//! it, each round's rate against the mean of the two measurements around it (the VM's speed
//! drifts within a minute by more than the shares it compares: [`Bracket::rate`]), as a median
//! and range.
//! Every push phase, the ceiling's and the servers', starts right after the bench wrote and
//! deleted twice its bytes ([`warm_pages`]: on these VMs a page freed a second ago costs
//! several times more to write than one freed just now).
//!
//! With `--rounds N` (default 1) it does all this N times, alternating the order of the
//! servers (round 1: Berth then Distribution, round 2: Distribution then Berth, …) so that
//! neither always runs first on a machine whose state drifts; each round starts every server
//! afresh. The per-phase lines are printed as each round goes. The data directories of the
//! servers that ran are removed when the bench ends, not before the next server starts (why:
//! [`server::Server::stop_keeping_data`]), and each is made in a block group of its own, so
//! that no server's file creations pay for another's deletions ([`scratch`]). The files of a
//! MiB or more do go between servers, and the host trims what they held for many seconds
//! after, so before each server starts the bench waits until the machine counts next to no
//! steal ([`settle`]) and prints how long that took.
//!
//! Then it prints a table of both servers with a ratio column (above 1 = Berth better). Each
//! cell is the median over the rounds followed, with several rounds, by the range:
//! `1234.5 (1100.0–1300.0)`; the ratio is that of the medians, followed by the range of the
//! ratio computed round by round (both servers ran in each round, under the same conditions).
//! Payloads are generated and hashed before any clock starts; the client sends `Bytes` slices
//! without copying and counts response bytes without hashing, so it stays cheap beside the
//! server on the same machine.
//!
//! **Observability cost.** With `--observability-cost` the two columns are not Berth and
//! Distribution (which is then not run) but two configurations of Berth, run in the same way
//! (rounds, alternation, fresh instances):
//!
//! - "Berth observed": metrics and the request log on (`BERTH_METRICS=true`, `BERTH_LOG=info`:
//!   one log line per request on stderr);
//! - "Berth quiet": both off (`BERTH_METRICS=false`, no metrics recorder installed;
//!   `BERTH_LOG=warn`).
//!
//! The ratio column is then "observed/quiet ×": observed/quiet for rates and quiet/observed for
//! latency, RSS and CPU, so 0.95 means observability costs 5 %. The bench reads Berth's stderr
//! through a pipe on a thread of its own, on the same cores as the server, so that thread is
//! kept cheap (64 KiB reads, no per-line work once the address is known): the request log's
//! cost shows on the server's side, not the bench's. `--berth-env` applies to both
//! configurations but may not set `BERTH_METRICS` or `BERTH_LOG`. A Berth that does not know a
//! setting ignores it with a warning on stderr, which the bench repeats at startup: if
//! `BERTH_METRICS` is reported as ignored, both columns ran with metrics on.
//!
//! Run it with:
//!
//! ```text
//! cargo build --release -p berth -p berth-bench && target/release/berth-bench
//! ```
//!
//! Quick run: `target/release/berth-bench --size-mib 64 --seconds 3`; one server only:
//! `--only berth` or `--only distribution` (or `--skip-distribution`). `--only berth,bare`
//! runs Berth beside `bare-registry` (`src/bin/bare-registry.rs`), the least an HTTP registry
//! does for this load: what is left between the two is Berth's own work, what is left between
//! `bare-registry` and the machine's ceiling is HTTP's. On a noisy machine, run
//! several rounds and read the medians and ranges:
//!
//! ```text
//! target/release/berth-bench --rounds 5 --size-mib 64 --images 50 --seconds 5
//! ```
//!
//! What observability costs, the same way:
//!
//! ```text
//! target/release/berth-bench --observability-cost --rounds 5 --size-mib 64 --images 50 --seconds 5
//! ```
//!
//! `--berth-env KEY=VALUE` (repeatable) passes more settings to Berth, e.g.
//! `--berth-env BERTH_LOG=info` to benchmark Berth against Distribution with its request log on.
//!
//! **Cost as the work grows.** With `--growth` it runs none of the above but [`growth`]: four
//! reads (a page of tags, of the catalog, of the Packages API listing, a manifest GET by tag)
//! on an almost empty store and on a big one (by default 1,000,000 manifests, an organization
//! of 10,000 packages, a repository of 100,000 tags) seeded directly in the database
//! ([`seed`]), on SQLite and PostgreSQL, with the ratio big/empty of each figure:
//!
//! ```text
//! eval "$(scripts/services start)"
//! target/release/berth-bench --growth --rounds 3   # --database-url defaults to $TEST_POSTGRES
//! ```
//!
//! **Scale-out.** With `--scale-out` the columns are seven configurations ([`scale_out`]), run
//! through phases a to e as above (rounds, alternation, fresh instances): Berth on SQLite and
//! disk; one Berth on PostgreSQL and a one-node Garage; Distribution's S3 driver on a one-node
//! Garage; one Berth on PostgreSQL and a three-node Garage (replication factor 3); three Berth
//! nodes behind nginx on the same, and one node behind the same nginx (the balancer's cost);
//! Distribution on a three-node Garage. The bench starts a fresh Garage ([`garage`]),
//! database and balancer for every run of every configuration (PostgreSQL itself comes from
//! `--database-url`, default `$TEST_POSTGRES`), and reports the Garage nodes' CPU time beside
//! the registry's. A run that fails is said and run once more afresh. After the table it prints the ratios between
//! columns: Berth against Distribution on each Garage, three nodes against one, PostgreSQL and
//! Garage against SQLite and disk. `--scale-out-configs` picks some of the seven. Before the
//! servers it measures the object store's ceiling on a fresh Garage of each size the columns
//! use ([`ceiling_s3`]: the bench hashing and writing the same blobs straight to Garage, and
//! reading them back; best of three runs), and after the table each column's share of its
//! Garage's ceiling and the greatest ratio any registry could reach against Distribution
//! there.
//! `scripts/bench-scale-out` builds, starts PostgreSQL, runs it and stops PostgreSQL:
//!
//! ```text
//! scripts/bench-scale-out        # --scale-out --rounds 3 --size-mib 128
//! ```

mod ceiling;
mod ceiling_s3;
mod garage;
mod gc;
mod growth;
mod oci;
mod payload;
mod phases;
mod report;
mod scale_out;
mod scratch;
mod seed;
mod server;
mod settle;
mod webpage;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::{Parser, ValueEnum};

use phases::Load;
use report::ServerFigures;
use server::Server;

/// Benchmark Berth against CNCF Distribution over the OCI distribution API.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The `berth` executable (default: `berth` next to this executable).
    #[arg(long)]
    berth_bin: Option<PathBuf>,
    /// The Distribution executable.
    #[arg(long, default_value = "/usr/bin/docker-registry")]
    distribution_bin: PathBuf,
    /// Benchmark only these servers (comma-separated), e.g. `--only berth,bare`.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Which>,
    /// Benchmark Berth alone (same as `--only berth`).
    #[arg(long)]
    skip_distribution: bool,
    /// Size of each large blob, in MiB.
    #[arg(long, default_value_t = 256)]
    size_mib: usize,
    /// Size of each `PATCH` of the chunked push, in MiB.
    #[arg(long, default_value_t = 8)]
    chunk_mib: usize,
    /// Concurrent clients in every phase.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Small images pushed (and tags read by the manifest-GET phase). 1,000 keep Berth's phase
    /// about 2.6 s long: at 200 it lasted ~0.6 s, and one slow second of a noisy host swung a
    /// round by a third (BENCHMARKS.md, "Lean and steady, part 14").
    #[arg(long, default_value_t = 1000)]
    images: usize,
    /// Duration of the manifest-GET phase, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Rounds: each runs every server once through all phases, with a fresh instance and data
    /// directory; the order of the servers alternates from round to round. The table shows
    /// each figure's median and range over the rounds.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Rounds of the pull phase (each client pulls one large blob per round).
    #[arg(long, default_value_t = 2)]
    pull_rounds: usize,
    /// Instead of Berth against Distribution, Berth against itself: "Berth observed" (metrics
    /// and request log on: `BERTH_METRICS=true`, `BERTH_LOG=info`) and "Berth quiet" (both
    /// off: `BERTH_METRICS=false`, `BERTH_LOG=warn`), to measure what observability costs.
    #[arg(long, conflicts_with_all = ["only", "skip_distribution"])]
    observability_cost: bool,
    /// An extra environment variable for `berth serve` (and `berth admin`), as KEY=VALUE;
    /// repeatable. Set after the bench's own `BERTH_LOG=warn`, so it may override it.
    #[arg(long = "berth-env", value_name = "KEY=VALUE", value_parser = parse_env)]
    berth_env: Vec<(String, String)>,
    /// Instead of the phases: what four reads cost on a big store against an almost empty
    /// one, on SQLite and PostgreSQL (see `--growth-*`; `--clients` and `--rounds` apply).
    #[arg(long, conflicts_with_all = ["only", "skip_distribution", "observability_cost"])]
    growth: bool,
    /// The backends `--growth` measures.
    #[arg(long, value_enum, default_value = "both", requires = "growth")]
    growth_backend: growth::Backends,
    /// A PostgreSQL database (`postgres://…`) on the server where `--growth` may create and
    /// drop its own databases.
    #[arg(long, env = "TEST_POSTGRES", hide_env_values = true)]
    database_url: Option<String>,
    /// Manifests in `--growth`'s big store.
    #[arg(long, default_value_t = 1_000_000, requires = "growth")]
    growth_manifests: usize,
    /// Packages of the organization in `--growth`'s big store.
    #[arg(long, default_value_t = 10_000, requires = "growth")]
    growth_packages: usize,
    /// Tags of the big repository in `--growth`'s big store.
    #[arg(long, default_value_t = 100_000, requires = "growth")]
    growth_tags: usize,
    /// Timed sequential requests per figure of `--growth` (p50, p99).
    #[arg(long, default_value_t = 300, requires = "growth")]
    growth_requests: usize,
    /// Untimed requests before them.
    #[arg(long, default_value_t = 50, requires = "growth")]
    growth_warmup: usize,
    /// Seconds of `--clients` concurrent clients per request of `--growth` (req/s).
    #[arg(long, default_value_t = 3.0, requires = "growth")]
    growth_seconds: f64,
    /// Keep `--growth`'s stores (data directories, databases) for a look (EXPLAIN) afterwards.
    #[arg(long, requires = "growth")]
    growth_keep: bool,
    /// Instead of Berth against Distribution on disk: Berth on SQLite and disk, on PostgreSQL
    /// and Garage (one node; three nodes behind nginx), and Distribution's S3 driver on the
    /// same Garage (one node and three), side by side; each run on a fresh Garage and database
    /// (`--database-url` defaults to $TEST_POSTGRES).
    #[arg(long, conflicts_with_all = ["only", "skip_distribution", "observability_cost", "growth"])]
    scale_out: bool,
    /// The configurations `--scale-out` runs (comma-separated; default: all, in this order).
    #[arg(long, value_enum, value_delimiter = ',', requires = "scale_out")]
    scale_out_configs: Vec<scale_out::Config>,
    /// Runs of the object store's ceiling per Garage size, each on a fresh Garage (the best
    /// counts); 0 leaves the ceiling out, for A/B runs of one configuration.
    #[arg(long, default_value_t = 3, requires = "scale_out")]
    s3_ceiling_runs: usize,
    /// Instead of the phases: a garbage-collection pass over a seeded SQLite + disk store
    /// (`--gc-blobs`, `--gc-manifests`), its duration and peak RSS, and the pull phase without
    /// and with passes running beside it (`--rounds` each).
    #[arg(long, conflicts_with_all = ["only", "skip_distribution", "observability_cost", "growth", "scale_out"])]
    gc: bool,
    /// Instead of the phases: how long the web UI takes to render the package page and the
    /// first page of all versions of a package with `--web-versions` versions (p50/p99 of
    /// `--web-requests` sequential requests, `--rounds` rounds).
    #[arg(long, conflicts_with_all = ["only", "skip_distribution", "observability_cost", "growth", "scale_out", "gc"])]
    web_page: bool,
    /// Versions of the package `--web-page` renders.
    #[arg(long, default_value_t = 1000)]
    web_versions: usize,
    /// Timed requests per page and round of `--web-page`.
    #[arg(long, default_value_t = 500)]
    web_requests: usize,
    /// Blobs in `--gc`'s store, all linked to one repository.
    #[arg(long, default_value_t = 100_000, requires = "gc")]
    gc_blobs: usize,
    /// Manifests in `--gc`'s store, each using one blob (the others' links are unused).
    #[arg(long, default_value_t = 50_000, requires = "gc")]
    gc_manifests: usize,
    /// The Garage executable for `--scale-out` (default: `garage` on PATH or in ~/.cargo/bin).
    #[arg(long)]
    garage_bin: Option<PathBuf>,
}

/// Parses `KEY=VALUE` for `--berth-env`: the key is a non-empty name of letters, digits and
/// `_`, not starting with a digit; the value may be empty and may contain `=`.
fn parse_env(text: &str) -> Result<(String, String), String> {
    let (key, value) = text.split_once('=').ok_or_else(|| {
        format!("expected KEY=VALUE (e.g. BERTH_LOG=info), got `{text}`: there is no `=`")
    })?;
    let valid = !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "expected KEY=VALUE (e.g. BERTH_LOG=info), got `{text}`: `{key}` is not a variable \
             name (letters, digits and `_`, not starting with a digit)"
        ));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// A server to benchmark (for `--only`).
#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Which {
    /// Berth, from `--berth-bin`.
    Berth,
    /// CNCF Distribution, from `--distribution-bin`.
    Distribution,
    /// `bare-registry` (built beside this executable): the least an HTTP registry does for
    /// this load, to tell what HTTP itself costs against the machine's ceiling from what
    /// Berth's own work costs. Only with `--only`.
    Bare,
}

/// The settings `--observability-cost` varies between its two Berth configurations.
const OBSERVABILITY_SETTINGS: [&str; 2] = ["BERTH_METRICS", "BERTH_LOG"];

/// One server configuration the bench runs each round: a column of the table.
struct Contender {
    /// Display name and column heading.
    name: &'static str,
    /// What to start.
    kind: Kind,
}

/// The server program of a [`Contender`].
enum Kind {
    /// `berth serve` with these environment variables (set after the bench's `BERTH_LOG=warn`,
    /// before `--berth-env`).
    Berth(&'static [(&'static str, &'static str)]),
    /// Distribution's `docker-registry serve`.
    Distribution,
    /// `bare-registry serve`, beside this executable.
    Bare,
    /// A configuration of `--scale-out`, with its Garage, database and balancer.
    ScaleOut(scale_out::Config),
}

impl Contender {
    /// Whether its blobs go to the local disk (so the disk's ceiling bounds its pushes).
    fn writes_to_local_disk(&self) -> bool {
        match self.kind {
            Kind::Berth(_) | Kind::Distribution | Kind::Bare => true,
            Kind::ScaleOut(config) => config == scale_out::Config::SqliteDisk,
        }
    }

    /// Starts a fresh instance with an empty data directory.
    fn start(&self, cli: &Cli, berth_bin: &Path) -> anyhow::Result<Server> {
        match self.kind {
            Kind::ScaleOut(config) => {
                let garage_bin = garage_bin(cli)?;
                scale_out::start(
                    config,
                    &scale_out::Setup {
                        berth_bin,
                        distribution_bin: &cli.distribution_bin,
                        garage_bin: &garage_bin,
                        database_url: cli.database_url.as_deref(),
                        berth_env: &cli.berth_env,
                    },
                )
            }
            Kind::Berth(env) => {
                let env: Vec<(String, String)> = env
                    .iter()
                    .map(|&(key, value)| (key.to_owned(), value.to_owned()))
                    .chain(cli.berth_env.iter().cloned())
                    .collect();
                Server::start_berth(berth_bin, self.name, &env)
            }
            Kind::Distribution => {
                Server::start_distribution(&cli.distribution_bin, self.name, None)
            }
            Kind::Bare => {
                let bin = std::env::current_exe()?.with_file_name("bare-registry");
                ensure!(
                    bin.is_file(),
                    "no bare-registry executable at {} (build it with `cargo build --release -p \
                     berth-bench`)",
                    bin.display()
                );
                Server::start_bare(&bin, self.name)
            }
        }
    }
}

/// The Garage executable: `--garage-bin`, else `garage` on PATH or in ~/.cargo/bin.
fn garage_bin(cli: &Cli) -> anyhow::Result<PathBuf> {
    if let Some(path) = &cli.garage_bin {
        return Ok(path.clone());
    }
    scale_out::which("garage")
        .or_else(|| {
            let home = std::env::var_os("HOME")?;
            let path = Path::new(&home).join(".cargo/bin/garage");
            path.is_file().then_some(path)
        })
        .context("no garage executable (cargo install garage --locked, or --garage-bin)")
}

/// The order in which `count` contenders run in round `round` (from 0): as given in even
/// rounds, reversed in odd ones, so that none always runs first (or last).
fn round_order(count: usize, round: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..count).collect();
    if round % 2 == 1 {
        order.reverse();
    }
    order
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` shows them.
fn load_average() -> Option<String> {
    let loadavg = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        loadavg
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Every file of the run goes under this directory, removed when it is dropped: last, as it
    // is declared first.
    let _scratch = scratch::isolate()?;
    ensure!(cli.rounds > 0, "--rounds must be positive");
    ensure!(
        cli.size_mib > 0 && cli.chunk_mib > 0,
        "--size-mib and --chunk-mib must be positive"
    );
    ensure!(
        cli.clients > 0 && cli.images > 0,
        "--clients and --images must be positive"
    );
    if cli.growth {
        let big = seed::Shape {
            tags: cli.growth_tags,
            packages: cli.growth_packages,
            manifests: cli.growth_manifests,
        };
        ensure!(
            big.tags > growth::EMPTY.tags
                && big.packages > growth::EMPTY.packages
                && big.manifests >= big.tags + big.packages - 1,
            "the big store must be bigger than the empty one ({:?}) and hold at least a manifest \
             per package",
            growth::EMPTY
        );
        ensure!(
            cli.growth_requests > 0 && cli.growth_seconds > 0.0,
            "--growth-requests and --growth-seconds must be positive"
        );
        let settings = growth::Settings {
            backends: cli.growth_backend,
            database_url: cli.database_url.clone(),
            big,
            requests: cli.growth_requests,
            warmup: cli.growth_warmup,
            clients: cli.clients,
            seconds: cli.growth_seconds,
            rounds: cli.rounds,
            keep: cli.growth_keep,
            berth_env: cli.berth_env.clone(),
        };
        let berth_bin = match &cli.berth_bin {
            Some(path) => path.clone(),
            None => std::env::current_exe()?.with_file_name("berth"),
        };
        ensure!(
            berth_bin.is_file(),
            "no berth executable at {} (build it with `cargo build --release -p berth` or pass --berth-bin)",
            berth_bin.display()
        );
        if let Some(load) = load_average() {
            println!("load average before the run: {load}");
        }
        return growth::run(&settings, &berth_bin);
    }
    if cli.web_page {
        let berth_bin = match &cli.berth_bin {
            Some(path) => path.clone(),
            None => std::env::current_exe()?.with_file_name("berth"),
        };
        ensure!(
            berth_bin.is_file(),
            "no berth executable at {} (build it with `cargo build --release -p berth` or pass --berth-bin)",
            berth_bin.display()
        );
        let settings = webpage::Settings {
            versions: cli.web_versions,
            requests: cli.web_requests,
            rounds: cli.rounds,
            berth_env: cli.berth_env.clone(),
        };
        return webpage::run(&settings, &berth_bin);
    }
    if cli.gc {
        let berth_bin = match &cli.berth_bin {
            Some(path) => path.clone(),
            None => std::env::current_exe()?.with_file_name("berth"),
        };
        ensure!(
            berth_bin.is_file(),
            "no berth executable at {} (build it with `cargo build --release -p berth` or pass --berth-bin)",
            berth_bin.display()
        );
        if let Some(load) = load_average() {
            println!("load average before the run: {load}");
        }
        let settings = gc::Settings {
            blobs: cli.gc_blobs,
            manifests: cli.gc_manifests,
            rounds: cli.rounds,
            load: Load {
                clients: cli.clients,
                chunk_size: cli.chunk_mib << 20,
                pull_rounds: cli.pull_rounds,
                manifest_duration: Duration::from_secs(cli.seconds),
            },
            size: cli.size_mib << 20,
            berth_env: cli.berth_env.clone(),
        };
        return gc::run(&settings, &berth_bin);
    }
    let contenders = if cli.scale_out {
        let configs = if cli.scale_out_configs.is_empty() {
            scale_out::ALL.to_vec()
        } else {
            cli.scale_out_configs.clone()
        };
        if configs.iter().any(|config| config.needs_postgres()) {
            ensure!(
                cli.database_url.is_some(),
                "--scale-out runs Berth on PostgreSQL: pass --database-url (or set TEST_POSTGRES, \
                 e.g. eval \"$(scripts/services start postgres)\")"
            );
        }
        garage_bin(&cli)?;
        configs
            .into_iter()
            .map(|config| Contender {
                name: config.name(),
                kind: Kind::ScaleOut(config),
            })
            .collect()
    } else if cli.observability_cost {
        // The comparison is defined by these two variables; --berth-env must not blur it.
        for (key, _) in &cli.berth_env {
            ensure!(
                !OBSERVABILITY_SETTINGS.contains(&key.as_str()),
                "--berth-env {key}=… conflicts with --observability-cost, which sets {} itself",
                OBSERVABILITY_SETTINGS.join(" and ")
            );
        }
        vec![
            Contender {
                name: "Berth observed",
                kind: Kind::Berth(&[("BERTH_METRICS", "true"), ("BERTH_LOG", "info")]),
            },
            Contender {
                name: "Berth quiet",
                kind: Kind::Berth(&[("BERTH_METRICS", "false"), ("BERTH_LOG", "warn")]),
            },
        ]
    } else {
        let mut servers = if cli.only.is_empty() {
            vec![Which::Berth, Which::Distribution]
        } else {
            let mut only = Vec::new();
            for which in &cli.only {
                if !only.contains(which) {
                    only.push(*which);
                }
            }
            only
        };
        if cli.skip_distribution {
            servers.retain(|which| *which != Which::Distribution);
        }
        ensure!(
            !servers.is_empty(),
            "--skip-distribution with --only distribution leaves nothing to run"
        );
        servers
            .iter()
            .map(|which| match which {
                Which::Berth => Contender {
                    name: "Berth",
                    kind: Kind::Berth(&[]),
                },
                Which::Distribution => Contender {
                    name: "Distribution",
                    kind: Kind::Distribution,
                },
                Which::Bare => Contender {
                    name: "bare HTTP",
                    kind: Kind::Bare,
                },
            })
            .collect()
    };
    let berth_bin = match &cli.berth_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("berth"),
    };
    if contenders
        .iter()
        .any(|contender| !matches!(contender.kind, Kind::Distribution | Kind::Bare))
    {
        ensure!(
            berth_bin.is_file(),
            "no berth executable at {} (build it with `cargo build --release -p berth` or pass --berth-bin)",
            berth_bin.display()
        );
    }

    if let Some(load) = load_average() {
        // Other work on the machine skews every figure; say how busy it was.
        println!("load average before the run: {load}");
    }
    let prepared = Instant::now();
    let size = cli.size_mib * 1024 * 1024;
    let payloads = Payloads {
        monolithic: payload::random_blobs(cli.clients, size, 0),
        chunked: payload::random_blobs(cli.clients, size, 1_000),
        images: Arc::new(payload::small_images(cli.images)),
    };
    println!(
        "payloads ready in {:.1} s: {} clients × {} MiB blobs, {} small images",
        prepared.elapsed().as_secs_f64(),
        cli.clients,
        cli.size_mib,
        cli.images
    );
    if contenders.iter().any(Contender::writes_to_local_disk) {
        println!(
            "\"ceiling\": the machine's, measured right before and right after each push phase \
             of a server on the local disk (no HTTP: TCP → SHA-256 → file, durable)"
        );
    }
    let load = Load {
        clients: cli.clients,
        chunk_size: cli.chunk_mib * 1024 * 1024,
        pull_rounds: cli.pull_rounds,
        manifest_duration: Duration::from_secs(cli.seconds),
    };

    // The object store's ceilings, one per Garage size the columns use.
    let mut s3_ceilings: Vec<ceiling_s3::S3Ceiling> = Vec::new();
    if cli.scale_out && cli.s3_ceiling_runs > 0 {
        let garage_bin = garage_bin(&cli)?;
        let mut sizes: Vec<usize> = contenders
            .iter()
            .filter_map(|contender| match contender.kind {
                Kind::ScaleOut(config) => Some(config.garage_nodes()).filter(|&n| n > 0),
                _ => None,
            })
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        for nodes in sizes {
            let found = ceiling_s3::measure(
                &garage_bin,
                nodes,
                &payloads.monolithic,
                &payloads.chunked,
                load.chunk_size,
                load.pull_rounds,
                cli.s3_ceiling_runs,
            )?;
            println!(
                "Garage{nodes} ceiling (no registry: SHA-256 → S3 multipart, 8 MiB unsigned \
                 parts; best of its runs): monolithic {:.1} MiB/s, chunked {:.1} MiB/s, pull \
                 {:.1} MiB/s",
                found.monolithic, found.chunked, found.pull
            );
            s3_ceilings.push(found);
        }
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The data directories of the servers that ran, removed when the bench ends.
    let mut finished_data: Vec<tempfile::TempDir> = Vec::new();
    let mut columns: Vec<report::Column> = contenders
        .iter()
        .map(|contender| report::Column {
            name: contender.name,
            rounds: Vec::new(),
        })
        .collect();
    // Each column's disk ceilings, one per round (none for a server on S3).
    let mut ceilings: Vec<Vec<Ceiling>> = contenders.iter().map(|_| Vec::new()).collect();
    // Whether a Berth warned that it ignored `BERTH_METRICS` (a build without the setting).
    let mut ignored_metrics_setting = false;
    for round in 0..cli.rounds {
        let order = round_order(contenders.len(), round);
        if cli.rounds > 1 {
            let first = if contenders.len() > 1 {
                format!(": {} first", contenders[order[0]].name)
            } else {
                String::new()
            };
            let load_average = load_average().map(|load| format!("; load average {load}"));
            println!(
                "\n── round {} of {}{first}{}",
                round + 1,
                cli.rounds,
                load_average.unwrap_or_default()
            );
        }
        for index in order {
            // The disk's ceiling around each push phase of a server that writes to the local
            // disk, so its pushes are set against the machine as it is at that moment.
            let with_ceiling = contenders[index].writes_to_local_disk();
            // With --scale-out a run that fails (a service of the many it starts misbehaving)
            // is said and run once more afresh, rather than losing the rounds before it.
            let attempts = if cli.scale_out { 2 } else { 1 };
            for attempt in 1..=attempts {
                // The host trims what the previous server (or run) deleted for many seconds
                // after; that work lands on busy CPUs as steal (see `settle`).
                let settled = runtime.block_on(settle::until_quiet_or_interrupted(SETTLE_LIMIT))?;
                let run = contenders[index]
                    .start(&cli, &berth_bin)
                    .and_then(|server| {
                        ignored_metrics_setting |= server
                            .startup_warnings
                            .iter()
                            .any(|line| line.contains("BERTH_METRICS"));
                        println!("\n{} at {}:", server.name, server.base);
                        print_settled(&settled);
                        let figures = runtime.block_on(async {
                            tokio::select! {
                                figures = run_phases(&server, &payloads, &load, with_ceiling)
                                    => figures,
                                _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
                            }
                        });
                        // Stopped before the next starts; its data is removed when the bench
                        // ends, not now (see `Server::stop_keeping_data`).
                        finished_data.extend(server.stop_keeping_data());
                        figures
                    });
                match run {
                    Ok((figures, ceiling)) => {
                        columns[index].rounds.push(figures);
                        ceilings[index].extend(ceiling);
                        break;
                    }
                    Err(error) if attempt < attempts && error.to_string() != "interrupted" => {
                        println!(
                            "  warning: {} failed ({error:#}); running it again afresh",
                            contenders[index].name
                        )
                    }
                    Err(error) => return Err(error),
                }
            }
        }
    }
    report::print_table(&columns);
    if cli.scale_out {
        let ratios: Vec<report::Ratio> = scale_out::RATIOS
            .iter()
            .filter_map(|&(first, second, heading)| {
                let index = |config: scale_out::Config| {
                    contenders.iter().position(
                        |contender| matches!(contender.kind, Kind::ScaleOut(c) if c == config),
                    )
                };
                Some(report::Ratio {
                    first: index(first)?,
                    second: index(second)?,
                    heading,
                })
            })
            .collect();
        print!("{}", report::render_ratios(&columns, &ratios));
    }
    if cli.observability_cost && ignored_metrics_setting {
        println!(
            "\nwarning: Berth ignored BERTH_METRICS (this build has no such setting), so both \
             columns ran with metrics on: the table measures the request log alone."
        );
    }
    let medians = if cli.rounds > 1 {
        format!(" (medians of {} rounds)", cli.rounds)
    } else {
        String::new()
    };
    for (contender, column) in contenders.iter().zip(&columns) {
        let Kind::ScaleOut(config) = contender.kind else {
            continue;
        };
        let Some(found) = s3_ceilings
            .iter()
            .find(|found| found.nodes == config.garage_nodes())
        else {
            continue;
        };
        let rates = [
            column.median(|run| run.monolithic.rate),
            column.median(|run| run.chunked.rate),
            column.median(|run| run.pull.rate),
        ];
        let ceilings = [found.monolithic, found.chunked, found.pull];
        let share = |i: usize| 100.0 * rates[i] / ceilings[i];
        println!(
            "{} reached {:.0} % of Garage{}'s ceiling in the monolithic push, {:.0} % in the \
             chunked push, {:.0} % in the pull{medians}",
            column.name,
            share(0),
            found.nodes,
            share(1),
            share(2)
        );
        if config.is_distribution() {
            let most = |i: usize| ceilings[i] / rates[i];
            println!(
                "  so no registry can beat it here by more than {:.2}× on monolithic pushes, \
                 {:.2}× on chunked pushes, {:.2}× on pulls",
                most(0),
                most(1),
                most(2)
            );
        }
    }
    for (column, ceilings) in columns.iter().zip(&ceilings) {
        if ceilings.is_empty() {
            continue;
        }
        // Each round's rate against the ceiling measured around that phase, that round.
        let shares = |pick: fn(&ServerFigures) -> f64, of: fn(&Ceiling) -> Bracket| {
            let shares: Vec<f64> = column
                .rounds
                .iter()
                .zip(ceilings)
                .map(|(run, ceiling)| 100.0 * pick(run) / of(ceiling).rate())
                .collect();
            report::cell(&shares, 0)
        };
        println!(
            "{} reached {} % of the machine's ceiling in the monolithic push, {} % in the \
             chunked push{medians}",
            column.name,
            shares(|run| run.monolithic.rate, |c| c.monolithic),
            shares(|run| run.chunked.rate, |c| c.chunked)
        );
        let rates =
            |of: fn(&Ceiling) -> f64| report::cell(&ceilings.iter().map(of).collect::<Vec<_>>(), 1);
        println!(
            "  against the mean of the ceiling measured just before and just after that phase, \
             in MiB/s: monolithic {} before, {} after; chunked {} before, {} after",
            rates(|c| c.monolithic.before),
            rates(|c| c.monolithic.after),
            rates(|c| c.chunked.before),
            rates(|c| c.chunked.after),
        );
    }
    Ok(())
}

/// The longest the bench waits for the machine to go quiet before starting a server.
const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Says how long the bench waited for the machine before starting the server.
fn print_settled(settled: &settle::Settled) {
    let how = if settled.quiet {
        "quiet"
    } else {
        "still not quiet, starting anyway"
    };
    println!(
        "  machine            {how} after {:.1} s (steal {:.2} s while waiting)",
        settled.waited.as_secs_f64(),
        settled.steal_s
    );
}

/// What [`warm_pages`] writes before a push phase of `blobs`: twice their bytes.
fn warm_bytes(blobs: &[payload::Blob]) -> u64 {
    2 * phases::total_len(blobs)
}

/// Writes and deletes a file of `bytes`, so that the page cache the push that follows fills is
/// memory the host backs at that moment.
///
/// These virtual machines hand free memory back to their host (virtio-balloon free page
/// reporting, `/sys/module/page_reporting`), and the next write into a page handed back faults
/// it in on the host and zeroes it. Measured with `dd` (1 GiB into the page cache): 0.46 s right
/// after a delete freed the pages, 3.6–13 s a second or more later. Every push writes its bytes
/// into the page cache, so its rate depends more on that than on the server, and on when it
/// runs. So each push phase, of the ceiling and of every server alike, runs right after this.
///
/// The file is written [`WARM_WRITE`] at a time. Only free blocks of at least
/// `page_reporting_order` pages (here 5: 128 KiB) are handed back, and the page cache of a file
/// written in larger pieces is made of larger folios, which are freed as such blocks and handed
/// back at once. After 25 s idle, a Python model of the ceiling (1 GiB over loopback TCP into
/// files) right after 2 GiB were written and deleted took 2.3–2.7 s of system time when they
/// were written 512 KiB or 8 MiB at a time (8 MiB was this function's size until part 21),
/// 0.58 s when 64 KiB at a time (BENCHMARKS.md, "Lean and steady, part 21").
fn warm_pages(bytes: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("warm");
    let mut file = std::fs::File::create(&path)?;
    let block = vec![0x5au8; WARM_WRITE];
    let mut written = 0;
    while written < bytes {
        file.write_all(&block)?;
        written += block.len() as u64;
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(())
}

/// How much [`warm_pages`] writes at a time: small enough that the folios it leaves free are
/// below the host's reporting size (see there).
const WARM_WRITE: usize = 64 << 10;

/// The machine's ceiling for one push phase ([`ceiling`]), in MiB/s, measured right before and
/// right after a server's run of that phase.
#[derive(Clone, Copy)]
struct Bracket {
    before: f64,
    after: f64,
}

impl Bracket {
    /// What the server's rate is set against: the mean of the two. The VM's speed moves within
    /// seconds by more than the shares compare (up to 44 % between the two measurements around
    /// one phase, BENCHMARKS.md part 18), so one measurement on one side of the phase says less
    /// about the machine during the phase than the two around it.
    fn rate(&self) -> f64 {
        (self.before + self.after) / 2.0
    }
}

/// The disk's ceilings around one server's push phases.
struct Ceiling {
    monolithic: Bracket,
    chunked: Bracket,
}

/// The ceiling's runs around one server's push phases: none for a server that does not write
/// to the local disk. Keeps the files each run wrote until dropped, which the caller does once
/// no phase is measured right after: removing a GiB of durable files makes these VMs' host
/// trim it for seconds after, counted as steal in whatever runs then (BENCHMARKS.md part 18).
struct CeilingRuns {
    enabled: bool,
    written: Vec<tempfile::TempDir>,
}

impl CeilingRuns {
    /// Runs [`ceiling::push_rate`] on `blobs` right after [`warm_pages`], as a server's push
    /// phase runs, and prints its rate with the CPU it took (senders and receivers: the
    /// bench's own) and the machine's steal meanwhile, on a line labelled `label`. `None`
    /// when not enabled.
    async fn run(
        &mut self,
        blobs: &[payload::Blob],
        pattern: ceiling::Pattern,
        label: &str,
    ) -> anyhow::Result<Option<f64>> {
        if !self.enabled {
            return Ok(None);
        }
        let blobs = blobs.to_vec();
        let (run, steal) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            warm_pages(warm_bytes(&blobs))?;
            let steal = server::machine_steal_seconds()?;
            let run = ceiling::push_rate(&blobs, pattern)?;
            Ok((run, server::machine_steal_seconds()? - steal))
        })
        .await??;
        println!(
            "  {label:<18} {:.1} MiB/s, receivers' CPU {:.2} s, senders' CPU {:.2} s, \
             steal {steal:.2} s",
            run.rate, run.receivers_cpu_s, run.senders_cpu_s
        );
        self.written.push(run.files);
        Ok(Some(run.rate))
    }

    /// Removes the files of every run, off the runtime's threads.
    async fn remove(self) -> anyhow::Result<()> {
        let written = self.written;
        tokio::task::spawn_blocking(move || drop(written)).await?;
        Ok(())
    }
}

/// The bracket of two measurements, when both were made.
fn bracket(before: Option<f64>, after: Option<f64>) -> Option<Bracket> {
    Some(Bracket {
        before: before?,
        after: after?,
    })
}

/// The data every server receives, generated and hashed once.
struct Payloads {
    /// One large blob per client for the monolithic push.
    monolithic: Vec<payload::Blob>,
    /// One other large blob per client for the chunked push.
    chunked: Vec<payload::Blob>,
    /// The small images.
    images: Arc<Vec<payload::SmallImage>>,
}

/// Runs phases a to e against `server`; with `with_ceiling`, each push phase between two runs
/// of the disk's ceiling for it (the chunked push's second one after the pull), returned beside
/// the figures.
async fn run_phases(
    server: &Server,
    payloads: &Payloads,
    load: &Load,
    with_ceiling: bool,
) -> anyhow::Result<(ServerFigures, Option<Ceiling>)> {
    let (mono_blobs, chunked_blobs) = (&payloads.monolithic, &payloads.chunked);
    let (mono_pattern, chunked_pattern) = (
        ceiling::Pattern::Monolithic,
        ceiling::Pattern::Chunked(load.chunk_size),
    );
    let mut ceilings = CeilingRuns {
        enabled: with_ceiling,
        written: Vec::new(),
    };
    let mono_before = ceilings
        .run(mono_blobs, mono_pattern, "ceiling, before")
        .await?;
    let warm = warm_bytes(mono_blobs);
    tokio::task::spawn_blocking(move || warm_pages(warm)).await??;
    let monolithic = phases::push_monolithic(server, mono_blobs).await?;
    let mono_after = ceilings
        .run(mono_blobs, mono_pattern, "ceiling, after")
        .await?;
    let chunked_before = ceilings
        .run(chunked_blobs, chunked_pattern, "ceiling, before")
        .await?;
    let warm = warm_bytes(chunked_blobs);
    tokio::task::spawn_blocking(move || warm_pages(warm)).await??;
    let chunked = phases::push_chunked(server, chunked_blobs, load).await?;
    // The pull follows the chunked push directly: with a ceiling run (and its page warming)
    // between them, a pull ran a third slower, on half again as much CPU at both ends
    // (BENCHMARKS.md part 18).
    let pull = phases::pull(server, &payloads.monolithic, &payloads.chunked, load).await?;
    let chunked_after = ceilings
        .run(chunked_blobs, chunked_pattern, "ceiling, after")
        .await?;
    let small = phases::push_small_images(server, &payloads.images, load).await?;
    let tags = Arc::new(
        payloads
            .images
            .iter()
            .map(|image| image.tag.clone())
            .collect(),
    );
    let manifests = phases::get_manifests(server, &tags, load)
        .await
        .context("manifest GET phase")?;
    let run_peak_rss_mib = server.run_peak_rss_mib()?;
    ceilings.remove().await?;
    let run_cpu_s = server.cpu_seconds()?;
    let run_store_cpu_s = server.store_cpu_seconds()?;
    let run_balancer_cpu_s = server.balancer_cpu_seconds()?;
    let store = run_store_cpu_s
        .map(|seconds| format!(", Garage CPU {seconds:.2} s"))
        .unwrap_or_default()
        + &run_balancer_cpu_s
            .map(|seconds| format!(", nginx CPU {seconds:.2} s"))
            .unwrap_or_default();
    println!(
        "  {:<18} peak RSS {run_peak_rss_mib:.1} MiB, server CPU {run_cpu_s:.2} s{store}",
        "whole run"
    );
    let figures = ServerFigures {
        monolithic,
        chunked,
        pull,
        small,
        manifests,
        run_peak_rss_mib,
        run_cpu_s,
        run_store_cpu_s: run_store_cpu_s.unwrap_or(f64::NAN),
        run_balancer_cpu_s: run_balancer_cpu_s.unwrap_or(f64::NAN),
    };
    let ceiling = bracket(mono_before, mono_after)
        .zip(bracket(chunked_before, chunked_after))
        .map(|(monolithic, chunked)| Ceiling {
            monolithic,
            chunked,
        });
    Ok((figures, ceiling))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn berth_env_takes_key_equals_value() {
        let pair = |key: &str, value: &str| (key.to_owned(), value.to_owned());
        assert_eq!(parse_env("BERTH_LOG=info"), Ok(pair("BERTH_LOG", "info")));
        assert_eq!(parse_env("A_1=x=y"), Ok(pair("A_1", "x=y")));
        assert_eq!(parse_env("EMPTY="), Ok(pair("EMPTY", "")));
        for bad in ["BERTH_LOG", "=info", "1X=2", "BAD KEY=1", "A-B=1"] {
            let error = parse_env(bad).unwrap_err();
            assert!(error.contains("KEY=VALUE"), "{bad}: {error}");
        }
    }

    #[test]
    fn the_command_line_parses() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "berth-bench",
            "--berth-env",
            "BERTH_LOG=info",
            "--berth-env=X=1",
        ])
        .unwrap();
        assert_eq!(cli.berth_env.len(), 2);
        assert!(Cli::try_parse_from(["berth-bench", "--berth-env", "nope"]).is_err());
        let cli = Cli::try_parse_from(["berth-bench", "--observability-cost", "--rounds", "3"]);
        assert!(cli.is_ok_and(|cli| cli.observability_cost && cli.rounds == 3));
        assert!(
            Cli::try_parse_from(["berth-bench", "--observability-cost", "--only", "berth"])
                .is_err()
        );
        let cli = Cli::try_parse_from(["berth-bench", "--only", "berth,bare"]).unwrap();
        assert!(cli.only == [Which::Berth, Which::Bare]);
        assert!(Cli::try_parse_from(["berth-bench", "--only", "berth,nginx"]).is_err());
    }

    #[test]
    fn a_bracket_needs_both_of_its_measurements() {
        let both = bracket(Some(1000.0), Some(1200.0)).expect("both measured");
        assert_eq!(both.rate(), 1100.0);
        assert!(bracket(None, Some(1200.0)).is_none());
        assert!(bracket(Some(1000.0), None).is_none());
        assert!(bracket(None, None).is_none());
    }

    #[test]
    fn the_order_alternates_between_rounds() {
        assert_eq!(round_order(2, 0), [0, 1]);
        assert_eq!(round_order(2, 1), [1, 0]);
        assert_eq!(round_order(2, 2), [0, 1]);
        assert_eq!(round_order(1, 1), [0]);
    }
}
