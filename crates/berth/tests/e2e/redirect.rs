//! `blob_redirect`: with blobs in S3, blob GETs answer `307` to a presigned URL of the
//! bucket, which serves the bytes (ranges too) without credentials and expires; clients
//! follow it. Needs the test Garage cluster (`scripts/services start … garage`).

use crate::common::layout::{
    copy_all, layout_blobs, layout_manifest_digest, skopeo, write_two_platform_index,
};
use crate::common::{
    Server, Stores, anonymous_client, client, digest, push_blob, require, temp_path,
};

/// A server keeping blobs under a fresh prefix of the test bucket, redirecting blob GETs to
/// URLs valid `secs` seconds.
fn redirecting_server(secs: u64) -> Server {
    let secs = secs.to_string();
    let env = [
        ("BERTH_BLOB_REDIRECT", "true"),
        ("BERTH_BLOB_REDIRECT_SECS", secs.as_str()),
    ];
    Server::start_node(
        Stores::of_run().in_s3(),
        env.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        None,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn blob_gets_redirect_to_a_presigned_url_that_serves_ranges_and_expires() {
    let server = redirecting_server(2);
    let small = b"a small blob, its own object".to_vec();
    let large: Vec<u8> = (0..9_000_000u32).map(|i| (i % 251) as u8).collect();
    for blob in [small, large] {
        let d = push_blob(&server, "acme/redirected", blob.clone()).await;
        let answer = client()
            .get(server.url(&format!("/v2/acme/redirected/blobs/{d}")))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 307, "a blob GET redirects");
        assert_eq!(answer.headers()["docker-content-digest"], d.as_str());
        let location = answer.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.contains("X-Amz-Signature="),
            "to a presigned URL: {location}"
        );
        // The URL needs no credentials of Berth's, and serves the bytes and ranges.
        let bytes = anonymous_client().get(&location).send().await.unwrap();
        assert_eq!(bytes.status(), 200);
        assert!(
            bytes.bytes().await.unwrap() == blob,
            "the URL serves the blob"
        );
        let part = anonymous_client()
            .get(&location)
            .header("range", "bytes=3-9")
            .send()
            .await
            .unwrap();
        assert_eq!(part.status(), 206);
        assert_eq!(part.bytes().await.unwrap(), &blob[3..10]);
        // A client following redirects (as registries' clients do) gets the blob.
        let followed = reqwest::Client::new()
            .get(server.url(&format!("/v2/acme/redirected/blobs/{d}")))
            .basic_auth("admin", Some(&server.admin_token))
            .send()
            .await
            .unwrap();
        assert_eq!(followed.status(), 200);
        assert_eq!(digest(&followed.bytes().await.unwrap()), d);
        // HEAD still answers here, with the size.
        let head = client()
            .head(server.url(&format!("/v2/acme/redirected/blobs/{d}")))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(
            head.headers()["content-length"],
            blob.len().to_string().as_str()
        );
        // Expired URLs serve nothing.
        if blob.len() > 1000 {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            let late = anonymous_client().get(&location).send().await.unwrap();
            let status = late.status();
            let body = late.text().await.unwrap();
            // AWS answers 403 "Request has expired"; Garage 400 "Date is too old".
            assert!(
                status.is_client_error() && (body.contains("xpired") || body.contains("too old")),
                "the URL expired: {status} {body}"
            );
        }
    }
    // Who may not read the package is not redirected anywhere.
    let d = digest(b"a small blob, its own object");
    let stranger = anonymous_client()
        .get(server.url(&format!("/v2/acme/redirected/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 401);
    assert!(stranger.headers().get("location").is_none());
}

#[test]
fn skopeo_pulls_through_redirects() {
    require("skopeo");
    let server = redirecting_server(300);
    let (_keep, dir) = temp_path();
    let layout = dir.join("multi");
    write_two_platform_index(&layout);
    let remote = format!("docker://{}/acme/redirected:v1", server.host);
    copy_all(&format!("oci:{}:v1", layout.display()), &remote);
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &remote]);
    let back = dir.join("back");
    copy_all(&remote, &format!("oci:{}:v1", back.display()));
    assert_eq!(layout_manifest_digest(&back, "v1"), digest(raw.as_bytes()));
    // Every blob came back whole (layout_blobs checks each against its name); skopeo
    // rewrites what it pushes of an index, so they are not compared with the source.
    let pulled = layout_blobs(&back);
    assert!(
        pulled.len() >= 7,
        "index, 2 manifests, 2 configs, 2 layers: {pulled:?}"
    );
}
