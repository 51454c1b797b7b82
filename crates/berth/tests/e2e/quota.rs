//! Storage quotas per account over real HTTP: pushes within the quota pass and show in the
//! usage; a push that would go over it answers `DENIED` with the usage and the limit at the
//! first request that can know (the upload `POST`, a `PATCH` or monolithic push by its
//! declared length before its body is read, the final `PUT` by its size, a mount); a blob
//! the account holds never counts twice; who may read and set quotas; bad input; `berth
//! admin`; the warning at 90 %.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::github::{Api, github_error};
use crate::common::world::World;
use crate::common::{
    Server, client, digest, expect_error, location_url, push_blob, push_blob_with, server_log,
    start_upload, with_auth,
};

/// `n` bytes that differ with `seed`.
fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
}

/// Sets `account`'s quota as the site administrator; the answer.
async fn set_quota(server: &Server, account: &str, limit: u64) -> Value {
    Api::new(server, &server.admin_token)
        .expect(
            "PUT",
            &format!("/admin/storage-quotas/{account}"),
            Some(json!({ "limit_bytes": limit })),
            200,
        )
        .await
}

/// `acme`'s usage and quota, as its owner (the site administrator) reads them.
async fn acme(server: &Server) -> Value {
    Api::new(server, &server.admin_token)
        .expect("GET", "/orgs/acme/packages/quota", None, 200)
        .await
}

/// Sends a raw request head announcing a body it never sends; the response, which must come
/// without the body (within 10 s).
async fn head_only(server: &Server, head: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(&server.host).await.unwrap();
    tcp.write_all(with_auth(head).as_bytes()).await.unwrap();
    tcp.flush().await.unwrap();
    let mut response = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut response))
        .await
        .expect("the server answers before the body arrives")
        .unwrap();
    String::from_utf8_lossy(&response[..read]).into_owned()
}

/// After a refused final `PUT` to `put` (an upload of `acme/app`): `blob` is not in the
/// repository, the session is gone, and `acme` uses nothing.
async fn assert_nothing_kept(server: &Server, put: &str, blob: &[u8]) {
    let head = client()
        .head(server.url(&format!("/v2/acme/app/blobs/{}", digest(blob))))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 404, "the blob is not in the repository");
    let again = client().put(put).send().await.unwrap();
    expect_error(again, 404, "BLOB_UPLOAD_UNKNOWN").await;
    assert_eq!(acme(server).await["used_bytes"], 0);
}

