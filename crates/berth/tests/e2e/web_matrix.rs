//! The web UI's permission matrix over HTTP: for every kind of viewer and every visibility,
//! the Packages tab, the package page, the versions page, the package settings page and a
//! version's delete form show exactly what the access rules allow — and what a viewer may not
//! see answers the very 404 page a missing package answers, byte for byte.
//!
//! The expectations are written by hand from the rules (`decide`: users read internal
//! packages, roles read/write/admin, deleting and settings need the admin role, site
//! administrators manage everything), never computed by calling them. A refused form changes
//! nothing (checked through the API); a form without its CSRF token is refused even for an
//! admin. Every wrong cell is collected and the whole observed matrix printed before failing.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::common::web::WebClient;
use crate::common::world::World;
use crate::common::{ORG, Server, push_image};

/// The packages: name and visibility.
const PACKAGES: [(&str, &str); 3] = [("priv", "private"), ("int", "internal"), ("pub", "public")];
/// A package nobody has: what invisible ones must look exactly like.
const MISSING: &str = "does-not-exist";

/// Viewers and, per package (priv, int, pub), what they may do: `-` nothing (404), `R` read
/// the pages, `A` read and administer (settings, delete).
const EXPECTED: [(&str, [char; 3]); 7] = [
    ("anonymous", ['-', '-', 'R']),
    // Not a member of the organization, no role: users read internal packages.
    ("nora", ['-', 'R', 'R']),
    // A member without a role on any package.
    ("mark", ['-', 'R', 'R']),
    // Read, write and admin roles on every package.
    ("rita", ['R', 'R', 'R']),
    ("wendy", ['R', 'R', 'R']),
    ("adam", ['A', 'A', 'A']),
    // A site administrator who belongs to no organization.
    ("sam", ['A', 'A', 'A']),
];

fn page_url(package: &str) -> String {
    format!("/orgs/{ORG}/packages/container/package/{package}")
}

fn versions_url(package: &str) -> String {
    format!("/orgs/{ORG}/packages/container/{package}/versions")
}

fn settings_url(package: &str) -> String {
    format!("/orgs/{ORG}/packages/container/{package}/settings")
}

/// The live versions of `package` (`acme/<name>`), through the API.
async fn api_versions(world: &World<'_>, package: &str) -> Vec<Value> {
    let (owner, name) = package.split_once('/').expect("owner/name");
    let path = format!("/orgs/{owner}/packages/container/{name}/versions");
    world
        .admin()
        .ok("GET", &path, None)
        .await
        .as_array()
        .expect("a list of versions")
        .clone()
}

/// The id of the only version of `package`.
async fn version_id(world: &World<'_>, package: &str) -> i64 {
    api_versions(world, package).await[0]["id"]
        .as_i64()
        .expect("a version id")
}

/// How many live versions `package` has.
async fn live_versions(world: &World<'_>, package: &str) -> usize {
    api_versions(world, package).await.len()
}

