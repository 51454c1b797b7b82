//! Test harness: starts the real `berth serve` binary on an ephemeral port and talks HTTP to it.
#![allow(dead_code)]

pub mod access;
pub mod cluster;
pub mod github;
pub mod layout;
pub mod meta;
pub mod postgres;
pub mod schema;
pub mod web;
pub mod world;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use std::sync::Mutex;

use berth_testkit::inspect::{BlobInspector, FsInspector, S3Inspector};
use bytes::Bytes;
use sha2::{Digest as _, Sha256};

/// Login of the site administrator every test server is bootstrapped with.
pub const ADMIN: &str = "admin";
/// Organization every test server has, owned by [`ADMIN`]: tests push under `acme/…`.
pub const ORG: &str = "acme";

/// The admin token of the server started last in this process. nextest runs each test in
/// its own process, so this is the test's own server; [`client`] sends it.
static ADMIN_TOKEN: Mutex<Option<String>> = Mutex::new(None);
/// A container-tools auth file holding that token, for skopeo (`REGISTRY_AUTH_FILE`).
static AUTH_FILE: Mutex<Option<PathBuf>> = Mutex::new(None);

/// A running `berth serve` over a data directory that outlives restarts.
pub struct Server {
    child: Option<Child>,
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub base: String,
    /// `host:port`, for clients that take a registry host.
    pub host: String,
    data: tempfile::TempDir,
    /// Its settings: those of its stores, then the test's own.
    env: Vec<(String, String)>,
    /// Where it keeps metadata and blobs.
    stores: Stores,
    /// A classic token of the site administrator [`ADMIN`] with every scope.
    pub admin_token: String,
}

