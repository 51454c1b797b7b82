//! Garbage collection end to end: passes every second with a one-second grace while clients
//! push images sharing layers, abandon uploads and delete versions (and the server is killed
//! mid-run); afterwards every tagged image pulls whole and the store holds exactly the blobs
//! manifests use. Then the fence: an upload of a blob a pass has flagged is refused with a
//! retryable error and succeeds once the pass is done; `berth gc` and its dry run.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::common::{Server, client, digest, expect_error, meta};

/// Settings for passes every second with a one-second grace.
pub(crate) const FAST_GC: [(&str, &str); 2] = [
    ("BERTH_GC_GRACE_SECS", "1"),
    ("BERTH_GC_INTERVAL_SECS", "1"),
];

/// Uploads garbage collection refused (503) and manifests refused because a pass took a
/// link first: how often the load met a pass (printed, for the record).
static REFUSED_UPLOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static REPUSHED_IMAGES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Deterministic bytes for `seed`.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect()
}

/// Pushes `data` as a blob of `repo` (monolithic POST), retrying while garbage collection
/// refuses it (503); returns its digest.
pub(crate) async fn upload(base: &str, repo: &str, data: &[u8]) -> String {
    let d = digest(data);
    for _ in 0..100 {
        let response = client()
            .post(format!("{base}/v2/{repo}/blobs/uploads/?digest={d}"))
            .body(data.to_vec())
            .send()
            .await
            .expect("upload");
        match response.status() {
            StatusCode::CREATED => return d,
            StatusCode::SERVICE_UNAVAILABLE => {
                REFUSED_UPLOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                assert!(response.headers().contains_key("retry-after"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("upload of {d}: {other} {}", response.text().await.unwrap()),
        }
    }
    panic!("upload of {d} refused 100 times");
}

/// One image: its manifest's bytes and the blobs it names.
struct Image {
    manifest: Vec<u8>,
    blobs: Vec<String>,
}

/// Uploads the blobs of an image (a config naming `nonce`, then `layers`) and pushes its
/// manifest under `tag`; a manifest refused because a pass took a link meanwhile
/// (`MANIFEST_BLOB_UNKNOWN`) is pushed again from the start. `None` when `abandon`: the blobs
/// are uploaded and no manifest follows.
async fn push(
    base: &str,
    repo: &str,
    tag: &str,
    nonce: u64,
    layers: &[&[u8]],
    abandon: bool,
) -> Option<Image> {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","nonce":{nonce}}}"#);
    for _ in 0..20 {
        let config_digest = upload(base, repo, config.as_bytes()).await;
        let mut descriptors = Vec::new();
        let mut blobs = vec![config_digest.clone()];
        for layer in layers {
            let d = upload(base, repo, layer).await;
            descriptors.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": d, "size": layer.len()
            }));
            blobs.push(d);
        }
        if abandon {
            return None;
        }
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config.len()},
            "layers": descriptors,
        }))
        .unwrap();
        let response = client()
            .put(format!("{base}/v2/{repo}/manifests/{tag}"))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.clone())
            .send()
            .await
            .expect("put manifest");
        match response.status() {
            StatusCode::CREATED => return Some(Image { manifest, blobs }),
            StatusCode::BAD_REQUEST => {
                let body = response.text().await.unwrap();
                assert!(body.contains("MANIFEST_BLOB_UNKNOWN"), "{body}");
                REPUSHED_IMAGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            other => panic!("manifest push: {other} {}", response.text().await.unwrap()),
        }
    }
    panic!("an image push lost its blobs 20 times");
}

/// What clients did: the blobs every stored manifest (live or deleted) names, and the tags
/// still standing with their manifests.
#[derive(Default)]
pub(crate) struct Outcome {
    pub used: BTreeSet<String>,
    pub abandoned: BTreeSet<String>,
    pub tags: BTreeMap<(String, String), Vec<u8>>,
}

impl Outcome {
    /// Adds what `other` did.
    pub fn merge(&mut self, other: Outcome) {
        self.used.extend(other.used);
        self.abandoned.extend(other.abandoned);
        // Tags are per client and round: no two share one.
        self.tags.extend(other.tags);
    }
}

