//! A fresh Garage cluster for one server's run (`--scale-out`): `nodes` processes on loopback
//! with replication factor `nodes`, the layout applied, a key and a bucket made, as
//! `scripts/services` and the README set one up. Each run gets its own, empty, so nothing a
//! previous server left (blocks waiting for Garage's deferred deletion, resyncs) works in the
//! background while the next is measured, and the disk holds one run's blobs at a time.
//!
//! Dropping a [`Garage`] kills its nodes and removes their directories.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use tempfile::TempDir;

use crate::server::{S3Target, free_port};

/// How long a node may take to answer `garage node id`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A running Garage cluster and the bucket made on it.
pub struct Garage {
    /// The bucket, key and first node's S3 endpoint.
    pub target: S3Target,
    /// Each node's S3 endpoint (`http://127.0.0.1:PORT`), the first one in `target`.
    pub endpoints: Vec<String>,
    nodes: Vec<Child>,
    configs: Vec<PathBuf>,
    _dir: TempDir,
}

impl Garage {
    /// Starts `nodes` Garage nodes from `bin` with replication factor `nodes`, connects them,
    /// applies a layout giving each the same capacity, and makes a key and the bucket
    /// `bucket`.
    pub fn start(bin: &Path, nodes: usize, bucket: &str) -> anyhow::Result<Garage> {
        ensure!(nodes > 0, "a Garage cluster needs a node");
        let dir = TempDir::with_prefix("berth-bench-garage-")?;
        let mut secret = [0u8; 32];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut secret)?;
        let secret = hex::encode(secret);
        let mut garage = Garage {
            target: S3Target {
                endpoint: String::new(),
                region: "garage".to_owned(),
                bucket: bucket.to_owned(),
                prefix: String::new(),
                key_id: String::new(),
                secret: String::new(),
            },
            endpoints: Vec::new(),
            nodes: Vec::new(),
            configs: Vec::new(),
            _dir: dir,
        };
        for node in 0..nodes {
            let home = garage._dir.path().join(format!("n{}", node + 1));
            std::fs::create_dir_all(&home)?;
            let (rpc, s3, admin) = (free_port()?, free_port()?, free_port()?);
            let config = home.join("garage.toml");
            std::fs::write(
                &config,
                format!(
                    "metadata_dir = \"{home}/meta\"\ndata_dir = \"{home}/data\"\n\
                     db_engine = \"sqlite\"\nreplication_factor = {nodes}\n\
                     rpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\n\
                     rpc_secret = \"{secret}\"\n\n\
                     [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
                     root_domain = \".s3.garage.localhost\"\n\n\
                     [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
                    home = home.display()
                ),
            )?;
            std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600))?;
            let log = std::fs::File::create(home.join("server.log"))?;
            let child = Command::new(bin)
                .arg("-c")
                .arg(&config)
                .arg("server")
                .env("RUST_LOG", "garage=warn")
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting {}", bin.display()))?;
            garage.nodes.push(child);
            garage.configs.push(config);
            garage.endpoints.push(format!("http://127.0.0.1:{s3}"));
        }
        garage.target.endpoint = garage.endpoints[0].clone();
        let mut ids = Vec::new();
        for node in 0..nodes {
            ids.push(garage.node_id(bin, node)?);
        }
        // `node id` reads the key from disk: a node may answer it before it listens. The CLI
        // speaks RPC to the first node, so wait until it answers `status`.
        let started = Instant::now();
        while let Err(error) = garage.cli(bin, &["status"]) {
            if started.elapsed() > STARTUP_TIMEOUT {
                return Err(error);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        for id in &ids[1..] {
            let started = Instant::now();
            while let Err(error) = garage.cli(bin, &["node", "connect", id]) {
                if started.elapsed() > STARTUP_TIMEOUT {
                    return Err(error);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        for id in &ids {
            let short = id.split('@').next().unwrap_or(id);
            garage.cli(bin, &["layout", "assign", "-z", "dc1", "-c", "10G", short])?;
        }
        garage.cli(bin, &["layout", "apply", "--version", "1"])?;
        let key = garage.cli(bin, &["key", "create", "berth-bench"])?;
        let field = |name: &str| {
            key.lines()
                .find(|line| line.contains(name))
                .and_then(|line| line.split_whitespace().last())
                .map(str::to_owned)
                .with_context(|| format!("no {name} in `garage key create`'s answer:\n{key}"))
        };
        garage.target.key_id = field("Key ID")?;
        garage.target.secret = field("Secret key")?;
        garage.cli(bin, &["bucket", "create", bucket])?;
        garage.cli(
            bin,
            &[
                "bucket",
                "allow",
                "--read",
                "--write",
                "--owner",
                bucket,
                "--key",
                "berth-bench",
            ],
        )?;
        Ok(garage)
    }

    /// The nodes' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(Child::id).collect()
    }

    /// Node `node`'s id (`hex@host:port`), once it answers.
    fn node_id(&mut self, bin: &Path, node: usize) -> anyhow::Result<String> {
        let started = Instant::now();
        loop {
            let output = Command::new(bin)
                .arg("-c")
                .arg(&self.configs[node])
                .args(["node", "id", "-q"])
                .stdin(Stdio::null())
                .output()?;
            if output.status.success() {
                return Ok(String::from_utf8(output.stdout)?.trim().to_owned());
            }
            if let Some(status) = self.nodes[node].try_wait()? {
                bail!(
                    "Garage node {} exited ({status}):\n{}",
                    node + 1,
                    self.log(node)
                );
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                bail!(
                    "Garage node {} did not answer:\n{}",
                    node + 1,
                    self.log(node)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `garage <args>` against the first node; its stdout.
    fn cli(&self, bin: &Path, args: &[&str]) -> anyhow::Result<String> {
        let output = Command::new(bin)
            .arg("-c")
            .arg(&self.configs[0])
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        ensure!(
            output.status.success(),
            "garage {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stderr),
            self.log(0)
        );
        Ok(String::from_utf8(output.stdout)?)
    }

    /// Node `node`'s log.
    fn log(&self, node: usize) -> String {
        let path = self.configs[node].with_file_name("server.log");
        std::fs::read_to_string(path).unwrap_or_default()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}
