//! Several `berth serve` nodes sharing one PostgreSQL database and one S3 bucket prefix on
//! the test Garage cluster (three nodes, replication 3), behind nginx (Debian's) balancing
//! each request round-robin, as the README's production setup runs them.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use berth_testkit::inspect::BlobInspector;

use super::{Server, Stores, postgres_database};

/// Nodes, their shared stores, and the balancer in front.
pub struct Cluster {
    /// The nodes, each with its own data directory.
    pub nodes: Vec<Server>,
    /// The balancer's base URL, e.g. `http://127.0.0.1:41234` (also every node's
    /// `external_url`).
    pub base: String,
    /// The balancer's `host:port`.
    pub host: String,
    /// The database every node keeps its metadata in.
    pub database_url: String,
    /// Where every node keeps metadata and blobs.
    pub stores: Stores,
    nginx: Option<Child>,
    nginx_dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` nodes on a fresh database and bucket prefix, and nginx in front.
    pub fn start(n: usize) -> Cluster {
        Cluster::start_with(n, &[])
    }

    /// Starts `n` nodes like [`Cluster::start`], each with the extra settings `extra`.
    pub fn start_with(n: usize, extra: &[(&str, &str)]) -> Cluster {
        super::require("nginx");
        let database_url = postgres_database();
        let stores = Stores::shared(database_url.clone());
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let env: Vec<(String, String)> = [("BERTH_EXTERNAL_URL", base.as_str())]
            .iter()
            .chain(extra)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let first = Server::start_node(stores.clone(), env.clone(), None);
        let token = first.admin_token.clone();
        let mut nodes = vec![first];
        for _ in 1..n {
            nodes.push(Server::start_node(
                stores.clone(),
                env.clone(),
                Some(token.clone()),
            ));
        }
        // The admin credentials `client()` and skopeo use are the same on every node.
        nodes[0].publish_credentials_for(&format!("127.0.0.1:{port}"));
        let nginx_dir = tempfile::tempdir().expect("temp dir");
        let upstreams: Vec<&str> = nodes.iter().map(|node| node.host.as_str()).collect();
        let nginx = start_nginx(nginx_dir.path(), port, &upstreams);
        Cluster {
            nodes,
            host: format!("127.0.0.1:{port}"),
            base,
            database_url,
            stores,
            nginx: Some(nginx),
            nginx_dir,
        }
    }

    /// The inspector of the blobs every node shares.
    pub fn blobs(&self) -> Box<dyn BlobInspector> {
        self.stores.blobs(self.nodes[0].data_dir())
    }

    /// The URL of a path through the balancer.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// nginx's error log (upstreams it gave up on, with why).
    pub fn balancer_log(&self) -> String {
        std::fs::read_to_string(self.nginx_dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut nginx) = self.nginx.take() {
            // SIGTERM: the master stops its workers (a SIGKILL would leave them running,
            // holding the port).
            let _ = Command::new("kill")
                .args(["-TERM", &nginx.id().to_string()])
                .status();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while nginx.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let _ = nginx.kill();
            let _ = nginx.wait();
        }
    }
}

/// A node of the test Garage cluster stopped by a test (SIGKILL, as a crash would): started
/// again, and waited for until the cluster counts it healthy, by [`StoppedGarageNode::start`]
/// or when dropped (a failed test too), since every test shares the cluster.
pub struct StoppedGarageNode {
    /// The node's configuration file; its `pid` and `server.log` are beside it
    /// (`scripts/services`).
    config: String,
    /// A node that stays up, to ask the cluster's status.
    witness: String,
    /// The node's id as `garage status` lists it (its first 16 hex digits).
    id: String,
    stopped: bool,
}

impl StoppedGarageNode {
    /// Stops the node whose configuration is `config`; `witness` is another node's.
    pub fn stop(config: &str, witness: &str) -> StoppedGarageNode {
        let id = super::run(Command::new("garage").args(["-c", config, "node", "id", "-q"]));
        let id: String = id.trim().chars().take(16).collect();
        let pid = Self::pid_file(config);
        let pid = std::fs::read_to_string(&pid)
            .unwrap_or_else(|e| panic!("reading {}: {e}", pid.display()));
        let pid = pid.trim();
        let status = Command::new("kill").args(["-KILL", pid]).status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "kill -KILL {pid} (Garage node {config})"
        );
        // Gone once its process is.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Command::new("kill")
            .args(["-0", pid])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(
                std::time::Instant::now() < deadline,
                "Garage node {pid} did not die"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        StoppedGarageNode {
            config: config.to_owned(),
            witness: witness.to_owned(),
            id,
            stopped: true,
        }
    }

    fn pid_file(config: &str) -> std::path::PathBuf {
        Path::new(config).with_file_name("pid")
    }

    /// Starts the node again (in a process group of its own, so it outlives the test and
    /// `scripts/services stop` stops it by its new pid) and waits until the witness lists it
    /// among the healthy nodes.
    #[expect(
        clippy::zombie_processes,
        reason = "the node outlives the test: scripts/services stop ends it"
    )]
    pub fn start(&mut self) {
        use std::os::unix::process::CommandExt as _;
        if !self.stopped {
            return;
        }
        self.stopped = false;
        let log = Path::new(&self.config).with_file_name("server.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("opening {}: {e}", log.display()));
        let child = Command::new("garage")
            .args(["-c", &self.config, "server"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting Garage ({}): {e}", self.config));
        std::fs::write(Self::pid_file(&self.config), format!("{}\n", child.id()))
            .expect("write the pid file");
        // Back once it answers itself and sees every node, and the witness sees it (its view
        // of a peer lags by seconds either way: alone it could still show the node as before).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        let all_healthy = |config: &str| {
            let status = Command::new("garage")
                .args(["-c", config, "status"])
                .output()
                .expect("run garage status");
            let text = String::from_utf8_lossy(&status.stdout).into_owned();
            (
                status.status.success() && !text.contains("FAILED NODES"),
                text,
            )
        };
        loop {
            let (itself, text) = all_healthy(&self.config);
            let (witness, witnessed) = all_healthy(&self.witness);
            if itself && witness && witnessed.contains(&self.id) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "Garage node {} is not back: {text}\n{witnessed}",
                self.id
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

impl Drop for StoppedGarageNode {
    fn drop(&mut self) {
        self.start();
    }
}

/// A loopback port free right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// nginx in the foreground on 127.0.0.1:`port`, passing each request to the next of
/// `upstreams` (streamed both ways, no body size limit), its files under `dir`.
fn start_nginx(dir: &Path, port: u16, upstreams: &[&str]) -> Child {
    let servers: String = upstreams
        .iter()
        .map(|host| format!("        server {host} max_fails=1 fail_timeout=5s;\n"))
        .collect();
    let d = dir.display();
    let config = format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 512; }}\n\
         http {{\n    access_log off;\n\
             client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\
             upstream berth {{\n{servers}    }}\n\
             server {{\n        listen 127.0.0.1:{port};\n        client_max_body_size 0;\n\
                 proxy_request_buffering off;\n        proxy_buffering off;\n\
                 proxy_http_version 1.1;\n        proxy_set_header Host $http_host;\n\
                 proxy_set_header Connection \"\";\n\
                 location / {{ proxy_pass http://berth; }}\n    }}\n}}\n"
    );
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, config).expect("write nginx.conf");
    // Run as root, nginx's workers become `nobody`: they must be able to use the directory.
    let _ = Command::new("chmod").arg("777").arg(dir).status();
    let mut child = Command::new("nginx")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start nginx");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().expect("wait nginx") {
            panic!(
                "nginx exited ({status}): {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
        }
        assert!(std::time::Instant::now() < deadline, "nginx did not listen");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}