/// Four clients for `run` (and at least six pushes each): each pushes images of two shared layers and one of its own,
/// abandons every third push after its uploads, and deletes every fourth image it pushed.
pub(crate) async fn load(base: &str, run: Duration, round: u64) -> Outcome {
    let shared: Vec<Vec<u8>> = (0..4).map(|i| bytes(1000 + i, 48 << 10)).collect();
    let clients = (0..4u64).map(|c| {
        let shared = shared.clone();
        async move {
            let mut outcome = Outcome::default();
            let started = Instant::now();
            let mut i = 0u64;
            // At least six pushes each, however slow the machine: two tagged images each
            // round at least.
            while started.elapsed() < run || i < 6 {
                i += 1;
                let repo = format!("acme/gc-{}", c % 2);
                let tag = format!("r{round}-c{c}-{}", i % 3);
                let own = bytes(round * 1_000_000 + c * 10_000 + i, 4096);
                let layers: [&[u8]; 3] = [
                    &shared[(i % 4) as usize],
                    &shared[((i + c) % 4) as usize],
                    &own,
                ];
                let nonce = round * 1_000_000 + c * 10_000 + i;
                let abandon = i.is_multiple_of(3);
                match push(base, &repo, &tag, nonce, &layers, abandon).await {
                    None => {
                        outcome.abandoned.insert(digest(&own));
                    }
                    Some(image) => {
                        outcome.used.extend(image.blobs.iter().cloned());
                        let manifest_digest = digest(&image.manifest);
                        if i.is_multiple_of(4) {
                            let response = client()
                                .delete(format!("{base}/v2/{repo}/manifests/{manifest_digest}"))
                                .send()
                                .await
                                .unwrap();
                            assert_eq!(response.status(), StatusCode::ACCEPTED);
                            outcome.tags.remove(&(repo, tag));
                        } else {
                            outcome.tags.insert((repo, tag), image.manifest);
                        }
                    }
                }
            }
            outcome
        }
    });
    let mut all = Outcome::default();
    for outcome in futures_util::future::join_all(clients).await {
        all.merge(outcome);
    }
    all
}

/// Every tag pulls its manifest and every blob it names, hashing to their digests.
pub(crate) async fn pull_all(base: &str, tags: &BTreeMap<(String, String), Vec<u8>>) {
    for ((repo, tag), manifest) in tags {
        let response = client()
            .get(format!("{base}/v2/{repo}/manifests/{tag}"))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{repo}:{tag}");
        let body = response.bytes().await.unwrap();
        assert_eq!(&body[..], &manifest[..], "{repo}:{tag}");
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let mut wanted = vec![parsed["config"]["digest"].as_str().unwrap().to_owned()];
        for layer in parsed["layers"].as_array().unwrap() {
            wanted.push(layer["digest"].as_str().unwrap().to_owned());
        }
        for d in wanted {
            let response = client()
                .get(format!("{base}/v2/{repo}/blobs/{d}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{repo}@{d}");
            assert_eq!(digest(&response.bytes().await.unwrap()), d, "{repo}@{d}");
        }
    }
}

/// Runs `berth gc` (with `args`) against `server`'s stores; its standard output.
pub(crate) fn gc(server: &Server, args: &[&str], env: &[(&str, &str)]) -> String {
    let output = server.tool_with("gc", args, env);
    assert!(
        output.status.success(),
        "berth gc {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_load_and_a_kill_gc_keeps_every_used_blob_and_removes_the_rest() {
    let mut server = Server::start_with(&FAST_GC);
    let mut outcome = load(&server.base, Duration::from_secs(6), 1).await;
    // Killed wherever it is (passes run every second), then on again.
    server.kill();
    server.restart();
    outcome.merge(load(&server.base, Duration::from_secs(4), 2).await);
    assert!(
        outcome.tags.len() >= 4,
        "enough images: {}",
        outcome.tags.len()
    );
    assert!(!outcome.abandoned.is_empty());

    // Two grace periods and a pass more, then one by hand: whatever is left unused goes.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    for _ in 0..2 {
        gc(&server, &[], &[("BERTH_GC_GRACE_SECS", "1")]);
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    }

    eprintln!(
        "{} images tagged, {} blobs used, {} abandoned; uploads refused while collected: {}, \
         images pushed again after losing a link: {}",
        outcome.tags.len(),
        outcome.used.len(),
        outcome.abandoned.len(),
        REFUSED_UPLOADS.load(std::sync::atomic::Ordering::Relaxed),
        REPUSHED_IMAGES.load(std::sync::atomic::Ordering::Relaxed)
    );
    pull_all(&server.base, &outcome.tags).await;
    let stored: BTreeSet<String> = server.blobs().stored_blobs().await.into_iter().collect();
    let missing: Vec<&String> = outcome.used.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "blobs manifests use were deleted: {missing:?}"
    );
    let left: Vec<&String> = stored.difference(&outcome.used).collect();
    assert!(
        left.is_empty(),
        "blobs no manifest uses are still stored: {left:?}"
    );
    assert!(
        outcome.abandoned.iter().all(|d| !stored.contains(d)),
        "abandoned layers are gone"
    );

    let metrics = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let reclaimed = metrics
        .lines()
        .find(|l| l.starts_with("berth_gc_bytes_reclaimed_total"))
        .expect("the reclaimed bytes are a metric");
    let value: f64 = reclaimed.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(value > 0.0, "{reclaimed}");
}

