//! The web UI in a real browser: Debian's headless Chromium, driven by `playwright-core`
//! through whole user journeys (`tests/node/browser/flows.mjs`, one named flow per test).
//! Each test starts its own server, seeds it through the API and the registry, then runs its
//! flow with the logins, names and expectations in `BERTH_FLOW` and judges it by its exit
//! status. Every page a flow visits is checked by axe-core (serious and critical violations
//! fail) and screenshot; with `BERTH_UPDATE_SCREENSHOTS=1` the screenshots land in
//! `docs/screenshots/` (README's "Web UI" shows them), else in a temporary directory.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::web::{PASSWORD, set_password};
use crate::common::world::World;
use crate::common::{ORG, Server, login, push_versions};

/// Runs flow `flow` of `flows.mjs` against `server` with `args`; asserts it succeeds and
/// answers its `ok …` lines.
async fn run_flow(server: &Server, flow: &str, args: Value) -> Vec<String> {
    let node_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    let (_keep, shots) = screenshot_dir();
    let output = tokio::process::Command::new("node")
        .arg("browser/flows.mjs")
        .arg(flow)
        .current_dir(&node_dir)
        .env("BERTH_URL", &server.base)
        .env("BERTH_PASSWORD", PASSWORD)
        .env("BERTH_SCREENSHOTS", &shots)
        .env("BERTH_FLOW", args.to_string())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run node (scripts/test installs it, playwright-core and chromium)");
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
/// package of her own (`{user}/tool`).
async fn publisher(server: &Server, world: &World<'_>, user: &str, packages: &[&str]) {
    let token = world.user(user).member("member").await;
    set_password(server, user);
    let http = login(user, &token);
    for package in packages {
        push_versions(server, &http, &format!("{ORG}/{package}"), 1).await;
    }
    push_versions(server, &http, &format!("{user}/tool"), 1).await;
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
