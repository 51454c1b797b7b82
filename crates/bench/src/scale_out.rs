//! `--scale-out`: the same phases against Berth as one machine runs it (SQLite and disk), as a
//! cluster runs it (PostgreSQL and Garage, one node or three behind nginx), and against
//! Distribution's S3 storage driver on the same Garage, side by side in one run.
//!
//! Every configuration starts afresh for each of its runs: its own Garage cluster (one node,
//! or three with replication factor 3; [`crate::garage`]), its own PostgreSQL database on the
//! server of `--database-url`, its own data directories. Each Berth on S3 writes under its own
//! key prefix of its own bucket. Garage runs as `scripts/services` starts it (zstd level 1,
//! the default; SQLite metadata).
//!
//! A seventh column, one Berth node behind the same nginx, tells what the balancer costs apart
//! from what the number of nodes does.
//!
//! Three Berth nodes run as the README's production sample: one PostgreSQL database, one
//! bucket, `external_url` the balancer's, nginx in front passing each request to the next node
//! (streamed both ways, as the e2e cluster harness sets it up); node `i` talks to Garage node
//! `i`, as a node would to the Garage on its own machine. Distribution talks to Garage node 1,
//! as the single Berth node does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::ValueEnum;
use sqlx::{AssertSqlSafe, Connection as _, PgConnection};
use tempfile::TempDir;

use crate::garage::Garage;
use crate::server::{self, S3Target, Server, free_port};

/// One configuration of `--scale-out`: a column of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Config {
    /// (a) One Berth on SQLite and the local disk.
    SqliteDisk,
    /// (b) One Berth on PostgreSQL and a one-node Garage.
    BerthGarage1,
    /// (d) Distribution with its S3 driver on a one-node Garage.
    DistributionGarage1,
    /// (b) One Berth on PostgreSQL and a three-node Garage.
    BerthGarage3,
    /// (c) Three Berth nodes behind nginx on PostgreSQL and a three-node Garage.
    Berth3Garage3,
    /// One Berth node behind the same nginx: what the balancer costs, apart from what the
    /// number of nodes does.
    Berth1NginxGarage3,
    /// (d) Distribution with its S3 driver on a three-node Garage.
    DistributionGarage3,
}

/// Every configuration, in the table's order.
pub const ALL: [Config; 7] = [
    Config::SqliteDisk,
    Config::BerthGarage1,
    Config::DistributionGarage1,
    Config::BerthGarage3,
    Config::Berth3Garage3,
    Config::Berth1NginxGarage3,
    Config::DistributionGarage3,
];

/// The ratios the table ends with: (numerator, denominator, heading).
pub const RATIOS: [(Config, Config, &str); 6] = [
    (
        Config::BerthGarage1,
        Config::DistributionGarage1,
        "Berth/Distr. Garage1",
    ),
    (
        Config::BerthGarage3,
        Config::DistributionGarage3,
        "Berth/Distr. Garage3",
    ),
    (
        Config::Berth3Garage3,
        Config::DistributionGarage3,
        "Berth×3/Distr. Garage3",
    ),
    (
        Config::Berth3Garage3,
        Config::BerthGarage3,
        "Berth×3/Berth Garage3",
    ),
    (
        Config::Berth3Garage3,
        Config::Berth1NginxGarage3,
        "Berth×3/×1, both nginx",
    ),
    (
        Config::BerthGarage1,
        Config::SqliteDisk,
        "PG+Garage1/SQLite+disk",
    ),
];

impl Config {
    /// The column's heading.
    pub fn name(self) -> &'static str {
        match self {
            Config::SqliteDisk => "Berth SQLite+disk",
            Config::BerthGarage1 => "Berth PG+Garage1",
            Config::DistributionGarage1 => "Distribution Garage1",
            Config::BerthGarage3 => "Berth PG+Garage3",
            Config::Berth3Garage3 => "Berth×3 PG+Garage3",
            Config::Berth1NginxGarage3 => "Berth×1 nginx Garage3",
            Config::DistributionGarage3 => "Distribution Garage3",
        }
    }

    /// Garage nodes it needs (0: none).
    pub fn garage_nodes(self) -> usize {
        match self {
            Config::SqliteDisk => 0,
            Config::BerthGarage1 | Config::DistributionGarage1 => 1,
            Config::BerthGarage3
            | Config::Berth3Garage3
            | Config::Berth1NginxGarage3
            | Config::DistributionGarage3 => 3,
        }
    }

    /// Whether it is Distribution.
    pub fn is_distribution(self) -> bool {
        matches!(
            self,
            Config::DistributionGarage1 | Config::DistributionGarage3
        )
    }

    /// Whether it keeps metadata in PostgreSQL.
    pub fn needs_postgres(self) -> bool {
        matches!(
            self,
            Config::BerthGarage1
                | Config::BerthGarage3
                | Config::Berth3Garage3
                | Config::Berth1NginxGarage3
        )
    }

    /// A name for keys, buckets and databases.
    fn slug(self) -> &'static str {
        match self {
            Config::SqliteDisk => "sqlite_disk",
            Config::BerthGarage1 => "berth_garage1",
            Config::DistributionGarage1 => "distribution_garage1",
            Config::BerthGarage3 => "berth_garage3",
            Config::Berth3Garage3 => "berth3_garage3",
            Config::Berth1NginxGarage3 => "berth1_nginx_garage3",
            Config::DistributionGarage3 => "distribution_garage3",
        }
    }
}