impl Server {
    /// Starts a server over a fresh data directory.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a server over a fresh data directory with extra environment variables
    /// (`BERTH_*` settings), kept across restarts, on fresh stores of this run's backends
    /// (see [`Stores::of_run`]).
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Server::start_node(Stores::of_run(), env, None)
    }

    /// Starts a server over a fresh data directory keeping metadata and blobs in `stores`,
    /// with the further settings `env`. Bootstraps the administrator and [`ORG`] unless
    /// `admin_token` is one already bootstrapped (another node of a cluster).
    pub fn start_node(
        stores: Stores,
        env: Vec<(String, String)>,
        admin_token: Option<String>,
    ) -> Server {
        let env: Vec<(String, String)> = stores.env().into_iter().chain(env).collect();
        let data = tempfile::tempdir().expect("temp dir");
        let admin_token = match admin_token {
            Some(token) => token,
            None => bootstrap(data.path(), &env),
        };
        let (child, base) = spawn(data.path(), &env);
        let host = base
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_owned();
        let server = Server {
            child: Some(child),
            base,
            host,
            data,
            env,
            stores,
            admin_token,
        };
        server.publish_credentials();
        server
    }

    /// Makes [`client`] and [`auth_file`] use this server's admin token.
    fn publish_credentials(&self) {
        self.publish_credentials_for(&self.host);
    }

    /// Makes [`client`] and [`auth_file`] use this server's admin token, the auth file for
    /// registry `host` (a balancer in front of it).
    pub fn publish_credentials_for(&self, host: &str) {
        *ADMIN_TOKEN.lock().unwrap() = Some(self.admin_token.clone());
        let path = self.data.path().join("auth.json");
        let auth = base64_encode(format!("{ADMIN}:{}", self.admin_token).as_bytes());
        let json = serde_json::json!({ "auths": { host: { "auth": auth } } });
        std::fs::write(&path, json.to_string()).expect("write auth file");
        *AUTH_FILE.lock().unwrap() = Some(path);
    }

    /// Runs `berth admin <args>` on this server's data directory; its stdout.
    pub fn admin(&self, args: &[&str]) -> String {
        admin(self.data.path(), &self.env, args)
    }

    /// Runs `berth <command> --data-dir <data> <args>` (`fsck`, `backup`…) with this server's
    /// settings, succeed or fail; whether it succeeded, and its stderr.
    pub fn tool(&self, command: &str, args: &[&str]) -> (bool, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg(command)
            .arg("--data-dir")
            .arg(self.data.path())
            .args(args)
            .env("BERTH_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap_or_else(|e| panic!("run berth {command}: {e}"));
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Runs `berth <command> --data-dir <data> <args>` with this server's settings and then
    /// `env` (which wins), succeed or fail; its output.
    pub fn tool_with(
        &self,
        command: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg(command)
            .arg("--data-dir")
            .arg(self.data.path())
            .args(args)
            .env("BERTH_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(env.iter().copied())
            .output()
            .unwrap_or_else(|e| panic!("run berth {command}: {e}"))
    }

    /// The settings the server runs with (its stores', then the test's own), for tools run
    /// beside it.
    pub fn env_vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Runs `berth admin <args>` on this server's data directory, succeed or fail; its output.
    pub fn try_admin(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["admin", "--data-dir"])
            .arg(self.data.path())
            .args(args)
            .env("BERTH_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run berth admin")
    }

    /// The PostgreSQL database the server keeps its metadata in; `None` on SQLite.
    pub fn database_url(&self) -> Option<&str> {
        self.stores.database_url.as_deref()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// The inspector of this server's blob store: what it holds, and crash states made by
    /// hand.
    pub fn blobs(&self) -> Box<dyn BlobInspector> {
        self.stores.blobs(self.data.path())
    }

    /// This server's blob store, opened beside it (see [`Stores::blob_store`]).
    pub async fn blob_store(&self) -> Box<dyn berth_core::ports::BlobStore> {
        self.stores.blob_store(self.data.path()).await
    }

    /// Stops the server (SIGKILL: no chance to tidy up) and starts it again over the same data.
    pub fn restart(&mut self) {
        self.kill();
        let (child, base) = spawn(self.data.path(), &self.env);
        self.host = base
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_owned();
        self.base = base;
        self.child = Some(child);
        self.publish_credentials();
    }

    /// Stops the server (SIGKILL) and starts it again over the same data with `env` (the
    /// `BERTH_*` settings) instead of the ones it had, kept for later restarts.
    pub fn restart_with(&mut self, env: &[(&str, &str)]) {
        // Its metadata and blobs stay where they are.
        self.env = self
            .stores
            .env()
            .into_iter()
            .chain(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .collect();
        self.restart();
    }

    /// Kills the server.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The URL of a path on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM (graceful shutdown) without waiting.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -TERM failed");
    }

    /// Waits up to `secs` seconds for the server to exit; its exit status.
    pub fn wait_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("server running");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "server did not exit within {secs}s"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The metadata backend the servers of this run use, from `TEST_BACKEND`: `sqlite`
/// (the default, the embedded setup) or `postgres` (a fresh database per server on the test
/// PostgreSQL that `scripts/services` started). `scripts/test` runs the registry, access,
/// packages and webhook suites once more with `postgres` (and [`Blobs::S3`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in the data directory.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// The backend this run asks for.
    pub fn of_run() -> Backend {
        match std::env::var("TEST_BACKEND").as_deref() {
            Err(_) | Ok("" | "sqlite") => Backend::Sqlite,
            Ok("postgres") => Backend::Postgres,
            Ok(other) => panic!("TEST_BACKEND={other}: use sqlite or postgres"),
        }
    }
}

/// The blob store the servers of this run use, from `TEST_BLOBS`: `file` (the default, the
/// data directory) or `s3` (a fresh key prefix per server in the bucket of the test Garage
/// cluster that `scripts/services start postgres garage` started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blobs {
    /// The filesystem store in the data directory.
    File,
    /// The S3 store on the test Garage cluster.
    S3,
}

impl Blobs {
    /// The blob store this run asks for.
    pub fn of_run() -> Blobs {
        match std::env::var("TEST_BLOBS").as_deref() {
            Err(_) | Ok("" | "file") => Blobs::File,
            Ok("s3") => Blobs::S3,
            Ok(other) => panic!("TEST_BLOBS={other}: use file or s3"),
        }
    }
}

/// Where a server keeps its metadata and blobs. The one place the harness turns a backend
/// into settings ([`Stores::env`]) and into an inspector ([`Stores::blobs`]).
#[derive(Debug, Clone, Default)]
pub struct Stores {
    /// The PostgreSQL database; `None`: SQLite in the data directory.
    pub database_url: Option<String>,
    /// The key prefix in the test Garage cluster's bucket; `None`: blobs in the data directory.
    pub s3_prefix: Option<String>,
}

impl Stores {
    /// Fresh stores on the backends this run asks for ([`Backend::of_run`], [`Blobs::of_run`]).
    pub fn of_run() -> Stores {
        Stores::on_database(match Backend::of_run() {
            Backend::Sqlite => None,
            Backend::Postgres => Some(postgres_database()),
        })
    }

    /// Metadata in `database_url` (`None`: SQLite in the data directory), blobs where this run
    /// asks (a fresh prefix on S3).
    pub fn on_database(database_url: Option<String>) -> Stores {
        Stores {
            database_url,
            s3_prefix: match Blobs::of_run() {
                Blobs::File => None,
                Blobs::S3 => Some(fresh_s3_prefix()),
            },
        }
    }

    /// These stores with blobs under a fresh prefix of the test bucket whatever the run asks
    /// (for what only an S3 store does), unless they are there already.
    pub fn in_s3(mut self) -> Stores {
        self.s3_prefix.get_or_insert_with(fresh_s3_prefix);
        self
    }

    /// Metadata in `database_url` and blobs under a fresh prefix of the test bucket: what the
    /// nodes of a cluster share.
    pub fn shared(database_url: String) -> Stores {
        Stores {
            database_url: Some(database_url),
            s3_prefix: Some(fresh_s3_prefix()),
        }
    }

    /// The settings that put a server's metadata and blobs here.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if let Some(url) = &self.database_url {
            env.push(("BERTH_DATABASE_URL".to_owned(), url.clone()));
        }
        if let Some(prefix) = &self.s3_prefix {
            let s3 = berth_testkit::services::s3_service();
            env.extend(
                [
                    ("BERTH_BLOB_STORE", format!("s3://{}/{prefix}", s3.bucket)),
                    ("BERTH_S3_ENDPOINT", s3.endpoint),
                    ("BERTH_S3_REGION", s3.region),
                    ("BERTH_S3_ACCESS_KEY_ID", s3.key_id),
                    ("BERTH_S3_SECRET_ACCESS_KEY", s3.secret),
                ]
                .map(|(k, v)| (k.to_owned(), v)),
            );
        }
        env
    }

    /// The blob store itself (of a server whose data directory is `data`), opened beside the
    /// server through the blob port: for the states only a process killed mid-request leaves,
    /// made with the store's own calls.
    pub async fn blob_store(&self, data: &Path) -> Box<dyn berth_core::ports::BlobStore> {
        match &self.s3_prefix {
            Some(prefix) => {
                let s3 = berth_testkit::services::s3_service();
                let settings = berth_blob_s3::S3Settings {
                    bucket: s3.bucket,
                    prefix: prefix.clone(),
                    endpoint: Some(s3.endpoint),
                    region: s3.region,
                    access_key_id: s3.key_id,
                    secret_access_key: s3.secret,
                    upload_memory: berth_blob_s3::DEFAULT_UPLOAD_MEMORY,
                };
                Box::new(
                    berth_blob_s3::S3BlobStore::open(&settings)
                        .await
                        .expect("open the server's S3 blob store"),
                )
            }
            None => Box::new(
                berth_blob::FsBlobStore::open(data).expect("open the server's blob directory"),
            ),
        }
    }

    /// The inspector of these blobs (of a server whose data directory is `data`).
    pub fn blobs(&self, data: &Path) -> Box<dyn BlobInspector> {
        match &self.s3_prefix {
            Some(prefix) => Box::new(S3Inspector::new(
                &berth_testkit::services::s3_service(),
                prefix,
            )),
            None => Box::new(FsInspector::new(data)),
        }
    }
}

