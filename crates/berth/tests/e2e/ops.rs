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
