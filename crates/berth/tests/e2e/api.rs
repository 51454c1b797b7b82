//! The OCI distribution API v1.1, endpoint by endpoint: every happy path against the real
//! server, with the headers clients rely on.

use crate::common::{
    Server, client, digest, digest512, expect_error, header, location_url, push_blob, push_image,
    put_manifest, start_upload,
};
use serde_json::{Value, json};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Deterministic, non-repeating-looking test bytes.
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed as usize * 7) % 251) as u8)
        .collect()
}

async fn get(server: &Server, path: &str) -> reqwest::Response {
    client().get(server.url(path)).send().await.expect("GET")
}

async fn head(server: &Server, path: &str) -> reqwest::Response {
    client().head(server.url(path)).send().await.expect("HEAD")
}

/// GETs a blob and asserts it is exactly `expected`.
async fn assert_blob(server: &Server, repo: &str, d: &str, expected: &[u8]) {
    let response = get(server, &format!("/v2/{repo}/blobs/{d}")).await;
    assert_eq!(response.status(), 200, "GET blob {d} in {repo}");
    assert_eq!(header(&response, "docker-content-digest"), d);
    assert_eq!(response.bytes().await.unwrap().as_ref(), expected);
}

/// A one-layer OCI manifest over blobs already in `repo`.
fn image_manifest(config: &[u8], layer: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer), "size": layer.len()}],
    }))
    .unwrap()
}

