//! `berth`: the registry binary. Parses the command line, loads configuration, opens the
//! stores, and serves until SIGTERM or ctrl-c (requests in flight finish first).

mod admin;
mod backup;
mod changes;
mod config;
mod config_check;
mod egress;
mod fsck;
mod gc;
mod memory;
mod stores;
mod telemetry;
mod webhooks;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_core::access::{Access, AccessCache, Forge, TokenLifetimes};
use berth_core::hooks::{DeliverySettings, Hooks};
use berth_core::ports::now_millis;
use berth_core::registry::{ManifestCache, Registry, UploadLimits};
use berth_core::services::Services;
use berth_http::AppState;
use berth_http::api::limits::{Limits, RateLimiter};
use berth_http::auth::{Auth, FailureLimiter, SigningKey};
use berth_http::connections::ConnectionLimits;
use berth_http::health::Health;
use berth_http::origin::TrustedProxies;
use clap::{Parser, Subcommand};

use config::{Config, Overrides};
use stores::{BlobStoreUrl, Opener, Stores};

/// Berth: a self-hosted OCI container registry.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the registry. With no flags: 127.0.0.1:5000, state under ./berth-data.
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:5000 (port 0 picks a free port).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Directory for all state (SQLite metadata and blobs).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Configuration file (default: ./berth.toml when present).
        #[arg(long)]
        config: Option<PathBuf>,
        /// TLS certificate chain (PEM); with --tls-key, serve HTTPS.
        #[arg(long)]
        tls_cert: Option<PathBuf>,
        /// TLS private key (PEM).
        #[arg(long)]
        tls_key: Option<PathBuf>,
    },
    /// Administer the instance from its machine: users, organizations, repositories, tokens.
    Admin {
        /// Directory holding the instance's state (as given to `serve`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Configuration file (default: ./berth.toml when present).
        #[arg(long)]
        config: Option<PathBuf>,
        /// What to do.
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Copy the data into DEST (new or empty) while the server runs: metadata, then blobs.
    Backup {
        /// Directory to write the backup to.
        dest: PathBuf,
        #[command(flatten)]
        data: backup::DataArgs,
    },
    /// Put a backup back into an empty data directory.
    Restore {
        /// Directory `berth backup` wrote.
        src: PathBuf,
        #[command(flatten)]
        data: backup::DataArgs,
    },
    /// Run a garbage-collection pass now (beside running servers): remove links and blobs no
    /// manifest uses any more, after the grace period (gc_grace_secs).
    Gc {
        /// Only print what a pass would remove, and how many bytes.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        data: backup::DataArgs,
    },
    /// Verify every blob's digest and every manifest's references; report, never repair.
    Fsck {
        #[command(flatten)]
        data: backup::DataArgs,
    },
    /// Check the configuration: print it (secrets redacted), name each invalid setting.
    Config {
        /// What to do.
        #[command(subcommand)]
        command: config_check::ConfigCommand,
    },
}

fn main() -> anyhow::Result<()> {
    memory::keep_freed_buffers();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            listen,
            data_dir,
            config,
            tls_cert,
            tls_key,
        } => {
            let overrides = Overrides {
                listen,
                data_dir,
                tls_cert,
                tls_key,
            };
            let config = Config::load(config.as_deref(), overrides)?;
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(serve(config))
        }
        Command::Admin {
            data_dir,
            config,
            command,
        } => {
            let overrides = Overrides {
                data_dir,
                ..Overrides::default()
            };
            let config = Config::load(config.as_deref(), overrides)?;
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(admin::run(&config, command))
        }
        Command::Config { command } => config_check::run(command),
        Command::Backup { dest, data } => tool(backup::backup(&data.load()?, &dest)),
        Command::Restore { src, data } => tool(backup::restore(&data.load()?, &src)),
        Command::Fsck { data } => tool(fsck::fsck(&data.load()?)),
        Command::Gc { dry_run, data } => tool(gc::run(&data.load()?, dry_run)),
    }
}

