//! Linking a package to its source repository from the `org.opencontainers.image.source`
//! label or annotation of a push, over real HTTP: who can then pull it, and what is ignored.

use crate::common::meta::link_of;
use crate::common::{
    Server, client_with_token, digest, expect_error, push_blob, push_blob_with, put_manifest,
};
use serde_json::json;

const SOURCE: &str = "org.opencontainers.image.source";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Tokens of the people around repository `acme/app`.
struct People {
    /// Collaborator (read) on `acme/app`, token `read:packages,repo`.
    bob: String,
    /// The same bob, token `read:packages` only.
    bob_without_repo: String,
    /// No relation to anything, token `read:packages,repo`.
    carol: String,
}

/// Creates the private org repository `acme/app` with collaborator bob (read), and carol.
fn people(server: &Server) -> People {
    let created = server.admin(&["create-repo", "acme/app"]);
    assert!(
        created.contains("acme/app") && created.contains("private"),
        "{created}"
    );
    let bob = server.admin(&["create-user", "bob", "--token-scopes", "read:packages,repo"]);
    let added = server.admin(&["add-collaborator", "acme/app", "bob", "--role", "read"]);
    assert!(added.contains("bob") && added.contains("read"), "{added}");
    let bob_without_repo = server.admin(&["create-token", "bob", "--scopes", "read:packages"]);
    let carol = server.admin(&[
        "create-user",
        "carol",
        "--token-scopes",
        "read:packages,repo",
    ]);
    People {
        bob,
        bob_without_repo,
        carol,
    }
}

/// Pushes (as the admin) a one-layer image whose config carries `label` as its source label
/// and whose manifest carries `annotation` as its source annotation.
async fn push_image(
    server: &Server,
    repo: &str,
    tag: &str,
    label: Option<&str>,
    annotation: Option<&str>,
) {
    let layer = format!("layer of {repo}:{tag}").into_bytes();
    let mut config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [digest(&layer)]},
    });
    if let Some(label) = label {
        config["config"]["Labels"] = json!({ SOURCE: label, "other": "label" });
    }
    let config = serde_json::to_vec(&config).expect("json");
    let config_digest = push_blob(server, repo, config.clone()).await;
    let layer_digest = push_blob(server, repo, layer.clone()).await;
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    });
    if let Some(annotation) = annotation {
        manifest["annotations"] = json!({ SOURCE: annotation });
    }
    let bytes = serde_json::to_vec(&manifest).expect("json");
    put_manifest(server, repo, tag, OCI_MANIFEST, &bytes).await;
}

/// Pushes a two-platform image as clients do: children by digest, then the index by `tag`,
/// the source only as the index's annotation.
async fn push_index(server: &Server, repo: &str, tag: &str, annotation: &str) {
    let mut children = Vec::new();
    for arch in ["amd64", "arm64"] {
        let layer = format!("{arch} layer of {repo}").into_bytes();
        let config = serde_json::to_vec(&json!({
            "architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [digest(&layer)]},
        }))
        .expect("json");
        let config_digest = push_blob(server, repo, config.clone()).await;
        let layer_digest = push_blob(server, repo, layer.clone()).await;
        let child = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
        }))
        .expect("json");
        let child_digest = digest(&child);
        put_manifest(server, repo, &child_digest, OCI_MANIFEST, &child).await;
        children.push(json!({
            "mediaType": OCI_MANIFEST, "digest": child_digest, "size": child.len(),
            "platform": {"architecture": arch, "os": "linux"},
        }));
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": children,
        "annotations": { SOURCE: annotation },
    }))
    .expect("json");
    put_manifest(server, repo, tag, OCI_INDEX, &index).await;
}

/// The status of `GET /v2/<repo>/manifests/<tag>` with `token`; 404s must be NAME_UNKNOWN.
async fn pull_status(server: &Server, token: &str, repo: &str, tag: &str) -> u16 {
    let response = client_with_token(token)
        .get(server.url(&format!("/v2/{repo}/manifests/{tag}")))
        .send()
        .await
        .expect("GET manifest");
    let status = response.status().as_u16();
    if status == 404 {
        expect_error(response, 404, "NAME_UNKNOWN").await;
    }
    status
}