/// A key prefix no other server of any test uses.
fn fresh_s3_prefix() -> String {
    format!("e2e-{}", uuid::Uuid::new_v4().simple())
}

/// Records that the calling test skipped itself (see [`fs_only`]): on stderr, and in the file
/// `TEST_SKIPPED` names when set (`scripts/test` prints it after the pass).
pub fn skipped(test: &str, why: &str) {
    let test = test.trim_end_matches("::here").replace("::{{closure}}", "");
    let line = format!("skipped on S3 blobs: {test}: {why}");
    eprintln!("{line}");
    if let Ok(path) = std::env::var("TEST_SKIPPED") {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("opening {path}: {e}"));
        writeln!(file, "{line}").unwrap_or_else(|e| panic!("writing {path}: {e}"));
    }
}

/// Returns from the calling test, saying so and `why` ([`skipped`]), unless this run keeps
/// blobs on the filesystem: for tests that need a state only the filesystem store can be put
/// in from outside, or a tool that reads only it.
macro_rules! fs_only {
    ($why:expr) => {
        if $crate::common::Blobs::of_run() != $crate::common::Blobs::File {
            fn here() {}
            $crate::common::skipped(::std::any::type_name_of_val(&here), $why);
            return;
        }
    };
}
pub(crate) use fs_only;

