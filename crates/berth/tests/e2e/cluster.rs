//! Three nodes sharing one PostgreSQL database and one prefix of the Garage bucket (three
//! Garage nodes, replication 3), behind nginx balancing every request round-robin (see
//! [`Cluster`]): real clients in and out through the balancer, uploads going on from node to
//! node (and past a node killed between requests or in the middle of one), pulls
//! byte-identical on every node, a revocation honoured by every node at once, each webhook
//! delivered once though every node runs a delivery worker, and pushes and pulls going on
//! with a Garage node stopped.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::cluster::{Cluster, StoppedGarageNode};
use crate::common::github::Api;
use crate::common::layout::{
    copy_all, layout_blobs, layout_manifest_digest, skopeo, write_two_platform_index,
};
use crate::common::{client, digest, require, run, temp_path};
use crate::webhooks::{LOOPBACK, Receiver, hook, push};

#[test]
fn skopeo_copies_an_image_and_an_index_in_and_out_through_three_nodes() {
    require("skopeo");
    require("umoci");
    let cluster = Cluster::start(3);
    let (_keep, dir) = temp_path();

    // A three-layer image, pushed and pulled through the balancer.
    let layout = dir.join("src");
    let layout_arg = layout.to_str().unwrap();
    run(Command::new("umoci").args(["init", "--layout", layout_arg]));
    run(Command::new("umoci").args(["new", "--image", &format!("{layout_arg}:v1")]));
    // The last layer does not compress: 12 MiB, so its upload fills S3 parts.
    for (i, size) in [
        (1, 10_000usize),
        (2, 300_000),
        (3, 2_000_000),
        (4, 12 << 20),
    ] {
        let file = dir.join(format!("file{i}"));
        let bytes = if i == 4 {
            noise(size, 4)
        } else {
            (0..size).map(|b| (b * 31 % 251) as u8).collect()
        };
        std::fs::write(&file, bytes).unwrap();
        run(Command::new("umoci")
            .args(["insert", "--image", &format!("{layout_arg}:v1")])
            .arg(&file)
            .arg(format!("/file{i}")));
    }
    let pushed = layout_manifest_digest(&layout, "v1");
    let remote = format!("docker://{}/acme/tools/image:v1", cluster.host);
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{layout_arg}:v1"),
        &remote,
    ]);
    let out = dir.join("out");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &remote,
        &format!("oci:{}:v1", out.display()),
    ]);
    assert_eq!(
        layout_manifest_digest(&out, "v1"),
        pushed,
        "the manifest came back unchanged"
    );
    for name in layout_blobs(&out) {
        let source = std::fs::read(layout.join("blobs/sha256").join(&name))
            .unwrap_or_else(|e| panic!("blob {name} came from the source: {e}"));
        assert!(
            std::fs::read(out.join("blobs/sha256").join(&name)).unwrap() == source,
            "blob {name} came back byte for byte"
        );
    }

    // A two-platform index.
    let multi = dir.join("multi");
    write_two_platform_index(&multi);
    let remote = format!("docker://{}/acme/multi:v1", cluster.host);
    copy_all(&format!("oci:{}:v1", multi.display()), &remote);
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &remote]);
    let served: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(served["manifests"].as_array().unwrap().len(), 2);
    let back = dir.join("back");
    copy_all(&remote, &format!("oci:{}:v1", back.display()));
    assert_eq!(
        layout_manifest_digest(&back, "v1"),
        digest(raw.as_bytes()),
        "the index came back as the registry holds it"
    );
    assert_eq!(
        layout_blobs(&back).len(),
        7,
        "index, two manifests, two configs, two layers"
    );
}

