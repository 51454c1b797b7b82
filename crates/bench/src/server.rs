//! The registries under test, as child processes: start Berth or Distribution on a free local
//! port with a fresh temporary data directory, and read the server's peak memory from `/proc`.
//!
//! A [`Server`] owns its child and its directory: dropping it kills the child and removes the
//! directory, so nothing outlives the benchmark, on success or on error. This module speaks no
//! HTTP beyond the readiness poll.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use tempfile::TempDir;

/// How long a server may take to become ready.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How many of the server's last stderr bytes are kept for error messages (at most twice as
/// many are held between trims).
const LOG_TAIL_BYTES: usize = 16 << 10;
/// How many of the last lines of that tail an error message shows.
const LOG_LINES_SHOWN: usize = 20;
/// Size of each read of the server's stderr.
const DRAIN_READ_BYTES: usize = 64 << 10;

/// Clock ticks per second in `/proc/<pid>/stat` (fixed by the Linux ABI).
const USER_HZ: f64 = 100.0;

/// The last bytes a server wrote to stderr, shared with the thread that drains the pipe.
type RecentLog = Arc<Mutex<LogTail>>;

/// The raw tail of a server's stderr. Lines are only split when an error message needs them,
/// so a server that logs every request costs the drain one copy per read, not a `String` per
/// line.
#[derive(Default)]
struct LogTail {
    /// The last bytes read, between [`LOG_TAIL_BYTES`] and twice as many once trimmed.
    bytes: Vec<u8>,
    /// Whether older bytes were dropped (the first line held may then be partial).
    truncated: bool,
}

impl LogTail {
    /// Appends `read`, dropping the oldest bytes once more than twice [`LOG_TAIL_BYTES`] are
    /// held (so the memmove is amortized over as many bytes as it moves).
    fn push(&mut self, read: &[u8]) {
        if read.len() >= LOG_TAIL_BYTES {
            self.bytes.clear();
            self.bytes
                .extend_from_slice(&read[read.len() - LOG_TAIL_BYTES..]);
            self.truncated = true;
            return;
        }
        self.bytes.extend_from_slice(read);
        if self.bytes.len() > 2 * LOG_TAIL_BYTES {
            self.bytes.drain(..self.bytes.len() - LOG_TAIL_BYTES);
            self.truncated = true;
        }
    }

    /// The last `count` complete or final lines, lossily decoded, without a partial first one.
    fn last_lines(&self, count: usize) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.bytes);
        let mut text = text.as_ref();
        if self.truncated {
            text = text.split_once('\n').map_or("", |(_, rest)| rest);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(count)..]
            .iter()
            .map(|line| (*line).to_owned())
            .collect()
    }
}

/// One process of a registry under test: the child, the tail of its stderr, its peak memory.
struct Process {
    child: Child,
    log: RecentLog,
    /// The largest `VmHWM` read so far, in KiB: see [`Server::run_peak_rss_mib`].
    run_peak_kib: AtomicU64,
}

impl Process {
    fn new(child: Child, log: RecentLog) -> Process {
        Process {
            child,
            log,
            run_peak_kib: AtomicU64::new(0),
        }
    }

    /// `VmHWM` in KiB, folded into the peak over the run.
    fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .context("no VmHWM in /proc/<pid>/status")?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        self.run_peak_kib.fetch_max(kib, Ordering::Relaxed);
        Ok(kib)
    }
}