#[tokio::test]
async fn a_source_label_links_a_new_package_which_inherits_the_repository_access() {
    let server = Server::start();
    let people = people(&server);
    push_image(
        &server,
        "acme/linked",
        "v1",
        Some("https://github.com/acme/app"),
        None,
    )
    .await;
    assert_eq!(
        link_of(&server, "acme/linked").await,
        Some(("acme/app".into(), true))
    );

    assert_eq!(
        pull_status(&server, &people.bob, "acme/linked", "v1").await,
        200
    );
    // Access inherited from a private repository needs the `repo` scope.
    assert_eq!(
        pull_status(&server, &people.bob_without_repo, "acme/linked", "v1").await,
        404
    );
    assert_eq!(
        pull_status(&server, &people.carol, "acme/linked", "v1").await,
        404
    );
    // Bob reads through the repository; pushing needs write:packages (and the write role).
    let response = client_with_token(&people.bob)
        .post(server.url("/v2/acme/linked/blobs/uploads/"))
        .send()
        .await
        .expect("POST upload");
    expect_error(response, 403, "DENIED").await;
}

#[tokio::test]
async fn a_source_annotation_links_too_in_its_spelling_variants() {
    let server = Server::start();
    let people = people(&server);
    let variants = [
        ("acme/annotated", "https://github.com/acme/app"),
        ("acme/dot-git", "https://github.com/acme/app.git"),
        ("acme/slash", "https://github.com/acme/app/"),
        ("acme/mixed", "http://GitHub.com/Acme/app.git/"),
    ];
    for (package, source) in variants {
        push_image(&server, package, "v1", None, Some(source)).await;
        assert_eq!(
            link_of(&server, package).await,
            Some(("acme/app".into(), true)),
            "{source}"
        );
        assert_eq!(
            pull_status(&server, &people.bob, package, "v1").await,
            200,
            "{source}"
        );
        assert_eq!(
            pull_status(&server, &people.carol, package, "v1").await,
            404,
            "{source}"
        );
    }
    // The manifest's annotation wins over the config's label.
    push_image(
        &server,
        "acme/both",
        "v1",
        Some("https://github.com/acme/nothing-here"),
        Some("https://github.com/acme/app"),
    )
    .await;
    assert_eq!(
        pull_status(&server, &people.bob, "acme/both", "v1").await,
        200
    );
}

#[tokio::test]
async fn a_multi_arch_image_annotated_on_its_index_links_at_its_first_publish() {
    let server = Server::start();
    let people = people(&server);
    push_index(&server, "acme/multi", "v1", "https://github.com/acme/app").await;
    assert_eq!(
        link_of(&server, "acme/multi").await,
        Some(("acme/app".into(), true)),
        "the children pushed by digest before the index are part of the first publish"
    );
    assert_eq!(
        pull_status(&server, &people.bob, "acme/multi", "v1").await,
        200
    );
}

#[tokio::test]
async fn sources_of_other_owners_unknown_repositories_and_other_forges_are_ignored() {
    let server = Server::start();
    let people = people(&server);
    // `other/app` exists and bob collaborates on it, but it is not acme's.
    server.admin(&["create-org", "other", "--owner", "admin"]);
    server.admin(&["create-repo", "other/app"]);
    server.admin(&["add-collaborator", "other/app", "bob", "--role", "read"]);
    let ignored = [
        ("acme/foreign", "https://github.com/other/app"),
        ("acme/unknown", "https://github.com/acme/nope"),
        ("acme/gitlab", "https://gitlab.com/acme/app"),
        ("acme/deep", "https://github.com/acme/app/tree/main"),
        ("acme/garbage", "not a url"),
    ];
    for (package, source) in ignored {
        push_image(&server, package, "v1", Some(source), None).await;
        assert_eq!(link_of(&server, package).await, None, "{source}");
        assert_eq!(
            pull_status(&server, &people.bob, package, "v1").await,
            404,
            "{source}"
        );
    }
}

#[tokio::test]
async fn a_published_package_links_later_without_inheriting_and_a_link_stays() {
    let server = Server::start();
    let people = people(&server);
    server.admin(&["create-repo", "acme/tools"]);
    push_image(&server, "acme/later", "v1", None, None).await;
    assert_eq!(link_of(&server, "acme/later").await, None);

    // Published already: the label links the package, which keeps its own access (as a
    // package connected to a repository after publishing does on GitHub).
    push_image(
        &server,
        "acme/later",
        "v2",
        Some("https://github.com/acme/app"),
        None,
    )
    .await;
    assert_eq!(
        link_of(&server, "acme/later").await,
        Some(("acme/app".into(), false))
    );
    assert_eq!(
        pull_status(&server, &people.bob, "acme/later", "v2").await,
        404
    );

    // A linked package stays linked where it is, whatever later pushes say.
    push_image(
        &server,
        "acme/later",
        "v3",
        Some("https://github.com/acme/tools"),
        None,
    )
    .await;
    assert_eq!(
        link_of(&server, "acme/later").await,
        Some(("acme/app".into(), false))
    );
    push_image(
        &server,
        "acme/new",
        "v1",
        Some("https://github.com/acme/app"),
        None,
    )
    .await;
    push_image(
        &server,
        "acme/new",
        "v2",
        Some("https://github.com/acme/tools"),
        None,
    )
    .await;
    assert_eq!(
        link_of(&server, "acme/new").await,
        Some(("acme/app".into(), true))
    );
}