/// Runs an operator's tool to completion on a one-thread runtime.
fn tool(run: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let _logs = telemetry::init_logs(&config)?;
    let metrics = config
        .metrics
        .then(|| telemetry::install_metrics(&config))
        .transpose()?;
    let forge: Forge = config.forge_url.parse().context("the forge_url setting")?;
    let limits = connection_limits(&config)?;
    let tls = match config.tls_files()? {
        Some(files) => Some(
            berth_http::tls::ReloadingCert::new(files)
                .context("the TLS certificate (tls_cert, tls_key)")?,
        ),
        None => None,
    };
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    // One process per data directory: the SQLite store voids upload leases on open, which is
    // only right when no other process can be holding them. Held until the process exits.
    let _lock = lock_data_dir(&config.data_dir)?;
    let (database, blob_store) = config.store_urls()?;
    anyhow::ensure!(
        !config.blob_redirect || matches!(blob_store, BlobStoreUrl::S3(_)),
        "blob_redirect is on, but blobs are in a file blob store, which has no URLs to redirect \
         to: turn blob_redirect off, or keep blobs in S3 (blob_store = \"s3://<bucket>\")"
    );
    let node = node_name(&config.data_dir)?;
    let stores = Stores::open(&database, &blob_store, Opener::Server { node }).await?;
    // Nodes sharing PostgreSQL share the key through it; alone, it is a file.
    let key = match &stores.postgres {
        Some(shared) => SigningKey::new(
            shared
                .shared_secret(SIGNING_KEY, &random_key()?)
                .await
                .context("reading the shared registry-token signing key")?,
        )
        .map_err(anyhow::Error::msg)?,
        None => signing_key(&config.data_dir)?,
    };
    tokio::spawn(memory::hand_back_when_uploads_pause());
    let mut registry = Registry::new(stores.metadata.clone(), stores.blobs.clone())
        .with_upload_limits(UploadLimits {
            sessions: config.max_uploads_per_account,
            bytes: config.max_upload_bytes_per_account,
        });
    if config.blob_redirect {
        registry = registry.with_blob_redirect(Duration::from_secs(config.blob_redirect_secs));
    }
    // On PostgreSQL a manifest read is a round trip to another process: remember them
    // (unless caches are off), forgotten on every node's change.
    if let Some(shared) = &stores.postgres
        && config.access_cache_ms > 0
    {
        let signal = shared
            .registry_changes()
            .await
            .context("listening for manifest and tag changes")?;
        registry = registry.with_manifest_cache(Arc::new(ManifestCache::new(
            MANIFEST_CACHE_TTL.max(Duration::from_millis(config.access_cache_ms)),
            MANIFEST_CACHE_BYTES,
            Some(signal),
        )));
    }
    // A previous process may have stopped inside an upload's final PUT.
    match registry.recover_uploads().await {
        Ok((0, 0)) => {}
        Ok((completed, deleted)) => tracing::info!(
            completed,
            deleted,
            "settled uploads a previous process left half-finished"
        ),
        Err(err) => return Err(anyhow::Error::new(err).context("recovering uploads")),
    }
    let access = Access::new(stores.access.clone())
        .with_cache(Arc::new(AccessCache::new(
            Duration::from_millis(config.access_cache_ms),
            Some(match &stores.postgres {
                // Every node's changes, heard through LISTEN/NOTIFY.
                Some(shared) => shared
                    .access_changes()
                    .await
                    .context("listening for access changes")?,
                // `berth admin`'s, through a file it replaces in the data directory.
                None => changes::signal(&config.data_dir),
            }),
        )))
        .with_forge(forge)
        .with_lifetimes(TokenLifetimes {
            app: millis(config.app_token_ttl_secs),
            job: millis(config.job_token_ttl_secs),
        });
    let failures = Arc::new(FailureLimiter::new(config.auth_failures_per_minute));
    // Nodes sharing PostgreSQL count failed logins together, syncing through it.
    if let Some(shared) = &stores.postgres {
        tokio::spawn(failures.clone().keep_synced(shared.clone()));
    }
    let auth = Auth {
        access: access.clone(),
        key: Arc::new(key),
        limiter: failures.clone(),
    };
    let network = Arc::new(egress::NetworkPolicy::new(
        config.webhook_allowed_networks.clone(),
        config.listen,
    ));
    let hooks = Hooks::new(stores.hooks.clone(), access.clone(), network.clone())
        .with_max_hooks_per_account(config.webhook_max_hooks_per_account);
    let transport =
        webhooks::HttpTransport::new(network).context("building the webhook HTTP client")?;
    tokio::spawn(hooks.clone().run_deliveries(
        Arc::new(transport),
        DeliverySettings {
            timeout: Duration::from_secs(config.webhook_timeout_secs.max(1)),
            retry_base: Duration::from_millis(config.webhook_retry_base_ms.max(1)),
            retry_max: Duration::from_secs(3600),
            max_attempts: config.webhook_max_attempts.max(1),
            concurrency: config.webhook_max_concurrent_deliveries.max(1),
        },
    ));
    let services = Services::new(registry.clone(), access.clone(), hooks);
    tokio::spawn(flush_counters(access.clone(), registry.clone()));
    tokio::spawn(purge_stale_uploads(
        services.clone(),
        stores.postgres.clone(),
        Duration::from_secs(config.upload_ttl_secs),
        Duration::from_secs(config.upload_empty_ttl_secs),
        Duration::from_secs(config.upload_purge_interval_secs.max(1)),
    ));
    if config.gc_interval_secs > 0 {
        tokio::spawn(gc::collect_periodically(
            registry.clone(),
            stores.postgres.clone(),
            Duration::from_secs(config.gc_grace_secs),
            Duration::from_secs(config.gc_interval_secs),
        ));
    }
    if config.retention_interval_secs > 0 {
        let base = config
            .external_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.listen));
        tokio::spawn(run_retention(
            services.clone(),
            stores.postgres.clone(),
            base.trim_end_matches('/').to_owned(),
            Duration::from_secs(config.retention_interval_secs),
        ));
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Tests and scripts read this line to learn the port when listening on port 0.
    eprintln!("berth listening on {scheme}://{}", listener.local_addr()?);
    let plain = match config.plain_listen {
        Some(addr) => {
            let plain = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr} (plain_listen)"))?;
            eprintln!("berth health listener on http://{}", plain.local_addr()?);
            Some(plain)
        }
        None => None,
    };
    tracing::info!(data_dir = %config.data_dir.display(), "serving");
    if !config.listen.ip().is_loopback()
        && config.external_url.is_none()
        && config.trusted_proxies.is_empty()
    {
        tracing::warn!(
            "no external_url: challenges and links name the address each client connected to \
             (a Host header is believed only when it names that address); set external_url to \
             the URL clients use, or trusted_proxies behind a reverse proxy"
        );
    }
    let api_limits = Arc::new(RateLimiter::new(Limits {
        per_hour: config.api_rate_limit_per_hour,
        anonymous_per_hour: config.api_rate_limit_anonymous_per_hour,
        per_minute: config.api_rate_limit_per_minute,
        window: Duration::from_secs(config.api_rate_limit_window_secs.max(1)),
    }));
    // Nodes sharing PostgreSQL share the hourly API budgets, syncing through it.
    if let Some(shared) = &stores.postgres {
        tokio::spawn(api_limits.clone().keep_synced(shared.clone()));
    }
    let health = Health::new(stores.metadata.clone(), stores.blobs.clone());
    let pages = berth_web::router(berth_web::Web {
        services: services.clone(),
        limiter: failures,
        session_lifetime: i64::try_from(config.web_session_secs.max(60))
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000),
    });
    let state = AppState {
        services,
        auth,
        api_limits,
        health: health.clone(),
        metrics: metrics.clone(),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let drain_delay = Duration::from_millis(config.shutdown_delay_ms);
    let readiness = health.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        // Not ready from now on; keep serving for a while so balancers notice first.
        readiness.begin_shutdown();
        tokio::time::sleep(drain_delay).await;
        let _ = stop.send(true);
    });
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move { drop(stopped.wait_for(|stop| *stop).await) }
    };
    // The plain listener serves only health and metrics: never the registry.
    let plain = plain.map(|plain| {
        let router = berth_http::health::router(health.clone())
            .merge(berth_http::observe::router(metrics.clone()));
        let serving =
            berth_http::connections::serve(plain, None, router, limits.clone(), until_stopped());
        tokio::spawn(serving)
    });
    let acceptor = tls.map(|cert| {
        tokio::spawn(cert.clone().watch(TLS_POLL_INTERVAL));
        #[cfg(unix)]
        tokio::spawn(reload_on_sighup(cert.clone()));
        berth_http::tls::acceptor(cert)
    });
    berth_http::serve(
        listener,
        acceptor,
        state,
        Some(pages),
        limits,
        until_stopped(),
    )
    .await?;
    if let Some(plain) = plain {
        plain.await??;
    }
    if let Err(err) = access.flush_uses().await {
        tracing::warn!(error = %err, "recording token uses at shutdown failed");
    }
    if let Err(err) = registry.flush_downloads().await {
        tracing::warn!(error = %err, "recording downloads at shutdown failed");
    }
    tracing::info!("stopped");
    Ok(())
}

