//! GitHub's own JavaScript client against Berth: `@octokit/rest` (installed in
//! `tests/node`) drives the Packages API and the organization webhooks API through its own
//! methods (`tests/node/octokit.mjs`), paginating by GitHub's `Link` header and verifying
//! deliveries with `@octokit/webhooks-methods`. This module seeds the server and judges the
//! script by its exit status and the steps it reports.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::common::world::World;
use crate::common::{Server, digest, login, push_blob_with};
use crate::webhooks::LOOPBACK;

/// The organization octokit works in.
const ORG: &str = "octo";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Versions of the big package: more than one page of 100.
const VERSIONS: usize = 130;
/// The steps the script reports, in order, with what it counted.
const STEPS: [&str; 14] = [
    "ok paginate-versions 130",
    "ok iterate-pages 2",
    "ok get-package",
    "ok list-org-packages",
    "ok list-user-packages",
    "ok delete-restore-version",
    "ok delete-restore-package",
    "ok create-hook",
    "ok list-get-hook",
    "ok ping-verify 2",
    "ok list-deliveries 2",
    "ok update-hook",
    "ok hook-config",
    "ok delete-hook",
];

/// Pushes `count` distinct manifests (tags `build-<i>`) of `repo` sharing one config and
/// layer, as `http`.
async fn push_versions(server: &Server, http: &reqwest::Client, repo: &str, count: usize) {
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = format!("layer of {repo}").into_bytes();
    for blob in [&config, &layer] {
        let response = push_blob_with(http, server, repo, blob.clone()).await;
        assert_eq!(response.status(), 201, "push a blob of {repo}");
    }
    for i in 0..count {
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(&layer), "size": layer.len()}],
            "annotations": {"build": i.to_string()},
        }))
        .unwrap();
        let response = http
            .put(server.url(&format!("/v2/{repo}/manifests/build-{i}")))
            .header("content-type", OCI_MANIFEST)
            .body(manifest)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "push {repo}:build-{i}");
    }
}

#[tokio::test]
async fn octokit_drives_the_packages_and_org_webhooks_apis() {
    let server = Server::start_with(&[LOOPBACK]);
    let world = World::new(&server);
    // A user owning an organization of her own (its hooks need an owner), who pushes every
    // package.
    let token = world.user("mona").await;
    server.admin(&["create-org", ORG, "--owner", "mona"]);
    let mona = login("mona", &token);
    push_versions(&server, &mona, &format!("{ORG}/many"), VERSIONS).await;
    push_versions(&server, &mona, &format!("{ORG}/spare"), 1).await;
    push_versions(&server, &mona, "mona/tool", 1).await;

    let node_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    let output = Command::new("node")
        .arg("octokit.mjs")
        .current_dir(&node_dir)
        .env("BERTH_URL", &server.base)
        .env("BERTH_TOKEN", &token)
        .env("BERTH_USER", "mona")
        .env("BERTH_ORG", ORG)
        .env("BERTH_PACKAGE", "many")
        .env("BERTH_SPARE", "spare")
        .env("BERTH_USER_PACKAGE", "tool")
        .env("BERTH_VERSIONS", VERSIONS.to_string())
        .output()
        .expect("run node (scripts/test installs it and octokit)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "octokit.mjs failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [&STEPS[..], &["done"]].concat(),
        "octokit.mjs reported other steps:\n{stderr}"
    );
}