/// A running registry: its processes (one, or one per node behind a balancer), base URL and
/// data directory, and what it needs running beside it (a balancer, an object store, a
/// database), stopped after it.
pub struct Server {
    /// Display name ("Berth", "Distribution").
    pub name: &'static str,
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:40123`.
    pub base: String,
    /// The `Authorization` header value every request sends (Berth: a classic token of its
    /// bootstrapped site administrator; Distribution runs without authentication).
    pub authorization: Option<String>,
    /// The `warning:` lines Berth printed before it was ready (none for Distribution).
    pub startup_warnings: Vec<String>,
    /// The registry's processes; memory and CPU figures are their sums.
    processes: Vec<Process>,
    /// Processes of the object store the registry keeps its blobs in (Garage's nodes), whose
    /// CPU time is reported apart; empty for a file system.
    store_pids: Vec<u32>,
    /// The balancer's processes in front of the nodes (nginx's master; its workers are counted
    /// as its children), whose CPU time is reported apart; empty without one.
    balancer_pids: Vec<u32>,
    /// Dropped after the processes are killed, in order: balancer, object store, database.
    guards: Vec<Box<dyn std::any::Any + Send>>,
    /// Removed when the server is dropped (after the child is killed) unless
    /// [`Server::stop_keeping_data`] hands it back; `None` for a data directory the caller
    /// keeps ([`Server::start_berth_at`]).
    _dir: Option<TempDir>,
}

/// Creates Berth's site administrator `bench-admin` (printing a token with every package scope)
/// and the organization `bench` the phases push to; returns the token. `env` is applied as for
/// `berth serve`, so both read the same configuration.
pub fn bootstrap_berth(
    bin: &Path,
    data: &Path,
    env: &[(String, String)],
) -> anyhow::Result<String> {
    let admin = |args: &[&str]| -> anyhow::Result<String> {
        let output = Command::new(bin)
            .arg("admin")
            .arg("--data-dir")
            .arg(data)
            .args(args)
            .env("BERTH_LOG", "warn")
            .envs(env.iter().map(|(key, value)| (key, value)))
            .output()
            .with_context(|| format!("running {} admin", bin.display()))?;
        anyhow::ensure!(
            output.status.success(),
            "berth admin {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8(output.stdout)?.trim().to_owned())
    };
    let token = admin(&[
        "create-user",
        "bench-admin",
        "--site-admin",
        "--token-scopes",
        "read:packages,write:packages,delete:packages",
    ])?;
    admin(&["create-org", "bench", "--owner", "bench-admin"])?;
    Ok(token)
}

impl Server {
    /// Starts `berth serve` on port 0, displayed as `name`, and learns the port from its
    /// `listening on` stderr line. `env` is set after the bench's own `BERTH_LOG=warn`, so it
    /// may override it.
    pub fn start_berth(
        bin: &Path,
        name: &'static str,
        env: &[(String, String)],
    ) -> anyhow::Result<Server> {
        let dir = TempDir::with_prefix("berth-bench-berth-")?;
        let token = bootstrap_berth(bin, &dir.path().join("data"), env)?;
        let mut server = Server::start_berth_at(bin, name, &dir.path().join("data"), env, &token)?;
        server._dir = Some(dir);
        Ok(server)
    }

    /// Starts `berth serve` as [`Server::start_berth`] does, on the data directory `data`,
    /// which the caller keeps and has bootstrapped ([`bootstrap_berth`] gave `token`).
    pub fn start_berth_at(
        bin: &Path,
        name: &'static str,
        data: &Path,
        env: &[(String, String)],
        token: &str,
    ) -> anyhow::Result<Server> {
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .current_dir(data.parent().unwrap_or(data))
            .env("BERTH_LOG", "warn")
            .envs(env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let log = RecentLog::default();
        let (found, address) = mpsc::channel();
        let stderr = child.stderr.take().context("berth stderr")?;
        drain(stderr, log.clone(), Some(found));
        let mut server = Server {
            name,
            base: String::new(),
            authorization: Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("bench-admin:{token}"))
            )),
            startup_warnings: Vec::new(),
            processes: vec![Process::new(child, log)],
            store_pids: Vec::new(),
            balancer_pids: Vec::new(),
            guards: Vec::new(),
            _dir: None,
        };
        match address.recv_timeout(STARTUP_TIMEOUT) {
            Ok(base) => server.base = base,
            Err(_) => {
                let status = server.processes[0]
                    .child
                    .try_wait()?
                    .map(|status| format!(" ({status})"));
                let status = status.unwrap_or_default();
                bail!(
                    "berth did not print its address{status}:\n{}",
                    server.recent_log()
                )
            }
        }
        // Say so when Berth ignored a setting the comparison relies on (e.g. a `BERTH_*`
        // variable this build does not know). The tail holds only startup lines yet.
        server.startup_warnings = server.processes[0]
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .last_lines(usize::MAX)
            .into_iter()
            .filter(|line| line.starts_with("warning:"))
            .collect();
        for line in &server.startup_warnings {
            eprintln!("{name}: {line}");
        }
        Ok(server)
    }

    /// Starts `docker-registry serve` with a generated config on a free port and waits until
    /// `GET /v2/` answers 200: its storage on the file system, or `s3` when given.
    pub fn start_distribution(
        bin: &Path,
        name: &'static str,
        s3: Option<&S3Target>,
    ) -> anyhow::Result<Server> {
        Server::start_configured(bin, name, s3, &[])
    }

    /// Starts `bin` as `bare-registry serve <config>` (the bench's least HTTP registry, see
    /// `src/bin/bare-registry.rs`) with Distribution's configuration on the local disk, and
    /// glibc's allocator tuned as Berth tunes it for itself (`berth/src/memory.rs`: freed
    /// buffers kept and reused, one arena), so that a comparison of the two measures their
    /// work rather than their allocator settings.
    pub fn start_bare(bin: &Path, name: &'static str) -> anyhow::Result<Server> {
        Server::start_configured(
            bin,
            name,
            None,
            &[(
                "GLIBC_TUNABLES",
                "glibc.malloc.mmap_threshold=8388608:glibc.malloc.trim_threshold=16777216:\
                 glibc.malloc.arena_max=1",
            )],
        )
    }

    /// Starts `bin serve <config>` with a Distribution configuration (its storage on `s3`, or
    /// the local disk) and the environment variables `env`.
    fn start_configured(
        bin: &Path,
        name: &'static str,
        s3: Option<&S3Target>,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Server> {
        let dir = TempDir::with_prefix("berth-bench-distribution-")?;
        let port = free_port()?;
        let root = dir.path().join("data");
        std::fs::create_dir(&root)?;
        let config = dir.path().join("config.yml");
        let storage = match s3 {
            None => distribution_filesystem(&root),
            Some(s3) => distribution_s3(s3),
        };
        std::fs::write(&config, distribution_config(&storage, port))?;
        let mut child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .current_dir(dir.path())
            // Its AWS SDK panics on a custom CA bundle; the endpoint is plain HTTP anyway.
            .env_remove("AWS_CA_BUNDLE")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let log = RecentLog::default();
        drain(
            child.stderr.take().context("distribution stderr")?,
            log.clone(),
            None,
        );
        let base = format!("http://127.0.0.1:{port}");
        let mut server = Server {
            name,
            base,
            authorization: None,
            startup_warnings: Vec::new(),
            processes: vec![Process::new(child, log)],
            store_pids: Vec::new(),
            balancer_pids: Vec::new(),
            guards: Vec::new(),
            _dir: Some(dir),
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Polls `GET /v2/` with a bare HTTP/1.0 request until it answers 200.
    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let address = self.base.trim_start_matches("http://").to_owned();
        let started = Instant::now();
        while started.elapsed() < STARTUP_TIMEOUT {
            if let Some(status) = self.processes[0].child.try_wait()? {
                bail!("{} exited ({status}):\n{}", self.name, self.recent_log());
            }
            if probe_v2(&address).unwrap_or(false) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "{} did not answer GET /v2/:\n{}",
            self.name,
            self.recent_log()
        )
    }

    /// Joins `nodes` (started alone, each with its own data directory) into one server at
    /// `base` (their balancer), displayed as `name`: figures are summed over the nodes. The
    /// nodes' directories and guards go with it; `guards` (the balancer) are dropped first
    /// after the nodes are killed.
    pub fn join(
        name: &'static str,
        base: String,
        nodes: Vec<Server>,
        guards: Vec<Box<dyn std::any::Any + Send>>,
    ) -> Server {
        let mut joined = Server {
            name,
            base,
            authorization: nodes.first().and_then(|node| node.authorization.clone()),
            startup_warnings: Vec::new(),
            processes: Vec::new(),
            store_pids: Vec::new(),
            balancer_pids: Vec::new(),
            guards,
            _dir: None,
        };
        let mut dirs = Vec::new();
        for mut node in nodes {
            joined.processes.append(&mut node.processes);
            joined.startup_warnings.append(&mut node.startup_warnings);
            joined.store_pids.append(&mut node.store_pids);
            joined.balancer_pids.append(&mut node.balancer_pids);
            joined.guards.append(&mut node.guards);
            dirs.extend(node._dir.take());
        }
        // The data directories, after every process is killed.
        joined.guards.push(Box::new(dirs));
        joined
    }

    /// Keeps `guard` (an object store, a database…) until the server's processes are killed,
    /// and counts `store_pids` as the object store's processes.
    pub fn keep(&mut self, guard: Box<dyn std::any::Any + Send>, store_pids: &[u32]) {
        self.guards.push(guard);
        self.store_pids.extend_from_slice(store_pids);
    }

    /// Resets the server's peak resident set size (`VmHWM`) to its current size, first folding
    /// the peak it replaces into the peak over the run.
    pub fn reset_peak_rss(&self) {
        for process in &self.processes {
            if let Err(error) = process.peak_rss_kib() {
                eprintln!("warning: cannot read peak RSS before resetting it: {error:#}");
            }
            let path = format!("/proc/{}/clear_refs", process.child.id());
            if let Err(error) = std::fs::write(&path, "5") {
                eprintln!(
                    "warning: cannot reset peak RSS ({path}: {error}); figures are since start"
                );
            }
        }
    }

    /// The server's peak resident set size since the last reset, in MiB (summed over its
    /// processes: an upper bound of their peak together).
    pub fn peak_rss_mib(&self) -> anyhow::Result<f64> {
        let mut kib = 0;
        for process in &self.processes {
            kib += process.peak_rss_kib()?;
        }
        Ok(kib as f64 / 1024.0)
    }

    /// The server's peak resident set size since it started, in MiB, as if it had never been
    /// reset. `VmHWM` only rises between resets, and every reset first reads it, so the
    /// largest of the values read before each reset and now is the peak over the whole life
    /// of the process: each moment of it lies before exactly one of those reads, after the
    /// reset before it (or the start). Between-phase moments are covered too, unlike with the
    /// maximum of the per-phase peaks alone. Summed over the server's processes.
    pub fn run_peak_rss_mib(&self) -> anyhow::Result<f64> {
        let mut kib = 0;
        for process in &self.processes {
            process.peak_rss_kib()?;
            kib += process.run_peak_kib.load(Ordering::Relaxed);
        }
        Ok(kib as f64 / 1024.0)
    }

    /// CPU time (user + system) the server has used since it started, in seconds (summed
    /// over its processes).
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let mut seconds = 0.0;
        for process in &self.processes {
            seconds += process_cpu_seconds(process.child.id())?;
        }
        Ok(seconds)
    }

    /// CPU time the object store's processes have used since they started, in seconds; `None`
    /// without one.
    pub fn store_cpu_seconds(&self) -> anyhow::Result<Option<f64>> {
        if self.store_pids.is_empty() {
            return Ok(None);
        }
        cpu_of(self.store_pids.iter().copied()).map(Some)
    }

    /// Counts `pid` and its children (nginx's workers) as the balancer in front of the nodes.
    pub fn add_balancer(&mut self, pid: u32) {
        self.balancer_pids.push(pid);
    }

    /// CPU time the balancer's processes and their children have used since they started, in
    /// seconds; `None` without a balancer.
    pub fn balancer_cpu_seconds(&self) -> anyhow::Result<Option<f64>> {
        if self.balancer_pids.is_empty() {
            return Ok(None);
        }
        let mut pids = self.balancer_pids.clone();
        for &pid in &self.balancer_pids {
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))?;
            for child in children.split_whitespace() {
                pids.push(child.parse()?);
            }
        }
        cpu_of(pids).map(Some)
    }

    /// The last lines the server wrote to stderr, for error messages (each node's, with
    /// several).
    pub fn recent_log(&self) -> String {
        // The threads reading the logs lag the processes: a line written just before a
        // failed request was answered may not have been read yet.
        std::thread::sleep(Duration::from_millis(300));
        let mut text = String::new();
        for (index, process) in self.processes.iter().enumerate() {
            if self.processes.len() > 1 {
                let _ = writeln!(text, "  node {}:", index + 1);
            }
            let lines = process
                .log
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .last_lines(LOG_LINES_SHOWN);
            for line in lines {
                let _ = writeln!(text, "  {line}");
            }
        }
        text
    }

    /// Stops the server as dropping it does, but hands back its data directory instead of
    /// removing it (`None` when the caller kept it anyway). The bench removes these at its
    /// end: on a file system without a journal (ext4 on these VMs), a file created within a
    /// minute or more of many deletions makes the kernel step over each recently deleted
    /// inode before it picks one (`recently_deleted`), so removing one server's thousands of
    /// files made the next server's file creations several times slower. Its files of a MiB
    /// or more (the push phases' blobs: few, and what fills the disk) go at once.
    pub fn stop_keeping_data(mut self) -> Option<TempDir> {
        let dir = self._dir.take();
        // Kills the processes, then what ran beside them.
        drop(self);
        if let Some(dir) = &dir {
            remove_large_files(dir.path());
        }
        dir
    }
}

/// Removes the files of 1 MiB or more under `dir`, not following symbolic links; best effort
/// (what stays is removed with the directory later).
fn remove_large_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        // A directory entry's metadata does not follow a symbolic link.
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if meta.is_dir() {
            remove_large_files(&entry.path());
        } else if meta.is_file() && meta.len() >= 1 << 20 {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for process in &mut self.processes {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
        // Then what ran beside it, in order.
        for guard in self.guards.drain(..) {
            drop(guard);
        }
    }
}

/// A loopback port free right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// An S3 bucket (and key prefix) a registry keeps its blobs in.
#[derive(Clone, Debug)]
pub struct S3Target {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The region (`garage`).
    pub region: String,
    /// The bucket.
    pub bucket: String,
    /// A key prefix inside it, without slashes at either end; empty for none.
    pub prefix: String,
    /// The access key id.
    pub key_id: String,
    /// The secret key.
    pub secret: String,
}

/// Distribution's configuration: `storage` (its driver's lines, indented by two), deletes on,
/// logs quiet.
fn distribution_config(storage: &str, port: u16) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: error\n  accesslog:\n    disabled: true\n\
         storage:\n{storage}  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n"
    )
}

/// Distribution's file system storage under `root`.
fn distribution_filesystem(root: &Path) -> String {
    format!("  filesystem:\n    rootdirectory: {}\n", root.display())
}

/// Distribution's S3 storage driver on `s3` (as on Garage: path-style requests over plain
/// HTTP, signature v4) with redirects off, so blob GETs stream through it as through Berth.
fn distribution_s3(s3: &S3Target) -> String {
    let root = if s3.prefix.is_empty() {
        String::new()
    } else {
        format!("    rootdirectory: /{}\n", s3.prefix)
    };
    format!(
        "  s3:\n    region: {}\n    regionendpoint: {}\n    bucket: {}\n    accesskey: {}\n\
         \x20   secretkey: {}\n    secure: false\n    v4auth: true\n    forcepathstyle: true\n\
         {root}  redirect:\n    disable: true\n",
        s3.region, s3.endpoint, s3.bucket, s3.key_id, s3.secret
    )
}

/// Reads `stderr` to its end on a thread, keeping its last bytes in `log`. When `found` is
/// given, sends it the base URL from the first line containing `listening on `.
///
/// The drain shares the machine's cores with the server, and a server with its request log on
/// writes a line per request, so it does as little as it can: 64 KiB reads (Berth's log
/// writer batches its lines, so one read carries many), a search for the address line only
/// until it is found, and no per-line work afterwards.
fn drain(
    mut stderr: impl Read + Send + 'static,
    log: RecentLog,
    found: Option<mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        let mut found = found;
        // Until the address is found: what was read since the last complete line.
        let mut pending = Vec::new();
        let mut buffer = vec![0; DRAIN_READ_BYTES];
        loop {
            let read = match stderr.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => &buffer[..read],
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            // Into the tail first, so the lines before the address are there once it is sent.
            log.lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(read);
            if let Some(sender) = &found {
                pending.extend_from_slice(read);
                if let Some(base) = take_address(&mut pending) {
                    let _ = sender.send(base);
                    found = None;
                    pending = Vec::new();
                }
            }
        }
    });
}

/// The base URL from the first complete line of `pending` containing `listening on `, if
/// any; the complete lines without it are removed, a trailing partial line is kept.
fn take_address(pending: &mut Vec<u8>) -> Option<String> {
    const MARK: &[u8] = b"listening on ";
    let complete = pending.iter().rposition(|&byte| byte == b'\n')? + 1;
    let address = pending[..complete]
        .split(|&byte| byte == b'\n')
        .find_map(|line| {
            let at = line.windows(MARK.len()).position(|window| window == MARK)?;
            let rest = String::from_utf8_lossy(&line[at + MARK.len()..]);
            Some(rest.trim().trim_end_matches('/').to_owned())
        });
    pending.drain(..complete);
    address
}

/// Whether `GET /v2/` on `address` answers 200 (one short-lived connection).
fn probe_v2(address: &str) -> std::io::Result<bool> {
    use std::io::Write as _;
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET /v2/ HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line)?;
    Ok(status_line.split_whitespace().nth(1) == Some("200"))
}

/// CPU time the processes `pids` have used since they started, in seconds.
pub fn cpu_of(pids: impl IntoIterator<Item = u32>) -> anyhow::Result<f64> {
    pids.into_iter().map(process_cpu_seconds).sum()
}

/// CPU time (user + system) process `pid` has used since it started, in seconds (the bench
/// reads its own too: client and server share the machine's cores).
pub fn process_cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    cpu_seconds_of(&format!("/proc/{pid}/stat"))
}

/// CPU time (user + system) the calling thread has used since it started, in seconds.
pub fn thread_cpu_seconds() -> anyhow::Result<f64> {
    cpu_seconds_of("/proc/thread-self/stat")
}

/// utime + stime of a `/proc/…/stat` file, in seconds.
fn cpu_seconds_of(path: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(path)?;

    // Fields after the parenthesised command name start at field 3; utime and stime are
    // fields 14 and 15, in USER_HZ ticks (100 per second on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("malformed stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields
        .get(11..13)
        .context("short stat")?
        .iter()
        .map(|f| f.parse::<u64>())
        .sum::<Result<_, _>>()?;
    Ok(ticks as f64 / USER_HZ)
}

/// CPU time the hypervisor gave to other guests while this machine's CPUs wanted to run
/// (`steal` in `/proc/stat`), in seconds summed over CPUs. A phase that lost a noticeable share
/// to steal ran on a slower machine than its neighbours.
pub fn machine_steal_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let cpu = stat
        .lines()
        .find(|line| line.starts_with("cpu "))
        .context("no cpu line in /proc/stat")?;
    // cpu user nice system idle iowait irq softirq steal ...
    let steal: u64 = cpu
        .split_whitespace()
        .nth(8)
        .context("no steal field in /proc/stat")?
        .parse()?;
    Ok(steal as f64 / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threads_cpu_counts_its_work_and_not_its_sleep() {
        let busy = std::thread::spawn(|| {
            let before = thread_cpu_seconds().unwrap();
            let started = std::time::Instant::now();
            let mut spin = 0u64;
            while started.elapsed() < std::time::Duration::from_millis(300) {
                spin = std::hint::black_box(spin.wrapping_add(1));
            }
            thread_cpu_seconds().unwrap() - before
        });
        let asleep = std::thread::spawn(|| {
            let before = thread_cpu_seconds().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
            thread_cpu_seconds().unwrap() - before
        });
        let (busy, asleep) = (busy.join().unwrap(), asleep.join().unwrap());
        // Ticks are 10 ms; the busy thread may share a core with the rest of the suite.
        assert!(busy >= 0.05, "a spinning thread counted {busy} s");
        assert!(asleep <= 0.03, "a sleeping thread counted {asleep} s");
    }

    #[test]
    fn the_address_is_found_across_reads() {
        let mut pending = b"warning: something\nberth listen".to_vec();
        assert_eq!(take_address(&mut pending), None);
        assert_eq!(pending, b"berth listen");
        pending.extend_from_slice(b"ing on http://127.0.0.1:4000/\nnext");
        assert_eq!(
            take_address(&mut pending).as_deref(),
            Some("http://127.0.0.1:4000")
        );
        assert_eq!(pending, b"next");
    }

    #[test]
    fn the_log_tail_keeps_the_last_whole_lines() {
        let mut tail = LogTail::default();
        tail.push(b"one\ntwo\n");
        assert_eq!(tail.last_lines(5), ["one", "two"]);
        let line = format!("{}\n", "x".repeat(99));
        for _ in 0..1000 {
            tail.push(line.as_bytes());
        }
        tail.push(b"last\n");
        assert!(tail.bytes.len() <= 2 * LOG_TAIL_BYTES);
        let lines = tail.last_lines(3);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2], "last");
        assert_eq!(lines[0], "x".repeat(99));
        // A read bigger than the tail keeps only its end, without a partial first line.
        tail.push(&line.as_bytes().repeat(LOG_TAIL_BYTES / 50));
        assert!(tail.last_lines(usize::MAX).iter().all(|l| l.len() == 99));
    }

    /// A finished server's large files go at once; its small ones, and whatever a symbolic
    /// link inside it points to, stay.
    #[test]
    fn only_large_files_are_removed_at_once() {
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("big");
        std::fs::write(&target, vec![0u8; 2 << 20]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("blobs/sha256/ab");
        std::fs::create_dir_all(&nested).unwrap();
        std::fs::write(nested.join("large"), vec![0u8; 1 << 20]).unwrap();
        std::fs::write(nested.join("small"), vec![0u8; 1024]).unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("link")).unwrap();
        remove_large_files(dir.path());
        assert!(!nested.join("large").exists());
        assert!(nested.join("small").exists());
        assert!(target.exists(), "a link's target is not the server's");
        assert!(std::fs::symlink_metadata(dir.path().join("link")).is_ok());
    }
}
