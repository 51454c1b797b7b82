//! The Packages REST API over real HTTP: GitHub's shapes (compared with fixtures of GitHub's
//! documented examples), pagination, metadata read from what is pushed, download counts,
//! deletion and restore of versions and packages, and the multi-arch rule shared with the
//! registry's DELETE.

use crate::common::{
    Server, client, client_with_token, digest, expect_error, push_blob, put_manifest,
};
use serde_json::{Value, json};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DESCRIPTION: &str = "org.opencontainers.image.description";
const LICENSES: &str = "org.opencontainers.image.licenses";

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/github/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every field of GitHub's example is in `ours` with the same JSON type, recursively for
/// objects (the owner's GitHub fields Berth has are compared by the accounts tests); the
/// extra fields are exactly `extras`.
fn same_shape(github: &Value, ours: &Value, extras: &[&str], path: &str) {
    let (Value::Object(theirs), Value::Object(mine)) = (github, ours) else {
        panic!("{path}: expected objects, got {ours}");
    };
    for (key, value) in theirs {
        let ours = mine
            .get(key)
            .unwrap_or_else(|| panic!("{path}.{key} missing in {}", Value::Object(mine.clone())));
        assert_eq!(kind(value), kind(ours), "{path}.{key}: {ours}");
        if key != "owner" && value.is_object() {
            same_shape(value, ours, &[], &format!("{path}.{key}"));
        }
    }
    let mut extra: Vec<&str> = mine
        .keys()
        .filter(|k| !theirs.contains_key(*k))
        .map(String::as_str)
        .collect();
    extra.sort_unstable();
    let mut expected = extras.to_vec();
    expected.sort_unstable();
    assert_eq!(extra, expected, "{path}: fields beyond GitHub's");
}

/// Pushes a one-layer image whose config labels are `labels`; returns the manifest digest.
async fn push_labelled(server: &Server, repo: &str, reference: &str, labels: Value) -> String {
    let layer = format!("layer of {repo}:{reference}").into_bytes();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": [digest(&layer)]},
    }))
    .unwrap();
    let manifest = image_manifest(server, repo, &config, &layer, json!({})).await;
    put_manifest(server, repo, reference, OCI_MANIFEST, &manifest).await;
    digest(&manifest)
}

async fn image_manifest(
    server: &Server,
    repo: &str,
    config: &[u8],
    layer: &[u8],
    annotations: Value,
) -> Vec<u8> {
    let config_digest = push_blob(server, repo, config.to_vec()).await;
    let layer_digest = push_blob(server, repo, layer.to_vec()).await;
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
        "annotations": annotations,
    }))
    .unwrap()
}

/// Pushes a two-platform image (children by digest, then the index by `tag`, described);
/// returns the index digest and the children's.
async fn push_multi_arch(server: &Server, repo: &str, tag: &str) -> (String, Vec<String>) {
    let mut children = Vec::new();
    let mut descriptors = Vec::new();
    for arch in ["amd64", "arm64"] {
        let layer = format!("{arch} layer").into_bytes();
        let config = serde_json::to_vec(&json!({"architecture": arch, "os": "linux"})).unwrap();
        let child = image_manifest(server, repo, &config, &layer, json!({})).await;
        let child_digest = digest(&child);
        put_manifest(server, repo, &child_digest, OCI_MANIFEST, &child).await;
        descriptors.push(json!({
            "mediaType": OCI_MANIFEST, "digest": child_digest, "size": child.len(),
            "platform": {"architecture": arch, "os": "linux"},
        }));
        children.push(child_digest);
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": descriptors,
        "annotations": {DESCRIPTION: "The multi-arch app"},
    }))
    .unwrap();
    put_manifest(server, repo, tag, OCI_INDEX, &index).await;
    (digest(&index), children)
}