#[tokio::test]
async fn an_upload_of_a_blob_being_collected_is_refused_until_the_pass_ends() {
    let server = Server::start_with(&[("BERTH_GC_INTERVAL_SECS", "0")]);
    let repo = "acme/fence";
    let data = bytes(7, 10_000);
    let d = upload(&server.base, repo, &data).await;
    let response = client()
        .delete(server.url(&format!("/v2/{repo}/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    // A pass that has flagged the blob and not yet deleted its bytes.
    let store = meta::open(&server).await;
    store
        .mark_unreferenced(berth_core::ports::now_millis())
        .await
        .unwrap();
    let flagged = store.doom_blobs(i64::MAX, None, 10, false).await.unwrap();
    assert_eq!(flagged.len(), 1);

    let refused = client()
        .post(server.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    let message = expect_error(refused, 503, "UNAVAILABLE").await;
    assert!(message.contains("garbage collection"), "{message}");

    // A chunked upload's final PUT is refused too, and keeps its session for the retry.
    let started = client()
        .post(server.url(&format!("/v2/{repo}/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let location = if location.starts_with('/') {
        server.url(&location)
    } else {
        location
    };
    let patched = client()
        .patch(&location)
        .header("content-type", "application/octet-stream")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::ACCEPTED);
    let location = patched.headers()["location"].to_str().unwrap().to_owned();
    let location = if location.starts_with('/') {
        server.url(&location)
    } else {
        location
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let finish = format!("{location}{sep}digest={d}");
    let refused = client().put(&finish).send().await.unwrap();
    expect_error(refused, 503, "UNAVAILABLE").await;

    // The pass ends: bytes deleted, the blob forgotten. The same upload now goes through.
    let out = gc(&server, &[], &[("BERTH_GC_GRACE_SECS", "3600")]);
    assert!(out.contains("deleted 1 blob(s)"), "{out}");
    let done = client().put(&finish).send().await.unwrap();
    assert_eq!(
        done.status(),
        StatusCode::CREATED,
        "{}",
        done.text().await.unwrap()
    );
    let pulled = client()
        .get(server.url(&format!("/v2/{repo}/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), StatusCode::OK);
    assert_eq!(pulled.bytes().await.unwrap().to_vec(), data);
}

#[tokio::test]
async fn gc_dry_run_lists_what_a_pass_removes_and_gc_removes_it() {
    let server = Server::start_with(&[("BERTH_GC_INTERVAL_SECS", "0")]);
    let kept = crate::common::push_image(&server, "acme/kept", "v1", &bytes(1, 3000)).await;
    let repo = "acme/abandoned";
    let data = bytes(2, 5000);
    let d = upload(&server.base, repo, &data).await;
    let grace = [("BERTH_GC_GRACE_SECS", "2")];

    let out = gc(&server, &["--dry-run"], &grace);
    assert!(
        out.contains("would remove 0 repository link(s)"),
        "the link is younger than the grace: {out}"
    );
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let out = gc(&server, &["--dry-run"], &grace);
    assert!(out.contains("would remove 1 repository link(s)"), "{out}");
    assert!(out.contains("would delete 0 blob(s)"), "{out}");
    // The link goes; the blob is referenced by nothing from now, and waits out the grace.
    let out = gc(&server, &[], &grace);
    assert!(out.contains("removed 1 repository link(s)"), "{out}");
    assert!(out.contains("marked 1 blob(s)"), "{out}");
    assert!(out.contains("deleted 0 blob(s)"), "{out}");
    let missing = client()
        .get(server.url(&format!("/v2/{repo}/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND, "unlinked");
    assert!(
        server.blobs().stored_blobs().await.contains(&d),
        "still stored"
    );

    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let out = gc(&server, &["--dry-run"], &grace);
    assert!(out.contains("would delete 1 blob(s)"), "{out}");
    assert!(out.contains(&format!("{d}  5000 byte(s)")), "{out}");
    assert!(
        server.blobs().stored_blobs().await.contains(&d),
        "a dry run deletes nothing"
    );
    let out = gc(&server, &[], &grace);
    assert!(
        out.contains("deleted 1 blob(s), 4.9 KiB (5000 byte(s))"),
        "{out}"
    );
    assert!(!server.blobs().stored_blobs().await.contains(&d));

    // The image nobody touched pulls whole.
    let mut tags = BTreeMap::new();
    tags.insert(("acme/kept".to_owned(), "v1".to_owned()), kept.1);
    pull_all(&server.base, &tags).await;
}

#[tokio::test]
async fn stored_bytes_no_metadata_names_are_collected() {
    let server = Server::start_with(&[("BERTH_GC_INTERVAL_SECS", "0")]);
    // A process killed between committing an upload's bytes and recording them.
    let data = bytes(3, 7000);
    let d: berth_core::Digest = digest(&data).parse().unwrap();
    let inspector = server.blobs();
    inspector.write_upload_bytes("strayupload", &data).await;
    inspector.move_upload_to_blob("strayupload", &d).await;
    assert!(inspector.stored_blobs().await.contains(&d.to_string()));

    let out = gc(&server, &[], &[("BERTH_GC_GRACE_SECS", "3600")]);
    assert!(out.contains("deleted 0 blob(s)"), "too young: {out}");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let out = gc(&server, &["--dry-run"], &[("BERTH_GC_GRACE_SECS", "1")]);
    assert!(
        out.contains("of which 1 stored bytes no metadata named"),
        "{out}"
    );
    let out = gc(&server, &[], &[("BERTH_GC_GRACE_SECS", "1")]);
    assert!(out.contains("deleted 1 blob(s)"), "{out}");
    assert!(!inspector.stored_blobs().await.contains(&d.to_string()));
    // And it can be pushed for real afterwards.
    upload(&server.base, "acme/after", &data).await;
}