#[tokio::test]
async fn a_later_push_by_a_writer_who_is_no_package_admin_does_not_link() {
    let server = Server::start();
    people(&server);
    push_image(&server, "acme/written", "v1", None, None).await;
    let wes = server.admin(&["create-user", "wes", "--token-scopes", "write:packages"]);
    let granted = client_with_token(&server.admin_token)
        .put(server.url("/api/v3/orgs/acme/packages/container/written/collaborators/wes"))
        .body(r#"{"role":"write"}"#)
        .send()
        .await
        .expect("grant write");
    let path = "/orgs/acme/packages/container/written/collaborators/wes";
    let granted = crate::common::schema::judged("PUT", path, granted).await;
    assert_eq!(granted.status(), 204);

    // Wes may push, but a link would let `acme/app`'s job tokens in: only admins link.
    let wes_http = client_with_token(&wes);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": {SOURCE: "https://github.com/acme/app"}},
    }))
    .expect("json");
    let pushed = push_blob_with(&wes_http, &server, "acme/written", config.clone()).await;
    assert_eq!(pushed.status(), 201);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [],
    });
    let put = wes_http
        .put(server.url("/v2/acme/written/manifests/v2"))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.to_string())
        .send()
        .await
        .expect("put manifest");
    assert_eq!(put.status(), 201);
    assert_eq!(link_of(&server, "acme/written").await, None);
}

#[tokio::test]
async fn the_forge_is_configurable() {
    let server = Server::start_with(&[("BERTH_FORGE_URL", "https://git.example.com/")]);
    let people = people(&server);
    push_image(
        &server,
        "acme/on-github",
        "v1",
        Some("https://github.com/acme/app"),
        None,
    )
    .await;
    assert_eq!(link_of(&server, "acme/on-github").await, None);
    push_image(
        &server,
        "acme/self-hosted",
        "v1",
        Some("https://git.example.com/acme/app"),
        None,
    )
    .await;
    assert_eq!(
        pull_status(&server, &people.bob, "acme/self-hosted", "v1").await,
        200
    );
}

#[tokio::test]
async fn admin_refuses_bad_repository_commands() {
    let server = Server::start();
    server.admin(&["create-repo", "acme/app", "--visibility", "public"]);
    let output = server.try_admin(&["create-repo", "acme/app"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("already has a repository"), "{stderr}");
    for args in [
        &["create-repo", "nobody/app"][..],
        &["create-repo", "acme"],
        &["create-repo", "acme/a b"],
        &["add-collaborator", "acme/none", "admin", "--role", "read"],
        &["add-collaborator", "acme/app", "nobody", "--role", "read"],
        &["add-collaborator", "acme/app", "admin", "--role", "owner"],
    ] {
        let output = server.try_admin(args);
        assert!(!output.status.success(), "{args:?} should fail");
    }
}

#[tokio::test]
async fn admin_commands_say_what_they_refused() {
    let server = Server::start();
    server.admin(&["create-user", "carol"]);
    for (args, expected) in [
        (&["create-user", "carol"][..], "the login `carol` is taken"),
        (&["create-user", "CAROL"], "the login `CAROL` is taken"),
        (
            &["create-org", "guild", "--owner", "nobody"],
            "there is no user `nobody`",
        ),
        (
            &["add-member", "nowhere", "carol"],
            "there is no organization `nowhere`",
        ),
        (
            &["create-token", "nobody", "--scopes", "read:packages"],
            "there is no user `nobody`",
        ),
        (&["list-tokens", "nobody"], "there is no user `nobody`"),
        (
            &["revoke-token", "ghp_notatoken"],
            "no such token on this instance",
        ),
    ] {
        let output = server.try_admin(args);
        assert!(!output.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let token = server.admin(&["create-token", "carol", "--scopes", "read:packages"]);
    server.admin(&["revoke-token", token.trim()]);
    let again = server.try_admin(&["revoke-token", token.trim()]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already revoked"), "{stderr}");
}
