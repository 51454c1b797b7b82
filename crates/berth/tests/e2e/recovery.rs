//! Uploads a stopped process left half-finished: a final `PUT` killed between moving the bytes
//! to their content address and committing the metadata, and a session whose file is gone.
//! The state a `kill -9` leaves in that window is made by hand (the server killed, then the
//! metadata store's own API, and the blob store's own port or its inspector), so each case is
//! hit every time, on either blob store.

use crate::common::meta::stopped_in_a_final_put;
use crate::common::{Server, client, digest, expect_error, location_url, start_upload};

/// The upload id of an upload URL.
fn upload_id(location: &str) -> String {
    let path = location.split('?').next().unwrap();
    path.rsplit('/').next().unwrap().to_owned()
}

async fn patch(location: &str, bytes: Vec<u8>) -> String {
    let response = client()
        .patch(location)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    crate::common::header(&response, "location")
}

/// `url` (of a server since restarted on another port) on `server` as it is now.
fn on(server: &Server, url: &str) -> String {
    let path = url.splitn(4, '/').nth(3).unwrap_or("");
    server.url(&format!("/{path}"))
}

fn with_digest(url: &str, d: &str) -> String {
    format!(
        "{url}{}digest={d}",
        if url.contains('?') { "&" } else { "?" }
    )
}

/// The state a final PUT stopped in leaves: the session marked verified, the bytes in the
/// upload (`moved: false`) or already under their digest (`moved: true`).
async fn interrupted_finish(moved: bool) {
    let mut server = Server::start();
    let repo = "acme/recover";
    let location = start_upload(&server, repo).await;
    let head = vec![1u8; 70_000];
    let tail = vec![2u8; 30_000];
    let next = patch(&location, head.clone()).await;
    let location = location_url(&server, &next, None);
    let whole: Vec<u8> = [head, tail.clone()].concat();
    let d = digest(&whole);
    server.kill();

    let id = upload_id(&location);
    stopped_in_a_final_put(&server, repo, &id, &tail, &d, moved).await;

    server.restart();
    let got = client()
        .get(server.url(&format!("/v2/{repo}/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200, "the blob was completed at startup");
    assert_eq!(got.bytes().await.unwrap().as_ref(), whole.as_slice());
    let status = client().get(on(&server, &location)).send().await.unwrap();
    expect_error(status, 404, "BLOB_UPLOAD_UNKNOWN").await;
    let blobs = server.blobs();
    assert_eq!(
        blobs.upload_bytes(&id).await,
        None,
        "no upload file is left behind"
    );
    assert_eq!(blobs.uploads_held().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_final_put_stopped_after_moving_the_bytes_is_completed_at_startup() {
    interrupted_finish(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_final_put_stopped_before_moving_the_bytes_is_completed_at_startup() {
    interrupted_finish(false).await;
}

/// What an unmarked session looked like after the old final PUT was killed between its
/// rename and its commit: received bytes, and no upload file. It used to answer 500 to every
/// finish for 7 days.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_whose_bytes_are_gone_is_settled_not_left_failing() {
    let mut server = Server::start();
    let repo = "acme/lost";
    let location = start_upload(&server, repo).await;
    let whole = vec![3u8; 50_000];
    let d = digest(&whole);
    let next = patch(&location, whole.clone()).await;
    let location = location_url(&server, &next, None);
    server.kill();
    server
        .blobs()
        .move_upload_to_blob(&upload_id(&location), &d.parse().unwrap())
        .await;

    server.restart();
    let location = on(&server, &location);
    let status = client().get(&location).send().await.unwrap();
    expect_error(status, 404, "BLOB_UPLOAD_UNKNOWN").await;
    let finish = client()
        .put(with_digest(&location, &d))
        .send()
        .await
        .unwrap();
    expect_error(finish, 404, "BLOB_UPLOAD_UNKNOWN").await;
    // The client starts again, and that works.
    let again = crate::common::push_blob(&server, repo, whole.clone()).await;
    assert_eq!(again, d);
}

/// The same state reached while the server runs (a session's file removed under it): the
/// next request settles it with an answer the client can act on instead of a 500.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_to_a_session_whose_bytes_are_gone_gets_upload_unknown() {
    let server = Server::start();
    let location = start_upload(&server, "acme/gone").await;
    let next = patch(&location, vec![4u8; 10_000]).await;
    let location = location_url(&server, &next, None);
    server
        .blobs()
        .remove_upload_bytes(&upload_id(&location))
        .await;
    let response = client()
        .patch(&location)
        .header("content-type", "application/octet-stream")
        .body(vec![5u8; 10])
        .send()
        .await
        .unwrap();
    let message = expect_error(response, 404, "BLOB_UPLOAD_UNKNOWN").await;
    assert!(message.contains("start the upload again"), "{message}");
    let status = client().get(&location).send().await.unwrap();
    expect_error(status, 404, "BLOB_UPLOAD_UNKNOWN").await;
}

/// Chaos, as the finding was made: final PUTs killed at moments spread over their run. After
/// each restart the session answers what a client can act on — its blob stored, or
/// `BLOB_UPLOAD_UNKNOWN` — never a 500, and a stored blob has exactly the pushed bytes.
#[tokio::test(flavor = "multi_thread")]
async fn final_puts_killed_at_any_moment_leave_no_failing_session() {
    let mut server = Server::start();
    let repo = "acme/chaos";
    for round in 0u8..12 {
        let location = start_upload(&server, repo).await;
        let head = vec![round; 2 << 20];
        let tail = vec![round.wrapping_add(100); 6 << 20];
        let next = patch(&location, head.clone()).await;
        let location = location_url(&server, &next, None);
        let whole: Vec<u8> = [head, tail.clone()].concat();
        let d = digest(&whole);
        let put = client().put(with_digest(&location, &d)).body(tail).send();
        let put = tokio::spawn(put);
        // From before the body is read to after the answer, in steps.
        tokio::time::sleep(std::time::Duration::from_millis(u64::from(round) * 6)).await;
        server.restart();
        let answered = put.await.unwrap().map(|r| r.status().as_u16());
        let location = on(&server, &location);
        let status = client().get(&location).send().await.unwrap();
        let status = status.status().as_u16();
        assert!(
            status == 204 || status == 404,
            "round {round}: the session after a kill answered {status} (PUT got {answered:?})"
        );
        let finish = client()
            .put(with_digest(&location, &d))
            .send()
            .await
            .unwrap();
        let finished = finish.status().as_u16();
        assert!(
            matches!(finished, 201 | 400 | 404),
            "round {round}: finishing after a kill answered {finished}: {}",
            finish.text().await.unwrap_or_default()
        );
        let stored = client()
            .get(server.url(&format!("/v2/{repo}/blobs/{d}")))
            .send()
            .await
            .unwrap();
        if stored.status() == 200 {
            assert_eq!(stored.bytes().await.unwrap().as_ref(), whole.as_slice());
        } else {
            // Not stored: the client starts again, and that works.
            assert_eq!(
                crate::common::push_blob(&server, repo, whole.clone()).await,
                d
            );
        }
    }
}