/// The connection limits from `config`, after raising the soft file descriptor limit to the
/// hard one: `max_connections` is lowered to what the descriptors allow, keeping a reserve
/// for blob files, the database and outgoing webhook connections.
fn connection_limits(config: &Config) -> anyhow::Result<ConnectionLimits> {
    const RESERVE: u64 = 512;
    let descriptors = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(err) => {
            tracing::warn!(%err, "could not raise the file descriptor limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    };
    let allowed =
        usize::try_from(descriptors.saturating_sub(RESERVE).max(64)).unwrap_or(usize::MAX);
    let max_connections = config.max_connections.clamp(1, allowed);
    if max_connections < config.max_connections {
        tracing::warn!(
            descriptors,
            max_connections,
            "the file descriptor limit allows fewer connections than max_connections"
        );
    }
    let trusted_proxies = TrustedProxies::parse(&config.trusted_proxies)
        .map_err(anyhow::Error::msg)
        .context("the trusted_proxies setting")?;
    Ok(ConnectionLimits {
        max_connections,
        max_connections_per_address: config.max_connections_per_address.max(1),
        header_read_timeout: Duration::from_secs(config.header_read_timeout_secs.max(1)),
        idle_timeout: Duration::from_secs(config.idle_timeout_secs.max(1)),
        body_read_timeout: Duration::from_secs(config.body_read_timeout_secs.max(1)),
        send_timeout: Duration::from_secs(config.send_timeout_secs.max(1)),
        trusted_proxies,
        external_url: config
            .external_url
            .as_deref()
            .map(|url| Arc::from(url.trim_end_matches('/'))),
    })
}

/// How often the TLS certificate and key files are checked for a change.
const TLS_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Reloads the TLS certificate and key on every SIGHUP.
#[cfg(unix)]
async fn reload_on_sighup(cert: Arc<berth_http::tls::ReloadingCert>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!(
            "cannot listen for SIGHUP: the certificate reloads only when its files change"
        );
        return;
    };
    while hangups.recv().await.is_some() {
        let cert = cert.clone();
        let _ = tokio::task::spawn_blocking(move || cert.reload()).await;
    }
}

/// Records token last-used times and download counts every few seconds, off the request
/// path.
async fn flush_counters(access: Access, registry: Registry) {
    let mut ticks = tokio::time::interval(Duration::from_secs(5));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(err) = access.flush_uses().await {
            tracing::warn!(error = %err, "recording token uses failed");
        }
        if let Err(err) = registry.flush_downloads().await {
            tracing::warn!(error = %err, "recording downloads failed");
        }
    }
}