/// A new database on the test PostgreSQL, from any context (the harness is synchronous and
/// may be called inside a test's runtime).
pub fn postgres_database() -> String {
    std::thread::spawn(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(berth_testkit::services::postgres_database())
    })
    .join()
    .expect("create a test database")
}

/// Creates the site administrator (with a token of every scope) and organization [`ORG`].
fn bootstrap(data: &Path, env: &[(String, String)]) -> String {
    let token = admin(
        data,
        env,
        &[
            "create-user",
            ADMIN,
            "--site-admin",
            "--token-scopes",
            "read:packages,write:packages,delete:packages,repo,admin:org,admin:org_hook,site_admin",
        ],
    );
    admin(data, env, &["create-org", ORG, "--owner", ADMIN]);
    token
}

/// Runs `berth admin --data-dir <data> <args>`, asserting success; its stdout, trimmed.
pub fn admin(data: &Path, env: &[(String, String)], args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["admin", "--data-dir"])
        .arg(data)
        .args(args)
        .env("BERTH_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run berth admin");
    assert!(
        output.status.success(),
        "berth admin {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// Standard base64 of `bytes`.
pub fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The auth file (`REGISTRY_AUTH_FILE`) holding the current server's admin credentials.
pub fn auth_file() -> PathBuf {
    AUTH_FILE
        .lock()
        .unwrap()
        .clone()
        .expect("a server was started")
}

fn spawn(data: &Path, env: &[(String, String)]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("BERTH_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start berth");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("berth exited before listening")
            .expect("read stderr");
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.trim().to_owned();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe; echo for failed tests.
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("[berth] {line}");
            SERVER_LOG.lock().unwrap().push(line);
        }
    });
    (child, base)
}

