//! `bare-registry`, the bench's least HTTP registry, over real HTTP: what it stores is what was
//! pushed, monolithic and chunked, and a body that does not hash to its digest is refused and
//! never readable.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use sha2::{Digest as _, Sha256};

/// A `bare-registry serve` on a free port, stopped when dropped.
struct Bare {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Bare {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start() -> Bare {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: \
             127.0.0.1:{port}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_bare-registry"))
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::get(format!("{base}/v2/")).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "no answer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Bare {
        child,
        base,
        _dir: dir,
    }
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// `POST` an upload; its location.
async fn start_upload(client: &Client, bare: &Bare) -> String {
    let response = client
        .post(format!("{}/v2/a/b/blobs/uploads/", bare.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    format!("{}{location}", bare.base)
}

async fn pull(client: &Client, bare: &Bare, digest: &str) -> (StatusCode, Vec<u8>) {
    let response = client
        .get(format!("{}/v2/a/b/blobs/{digest}", bare.base))
        .send()
        .await
        .unwrap();
    (response.status(), response.bytes().await.unwrap().to_vec())
}

/// Finishes the upload at `location` with `body` as `blob`'s digest, expecting 201 and that
/// digest, and checks a pull answers `blob` byte for byte.
async fn finish_and_pull_back(
    client: &Client,
    bare: &Bare,
    location: &str,
    body: Vec<u8>,
    blob: &[u8],
) {
    let response = client
        .put(format!("{location}?digest={}", digest(blob)))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.headers()["docker-content-digest"],
        digest(blob).as_str()
    );
    let (status, pulled) = pull(client, bare, &digest(blob)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        pulled == blob,
        "the pulled blob differs from the pushed one"
    );
}

#[tokio::test]
async fn a_monolithic_push_is_pulled_back_whole() {
    let bare = start().await;
    let client = Client::new();
    // Several MiB, so the body arrives in several frames and is written back as it streams.
    let blob: Vec<u8> = (0..5 << 20).map(|i: u32| (i % 251) as u8).collect();
    let location = start_upload(&client, &bare).await;
    finish_and_pull_back(&client, &bare, &location, blob.clone(), &blob).await;
}

#[tokio::test]
async fn a_chunked_push_is_pulled_back_whole() {
    let bare = start().await;
    let client = Client::new();
    let blob: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 241) as u8).collect();
    let mut location = start_upload(&client, &bare).await;
    for (index, chunk) in blob.chunks(1 << 20).enumerate() {
        let start = index << 20;
        let response = client
            .patch(&location)
            .header(
                "content-range",
                format!("{start}-{}", start + chunk.len() - 1),
            )
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(
            response.headers()["range"],
            format!("0-{}", start + chunk.len() - 1).as_str()
        );
        let next = response.headers()["location"].to_str().unwrap();
        location = format!("{}{next}", bare.base);
    }
    finish_and_pull_back(&client, &bare, &location, Vec::new(), &blob).await;
}

#[tokio::test]
async fn a_body_that_does_not_hash_to_its_digest_is_refused_and_not_stored() {
    let bare = start().await;
    let client = Client::new();
    let claimed = digest(b"what the client meant to send");
    let location = start_upload(&client, &bare).await;
    let response = client
        .put(format!("{location}?digest={claimed}"))
        .body(&b"something else"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response.text().await.unwrap().contains("hashes to"),
        "the refusal says why"
    );
    let (status, _) = pull(&client, &bare, &claimed).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
