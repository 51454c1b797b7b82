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