#[tokio::test]
async fn pushes_within_the_quota_pass_and_show_in_the_usage() {
    let server = Server::start();
    let set = set_quota(&server, "acme", 1_000).await;
    assert_eq!(
        set,
        json!({"account": "acme", "used_bytes": 0, "limit_bytes": 1000, "used_percent": 0.0})
    );
    push_blob(&server, "acme/app", bytes(300, 1)).await;
    let location = start_upload(&server, "acme/app").await;
    let chunk = bytes(400, 2);
    let response = client()
        .patch(&location)
        .header("content-range", "0-399")
        .body(chunk.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let response = client()
        .put(location_url(
            &server,
            &location,
            Some(&format!("digest={}", digest(&chunk))),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        acme(&server).await,
        json!({"account": "acme", "used_bytes": 700, "limit_bytes": 1000, "used_percent": 70.0})
    );
}

#[tokio::test]
async fn a_layer_shared_by_two_packages_counts_once() {
    let server = Server::start();
    let layer = bytes(600, 3);
    push_blob(&server, "acme/one", layer.clone()).await;
    set_quota(&server, "acme", 600).await;
    // The account is full, yet the same bytes go in another package and a mount: they are
    // held already.
    push_blob(&server, "acme/two", layer.clone()).await;
    let response = client()
        .post(server.url(&format!(
            "/v2/acme/three/blobs/uploads/?mount={}&from=acme/one",
            digest(&layer)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(acme(&server).await["used_bytes"], 600);
    // While a new blob is refused.
    let refused = push_blob_with(&client(), &server, "acme/two", bytes(1, 4)).await;
    let message = expect_error(refused, 403, "DENIED").await;
    assert_eq!(
        message,
        "account acme is at 600 B of its 600 B storage quota; this upload needs 1 B more: delete package versions it no longer needs, or ask a site administrator to raise the quota"
    );
}

#[tokio::test]
async fn a_full_account_is_refused_at_the_upload_post() {
    let server = Server::start();
    push_blob(&server, "acme/app", bytes(100, 5)).await;
    set_quota(&server, "acme", 100).await;
    let response = client()
        .post(server.url("/v2/acme/other/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let message = expect_error(response, 403, "DENIED").await;
    assert!(
        message.starts_with(
            "account acme is at 100 B of its 100 B storage quota; no upload can start"
        ),
        "{message}"
    );
    // Other accounts push as before.
    push_blob(&server, "admin/app", bytes(5_000, 6)).await;
    // Clearing the quota lets acme push again.
    Api::new(&server, &server.admin_token)
        .expect("DELETE", "/admin/storage-quotas/acme", None, 204)
        .await;
    start_upload(&server, "acme/other").await;
    assert_eq!(acme(&server).await["limit_bytes"], Value::Null);
}

#[tokio::test]
async fn a_monolithic_push_too_large_is_refused_before_its_body() {
    let server = Server::start();
    set_quota(&server, "acme", 10 << 30).await;
    let d = digest(b"never sent");
    let answer = head_only(
        &server,
        &format!(
            "POST /v2/acme/app/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: {}\r\nContent-Length: 12884901888\r\nContent-Type: application/octet-stream\r\n\r\n",
            server.host
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("DENIED"), "{answer}");
    assert!(
        answer.contains(
            "account acme is at 0 B of its 10.0 GiB storage quota; this upload needs 12.0 GiB more"
        ),
        "{answer}"
    );
    assert_eq!(acme(&server).await["used_bytes"], 0);
}

#[tokio::test]
async fn a_chunk_that_would_pass_the_quota_is_refused_before_its_body() {
    let server = Server::start();
    set_quota(&server, "acme", 1_000).await;
    let location = start_upload(&server, "acme/app").await;
    let first = bytes(500, 7);
    let response = client()
        .patch(&location)
        .header("content-range", "0-499")
        .body(first.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let path = location.trim_start_matches(&server.base);
    let answer = head_only(
        &server,
        &format!(
            "PATCH {path} HTTP/1.1\r\nHost: {}\r\nContent-Range: 500-1599\r\nContent-Length: 1100\r\nContent-Type: application/octet-stream\r\n\r\n",
            server.host
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(
        answer.contains(
            "account acme is at 0 B of its 1000 B storage quota (plus 500 B held by open uploads); this upload needs 1.1 KiB more"
        ),
        "{answer}"
    );
    // The upload keeps what it had and finishes within the quota.
    let response = client()
        .put(location_url(
            &server,
            &location,
            Some(&format!("digest={}", digest(&first))),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(acme(&server).await["used_bytes"], 500);
}

#[tokio::test]
async fn a_body_without_a_length_is_cut_off_where_the_quota_ends() {
    let server = Server::start();
    set_quota(&server, "acme", 1_000).await;
    let location = start_upload(&server, "acme/app").await;
    // A streamed body (chunked: no Content-Length) past what is left.
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(
        (0..4).map(|i| Ok::<_, std::io::Error>(bytes(400, i))),
    ));
    let response = client().patch(&location).body(body).send().await.unwrap();
    let message = expect_error(response, 403, "DENIED").await;
    assert!(
        message.contains("this upload needs at least")
            && message.contains("nothing of this request was kept"),
        "{message}"
    );
    let status = client().get(&location).send().await.unwrap();
    assert_eq!(status.status(), 204);
    assert_eq!(crate::common::header(&status, "range"), "0-0");
}

#[tokio::test]
async fn the_final_put_is_refused_by_the_verified_size() {
    let server = Server::start();
    set_quota(&server, "acme", 1_000).await;
    let location = start_upload(&server, "acme/app").await;
    let blob = bytes(800, 8);
    let response = client()
        .patch(&location)
        .header("content-range", "0-799")
        .body(blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    // The quota shrinks while the upload is open.
    set_quota(&server, "acme", 500).await;
    let put = location_url(
        &server,
        &location,
        Some(&format!("digest={}", digest(&blob))),
    );
    let message = expect_error(client().put(&put).send().await.unwrap(), 403, "DENIED").await;
    assert!(
        message.starts_with(
            "account acme is at 0 B of its 500 B storage quota; this upload needs 800 B more"
        ),
        "{message}"
    );
    assert_nothing_kept(&server, &put, &blob).await;
}

/// An account without a quota when its final `PUT` began skips the check before the link:
/// a quota set while that body streams is still enforced, by the link's transaction.
#[tokio::test]
async fn a_quota_set_while_the_final_put_streams_refuses_the_link() {
    let server = Server::start();
    let location = start_upload(&server, "acme/app").await;
    let blob = bytes(800, 10);
    let put = location_url(
        &server,
        &location,
        Some(&format!("digest={}", digest(&blob))),
    );
    let path = put.strip_prefix(&server.base).unwrap_or(&put);
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: 800\r\nConnection: close\r\n\r\n",
        server.host
    );
    let mut tcp = tokio::net::TcpStream::connect(&server.host).await.unwrap();
    tcp.write_all(with_auth(&head).as_bytes()).await.unwrap();
    tcp.write_all(&blob[..400]).await.unwrap();
    tcp.flush().await.unwrap();
    // The request has read its allowance (no quota) and is streaming its body.
    tokio::time::sleep(Duration::from_millis(300)).await;
    set_quota(&server, "acme", 500).await;
    tcp.write_all(&blob[400..]).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut response))
        .await
        .expect("the server answers")
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert!(
        response.contains(
            "account acme is at 0 B of its 500 B storage quota; this upload needs 800 B more"
        ),
        "{response}"
    );
    assert_nothing_kept(&server, &put, &blob).await;
}

#[tokio::test]
async fn a_mount_of_a_blob_the_account_lacks_is_refused() {
    let server = Server::start();
    let foreign = bytes(800, 9);
    let d = push_blob(&server, "admin/source", foreign).await;
    push_blob(&server, "acme/app", bytes(300, 10)).await;
    set_quota(&server, "acme", 1_000).await;
    let response = client()
        .post(server.url(&format!(
            "/v2/acme/copy/blobs/uploads/?mount={d}&from=admin/source"
        )))
        .send()
        .await
        .unwrap();
    let message = expect_error(response, 403, "DENIED").await;
    assert!(
        message.starts_with(
            "account acme is at 300 B of its 1000 B storage quota; this upload needs 800 B more"
        ),
        "{message}"
    );
    let head = client()
        .head(server.url(&format!("/v2/acme/copy/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 404, "nothing was mounted");
    assert_eq!(acme(&server).await["used_bytes"], 300);
    let metrics = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"berth_storage_quota_refusals_total{request="blob_mount"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn quotas_are_set_by_site_admins_and_read_by_owners() {
    let server = Server::start();
    let world = World::new(&server);
    let member = world.user("mark").member("member").await;
    let owner = world.user("olga").member("admin").await;
    let mark = world.as_user(&member);
    let (status, body) = mark
        .call(
            "PUT",
            "/admin/storage-quotas/acme",
            Some(json!({"limit_bytes": 1})),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        github_error(&body),
        "Must be a site administrator to do this"
    );
    let (status, _) = world
        .as_user(&owner)
        .call("DELETE", "/admin/storage-quotas/acme", None)
        .await;
    assert_eq!(
        status, 403,
        "an organization owner is no site administrator"
    );
    let (status, _) = mark.call("GET", "/orgs/acme/packages/quota", None).await;
    assert_eq!(status, 403, "members do not read the organization's quota");
    let (status, _) = Api::anonymous(&server)
        .call("GET", "/orgs/acme/packages/quota", None)
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        acme(&server).await["limit_bytes"],
        Value::Null,
        "nothing set"
    );

    set_quota(&server, "mark", 2_000).await;
    let own = mark
        .expect("GET", "/users/mark/packages/quota", None, 200)
        .await;
    assert_eq!(own["limit_bytes"], 2000, "a user reads their own");
    let admin = Api::new(&server, &server.admin_token)
        .expect("GET", "/admin/storage-quotas/mark", None, 200)
        .await;
    assert_eq!(admin, own, "site administrators read every account's");
    let read = world
        .as_user(&owner)
        .expect("GET", "/orgs/acme/packages/quota", None, 200)
        .await;
    assert_eq!(read["account"], "acme", "an owner reads the organization's");
    let (status, _) = world
        .as_user(&owner)
        .call("GET", "/users/mark/packages/quota", None)
        .await;
    assert_eq!(status, 403, "nobody else reads a user's");
}

#[tokio::test]
async fn bad_quota_input_answers_422_naming_the_field() {
    let server = Server::start();
    let admin = Api::new(&server, &server.admin_token);
    for body in [
        json!({}),
        json!({"limit_bytes": null}),
        json!({"limit_bytes": -1}),
        json!({"limit_bytes": 1.5}),
        json!({"limit_bytes": "10GiB"}),
        json!({"limit_bytes": 9_223_372_036_854_775_808u64}),
    ] {
        let (status, answer) = admin
            .call("PUT", "/admin/storage-quotas/acme", Some(body.clone()))
            .await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(answer["errors"][0]["field"], "limit_bytes", "{answer}");
        assert!(
            answer["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("limit_bytes") || m.contains("number of bytes")),
            "{answer}"
        );
    }
    assert_eq!(
        acme(&server).await["limit_bytes"],
        Value::Null,
        "nothing stored"
    );
    let (status, answer) = admin
        .call(
            "PUT",
            "/admin/storage-quotas/nobody",
            Some(json!({"limit_bytes": 1})),
        )
        .await;
    assert_eq!(status, 404, "{answer}");
}

#[tokio::test]
async fn berth_admin_sets_shows_and_clears_quotas() {
    let server = Server::start();
    push_blob(&server, "acme/app", bytes(512, 11)).await;
    let set = server.admin(&["set-quota", "acme", "2KiB"]);
    assert_eq!(
        set,
        "account: acme\nused: 512 B (512 bytes)\nlimit: 2.0 KiB (2048 bytes)"
    );
    assert_eq!(acme(&server).await["limit_bytes"], 2048);
    assert_eq!(server.admin(&["quota", "acme"]), set);
    server.admin(&["set-quota", "acme", "none"]);
    assert_eq!(acme(&server).await["limit_bytes"], Value::Null);
    let bad = server.try_admin(&["set-quota", "acme", "lots"]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("`lots` is not a size"), "{stderr}");
    let unknown = server.try_admin(&["quota", "nobody"]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("there is no account named `nobody`")
    );
}

#[tokio::test]
async fn crossing_90_percent_logs_a_warning_once_per_crossing() {
    let server = Server::start();
    set_quota(&server, "acme", 1_000).await;
    let warnings = || {
        server_log()
            .iter()
            .filter(|l| l.contains("account acme is at") && l.contains("over 90 %"))
            .count()
    };
    push_blob(&server, "acme/app", bytes(500, 12)).await;
    let near = push_blob(&server, "acme/app", bytes(420, 13)).await;
    push_blob(&server, "acme/app", bytes(20, 14)).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // the log is flushed every 100 ms
    assert_eq!(warnings(), 1, "one warning for one crossing");
    // Below again (the blob unlinked), then over again: a second crossing.
    let response = client()
        .delete(server.url(&format!("/v2/acme/app/blobs/{near}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(acme(&server).await["used_bytes"], 520);
    push_blob(&server, "acme/other", bytes(400, 15)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(warnings(), 2);
    let metrics = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("berth_storage_quota_warnings_total 2"),
        "{metrics}"
    );
}
