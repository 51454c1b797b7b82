//! PostgreSQL failing under a node: stopped mid-run (requests answer 503 and nothing is left
//! half-stored; the node carries on once it returns), and out of reach or refusing the
//! node's credentials at startup (the start stops, naming the setting, never the password).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::postgres::PrivatePostgres;
use crate::common::{Server, Stores, client, digest, push_image};

#[tokio::test]
async fn requests_answer_503_while_postgres_is_down_and_the_node_recovers() {
    let postgres = PrivatePostgres::start();
    let server = Server::start_node(Stores::on_database(Some(postgres.url())), vec![], None);
    let (manifest, _) = push_image(&server, "acme/app", "v1", b"before").await;
    let manifest_url = server.url("/v2/acme/app/manifests/v1");
    assert_eq!(
        client().get(&manifest_url).send().await.unwrap().status(),
        200
    );

    postgres.stop();
    // The access cache may vouch for the token a moment longer; the metadata cannot.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let started = Instant::now();
    let response = client().get(&manifest_url).send().await.unwrap();
    assert_eq!(
        response.status(),
        503,
        "{}",
        response.text().await.unwrap_or_default()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered within the pool's wait"
    );
    let response = client().get(&manifest_url).send().await.unwrap();
    assert_eq!(crate::common::header(&response, "retry-after"), "5");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "UNAVAILABLE", "{body}");
    // A push meanwhile is refused whole: nothing of it is stored.
    let layer = b"pushed while the database was down".to_vec();
    let d = digest(&layer);
    let push = client()
        .post(server.url(&format!("/v2/acme/app/blobs/uploads/?digest={d}")))
        .body(layer)
        .send()
        .await
        .unwrap();
    assert_eq!(push.status(), 503);
    let api = client()
        .get(server.url("/api/v3/orgs/acme/packages?package_type=container"))
        .send()
        .await
        .unwrap();
    let api = crate::common::schema::judged("GET", "/orgs/acme/packages", api).await;
    assert_eq!(api.status(), 503, "the API answers GitHub's 503 too");
    let ready = client().get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_ne!(ready["metadata"], "ok", "{ready}");

    postgres.start_again();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = client().get(&manifest_url).send().await.unwrap().status();
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node did not recover: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let blob = client()
        .head(server.url(&format!("/v2/acme/app/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(blob.status(), 404, "the refused push left nothing");
    let (again, _) = push_image(&server, "acme/app", "v2", b"after").await;
    assert_ne!(again, manifest);
    assert_eq!(
        client()
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// `berth serve` on `database_url`; its exit status and stderr.
fn serve_with(database_url: &str) -> (std::process::ExitStatus, String) {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("BERTH_DATABASE_URL", database_url)
        .env("BERTH_LOG", "warn")
        .output()
        .expect("run berth serve");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_start_with_a_database_out_of_reach_or_wrong_credentials_stops_naming_the_setting() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (status, stderr) = serve_with(&format!("postgres://berth:s3cret@127.0.0.1:{port}/berth"));
    assert!(!status.success());
    assert!(stderr.contains("database_url"), "{stderr}");
    assert!(
        !stderr.contains("s3cret"),
        "the password stays out: {stderr}"
    );

    let shared = crate::common::postgres_database();
    let wrong = shared.replacen("postgres://postgres@", "postgres://nobody:s3cret@", 1);
    let (status, stderr) = serve_with(&wrong);
    assert!(!status.success());
    assert!(stderr.contains("database_url"), "{stderr}");
    assert!(
        stderr.contains("nobody"),
        "PostgreSQL's reason is shown: {stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}
