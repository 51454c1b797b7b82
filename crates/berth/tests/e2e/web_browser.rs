//! The web UI in a real browser: Debian's headless Chromium, driven by `playwright-core`
//! through whole user journeys (`tests/node/browser/flows.mjs`, one named flow per test).
//! Each test starts its own server, seeds it through the API and the registry, then runs its
//! flow with the logins, names and expectations in `BERTH_FLOW` and judges it by its exit
//! status. Every page a flow visits is checked by axe-core (serious and critical violations
//! fail) and screenshot; with `BERTH_UPDATE_SCREENSHOTS=1` the screenshots land in
//! `docs/screenshots/` (README's "Web UI" shows them), else in a temporary directory.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use std::process::Command;

use crate::common::web::{PASSWORD, set_password};
use crate::common::world::World;
use crate::common::{
    ADMIN, ORG, Server, client_with_token, digest, login, push_blob_with, push_image,
    push_versions, require, run, temp_path,
};
use crate::webhooks::{LOOPBACK, Receiver};

/// Runs flow `flow` of `flows.mjs` against `server` with `args`; asserts it succeeds and
/// answers its `ok …` lines (and the others it printed).
async fn run_flow(server: &Server, flow: &str, args: Value) -> Vec<String> {
    run_flow_beside(server, flow, args, async {}).await
}

/// [`run_flow`] while `beside` runs in this test (a receiver waiting for what the flow does,
/// a push the flow waits for).
async fn run_flow_beside(
    server: &Server,
    flow: &str,
    args: Value,
    beside: impl std::future::Future<Output = ()>,
) -> Vec<String> {
    let node_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    let (_keep, shots) = screenshot_dir();
    let node = tokio::process::Command::new("node")
        .arg("browser/flows.mjs")
        .arg(flow)
        .current_dir(&node_dir)
        .env("BERTH_URL", &server.base)
        .env("BERTH_PASSWORD", PASSWORD)
        .env("BERTH_SCREENSHOTS", &shots)
        .env("BERTH_FLOW", args.to_string())
        .kill_on_drop(true)
        .output();
    let mut node = std::pin::pin!(node);
    // A flow that ends before `beside` is done has failed, usually: judge it on its output.
    let output = tokio::select! {
        output = &mut node => output,
        () = beside => node.await,
    };
    let output = output.expect("run node (scripts/test installs it, playwright-core and chromium)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser flow {flow} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    if !stderr.is_empty() {
        eprintln!("{stderr}");
    }
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    assert_eq!(
        lines.last().map(String::as_str),
        Some("done"),
        "flow {flow} did not finish:\n{stdout}"
    );
    lines
}

/// Where screenshots go: `docs/screenshots` when `BERTH_UPDATE_SCREENSHOTS=1`, else a
/// temporary directory (kept alive by the first value).
fn screenshot_dir() -> (Option<tempfile::TempDir>, PathBuf) {
    if std::env::var("BERTH_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
        std::fs::create_dir_all(&docs).expect("create docs/screenshots");
        (None, docs)
    } else {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_owned();
        (Some(dir), path)
    }
}

/// Asserts `lines` include each of `steps`.
fn assert_steps(lines: &[String], steps: &[&str]) {
    for step in steps {
        assert!(
            lines.iter().any(|line| line == &format!("ok {step}")),
            "the flow did not report `{step}`:\n{}",
            lines.join("\n")
        );
    }
}

/// A member of [`ORG`] with a web password who pushed `packages` (under the org) and one
/// package of her own (`{user}/tool`): her token (every scope).
async fn publisher(server: &Server, world: &World<'_>, user: &str, packages: &[&str]) -> String {
    let token = world.user(user).member("member").await;
    set_password(server, user);
    let http = login(user, &token);
    for package in packages {
        push_versions(server, &http, &format!("{ORG}/{package}"), 1).await;
    }
    push_versions(server, &http, &format!("{user}/tool"), 1).await;
    token
}

