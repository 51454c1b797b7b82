//! The web UI's package pages over HTTP: the package page, all versions with their filter,
//! deleting and restoring versions through the forms, and the settings page — each checked
//! against what the API and the registry then answer.

use serde_json::{Value, json};

use crate::common::web::WebClient;
use crate::common::world::World;
use crate::common::{ADMIN, ORG, Server, client, digest, push_blob, push_image, put_manifest};

/// `sha256:` and the first 12 hex digits, as the pages print a digest.
fn short(digest: &str) -> String {
    digest[..7 + 12].to_owned()
}

/// The live versions of `acme/<package>` over the API (as the site administrator).
async fn api_versions(world: &World<'_>, package: &str) -> Vec<Value> {
    let path = format!(
        "/orgs/{ORG}/packages/container/{}/versions",
        package.replace('/', "%2F")
    );
    world
        .admin()
        .ok("GET", &path, None)
        .await
        .as_array()
        .unwrap()
        .clone()
}

/// The status a registry GET of `acme/<package>:<tag>` answers the site administrator.
async fn manifest_status(server: &Server, package: &str, tag: &str) -> u16 {
    client()
        .get(server.url(&format!("/v2/{ORG}/{package}/manifests/{tag}")))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn package_visibility(world: &World<'_>, package: &str) -> String {
    let path = format!("/orgs/{ORG}/packages/container/{package}");
    world.admin().ok("GET", &path, None).await["visibility"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn web_package_page_of_a_nested_package_shows_the_pull_command_and_tags() {
    let server = Server::start();
    let (digest, _) = push_image(&server, &format!("{ORG}/api/worker"), "v1", b"worker").await;
    let mut admin = WebClient::signed_in(&server, ADMIN).await;

    let page = admin
        .get(&format!(
            "/orgs/{ORG}/packages/container/package/api%2Fworker"
        ))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let host = server.base.split_once("://").unwrap().1;
    let pull = format!("docker pull {host}/{ORG}/api/worker:v1");
    assert!(
        page.has(&pull),
        "the pull command of the newest tag: {}",
        page.body
    );
    assert!(
        page.has(&format!("data-copy=\"{pull}\"")),
        "with a copy button"
    );
    assert!(page.has(">v1</span>") || page.has(" v1</span>"), "its tag");
    assert!(page.has(&short(&digest)), "the digest's short form");
    assert!(
        page.has("Package settings"),
        "its admin sees the settings link"
    );

    // A raw `/` in the name is the same page.
    let raw = admin
        .get(&format!(
            "/orgs/{ORG}/packages/container/package/api/worker"
        ))
        .await;
    assert_eq!(raw.status, 200);
    assert!(raw.has(&pull));
    // Filed under the wrong account kind, it is missing.
    let wrong = admin
        .get(&format!(
            "/users/{ORG}/packages/container/package/api%2Fworker"
        ))
        .await;
    assert_eq!(wrong.status, 404);
}

#[tokio::test]
async fn web_anonymous_sees_a_public_package_and_the_same_404_for_private_and_missing() {
    let server = Server::start();
    let world = World::new(&server);
    push_image(&server, &format!("{ORG}/open"), "v1", b"open").await;
    push_image(&server, &format!("{ORG}/hidden"), "v1", b"hidden").await;
    world.visibility(&format!("{ORG}/open"), "public").await;

    let mut visitor = WebClient::anonymous(&server);
    let open = visitor
        .get(&format!("/orgs/{ORG}/packages/container/package/open"))
        .await;
    assert_eq!(open.status, 200);
    assert!(open.has("docker pull"));
    assert!(
        !open.has("Package settings"),
        "visitors are shown no settings link"
    );

    let hidden = visitor
        .get(&format!("/orgs/{ORG}/packages/container/package/hidden"))
        .await;
    let missing = visitor
        .get(&format!(
            "/orgs/{ORG}/packages/container/package/nothing-here"
        ))
        .await;
    assert_eq!(hidden.status, 404);
    assert_eq!(missing.status, 404);
    assert_eq!(
        hidden.body, missing.body,
        "a private package answers exactly what a missing one does"
    );
    for path in ["versions", "settings"] {
        let hidden = visitor
            .get(&format!("/orgs/{ORG}/packages/container/hidden/{path}"))
            .await;
        let missing = visitor
            .get(&format!(
                "/orgs/{ORG}/packages/container/nothing-here/{path}"
            ))
            .await;
        assert_eq!((hidden.status, missing.status), (404, 404), "{path}");
        assert_eq!(hidden.body, missing.body, "{path}");
    }
}

#[tokio::test]
async fn web_versions_filter_tagged_and_untagged_in_the_store() {
    let server = Server::start();
    let (old, _) = push_image(&server, &format!("{ORG}/app"), "v1", b"first").await;
    // The tag moves: the first version is untagged now.
    let (new, _) = push_image(&server, &format!("{ORG}/app"), "v1", b"second").await;
    let mut admin = WebClient::signed_in(&server, ADMIN).await;
    let base = format!("/orgs/{ORG}/packages/container/app/versions");

    let all = admin.get(&base).await;
    assert_eq!(all.status, 200);
    assert!(all.has(&short(&old)) && all.has(&short(&new)));
    let untagged = admin
        .get(&format!("{base}?filters%5Bversion_type%5D=untagged"))
        .await;
    assert!(untagged.has(&short(&old)), "{}", untagged.body);
    assert!(!untagged.has(&short(&new)));
    assert!(untagged.has("1 untagged versions"), "counted in the store");
    let tagged = admin
        .get(&format!("{base}?filters%5Bversion_type%5D=tagged"))
        .await;
    assert!(tagged.has(&short(&new)) && !tagged.has(&short(&old)));
    let unknown = admin
        .get(&format!("{base}?filters%5Bversion_type%5D=sideways"))
        .await;
    assert_eq!(unknown.status, 422);
}

#[tokio::test]
async fn web_a_version_is_deleted_then_restored_through_the_forms() {
    let server = Server::start();
    let world = World::new(&server);
    let (digest, _) = push_image(&server, &format!("{ORG}/app"), "v1", b"app").await;
    let id = api_versions(&world, "app").await[0]["id"].as_i64().unwrap();
    let mut admin = WebClient::signed_in(&server, ADMIN).await;
    let versions = format!("/orgs/{ORG}/packages/container/app/versions");

    // The version's own page, where the API's `html_url` points.
    let html_url = api_versions(&world, "app").await[0]["html_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = html_url.strip_prefix(&server.base).unwrap();
    let own = admin.get(path).await;
    assert_eq!(own.status, 200, "{path}");
    assert!(own.has(&short(&digest)));

    let page = admin.get(&versions).await;
    assert!(
        page.has(&format!("href=\"{path}\"")),
        "the list links each version to its own page"
    );
    let delete = format!("{versions}/{id}/delete");
    assert!(page.has(&format!("action=\"{delete}\"")), "{}", page.body);
    let deleted = admin.post(&delete, &[]).await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    assert_eq!(deleted.location(), Some(versions.as_str()));
    assert_eq!(manifest_status(&server, "app", "v1").await, 404);
    assert!(api_versions(&world, "app").await.is_empty());
    let flashed = admin.get(&versions).await;
    assert!(flashed.has("was deleted"), "the flash says what happened");

    let gone = admin.get(&format!("{versions}?state=deleted")).await;
    assert!(gone.has(&short(&digest)));
    let restore = format!("{versions}/{id}/restore");
    assert!(gone.has(&format!("action=\"{restore}\"")));
    let restored = admin.post(&restore, &[]).await;
    assert_eq!(restored.status, 303, "{}", restored.body);
    assert_eq!(manifest_status(&server, "app", "v1").await, 200);
    assert_eq!(api_versions(&world, "app").await.len(), 1);
}

#[tokio::test]
async fn web_a_reader_gets_403_and_an_outsider_404_and_nothing_changes() {
    let server = Server::start();
    let world = World::new(&server);
    world.user("bob").member("member").await;
    world.user("eve").await;
    push_image(&server, &format!("{ORG}/app"), "v1", b"app").await;
    world
        .package(
            "PUT",
            &format!("{ORG}/app"),
            "/collaborators/bob",
            json!({ "role": "read" }),
        )
        .await;
    let id = api_versions(&world, "app").await[0]["id"].as_i64().unwrap();
    let prefix = format!("/orgs/{ORG}/packages/container/app");

    let mut bob = WebClient::signed_in(&server, "bob").await;
    let page = bob
        .get(&format!("/orgs/{ORG}/packages/container/package/app"))
        .await;
    assert_eq!(page.status, 200, "a reader sees the package");
    assert!(!page.has("Package settings"));
    let versions = bob.get(&format!("{prefix}/versions")).await;
    assert!(
        !versions.has("/delete\""),
        "a reader is shown no delete button"
    );
    assert_eq!(bob.get(&format!("{prefix}/settings")).await.status, 403);
    let delete = bob
        .post(&format!("{prefix}/versions/{id}/delete"), &[])
        .await;
    assert_eq!(delete.status, 403);
    for (action, fields) in [
        (
            "visibility",
            vec![("visibility", "public"), ("confirm_name", "app")],
        ),
        ("delete", vec![("confirm_name", "app")]),
        ("access", vec![("grantee", "bob"), ("role", "admin")]),
    ] {
        let answer = bob
            .post(&format!("{prefix}/settings/{action}"), &fields)
            .await;
        assert_eq!(answer.status, 403, "{action}: {}", answer.body);
    }

    let mut eve = WebClient::signed_in(&server, "eve").await;
    eve.get(&format!("/{}", "eve")).await;
    assert_eq!(eve.get(&format!("{prefix}/settings")).await.status, 404);
    let delete = eve
        .post(&format!("{prefix}/versions/{id}/delete"), &[])
        .await;
    assert_eq!(delete.status, 404);
    let settings = eve
        .post(
            &format!("{prefix}/settings/visibility"),
            &[("visibility", "public"), ("confirm_name", "app")],
        )
        .await;
    assert_eq!(settings.status, 404);

    assert_eq!(
        api_versions(&world, "app").await.len(),
        1,
        "nothing deleted"
    );
    assert_eq!(package_visibility(&world, "app").await, "private");
    assert_eq!(manifest_status(&server, "app", "v1").await, 200);
}

#[tokio::test]
async fn web_a_forged_post_without_the_csrf_token_changes_nothing() {
    let server = Server::start();
    let world = World::new(&server);
    push_image(&server, &format!("{ORG}/app"), "v1", b"app").await;
    let id = api_versions(&world, "app").await[0]["id"].as_i64().unwrap();
    let prefix = format!("/orgs/{ORG}/packages/container/app");
    let mut admin = WebClient::signed_in(&server, ADMIN).await;

    let forged = admin
        .post_raw(&format!("{prefix}/versions/{id}/delete"), &[])
        .await;
    assert_eq!(forged.status, 403);
    let forged = admin
        .post_raw(
            &format!("{prefix}/settings/visibility"),
            &[
                ("visibility", "public"),
                ("confirm_name", "app"),
                ("authenticity_token", "not-the-token"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(api_versions(&world, "app").await.len(), 1);
    assert_eq!(package_visibility(&world, "app").await, "private");
}

#[tokio::test]
async fn web_making_a_package_public_needs_its_typed_name() {
    let server = Server::start();
    let world = World::new(&server);
    push_image(&server, &format!("{ORG}/app"), "v1", b"app").await;
    let prefix = format!("/orgs/{ORG}/packages/container/app");
    let mut admin = WebClient::signed_in(&server, ADMIN).await;
    let settings = admin.get(&format!("{prefix}/settings")).await;
    assert_eq!(settings.status, 200);
    assert!(settings.has("data-confirm-name=\"app\""));

    let untyped = admin
        .post(
            &format!("{prefix}/settings/visibility"),
            &[("visibility", "public"), ("confirm_name", "ap")],
        )
        .await;
    assert_eq!(untyped.status, 303);
    assert_eq!(package_visibility(&world, "app").await, "private");
    let mut visitor = WebClient::anonymous(&server);
    let page = format!("/orgs/{ORG}/packages/container/package/app");
    assert_eq!(visitor.get(&page).await.status, 404);
    let said = admin.get(&format!("{prefix}/settings")).await;
    assert!(
        said.has("Type the package&#x27;s name") || said.has("Type the package"),
        "{}",
        said.body
    );

    let typed = admin
        .post(
            &format!("{prefix}/settings/visibility"),
            &[("visibility", "public"), ("confirm_name", "app")],
        )
        .await;
    assert_eq!(typed.status, 303);
    assert_eq!(package_visibility(&world, "app").await, "public");
    assert_eq!(visitor.get(&page).await.status, 200);

    // Public is final, as on GitHub.
    admin.get(&format!("{prefix}/settings")).await;
    let back = admin
        .post(
            &format!("{prefix}/settings/visibility"),
            &[("visibility", "private")],
        )
        .await;
    assert_eq!(back.status, 303);
    assert_eq!(package_visibility(&world, "app").await, "public");
}

#[tokio::test]
async fn web_granting_a_team_read_lets_its_members_see_the_private_package() {
    let server = Server::start();
    let world = World::new(&server);
    world.user("carol").member("member").await;
    world.team("readers", json!({})).await;
    world
        .admin()
        .ok(
            "PUT",
            &format!("/orgs/{ORG}/teams/readers/memberships/carol"),
            Some(json!({ "role": "member" })),
        )
        .await;
    push_image(&server, &format!("{ORG}/app"), "v1", b"app").await;
    let page = format!("/orgs/{ORG}/packages/container/package/app");
    let prefix = format!("/orgs/{ORG}/packages/container/app");

    let mut carol = WebClient::signed_in(&server, "carol").await;
    assert_eq!(carol.get(&page).await.status, 404, "not granted yet");

    let mut admin = WebClient::signed_in(&server, ADMIN).await;
    admin.get(&format!("{prefix}/settings")).await;
    let granted = admin
        .post(
            &format!("{prefix}/settings/access"),
            &[
                ("grantee_kind", "team"),
                ("grantee", "readers"),
                ("role", "read"),
            ],
        )
        .await;
    assert_eq!(granted.status, 303, "{}", granted.body);
    let settings = admin.get(&format!("{prefix}/settings")).await;
    assert!(settings.has("team readers"), "the grant is listed");

    let seen = carol.get(&page).await;
    assert_eq!(seen.status, 200);
    assert!(seen.has("docker pull"));
    assert!(!seen.has("Package settings"), "read is no admin");
}

#[tokio::test]
async fn web_versions_show_platforms_attestations_and_referrers() {
    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    let server = Server::start();
    let world = World::new(&server);
    let repo = format!("{ORG}/multi");
    let (image, image_bytes) = push_image(&server, &repo, "amd64", b"amd64 layer").await;
    let (attestation, attestation_bytes) =
        push_image(&server, &repo, "provenance", b"in-toto statement").await;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": image, "size": image_bytes.len(),
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": attestation, "size": attestation_bytes.len(),
             "platform": {"os": "unknown", "architecture": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                             "vnd.docker.reference.digest": image}},
        ],
    }))
    .unwrap();
    let index_digest = digest(&index);
    put_manifest(&server, &repo, "v1", OCI_INDEX, &index).await;
    // A signature of the index, found through the referrers the registry keeps.
    let config = b"{}".to_vec();
    push_blob(&server, &repo, config.clone()).await;
    let signature = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [],
        "subject": {"mediaType": OCI_INDEX, "digest": index_digest, "size": index.len()},
    }))
    .unwrap();
    let signature_digest = digest(&signature);
    put_manifest(&server, &repo, &signature_digest, OCI_MANIFEST, &signature).await;

    let mut admin = WebClient::signed_in(&server, ADMIN).await;
    let page = admin
        .get(&format!(
            "/orgs/{ORG}/packages/container/multi/versions?filters%5Bversion_type%5D=tagged"
        ))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.has(">linux/amd64<"), "{}", page.body);
    assert!(
        page.has(">attestation<"),
        "an attestation manifest is no platform"
    );
    assert!(!page.has("unknown/unknown"));
    assert!(page.has("Signatures:"), "referrers grouped by kind");
    assert!(page.has(&short(&signature_digest)));

    // The API shows the same platforms, in its own shape.
    let versions = api_versions(&world, "multi").await;
    let listed = versions
        .iter()
        .find(|v| v["name"] == index_digest.as_str())
        .expect("the index is a version");
    assert_eq!(
        listed["berth"]["platforms"],
        json!(["linux/amd64", "attestation"])
    );
}