async fn tags(server: &Server, repo: &str) -> Vec<String> {
    let response = get(server, &format!("/v2/{repo}/tags/list")).await;
    assert_eq!(response.status(), 200, "tags/list of {repo}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["name"], repo);
    body["tags"]
        .as_array()
        .map(|t| t.iter().map(|t| t.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// Follows `Link: <…>; rel="next"` from `first` to the end; the pages' item lists.
async fn walk_pages(server: &Server, first: &str, field: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut next = Some(first.to_owned());
    while let Some(path) = next.take() {
        let response = get(server, &path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        if let Some(link) = response.headers().get("link") {
            let link = link.to_str().unwrap();
            let target = link
                .strip_prefix('<')
                .and_then(|l| l.split_once(">; rel=\"next\""))
                .map(|(target, _)| target.to_owned())
                .unwrap_or_else(|| panic!("Link header `{link}` is not `<url>; rel=\"next\"`"));
            next = Some(target);
        }
        let body: Value = response.json().await.unwrap();
        let items = body[field]
            .as_array()
            .unwrap_or_else(|| panic!("{field} in {body}"));
        pages.push(
            items
                .iter()
                .map(|t| t.as_str().unwrap().to_owned())
                .collect(),
        );
        assert!(pages.len() < 50, "pagination does not end");
    }
    pages
}

#[tokio::test]
async fn base_endpoint_answers_api_version() {
    let server = Server::start();
    for path in ["/v2/", "/v2"] {
        let response = get(&server, path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        assert_eq!(
            header(&response, "docker-distribution-api-version"),
            "registry/2.0"
        );
    }
    let response = head(&server, "/v2/").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "docker-distribution-api-version"),
        "registry/2.0"
    );
    // Errors carry the version header too.
    let response = get(&server, "/v2/nothing/here/tags/list").await;
    assert_eq!(
        header(&response, "docker-distribution-api-version"),
        "registry/2.0"
    );
    expect_error(response, 404, "NAME_UNKNOWN").await;
}

#[tokio::test]
async fn monolithic_post_pushes_a_blob() {
    let server = Server::start();
    let blob = bytes(10_000, 1);
    let d = digest(&blob);
    let response = client()
        .post(server.url(&format!("/v2/acme/app/blobs/uploads/?digest={d}")))
        .body(blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        header(&response, "location"),
        format!("/v2/acme/app/blobs/{d}")
    );
    assert_eq!(header(&response, "docker-content-digest"), d);
    assert_blob(&server, "acme/app", &d, &blob).await;
}

#[tokio::test]
async fn post_then_put_with_body() {
    let server = Server::start();
    let response = client()
        .post(server.url("/v2/acme/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = header(&response, "location");
    assert!(
        location.contains("/v2/acme/app/blobs/uploads/"),
        "{location}"
    );
    let uuid = header(&response, "docker-upload-uuid");
    assert!(
        location.ends_with(&uuid),
        "Location {location} names upload {uuid}"
    );

    let blob = bytes(5_000, 2);
    let d = digest(&blob);
    let response = client()
        .put(location_url(
            &server,
            &location,
            Some(&format!("digest={d}")),
        ))
        .body(blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        header(&response, "location"),
        format!("/v2/acme/app/blobs/{d}")
    );
    assert_eq!(header(&response, "docker-content-digest"), d);
    assert_blob(&server, "acme/app", &d, &blob).await;
}

#[tokio::test]
async fn post_then_streamed_patch_then_put_without_body() {
    let server = Server::start();
    let location = start_upload(&server, "acme/app").await;
    // 1.5 MiB streamed with chunked transfer encoding: no Content-Length, no Content-Range.
    let blob = bytes(1_572_864 + 17, 3);
    let d = digest(&blob);
    let (_dir, path) = crate::common::temp_path();
    let file = path.join("blob");
    std::fs::write(&file, &blob).unwrap();
    let body = reqwest::Body::from(tokio::fs::File::open(&file).await.unwrap());
    let response = client().patch(&location).body(body).send().await.unwrap();
    assert_eq!(
        response.status(),
        202,
        "{}",
        response.text().await.unwrap_or_default()
    );
    assert_eq!(header(&response, "range"), format!("0-{}", blob.len() - 1));
    let location = location_url(&server, &header(&response, "location"), None);
    assert!(response.headers().contains_key("docker-upload-uuid"));

    let response = client()
        .put(location_url(
            &server,
            &location,
            Some(&format!("digest={d}")),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
    assert_eq!(header(&response, "docker-content-digest"), d);
    assert_blob(&server, "acme/app", &d, &blob).await;
}

#[tokio::test]
async fn chunked_patches_with_content_range_then_put_without_body() {
    let server = Server::start();
    let mut location = start_upload(&server, "acme/app").await;
    let blob = bytes(3_000, 4);
    let d = digest(&blob);
    for (start, end) in [(0usize, 999usize), (1000, 1999), (2000, 2999)] {
        let response = client()
            .patch(&location)
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{start}-{end}"))
            .body(blob[start..=end].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            202,
            "chunk {start}-{end}: {}",
            response.text().await.unwrap_or_default()
        );
        assert_eq!(header(&response, "range"), format!("0-{end}"));
        assert!(response.headers().contains_key("docker-upload-uuid"));
        location = location_url(&server, &header(&response, "location"), None);
    }
    let response = client()
        .put(location_url(
            &server,
            &location,
            Some(&format!("digest={d}")),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
    assert_eq!(
        header(&response, "location"),
        format!("/v2/acme/app/blobs/{d}")
    );
    assert_eq!(header(&response, "docker-content-digest"), d);
    assert_blob(&server, "acme/app", &d, &blob).await;
    // The session is finished.
    let response = client().get(&location).send().await.unwrap();
    expect_error(response, 404, "BLOB_UPLOAD_UNKNOWN").await;
}

#[tokio::test]
async fn upload_status_reports_range_and_location() {
    let server = Server::start();
    let location = start_upload(&server, "acme/app").await;
    let response = client()
        .patch(&location)
        .body(vec![9u8; 1234])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let uuid = header(&response, "docker-upload-uuid");

    let response = client().get(&location).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(header(&response, "range"), "0-1233");
    assert!(header(&response, "location").contains(&uuid));
    assert_eq!(header(&response, "docker-upload-uuid"), uuid);
}

#[tokio::test]
async fn cancelled_upload_is_unknown() {
    let server = Server::start();
    let location = start_upload(&server, "acme/app").await;
    let response = client()
        .patch(&location)
        .body(vec![1u8; 100])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let response = client().delete(&location).send().await.unwrap();
    assert_eq!(response.status(), 204);
    let response = client().get(&location).send().await.unwrap();
    expect_error(response, 404, "BLOB_UPLOAD_UNKNOWN").await;
    assert!(
        server.blobs().uploads_held().await.is_empty(),
        "cancelled upload's bytes are gone"
    );
}

#[tokio::test]
async fn blob_head_and_get() {
    let server = Server::start();
    let blob = bytes(4_321, 5);
    let d = push_blob(&server, "acme/app", blob.clone()).await;
    let response = head(&server, &format!("/v2/acme/app/blobs/{d}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-length"), "4321");
    assert_eq!(header(&response, "docker-content-digest"), d);
    let response = get(&server, &format!("/v2/acme/app/blobs/{d}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-length"), "4321");
    assert_eq!(header(&response, "docker-content-digest"), d);
    assert_eq!(response.bytes().await.unwrap().as_ref(), blob.as_slice());
}

#[tokio::test]
async fn blob_range_requests() {
    let server = Server::start();
    let blob = bytes(1_000, 6);
    let d = push_blob(&server, "acme/app", blob.clone()).await;
    let url = server.url(&format!("/v2/acme/app/blobs/{d}"));

    let response = client()
        .get(&url)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(header(&response, "content-range"), "bytes 100-199/1000");
    assert_eq!(header(&response, "content-length"), "100");
    assert_eq!(response.bytes().await.unwrap().as_ref(), &blob[100..200]);

    let response = client()
        .get(&url)
        .header("range", "bytes=990-")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(header(&response, "content-range"), "bytes 990-999/1000");
    assert_eq!(response.bytes().await.unwrap().as_ref(), &blob[990..]);

    let response = client()
        .get(&url)
        .header("range", "bytes=1000-1100")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 416);
    assert_eq!(header(&response, "content-range"), "bytes */1000");
}

#[tokio::test]
async fn deleted_blob_is_gone_from_the_repository() {
    let server = Server::start();
    let d = push_blob(&server, "acme/app", bytes(300, 7)).await;
    let response = client()
        .delete(server.url(&format!("/v2/acme/app/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(
        head(&server, &format!("/v2/acme/app/blobs/{d}"))
            .await
            .status(),
        404
    );
    let response = get(&server, &format!("/v2/acme/app/blobs/{d}")).await;
    expect_error(response, 404, "BLOB_UNKNOWN").await;
}

#[tokio::test]
async fn blob_of_one_repository_is_unknown_in_another() {
    let server = Server::start();
    let d = push_blob(&server, "acme/a", bytes(300, 8)).await;
    push_blob(&server, "acme/b", bytes(10, 9)).await;
    assert_eq!(
        head(&server, &format!("/v2/acme/b/blobs/{d}"))
            .await
            .status(),
        404
    );
    let response = get(&server, &format!("/v2/acme/b/blobs/{d}")).await;
    expect_error(response, 404, "BLOB_UNKNOWN").await;
}

#[tokio::test]
async fn cross_repository_mount() {
    let server = Server::start();
    let blob = bytes(2_000, 10);
    let d = push_blob(&server, "acme/source", blob.clone()).await;
    let response = client()
        .post(server.url(&format!(
            "/v2/acme/target/blobs/uploads/?mount={d}&from=acme/source"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        header(&response, "location"),
        format!("/v2/acme/target/blobs/{d}")
    );
    assert_eq!(header(&response, "docker-content-digest"), d);
    assert_blob(&server, "acme/target", &d, &blob).await;
    assert_eq!(
        server.blobs().blob_copies(&d.parse().unwrap()).await,
        1,
        "a mount copies no bytes"
    );
}

#[tokio::test]
async fn mount_from_a_repository_without_the_blob_starts_a_session() {
    let server = Server::start();
    let blob = bytes(2_000, 11);
    let d = digest(&blob);
    push_blob(&server, "acme/other", bytes(5, 12)).await;
    let response = client()
        .post(server.url(&format!(
            "/v2/acme/target/blobs/uploads/?mount={d}&from=acme/other"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = location_url(&server, &header(&response, "location"), None);
    assert!(
        location.contains("/v2/acme/target/blobs/uploads/"),
        "{location}"
    );
    assert!(response.headers().contains_key("docker-upload-uuid"));
    assert_eq!(
        head(&server, &format!("/v2/acme/target/blobs/{d}"))
            .await
            .status(),
        404
    );
    // The session works like any other.
    let response = client()
        .put(location_url(
            &server,
            &location,
            Some(&format!("digest={d}")),
        ))
        .body(blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_blob(&server, "acme/target", &d, &blob).await;
}

#[tokio::test]
async fn a_blob_pushed_to_two_repositories_is_stored_once() {
    let server = Server::start();
    let blob = bytes(3_000, 13);
    let d = push_blob(&server, "acme/one", blob.clone()).await;
    push_blob(&server, "acme/two", blob.clone()).await;
    assert_blob(&server, "acme/one", &d, &blob).await;
    assert_blob(&server, "acme/two", &d, &blob).await;
    let blobs = server.blobs();
    let stored = blobs.stored_blobs().await;
    assert_eq!(stored, vec![d.clone()], "one copy for one content");
    let d = d.parse().unwrap();
    assert_eq!(blobs.blob_copies(&d).await, 1);
    assert_eq!(blobs.blob_bytes(&d).await, Some(blob));
}

#[tokio::test]
async fn manifest_put_and_get_by_tag_and_digest() {
    let server = Server::start();
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = bytes(500, 14);
    push_blob(&server, "acme/app", config.clone()).await;
    push_blob(&server, "acme/app", layer.clone()).await;
    let manifest = image_manifest(&config, &layer);
    let d = digest(&manifest);

    let response = client()
        .put(server.url("/v2/acme/app/manifests/v1"))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        header(&response, "location"),
        format!("/v2/acme/app/manifests/{d}")
    );
    assert_eq!(header(&response, "docker-content-digest"), d);

    // The same bytes by digest.
    let response = client()
        .put(server.url(&format!("/v2/acme/app/manifests/{d}")))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        header(&response, "location"),
        format!("/v2/acme/app/manifests/{d}")
    );
    assert_eq!(header(&response, "docker-content-digest"), d);

    for reference in ["v1", d.as_str()] {
        let path = format!("/v2/acme/app/manifests/{reference}");
        let response = client()
            .get(server.url(&path))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        assert_eq!(header(&response, "content-type"), OCI_MANIFEST);
        assert_eq!(header(&response, "docker-content-digest"), d);
        assert_eq!(
            response.bytes().await.unwrap().as_ref(),
            manifest.as_slice()
        );

        let response = client()
            .head(server.url(&path))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "HEAD {path}");
        assert_eq!(header(&response, "content-type"), OCI_MANIFEST);
        assert_eq!(
            header(&response, "content-length"),
            manifest.len().to_string()
        );
        assert_eq!(header(&response, "docker-content-digest"), d);
    }
    assert_eq!(tags(&server, "acme/app").await, ["v1"]);
}

#[tokio::test]
async fn docker_schema2_manifest_round_trips() {
    let server = Server::start();
    let config =
        br#"{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let layer = bytes(700, 15);
    push_blob(&server, "acme/docker", config.clone()).await;
    push_blob(&server, "acme/docker", layer.clone()).await;
    // Docker's own formatting (indented), which must come back byte for byte.
    let manifest = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": config.len(), "digest": digest(&config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": layer.len(), "digest": digest(&layer)}],
    }))
    .unwrap();
    let d = digest(&manifest);
    put_manifest(&server, "acme/docker", "latest", DOCKER_MANIFEST, &manifest).await;
    for reference in ["latest", d.as_str()] {
        let response = client()
            .get(server.url(&format!("/v2/acme/docker/manifests/{reference}")))
            .header(
                "accept",
                format!(
                    "{DOCKER_MANIFEST}, application/vnd.docker.distribution.manifest.list.v2+json"
                ),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "content-type"), DOCKER_MANIFEST);
        assert_eq!(header(&response, "docker-content-digest"), d);
        assert_eq!(
            response.bytes().await.unwrap().as_ref(),
            manifest.as_slice()
        );
    }
}

#[tokio::test]
async fn accept_header_negotiation() {
    let server = Server::start();
    let (d, manifest) = push_image(&server, "acme/app", "v1", &bytes(100, 16)).await;
    let url = server.url("/v2/acme/app/manifests/v1");

    let response = client()
        .get(&url)
        .header("accept", format!("{DOCKER_MANIFEST}, {OCI_INDEX}"))
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "MANIFEST_UNKNOWN").await;
    let response = client()
        .head(&url)
        .header("accept", OCI_INDEX)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    for accept in [
        "*/*",
        OCI_MANIFEST,
        &format!("{DOCKER_MANIFEST};q=0.9, {OCI_MANIFEST};q=0.5"),
        &format!("{OCI_INDEX}, */*;q=0.1"),
    ] {
        let response = client()
            .get(&url)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "Accept: {accept}");
        assert_eq!(header(&response, "content-type"), OCI_MANIFEST);
        assert_eq!(header(&response, "docker-content-digest"), d);
        assert_eq!(
            response.bytes().await.unwrap().as_ref(),
            manifest.as_slice()
        );
    }
    // Several Accept headers are one list.
    let response = client()
        .get(&url)
        .header("accept", DOCKER_MANIFEST)
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // No Accept header at all: served.
    assert_eq!(
        get(&server, "/v2/acme/app/manifests/v1").await.status(),
        200
    );
}

#[tokio::test]
async fn manifest_with_a_foreign_layer_is_accepted() {
    let server = Server::start();
    let config = br#"{"architecture":"amd64","os":"windows"}"#.to_vec();
    let layer = bytes(100, 17);
    push_blob(&server, "acme/win", config.clone()).await;
    push_blob(&server, "acme/win", layer.clone()).await;
    let foreign = digest(b"a windows base layer that lives elsewhere");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": config.len(), "digest": digest(&config)},
        "layers": [
            {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "size": 123456, "digest": foreign,
             "urls": ["https://mcr.microsoft.com/v2/windows/servercore/blobs/sha256:0000"]},
            {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": layer.len(), "digest": digest(&layer)},
        ],
    }))
    .unwrap();
    put_manifest(&server, "acme/win", "ltsc", DOCKER_MANIFEST, &manifest).await;
    let response = get(&server, "/v2/acme/win/manifests/ltsc").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        manifest.as_slice()
    );
    // The foreign layer is not a blob of the repository.
    assert_eq!(
        head(&server, &format!("/v2/acme/win/blobs/{foreign}"))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn deleting_a_manifest_by_digest_removes_its_tags() {
    let server = Server::start();
    let (d, manifest) = push_image(&server, "acme/app", "v1", &bytes(100, 18)).await;
    put_manifest(&server, "acme/app", "latest", OCI_MANIFEST, &manifest).await;
    let (other, _) = push_image(&server, "acme/app", "other", &bytes(100, 19)).await;
    assert_eq!(tags(&server, "acme/app").await, ["latest", "other", "v1"]);

    let response = client()
        .delete(server.url(&format!("/v2/acme/app/manifests/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(tags(&server, "acme/app").await, ["other"]);
    for reference in ["v1", "latest", d.as_str()] {
        let response = get(&server, &format!("/v2/acme/app/manifests/{reference}")).await;
        expect_error(response, 404, "MANIFEST_UNKNOWN").await;
    }
    let response = get(&server, &format!("/v2/acme/app/manifests/{other}")).await;
    assert_eq!(response.status(), 200);
    // Deleting it again: unknown.
    let response = client()
        .delete(server.url(&format!("/v2/acme/app/manifests/{d}")))
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "MANIFEST_UNKNOWN").await;
}

#[tokio::test]
async fn deleting_a_tag_removes_only_the_tag() {
    let server = Server::start();
    let (d, manifest) = push_image(&server, "acme/app", "v1", &bytes(100, 20)).await;
    put_manifest(&server, "acme/app", "latest", OCI_MANIFEST, &manifest).await;

    let response = client()
        .delete(server.url("/v2/acme/app/manifests/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(tags(&server, "acme/app").await, ["v1"]);
    let response = get(&server, "/v2/acme/app/manifests/latest").await;
    expect_error(response, 404, "MANIFEST_UNKNOWN").await;
    for reference in ["v1", d.as_str()] {
        let response = get(&server, &format!("/v2/acme/app/manifests/{reference}")).await;
        assert_eq!(response.status(), 200, "{reference} survives");
        assert_eq!(
            response.bytes().await.unwrap().as_ref(),
            manifest.as_slice()
        );
    }
}

#[tokio::test]
async fn tags_list_paginates_with_link_headers() {
    let server = Server::start();
    let (_, manifest) = push_image(&server, "acme/app", "latest", &bytes(100, 21)).await;
    let mut expected: Vec<String> = vec![
        "latest".into(),
        "A1".into(),
        "_under".into(),
        "v1.0.0".into(),
        "v1.0.0-rc.1".into(),
    ];
    for i in 0..20 {
        expected.push(format!("t{i:02}"));
    }
    for tag in expected.iter().filter(|t| *t != "latest") {
        put_manifest(&server, "acme/app", tag, OCI_MANIFEST, &manifest).await;
    }
    expected.sort();
    assert_eq!(expected.len(), 25);
    assert_eq!(
        tags(&server, "acme/app").await,
        expected,
        "no n: every tag, in lexical order"
    );

    let response = get(&server, "/v2/acme/app/tags/list?n=10").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "link"),
        format!(
            "</v2/acme/app/tags/list?n=10&last={}>; rel=\"next\"",
            expected[9]
        )
    );

    let pages = walk_pages(&server, "/v2/acme/app/tags/list?n=10", "tags").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
    assert_eq!(pages.concat(), expected);

    // `last` alone: everything after it.
    let response = get(
        &server,
        &format!("/v2/acme/app/tags/list?last={}", expected[19]),
    )
    .await;
    assert!(!response.headers().contains_key("link"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["tags"], json!(expected[20..]));
    // A page that ends exactly at the last tag has no Link.
    let response = get(
        &server,
        &format!("/v2/acme/app/tags/list?n=5&last={}", expected[19]),
    )
    .await;
    assert!(!response.headers().contains_key("link"), "no next page");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["tags"], json!(expected[20..]));
    // n=0 answers an empty list.
    let response = get(&server, "/v2/acme/app/tags/list?n=0").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["tags"].as_array().map_or(0, Vec::len), 0, "{body}");
}

#[tokio::test]
async fn catalog_paginates_with_link_headers() {
    let server = Server::start();
    let mut expected = Vec::new();
    for i in 0..7 {
        server.admin(&[
            "create-org",
            &format!("team-{i}"),
            "--owner",
            crate::common::ADMIN,
        ]);
        expected.push(format!("acme/repo{i}"));
        expected.push(format!("team-{i}/nested/app"));
    }
    for name in &expected {
        push_blob(&server, name, name.clone().into_bytes()).await;
    }
    expected.sort();

    let response = get(&server, "/v2/_catalog").await;
    assert_eq!(response.status(), 200);
    assert!(!response.headers().contains_key("link"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["repositories"], json!(expected));

    let response = get(&server, "/v2/_catalog?n=5").await;
    let link = header(&response, "link");
    assert!(link.starts_with("</v2/_catalog?n=5&last="), "{link}");
    assert!(link.ends_with(">; rel=\"next\""), "{link}");
    let pages = walk_pages(&server, "/v2/_catalog?n=5", "repositories").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [5, 5, 4]);
    assert_eq!(pages.concat(), expected);
}

#[tokio::test]
async fn nested_names_to_depth_five() {
    let server = Server::start();
    server.admin(&["create-org", "a", "--owner", crate::common::ADMIN]);
    for repo in ["a/b/c/d/e", "acme/blobs/manifests/tags/uploads"] {
        let layer = bytes(200, 22);
        let (d, manifest) = push_image(&server, repo, "v1", &layer).await;
        assert_eq!(tags(&server, repo).await, ["v1"]);
        let response = get(&server, &format!("/v2/{repo}/manifests/{d}")).await;
        assert_eq!(response.status(), 200, "manifest of {repo}");
        assert_eq!(
            response.bytes().await.unwrap().as_ref(),
            manifest.as_slice()
        );
        assert_blob(&server, repo, &digest(&layer), &layer).await;

        // A session upload in the nested name.
        let location = start_upload(&server, repo).await;
        assert!(
            location.contains(&format!("/v2/{repo}/blobs/uploads/")),
            "{location}"
        );
        let blob = bytes(50, 23);
        let d = digest(&blob);
        let response = client()
            .put(location_url(
                &server,
                &location,
                Some(&format!("digest={d}")),
            ))
            .body(blob.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        assert_blob(&server, repo, &d, &blob).await;
    }
    let response = get(&server, "/v2/_catalog").await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["repositories"],
        json!(["a/b/c/d/e", "acme/blobs/manifests/tags/uploads"])
    );
    // The parent of a nested repository is not a repository.
    let response = get(&server, "/v2/a/b/c/d/tags/list").await;
    expect_error(response, 404, "NAME_UNKNOWN").await;
}

/// PUTs an artifact manifest referring to `subject` by digest; returns its digest.
async fn push_artifact(
    server: &Server,
    repo: &str,
    artifact_type: &str,
    subject: (&str, usize),
    payload: &[u8],
) -> String {
    let empty = push_blob(server, repo, b"{}".to_vec()).await;
    let layer = push_blob(server, repo, payload.to_vec()).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": OCI_EMPTY, "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": layer, "size": payload.len()}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject.0, "size": subject.1},
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }))
    .unwrap();
    let d = digest(&manifest);
    let response = client()
        .put(server.url(&format!("/v2/{repo}/manifests/{d}")))
        .header("content-type", OCI_MANIFEST)
        .body(manifest)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
    assert_eq!(
        header(&response, "oci-subject"),
        subject.0,
        "OCI-Subject echoes the subject"
    );
    assert_eq!(header(&response, "docker-content-digest"), d);
    d
}

#[tokio::test]
async fn artifacts_and_the_referrers_api() {
    let server = Server::start();
    assert_eq!(
        digest(b"{}"),
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    let (subject, subject_bytes) = push_image(&server, "acme/app", "v1", &bytes(100, 24)).await;
    let sbom_type = "application/vnd.example.sbom.v1+json";
    let sig_type = "application/vnd.example.signature.v1";
    let sbom = push_artifact(
        &server,
        "acme/app",
        sbom_type,
        (&subject, subject_bytes.len()),
        b"{\"sbom\":1}",
    )
    .await;
    let sig = push_artifact(
        &server,
        "acme/app",
        sig_type,
        (&subject, subject_bytes.len()),
        b"signature",
    )
    .await;

    let response = get(&server, &format!("/v2/acme/app/referrers/{subject}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), OCI_INDEX);
    assert!(!response.headers().contains_key("oci-filters-applied"));
    let index: Value = response.json().await.unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2, "{index}");
    for (d, artifact_type) in [(&sbom, sbom_type), (&sig, sig_type)] {
        let entry = manifests
            .iter()
            .find(|m| m["digest"] == d.as_str())
            .unwrap_or_else(|| panic!("{d} in {index}"));
        assert_eq!(entry["mediaType"], OCI_MANIFEST);
        assert_eq!(entry["artifactType"], artifact_type);
        assert!(entry["size"].as_u64().unwrap() > 0);
        assert_eq!(
            entry["annotations"]["org.opencontainers.image.created"],
            "2024-01-01T00:00:00Z"
        );
        // The artifact itself is fetchable and sized as listed.
        let response = get(&server, &format!("/v2/acme/app/manifests/{d}")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.bytes().await.unwrap().len() as u64,
            entry["size"].as_u64().unwrap()
        );
    }

    // A query value: `+` must be percent-encoded, or it reads as a space.
    let filter = sbom_type.replace('+', "%2B");
    let response = get(
        &server,
        &format!("/v2/acme/app/referrers/{subject}?artifactType={filter}"),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "oci-filters-applied"), "artifactType");
    let index: Value = response.json().await.unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{index}");
    assert_eq!(manifests[0]["digest"], sbom.as_str());
    assert_eq!(manifests[0]["artifactType"], sbom_type);

    // A digest nobody refers to: an empty index, not an error.
    let response = get(
        &server,
        &format!("/v2/acme/app/referrers/{}", digest(b"nothing")),
    )
    .await;
    assert_eq!(response.status(), 200);
    let index: Value = response.json().await.unwrap();
    assert_eq!(index["manifests"], json!([]));
}

#[tokio::test]
async fn referrers_of_a_subject_not_pushed_yet() {
    // The spec allows pushing a referrer before its subject.
    let server = Server::start();
    let subject = digest(b"a manifest pushed later");
    let sbom = push_artifact(
        &server,
        "acme/app",
        "application/vnd.example.sbom",
        (&subject, 23),
        b"x",
    )
    .await;
    let response = get(&server, &format!("/v2/acme/app/referrers/{subject}")).await;
    assert_eq!(response.status(), 200);
    let index: Value = response.json().await.unwrap();
    assert_eq!(index["manifests"][0]["digest"], sbom.as_str());
}

#[tokio::test]
async fn sha512_digests() {
    let server = Server::start();
    let blob = bytes(2_500, 25);
    let d = digest512(&blob);
    let response = client()
        .post(server.url(&format!("/v2/acme/app/blobs/uploads/?digest={d}")))
        .body(blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
    assert_eq!(
        header(&response, "location"),
        format!("/v2/acme/app/blobs/{d}")
    );
    assert_eq!(header(&response, "docker-content-digest"), d);
    let response = head(&server, &format!("/v2/acme/app/blobs/{d}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-length"), "2500");
    assert_blob(&server, "acme/app", &d, &blob).await;
    assert_eq!(server.blobs().blob_copies(&d.parse().unwrap()).await, 1);

    // The same through a chunked session.
    let blob = bytes(1_500, 26);
    let d = digest512(&blob);
    let location = start_upload(&server, "acme/app").await;
    let response = client()
        .patch(&location)
        .header("content-range", "0-999")
        .body(blob[..1000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = location_url(&server, &header(&response, "location"), None);
    let response = client()
        .put(location_url(
            &server,
            &location,
            Some(&format!("digest={d}")),
        ))
        .body(blob[1000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
    assert_blob(&server, "acme/app", &d, &blob).await;
}

#[tokio::test]
async fn pushing_a_tag_again_moves_it() {
    let server = Server::start();
    let (first, _) = push_image(&server, "acme/app", "latest", &bytes(100, 27)).await;
    let (second, _) = push_image(&server, "acme/app", "latest", &bytes(100, 28)).await;
    assert_ne!(first, second);
    assert_eq!(tags(&server, "acme/app").await, ["latest"]);
    let response = get(&server, "/v2/acme/app/manifests/latest").await;
    assert_eq!(header(&response, "docker-content-digest"), second);
    // The first manifest is still there by digest.
    assert_eq!(
        get(&server, &format!("/v2/acme/app/manifests/{first}"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn image_index_round_trips() {
    let server = Server::start();
    let (amd64, amd64_bytes) = push_image(&server, "acme/multi", "amd64", &bytes(100, 29)).await;
    let (arm64, arm64_bytes) = push_image(&server, "acme/multi", "arm64", &bytes(100, 30)).await;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd64, "size": amd64_bytes.len(), "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": arm64, "size": arm64_bytes.len(), "platform": {"architecture": "arm64", "os": "linux"}},
        ],
    }))
    .unwrap();
    put_manifest(&server, "acme/multi", "latest", OCI_INDEX, &index).await;
    let response = client()
        .get(server.url("/v2/acme/multi/manifests/latest"))
        .header("accept", format!("{OCI_MANIFEST}, {OCI_INDEX}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), OCI_INDEX);
    assert_eq!(header(&response, "docker-content-digest"), digest(&index));
    assert_eq!(response.bytes().await.unwrap().as_ref(), index.as_slice());
}

#[tokio::test]
async fn content_range_with_bytes_prefix_and_total() {
    let server = Server::start();
    let mut location = start_upload(&server, "acme/app").await;
    let blob = bytes(200, 31);
    let d = digest(&blob);
    for range in ["bytes 0-99/200", "bytes=100-199/*"] {
        let (start, end) = (
            if range.contains("=100") { 100 } else { 0 },
            if range.contains("=100") { 199 } else { 99 },
        );
        let response = client()
            .patch(&location)
            .header("content-range", range)
            .body(blob[start..=end].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "Content-Range: {range}");
        assert_eq!(header(&response, "range"), format!("0-{end}"));
        location = location_url(&server, &header(&response, "location"), None);
    }
    let response = client()
        .put(location_url(
            &server,
            &location,
            Some(&format!("digest={d}")),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_blob(&server, "acme/app", &d, &blob).await;
}

#[tokio::test]
async fn empty_blob() {
    let server = Server::start();
    let d = push_blob(&server, "acme/app", Vec::new()).await;
    assert_eq!(
        d,
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let response = head(&server, &format!("/v2/acme/app/blobs/{d}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-length"), "0");
    assert_blob(&server, "acme/app", &d, &[]).await;
}

#[tokio::test]
async fn mount_without_from_starts_a_session() {
    let server = Server::start();
    let d = push_blob(&server, "acme/source", bytes(10, 32)).await;
    for query in [format!("mount={d}"), format!("mount={d}&from=Not/Valid")] {
        let response = client()
            .post(server.url(&format!("/v2/acme/target/blobs/uploads/?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "?{query}");
        assert!(response.headers().contains_key("docker-upload-uuid"));
    }
    assert_eq!(
        head(&server, &format!("/v2/acme/target/blobs/{d}"))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn referrers_use_the_config_type_and_forget_deleted_manifests() {
    let server = Server::start();
    let (subject, subject_bytes) = push_image(&server, "acme/app", "v1", &bytes(100, 33)).await;
    // No artifactType: the config's media type stands in for it.
    let config = br#"{"signed":"yes"}"#.to_vec();
    let config_type = "application/vnd.example.signature.config.v1+json";
    push_blob(&server, "acme/app", config.clone()).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": digest(&config), "size": config.len()},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_bytes.len()},
    }))
    .unwrap();
    let d = digest(&manifest);
    put_manifest(&server, "acme/app", &d, OCI_MANIFEST, &manifest).await;
    let sbom = push_artifact(
        &server,
        "acme/app",
        "application/vnd.example.sbom",
        (&subject, subject_bytes.len()),
        b"s",
    )
    .await;

    let response = get(&server, &format!("/v2/acme/app/referrers/{subject}")).await;
    let index: Value = response.json().await.unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["digest"] == d.as_str())
        .cloned();
    assert_eq!(
        entry.unwrap_or_default()["artifactType"],
        config_type,
        "{index}"
    );
    let filter = config_type.replace('+', "%2B");
    let response = get(
        &server,
        &format!("/v2/acme/app/referrers/{subject}?artifactType={filter}"),
    )
    .await;
    let index: Value = response.json().await.unwrap();
    assert_eq!(
        index["manifests"].as_array().map(Vec::len),
        Some(1),
        "{index}"
    );

    let response = client()
        .delete(server.url(&format!("/v2/acme/app/manifests/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let response = get(&server, &format!("/v2/acme/app/referrers/{subject}")).await;
    let index: Value = response.json().await.unwrap();
    let digests: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        digests,
        [sbom.as_str()],
        "a deleted referrer is no longer listed"
    );
}

#[tokio::test]
async fn sha512_manifest_reference() {
    let server = Server::start();
    let (_, manifest) = push_image(&server, "acme/app", "v1", &bytes(100, 34)).await;
    let d = digest512(&manifest);
    let response = client()
        .put(server.url(&format!("/v2/acme/app/manifests/{d}")))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
    assert_eq!(header(&response, "docker-content-digest"), d);
    assert_eq!(
        header(&response, "location"),
        format!("/v2/acme/app/manifests/{d}")
    );
    let response = get(&server, &format!("/v2/acme/app/manifests/{d}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "docker-content-digest"), d);
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        manifest.as_slice()
    );
}

#[tokio::test]
async fn docker_manifest_list_round_trips() {
    const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    let server = Server::start();
    let mut children = Vec::new();
    for (arch, seed) in [("amd64", 40u8), ("arm64", 41)] {
        let config = format!(r#"{{"architecture":"{arch}","os":"linux"}}"#).into_bytes();
        let layer = bytes(300, seed);
        push_blob(&server, "acme/dlist", config.clone()).await;
        push_blob(&server, "acme/dlist", layer.clone()).await;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "size": config.len(), "digest": digest(&config)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": layer.len(), "digest": digest(&layer)}],
        }))
        .unwrap();
        put_manifest(
            &server,
            "acme/dlist",
            &digest(&manifest),
            DOCKER_MANIFEST,
            &manifest,
        )
        .await;
        children.push(json!({"mediaType": DOCKER_MANIFEST, "size": manifest.len(), "digest": digest(&manifest),
            "platform": {"architecture": arch, "os": "linux"}}));
    }
    let list = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": children}),
    )
    .unwrap();
    put_manifest(&server, "acme/dlist", "latest", DOCKER_LIST, &list).await;
    let response = client()
        .get(server.url("/v2/acme/dlist/manifests/latest"))
        .header("accept", format!("{DOCKER_MANIFEST}, {DOCKER_LIST}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), DOCKER_LIST);
    assert_eq!(header(&response, "docker-content-digest"), digest(&list));
    assert_eq!(response.bytes().await.unwrap().as_ref(), list.as_slice());
    // Each child is served under its digest.
    for child in &children {
        let response = client()
            .get(server.url(&format!(
                "/v2/acme/dlist/manifests/{}",
                child["digest"].as_str().unwrap()
            )))
            .header("accept", DOCKER_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "content-type"), DOCKER_MANIFEST);
    }
}

#[tokio::test]
async fn suffix_ranges_serve_the_last_bytes() {
    let server = Server::start();
    let blob = bytes(1_000, 6);
    let d = push_blob(&server, "acme/app", blob.clone()).await;
    let url = server.url(&format!("/v2/acme/app/blobs/{d}"));
    let ranged = |range: &'static str| client().get(&url).header("range", range).send();

    let response = ranged("bytes=-10").await.unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(header(&response, "content-range"), "bytes 990-999/1000");
    assert_eq!(header(&response, "content-length"), "10");
    assert_eq!(response.bytes().await.unwrap().as_ref(), &blob[990..]);

    // A suffix longer than the blob is the whole blob, still as a range.
    let response = ranged("bytes=-5000").await.unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(header(&response, "content-range"), "bytes 0-999/1000");
    assert_eq!(response.bytes().await.unwrap().as_ref(), blob.as_slice());

    // An empty suffix selects nothing (RFC 9110).
    let response = ranged("bytes=-0").await.unwrap();
    assert_eq!(response.status(), 416);
    assert_eq!(header(&response, "content-range"), "bytes */1000");
}