async fn get_json(server: &Server, path: &str) -> (reqwest::header::HeaderMap, Value) {
    let response = client().get(server.url(path)).send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "GET {path}: {text}");
    let value = serde_json::from_str(&text).unwrap();
    if let Some(below) = path.strip_prefix("/api/v3") {
        crate::common::schema::assert_rest("GET", below, 200, &value);
    }
    (headers, value)
}

/// The version listing's entry for `digest`.
async fn version_of(server: &Server, package: &str, state: &str, digest: &str) -> Value {
    let (_, versions) = get_json(
        server,
        &format!(
            "/api/v3/orgs/acme/packages/container/{package}/versions?state={state}&per_page=100"
        ),
    )
    .await;
    versions
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == digest)
        .unwrap_or_else(|| panic!("{digest} not listed as {state}: {versions}"))
        .clone()
}

#[tokio::test]
async fn packages_and_versions_have_githubs_shapes_and_the_metadata_of_the_push() {
    let server = Server::start();
    let pushed = push_labelled(
        &server,
        "acme/tools/lint",
        "v1",
        json!({DESCRIPTION: "A linter", LICENSES: "MIT OR Apache-2.0", "org.opencontainers.image.revision": "abc123"}),
    )
    .await;

    let (headers, package) =
        get_json(&server, "/api/v3/orgs/acme/packages/container/tools%2Flint").await;
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{headers:?}"
    );
    same_shape(
        &fixture("package.json"),
        &package,
        &["description"],
        "package",
    );
    assert_eq!(package["name"], "tools/lint", "named relative to the owner");
    assert_eq!(package["version_count"], 1);
    assert_eq!(package["visibility"], "private");
    assert_eq!(package["owner"]["login"], "acme");
    assert_eq!(package["description"], "A linter");
    assert_eq!(
        package["url"],
        server.url("/api/v3/orgs/acme/packages/container/tools%2Flint")
    );
    assert_eq!(
        package["html_url"],
        server.url("/orgs/acme/packages/container/package/tools%2Flint")
    );

    let version = version_of(&server, "tools%2Flint", "active", &pushed).await;
    same_shape(
        &fixture("package-version.json"),
        &version,
        &["berth"],
        "version",
    );
    assert_eq!(version["metadata"]["container"]["tags"], json!(["v1"]));
    assert_eq!(version["berth"]["labels"][LICENSES], "MIT OR Apache-2.0");
    assert_eq!(
        version["berth"]["labels"]["org.opencontainers.image.revision"],
        "abc123"
    );
    assert_eq!(
        version["berth"]["pushed_by"]["login"], "admin",
        "the admin pushed it"
    );
    assert!(version["berth"]["size"].as_u64().unwrap() > 100);
    let (_, one) = get_json(
        &server,
        &format!(
            "/api/v3/orgs/acme/packages/container/tools%2Flint/versions/{}",
            version["id"]
        ),
    )
    .await;
    assert_eq!(one, version, "the version by id is the listed one");
    assert_eq!(version["package_html_url"], package["html_url"]);
    assert_eq!(
        version["html_url"],
        server.url(&format!(
            "/orgs/acme/packages/container/tools%2Flint/{}",
            version["id"]
        ))
    );
    assert_eq!(
        version["url"],
        server.url(&format!(
            "/api/v3/orgs/acme/packages/container/tools%2Flint/versions/{}",
            version["id"]
        ))
    );

    // The list endpoints: the org's, and the authenticated user's (none of their own).
    let (_, listed) = get_json(&server, "/api/v3/orgs/acme/packages?package_type=container").await;
    assert_eq!(listed, json!([package]));
    let (_, public) = get_json(
        &server,
        "/api/v3/orgs/acme/packages?package_type=container&visibility=public",
    )
    .await;
    assert_eq!(public, json!([]));
    let (_, npm) = get_json(&server, "/api/v3/orgs/acme/packages?package_type=npm").await;
    assert_eq!(npm, json!([]), "Berth holds containers only");
    let (_, mine) = get_json(&server, "/api/v3/user/packages?package_type=container").await;
    assert_eq!(mine, json!([]));

    // Bad input answers GitHub's errors.
    for (path, status) in [
        ("/api/v3/orgs/acme/packages", 422),
        ("/api/v3/orgs/acme/packages?package_type=pypi", 422),
        (
            "/api/v3/orgs/acme/packages?package_type=container&visibility=secret",
            422,
        ),
        (
            "/api/v3/orgs/acme/packages?package_type=container&per_page=lots",
            422,
        ),
        (
            "/api/v3/orgs/acme/packages/container/tools%2Flint/versions?state=gone",
            422,
        ),
        (
            "/api/v3/orgs/acme/packages/container/tools%2Flint/versions/999999",
            404,
        ),
        ("/api/v3/orgs/acme/packages/container/nothing", 404),
        ("/api/v3/orgs/nobody/packages?package_type=container", 404),
    ] {
        let response = client().get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["message"].is_string() && body["documentation_url"].is_string(),
            "{body}"
        );
        let below = path.strip_prefix("/api/v3").expect("an API path");
        crate::common::schema::assert_rest("GET", below, status, &body);
    }
    let anonymous = reqwest::get(server.url("/api/v3/orgs/acme/packages/container/tools%2Flint"))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn over_long_labels_are_refused_naming_the_key_and_the_limit_and_store_nothing() {
    let server = Server::start();
    for (key, limit) in [(DESCRIPTION, 512), (LICENSES, 256)] {
        let layer = format!("layer {key}").into_bytes();
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Labels": {key: "x".repeat(limit + 1)}},
        }))
        .unwrap();
        let manifest = image_manifest(&server, "acme/long", &config, &layer, json!({})).await;
        let response = client()
            .put(server.url("/v2/acme/long/manifests/v1"))
            .header("content-type", OCI_MANIFEST)
            .body(manifest.clone())
            .send()
            .await
            .unwrap();
        let message = expect_error(response, 400, "MANIFEST_INVALID").await;
        assert!(
            message.contains(key) && message.contains(&limit.to_string()),
            "{message}"
        );
        let tags: Value = client()
            .get(server.url("/v2/acme/long/tags/list"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(tags["tags"], json!([]), "no tag stored: {tags}");
        let by_digest = client()
            .get(server.url(&format!("/v2/acme/long/manifests/{}", digest(&manifest))))
            .send()
            .await
            .unwrap();
        assert_eq!(by_digest.status(), 404, "no manifest stored");
    }
    // The same limit on a manifest annotation; exactly the limit is fine.
    let layer = b"layer ok".to_vec();
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let manifest = image_manifest(
        &server,
        "acme/long",
        &config,
        &layer,
        json!({DESCRIPTION: "é".repeat(512)}),
    )
    .await;
    put_manifest(&server, "acme/long", "ok", OCI_MANIFEST, &manifest).await;
}

