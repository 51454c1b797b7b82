//! GitHub's own JavaScript client against Berth: `@octokit/rest` (installed in
//! `tests/node`) drives the Packages API and the organization webhooks API through its own
//! methods (`tests/node/octokit.mjs`), paginating by GitHub's `Link` header and verifying
//! deliveries with `@octokit/webhooks-methods`. This module seeds the server and judges the
//! script by its exit status and the steps it reports.

use std::path::Path;
use std::process::Command;

use crate::common::world::World;
use crate::common::{Server, login, push_versions};
use crate::webhooks::LOOPBACK;

/// The organization octokit works in.
const ORG: &str = "octo";
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
