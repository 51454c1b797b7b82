//! Bad input, request by request: each answers the spec's code and status with the JSON error
//! body, and leaves nothing behind — asserted by reading the state back over HTTP and on disk.

use std::time::Duration;

use crate::common::{
    Server, client, digest, expect_error, header, location_url, push_blob, push_image, start_upload,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 17 + seed as usize * 13) % 251) as u8)
        .collect()
}

async fn get(server: &Server, path: &str) -> reqwest::Response {
    let response = client().get(server.url(path)).send().await.expect("GET");
    match path.strip_prefix("/api/v3") {
        Some(below) => crate::common::schema::judged("GET", below, response).await,
        None => response,
    }
}

/// Asserts blob `d` does not exist in `repo` (HEAD 404) nor anywhere in the blob store.
async fn assert_no_blob(server: &Server, repo: &str, d: &str) {
    let response = client()
        .head(server.url(&format!("/v2/{repo}/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "blob {d} must not exist in {repo}");
    let copies = server.blobs().blob_copies(&d.parse().unwrap()).await;
    assert_eq!(copies, 0, "no stored copy of {d}");
}

/// Asserts the blob store holds no upload's bytes (waiting briefly for a request the server may
/// still be tidying up after the client went away).
async fn assert_no_upload_files(server: &Server) {
    let blobs = server.blobs();
    for _ in 0..100 {
        if blobs.uploads_held().await.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("leftover uploads: {:?}", blobs.uploads_held().await);
}

async fn tags(server: &Server, repo: &str) -> Vec<String> {
    let response = get(server, &format!("/v2/{repo}/tags/list")).await;
    assert_eq!(response.status(), 200, "tags/list of {repo}");
    let body: Value = response.json().await.unwrap();
    body["tags"]
        .as_array()
        .map(|t| t.iter().map(|t| t.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// Asserts `reference` is not a manifest of `repo` (which exists).
async fn assert_no_manifest(server: &Server, repo: &str, reference: &str) {
    let response = get(server, &format!("/v2/{repo}/manifests/{reference}")).await;
    expect_error(response, 404, "MANIFEST_UNKNOWN").await;
}

async fn put_manifest_raw(
    server: &Server,
    repo: &str,
    reference: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    client()
        .put(server.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// A manifest over `config` (pushed) and `layers` (given as digests and sizes).
fn manifest_over(config: &[u8], layers: &[(String, usize)]) -> Vec<u8> {
    let layers: Vec<Value> = layers
        .iter()
        .map(|(d, size)| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": size}))
        .collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": config.len()},
        "layers": layers,
    }))
    .unwrap()
}

#[tokio::test]
async fn monolithic_push_with_the_wrong_digest() {
    let server = Server::start();
    let blob = bytes(5_000, 1);
    let claimed = digest(b"something else");
    let response = client()
        .post(server.url(&format!("/v2/acme/app/blobs/uploads/?digest={claimed}")))
        .body(blob.clone())
        .send()
        .await
        .unwrap();
    let message = expect_error(response, 400, "DIGEST_INVALID").await;
    assert!(
        message.contains(&digest(&blob)),
        "message names the actual digest: {message}"
    );
    assert_no_blob(&server, "acme/app", &claimed).await;
    assert_no_blob(&server, "acme/app", &digest(&blob)).await;
    assert_no_upload_files(&server).await;
}

#[tokio::test]
async fn final_put_with_the_wrong_digest_discards_the_session() {
    let server = Server::start();
    let location = start_upload(&server, "acme/app").await;
    let blob = bytes(3_000, 2);
    let response = client()
        .patch(&location)
        .body(blob[..2000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = location_url(&server, &header(&response, "location"), None);
    let claimed = digest(b"not these bytes");
    let response = client()
        .put(location_url(
            &server,
            &location,
            Some(&format!("digest={claimed}")),
        ))
        .body(blob[2000..].to_vec())
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "DIGEST_INVALID").await;
    assert_no_blob(&server, "acme/app", &claimed).await;
    assert_no_blob(&server, "acme/app", &digest(&blob)).await;
    let response = client().get(&location).send().await.unwrap();
    expect_error(response, 404, "BLOB_UPLOAD_UNKNOWN").await;
    assert_no_upload_files(&server).await;
}

#[tokio::test]
async fn malformed_digests() {
    let server = Server::start();
    let blob = bytes(100, 3);
    let sha = digest(&blob);
    let hex = sha.trim_start_matches("sha256:");
    for bad in [
        "nonsense".to_owned(),
        format!("sha256:{}", &hex[..63]),
        format!("sha256:{}", hex.to_uppercase()),
        format!("md5:{}", &hex[..32]),
        format!(":{hex}"),
        "sha256:".to_owned(),
    ] {
        let response = client()
            .post(server.url(&format!("/v2/acme/app/blobs/uploads/?digest={bad}")))
            .body(blob.clone())
            .send()
            .await
            .unwrap();
        expect_error(response, 400, "DIGEST_INVALID").await;
        let response = get(&server, &format!("/v2/acme/app/blobs/{bad}")).await;
        expect_error(response, 400, "DIGEST_INVALID").await;
    }
    // Reading a manifest under a malformed digest finds none (no manifest can be stored
    // under one); pushing under one is refused as DIGEST_INVALID (see below).
    let response = get(&server, "/v2/acme/app/manifests/sha256:zz").await;
    expect_error(response, 404, "MANIFEST_UNKNOWN").await;
    let response = client()
        .post(server.url("/v2/acme/app/blobs/uploads/?mount=sha256:nope&from=acme/other"))
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "DIGEST_INVALID").await;
    assert_no_blob(&server, "acme/app", &sha).await;
    assert_no_upload_files(&server).await;
}

#[tokio::test]
async fn final_put_without_a_digest() {
    let server = Server::start();
    let location = start_upload(&server, "acme/app").await;
    let blob = bytes(1_000, 4);
    let response = client()
        .put(&location)
        .body(blob.clone())
        .send()
        .await
        .unwrap();
    let message = expect_error(response, 400, "DIGEST_INVALID").await;
    assert!(message.contains("digest"), "{message}");
    assert_no_blob(&server, "acme/app", &digest(&blob)).await;
    // A malformed one on the final PUT too.
    let response = client()
        .put(location_url(&server, &location, Some("digest=sha256:abc")))
        .body(blob.clone())
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "DIGEST_INVALID").await;
    assert_no_blob(&server, "acme/app", &digest(&blob)).await;
}

#[tokio::test]
async fn truncated_monolithic_body_stores_nothing() {
    let server = Server::start();
    let blob = bytes(1_000, 5);
    let d = digest(&blob);
    let mut tcp = tokio::net::TcpStream::connect(&server.host).await.unwrap();
    let head = format!(
        "POST /v2/acme/app/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: {}\r\nContent-Length: 1000\r\nContent-Type: application/octet-stream\r\n\r\n",
        server.host
    );
    tcp.write_all(crate::common::with_auth(&head).as_bytes())
        .await
        .unwrap();
    tcp.write_all(&blob[..500]).await.unwrap();
    tcp.flush().await.unwrap();
    tcp.shutdown().await.unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut response)).await;
    assert!(
        read.is_ok(),
        "the server answers or closes a truncated request"
    );
    let response = String::from_utf8_lossy(&response);
    assert!(
        !response.starts_with("HTTP/1.1 201"),
        "a truncated body is not a blob: {response}"
    );
    assert!(
        response.is_empty() || response.starts_with("HTTP/1.1 400"),
        "{response}"
    );
    assert_no_upload_files(&server).await;
    // The repository may not even exist: HEAD answers 404 either way.
    assert_no_blob(&server, "acme/app", &d).await;
}

#[tokio::test]
async fn out_of_order_chunk_is_416_and_the_upload_continues() {
    let server = Server::start();
    let location = start_upload(&server, "acme/app").await;
    let blob = bytes(300, 6);
    let d = digest(&blob);
    let response = client()
        .patch(&location)
        .header("content-range", "0-99")
        .body(blob[..100].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = location_url(&server, &header(&response, "location"), None);

    // Skips bytes 100..200.
    let response = client()
        .patch(&location)
        .header("content-range", "200-299")
        .body(blob[200..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 416);
    assert_eq!(header(&response, "range"), "0-99");
    let resume = location_url(&server, &header(&response, "location"), None);
    assert!(
        resume.starts_with(&location) || location.starts_with(&resume),
        "{resume} vs {location}"
    );
    expect_error(response, 416, "BLOB_UPLOAD_INVALID").await;

    // A chunk overlapping what is already there is out of order too.
    let response = client()
        .patch(&location)
        .header("content-range", "50-149")
        .body(blob[50..150].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 416);
    assert_eq!(header(&response, "range"), "0-99");

    let response = client().get(&location).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(
        header(&response, "range"),
        "0-99",
        "the rejected chunks changed nothing"
    );

    for (start, end) in [(100usize, 199usize), (200, 299)] {
        let response = client()
            .patch(&resume)
            .header("content-range", format!("{start}-{end}"))
            .body(blob[start..=end].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "chunk {start}-{end}");
        assert_eq!(header(&response, "range"), format!("0-{end}"));
    }
    let response = client()
        .put(location_url(&server, &resume, Some(&format!("digest={d}"))))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let response = get(&server, &format!("/v2/acme/app/blobs/{d}")).await;
    assert_eq!(response.bytes().await.unwrap().as_ref(), blob.as_slice());
}

#[tokio::test]
async fn content_range_not_matching_the_body() {
    let server = Server::start();
    let location = start_upload(&server, "acme/app").await;
    let blob = bytes(200, 7);
    let d = digest(&blob);
    let response = client()
        .patch(&location)
        .header("content-range", "0-49")
        .body(blob[..50].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);

    // Announces 100 bytes, carries 60.
    let response = client()
        .patch(&location)
        .header("content-range", "50-149")
        .body(blob[50..110].to_vec())
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "BLOB_UPLOAD_INVALID").await;
    // Announces 10 bytes, carries 60.
    let response = client()
        .patch(&location)
        .header("content-range", "50-59")
        .body(blob[50..110].to_vec())
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "BLOB_UPLOAD_INVALID").await;
    // Not a range at all.
    for bad in ["50-", "abc", "60-50"] {
        let response = client()
            .patch(&location)
            .header("content-range", bad)
            .body(blob[50..110].to_vec())
            .send()
            .await
            .unwrap();
        expect_error(response, 400, "BLOB_UPLOAD_INVALID").await;
    }

    let response = client().get(&location).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(
        header(&response, "range"),
        "0-49",
        "failed chunks left the offset alone"
    );
    // The upload goes on from the recorded offset, and the bytes of the failed chunks are not in it.
    let response = client()
        .put(location_url(
            &server,
            &location,
            Some(&format!("digest={d}")),
        ))
        .body(blob[50..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let response = get(&server, &format!("/v2/acme/app/blobs/{d}")).await;
    assert_eq!(response.bytes().await.unwrap().as_ref(), blob.as_slice());
}

/// Sends `head` and then `body` on a raw connection while reading the answer at the same time,
/// so an answer sent before the body was read whole is seen (HTTP clients such as reqwest report
/// the broken pipe instead). The status and the JSON error body.
async fn raw_exchange(server: &Server, head: String, body: Vec<u8>) -> (u16, Value) {
    let tcp = tokio::net::TcpStream::connect(&server.host).await.unwrap();
    let (mut read, mut write) = tcp.into_split();
    // The write half is handed back, not dropped: a half-closed connection tells hyper the
    // client went away, and it drops the answer it was about to send.
    let writer = tokio::spawn(async move {
        write
            .write_all(crate::common::with_auth(&head).as_bytes())
            .await?;
        write.write_all(&body).await?;
        write.flush().await?;
        Ok::<_, std::io::Error>(write)
    });
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut response)).await;
    assert!(read.is_ok(), "no answer within 10 s");
    let _ = writer.await; // The server may close before taking the whole body.
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{head}"));
    let body = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {text}"));
    (status, body)
}

/// Asserts a raw answer is the spec's error `code` with `status`.
fn expect_raw_error(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "status for expected {code}: {}", answer.1);
    let error = &answer.1["errors"][0];
    assert_eq!(error["code"], code, "body: {}", answer.1);
    assert!(
        error["message"].as_str().is_some_and(|m| m.len() > 10),
        "body: {}",
        answer.1
    );
}

/// A valid manifest over the pushed blob `{}` in `acme/app`, padded past 4 MiB.
async fn oversized_manifest(server: &Server) -> Vec<u8> {
    let config = b"{}".to_vec();
    push_blob(server, "acme/app", config.clone()).await;
    let mut manifest: Value = serde_json::from_slice(&manifest_over(&config, &[])).unwrap();
    manifest["annotations"] = json!({"padding": "x".repeat(4 * 1024 * 1024)});
    let body = serde_json::to_vec(&manifest).unwrap();
    assert!(body.len() > 4 * 1024 * 1024);
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_manifest_is_413_to_an_ordinary_http_client() {
    // The server drains the oversized body before answering, so a client still sending sees
    // the 413 and its message rather than a broken pipe.
    let server = Server::start();
    let body = oversized_manifest(&server).await;
    for _ in 0..5 {
        let response =
            put_manifest_raw(&server, "acme/app", "big", OCI_MANIFEST, body.clone()).await;
        let message = expect_error(response, 413, "SIZE_INVALID").await;
        assert!(message.contains("4194304"), "{message}");
    }
    assert_no_manifest(&server, "acme/app", "big").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_chunks_reach_an_ordinary_http_client_as_their_answer() {
    // Refusals that come before the body is read (a chunk out of order, a malformed range, a
    // final PUT without its digest) go out while the rest of the body is drained, so a client
    // still sending sees the answer and its message rather than a broken pipe.
    let server = Server::start();
    let location = start_upload(&server, "acme/app").await;
    let chunk = bytes(8 << 20, 9);
    for _ in 0..3 {
        let response = client()
            .patch(&location)
            .header("content-range", format!("100-{}", 100 + chunk.len() - 1))
            .body(chunk.clone())
            .send()
            .await
            .expect("the 416 is read, not a broken pipe");
        let message = expect_error(response, 416, "BLOB_UPLOAD_INVALID").await;
        assert!(message.contains("100"), "{message}");
        let response = client()
            .patch(&location)
            .header("content-range", "not a range")
            .body(chunk.clone())
            .send()
            .await
            .expect("the 400 is read, not a broken pipe");
        expect_error(response, 400, "BLOB_UPLOAD_INVALID").await;
        let response = client()
            .put(&location)
            .body(chunk.clone())
            .send()
            .await
            .expect("the 400 is read, not a broken pipe");
        expect_error(response, 400, "DIGEST_INVALID").await;
    }
    let response = client().get(&location).send().await.unwrap();
    assert_eq!(
        header(&response, "range"),
        "0-0",
        "nothing of the refused chunks was kept"
    );
}

#[tokio::test]
async fn oversized_manifest_is_413() {
    let server = Server::start();
    let body = oversized_manifest(&server).await;
    let head = format!(
        "PUT /v2/acme/app/manifests/big HTTP/1.1\r\nHost: {}\r\nContent-Type: {OCI_MANIFEST}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.host,
        body.len()
    );
    let answer = raw_exchange(&server, head, body.clone()).await;
    expect_raw_error(&answer, 413, "SIZE_INVALID");
    assert_eq!(tags(&server, "acme/app").await, Vec::<String>::new());
    assert_no_manifest(&server, "acme/app", "big").await;
    assert_no_manifest(&server, "acme/app", &digest(&body)).await;
}

#[tokio::test]
async fn manifest_naming_a_missing_blob() {
    let server = Server::start();
    let config = br#"{"os":"linux"}"#.to_vec();
    let layer = bytes(100, 8);
    push_blob(&server, "acme/app", config.clone()).await;
    let body = manifest_over(&config, &[(digest(&layer), layer.len())]);
    let response = put_manifest_raw(&server, "acme/app", "v1", OCI_MANIFEST, body.clone()).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(
        error["errors"][0]["detail"]["digest"],
        digest(&layer),
        "{error}"
    );
    assert!(!tags(&server, "acme/app").await.contains(&"v1".to_owned()));
    assert_no_manifest(&server, "acme/app", "v1").await;
    assert_no_manifest(&server, "acme/app", &digest(&body)).await;

    // A missing config is as bad; and a blob of another repository does not count.
    push_blob(&server, "acme/other", layer.clone()).await;
    let response = put_manifest_raw(&server, "acme/app", "v1", OCI_MANIFEST, body).await;
    expect_error(response, 400, "MANIFEST_BLOB_UNKNOWN").await;
    let missing_config = manifest_over(br#"{"os":"plan9"}"#, &[]);
    let response = put_manifest_raw(&server, "acme/app", "v2", OCI_MANIFEST, missing_config).await;
    expect_error(response, 400, "MANIFEST_BLOB_UNKNOWN").await;
    assert_eq!(tags(&server, "acme/app").await, Vec::<String>::new());
}

#[tokio::test]
async fn index_naming_a_missing_child() {
    let server = Server::start();
    let (present, present_bytes) = push_image(&server, "acme/app", "amd64", &bytes(100, 9)).await;
    let missing = digest(b"a manifest never pushed");
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": present, "size": present_bytes.len(), "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": missing, "size": 123, "platform": {"architecture": "arm64", "os": "linux"}},
        ],
    }))
    .unwrap();
    let response = put_manifest_raw(&server, "acme/app", "multi", OCI_INDEX, index.clone()).await;
    expect_error(response, 400, "MANIFEST_BLOB_UNKNOWN").await;
    assert_eq!(tags(&server, "acme/app").await, ["amd64"]);
    assert_no_manifest(&server, "acme/app", "multi").await;
    assert_no_manifest(&server, "acme/app", &digest(&index)).await;
}

#[tokio::test]
async fn invalid_manifest_documents() {
    let server = Server::start();
    let config = br#"{"os":"linux"}"#.to_vec();
    push_blob(&server, "acme/app", config.clone()).await;
    let valid = manifest_over(&config, &[]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not json", b"{\"schemaVersion\": 2,".to_vec(), OCI_MANIFEST),
        ("empty", Vec::new(), OCI_MANIFEST),
        ("json array", b"[]".to_vec(), OCI_MANIFEST),
        (
            "no schemaVersion",
            br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#.to_vec(),
            OCI_MANIFEST,
        ),
        ("media type mismatch", valid.clone(), OCI_INDEX),
        (
            "docker type for an oci body",
            valid.clone(),
            "application/vnd.docker.distribution.manifest.v2+json",
        ),
        (
            "unsupported type",
            br#"{"schemaVersion":2,"mediaType":"text/plain"}"#.to_vec(),
            "text/plain",
        ),
    ];
    for (what, body, content_type) in cases {
        let response =
            put_manifest_raw(&server, "acme/app", "bad", content_type, body.clone()).await;
        let message = expect_error(response, 400, "MANIFEST_INVALID").await;
        if what == "media type mismatch" {
            assert!(
                message.contains(OCI_INDEX) && message.contains(OCI_MANIFEST),
                "{message}"
            );
        }
        assert_no_manifest(&server, "acme/app", &digest(&body)).await;
    }
    assert_eq!(tags(&server, "acme/app").await, Vec::<String>::new());
    assert_no_manifest(&server, "acme/app", "bad").await;
}

#[tokio::test]
async fn docker_schema1_is_refused() {
    let server = Server::start();
    push_blob(&server, "acme/app", b"{}".to_vec()).await;
    let schema1 = serde_json::to_vec(&json!({
        "schemaVersion": 1,
        "name": "acme/app",
        "tag": "old",
        "architecture": "amd64",
        "fsLayers": [{"blobSum": digest(b"layer")}],
        "history": [{"v1Compatibility": "{}"}],
    }))
    .unwrap();
    for content_type in [
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/json",
    ] {
        let response =
            put_manifest_raw(&server, "acme/app", "old", content_type, schema1.clone()).await;
        let message = expect_error(response, 400, "MANIFEST_INVALID").await;
        assert!(
            message.contains("schema 1"),
            "Content-Type {content_type}: {message}"
        );
    }
    // The signed type is refused whatever the body says.
    let response = put_manifest_raw(
        &server,
        "acme/app",
        "old",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        manifest_over(b"{}", &[]),
    )
    .await;
    let message = expect_error(response, 400, "MANIFEST_INVALID").await;
    assert!(message.contains("schema 1"), "{message}");
    assert_eq!(tags(&server, "acme/app").await, Vec::<String>::new());
    assert_no_manifest(&server, "acme/app", "old").await;
}

#[tokio::test]
async fn manifest_put_by_a_digest_of_other_bytes() {
    let server = Server::start();
    let config = br#"{"os":"linux"}"#.to_vec();
    push_blob(&server, "acme/app", config.clone()).await;
    let body = manifest_over(&config, &[]);
    let claimed = digest(b"other bytes");
    let response =
        put_manifest_raw(&server, "acme/app", &claimed, OCI_MANIFEST, body.clone()).await;
    expect_error(response, 400, "DIGEST_INVALID").await;
    assert_no_manifest(&server, "acme/app", &claimed).await;
    assert_no_manifest(&server, "acme/app", &digest(&body)).await;
    // A sha512 URL over bytes whose sha256 was given.
    let sha512_url = crate::common::digest512(b"other bytes");
    let response =
        put_manifest_raw(&server, "acme/app", &sha512_url, OCI_MANIFEST, body.clone()).await;
    expect_error(response, 400, "DIGEST_INVALID").await;
    assert_no_manifest(&server, "acme/app", &crate::common::digest512(&body)).await;
}

#[tokio::test]
async fn invalid_names_and_tags() {
    let server = Server::start();
    server.admin(&["create-org", "a", "--owner", crate::common::ADMIN]);
    for path in [
        "/v2/Bad/Name/tags/list",
        "/v2/acme//app/tags/list",
        "/v2/acme/-app/tags/list",
        "/v2/acme/app./tags/list",
    ] {
        let response = get(&server, path).await;
        expect_error(response, 400, "NAME_INVALID").await;
    }
    let long = format!("/v2/{}/tags/list", ["abcdefghij"; 26].join("/"));
    expect_error(get(&server, &long).await, 400, "NAME_INVALID").await;
    let response = client()
        .post(server.url("/v2/UPPER/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "NAME_INVALID").await;

    let config = br#"{"os":"linux"}"#.to_vec();
    push_blob(&server, "a", config.clone()).await;
    let body = manifest_over(&config, &[]);
    for tag in ["-x", ".x", &"t".repeat(129)] {
        let response = put_manifest_raw(&server, "a", tag, OCI_MANIFEST, body.clone()).await;
        expect_error(response, 400, "TAG_INVALID").await;
    }
    assert_eq!(tags(&server, "a").await, Vec::<String>::new());
    assert_no_manifest(&server, "a", &digest(&body)).await;
    assert_eq!(server.blobs().uploads_held().await, Vec::<String>::new());
}

#[tokio::test]
async fn unknown_upload_ids() {
    let server = Server::start();
    push_blob(&server, "acme/app", b"x".to_vec()).await;
    let d = digest(b"abc");
    let url = server.url("/v2/acme/app/blobs/uploads/0123456789abcdef0123456789abcdef");
    let with_digest = format!("{url}?digest={d}");
    let responses = [
        client()
            .patch(&url)
            .body(b"abc".to_vec())
            .send()
            .await
            .unwrap(),
        client()
            .patch(&url)
            .header("content-range", "0-2")
            .body(b"abc".to_vec())
            .send()
            .await
            .unwrap(),
        client()
            .put(&with_digest)
            .body(b"abc".to_vec())
            .send()
            .await
            .unwrap(),
        client().get(&url).send().await.unwrap(),
        client().delete(&url).send().await.unwrap(),
    ];
    for response in responses {
        expect_error(response, 404, "BLOB_UPLOAD_UNKNOWN").await;
    }
    // Ids that could never be upload ids (path tricks) are unknown as well.
    let url = server.url("/v2/acme/app/blobs/uploads/..%2F..%2Fmetadata.sqlite");
    expect_error(
        client().get(&url).send().await.unwrap(),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    expect_error(
        client().delete(&url).send().await.unwrap(),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    if server.database_url().is_none() {
        assert!(crate::common::meta::database(&server).exists());
    }
    assert_no_blob(&server, "acme/app", &d).await;
    assert_no_upload_files(&server).await;
}

#[tokio::test]
async fn upload_id_of_another_repository() {
    let server = Server::start();
    let location = start_upload(&server, "acme/mine").await;
    let response = client()
        .patch(&location)
        .body(b"hello".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let id = location.rsplit('/').next().unwrap().to_owned();
    let d = digest(b"hello");
    let url = server.url(&format!("/v2/acme/theirs/blobs/uploads/{id}"));
    let responses = [
        client().get(&url).send().await.unwrap(),
        client()
            .patch(&url)
            .body(b" world".to_vec())
            .send()
            .await
            .unwrap(),
        client()
            .put(format!("{url}?digest={d}"))
            .send()
            .await
            .unwrap(),
        client().delete(&url).send().await.unwrap(),
    ];
    for response in responses {
        expect_error(response, 404, "BLOB_UPLOAD_UNKNOWN").await;
    }
    assert_no_blob(&server, "acme/theirs", &d).await;
    // The owner's session is untouched.
    let response = client().get(&location).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(header(&response, "range"), "0-4");
    let response = client()
        .put(location_url(
            &server,
            &location,
            Some(&format!("digest={d}")),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        client()
            .head(server.url(&format!("/v2/acme/theirs/blobs/{d}")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn unknown_repositories_and_manifests() {
    let server = Server::start();
    expect_error(
        get(&server, "/v2/nobody/here/tags/list").await,
        404,
        "NAME_UNKNOWN",
    )
    .await;
    expect_error(
        get(&server, "/v2/nobody/here/manifests/latest").await,
        404,
        "NAME_UNKNOWN",
    )
    .await;
    push_image(&server, "acme/app", "v1", &bytes(50, 10)).await;
    assert_no_manifest(&server, "acme/app", "v2").await;
    assert_no_manifest(&server, "acme/app", &digest(b"no such manifest")).await;
    let response = client()
        .head(server.url("/v2/acme/app/manifests/v2"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = client()
        .delete(server.url("/v2/acme/app/manifests/v2"))
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "MANIFEST_UNKNOWN").await;
    let response = client()
        .delete(server.url(&format!("/v2/acme/app/blobs/{}", digest(b"no such blob"))))
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "BLOB_UNKNOWN").await;
}

#[tokio::test]
async fn non_numeric_page_size() {
    let server = Server::start();
    push_image(&server, "acme/app", "v1", &bytes(50, 11)).await;
    for path in [
        "/v2/acme/app/tags/list?n=ten",
        "/v2/acme/app/tags/list?n=-1",
        "/v2/_catalog?n=abc",
        "/v2/_catalog?n=1.5",
    ] {
        expect_error(get(&server, path).await, 400, "PAGINATION_NUMBER_INVALID").await;
    }
}

#[tokio::test]
async fn unsupported_methods() {
    let server = Server::start();
    let d = push_blob(&server, "acme/app", b"x".to_vec()).await;
    let requests = [
        client().post(server.url("/v2/acme/app/manifests/latest")),
        client().put(server.url("/v2/_catalog")),
        client().delete(server.url("/v2/acme/app/tags/list")),
        client().put(server.url(&format!("/v2/acme/app/blobs/{d}"))),
        client().patch(server.url("/v2/acme/app/blobs/uploads/")),
        client().post(server.url(&format!("/v2/acme/app/referrers/{d}"))),
        client().delete(server.url("/v2/")),
    ];
    for request in requests {
        let response = request.send().await.unwrap();
        expect_error(response, 405, "UNSUPPORTED").await;
    }
    // The blob is still there.
    let response = client()
        .head(server.url(&format!("/v2/acme/app/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Sends `head` and `body` over a raw connection, then closes the write half before the
/// announced length arrived; what the server answered (possibly nothing).
async fn send_truncated(server: &Server, head: &str, body: &[u8]) -> String {
    let mut tcp = tokio::net::TcpStream::connect(&server.host).await.unwrap();
    tcp.write_all(crate::common::with_auth(head).as_bytes())
        .await
        .unwrap();
    tcp.write_all(body).await.unwrap();
    tcp.flush().await.unwrap();
    tcp.shutdown().await.unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut response)).await;
    assert!(
        read.is_ok(),
        "the server answers or closes a truncated request"
    );
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn truncated_chunk_keeps_the_upload_where_it_was() {
    let server = Server::start();
    let location = start_upload(&server, "acme/app").await;
    let blob = bytes(2_000, 12);
    let d = digest(&blob);
    let response = client()
        .patch(&location)
        .header("content-range", "0-499")
        .body(blob[..500].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let path = location.trim_start_matches(&server.base).to_owned();

    // A streamed PATCH and a chunk with Content-Range, both cut short: 300 of 1000 bytes.
    for range in ["", "Content-Range: 500-1499\r\n"] {
        let head = format!(
            "PATCH {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\n{range}Content-Length: 1000\r\n\r\n",
            server.host
        );
        let response = send_truncated(&server, &head, &blob[500..800]).await;
        assert!(
            !response.starts_with("HTTP/1.1 202"),
            "a truncated chunk is not accepted: {response}"
        );
        let response = client().get(&location).send().await.unwrap();
        assert_eq!(response.status(), 204);
        assert_eq!(
            header(&response, "range"),
            "0-499",
            "the cut chunk did not move the offset"
        );
    }
    // The final PUT cut short too.
    let head = format!(
        "PUT {path}?digest={d} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1500\r\n\r\n",
        server.host
    );
    let response = send_truncated(&server, &head, &blob[500..900]).await;
    assert!(
        !response.starts_with("HTTP/1.1 201"),
        "a truncated final PUT is not a blob: {response}"
    );
    assert_no_blob(&server, "acme/app", &d).await;
    let response = client().get(&location).send().await.unwrap();
    assert_eq!(
        response.status(),
        204,
        "a broken final body leaves the session to retry"
    );
    assert_eq!(header(&response, "range"), "0-499");

    // The client resumes from the recorded offset; the stray bytes are not part of the blob.
    let response = client()
        .put(location_url(
            &server,
            &location,
            Some(&format!("digest={d}")),
        ))
        .body(blob[500..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let response = get(&server, &format!("/v2/acme/app/blobs/{d}")).await;
    assert_eq!(response.bytes().await.unwrap().as_ref(), blob.as_slice());
    assert_no_upload_files(&server).await;
}

#[tokio::test]
async fn oversized_manifest_without_content_length_is_413() {
    let server = Server::start();
    let body = oversized_manifest(&server).await;
    // Chunked transfer encoding: the size is learned while reading.
    let mut chunked = Vec::new();
    for chunk in body.chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = format!(
        "PUT /v2/acme/app/manifests/big HTTP/1.1\r\nHost: {}\r\nContent-Type: {OCI_MANIFEST}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        server.host
    );
    let answer = raw_exchange(&server, head, chunked).await;
    expect_raw_error(&answer, 413, "SIZE_INVALID");
    assert_eq!(tags(&server, "acme/app").await, Vec::<String>::new());
    assert_no_manifest(&server, "acme/app", &digest(&body)).await;
}

#[tokio::test]
async fn manifest_of_exactly_the_limit_is_accepted() {
    let server = Server::start();
    let config = b"{}".to_vec();
    push_blob(&server, "acme/app", config.clone()).await;
    let mut manifest: Value = serde_json::from_slice(&manifest_over(&config, &[])).unwrap();
    manifest["annotations"] = json!({"padding": ""});
    let overhead = serde_json::to_vec(&manifest).unwrap().len();
    manifest["annotations"] = json!({"padding": "x".repeat(4 * 1024 * 1024 - overhead)});
    let body = serde_json::to_vec(&manifest).unwrap();
    assert_eq!(body.len(), 4 * 1024 * 1024);
    let response = put_manifest_raw(&server, "acme/app", "big", OCI_MANIFEST, body.clone()).await;
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let response = get(&server, "/v2/acme/app/manifests/big").await;
    assert_eq!(response.bytes().await.unwrap().len(), body.len());
}

#[tokio::test]
async fn index_naming_a_child_of_another_repository() {
    let server = Server::start();
    let (child, child_bytes) = push_image(&server, "acme/other", "v1", &bytes(100, 13)).await;
    push_blob(&server, "acme/app", b"x".to_vec()).await;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": child_bytes.len()}],
    }))
    .unwrap();
    let response = put_manifest_raw(&server, "acme/app", "multi", OCI_INDEX, index.clone()).await;
    expect_error(response, 400, "MANIFEST_BLOB_UNKNOWN").await;
    assert_eq!(tags(&server, "acme/app").await, Vec::<String>::new());
    assert_no_manifest(&server, "acme/app", &digest(&index)).await;
}

#[tokio::test]
async fn cancelled_upload_takes_no_more_requests() {
    let server = Server::start();
    let location = start_upload(&server, "acme/app").await;
    let response = client()
        .patch(&location)
        .body(b"abc".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(
        client().delete(&location).send().await.unwrap().status(),
        204
    );
    let d = digest(b"abcdef");
    let responses = [
        client()
            .patch(&location)
            .body(b"def".to_vec())
            .send()
            .await
            .unwrap(),
        client()
            .put(location_url(
                &server,
                &location,
                Some(&format!("digest={d}")),
            ))
            .body(b"def".to_vec())
            .send()
            .await
            .unwrap(),
        client().delete(&location).send().await.unwrap(),
    ];
    for response in responses {
        expect_error(response, 404, "BLOB_UPLOAD_UNKNOWN").await;
    }
    assert_no_blob(&server, "acme/app", &d).await;
    assert_no_upload_files(&server).await;
}

#[tokio::test]
async fn reading_a_malformed_reference_is_manifest_unknown_and_pushing_one_is_invalid() {
    let server = Server::start();
    let (pushed, _) = push_image(&server, "acme/app", "v1", b"layer").await;
    let long = "t".repeat(129);
    for reference in ["-bad", ".x", "sha256:zz", "a:b:c", long.as_str()] {
        let path = format!("/v2/acme/app/manifests/{reference}");
        let message = expect_error(get(&server, &path).await, 404, "MANIFEST_UNKNOWN").await;
        assert!(message.contains(reference), "{message}");
        let response = client().head(server.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "HEAD {reference}");
    }
    // Nothing can be deleted under one either.
    let response = client()
        .delete(server.url("/v2/acme/app/manifests/-bad"))
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "MANIFEST_UNKNOWN").await;
    // Authorization still comes first: no credentials, no answer about the repository.
    let response = crate::common::anonymous_client()
        .get(server.url("/v2/acme/app/manifests/-bad"))
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "UNAUTHORIZED").await;

    // A push under one is still refused as the invalid reference it is, storing nothing.
    let config = br#"{"os":"linux"}"#.to_vec();
    push_blob(&server, "acme/app", config.clone()).await;
    let body = manifest_over(&config, &[]);
    let response = put_manifest_raw(&server, "acme/app", "-bad", OCI_MANIFEST, body.clone()).await;
    expect_error(response, 400, "TAG_INVALID").await;
    let response =
        put_manifest_raw(&server, "acme/app", "sha256:zz", OCI_MANIFEST, body.clone()).await;
    expect_error(response, 400, "DIGEST_INVALID").await;
    // And a push to a package that does not exist yet does not create it.
    let response =
        put_manifest_raw(&server, "acme/never", "-bad", OCI_MANIFEST, body.clone()).await;
    expect_error(response, 400, "TAG_INVALID").await;
    let package = get(&server, "/api/v3/orgs/acme/packages/container/never").await;
    assert_eq!(package.status(), 404, "no package was created");
    assert_no_manifest(&server, "acme/app", &digest(&body)).await;
    assert_eq!(tags(&server, "acme/app").await, ["v1"]);
    let response = get(&server, &format!("/v2/acme/app/manifests/{pushed}")).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn final_put_with_an_out_of_order_range_is_416_and_keeps_the_session() {
    let server = Server::start();
    let location = start_upload(&server, "acme/app").await;
    let blob = bytes(300, 9);
    let d = digest(&blob);
    let response = client()
        .patch(&location)
        .header("content-range", "0-99")
        .body(blob[..100].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = location_url(&server, &header(&response, "location"), None);

    // The closing PUT skips bytes 100..200.
    let response = client()
        .put(location_url(
            &server,
            &location,
            Some(&format!("digest={d}")),
        ))
        .header("content-range", "200-299")
        .body(blob[200..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 416);
    assert_eq!(header(&response, "range"), "0-99");
    let resume = location_url(&server, &header(&response, "location"), None);
    expect_error(response, 416, "BLOB_UPLOAD_INVALID").await;
    assert_no_blob(&server, "acme/app", &d).await;

    // A closing chunk announcing more bytes than it carries changes nothing either.
    let response = client()
        .put(location_url(&server, &resume, Some(&format!("digest={d}"))))
        .header("content-range", "100-399")
        .body(blob[100..].to_vec())
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "BLOB_UPLOAD_INVALID").await;

    let response = client().get(&resume).send().await.unwrap();
    assert_eq!(response.status(), 204, "the session is kept");
    assert_eq!(header(&response, "range"), "0-99");

    let response = client()
        .put(location_url(&server, &resume, Some(&format!("digest={d}"))))
        .header("content-range", "100-299")
        .body(blob[100..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let response = get(&server, &format!("/v2/acme/app/blobs/{d}")).await;
    assert_eq!(response.bytes().await.unwrap().as_ref(), blob.as_slice());
    assert_no_upload_files(&server).await;
}

#[tokio::test]
async fn descriptor_sizes_must_match_the_blobs_they_name() {
    let server = Server::start();
    let config = br#"{"os":"linux"}"#.to_vec();
    let layer = bytes(100, 8);
    push_blob(&server, "acme/app", config.clone()).await;
    push_blob(&server, "acme/app", layer.clone()).await;

    // A layer one byte short.
    let body = manifest_over(&config, &[(digest(&layer), layer.len() - 1)]);
    let response = put_manifest_raw(&server, "acme/app", "v1", OCI_MANIFEST, body.clone()).await;
    let message = expect_error(response, 400, "MANIFEST_INVALID").await;
    assert!(
        message.contains(&digest(&layer)) && message.contains("99") && message.contains("100"),
        "{message}"
    );
    assert_no_manifest(&server, "acme/app", &digest(&body)).await;

    // A config whose size is wrong.
    let mut wrong_config: Value =
        serde_json::from_slice(&manifest_over(&config, &[(digest(&layer), layer.len())])).unwrap();
    wrong_config["config"]["size"] = json!(config.len() + 1);
    let body = serde_json::to_vec(&wrong_config).unwrap();
    let response = put_manifest_raw(&server, "acme/app", "v1", OCI_MANIFEST, body.clone()).await;
    let message = expect_error(response, 400, "MANIFEST_INVALID").await;
    assert!(message.contains(&digest(&config)), "{message}");
    assert_no_manifest(&server, "acme/app", &digest(&body)).await;
    assert_eq!(tags(&server, "acme/app").await, Vec::<String>::new());

    // The right sizes are accepted.
    let body = manifest_over(&config, &[(digest(&layer), layer.len())]);
    let response = put_manifest_raw(&server, "acme/app", "v1", OCI_MANIFEST, body).await;
    assert_eq!(response.status(), 201);
}