/// What starting a configuration needs.
pub struct Setup<'a> {
    pub berth_bin: &'a Path,
    pub distribution_bin: &'a Path,
    pub garage_bin: &'a Path,
    /// A PostgreSQL database on the server where the bench may create its own.
    pub database_url: Option<&'a str>,
    /// `--berth-env`, applied to every Berth.
    pub berth_env: &'a [(String, String)],
}

/// Starts a fresh instance of `config`: its Garage, database, node(s) and balancer.
pub fn start(config: Config, setup: &Setup) -> anyhow::Result<Server> {
    let garage = match config.garage_nodes() {
        0 => None,
        nodes => Some(
            Garage::start(setup.garage_bin, nodes, &config.slug().replace('_', "-"))
                .with_context(|| format!("starting Garage for {}", config.name()))?,
        ),
    };
    let database = if config.needs_postgres() {
        let url = setup.database_url.context(
            "--scale-out needs PostgreSQL: --database-url or TEST_POSTGRES (scripts/services \
             start postgres)",
        )?;
        Some(Database::create(url, config.slug())?)
    } else {
        None
    };
    let s3 = |endpoint: &str| {
        let mut target = garage.as_ref().expect("a Garage").target.clone();
        target.endpoint = endpoint.to_owned();
        target.prefix = format!("bench-{}", config.slug().replace('_', "-"));
        target
    };
    let mut server = match config {
        Config::SqliteDisk => Server::start_berth(setup.berth_bin, config.name(), setup.berth_env)?,
        Config::DistributionGarage1 | Config::DistributionGarage3 => {
            let target = s3(&garage.as_ref().expect("a Garage").endpoints[0]);
            Server::start_distribution(setup.distribution_bin, config.name(), Some(&target))?
        }
        Config::BerthGarage1 | Config::BerthGarage3 => {
            let target = s3(&garage.as_ref().expect("a Garage").endpoints[0]);
            let env = berth_env(setup, database.as_ref(), &target, None);
            Server::start_berth(setup.berth_bin, config.name(), &env)?
        }
        Config::Berth3Garage3 | Config::Berth1NginxGarage3 => {
            let mut endpoints = garage.as_ref().expect("a Garage").endpoints.clone();
            if config == Config::Berth1NginxGarage3 {
                endpoints.truncate(1);
            }
            let port = free_port()?;
            let base = format!("http://127.0.0.1:{port}");
            let mut nodes = Vec::new();
            let mut token: Option<String> = None;
            let mut dirs = Vec::new();
            for endpoint in &endpoints {
                let env = berth_env(setup, database.as_ref(), &s3(endpoint), Some(&base));
                let dir = TempDir::with_prefix("berth-bench-node-")?;
                let data = dir.path().join("data");
                std::fs::create_dir(&data)?;
                // The accounts live in the shared database: bootstrap them once.
                if token.is_none() {
                    token = Some(server::bootstrap_berth(setup.berth_bin, &data, &env)?);
                }
                nodes.push(Server::start_berth_at(
                    setup.berth_bin,
                    config.name(),
                    &data,
                    &env,
                    token.as_deref().unwrap_or_default(),
                )?);
                dirs.push(dir);
            }
            let hosts: Vec<String> = nodes
                .iter()
                .map(|node| node.base.trim_start_matches("http://").to_owned())
                .collect();
            let nginx = Nginx::start(port, &hosts)?;
            let nginx_pid = nginx.child.id();
            let mut server = Server::join(config.name(), base, nodes, vec![Box::new(nginx)]);
            server.add_balancer(nginx_pid);
            server.keep(Box::new(dirs), &[]);
            server
        }
    };
    if let Some(garage) = garage {
        let pids = garage.pids();
        server.keep(Box::new(garage), &pids);
    }
    if let Some(database) = database {
        server.keep(Box::new(database), &[]);
    }
    Ok(server)
}