#[tokio::test]
async fn every_viewer_sees_and_does_exactly_what_the_rules_allow() {
    let server = Server::start_with(&[("BERTH_AUTH_FAILURES_PER_MINUTE", "1000000")]);
    let world = World::new(&server);
    world.user("nora").await;
    for (login, role) in [
        ("mark", "member"),
        ("rita", "member"),
        ("wendy", "member"),
        ("adam", "member"),
    ] {
        world.user(login).member(role).await;
    }
    server.admin(&["create-user", "sam", "--site-admin"]);
    for (package, visibility) in PACKAGES {
        let name = format!("{ORG}/{package}");
        push_image(&server, &name, "v1", package.as_bytes()).await;
        world.visibility(&name, visibility).await;
        for (login, role) in [("rita", "read"), ("wendy", "write"), ("adam", "admin")] {
            world
                .package(
                    "PUT",
                    &name,
                    &format!("/collaborators/{login}"),
                    json!({ "role": role }),
                )
                .await;
        }
    }

    let mut wrong = Vec::new();
    let mut observed: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (viewer, allowed) in EXPECTED {
        let mut web = if viewer == "anonymous" {
            WebClient::anonymous(&server)
        } else {
            WebClient::signed_in(&server, viewer).await
        };
        // What a missing package looks like to this viewer.
        let missing_page = web.get(&page_url(MISSING)).await;
        assert_eq!(missing_page.status, 404, "{viewer}: a missing package");
        let missing_versions = web.get(&versions_url(MISSING)).await;
        let missing_settings = web.get(&settings_url(MISSING)).await;

        let tab = web.get(&format!("/orgs/{ORG}/packages")).await;
        assert_eq!(tab.status, 200, "{viewer}: the Packages tab");
        let mut cells = Vec::new();
        for (index, (package, _)) in PACKAGES.iter().enumerate() {
            let expected = allowed[index];
            let mut cell = String::new();
            let mut check = |what: &str, ok: bool, got: String| {
                cell.push_str(&got);
                if !ok {
                    wrong.push(format!("{viewer} × {package}: {what}: got {got}"));
                }
            };

            // The tab lists it exactly when the viewer may read it.
            let listed = tab.has(&format!("/package/{package}\""));
            check(
                "listed on the Packages tab",
                listed == (expected != '-'),
                if listed { "L".into() } else { "l".into() },
            );

            for (what, url, missing) in [
                ("package page", page_url(package), &missing_page),
                ("versions page", versions_url(package), &missing_versions),
            ] {
                let page = web.get(&url).await;
                match expected {
                    '-' => check(
                        what,
                        page.status == 404 && page.body == missing.body,
                        format!(
                            " {}{}",
                            page.status,
                            if page.body == missing.body {
                                "="
                            } else {
                                "≠"
                            }
                        ),
                    ),
                    _ => check(
                        what,
                        page.status == 200 && page.has(package),
                        format!(" {}", page.status),
                    ),
                }
            }

            let settings = web.get(&settings_url(package)).await;
            let settings_ok = match expected {
                'A' => settings.status == 200 && settings.has("visibility"),
                // Settings are for signed-in admins: a visitor is told nothing more.
                'R' if viewer == "anonymous" => {
                    settings.status == 404 && settings.body == missing_settings.body
                }
                'R' => settings.status == 403,
                _ => settings.status == 404 && settings.body == missing_settings.body,
            };
            check(
                "settings page",
                settings_ok,
                format!(" s{}", settings.status),
            );

            // The delete form of its version: admins delete (and restore, so the next viewer
            // finds it again); everyone else is refused and nothing changes.
            let id = version_id(&world, &format!("{ORG}/{package}")).await;
            let delete = format!("{}/{id}/delete", versions_url(package));
            if web.csrf.is_none() {
                web.get("/login").await;
            }
            let posted = web.post(&delete, &[]).await;
            let left = live_versions(&world, &format!("{ORG}/{package}")).await;
            match expected {
                'A' => {
                    check(
                        "delete form",
                        posted.status == 303 && left == 0,
                        format!(" d{}/{left}", posted.status),
                    );
                    let restore = format!("{}/{id}/restore", versions_url(package));
                    let restored = web.post(&restore, &[]).await;
                    let back = live_versions(&world, &format!("{ORG}/{package}")).await;
                    check(
                        "restore form",
                        restored.status == 303 && back == 1,
                        format!(" r{}/{back}", restored.status),
                    );
                }
                'R' if viewer == "anonymous" => check(
                    "delete form",
                    posted.status == 404 && left == 1,
                    format!(" d{}/{left}", posted.status),
                ),
                'R' => check(
                    "delete form",
                    posted.status == 403 && left == 1,
                    format!(" d{}/{left}", posted.status),
                ),
                _ => check(
                    "delete form",
                    posted.status == 404 && left == 1,
                    format!(" d{}/{left}", posted.status),
                ),
            }
            cells.push(cell);
        }
        // A forged post (no CSRF token) is refused whoever sends it, and changes nothing.
        let id = version_id(&world, &format!("{ORG}/pub")).await;
        let forged = web
            .post_raw(&format!("{}/{id}/delete", versions_url("pub")), &[])
            .await;
        let left = live_versions(&world, &format!("{ORG}/pub")).await;
        if forged.status != 403 || left != 1 {
            wrong.push(format!(
                "{viewer}: a forged delete answered {} and left {left} versions",
                forged.status
            ));
        }
        let forged = web
            .post_raw(
                &format!("{}/visibility", settings_url("priv")),
                &[("visibility", "public"), ("confirm_name", "priv")],
            )
            .await;
        if forged.status != 403 {
            wrong.push(format!(
                "{viewer}: a forged visibility change answered {}",
                forged.status
            ));
        }
        observed.insert(viewer, cells);
    }
    // No refused or forged post made the private package public.
    let private = world
        .admin()
        .ok("GET", &format!("/orgs/{ORG}/packages/container/priv"), None)
        .await;
    assert_eq!(private["visibility"], "private");

    if !wrong.is_empty() {
        let mut table = String::new();
        for (viewer, cells) in &observed {
            let _ = writeln!(table, "{viewer:>9}: {}", cells.join(" | "));
        }
        panic!(
            "{} wrong cells:\n{}\nobserved (L listed; page, versions; s settings; d delete status/versions left; r restore):\n{table}",
            wrong.len(),
            wrong.join("\n")
        );
    }
}