/// Pushes, as `http`, a one-layer image of `repo` under `tag` whose manifest `marker` makes
/// distinct; its digest.
async fn push_tag(
    server: &Server,
    http: &reqwest::Client,
    repo: &str,
    tag: &str,
    marker: &str,
) -> String {
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = format!("layer of {repo}").into_bytes();
    for blob in [&config, &layer] {
        let response = push_blob_with(http, server, repo, blob.clone()).await;
        assert_eq!(response.status(), 201, "push a blob of {repo}");
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(&layer), "size": layer.len()}],
        "annotations": {"marker": marker},
    }))
    .unwrap();
    let response = http
        .put(server.url(&format!("/v2/{repo}/manifests/{tag}")))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "push {repo}:{tag}");
    digest(&manifest)
}

#[tokio::test]
async fn a_user_finds_a_nested_package_copies_its_pull_command_and_restores_a_deleted_version() {
    let server = Server::start();
    let world = World::new(&server);
    let token = publisher(&server, &world, "mona", &["team/worker", "web"]).await;
    // mona's nested package: v1 pushed twice (the first version is untagged now), then v2.
    let mona = login("mona", &token);
    let api = format!("{ORG}/team/api");
    let untagged = push_tag(&server, &mona, &api, "v1", "first").await;
    push_tag(&server, &mona, &api, "v1", "second").await;
    let newest = push_tag(&server, &mona, &api, "v2", "third").await;
    let versions: Value = client_with_token(&token)
        .get(server.url(&format!(
            "/api/v3/orgs/{ORG}/packages/container/team%2Fapi/versions"
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let newest_id = versions
        .as_array()
        .unwrap()
        .iter()
        .find(|version| version["name"] == newest.as_str())
        .expect("the newest version listed")["id"]
        .clone();

    let lines = run_flow(
        &server,
        "packages",
        json!({
            "login": "mona",
            "org": ORG,
            "search": "team",
            "found": ["team/api", "team/worker"],
            "hidden": ["web"],
            "package": {
                "name": "team/api",
                "pull": format!("docker pull {}/{api}:v2", server.host),
                "versions": 3,
                "untagged": untagged,
                "version": {
                    "path": format!("/orgs/{ORG}/packages/container/team%2Fapi/{newest_id}"),
                    "digest": newest,
                },
            },
            "missing": format!("/orgs/{ORG}/packages/container/package/no-such-package"),
        }),
    )
    .await;
    assert_steps(
        &lines,
        &[
            "look sign-in-refused",
            "look sign-in",
            "look user-packages",
            "look org-packages",
            "search team 2",
            "look package",
            "pull-copied",
            "look package-versions",
            "look package-versions-untagged",
            "version-deleted",
            "look package-versions-deleted",
            "version-restored",
            "look package-version",
            "look not-found",
            "sign-out",
        ],
    );
    // The registry agrees: the untagged version was deleted and is back.
    let manifest = client_with_token(&token)
        .get(server.url(&format!("/v2/{api}/manifests/{untagged}")))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        manifest.status(),
        200,
        "the restored version is served again"
    );
}

#[tokio::test]
async fn an_admin_makes_a_package_public_and_shares_another_with_a_team() {
    let server = Server::start();
    let world = World::new(&server);
    world.user("carol").member("member").await;
    set_password(&server, "carol");
    set_password(&server, ADMIN);
    world.team("readers", json!({})).await;
    world
        .admin()
        .ok(
            "PUT",
            &format!("/orgs/{ORG}/teams/readers/memberships/carol"),
            Some(json!({ "role": "member" })),
        )
        .await;
    push_image(&server, &format!("{ORG}/lighthouse"), "v1", b"lighthouse").await;
    push_image(&server, &format!("{ORG}/team/vault"), "v1", b"vault").await;

    let lines = run_flow(
        &server,
        "share",
        json!({
            "admin": ADMIN,
            "member": "carol",
            "org": ORG,
            "team": "readers",
            "public": "lighthouse",
            "private": "team/vault",
        }),
    )
    .await;
    assert_steps(
        &lines,
        &[
            "member-cannot-see",
            "look package-settings",
            "made-public",
            "team-granted",
            "look org-settings-packages",
            "member-sees",
            "look forbidden",
            "visitor-sees",
        ],
    );
    // The API agrees: public, and carol reads the private one.
    let public = crate::common::anonymous_client()
        .get(server.url(&format!("/v2/{ORG}/lighthouse/manifests/v1")))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_ne!(
        public.status(),
        404,
        "the public package is visible to anyone"
    );
}

#[tokio::test]
async fn pages_read_without_javascript() {
    let server = Server::start();
    let world = World::new(&server);
    publisher(&server, &world, "mona", &["lighthouse", "strongbox"]).await;
    world
        .visibility(&format!("{ORG}/lighthouse"), "public")
        .await;

    let lines = run_flow(
        &server,
        "nojs",
        json!({
            "login": "mona",
            "org": ORG,
            "public": "lighthouse",
            "private": "strongbox",
            "read_package": true,
        }),
    )
    .await;
    assert_steps(
        &lines,
        &["visitor-reads-tab", "user-reads-tab", "user-reads-package"],
    );
}

#[tokio::test]
async fn a_token_made_in_the_settings_is_shown_once_and_pushes_with_skopeo() {
    require("skopeo");
    require("umoci");
    let server = Server::start();
    let world = World::new(&server);
    world.user("mona").member("member").await;
    set_password(&server, "mona");

    let lines = run_flow(
        &server,
        "token",
        json!({ "login": "mona", "note": "ci push", "scope": "write:packages" }),
    )
    .await;
    assert_steps(
        &lines,
        &[
            "look settings-token-new",
            "look settings-token-created",
            "secret-copied",
            "secret-shown-once",
        ],
    );
    let secret = lines
        .iter()
        .find_map(|line| line.strip_prefix("secret "))
        .expect("the flow prints the secret it was shown");

    let (_keep, dir) = temp_path();
    let layout = dir.join("layout");
    let layout = layout.to_str().unwrap();
    run(Command::new("umoci").args(["init", "--layout", layout]));
    run(Command::new("umoci").args(["new", "--image", &format!("{layout}:v1")]));
    run(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &format!("mona:{secret}"),
        &format!("oci:{layout}:v1"),
        &format!("docker://{}/{ORG}/from-the-browser:v1", server.host),
    ]));
    // Pushed as mona: the package exists and she, its publisher, administers it.
    let package = client_with_token(secret)
        .get(server.url(&format!(
            "/api/v3/orgs/{ORG}/packages/container/from-the-browser"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(
        package.status(),
        200,
        "the token's push created the package"
    );
}

#[tokio::test]
async fn a_webhook_added_in_the_settings_logs_a_delivery_redelivered_from_its_page() {
    let server = Server::start_with(&[LOOPBACK]);
    let world = World::new(&server);
    let token = world.user("mona").await;
    set_password(&server, "mona");
    let receiver = Receiver::start().await;

    // When the form has made the hook (Berth pings it), mona publishes a package; the flow
    // finds its delivery in the hook's log.
    let publish = async {
        receiver
            .wait_for("the new hook's ping", |got| {
                got.iter().any(|r| r.event() == "ping")
            })
            .await;
        push_versions(&server, &login("mona", &token), "mona/app", 1).await;
    };
    let lines = run_flow_beside(
        &server,
        "webhook",
        json!({ "login": "mona", "url": receiver.url(), "package": "app" }),
        publish,
    )
    .await;
    assert_steps(
        &lines,
        &[
            "look settings-hook-new",
            "hook-created",
            "delivery-logged",
            "look settings-hook",
            "redelivered",
            "look settings-hooks",
        ],
    );
    let events = receiver.package_events("package");
    assert_eq!(events.len(), 2, "the delivery and its redelivery");
    assert_eq!(
        events[0].header("x-github-delivery"),
        events[1].header("x-github-delivery"),
        "the page redelivered the same delivery"
    );
}
