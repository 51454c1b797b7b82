//! Process lifecycle: graceful shutdown lets requests in flight finish.

use std::time::Duration;

use crate::common::{Server, client, digest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_an_upload_in_flight_finish() {
    let mut server = Server::start();
    let blob = vec![7u8; 200_000];
    let d = digest(&blob);
    let mut tcp = tokio::net::TcpStream::connect(&server.host).await.unwrap();
    let head = format!(
        "POST /v2/acme/graceful/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.host,
        blob.len()
    );
    tcp.write_all(crate::common::with_auth(&head).as_bytes())
        .await
        .unwrap();
    tcp.write_all(&blob[..100_000]).await.unwrap();
    tcp.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    server.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        tokio::net::TcpStream::connect(&server.host).await.is_err(),
        "a stopping server accepts no new connections"
    );

    tcp.write_all(&blob[100_000..]).await.unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "upload in flight finished: {response}"
    );
    let status = tokio::task::spawn_blocking(move || {
        let status = server.wait_exit(10);
        (status, server)
    })
    .await
    .unwrap();
    assert!(
        status.0.success(),
        "clean exit after shutdown: {:?}",
        status.0
    );

    // The blob is durable: a new process over the same data serves it.
    let mut server = status.1;
    server.restart();
    let pulled = client()
        .get(server.url(&format!("/v2/acme/graceful/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), 200);
    assert_eq!(pulled.bytes().await.unwrap().len(), blob.len());
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused() {
    let server = Server::start();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(server.data_dir())
        .output()
        .expect("run berth");
    assert!(!output.status.success(), "second server must not start");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("another berth process is serving"),
        "{stderr}"
    );
}

#[test]
fn an_unusable_backend_or_an_unknown_scheme_is_a_startup_error_naming_the_setting() {
    let data = tempfile::tempdir().unwrap();
    for (setting, url, expected) in [
        ("BERTH_DATABASE_URL", "postgres://db/berth", "PostgreSQL"),
        ("BERTH_DATABASE_URL", "mysql://db/berth", "`mysql:`"),
        // An S3 store without its keys is refused before anything is contacted.
        ("BERTH_BLOB_STORE", "s3://bucket", "s3_access_key_id"),
        ("BERTH_BLOB_STORE", "gcs://bucket", "`gcs:`"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .env(setting, url)
            .output()
            .expect("run berth");
        assert!(!output.status.success(), "{setting}={url} must not start");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let name = setting.trim_start_matches("BERTH_").to_lowercase();
        assert!(
            stderr.contains(&name) && stderr.contains(expected),
            "{setting}={url}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn explicit_store_urls_serve_like_the_defaults() {
    let elsewhere = tempfile::tempdir().unwrap();
    let database = format!("sqlite:{}", elsewhere.path().join("meta.db").display());
    let blobs = format!("file:{}", elsewhere.path().join("blobs").display());
    let server = Server::start_with(&[
        ("BERTH_DATABASE_URL", database.as_str()),
        ("BERTH_BLOB_STORE", blobs.as_str()),
    ]);
    let http = client();
    let blob = b"stored where the settings say".to_vec();
    let digest = digest(&blob);
    let put = http
        .post(server.url(&format!("/v2/acme/placed/blobs/uploads/?digest={digest}")))
        .body(blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    assert!(elsewhere.path().join("meta.db").exists());
    assert!(
        !server.data_dir().join("metadata.sqlite").exists(),
        "the default database is not used"
    );
    let pulled = http
        .get(server.url(&format!("/v2/acme/placed/blobs/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.bytes().await.unwrap().as_ref(), blob.as_slice());
}

#[tokio::test(flavor = "multi_thread")]
async fn abandoned_uploads_are_purged_after_their_ttl() {
    let server = Server::start_with(&[
        ("BERTH_UPLOAD_TTL_SECS", "2"),
        ("BERTH_UPLOAD_PURGE_INTERVAL_SECS", "1"),
    ]);
    let http = client();
    let started = http
        .post(server.url("/v2/acme/abandoned/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let patched = http
        .patch(server.url(&location))
        .header("content-range", "0-9999")
        .body(vec![1u8; 10_000])
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 202);
    // What a monolithic push cut off by a crash leaves: bytes with no session.
    let blobs = server.blobs();
    let orphan = "orphan0123456789";
    blobs.write_upload_bytes(orphan, b"half a blob").await;

    tokio::time::sleep(Duration::from_millis(4500)).await;
    let status = http.get(server.url(&location)).send().await.unwrap();
    assert_eq!(
        status.status(),
        404,
        "an upload abandoned past its TTL is gone"
    );
    assert_eq!(
        blobs.upload_bytes(orphan).await,
        None,
        "orphaned upload bytes are removed"
    );
    let leftovers = blobs.uploads_held().await;
    assert!(
        leftovers.is_empty(),
        "no upload file remains: {leftovers:?}"
    );

    // A fresh upload is untouched.
    let fresh = http
        .post(server.url("/v2/acme/abandoned/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let fresh = fresh.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        http.get(server.url(&fresh)).send().await.unwrap().status(),
        204
    );
}

/// Bodies in flight share one memory budget (8 MiB across every upload): more than it at once
/// all land, whole, and the budget is given back (a push after them does not wait forever).
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_pushes_beyond_the_in_flight_budget_all_land_and_free_it() {
    let server = std::sync::Arc::new(Server::start());
    let blobs: Vec<Vec<u8>> = (0..6u8)
        .map(|n| {
            (0..4 << 20)
                .map(|i: u32| (i as u8) ^ n.wrapping_mul(31))
                .collect()
        })
        .collect();
    let mut pushes = tokio::task::JoinSet::new();
    for (index, blob) in blobs.iter().cloned().enumerate() {
        let server = server.clone();
        pushes.spawn(async move {
            (
                index,
                crate::common::push_blob(&server, "acme/budget", blob).await,
            )
        });
    }
    let mut digests = vec![String::new(); blobs.len()];
    while let Some(done) = pushes.join_next().await {
        let (index, pushed) = done.unwrap();
        digests[index] = pushed;
    }
    for (blob, pushed) in blobs.iter().zip(&digests) {
        assert_eq!(pushed, &digest(blob));
        let got = client()
            .get(server.url(&format!("/v2/acme/budget/blobs/{pushed}")))
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200);
        assert_eq!(digest(&got.bytes().await.unwrap()), *pushed);
    }
    let after = tokio::time::timeout(
        Duration::from_secs(30),
        crate::common::push_blob(&server, "acme/budget", vec![7u8; 9 << 20]),
    )
    .await
    .expect("a push after them gets room");
    assert_eq!(after, digest(&vec![7u8; 9 << 20]));
}