/// This node's name among the nodes sharing a database: `node-id` in the data directory,
/// created (random) on first start, so it is the same after a restart and differs between
/// data directories (one process serves each, `berth.lock`).
fn node_name(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = data_dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(name) if !name.trim().is_empty() => Ok(name.trim().to_owned()),
        Ok(_) => anyhow::bail!(
            "{} is empty; delete it to get a new node name",
            path.display()
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let name = hex::encode(&random_key()?[..16]);
            let fresh = data_dir.join("node-id.new");
            std::fs::write(&fresh, format!("{name}\n"))
                .and_then(|()| std::fs::rename(&fresh, &path))
                .with_context(|| format!("creating {}", path.display()))?;
            Ok(name)
        }
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// Manifest bytes a node on PostgreSQL keeps in its manifest cache at most.
const MANIFEST_CACHE_BYTES: usize = 16 << 20;

/// How long a node on PostgreSQL remembers a manifest read, at least. What keeps the cache
/// right is the change signal, not this: every tag or manifest write, by any node or by SQL,
/// notifies every node, which forgets at once, and a node not listening serves nothing from
/// the cache. With the access cache's second, each node read every busy tag again each
/// second: three nodes behind nginx served 1,700–3,100 manifest GETs a second against
/// 6,400–7,100 with a minute (BENCHMARKS.md, "a small blob pushed in one request is written
/// once").
const MANIFEST_CACHE_TTL: Duration = Duration::from_secs(60);

/// The name of the registry-token signing key among the secrets nodes share.
const SIGNING_KEY: &str = "token-signing-key";

/// 32 random bytes: a new signing key.
fn random_key() -> anyhow::Result<Vec<u8>> {
    let mut bytes = vec![0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("random source: {e}"))?;
    Ok(bytes)
}

/// The key registry tokens are signed with in the embedded setup: `token-signing.key` in the
/// data directory, created (32 random bytes, owner-only) on first start.
fn signing_key(data_dir: &std::path::Path) -> anyhow::Result<SigningKey> {
    use std::io::Write as _;
    let path = data_dir.join("token-signing.key");
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let bytes = random_key()?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            bytes
        }
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    SigningKey::new(bytes).map_err(anyhow::Error::msg)
}