#[tokio::test]
async fn versions_paginate_with_githubs_link_header() {
    let server = Server::start();
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = b"shared layer".to_vec();
    let config_digest = push_blob(&server, "acme/many", config.clone()).await;
    let layer_digest = push_blob(&server, "acme/many", layer.clone()).await;
    let http = client();
    let mut pushed = std::collections::BTreeSet::new();
    for i in 0..250 {
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
            "annotations": {"build": i.to_string()},
        }))
        .unwrap();
        let response = http
            .put(server.url(&format!("/v2/acme/many/manifests/build-{i}")))
            .header("content-type", OCI_MANIFEST)
            .body(manifest.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        pushed.insert(digest(&manifest));
    }

    let base = "/api/v3/orgs/acme/packages/container/many/versions";
    let (headers, first) = get_json(&server, base).await;
    assert_eq!(
        first.as_array().unwrap().len(),
        30,
        "30 per page by default"
    );
    let link = headers["link"].to_str().unwrap();
    assert!(
        link.contains(&format!(
            "<{}?per_page=30&page=2>; rel=\"next\"",
            server.url(base)
        )),
        "{link}"
    );
    assert!(link.contains("page=9>; rel=\"last\""), "{link}");
    assert!(!link.contains("rel=\"prev\""), "{link}");

    let mut seen = std::collections::BTreeSet::new();
    let mut next = Some(server.url(&format!("{base}?per_page=100")));
    let mut pages = 0;
    while let Some(url) = next.take() {
        let response = http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        next = response
            .headers()
            .get("link")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| {
                l.split(", ")
                    .find(|part| part.ends_with("rel=\"next\""))
                    .map(|part| part[1..part.find('>').unwrap()].to_owned())
            });
        let page: Value = response.json().await.unwrap();
        for version in page.as_array().unwrap() {
            assert!(seen.insert(version["name"].as_str().unwrap().to_owned()));
        }
        pages += 1;
    }
    assert_eq!(
        (pages, seen),
        (3, pushed),
        "250 versions in pages of 100, 100, 50"
    );

    let (_, over) = get_json(&server, &format!("{base}?per_page=500&page=3")).await;
    assert_eq!(
        over.as_array().unwrap().len(),
        50,
        "per_page is capped at 100"
    );
    let (_, past) = get_json(&server, &format!("{base}?page=40")).await;
    assert_eq!(past, json!([]));
    let (_, package) = get_json(&server, "/api/v3/orgs/acme/packages/container/many").await;
    assert_eq!(package["version_count"], 250);
}