/// Starts an upload of `repo` on `node`; its location (absolute, through the balancer).
async fn start_upload(cluster: &Cluster, node: usize, repo: &str) -> String {
    let response = client()
        .post(cluster.nodes[node].url(&format!("/v2/{repo}/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    crate::common::header(&response, "location")
}

/// An upload location (absolute, or a path) through the balancer.
fn through(cluster: &Cluster, location: &str) -> String {
    if location.starts_with("http://") {
        location.to_owned()
    } else {
        cluster.url(location)
    }
}

/// The path and query of an upload location, on `node`.
fn on(cluster: &Cluster, node: usize, location: &str) -> String {
    let path = location.strip_prefix(&cluster.base).unwrap_or(location);
    cluster.nodes[node].url(path)
}

/// PATCHes `bytes` at `offset` to the upload at `location` on `node`; the next location.
async fn patch(
    cluster: &Cluster,
    node: usize,
    location: &str,
    offset: usize,
    bytes: &[u8],
) -> String {
    let response = client()
        .patch(on(cluster, node, location))
        .header("content-type", "application/octet-stream")
        .header(
            "content-range",
            format!("{offset}-{}", offset + bytes.len() - 1),
        )
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        202,
        "PATCH on node {node}: {}",
        response.text().await.unwrap_or_default()
    );
    crate::common::header(&response, "location")
}

/// Finishes the upload at `location` on `node` as `d`.
async fn finish(cluster: &Cluster, node: usize, location: &str, d: &str) {
    let url = on(cluster, node, location);
    let url = format!(
        "{url}{}digest={d}",
        if url.contains('?') { "&" } else { "?" }
    );
    let response = client().put(url).send().await.unwrap();
    assert_eq!(
        response.status(),
        201,
        "final PUT on node {node}: {}",
        response.text().await.unwrap_or_default()
    );
}

/// The blob `d` of `repo` as `node` serves it.
async fn blob(cluster: &Cluster, node: usize, repo: &str, d: &str) -> Vec<u8> {
    let response = client()
        .get(cluster.nodes[node].url(&format!("/v2/{repo}/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "blob GET on node {node}");
    response.bytes().await.unwrap().to_vec()
}

/// `len` bytes that do not compress (xorshift from `seed`).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Asserts every node, and the balancer, serve blob `d` of `repo` as exactly `bytes`.
async fn every_node_serves(cluster: &Cluster, repo: &str, d: &str, bytes: &[u8]) {
    for node in 0..cluster.nodes.len() {
        assert!(
            blob(cluster, node, repo, d).await == bytes,
            "node {node} serves the blob byte for byte"
        );
    }
    let response = client()
        .get(cluster.url(&format!("/v2/{repo}/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", cluster.balancer_log());
    assert!(response.bytes().await.unwrap() == bytes);
}

/// Asserts the bucket holds blob `d` once and no upload's bytes.
async fn stored_once_and_nothing_left(cluster: &Cluster, d: &str) {
    let blobs = cluster.blobs();
    assert_eq!(blobs.blob_copies(&d.parse().unwrap()).await, 1);
    assert_eq!(blobs.uploads_held().await, Vec::<String>::new());
}

/// Chunks of every size S3 sees differently (parts are 8 MiB, the smallest 5 MiB): one that
/// is a part by itself, one staged, several staged pieces folded into a part, a chunk
/// spanning a part boundary, and a staged tail; each PATCH on the node after the last.
#[tokio::test(flavor = "multi_thread")]
async fn a_chunked_upload_goes_on_from_node_to_node() {
    let cluster = Cluster::start(3);
    let sizes = [6 << 20, 1 << 20, 3 << 20, 2 << 20, 9 << 20, 700_000];
    let bytes = noise(sizes.iter().sum(), 1);
    let d = digest(&bytes);
    let mut location = start_upload(&cluster, 0, "acme/chunks").await;
    let mut offset = 0;
    for (i, size) in sizes.into_iter().enumerate() {
        let piece = &bytes[offset..offset + size];
        location = patch(&cluster, (i + 1) % 3, &location, offset, piece).await;
        offset += size;
    }
    finish(&cluster, (sizes.len() + 1) % 3, &location, &d).await;
    every_node_serves(&cluster, "acme/chunks", &d, &bytes).await;
    stored_once_and_nothing_left(&cluster, &d).await;
}

#[tokio::test]
async fn an_upload_whose_node_was_killed_finishes_on_another() {
    let mut cluster = Cluster::start(2);
    // Half is a part of the upload's multipart upload, sent by the node killed after it.
    let bytes = noise(12 << 20, 2);
    let d = digest(&bytes);
    let half = bytes.len() / 2;
    let location = start_upload(&cluster, 0, "acme/survivor").await;
    let location = patch(&cluster, 0, &location, 0, &bytes[..half]).await;
    cluster.nodes[0].kill();
    // The other node knows where the upload stands and takes the rest.
    let status = client()
        .get(on(&cluster, 1, &location))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 204);
    assert_eq!(
        crate::common::header(&status, "range"),
        format!("0-{}", half - 1)
    );
    let location = patch(&cluster, 1, &location, half, &bytes[half..]).await;
    finish(&cluster, 1, &location, &d).await;
    assert_eq!(blob(&cluster, 1, "acme/survivor", &d).await, bytes);
    // Through the balancer too, which finds the dead node out.
    let response = client()
        .get(cluster.url(&format!("/v2/acme/survivor/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", cluster.balancer_log());
    assert_eq!(response.bytes().await.unwrap().to_vec(), bytes);
    stored_once_and_nothing_left(&cluster, &d).await;
}

/// SIGKILL while a PATCH's body streams in, after the node sent part of it to S3: the upload
/// stands where its last request left it, and once the dead node's lease on it lapses
/// (30 s) another node takes the rest, overwriting the parts the dead one sent unrecorded.
#[tokio::test(flavor = "multi_thread")]
async fn an_upload_whose_node_was_killed_mid_request_finishes_on_another() {
    use tokio::io::AsyncWriteExt as _;
    let mut cluster = Cluster::start(3);
    let bytes = noise(18 << 20, 3);
    let d = digest(&bytes);
    let first = 6 << 20;
    let location = start_upload(&cluster, 0, "acme/crash").await;
    let location = patch(&cluster, 0, &location, 0, &bytes[..first]).await;

    // The next 12 MiB to node 0, of which 10 MiB arrive: a part's worth goes to S3.
    let path = location.strip_prefix(&cluster.base).unwrap_or(&location);
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\n\
         Content-Range: {first}-{}\r\nContent-Length: {}\r\n\r\n",
        cluster.nodes[0].host,
        bytes.len() - 1,
        bytes.len() - first
    );
    let mut tcp = tokio::net::TcpStream::connect(&cluster.nodes[0].host)
        .await
        .unwrap();
    tcp.write_all(crate::common::with_auth(&head).as_bytes())
        .await
        .unwrap();
    tcp.write_all(&bytes[first..first + (10 << 20)])
        .await
        .unwrap();
    tcp.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    cluster.nodes[0].kill();
    drop(tcp);

    // Another node sees what was recorded: the first request's bytes.
    let status = client()
        .get(on(&cluster, 1, &location))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 204);
    assert_eq!(
        crate::common::header(&status, "range"),
        format!("0-{}", first - 1)
    );
    // The rest, once the dead node's lease lapses.
    let began = std::time::Instant::now();
    let location = loop {
        let response = client()
            .patch(on(&cluster, 1, &location))
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{first}-{}", bytes.len() - 1))
            .body(bytes[first..].to_vec())
            .send()
            .await
            .unwrap();
        if response.status() == 202 {
            break crate::common::header(&response, "location");
        }
        let message = crate::common::expect_error(response, 400, "BLOB_UPLOAD_INVALID").await;
        assert!(message.contains("another request"), "{message}");
        assert!(
            began.elapsed() < std::time::Duration::from_secs(45),
            "the dead node's lease never lapsed: {message}"
        );
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    };
    finish(&cluster, 2, &location, &d).await;
    // Node 0 is dead: nodes 1 and 2, and the balancer, which finds that out.
    for node in 1..3 {
        assert!(
            blob(&cluster, node, "acme/crash", &d).await == bytes,
            "node {node} serves the blob byte for byte"
        );
    }
    let response = client()
        .get(cluster.url(&format!("/v2/acme/crash/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", cluster.balancer_log());
    assert!(response.bytes().await.unwrap() == bytes);
    stored_once_and_nothing_left(&cluster, &d).await;
}

#[tokio::test]
async fn a_token_revoked_on_one_node_is_refused_by_every_node_at_once() {
    let cluster = Cluster::start(3);
    crate::common::push_image(&cluster.nodes[0], "acme/app", "v1", b"layer").await;
    let token = cluster.nodes[0].admin(&[
        "create-token",
        crate::common::ADMIN,
        "--scopes",
        "read:packages",
        "--note",
        "soon revoked",
    ]);
    let tags = |node: usize| {
        let token = token.clone();
        let url = cluster.nodes[node].url("/v2/acme/app/tags/list");
        async move {
            crate::common::client_with_token(&token)
                .get(url)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // Every node has the token in its access cache.
    for node in 0..3 {
        for _ in 0..2 {
            assert_eq!(tags(node).await, 200, "node {node} accepts the token");
        }
    }
    let admin = Api::new(&cluster.nodes[0], &cluster.nodes[0].admin_token);
    let listed = admin.expect("GET", "/user/tokens", None, 200).await;
    let id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["note"] == "soon revoked")
        .unwrap_or_else(|| panic!("the token in {listed}"))["id"]
        .as_i64()
        .unwrap();
    admin
        .expect("DELETE", &format!("/user/tokens/{id}"), None, 204)
        .await;
    for node in 0..3 {
        assert_eq!(
            tags(node).await,
            401,
            "node {node} refuses the revoked token on its next request"
        );
    }
}

#[tokio::test]
async fn each_webhook_is_delivered_once_though_every_node_runs_a_worker() {
    let cluster = Cluster::start_with(3, &[LOOPBACK]);
    let receiver = Receiver::start().await;
    let api = Api::new(&cluster.nodes[1], &cluster.nodes[1].admin_token);
    hook(
        &api,
        "/orgs/acme",
        json!({ "url": receiver.url(), "content_type": "json" }),
        json!({ "events": ["package", "registry_package"] }),
    )
    .await;
    let images = 9;
    let mut digests = Vec::new();
    for i in 0..images {
        let (d, _) = push(
            &cluster.nodes[i % 3],
            "acme/hooked",
            Some(&format!("v{i}")),
            &format!("layer {i}"),
        )
        .await;
        digests.push(d);
    }
    // Each push is a `package` and a `registry_package` event.
    receiver
        .wait_for("every event", |got| {
            got.iter()
                .filter(|r| r.event() == "package" || r.event() == "registry_package")
                .count()
                >= 2 * images
        })
        .await;
    // Wait a little longer: a duplicate would arrive now.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let delivered: Vec<_> = receiver
        .received()
        .into_iter()
        .filter(|r| r.event() == "package" || r.event() == "registry_package")
        .collect();
    assert!(delivered.len() >= 2 * images);
    let mut guids: Vec<&str> = delivered
        .iter()
        .map(|r| r.header("x-github-delivery"))
        .collect();
    guids.sort();
    let before = guids.len();
    guids.dedup();
    assert_eq!(guids.len(), before, "no delivery arrived twice");
    assert_eq!(before, 2 * images, "one delivery per event");
    let mut seen: Vec<String> = delivered
        .iter()
        .filter(|r| r.event() == "package")
        .map(|r| r.digest())
        .collect();
    seen.sort();
    digests.sort();
    assert_eq!(seen, digests, "every push announced once");
}

/// The manifest `reference` of `repo` as `node` serves it: status and digest header.
async fn manifest_on(cluster: &Cluster, node: usize, repo: &str, reference: &str) -> (u16, String) {
    let response = client()
        .get(cluster.nodes[node].url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let digest = response
        .headers()
        .get("docker-content-digest")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, digest)
}

#[tokio::test]
async fn a_tag_moved_or_a_manifest_deleted_on_one_node_is_seen_by_every_node_at_once() {
    let cluster = Cluster::start(3);
    let (first, _) =
        crate::common::push_image(&cluster.nodes[0], "acme/moving", "v1", b"one").await;
    // Every node remembers v1 and the manifest by digest.
    for _ in 0..2 {
        for node in 0..3 {
            assert_eq!(
                manifest_on(&cluster, node, "acme/moving", "v1").await,
                (200, first.clone())
            );
            assert_eq!(
                manifest_on(&cluster, node, "acme/moving", &first).await.0,
                200
            );
        }
    }
    // The tag moves through node 0.
    let (second, _) =
        crate::common::push_image(&cluster.nodes[0], "acme/moving", "v1", b"two").await;
    assert_ne!(first, second);
    for node in 0..3 {
        assert_eq!(
            manifest_on(&cluster, node, "acme/moving", "v1").await,
            (200, second.clone()),
            "node {node} serves the moved tag on its next request"
        );
    }
    // The first manifest is deleted through node 1.
    let deleted = client()
        .delete(cluster.nodes[1].url(&format!("/v2/acme/moving/manifests/{first}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 202);
    for node in 0..3 {
        assert_eq!(
            manifest_on(&cluster, node, "acme/moving", &first).await.0,
            404,
            "node {node} no longer serves the deleted manifest"
        );
    }
}

/// Garage keeps three copies (replication factor 3) and answers with two: with one of its
/// nodes stopped (not the one whose S3 API Berth talks to), an image goes in through the
/// balancer in requests to every Berth node, and comes out byte for byte. The node is started
/// again, and waited for, before the test ends (other tests share the Garage cluster).
#[tokio::test(flavor = "multi_thread")]
async fn pushes_and_pulls_go_on_with_a_garage_node_stopped() {
    let cluster = Cluster::start(3);
    let garage = berth_testkit::services::s3_service().garage_configs;
    assert_eq!(garage.len(), 3, "the test Garage cluster has three nodes");
    let mut stopped = StoppedGarageNode::stop(&garage[2], &garage[0]);

    let repo = "acme/replicated";
    let http = client();
    let layer = noise(9 << 20, 5);
    let layer_digest = digest(&layer);
    // The layer in three requests (POST, PATCH, PUT), one per node.
    let started = http
        .post(cluster.url(&format!("/v2/{repo}/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202, "{}", cluster.balancer_log());
    let location = crate::common::header(&started, "location");
    let patched = http
        .patch(through(&cluster, &location))
        .header("content-type", "application/octet-stream")
        .body(layer.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        patched.status(),
        202,
        "{}",
        patched.text().await.unwrap_or_default()
    );
    let url = through(&cluster, &crate::common::header(&patched, "location"));
    let url = format!(
        "{url}{}digest={layer_digest}",
        if url.contains('?') { "&" } else { "?" }
    );
    let finished = http.put(url).send().await.unwrap();
    assert_eq!(
        finished.status(),
        201,
        "{}",
        finished.text().await.unwrap_or_default()
    );
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let config_digest = digest(&config);
    let pushed = http
        .post(cluster.url(&format!("/v2/{repo}/blobs/uploads/?digest={config_digest}")))
        .body(config.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 201);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    let put = http
        .put(cluster.url(&format!("/v2/{repo}/manifests/v1")))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);

    // Out again, every blob from every node in turn.
    for _ in 0..3 {
        let got = http
            .get(cluster.url(&format!("/v2/{repo}/manifests/v1")))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200);
        assert!(got.bytes().await.unwrap() == manifest);
        for (d, bytes) in [(&config_digest, &config), (&layer_digest, &layer)] {
            let got = http
                .get(cluster.url(&format!("/v2/{repo}/blobs/{d}")))
                .send()
                .await
                .unwrap();
            assert_eq!(got.status(), 200, "blob {d}");
            assert!(
                got.bytes().await.unwrap() == bytes,
                "blob {d} byte for byte"
            );
        }
    }
    stopped.start();
}

/// Garbage collection on two nodes (passes every second, one node at a time) under four
/// clients through the balancer, with a node killed between two rounds (its pass may be cut
/// anywhere) and brought back: every tagged image pulls whole, and the bucket holds exactly
/// the blobs manifests use.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gc_on_two_nodes_keeps_every_used_blob_and_removes_the_rest() {
    use crate::gc::{FAST_GC, Outcome, gc, load, pull_all};
    let mut cluster = Cluster::start_with(2, &FAST_GC);
    let mut outcome = Outcome::default();
    outcome.merge(load(&cluster.base, Duration::from_secs(6), 1).await);
    cluster.nodes[0].kill();
    cluster.nodes[0].restart();
    outcome.merge(load(&cluster.base, Duration::from_secs(4), 2).await);
    assert!(!outcome.abandoned.is_empty());

    tokio::time::sleep(Duration::from_millis(3_500)).await;
    for _ in 0..2 {
        gc(&cluster.nodes[1], &[], &[("BERTH_GC_GRACE_SECS", "1")]);
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    }
    pull_all(&cluster.base, &outcome.tags).await;
    let stored: std::collections::BTreeSet<String> =
        cluster.blobs().stored_blobs().await.into_iter().collect();
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
}
