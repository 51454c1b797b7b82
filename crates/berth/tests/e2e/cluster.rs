//! Three nodes sharing one PostgreSQL database and one blob store, behind nginx balancing
//! every request round-robin (see [`Cluster`]): real clients in and out through the balancer,
//! uploads going on from node to node (and past a node killed mid-upload), a revocation
//! honoured by every node at once, and each webhook delivered once though every node runs a
//! delivery worker.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::common::cluster::Cluster;
use crate::common::github::Api;
use crate::common::layout::{layout_manifest_digest, skopeo, write_two_platform_index};
use crate::common::{client, digest, require, run, temp_path};
use crate::webhooks::{LOOPBACK, Receiver, hook, push};

/// Every blob of an OCI layout hashes to its name; their names.
fn layout_blobs(layout: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(
            digest(&std::fs::read(&path).unwrap()),
            format!("sha256:{name}"),
            "blob {name} arrived whole"
        );
        names.push(name);
    }
    names.sort();
    names
}

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
    for (i, size) in [(1, 10_000usize), (2, 300_000), (3, 2_000_000)] {
        let file = dir.join(format!("file{i}"));
        std::fs::write(
            &file,
            (0..size).map(|b| (b * 31 % 251) as u8).collect::<Vec<u8>>(),
        )
        .unwrap();
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
        assert!(
            layout.join("blobs/sha256").join(&name).exists(),
            "blob {name} came from the source"
        );
    }

    // A two-platform index.
    let multi = dir.join("multi");
    write_two_platform_index(&multi);
    let remote = format!("docker://{}/acme/multi:v1", cluster.host);
    skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", multi.display()),
        &remote,
    ]);
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &remote]);
    let served: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(served["manifests"].as_array().unwrap().len(), 2);
    let back = dir.join("back");
    skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        &remote,
        &format!("oci:{}:v1", back.display()),
    ]);
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

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 7 + seed * 13) % 251) as u8)
        .collect()
}

#[tokio::test]
async fn a_chunked_upload_goes_on_from_node_to_node() {
    let cluster = Cluster::start(3);
    let bytes = pattern(3 << 20, 1);
    let d = digest(&bytes);
    let mut location = start_upload(&cluster, 0, "acme/chunks").await;
    let chunk = 1 << 20;
    for (i, piece) in bytes.chunks(chunk).enumerate() {
        location = patch(&cluster, (i + 1) % 3, &location, i * chunk, piece).await;
    }
    finish(&cluster, 1, &location, &d).await;
    for node in 0..3 {
        assert_eq!(
            blob(&cluster, node, "acme/chunks", &d).await,
            bytes,
            "node {node} serves the blob"
        );
    }
}

#[tokio::test]
async fn an_upload_whose_node_was_killed_finishes_on_another() {
    let mut cluster = Cluster::start(2);
    let bytes = pattern(2 << 20, 2);
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
