//! Package webhooks over real HTTP: hooks managed through the API in GitHub's shapes, and
//! deliveries received by an HTTP server inside the test, as a scanner written for GitHub's
//! `package` / `registry_package` webhooks would receive them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::github::Api;
use crate::common::world::World;
use crate::common::{
    Server, anonymous_client, client, client_with_token, digest, push_blob, put_manifest,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The receivers in these tests listen on 127.0.0.1, which hooks may reach only when the
/// operator allows it.
pub(crate) const LOOPBACK: (&str, &str) = ("BERTH_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8");

/// GitHub's hook object, as in its documentation (the ping fixture's `hook`).
const PING_FIXTURE: &str = include_str!("../../../core/src/hooks/fixtures/github_ping.json");
/// GitHub's `package` payload's keys.
const PACKAGE_FIXTURE: &str =
    include_str!("../../../core/src/hooks/fixtures/github_package_published.json");

// --- the API ---

// --- the receiver ---

/// One request the receiver got.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    headers: HashMap<String, String>,
    body: Vec<u8>,
    /// What the receiver answered.
    status: u16,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map_or("", String::as_str)
    }

    pub(crate) fn event(&self) -> &str {
        self.header("x-github-event")
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("payload is JSON")
    }

    /// The version digest of a package event.
    pub(crate) fn digest(&self) -> String {
        let json = self.json();
        let key = if json.get("registry_package").is_some() {
            "registry_package"
        } else {
            "package"
        };
        json[key]["package_version"]["name"]
            .as_str()
            .expect("package_version.name")
            .to_owned()
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Vec<Received>,
    /// Requests still to answer 500.
    fail: usize,
    /// Payloads GitHub's webhook schemas refuse, not yet reported.
    problems: Vec<String>,
}

/// An HTTP server on 127.0.0.1 recording what Berth delivers.
pub(crate) struct Receiver {
    state: Arc<Mutex<ReceiverState>>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

async fn receive(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let event = headers
        .get("x-github-event")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let problem = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|payload| crate::common::schema::check_hook(&event, &payload));
    let mut state = state.lock().unwrap();
    state.problems.extend(problem);
    let status = if state.fail > 0 {
        state.fail -= 1;
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    let headers = headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    state.received.push(Received {
        headers,
        body: body.to_vec(),
        status: status.as_u16(),
    });
    status
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        Receiver::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    async fn start_on(addr: SocketAddr) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            // Were redirects followed, `/hook` would receive this delivery.
            .route(
                "/redirect",
                axum::routing::post(|| async {
                    (StatusCode::TEMPORARY_REDIRECT, [("location", "/hook")])
                }),
            )
            .with_state(state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .expect("receiver");
        });
        Receiver {
            state,
            addr,
            stop: Some(stop),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The receiver's URL under another host name.
    fn url_at(&self, host: &str) -> String {
        format!("http://{host}:{}/hook", self.addr.port())
    }

    fn fail_next(&self, n: usize) {
        self.state.lock().unwrap().fail = n;
    }

    /// What the receiver got; every payload GitHub's webhook schemas describe has been
    /// validated against them (a violation fails the test here).
    pub(crate) fn received(&self) -> Vec<Received> {
        let (received, problems) = {
            let mut state = self.state.lock().unwrap();
            (state.received.clone(), std::mem::take(&mut state.problems))
        };
        for problem in problems {
            crate::common::schema::report(&problem);
        }
        received
    }

    /// The requests answered 200, in arrival order.
    fn delivered(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.status == 200)
            .collect()
    }

    /// Waits until `done` holds for the delivered requests (at most 30 s); them.
    pub(crate) async fn wait_for(
        &self,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let delivered = self.delivered();
            if done(&delivered) {
                return delivered;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; received: {:?}",
                self.received()
                    .iter()
                    .map(|r| (r.event().to_owned(), r.status))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The delivered package events (of `event`), in arrival order.
    pub(crate) fn package_events(&self, event: &str) -> Vec<Received> {
        self.delivered()
            .into_iter()
            .filter(|r| r.event() == event)
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A free port on 127.0.0.1 with nothing listening on it (yet).
fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

pub(crate) fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// GitHub's legacy `X-Hub-Signature`: HMAC-SHA1.
pub(crate) fn sign_sha1(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
}

impl Received {
    /// Whether both of GitHub's signatures of the body verify with `secret`.
    pub(crate) fn signed_with(&self, secret: &str) -> bool {
        self.header("x-hub-signature-256") == sign(secret, &self.body)
            && self.header("x-hub-signature") == sign_sha1(secret, &self.body)
    }
}

/// Every key of `expected` (recursively, but not into the free-form `all_labels`) that
/// `actual` lacks.
fn missing_keys(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                let here = format!("{path}.{key}");
                match have.get(key) {
                    None => out.push(here),
                    // Free-form (the image's own labels): only its presence is the shape.
                    Some(_) if key == "all_labels" => {}
                    Some(got) => missing_keys(value, got, &here, out),
                }
            }
        }
        (Value::Array(want), Value::Array(have)) => {
            if let (Some(w), Some(h)) = (want.first(), have.first()) {
                missing_keys(w, h, &format!("{path}[0]"), out);
            }
        }
        _ => {}
    }
}

// --- pushing ---

/// Pushes a one-layer image under `reference` (a tag or its digest); its digest and bytes.
pub(crate) async fn push(
    server: &Server,
    repo: &str,
    reference: Option<&str>,
    layer: &str,
) -> (String, Vec<u8>) {
    push_from(server, repo, reference, layer, None).await
}

/// [`push`], the image labelled `org.opencontainers.image.source: <source>` when given.
pub(crate) async fn push_from(
    server: &Server,
    repo: &str,
    reference: Option<&str>,
    layer: &str,
    source: Option<&str>,
) -> (String, Vec<u8>) {
    let layer = layer.as_bytes().to_vec();
    let mut labels = json!({"org.opencontainers.image.description": format!("image {}", String::from_utf8_lossy(&layer))});
    if let Some(source) = source {
        labels["org.opencontainers.image.source"] = json!(source);
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": [digest(&layer)]},
    }))
    .unwrap();
    let config_digest = push_blob(server, repo, config.clone()).await;
    let layer_digest = push_blob(server, repo, layer.clone()).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    let d = digest(&manifest);
    put_manifest(
        server,
        repo,
        reference.unwrap_or(&d),
        OCI_MANIFEST,
        &manifest,
    )
    .await;
    (d, manifest)
}