#[tokio::test]
async fn a_tagged_index_protects_its_platforms_and_restore_brings_everything_back() {
    let server = Server::start();
    let (index, children) = push_multi_arch(&server, "acme/multi", "latest").await;
    let (_, package) = get_json(&server, "/api/v3/orgs/acme/packages/container/multi").await;
    assert_eq!(
        package["description"], "The multi-arch app",
        "the index's description"
    );
    assert_eq!(package["version_count"], 3);
    let index_version = version_of(&server, "multi", "active", &index).await;
    assert_eq!(
        index_version["berth"]["platforms"],
        json!(["linux/amd64", "linux/arm64"])
    );
    let child_version = version_of(&server, "multi", "active", &children[0]).await;
    let path = |v: &Value| {
        format!(
            "/api/v3/orgs/acme/packages/container/multi/versions/{}",
            v["id"]
        )
    };

    // The child of a tagged index: refused through the API (409) and the registry (403).
    let refused = client()
        .delete(server.url(&path(&child_version)))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    let message = refused.json::<Value>().await.unwrap()["message"].to_string();
    assert!(
        message.contains(&index) && message.contains("latest"),
        "{message}"
    );
    let refused = client()
        .delete(server.url(&format!("/v2/acme/multi/manifests/{}", children[0])))
        .send()
        .await
        .unwrap();
    let message = expect_error(refused, 403, "DENIED").await;
    assert!(message.contains(&index), "{message}");

    // The index first, then the child.
    let deleted = client()
        .delete(server.url(&path(&index_version)))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let deleted = client()
        .delete(server.url(&format!("/v2/acme/multi/manifests/{}", children[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 202);
    let gone = client()
        .get(server.url("/v2/acme/multi/manifests/latest"))
        .send()
        .await
        .unwrap();
    expect_error(gone, 404, "MANIFEST_UNKNOWN").await;
    let deleted_index = version_of(&server, "multi", "deleted", &index).await;
    assert!(deleted_index["deleted_at"].is_string(), "{deleted_index}");
    assert_eq!(
        deleted_index["metadata"]["container"]["tags"],
        json!(["latest"])
    );
    version_of(&server, "multi", "deleted", &children[0]).await;

    // Restoring the index brings its deleted platform and its tag back.
    let restored = client()
        .post(server.url(&format!("{}/restore", path(&index_version))))
        .send()
        .await
        .unwrap();
    assert_eq!(restored.status(), 204);
    let pulled = client()
        .get(server.url("/v2/acme/multi/manifests/latest"))
        .header("accept", OCI_INDEX)
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), 200);
    for child in &children {
        let pulled = client()
            .get(server.url(&format!("/v2/acme/multi/manifests/{child}")))
            .send()
            .await
            .unwrap();
        assert_eq!(pulled.status(), 200, "platform {child} is back");
    }
    let again = client()
        .post(server.url(&format!("{}/restore", path(&index_version))))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 422, "a live version is not restored");
}