/// Lines the servers of this process wrote on stderr after their `listening` line.
static SERVER_LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The stderr lines written so far by the servers this process started (tests run in their
/// own process under nextest: the test's own servers).
pub fn server_log() -> Vec<String> {
    SERVER_LOG.lock().unwrap().clone()
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// An HTTP client that does not follow redirects and authenticates as the site
/// administrator of the server started last (Basic `admin:<token>`).
pub fn client() -> reqwest::Client {
    let token = ADMIN_TOKEN.lock().unwrap().clone();
    match token {
        Some(token) => client_with_token(&token),
        None => anonymous_client(),
    }
}

/// An HTTP client that sends `Authorization: Basic <user:token>`.
pub fn client_with_token(token: &str) -> reqwest::Client {
    login("user", token)
}

/// A registry client logging in as `user` with `token`, as `docker login` would (Berth reads
/// only the token): it sends `Authorization: Basic <user:token>` and follows no redirects.
pub fn login(user: &str, token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!(
        "Basic {}",
        base64_encode(format!("{user}:{token}").as_bytes())
    );
    headers.insert(
        reqwest::header::AUTHORIZATION,
        value.parse().expect("header value"),
    );
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .expect("client")
}

/// An HTTP client without credentials.
pub fn anonymous_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Pushes `bytes` as a blob of `repo` with a monolithic POST; returns its digest.
pub async fn push_blob(server: &Server, repo: &str, bytes: impl Into<Bytes>) -> String {
    let bytes = bytes.into();
    let d = digest(&bytes);
    let response = client()
        .post(server.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
        .body(bytes)
        .send()
        .await
        .expect("push blob");
    assert_eq!(
        response.status(),
        201,
        "push blob: {}",
        response.text().await.unwrap_or_default()
    );
    d
}

/// Pushes a one-layer OCI image under `tag`; returns the manifest digest and its bytes.
pub async fn push_image(server: &Server, repo: &str, tag: &str, layer: &[u8]) -> (String, Vec<u8>) {
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        digest(layer)
    );
    let config_digest = push_blob(server, repo, config.clone()).await;
    let layer_digest = push_blob(server, repo, layer.to_vec()).await;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    });
    let bytes = serde_json::to_vec(&manifest).expect("json");
    put_manifest(
        server,
        repo,
        tag,
        "application/vnd.oci.image.manifest.v1+json",
        &bytes,
    )
    .await;
    (digest(&bytes), bytes)
}

/// PUTs manifest `bytes` under `reference`, asserting 201.
pub async fn put_manifest(
    server: &Server,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) {
    let response = client()
        .put(server.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("content-type", media_type)
        .body(bytes.to_vec())
        .send()
        .await
        .expect("put manifest");
    assert_eq!(
        response.status(),
        201,
        "put manifest: {}",
        response.text().await.unwrap_or_default()
    );
}

/// Asserts an error response has `status` and spec error `code`; returns its message.
pub async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(
        response.status().as_u16(),
        status,
        "status for expected {code}"
    );
    let body: serde_json::Value = response.json().await.expect("error body is JSON");
    let error = &body["errors"][0];
    assert_eq!(error["code"], code, "body: {body}");
    let message = error["message"].as_str().expect("message").to_owned();
    assert!(
        message.len() > 10,
        "message should say what to do: {message}"
    );
    message
}

/// Runs `cmd`, which must succeed; its standard output.
pub fn run(cmd: &mut Command) -> String {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Fails the test naming `tool` when it is not installed.
pub fn require(tool: &str) {
    assert!(
        have(tool),
        "`{tool}` is not installed; the README's test command installs it (apt-get install -y {tool})"
    );
}

/// Fails the test when the `oras` Python package is missing.
pub fn require_oras_py() {
    let python_has_oras = Command::new("python3")
        .args(["-c", "import oras"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        python_has_oras,
        "the `oras` Python package is missing; the README's test command installs it (pip install oras)"
    );
}

/// `python3` run in scratch directory `dir` with `dir` as its home, for the ORAS Python
/// client: it reads registry credentials from `~/.docker/config.json` over the ones it is
/// given, and its `login` writes them there. In the real home, a token saved by an earlier
/// test for a server on the same port would be sent instead of this test's own. Python still
/// finds the packages installed for the user running the tests.
pub fn python_in(dir: &Path) -> Command {
    let mut command = Command::new("python3");
    command.current_dir(dir).env("HOME", dir);
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        if std::env::var_os("PYTHONUSERBASE").is_none() {
            command.env("PYTHONUSERBASE", home.join(".local"));
        }
        if std::env::var_os("PYENV_ROOT").is_none() {
            command.env("PYENV_ROOT", home.join(".pyenv"));
        }
    }
    command
}

/// Whether a command is on PATH.
pub fn have(command: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {command}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A fresh temporary directory path.
pub fn temp_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    (dir, path)
}

/// `sha512:<hex>` of `bytes`.
pub fn digest512(bytes: &[u8]) -> String {
    format!("sha512:{}", hex::encode(sha2::Sha512::digest(bytes)))
}

/// A response header as text (panics when absent).
pub fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("response {} has no `{name}` header", response.status()))
        .to_str()
        .expect("header is text")
        .to_owned()
}

