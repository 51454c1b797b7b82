//! The scanner of seed 000 (Atomist's "on push" image scanning of GitHub's container
//! registry) end to end: a GitHub App installed on an organization with one repository
//! selected receives the package event of an image whose `org.opencontainers.image.source`
//! names that repository — and none for an image linked to another —, verifies it, exchanges
//! its secret for an installation token and pulls exactly the pushed digest as
//! `x-access-token`, through the registry's token flow as docker and skopeo do.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::github::Api;
use crate::common::world::World;
use crate::common::{Server, anonymous_client, base64_encode};
use crate::webhooks::{LOOPBACK, Receiver, push_from};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// What docker and skopeo do to pull `name@digest` with a username and password: ask, read
/// the `Bearer` challenge, get a token from its realm with Basic credentials, ask again.
async fn pull_manifest(
    server: &Server,
    user: &str,
    password: &str,
    name: &str,
    digest: &str,
) -> (u16, Vec<u8>) {
    let http = anonymous_client();
    let url = server.url(&format!("/v2/{name}/manifests/{digest}"));
    let first = http
        .get(&url)
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 401, "a private image asks for credentials");
    let challenge = first
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .expect("a challenge")
        .to_owned();
    let params = challenge
        .strip_prefix("Bearer ")
        .expect("a Bearer challenge");
    let param = |key: &str| {
        params.split(',').find_map(|part| {
            let (k, v) = part.trim().split_once('=')?;
            (k == key).then(|| v.trim_matches('"').to_owned())
        })
    };
    let encode = |v: &str| {
        percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let mut realm = format!(
        "{}?service={}",
        param("realm").expect("realm"),
        encode(&param("service").unwrap_or_default())
    );
    if let Some(scope) = param("scope") {
        realm.push_str(&format!("&scope={}", encode(&scope)));
    }
    let basic = base64_encode(format!("{user}:{password}").as_bytes());
    let issued = http
        .get(&realm)
        .header("authorization", format!("Basic {basic}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        issued.status(),
        200,
        "the token endpoint takes the credentials"
    );
    let issued: Value = issued.json().await.unwrap();
    let token = issued["token"].as_str().expect("a registry token");
    let pulled = http
        .get(&url)
        .header("accept", OCI_MANIFEST)
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let status = pulled.status().as_u16();
    (status, pulled.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn an_installed_app_hears_of_its_selected_repositorys_image_and_pulls_exactly_that_digest() {
    let server = Server::start_with(&[LOOPBACK]);
    let world = World::new(&server);
    let api = Api::new(&server, &server.admin_token);
    world.repo("repo1", "private").await;
    world.repo("repo2", "private").await;
    let scanner = Receiver::start().await;
    let webhook_secret = "scanner's webhook secret";

    // The scanner's app, registered with its webhook as GitHub's app manifest gives it.
    let app = api
        .expect(
            "POST",
            "/apps",
            Some(json!({
                "slug": "scanner",
                "owner": "acme",
                "hook_attributes": { "url": scanner.url(), "active": true },
                "webhook_secret": webhook_secret,
                "default_events": ["registry_package"],
            })),
            201,
        )
        .await;
    assert_eq!(app["hook_attributes"]["url"], scanner.url());
    let client_secret = app["client_secret"].as_str().unwrap().to_owned();
    let app_id = app["id"].as_i64().unwrap();
    // Installed on acme with repo1 selected.
    let installation = api
        .expect(
            "POST",
            "/apps/scanner/installations",
            Some(json!({ "account": "acme", "repositories": ["repo1"], "permissions": { "packages": "read" } })),
            201,
        )
        .await;
    let installation_id = installation["id"].as_i64().unwrap();
    // The new app's webhook is pinged, as GitHub pings it.
    let pings = scanner
        .wait_for("the app's ping", |r| r.iter().any(|r| r.event() == "ping"))
        .await;
    assert!(pings[0].signed_with(webhook_secret));
    let ping = pings[0].json();
    assert_eq!(ping["hook"]["app_id"], app_id);
    assert_eq!(ping["hook"]["type"], "App");
    assert_eq!(ping["hook"]["events"], json!(["registry_package"]));
    assert_eq!(ping["hook"]["config"]["secret"], "********");

    // An org hook as a witness that both pushes' events were queued and sent.
    let witness = Receiver::start().await;
    api.expect(
        "POST",
        "/orgs/acme/hooks",
        Some(json!({ "name": "web", "config": { "url": witness.url() }, "events": ["registry_package"] })),
        201,
    )
    .await;

    let (elsewhere, _) = push_from(
        &server,
        "acme/elsewhere",
        Some("v1"),
        "elsewhere",
        Some("https://github.com/acme/repo2"),
    )
    .await;
    let (pushed, manifest) = push_from(
        &server,
        "acme/service",
        Some("v1"),
        "service",
        Some("https://github.com/acme/repo1"),
    )
    .await;
    assert_ne!(pushed, elsewhere);
    witness
        .wait_for("both images' events", |r| {
            r.iter().filter(|r| r.event() == "registry_package").count() == 2
        })
        .await;
    scanner
        .wait_for("the event of repo1's image", |r| {
            r.iter().any(|r| r.event() == "registry_package")
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events: Vec<_> = scanner
        .package_events("registry_package")
        .into_iter()
        .chain(scanner.package_events("package"))
        .collect();
    assert_eq!(
        events.len(),
        1,
        "only repo1's image reaches the app: {events:?}"
    );
    let event = &events[0];

    // What the scanner checks: the signatures, who it is for, the image's source and digest.
    assert!(event.signed_with(webhook_secret), "{event:?}");
    assert_eq!(
        event.header("x-github-hook-installation-target-type"),
        "integration"
    );
    assert_eq!(
        event.header("x-github-hook-installation-target-id"),
        app_id.to_string()
    );
    let payload = event.json();
    assert_eq!(payload["action"], "published");
    assert_eq!(payload["installation"]["id"], installation_id);
    assert_eq!(payload["repository"]["full_name"], "acme/repo1");
    let version = &payload["registry_package"]["package_version"];
    assert_eq!(
        version["container_metadata"]["labels"]["source"],
        "https://github.com/acme/repo1"
    );
    let digest = event.digest();
    assert_eq!(digest, pushed);

    // Its secret for an installation token, then the pull as `x-access-token`.
    let issued = anonymous_client()
        .post(server.url(&format!(
            "/api/v3/app/installations/{installation_id}/access_tokens"
        )))
        .header("authorization", format!("Bearer {client_secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), 201);
    let issued: Value = issued.json().await.unwrap();
    let token = issued["token"].as_str().unwrap();
    let (status, bytes) =
        pull_manifest(&server, "x-access-token", token, "acme/service", &digest).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, manifest, "exactly the pushed manifest");
    // The token reaches repo1's image only, not the one linked elsewhere.
    let (status, _) = pull_manifest(
        &server,
        "x-access-token",
        token,
        "acme/elsewhere",
        &elsewhere,
    )
    .await;
    assert_ne!(status, 200);
}