/// Creates a hook on `collection` (`/orgs/acme`, `/repos/acme/app`, `/user`) delivering to
/// `url`; its JSON.
pub(crate) async fn hook(api: &Api<'_>, collection: &str, config: Value, extra: Value) -> Value {
    let mut body = json!({ "name": "web", "config": config, "events": ["package"] });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    api.expect("POST", &format!("{collection}/hooks"), Some(body), 201)
        .await
}

// --- tests ---

#[tokio::test]
async fn hooks_are_managed_in_githubs_shapes_and_ping_on_creation() {
    let server = Server::start_with(&[LOOPBACK]);
    let world = World::new(&server);
    let api = Api::new(&server, &server.admin_token);
    world.repo("app", "private").await;
    let receiver = Receiver::start().await;
    let created = hook(
        &api,
        "/repos/acme/app",
        json!({ "url": receiver.url(), "content_type": "json", "secret": "s3cret", "insecure_ssl": "0" }),
        json!({ "events": ["package", "registry_package"] }),
    )
    .await;
    // GitHub's hook keys, and the secret masked.
    let fixture: Value = serde_json::from_str(PING_FIXTURE).unwrap();
    let mut missing = Vec::new();
    missing_keys(&fixture["hook"], &created, "", &mut missing);
    assert!(missing.is_empty(), "missing {missing:?} in {created}");
    assert_eq!(created["type"], "Repository");
    assert_eq!(created["config"]["secret"], "********");
    assert!(!created.to_string().contains("s3cret"));
    assert_eq!(created["last_response"]["status"], "unused");
    let id = created["id"].as_i64().unwrap();
    let url = format!("/repos/acme/app/hooks/{id}");
    assert_eq!(created["url"], server.url(&format!("/api/v3{url}")));

    // The ping, signed.
    let pings = receiver
        .wait_for("the ping", |r| r.iter().any(|r| r.event() == "ping"))
        .await;
    let ping = &pings[0];
    assert_eq!(
        ping.header("x-hub-signature-256"),
        sign("s3cret", &ping.body)
    );
    assert_eq!(
        ping.header("x-hub-signature"),
        sign_sha1("s3cret", &ping.body)
    );
    assert_eq!(ping.header("x-github-hook-id"), id.to_string());
    assert_eq!(
        ping.header("x-github-hook-installation-target-type"),
        "repository"
    );
    assert!(ping.header("user-agent").starts_with("GitHub-Hookshot/"));
    let payload = ping.json();
    assert_eq!(payload["hook_id"], id);
    assert_eq!(payload["hook"]["config"]["secret"], "********");
    assert_eq!(payload["repository"]["full_name"], "acme/app");
    let mut missing = Vec::new();
    missing_keys(&fixture, &payload, "", &mut missing);
    assert!(missing.is_empty(), "ping lacks {missing:?}");

    // List, get, update, delete.
    let list = api.expect("GET", "/repos/acme/app/hooks", None, 200).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let shown = api.until(&url, |h| h["last_response"]["code"] == 200).await;
    assert_eq!(shown["last_response"]["status"], "active");
    let updated = api
        .expect(
            "PATCH",
            &url,
            Some(json!({ "remove_events": ["registry_package"], "active": false, "deleted_events": true, "config": { "content_type": "form" } })),
            200,
        )
        .await;
    assert_eq!(updated["events"], json!(["package"]));
    assert_eq!(updated["active"], false);
    assert_eq!(updated["deleted_events"], true);
    assert_eq!(updated["config"]["content_type"], "form");
    assert_eq!(updated["config"]["url"], receiver.url(), "kept");
    assert_eq!(updated["config"]["secret"], "********", "kept");

    // 422 naming the field, for what a person can fix.
    for (body, field) in [
        (json!({ "config": { "url": "ftp://example.com" } }), "url"),
        (
            json!({ "config": { "url": receiver.url() }, "events": ["not_an_event"] }),
            "events",
        ),
        (
            json!({ "config": { "url": receiver.url(), "content_type": "xml" } }),
            "content_type",
        ),
        (json!({ "config": {} }), "url"),
        (
            json!({ "config": { "url": receiver.url(), "insecure_ssl": "maybe" } }),
            "insecure_ssl",
        ),
    ] {
        let error = api
            .expect("POST", "/repos/acme/app/hooks", Some(body), 422)
            .await;
        assert_eq!(error["message"], "Validation Failed");
        assert_eq!(error["errors"][0]["field"], field, "{error}");
        assert!(error["errors"][0]["message"].as_str().unwrap().len() > 15);
    }

    api.expect("DELETE", &url, None, 204).await;
    api.expect("GET", &url, None, 404).await;
    api.expect("GET", "/repos/acme/app/hooks/nope", None, 404)
        .await;
    api.expect("GET", "/repos/acme/missing/hooks", None, 404)
        .await;
}