/// The absolute URL of a `Location` (relative or absolute), with `query` (`k=v`) appended.
pub fn location_url(server: &Server, location: &str, query: Option<&str>) -> String {
    let mut url = if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else {
        server.url(location)
    };
    if let Some(query) = query {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(query);
    }
    url
}

/// Starts an upload session in `repo` (asserting 202); the absolute URL of its `Location`.
pub async fn start_upload(server: &Server, repo: &str) -> String {
    let response = client()
        .post(server.url(&format!("/v2/{repo}/blobs/uploads/")))
        .send()
        .await
        .expect("start upload");
    assert_eq!(
        response.status(),
        202,
        "start upload: {}",
        response.text().await.unwrap_or_default()
    );
    location_url(server, &header(&response, "location"), None)
}

/// `head` (a raw HTTP/1.1 request head) with the admin's `Authorization` header added after
/// its request line.
pub fn with_auth(head: &str) -> String {
    let token = ADMIN_TOKEN
        .lock()
        .unwrap()
        .clone()
        .expect("a server was started");
    let auth = base64_encode(format!("{ADMIN}:{token}").as_bytes());
    match head.split_once("\r\n") {
        Some((line, rest)) => format!("{line}\r\nAuthorization: Basic {auth}\r\n{rest}"),
        None => head.to_owned(),
    }
}

/// Connects to `server` and sends, as the admin, the head of a `PATCH` to upload `location`
/// announcing a body of `length` bytes; the body is the caller's to send (or to withhold).
pub async fn begin_raw_patch(
    server: &Server,
    location: &str,
    length: usize,
) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt as _;
    let path = location.strip_prefix(&server.base).unwrap_or(location);
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n",
        server.host
    );
    let mut tcp = tokio::net::TcpStream::connect(&server.host).await.unwrap();
    tcp.write_all(with_auth(&head).as_bytes()).await.unwrap();
    tcp
}

/// Pushes `bytes` as a blob of `repo` with `http` (monolithic POST); the raw response.
pub async fn push_blob_with(
    http: &reqwest::Client,
    server: &Server,
    repo: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    let d = digest(&bytes);
    http.post(server.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
        .body(bytes)
        .send()
        .await
        .expect("push blob")
}

/// Pushes `count` distinct manifests (tags `build-<i>`) of `repo` sharing one config and
/// layer, as `http`; their digests.
pub async fn push_versions(
    server: &Server,
    http: &reqwest::Client,
    repo: &str,
    count: usize,
) -> std::collections::BTreeSet<String> {
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = b"one layer".to_vec();
    for blob in [&config, &layer] {
        let response = push_blob_with(http, server, repo, blob.clone()).await;
        assert_eq!(response.status(), 201, "push a blob of {repo}");
    }
    let mut pushed = std::collections::BTreeSet::new();
    for i in 0..count {
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(&layer), "size": layer.len()}],
            "annotations": {"build": i.to_string()},
        }))
        .unwrap();
        let response = http
            .put(server.url(&format!("/v2/{repo}/manifests/build-{i}")))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "push {repo}:build-{i}");
        pushed.insert(digest(&manifest));
    }
    pushed
}