/// A page of the listing `path` as `http` sees it: the names, and the `Link` header's
/// relations with their page numbers.
async fn listing_page(
    server: &Server,
    http: &reqwest::Client,
    path: &str,
) -> (Vec<String>, Vec<(String, String)>) {
    let response = http.get(server.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    let links = response
        .headers()
        .get("link")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default()
        .split(", ")
        .filter(|part| !part.is_empty())
        .map(|part| {
            let url = &part[1..part.find('>').unwrap()];
            let base = server.url("/api/v3/orgs/acme/packages");
            assert!(url.starts_with(&base), "{url}");
            let rel = part.rsplit("rel=").next().unwrap().trim_matches('"');
            (rel.to_owned(), url[base.len()..].to_owned())
        })
        .collect();
    let page: Value = response.json().await.unwrap();
    let names = page
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    (names, links)
}

#[tokio::test]
async fn the_listing_pages_and_counts_only_what_the_caller_sees() {
    let server = Server::start();
    for i in 1..=9 {
        push_labelled(&server, &format!("acme/p{i}"), "v1", json!({})).await;
    }
    // p3 public, p2, p5, p6 and p9 internal; the rest private. Deleted: p7 (internal).
    for (package, visibility) in [
        ("p2", "internal"),
        ("p3", "public"),
        ("p5", "internal"),
        ("p6", "internal"),
        ("p7", "internal"),
        ("p9", "internal"),
    ] {
        let changed = client()
            .patch(server.url(&format!("/api/v3/orgs/acme/packages/container/{package}")))
            .json(&json!({"visibility": visibility}))
            .send()
            .await
            .unwrap();
        assert_eq!(changed.status(), 204);
    }
    let deleted = client()
        .delete(server.url("/api/v3/orgs/acme/packages/container/p7"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    // Rita is no member of acme: she reads the public and internal packages only.
    let rita = client_with_token(&server.admin(&[
        "create-user",
        "rita",
        "--token-scopes",
        "read:packages",
    ]));
    let list = "/api/v3/orgs/acme/packages?package_type=container&per_page=2";
    let link = |page: u64| format!("?package_type=container&per_page=2&page={page}");
    let rel = |rel: &str, page: u64| (rel.to_owned(), link(page));

    let (names, links) = listing_page(&server, &rita, list).await;
    assert_eq!(names, ["p2", "p3"]);
    assert_eq!(
        links,
        [rel("next", 2), rel("last", 3)],
        "5 packages: 3 pages"
    );
    let (names, links) = listing_page(&server, &rita, &format!("{list}&page=2")).await;
    assert_eq!(names, ["p5", "p6"], "p4 is not hers to see, nor counted");
    assert_eq!(
        links,
        [
            rel("next", 3),
            rel("last", 3),
            rel("first", 1),
            rel("prev", 1)
        ]
    );
    let (names, links) = listing_page(&server, &rita, &format!("{list}&page=3")).await;
    assert_eq!(names, ["p9"], "deleted p7 is neither listed nor counted");
    assert_eq!(links, [rel("first", 1), rel("prev", 2)]);
    let (names, links) = listing_page(&server, &rita, &format!("{list}&page=5")).await;
    assert!(names.is_empty());
    assert_eq!(
        links,
        [rel("first", 1), rel("prev", 3)],
        "prev is the last page"
    );

    let internal =
        "/api/v3/orgs/acme/packages?package_type=container&visibility=internal&per_page=3";
    let (names, links) = listing_page(&server, &rita, internal).await;
    assert_eq!(names, ["p2", "p5", "p6"]);
    assert_eq!(
        links,
        [
            (
                "next".to_owned(),
                "?package_type=container&visibility=internal&per_page=3&page=2".to_owned()
            ),
            (
                "last".to_owned(),
                "?package_type=container&visibility=internal&per_page=3&page=2".to_owned()
            ),
        ]
    );

    // The admin sees every live package: 8, in 4 pages.
    let (names, links) = listing_page(&server, &client(), &format!("{list}&page=4")).await;
    assert_eq!(names, ["p8", "p9"]);
    assert_eq!(links, [rel("first", 1), rel("prev", 3)]);
    let (names, _) = listing_page(&server, &client(), &format!("{list}&page=2")).await;
    assert_eq!(names, ["p3", "p4"]);
}

#[tokio::test]
async fn a_deleted_package_is_gone_its_name_reserved_until_restored() {
    let server = Server::start();
    let pushed = push_labelled(&server, "acme/app", "v1", json!({})).await;
    let reader = server.admin(&["create-user", "rita", "--token-scopes", "read:packages"]);
    let deleter = client_with_token(&reader);
    let listed: Value = deleter
        .get(server.url("/api/v3/orgs/acme/packages?package_type=container"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]), "rita sees no package of acme's");
    let public = client()
        .patch(server.url("/api/v3/orgs/acme/packages/container/app"))
        .json(&json!({"visibility": "internal"}))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 204);
    let listed: Value = deleter
        .get(server.url("/api/v3/orgs/acme/packages?package_type=container"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed[0]["name"], "app",
        "an internal package is listed to every user"
    );
    let refused = deleter
        .delete(server.url("/api/v3/orgs/acme/packages/container/app"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        403,
        "rita reads the package but is no admin"
    );

    let deleted = client()
        .delete(server.url("/api/v3/orgs/acme/packages/container/app"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let pull = client()
        .get(server.url("/v2/acme/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    expect_error(pull, 404, "NAME_UNKNOWN").await;
    let get = client()
        .get(server.url("/api/v3/orgs/acme/packages/container/app"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 404);
    let (_, listed) = get_json(&server, "/api/v3/orgs/acme/packages?package_type=container").await;
    assert_eq!(listed, json!([]));
    let (_, catalog) = get_json(&server, "/v2/_catalog").await;
    assert_eq!(catalog["repositories"], json!([]), "nor in the catalog");
    let push = client()
        .post(server.url("/v2/acme/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let message = expect_error(push, 403, "DENIED").await;
    assert!(
        message.contains("deleted") && message.contains("restore"),
        "{message}"
    );

    let restored = client()
        .post(server.url("/api/v3/orgs/acme/packages/container/app/restore"))
        .send()
        .await
        .unwrap();
    assert_eq!(restored.status(), 204);
    let pull = client()
        .get(server.url(&format!("/v2/acme/app/manifests/{pushed}")))
        .send()
        .await
        .unwrap();
    assert_eq!(pull.status(), 200);
    let again = client()
        .post(server.url("/api/v3/orgs/acme/packages/container/app/restore"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 422);
}

#[tokio::test]
async fn manifest_gets_are_counted_as_downloads_heads_are_not() {
    let server = Server::start();
    let pushed = push_labelled(&server, "acme/counted", "v1", json!({})).await;
    for _ in 0..3 {
        let got = client()
            .get(server.url("/v2/acme/counted/manifests/v1"))
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200);
    }
    let head = client()
        .head(server.url(&format!("/v2/acme/counted/manifests/{pushed}")))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    let (_, counts) = get_json(
        &server,
        "/api/v3/orgs/acme/packages/container/counted/downloads",
    )
    .await;
    assert_eq!(counts[0]["name"], pushed);
    assert_eq!(counts[0]["download_count"], 3, "{counts}");

    // Counts survive a graceful restart (flushed at shutdown).
    let mut server = server;
    server.terminate();
    assert!(server.wait_exit(10).success());
    server.restart();
    let (_, counts) = get_json(
        &server,
        "/api/v3/orgs/acme/packages/container/counted/downloads",
    )
    .await;
    assert_eq!(counts[0]["download_count"], 3, "{counts}");
}

#[tokio::test]
async fn the_authenticated_users_own_packages_are_reached_under_user() {
    let server = Server::start();
    let pushed = push_labelled(&server, "admin/tools/fmt", "v1", json!({})).await;
    let (_, mine) = get_json(&server, "/api/v3/user/packages?package_type=container").await;
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine[0]["name"], "tools/fmt");
    assert_eq!(mine[0]["owner"]["type"], "User");
    assert_eq!(
        mine[0]["html_url"],
        server.url("/users/admin/packages/container/package/tools%2Ffmt")
    );
    let (_, by_user) = get_json(&server, "/api/v3/user/packages/container/tools%2Ffmt").await;
    let (_, by_login) = get_json(
        &server,
        "/api/v3/users/admin/packages/container/tools%2Ffmt",
    )
    .await;
    assert_eq!(by_user, by_login);
    let (_, listed) = get_json(
        &server,
        "/api/v3/users/admin/packages?package_type=container",
    )
    .await;
    assert_eq!(listed, mine);

    let (_, versions) = get_json(
        &server,
        "/api/v3/user/packages/container/tools%2Ffmt/versions",
    )
    .await;
    assert_eq!(versions[0]["name"], pushed);
    let (_, downloads) = get_json(
        &server,
        "/api/v3/user/packages/container/tools%2Ffmt/downloads",
    )
    .await;
    assert_eq!(downloads[0]["name"], pushed);
    let version = format!(
        "/api/v3/user/packages/container/tools%2Ffmt/versions/{}",
        versions[0]["id"]
    );
    let (_, one) = get_json(&server, &version).await;
    assert_eq!(one, versions[0]);
    let deleted = client().delete(server.url(&version)).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    let pull = client()
        .get(server.url("/v2/admin/tools/fmt/manifests/v1"))
        .send()
        .await
        .unwrap();
    expect_error(pull, 404, "MANIFEST_UNKNOWN").await;
    let restored = client()
        .post(server.url(&format!("{version}/restore")))
        .send()
        .await
        .unwrap();
    assert_eq!(restored.status(), 204);
    let pull = client()
        .get(server.url("/v2/admin/tools/fmt/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(pull.status(), 200, "back with its tag");
}

#[tokio::test]
async fn a_tag_moved_to_a_version_updates_it_and_not_its_creation_time() {
    let server = Server::start();
    let pushed = push_labelled(&server, "acme/moved", "v1", json!({})).await;
    let before = version_of(&server, "moved", "active", &pushed).await;
    assert_eq!(before["created_at"], before["updated_at"]);
    // Times are in seconds: let one pass.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let manifest = client()
        .get(server.url("/v2/acme/moved/manifests/v1"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    put_manifest(&server, "acme/moved", "stable", OCI_MANIFEST, &manifest).await;
    let after = version_of(&server, "moved", "active", &pushed).await;
    assert_eq!(after["id"], before["id"], "the same version");
    assert_eq!(after["created_at"], before["created_at"]);
    assert!(
        after["updated_at"].as_str() > before["updated_at"].as_str(),
        "{before} → {after}"
    );
    assert_eq!(
        after["metadata"]["container"]["tags"],
        json!(["stable", "v1"])
    );
}