#[tokio::test]
async fn a_scanner_verifies_the_signature_and_pulls_the_pushed_digest_with_a_read_only_token() {
    let server = Server::start_with(&[LOOPBACK]);
    let api = Api::new(&server, &server.admin_token);
    let receiver = Receiver::start().await;
    let secret = "It's a Secret to Everybody";
    hook(
        &api,
        "/orgs/acme",
        json!({ "url": receiver.url(), "secret": secret }),
        json!({ "events": ["registry_package"] }),
    )
    .await;
    let scanner_token = api
        .expect(
            "POST",
            "/user/tokens",
            Some(json!({ "note": "scanner", "scopes": ["read:packages"] })),
            201,
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let (pushed, manifest) = push(&server, "acme/scanme", Some("v1"), "scan me").await;

    let events = receiver
        .wait_for("the registry_package event", |r| {
            r.iter().any(|r| r.event() == "registry_package")
        })
        .await;
    let event = events
        .iter()
        .find(|r| r.event() == "registry_package")
        .unwrap();
    // What a scanner does: check the signature, read the digest, pull exactly that.
    assert!(event.signed_with(secret), "{:?}", event.headers);
    assert_eq!(event.header("content-type"), "application/json");
    let delivery = event.header("x-github-delivery");
    assert_eq!(uuid_version(delivery), Some('4'), "{delivery}");
    let payload = event.json();
    assert_eq!(payload["action"], "published");
    assert_eq!(payload["organization"]["login"], "acme");
    assert_eq!(payload["sender"]["login"], "admin");
    let package = &payload["registry_package"];
    assert_eq!(package["name"], "scanme");
    assert_eq!(package["namespace"], "acme");
    let version = &package["package_version"];
    let digest = event.digest();
    assert_eq!(digest, pushed);
    assert_eq!(version["container_metadata"]["tag"]["name"], "v1");
    assert_eq!(version["container_metadata"]["manifest"]["digest"], pushed);
    assert_eq!(
        version["container_metadata"]["labels"]["description"],
        "image scan me"
    );
    assert_eq!(
        version["package_url"],
        format!("{}/acme/scanme:v1", server.host)
    );
    let pulled = client_with_token(&scanner_token)
        .get(server.url(&format!("/v2/acme/scanme/manifests/{digest}")))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), 200);
    assert_eq!(pulled.bytes().await.unwrap().to_vec(), manifest);
    let layer_digest = version["container_metadata"]["manifest"]["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let layer = client_with_token(&scanner_token)
        .get(server.url(&format!("/v2/acme/scanme/blobs/{layer_digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(layer.bytes().await.unwrap().to_vec(), b"scan me".to_vec());

    // The same payload's package object has every key of GitHub's example.
    let fixture: Value = serde_json::from_str(PACKAGE_FIXTURE).unwrap();
    let mut missing = Vec::new();
    missing_keys(&fixture["package"], package, "", &mut missing);
    let missing: Vec<_> = missing
        .into_iter()
        .filter(|k| !k.starts_with(".package_version.author"))
        .collect();
    assert!(missing.is_empty(), "missing {missing:?}");
}

fn uuid_version(guid: &str) -> Option<char> {
    (guid.len() == 36).then(|| guid.chars().nth(14)).flatten()
}

#[tokio::test]
async fn a_failing_receiver_gets_each_event_exactly_once_in_push_order() {
    let server = Server::start_with(&[LOOPBACK, ("BERTH_WEBHOOK_RETRY_BASE_MS", "40")]);
    let api = Api::new(&server, &server.admin_token);
    let receiver = Receiver::start().await;
    hook(
        &api,
        "/orgs/acme",
        json!({ "url": receiver.url() }),
        json!({}),
    )
    .await;
    receiver
        .wait_for("the ping", |r| r.iter().any(|r| r.event() == "ping"))
        .await;
    receiver.fail_next(3);
    let (first, _) = push(&server, "acme/ordered", Some("v1"), "one").await;
    let (second, _) = push(&server, "acme/ordered", Some("v2"), "two").await;
    let (third, _) = push(&server, "acme/other", Some("v1"), "three").await;
    receiver
        .wait_for("three package events", |r| {
            r.iter().filter(|r| r.event() == "package").count() >= 3
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = receiver.package_events("package");
    let digests: Vec<String> = events.iter().map(Received::digest).collect();
    assert_eq!(
        digests,
        [first.clone(), second, third],
        "once each, in push order"
    );
    let failures: Vec<String> = receiver
        .received()
        .iter()
        .filter(|r| r.status == 500)
        .map(Received::digest)
        .collect();
    assert_eq!(
        failures,
        [first.clone(), first.clone(), first],
        "retried, blocking the rest"
    );
    // The retries kept the delivery's GUID.
    let guids: Vec<String> = receiver
        .received()
        .iter()
        .filter(|r| r.event() == "package")
        .map(|r| r.header("x-github-delivery").to_owned())
        .collect();
    assert_eq!(guids[0], guids[3]);
}

#[tokio::test]
async fn deliveries_pending_at_a_restart_are_delivered_after_it() {
    let mut server = Server::start_with(&[
        LOOPBACK,
        ("BERTH_WEBHOOK_RETRY_BASE_MS", "50"),
        ("BERTH_WEBHOOK_MAX_ATTEMPTS", "30"),
    ]);
    let api = Api::new(&server, &server.admin_token);
    let addr = free_addr();
    // Nothing listens at `addr` yet: every attempt is refused.
    hook(
        &api,
        "/orgs/acme",
        json!({ "url": format!("http://{addr}/hook") }),
        json!({}),
    )
    .await;
    let (pushed, _) = push(&server, "acme/later", Some("v1"), "later").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.kill();
    let receiver = Receiver::start_on(addr).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        receiver.received().is_empty(),
        "nothing delivers while Berth is down"
    );
    server.restart();
    let delivered = receiver
        .wait_for("the ping and the package event", |r| {
            r.iter().any(|r| r.event() == "package")
        })
        .await;
    let events: Vec<&str> = delivered.iter().map(Received::event).collect();
    assert_eq!(events, ["ping", "package"]);
    assert_eq!(delivered[1].digest(), pushed);
}

#[tokio::test]
async fn a_multi_arch_push_delivers_one_event_per_manifest() {
    let server = Server::start_with(&[LOOPBACK]);
    let api = Api::new(&server, &server.admin_token);
    let receiver = Receiver::start().await;
    hook(
        &api,
        "/orgs/acme",
        json!({ "url": receiver.url() }),
        json!({}),
    )
    .await;
    let (amd64, amd64_bytes) = push(&server, "acme/multi", None, "amd64 layer").await;
    let (arm64, arm64_bytes) = push(&server, "acme/multi", None, "arm64 layer").await;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd64, "size": amd64_bytes.len(), "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": arm64, "size": arm64_bytes.len(), "platform": {"architecture": "arm64", "os": "linux"}},
        ],
    }))
    .unwrap();
    put_manifest(&server, "acme/multi", "v1", OCI_INDEX, &index).await;
    let delivered = receiver
        .wait_for("three package events", |r| {
            r.iter().filter(|r| r.event() == "package").count() >= 3
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = receiver.package_events("package");
    assert_eq!(events.len(), 3, "{delivered:?}");
    let tags: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            let meta = &e.json()["package"]["package_version"]["container_metadata"];
            (
                meta["tag"]["name"].as_str().unwrap().to_owned(),
                meta["tag"]["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        tags,
        [
            (String::new(), amd64),
            (String::new(), arm64),
            ("v1".to_owned(), digest(&index)),
        ]
    );
    let media = &events[2].json()["package"]["package_version"]["container_metadata"]["manifest"]["media_type"];
    assert_eq!(media, OCI_INDEX);
}

#[tokio::test]
async fn a_tag_moved_to_an_existing_version_is_updated_and_deliveries_can_be_redelivered() {
    let server = Server::start_with(&[LOOPBACK]);
    let api = Api::new(&server, &server.admin_token);
    let receiver = Receiver::start().await;
    // The package is linked to no repository: GitHub's `package` `updated` payload needs one,
    // `registry_package`'s does not.
    let created = hook(
        &api,
        "/user",
        json!({ "url": receiver.url() }),
        json!({ "events": ["registry_package"] }),
    )
    .await;
    assert_eq!(created["type"], "User");
    let id = created["id"].as_i64().unwrap();
    let (first, bytes) = push(&server, "admin/tool", Some("v1"), "tool").await;
    put_manifest(&server, "admin/tool", "latest", OCI_MANIFEST, &bytes).await;
    // A re-push of the same tag changes nothing and sends nothing.
    put_manifest(&server, "admin/tool", "latest", OCI_MANIFEST, &bytes).await;
    receiver
        .wait_for("published and updated", |r| {
            r.iter().filter(|r| r.event() == "registry_package").count() >= 2
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = receiver.package_events("registry_package");
    let actions: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            let json = e.json();
            (
                json["action"].as_str().unwrap().to_owned(),
                json["registry_package"]["package_version"]["container_metadata"]["tag"]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("published".to_owned(), "v1".to_owned()),
            ("updated".to_owned(), "latest".to_owned())
        ]
    );
    assert!(events.iter().all(|e| e.digest() == first));
    assert!(
        events[0].json().get("organization").is_none(),
        "a user's package"
    );

    // The deliveries, newest first, in GitHub's shape.
    let list = api
        .until(&format!("/user/hooks/{id}/deliveries"), |l| {
            l.as_array()
                .is_some_and(|l| l.len() == 3 && l.iter().all(|d| d["status"] == "OK"))
        })
        .await;
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 3, "ping, published, updated: {list:?}");
    for key in [
        "id",
        "guid",
        "delivered_at",
        "redelivery",
        "duration",
        "status",
        "status_code",
        "event",
        "action",
        "installation_id",
        "repository_id",
    ] {
        assert!(list[0].get(key).is_some(), "{key} missing: {}", list[0]);
    }
    assert_eq!(list[0]["action"], "updated");
    assert_eq!(list[0]["status"], "OK");
    assert_eq!(list[0]["status_code"], 200);
    assert!(list[0]["duration"].as_f64().unwrap() >= 0.0);
    assert_eq!(list[2]["event"], "ping");
    let published = list[1]["id"].as_i64().unwrap();
    let detail = api
        .expect(
            "GET",
            &format!("/user/hooks/{id}/deliveries/{published}"),
            None,
            200,
        )
        .await;
    assert_eq!(
        detail["request"]["headers"]["X-GitHub-Event"],
        "registry_package"
    );
    assert_eq!(detail["request"]["payload"]["action"], "published");
    assert_eq!(detail["response"]["payload"], "");
    assert_eq!(detail["attempts"].as_array().unwrap().len(), 1);

    // Redeliver: the same GUID and payload again, marked as a redelivery.
    api.expect(
        "POST",
        &format!("/user/hooks/{id}/deliveries/{published}/attempts"),
        None,
        202,
    )
    .await;
    let guid = list[1]["guid"].as_str().unwrap().to_owned();
    receiver
        .wait_for("the redelivery", |r| {
            r.iter()
                .filter(|r| r.header("x-github-delivery") == guid)
                .count()
                == 2
        })
        .await;
    let list = api
        .until(&format!("/user/hooks/{id}/deliveries?per_page=2"), |l| {
            l[0]["status"] == "OK"
        })
        .await;
    assert_eq!(list[0]["redelivery"], true);
    assert_eq!(list[0]["guid"], guid.as_str());
    assert_eq!(list.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn only_admins_manage_hooks_and_hidden_collections_are_not_found() {
    let server = Server::start_with(&[LOOPBACK]);
    let world = World::new(&server);
    let api = Api::new(&server, &server.admin_token);
    world.repo("secret-app", "private").await;
    world.repo("shared", "private").await;
    let bob = world
        .user("bob")
        .scopes("read:packages,write:packages,repo,admin:org")
        .await;
    world.collaborator("shared", "bob", "push").await;
    let bob_api = Api::new(&server, &bob);
    let body = json!({ "config": { "url": "http://127.0.0.1:9/hook" } });
    // A private repository bob cannot see: 404, as if missing.
    let hidden = bob_api
        .expect(
            "POST",
            "/repos/acme/secret-app/hooks",
            Some(body.clone()),
            404,
        )
        .await;
    assert!(hidden["documentation_url"].is_string());
    // One he writes to but does not administer: 403 saying why.
    let refused = bob_api
        .expect("POST", "/repos/acme/shared/hooks", Some(body.clone()), 403)
        .await;
    assert!(refused["message"].as_str().unwrap().contains("admin"));
    bob_api
        .expect("GET", "/repos/acme/shared/hooks", None, 403)
        .await;
    // The organization's hooks are its owners'.
    let refused = bob_api
        .expect("POST", "/orgs/acme/hooks", Some(body.clone()), 403)
        .await;
    assert!(refused["message"].as_str().unwrap().contains("owner"));
    bob_api
        .expect("POST", "/orgs/nobody/hooks", Some(body.clone()), 404)
        .await;
    // Hooks of the admin's are not bob's to see, even by id.
    let admins = hook(
        &api,
        "/user",
        json!({ "url": "http://127.0.0.1:9/hook" }),
        json!({}),
    )
    .await;
    let id = admins["id"].as_i64().unwrap();
    bob_api
        .expect("GET", &format!("/user/hooks/{id}"), None, 404)
        .await;
    // His own: fine; a read-only token may not.
    bob_api
        .expect("POST", "/user/hooks", Some(body.clone()), 201)
        .await;
    let read_only = server.admin(&["create-token", "bob", "--scopes", "read:packages"]);
    let refused = Api::new(&server, &read_only)
        .expect("POST", "/user/hooks", Some(body.clone()), 403)
        .await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("write:packages")
    );
    // Registry-only tokens never manage hooks.
    let anonymous = anonymous_client()
        .get(server.url("/api/v3/user/hooks"))
        .send()
        .await
        .unwrap();
    let anonymous = crate::common::schema::judged("GET", "/user/hooks", anonymous).await;
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn deleted_versions_reach_only_hooks_that_opted_in_from_the_api_and_the_registry() {
    let server = Server::start_with(&[LOOPBACK]);
    let api = Api::new(&server, &server.admin_token);
    let opted_in = Receiver::start().await;
    let default = Receiver::start().await;
    hook(
        &api,
        "/orgs/acme",
        json!({ "url": opted_in.url() }),
        json!({ "deleted_events": true }),
    )
    .await;
    hook(
        &api,
        "/orgs/acme",
        json!({ "url": default.url() }),
        json!({}),
    )
    .await;
    let (by_api, _) = push(&server, "acme/gone", Some("v1"), "one").await;
    let (by_registry, _) = push(&server, "acme/gone", Some("v2"), "two").await;

    let versions = api
        .expect(
            "GET",
            "/orgs/acme/packages/container/gone/versions",
            None,
            200,
        )
        .await;
    let id = versions
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == by_api)
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    api.expect(
        "DELETE",
        &format!("/orgs/acme/packages/container/gone/versions/{id}"),
        None,
        204,
    )
    .await;
    let deleted = client()
        .delete(server.url(&format!("/v2/acme/gone/manifests/{by_registry}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 202);

    let events = opted_in
        .wait_for("two deleted events", |r| {
            r.iter()
                .filter(|r| r.event() == "package" && r.json()["action"] == "deleted")
                .count()
                >= 2
        })
        .await;
    let deleted: Vec<(String, Value)> = events
        .iter()
        .filter(|r| r.event() == "package" && r.json()["action"] == "deleted")
        .map(|r| {
            let json = r.json();
            (r.digest(), json["package"]["package_version"]["id"].clone())
        })
        .collect();
    assert_eq!(
        deleted[0],
        (by_api.clone(), json!(id)),
        "the API's deletion first"
    );
    assert_eq!(deleted[1].0, by_registry, "then the registry's");
    default
        .wait_for("the two publishes", |r| {
            r.iter().filter(|r| r.event() == "package").count() >= 2
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        default
            .package_events("package")
            .iter()
            .all(|r| r.json()["action"] == "published"),
        "a hook without deleted_events hears no deletion"
    );
}

#[tokio::test]
async fn testing_a_repository_hook_sends_a_ping() {
    let server = Server::start_with(&[LOOPBACK]);
    server.admin(&["create-repo", "acme/app"]);
    let api = Api::new(&server, &server.admin_token);
    let receiver = Receiver::start().await;
    let created = hook(
        &api,
        "/repos/acme/app",
        json!({ "url": receiver.url() }),
        json!({}),
    )
    .await;
    api.expect(
        "POST",
        &format!("/repos/acme/app/hooks/{}/tests", created["id"]),
        None,
        204,
    )
    .await;
    let pings = receiver
        .wait_for("the creation ping and the test's", |r| {
            r.iter().filter(|r| r.event() == "ping").count() >= 2
        })
        .await;
    assert!(
        pings
            .iter()
            .filter(|r| r.event() == "ping")
            .all(|r| r.json()["hook_id"] == created["id"])
    );
}

// --- a hostile network ---

#[tokio::test]
async fn hooks_may_not_target_internal_addresses_by_default() {
    let server = Server::start();
    let api = Api::new(&server, &server.admin_token);
    let own = server.url("/api/v3/user");
    for (url, what) in [
        ("http://127.0.0.1:9/hook", "loopback"),
        (own.as_str(), "loopback"),
        ("http://localhost:9/hook", "loopback"),
        ("http://[::1]:9/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]:9/hook", "loopback"),
        ("http://2130706433:9/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://10.0.0.1/hook", "private"),
        ("https://192.168.1.1/hook", "private"),
        ("http://100.64.0.1/hook", "carrier-grade NAT"),
        ("http://0.0.0.0:9/hook", "unspecified"),
    ] {
        let error = api
            .expect(
                "POST",
                "/orgs/acme/hooks",
                Some(json!({ "name": "web", "config": { "url": url } })),
                422,
            )
            .await;
        assert_eq!(error["message"], "Validation Failed", "{url}");
        assert_eq!(error["errors"][0]["resource"], "Hook", "{url}");
        assert_eq!(error["errors"][0]["field"], "url", "{url}");
        let message = error["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("refused") && message.contains(what),
            "{url}: {message}"
        );
        assert!(message.contains("webhook_allowed_networks"), "{message}");
    }
    let list = api.expect("GET", "/orgs/acme/hooks", None, 200).await;
    assert_eq!(list, json!([]), "nothing was created");

    // Changing a hook's URL is checked the same way. (Inactive: nothing is sent to it.)
    let created = api
        .expect(
            "POST",
            "/orgs/acme/hooks",
            Some(json!({ "name": "web", "active": false, "config": { "url": "http://1.1.1.1:9/hook" } })),
            201,
        )
        .await;
    let path = format!("/orgs/acme/hooks/{}", created["id"]);
    for url in ["http://169.254.169.254/", "http://127.0.0.1:9/hook"] {
        let error = api
            .expect(
                "PATCH",
                &path,
                Some(json!({ "config": { "url": url } })),
                422,
            )
            .await;
        assert_eq!(error["errors"][0]["field"], "url");
    }
    let shown = api.expect("GET", &path, None, 200).await;
    assert_eq!(shown["config"]["url"], "http://1.1.1.1:9/hook", "kept");
}

#[tokio::test]
async fn an_allowed_network_opens_only_itself() {
    let server = Server::start_with(&[LOOPBACK]);
    let api = Api::new(&server, &server.admin_token);
    let receiver = Receiver::start().await;
    hook(
        &api,
        "/orgs/acme",
        json!({ "url": receiver.url() }),
        json!({}),
    )
    .await;
    receiver
        .wait_for("the ping", |r| r.iter().any(|r| r.event() == "ping"))
        .await;
    for url in [
        "http://169.254.169.254/",
        "http://10.0.0.1/hook",
        "http://[::1]:9/",
    ] {
        api.expect(
            "POST",
            "/orgs/acme/hooks",
            Some(json!({ "name": "web", "config": { "url": url } })),
            422,
        )
        .await;
    }
}

/// The attempts of a hook's deliveries of `event`, once every one has been attempted.
async fn attempted(api: &Api<'_>, hook: &str, event: &str) -> Vec<Value> {
    let list = api
        .until(&format!("{hook}/deliveries"), |l| {
            l.as_array().is_some_and(|l| {
                l.iter().any(|d| d["event"] == event) && l.iter().all(|d| d["status"] != "pending")
            })
        })
        .await;
    let mut details = Vec::new();
    for delivery in list
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["event"] == event)
    {
        let path = format!("{hook}/deliveries/{}", delivery["id"]);
        details.push(api.expect("GET", &path, None, 200).await);
    }
    details
}

#[tokio::test]
async fn a_receiver_allowed_at_creation_is_refused_at_delivery_when_its_address_no_longer_is() {
    // As a DNS rebinding would: the hook's URL passed the check when it was set, and then
    // names an address hooks may not reach. Here the operator narrows the setting instead,
    // which the check at creation cannot see either.
    let mut server =
        Server::start_with(&[("BERTH_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")]);
    let receiver = Receiver::start().await;
    let (by_address, by_name) = {
        let api = Api::new(&server, &server.admin_token);
        let a = hook(
            &api,
            "/orgs/acme",
            json!({ "url": receiver.url() }),
            json!({}),
        )
        .await;
        let b = hook(
            &api,
            "/orgs/acme",
            json!({ "url": receiver.url_at("localhost") }),
            json!({}),
        )
        .await;
        (a["id"].as_i64().unwrap(), b["id"].as_i64().unwrap())
    };
    receiver
        .wait_for("both pings", |r| {
            r.iter().filter(|r| r.event() == "ping").count() == 2
        })
        .await;
    // The receiver has them; wait until the server has recorded them delivered too, or the
    // restart below could come between the two and the pings be sent again after it (refused
    // then, and ahead of the package event in each hook's queue).
    {
        let api = Api::new(&server, &server.admin_token);
        for id in [by_address, by_name] {
            api.until(&format!("/orgs/acme/hooks/{id}/deliveries"), |deliveries| {
                deliveries.as_array().is_some_and(|all| {
                    all.iter()
                        .any(|d| d["event"] == "ping" && d["status_code"] == 200)
                })
            })
            .await;
        }
    }

    server.restart_with(&[]);
    let api = Api::new(&server, &server.admin_token);
    push(&server, "acme/refused", Some("v1"), "refused").await;
    // (`localhost` may resolve to ::1 first.)
    for (id, names) in [
        (by_address, "127.0.0.1 is a loopback address;"),
        (by_name, "localhost resolves to "),
    ] {
        let hook = format!("/orgs/acme/hooks/{id}");
        let attempts = attempted(&api, &hook, "package").await;
        assert_eq!(attempts.len(), 1, "{attempts:?}");
        let status = attempts[0]["status"].as_str().unwrap();
        assert!(status.starts_with("refused: "), "{status}");
        assert!(status.contains(names), "{status}");
        assert!(status.contains("a loopback address;"), "{status}");
        assert_eq!(attempts[0]["status_code"], 0);
        let shown = api.expect("GET", &hook, None, 200).await;
        assert_eq!(shown["last_response"]["status"], "failed");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.event().to_owned())
        .collect();
    assert_eq!(
        events,
        ["ping", "ping"],
        "the receiver never saw the refused deliveries"
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = Server::start_with(&[LOOPBACK]);
    let api = Api::new(&server, &server.admin_token);
    let receiver = Receiver::start().await;
    let created = hook(
        &api,
        "/orgs/acme",
        json!({ "url": format!("http://{}/redirect", receiver.addr) }),
        json!({}),
    )
    .await;
    let hook = format!("/orgs/acme/hooks/{}", created["id"]);
    let attempts = attempted(&api, &hook, "ping").await;
    assert_eq!(attempts[0]["status_code"], 307);
    assert_eq!(attempts[0]["response"]["headers"]["location"], "/hook");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        receiver.received().is_empty(),
        "the redirect was not followed"
    );
}

/// A receiver that takes requests and answers none within `stall`; counts them.
struct Staller {
    addr: SocketAddr,
    arrived: Arc<std::sync::atomic::AtomicUsize>,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    most_in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

/// Takes one request out of the [`Staller`]'s count when dropped.
struct InFlight(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Staller {
    async fn start(stall: Duration) -> Staller {
        use std::sync::atomic::Ordering::SeqCst;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let staller = Staller {
            addr,
            arrived: Arc::default(),
            in_flight: Arc::default(),
            most_in_flight: Arc::default(),
        };
        let (arrived, in_flight, most) = (
            staller.arrived.clone(),
            staller.in_flight.clone(),
            staller.most_in_flight.clone(),
        );
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let (arrived, in_flight, most) = (arrived.clone(), in_flight.clone(), most.clone());
                async move {
                    arrived.fetch_add(1, SeqCst);
                    let now = in_flight.fetch_add(1, SeqCst) + 1;
                    most.fetch_max(now, SeqCst);
                    // Out of flight however the request ends: answered, or dropped because
                    // Berth gave up waiting (a leaked count would read as one more in flight).
                    let _done = InFlight(in_flight);
                    tokio::time::sleep(stall).await;
                    StatusCode::OK
                }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        staller
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn arrived(&self) -> usize {
        self.arrived.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn wait_arrived(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.arrived() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} requests arrived",
                self.arrived()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn one_accounts_stalled_receivers_do_not_delay_another_accounts_deliveries() {
    let server = Server::start_with(&[LOOPBACK, ("BERTH_WEBHOOK_TIMEOUT_SECS", "5")]);
    server.admin(&["create-org", "globex", "--owner", crate::common::ADMIN]);
    let world = World::new(&server);
    let api = Api::new(&server, &server.admin_token);
    // Answers after Berth gave up: every attempt takes the whole timeout.
    let staller = Staller::start(Duration::from_secs(30)).await;
    for _ in 0..20 {
        hook(
            &api,
            "/orgs/acme",
            json!({ "url": staller.url() }),
            json!({}),
        )
        .await;
    }
    // acme's pings are stalled at its receiver.
    staller.wait_arrived(16).await;

    let receiver = Receiver::start().await;
    let queued = Instant::now();
    hook(
        &api,
        "/orgs/globex",
        json!({ "url": receiver.url() }),
        json!({}),
    )
    .await;
    receiver
        .wait_for("globex's ping", |r| r.iter().any(|r| r.event() == "ping"))
        .await;
    let took = queued.elapsed();
    assert!(
        took < Duration::from_millis(2000),
        "globex's ping waited {took:?} behind acme's stalled receivers"
    );
    staller.wait_arrived(20).await;

    // An account's hooks are capped, its repositories' included.
    let error = api
        .expect(
            "POST",
            "/orgs/acme/hooks",
            Some(json!({ "name": "web", "config": { "url": receiver.url() } })),
            422,
        )
        .await;
    assert_eq!(error["message"], "Validation Failed");
    let message = error["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("acme already has 20 webhooks")
            && message.contains("webhook_max_hooks_per_account"),
        "{message}"
    );
    world.repo("app", "private").await;
    api.expect(
        "POST",
        "/repos/acme/app/hooks",
        Some(json!({ "name": "web", "config": { "url": receiver.url() } })),
        422,
    )
    .await;
}

// Several threads: the receiver answers on time while the test validates API answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_in_flight_are_capped() {
    let server = Server::start_with(&[
        LOOPBACK,
        ("BERTH_WEBHOOK_TIMEOUT_SECS", "1"),
        ("BERTH_WEBHOOK_MAX_CONCURRENT_DELIVERIES", "3"),
    ]);
    let api = Api::new(&server, &server.admin_token);
    let staller = Staller::start(Duration::from_millis(700)).await;
    for _ in 0..7 {
        hook(
            &api,
            "/orgs/acme",
            json!({ "url": staller.url() }),
            json!({}),
        )
        .await;
    }
    staller.wait_arrived(7).await;
    assert_eq!(
        staller
            .most_in_flight
            .load(std::sync::atomic::Ordering::SeqCst),
        3
    );
}

#[tokio::test]
async fn a_linked_packages_events_carry_githubs_full_repository_and_both_signatures() {
    let server = Server::start_with(&[LOOPBACK]);
    let world = World::new(&server);
    let api = Api::new(&server, &server.admin_token);
    world.repo("app", "private").await;
    let receiver = Receiver::start().await;
    let secret = "linked";
    hook(
        &api,
        "/orgs/acme",
        json!({ "url": receiver.url(), "secret": secret }),
        json!({ "events": ["package", "registry_package"] }),
    )
    .await;
    let source = "https://github.com/acme/app";
    let (pushed, bytes) = push_from(&server, "acme/web", Some("v1"), "web", Some(source)).await;
    put_manifest(&server, "acme/web", "latest", OCI_MANIFEST, &bytes).await;
    // Every payload is checked against GitHub's webhook schemas as it arrives (Receiver).
    let events = receiver
        .wait_for("published and updated, both events", |r| {
            r.iter().filter(|r| r.event() != "ping").count() >= 4
        })
        .await;
    let mut seen = Vec::new();
    for event in events.iter().filter(|r| r.event() != "ping") {
        assert!(event.signed_with(secret), "{:?}", event.headers);
        let payload = event.json();
        seen.push(format!(
            "{} {}",
            event.event(),
            payload["action"].as_str().unwrap()
        ));
        assert_eq!(event.digest(), pushed);
        let repository = &payload["repository"];
        assert_eq!(repository["full_name"], "acme/app");
        assert_eq!(repository["private"], true);
        assert_eq!(repository["owner"]["login"], "acme");
        assert_eq!(repository["forks_count"], 0);
        assert_eq!(
            repository["clone_url"],
            server.url("/acme/app.git"),
            "{repository}"
        );
        assert_eq!(payload["organization"]["login"], "acme");
        // An avatar URL that answers.
        let avatar = payload["sender"]["avatar_url"].as_str().unwrap().to_owned();
        let answer = client_with_token(&server.admin_token)
            .get(&avatar)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{avatar}");
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "package published",
            "package updated",
            "registry_package published",
            "registry_package updated"
        ]
    );
    let updated = events
        .iter()
        .find(|r| r.event() == "registry_package" && r.json()["action"] == "updated")
        .unwrap()
        .json();
    let package = &updated["registry_package"];
    assert!(package["description"].is_null(), "{package}");
    assert_eq!(
        package["package_version"]["container_metadata"]["tag"]["name"],
        "latest"
    );
    assert_eq!(package["package_version"]["body_html"], "");
}

#[tokio::test]
async fn an_unlinked_packages_update_reaches_registry_package_hooks_only() {
    let server = Server::start_with(&[LOOPBACK]);
    let api = Api::new(&server, &server.admin_token);
    let package_hook = Receiver::start().await;
    let registry_hook = Receiver::start().await;
    for (receiver, event) in [
        (&package_hook, "package"),
        (&registry_hook, "registry_package"),
    ] {
        hook(
            &api,
            "/orgs/acme",
            json!({ "url": receiver.url() }),
            json!({ "events": [event] }),
        )
        .await;
    }
    let (_, bytes) = push(&server, "acme/lonely", Some("v1"), "lonely").await;
    put_manifest(&server, "acme/lonely", "latest", OCI_MANIFEST, &bytes).await;
    registry_hook
        .wait_for("registry_package published and updated", |r| {
            r.iter().filter(|r| r.event() == "registry_package").count() == 2
        })
        .await;
    package_hook
        .wait_for("package published", |r| {
            r.iter().any(|r| r.event() == "package")
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let actions: Vec<Value> = package_hook
        .package_events("package")
        .iter()
        .map(|r| r.json()["action"].clone())
        .collect();
    assert_eq!(actions, [json!("published")]);
}

#[tokio::test]
async fn hooks_may_subscribe_to_any_github_event_and_receive_only_berths() {
    let server = Server::start_with(&[LOOPBACK]);
    let api = Api::new(&server, &server.admin_token);
    let push_only = Receiver::start().await;
    let witness = Receiver::start().await;
    // GitHub's default events, as GitHub's clients send them.
    let created = api
        .expect(
            "POST",
            "/orgs/acme/hooks",
            Some(json!({ "name": "web", "config": { "url": push_only.url() }, "events": ["push", "pull_request"] })),
            201,
        )
        .await;
    assert_eq!(created["events"], json!(["push", "pull_request"]));
    let id = created["id"].as_i64().unwrap();
    let shown = api
        .expect("GET", &format!("/orgs/acme/hooks/{id}"), None, 200)
        .await;
    assert_eq!(shown["events"], json!(["push", "pull_request"]));
    let patched = api
        .expect(
            "PATCH",
            &format!("/orgs/acme/hooks/{id}"),
            Some(json!({ "add_events": ["release"] })),
            200,
        )
        .await;
    assert_eq!(
        patched["events"],
        json!(["push", "pull_request", "release"])
    );
    // Not a GitHub event at all: refused, naming the field.
    for body in [
        json!({ "config": { "url": push_only.url() }, "events": ["pushes"] }),
        json!({ "config": { "url": push_only.url() }, "events": ["package", "Package"] }),
    ] {
        let error = api
            .expect("POST", "/orgs/acme/hooks", Some(body), 422)
            .await;
        assert_eq!(error["errors"][0]["field"], "events", "{error}");
    }
    let error = api
        .expect(
            "PATCH",
            &format!("/orgs/acme/hooks/{id}"),
            Some(json!({ "add_events": ["nope"] })),
            422,
        )
        .await;
    assert_eq!(error["errors"][0]["field"], "events", "{error}");

    hook(
        &api,
        "/orgs/acme",
        json!({ "url": witness.url() }),
        json!({}),
    )
    .await;
    push(&server, "acme/quiet", Some("v1"), "quiet").await;
    witness
        .wait_for("the package event", |r| {
            r.iter().any(|r| r.event() == "package")
        })
        .await;
    push_only
        .wait_for("the ping", |r| r.iter().any(|r| r.event() == "ping"))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events: Vec<String> = push_only
        .received()
        .iter()
        .map(|r| r.event().to_owned())
        .collect();
    assert_eq!(events, ["ping"], "Berth sends no push events");
}

#[tokio::test]
async fn a_hooks_config_is_read_and_changed_alone() {
    let server = Server::start_with(&[LOOPBACK]);
    let world = World::new(&server);
    let api = Api::new(&server, &server.admin_token);
    world.repo("app", "private").await;
    let receiver = Receiver::start().await;
    for collection in ["/orgs/acme", "/repos/acme/app"] {
        let created = hook(
            &api,
            collection,
            json!({ "url": receiver.url(), "secret": "first" }),
            json!({ "events": ["registry_package"], "active": true }),
        )
        .await;
        let id = created["id"].as_i64().unwrap();
        let config_path = format!("{collection}/hooks/{id}/config");
        let config = api.expect("GET", &config_path, None, 200).await;
        assert_eq!(
            config,
            json!({ "url": receiver.url(), "content_type": "json", "secret": "********", "insecure_ssl": "0" })
        );

        // Only what is given changes.
        let changed = api
            .expect(
                "PATCH",
                &config_path,
                Some(json!({ "content_type": "form", "insecure_ssl": "1" })),
                200,
            )
            .await;
        assert_eq!(
            changed,
            json!({ "url": receiver.url(), "content_type": "form", "secret": "********", "insecure_ssl": "1" })
        );
        let hook = api
            .expect("GET", &format!("{collection}/hooks/{id}"), None, 200)
            .await;
        assert_eq!(hook["events"], json!(["registry_package"]));
        assert_eq!(hook["active"], true);
        assert_eq!(hook["config"], changed);

        // Checked as on creation: 422 naming the field, nothing changed.
        for (body, field) in [
            (json!({ "url": "ftp://example.com/hook" }), "url"),
            (json!({ "content_type": "xml" }), "content_type"),
            (json!({ "insecure_ssl": "maybe" }), "insecure_ssl"),
        ] {
            let error = api.expect("PATCH", &config_path, Some(body), 422).await;
            assert_eq!(error["errors"][0]["field"], field, "{error}");
        }
        assert_eq!(api.expect("GET", &config_path, None, 200).await, changed);

        // A new secret signs the next delivery; an empty one removes it.
        api.expect(
            "PATCH",
            &config_path,
            Some(json!({ "secret": "second", "content_type": "json" })),
            200,
        )
        .await;
        api.expect("POST", &format!("{collection}/hooks/{id}/pings"), None, 204)
            .await;
        let pings = receiver
            .wait_for("the second ping", |r| {
                r.iter()
                    .filter(|r| r.event() == "ping" && r.json()["hook_id"] == id)
                    .count()
                    == 2
            })
            .await;
        let last = pings
            .iter()
            .rfind(|r| r.event() == "ping" && r.json()["hook_id"] == id)
            .unwrap();
        assert!(last.signed_with("second"), "{:?}", last.headers);
        let cleared = api
            .expect("PATCH", &config_path, Some(json!({ "secret": "" })), 200)
            .await;
        assert!(cleared.get("secret").is_none(), "{cleared}");
        api.expect(
            "GET",
            &format!("{collection}/hooks/{}/config", id + 100),
            None,
            404,
        )
        .await;
    }
}