/// The settings of a Berth node on PostgreSQL and S3 (and behind a balancer at `external`).
fn berth_env(
    setup: &Setup,
    database: Option<&Database>,
    s3: &S3Target,
    external: Option<&str>,
) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "BERTH_BLOB_STORE".to_owned(),
            format!("s3://{}/{}", s3.bucket, s3.prefix),
        ),
        ("BERTH_S3_ENDPOINT".to_owned(), s3.endpoint.clone()),
        ("BERTH_S3_REGION".to_owned(), s3.region.clone()),
        ("BERTH_S3_ACCESS_KEY_ID".to_owned(), s3.key_id.clone()),
        ("BERTH_S3_SECRET_ACCESS_KEY".to_owned(), s3.secret.clone()),
    ];
    if let Some(database) = database {
        env.push(("BERTH_DATABASE_URL".to_owned(), database.url.clone()));
    }
    if let Some(external) = external {
        env.push(("BERTH_EXTERNAL_URL".to_owned(), external.to_owned()));
    }
    env.extend(setup.berth_env.iter().cloned());
    env
}

/// A database of the bench's on a PostgreSQL server, dropped with this value.
struct Database {
    /// The server's URL the bench connects to for creating and dropping it.
    admin_url: String,
    name: String,
    /// Its URL.
    url: String,
}

impl Database {
    /// Creates (anew) the database `berth_bench_<pid>_<slug>` on the server of `admin_url`.
    fn create(admin_url: &str, slug: &str) -> anyhow::Result<Database> {
        let name = format!("berth_bench_{}_{slug}", std::process::id());
        let mut url = reqwest::Url::parse(admin_url).context("--database-url")?;
        url.set_path(&format!("/{name}"));
        let database = Database {
            admin_url: admin_url.to_owned(),
            name,
            url: url.to_string(),
        };
        database.execute(&[
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", database.name),
            format!("CREATE DATABASE {}", database.name),
        ])?;
        Ok(database)
    }

    /// Runs `statements` on the admin connection, on a thread of its own (callers may or may
    /// not be inside the bench's runtime).
    fn execute(&self, statements: &[String]) -> anyhow::Result<()> {
        let (url, statements) = (self.admin_url.clone(), statements.to_vec());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&url).await?;
                for statement in statements {
                    sqlx::query(AssertSqlSafe(statement))
                        .execute(&mut conn)
                        .await?;
                }
                conn.close().await?;
                anyhow::Ok(())
            })
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the database thread panicked"))?
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(error) = self.execute(&[drop]) {
            eprintln!("warning: cannot drop database {}: {error:#}", self.name);
        }
    }
}

/// nginx in the foreground on 127.0.0.1:`port`, passing each request to the next upstream
/// round-robin, streaming bodies both ways (the e2e cluster harness's configuration).
struct Nginx {
    child: Child,
    _dir: TempDir,
}

impl Nginx {
    fn start(port: u16, upstreams: &[String]) -> anyhow::Result<Nginx> {
        let dir = TempDir::with_prefix("berth-bench-nginx-")?;
        let servers: String = upstreams
            .iter()
            .map(|host| format!("        server {host} max_fails=1 fail_timeout=5s;\n"))
            .collect();
        let d = dir.path().display();
        let config = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 512; }}\n\
             http {{\n    access_log off;\n\
                 client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
                 fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\
                 upstream berth {{\n{servers}        keepalive 32;\n    }}\n\
                 server {{\n        listen 127.0.0.1:{port};\n        client_max_body_size 0;\n\
                     proxy_request_buffering off;\n        proxy_buffering off;\n\
                     client_body_buffer_size 128k;\n        proxy_buffer_size 128k;\n        proxy_buffers 4 128k;\n\
                     proxy_http_version 1.1;\n        proxy_set_header Host $http_host;\n\
                     proxy_set_header Connection \"\";\n\
                     location / {{ proxy_pass http://berth; }}\n    }}\n}}\n"
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config)?;
        // Run as root, nginx's workers become `nobody`: they must be able to use the directory.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )?;
        let bin = which("nginx").context("nginx is not installed (apt-get install nginx-light)")?;
        let mut child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Errors in the configuration come before the error log is open.
            .stderr(std::fs::File::create(dir.path().join("stderr"))?)
            .spawn()
            .context("starting nginx")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait()? {
                let said =
                    |file: &str| std::fs::read_to_string(dir.path().join(file)).unwrap_or_default();
                bail!(
                    "nginx exited ({status}): {}{}",
                    said("stderr"),
                    said("error.log")
                );
            }
            if Instant::now() > deadline {
                bail!("nginx did not listen on {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Nginx { child, _dir: dir })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers (a SIGKILL would leave them running).
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name` on `PATH`, or in `/usr/sbin` (where Debian puts nginx, off a user's `PATH`).
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