/// Every `interval`, discards uploads abandoned for `ttl`. Runs until the process exits.
/// Whether this node runs housekeeping `task` this tick: always alone; on shared PostgreSQL
/// while it holds the task's lease (twice the interval, extended at each pass), so nodes take
/// turns and another takes over when it stops. A failure to ask is logged and skips the tick.
pub(crate) async fn my_turn(
    shared: Option<&berth_meta_postgres::PgMetadataStore>,
    task: &str,
    interval: Duration,
) -> bool {
    let Some(shared) = shared else {
        return true;
    };
    match shared.lead(task, interval.saturating_mul(2)).await {
        Ok(taken) => taken,
        Err(err) => {
            tracing::warn!(error = %err, task, "taking a housekeeping task failed");
            false
        }
    }
}

/// Nodes sharing PostgreSQL take turns: one runs the passes while it holds the task (twice
/// the interval, extended at each pass), another takes over when it stops.
async fn purge_stale_uploads(
    services: Services,
    shared: Option<Arc<berth_meta_postgres::PgMetadataStore>>,
    ttl: Duration,
    empty_ttl: Duration,
    interval: Duration,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if !my_turn(shared.as_deref(), "purge", interval).await {
            continue;
        }
        match services.registry.purge_stale_uploads(ttl, empty_ttl).await {
            Ok((0, 0)) => {}
            Ok((sessions, files)) => {
                tracing::info!(sessions, files, "purged stale uploads");
            }
            Err(err) => tracing::warn!(error = %err, "purging stale uploads failed"),
        }
        match services.registry.purge_deleted_versions(now_millis()).await {
            Ok(0) => {}
            Ok(versions) => tracing::info!(versions, "purged versions deleted 30 days ago"),
            Err(err) => tracing::warn!(error = %err, "purging deleted versions failed"),
        }
        match services.packages.purge_deleted(now_millis()).await {
            Ok(0) => {}
            Ok(packages) => tracing::info!(packages, "purged packages deleted 30 days ago"),
            Err(err) => tracing::warn!(error = %err, "purging deleted packages failed"),
        }
    }
}

/// Every `interval` (the first pass one interval after startup), runs the retention
/// policies: deletes what each package's policy says (restorable for 30 days), logging each
/// deletion with its rule and reason. Nodes sharing PostgreSQL take turns, as for the purge.
async fn run_retention(
    services: Services,
    shared: Option<Arc<berth_meta_postgres::PgMetadataStore>>,
    base: String,
    interval: Duration,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if !my_turn(shared.as_deref(), "retention", interval).await {
            continue;
        }
        match services.packages.run_retention(now_millis(), &base).await {
            Ok(reports) => {
                let deleted: usize = reports.iter().map(|r| r.deleted.len()).sum();
                let refused: usize = reports.iter().map(|r| r.refused.len()).sum();
                tracing::info!(
                    packages = reports.len(),
                    deleted,
                    refused,
                    "retention pass done"
                );
            }
            Err(err) => tracing::warn!(error = %err, "retention pass failed"),
        }
    }
}

fn lock_data_dir(dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let path = dir.join("berth.lock");
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another berth process is serving {}; stop it first or use another --data-dir",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Seconds as milliseconds, at least one.
fn millis(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000))
        .unwrap_or(i64::MAX)
        .max(1)
}
