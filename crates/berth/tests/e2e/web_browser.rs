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
    ORG, Server, client_with_token, login, push_versions, require, run, temp_path,
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

#[tokio::test]
async fn a_user_signs_in_reads_and_searches_the_packages_tab() {
    let server = Server::start();
    let world = World::new(&server);
    publisher(&server, &world, "mona", &["team/api", "team/worker", "web"]).await;

    let lines = run_flow(
        &server,
        "packages",
        json!({
            "login": "mona",
            "org": ORG,
            "search": "team",
            "found": ["team/api", "team/worker"],
            "hidden": ["web"],
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
            "look not-found",
            "sign-out",
        ],
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
        json!({ "login": "mona", "org": ORG, "public": "lighthouse", "private": "strongbox" }),
    )
    .await;
    assert_steps(&lines, &["visitor-reads-tab", "user-reads-tab"]);
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
