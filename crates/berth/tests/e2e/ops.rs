//! Operating Berth: the health endpoints a load balancer polls, `berth backup`, `restore`
//! and `fsck`, and `berth config check`.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::{Server, Stores, anonymous_client, begin_raw_patch, fs_only, start_upload};

/// `/readyz`'s status and JSON body.
async fn readyz(server: &Server) -> (u16, serde_json::Value) {
    let response = anonymous_client()
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("GET /readyz");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_and_readyz_answer_without_credentials() {
    let server = Server::start();
    let healthz = anonymous_client()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(healthz.status(), 200);
    assert_eq!(healthz.text().await.unwrap().trim(), "ok");
    let (status, body) = readyz(&server).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["metadata"], "ok", "{body}");
    assert_eq!(body["blobs"], "ok", "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_names_the_blob_store_while_it_is_broken() {
    fs_only!(
        "an S3 store's blob area is the bucket every test shares: no test can break it for one server"
    );
    let server = Server::start();
    server.blobs().break_blob_area().await;
    let (status, body) = readyz(&server).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["metadata"], "ok", "{body}");
    let blobs = body["blobs"].as_str().unwrap_or_default();
    assert!(blobs.contains("blob store"), "names the blob store: {body}");
    server.blobs().mend_blob_area().await;
    let (status, body) = readyz(&server).await;
    assert_eq!(status, 200, "ready again once mended: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_names_the_database_while_its_file_is_gone() {
    let server = Server::start();
    let file = server.data_dir().join("metadata.sqlite");
    let aside = server.data_dir().join("metadata.sqlite.aside");
    std::fs::rename(&file, &aside).unwrap();
    let (status, body) = readyz(&server).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["blobs"], "ok", "{body}");
    let metadata = body["metadata"].as_str().unwrap_or_default();
    assert!(
        metadata.contains("metadata database"),
        "names the database: {body}"
    );
    std::fs::rename(&aside, &file).unwrap();
    let (status, body) = readyz(&server).await;
    assert_eq!(status, 200, "ready again once back: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_turns_503_at_the_signal_while_requests_in_flight_finish() {
    let mut server = Server::start_with(&[("BERTH_SHUTDOWN_DELAY_MS", "3000")]);
    let upload = start_upload(&server, "acme/draining").await;
    // An upload whose body trickles in: in flight across the signal.
    let mut tcp = begin_raw_patch(&server, &upload, 8).await;
    tcp.write_all(b"ab").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.terminate();
    let mut answered = None;
    for _ in 0..40 {
        let (status, body) = readyz(&server).await;
        if status == 503 {
            answered = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let body = answered.expect("/readyz turned 503 after SIGTERM");
    assert_eq!(body["status"], "shutting down", "{body}");
    let healthz = anonymous_client()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(healthz.status(), 200, "still serving while not ready");
    for chunk in [b"cd", b"ef", b"gh"] {
        tokio::time::sleep(Duration::from_millis(200)).await;
        tcp.write_all(chunk).await.unwrap();
    }
    let mut response = vec![0u8; 4096];
    let n = tcp.read(&mut response).await.unwrap();
    assert!(
        response[..n].starts_with(b"HTTP/1.1 202"),
        "the upload in flight finished: {}",
        String::from_utf8_lossy(&response[..n])
    );
    assert!(server.wait_exit(15).success());
}

/// Runs `berth <args>` in `dir` with `env`; its exit status, stdout and stderr.
fn berth_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .current_dir(dir)
        .env("BERTH_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("run berth");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn config_check_prints_a_valid_configuration() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("berth.toml"),
        "listen = \"0.0.0.0:5005\"\ntrusted_proxies = [\"10.0.0.0/8\"]\nmetrics_token = \"s3cret-scrape\"\n\
         s3_secret_access_key = \"s3cret-key\"\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = berth_in(dir.path(), &["config", "check"], &[]);
    assert!(ok, "{stderr}");
    assert!(!stdout.contains("s3cret-scrape"), "{stdout}");
    assert!(!stdout.contains("s3cret-key"), "{stdout}");
    let printed: toml::Table = stdout.parse().expect("TOML on stdout");
    for secret in ["metrics_token", "s3_secret_access_key"] {
        assert_eq!(printed[secret].as_str(), Some("<redacted>"), "{stdout}");
    }
    assert_eq!(printed["listen"].as_str(), Some("0.0.0.0:5005"), "{stdout}");
    assert_eq!(
        printed["log"].as_str(),
        Some("warn"),
        "the environment counts"
    );
}

#[test]
fn config_check_names_each_invalid_setting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("other.toml");
    std::fs::write(&file, "listen = \"nowhere\"\nlisten_port = 5\n").unwrap();
    let (ok, _, stderr) = berth_in(
        dir.path(),
        &["config", "check", "--config", file.to_str().unwrap()],
        &[],
    );
    assert!(!ok, "invalid settings fail the check");
    for named in ["`listen`", "`listen_port`", "other.toml"] {
        assert!(stderr.contains(named), "names {named}: {stderr}");
    }
    std::fs::write(
        &file,
        "trusted_proxies = [\"10.0.0.0/8\", \"proxy.local\"]\ndatabase_url = \"mysql://db\"\n",
    )
    .unwrap();
    let (ok, _, stderr) = berth_in(
        dir.path(),
        &["config", "check", "--config", file.to_str().unwrap()],
        &[],
    );
    assert!(!ok, "invalid settings fail the check");
    for named in ["trusted_proxies", "proxy.local", "database_url", "mysql"] {
        assert!(stderr.contains(named), "names {named}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unrelated_berth_variable_is_a_warning_not_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = berth_in(
        dir.path(),
        &["config", "check"],
        &[("BERTH_UNRELATED", "1")],
    );
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("warning") && stderr.contains("BERTH_UNRELATED"),
        "{stderr}"
    );
    let server = Server::start_with(&[("BERTH_UNRELATED", "1")]);
    let (status, body) = readyz(&server).await;
    assert_eq!(status, 200, "{body}");
}

/// Runs `berth <command> --data-dir <data> <args>`; its exit status and stderr.
fn berth_tool(command: &str, data: &std::path::Path, args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg(command)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("BERTH_LOG", "warn")
        .output()
        .expect("run berth");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A `berth serve` on `data` (already holding state), killed on drop; its base URL.
struct Restored(std::process::Child, String);

impl Restored {
    fn start(data: &std::path::Path) -> Restored {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env("BERTH_LOG", "warn")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start berth");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = std::io::BufReader::new(stderr).lines();
        let base = loop {
            let line = lines.next().expect("berth exited").expect("stderr");
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.trim().to_owned();
            }
        };
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        Restored(child, base)
    }
}

impl Drop for Restored {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every tag of `repo` on `base`, each pulled whole (manifest and blobs, digests checked);
/// how many.
async fn pull_every_tag(base: &str, repo: &str) -> usize {
    let http = crate::common::client();
    let tags: serde_json::Value = http
        .get(format!("{base}/v2/{repo}/tags/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tags = tags["tags"].as_array().expect("tags").clone();
    for tag in &tags {
        let tag = tag.as_str().unwrap();
        let response = http
            .get(format!("{base}/v2/{repo}/manifests/{tag}"))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{repo}:{tag}");
        let declared = crate::common::header(&response, "docker-content-digest");
        let bytes = response.bytes().await.unwrap();
        assert_eq!(crate::common::digest(&bytes), declared, "{repo}:{tag}");
        let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let layers = manifest["layers"].as_array().unwrap();
        for descriptor in layers.iter().chain([&manifest["config"]]) {
            let digest = descriptor["digest"].as_str().unwrap();
            let blob = http
                .get(format!("{base}/v2/{repo}/blobs/{digest}"))
                .send()
                .await
                .unwrap();
            assert_eq!(blob.status(), 200, "{repo}:{tag} blob {digest}");
            let blob = blob.bytes().await.unwrap();
            assert_eq!(crate::common::digest(&blob), digest, "{repo}:{tag}");
        }
    }
    tags.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_during_pushes_restores_whole() {
    fs_only!("berth backup copies the filesystem blob store; it says plainly it does not read S3");
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let server = Server::start();
    let pushed = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let backups = tempfile::tempdir().unwrap();
    let dest = backups.path().join("backup");
    let pushing = async {
        let mut i = 0usize;
        while !done.load(Ordering::SeqCst) {
            let layer = format!("layer {i} ").repeat(1000 + i);
            crate::common::push_image(&server, "acme/busy", &format!("v{i}"), layer.as_bytes())
                .await;
            i += 1;
            pushed.store(i, Ordering::SeqCst);
        }
    };
    let backing_up = async {
        while pushed.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let data = server.data_dir().to_owned();
        let dest = dest.clone();
        let result = tokio::task::spawn_blocking(move || {
            berth_tool("backup", &data, &[dest.to_str().unwrap()])
        })
        .await
        .unwrap();
        let at_backup = pushed.load(Ordering::SeqCst);
        // Keep pushing a little after the backup, then stop.
        while pushed.load(Ordering::SeqCst) < at_backup + 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        done.store(true, Ordering::SeqCst);
        result
    };
    let ((), (ok, stderr)) = tokio::join!(pushing, backing_up);
    assert!(ok, "backup failed: {stderr}");

    let (ok, stderr) = berth_tool("restore", server.data_dir(), &[dest.to_str().unwrap()]);
    assert!(!ok, "restoring over live data is refused");
    assert!(
        stderr.contains(&server.data_dir().display().to_string()) && stderr.contains("not empty"),
        "names the directory: {stderr}"
    );
    let restored = backups.path().join("restored");
    let (ok, stderr) = berth_tool("restore", &restored, &[dest.to_str().unwrap()]);
    assert!(ok, "restore failed: {stderr}");
    let (ok, stderr) = berth_tool("fsck", &restored, &[]);
    assert!(ok, "the restored data checks clean: {stderr}");

    let copy = Restored::start(&restored);
    let tags = pull_every_tag(&copy.1, "acme/busy").await;
    assert!(
        tags >= 3,
        "the backup holds the pushes made before it: {tags}"
    );
    assert!(
        tags < pushed.load(Ordering::SeqCst),
        "and not those made after it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fsck_names_a_corrupted_blob() {
    let server = Server::start();
    crate::common::push_image(&server, "acme/checked", "v1", b"first layer").await;
    let layer = b"the layer that rots".to_vec();
    crate::common::push_image(&server, "acme/checked", "v2", &layer).await;
    let (ok, stderr) = server.tool("fsck", &[]);
    assert!(ok, "a sound store checks clean: {stderr}");
    let rotten: berth_core::Digest = crate::common::digest(&layer).parse().unwrap();
    server.blobs().corrupt_blob(&rotten).await;
    let (ok, stderr) = server.tool("fsck", &[]);
    assert!(!ok, "a corrupt blob fails the check");
    assert!(
        stderr.contains(rotten.as_str()) && stderr.contains("corrupt"),
        "names the blob: {stderr}"
    );
    let problems = stderr.lines().filter(|l| l.contains("sha256:")).count();
    assert_eq!(problems, 1, "only that blob: {stderr}");
}

/// The multi-node setup: metadata on PostgreSQL, blobs in S3 (each blob read back through
/// the blob port and hashed).
#[tokio::test(flavor = "multi_thread")]
async fn fsck_checks_a_setup_on_postgres_and_s3_too() {
    let server = Server::start_node(
        Stores::shared(crate::common::postgres_database()),
        vec![],
        None,
    );
    let small = b"the layer that rots on postgres".to_vec();
    let large: Vec<u8> = (0..9_000_000u32).map(|i| (i % 253) as u8).collect();
    crate::common::push_image(&server, "acme/checked", "v1", &small).await;
    crate::common::push_image(&server, "acme/checked", "v2", &large).await;
    let (ok, stderr) = server.tool("fsck", &[]);
    assert!(ok, "a sound store checks clean: {stderr}");
    // A small blob is its own object, a large one the object its upload wrote.
    for layer in [&small, &large] {
        let rotten: berth_core::Digest = crate::common::digest(layer).parse().unwrap();
        server.blobs().corrupt_blob(&rotten).await;
        let (ok, stderr) = server.tool("fsck", &[]);
        assert!(!ok, "a corrupt blob fails the check");
        assert!(
            stderr.contains(rotten.as_str()) && stderr.contains("corrupt"),
            "names the blob: {stderr}"
        );
    }
}