#[tokio::test]
async fn web_settings_link_a_repository_give_actions_access_and_delete_then_restore() {
    let server = Server::start();
    let world = World::new(&server);
    world.repo("app-src", "private").await;
    push_image(&server, &format!("{ORG}/app"), "v1", b"app").await;
    let prefix = format!("/orgs/{ORG}/packages/container/app");
    let mut admin = WebClient::signed_in(&server, ADMIN).await;
    admin.get(&format!("{prefix}/settings")).await;

    let linked = admin
        .post(
            &format!("{prefix}/settings/link"),
            &[("repository", "app-src")],
        )
        .await;
    assert_eq!(linked.status, 303, "{}", linked.body);
    let job = admin
        .post(
            &format!("{prefix}/settings/job-access"),
            &[("repository", "app-src"), ("role", "write")],
        )
        .await;
    assert_eq!(job.status, 303);
    let settings = admin.get(&format!("{prefix}/settings")).await;
    assert!(
        settings.has(&format!("Linked to <a href=\"/{ORG}/app-src\">")),
        "{}",
        settings.body
    );
    assert!(settings.has("app-src — write"));
    assert!(
        settings.has("name=\"inherit\" checked"),
        "a new link inherits"
    );
    let package = world
        .admin()
        .ok("GET", &format!("/orgs/{ORG}/packages/container/app"), None)
        .await;
    assert_eq!(package["repository"]["name"], "app-src");

    let untyped = admin
        .post(
            &format!("{prefix}/settings/delete"),
            &[("confirm_name", "")],
        )
        .await;
    assert_eq!(untyped.status, 303);
    assert_eq!(
        manifest_status(&server, "app", "v1").await,
        200,
        "not deleted"
    );
    admin.get(&format!("{prefix}/settings")).await;
    let deleted = admin
        .post(
            &format!("{prefix}/settings/delete"),
            &[("confirm_name", "app")],
        )
        .await;
    assert_eq!(deleted.status, 303);
    world
        .admin()
        .expect(
            "GET",
            &format!("/orgs/{ORG}/packages/container/app"),
            None,
            404,
        )
        .await;
    let settings = admin.get(&format!("{prefix}/settings")).await;
    assert!(settings.has("Restore this package"), "{}", settings.body);
    let restored = admin.post(&format!("{prefix}/settings/restore"), &[]).await;
    assert_eq!(restored.status, 303);
    assert_eq!(manifest_status(&server, "app", "v1").await, 200);
}

#[tokio::test]
async fn web_package_page_shows_the_description_and_license_labels() {
    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    let server = Server::start();
    let repo = format!("{ORG}/labelled");
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let config_digest = push_blob(&server, &repo, config.clone()).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [],
        "annotations": {
            "org.opencontainers.image.description": "Serves the labelled API",
            "org.opencontainers.image.licenses": "Apache-2.0",
        }
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    put_manifest(&server, &repo, "v1", OCI_MANIFEST, &bytes).await;
    let mut admin = WebClient::signed_in(&server, ADMIN).await;
    let page = admin
        .get(&format!("/orgs/{ORG}/packages/container/package/labelled"))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.has("Serves the labelled API"),
        "the description: {}",
        page.body
    );
    assert!(page.has("Apache-2.0"), "the license");
}
