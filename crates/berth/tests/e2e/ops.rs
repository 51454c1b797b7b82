//! Operating Berth: the health endpoints a load balancer polls, `berth backup`, `restore`
//! and `fsck`, and `berth config check`.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::common::{Server, anonymous_client, start_upload, with_auth};

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
    let path = upload.strip_prefix(&server.base).unwrap().to_owned();
    // An upload whose body trickles in: in flight across the signal.
    let mut tcp = TcpStream::connect(&server.host).await.unwrap();
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: 8\r\n\r\n",
        server.host
    );
    tcp.write_all(with_auth(&head).as_bytes()).await.unwrap();
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
        "listen = \"0.0.0.0:5005\"\ntrusted_proxies = [\"10.0.0.0/8\"]\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = berth_in(dir.path(), &["config", "check"], &[]);
    assert!(ok, "{stderr}");
    let printed: toml::Table = stdout.parse().expect("TOML on stdout");
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
