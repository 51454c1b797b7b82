//! Setting up access fixtures through the management API, and reading registry answers,
//! for the suites that check who reaches what over HTTP.

use base64::Engine as _;
use reqwest::{Client, Method, Response};
use serde_json::{Value, json};

use super::{Server, anonymous_client, base64_encode};

/// The OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Sends `/api/v3<path>` with `Authorization: token <token>` (none when `token` is `None`).
pub async fn call(
    server: &Server,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Value,
) -> Response {
    let mut request = anonymous_client().request(method, server.url(&format!("/api/v3{path}")));
    if let Some(token) = token {
        request = request.header("authorization", format!("token {token}"));
    }
    if !body.is_null() {
        request = request.json(&body);
    }
    request.send().await.expect("API request")
}

/// Calls the API, asserting success; the JSON answer.
pub async fn api(server: &Server, token: &str, method: Method, path: &str, body: Value) -> Value {
    let response = call(server, Some(token), method.clone(), path, body).await;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(
        status.is_success(),
        "{method} /api/v3{path}: {status} {text}"
    );
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Creates user `login` (with `email`) and a classic token of theirs with every package
/// scope, `repo` and `admin:org`.
pub async fn user(server: &Server, login: &str, email: Option<&str>) -> String {
    api(
        server,
        &server.admin_token,
        Method::POST,
        "/admin/users",
        json!({ "login": login, "email": email }),
    )
    .await;
    server.admin(&[
        "create-token",
        login,
        "--scopes",
        "read:packages,write:packages,delete:packages,repo,admin:org",
    ])
}

pub async fn member(server: &Server, login: &str, role: &str) {
    api(
        server,
        &server.admin_token,
        Method::PUT,
        &format!("/orgs/acme/memberships/{login}"),
        json!({ "role": role }),
    )
    .await;
}

/// A classic token of the user behind `own` with `scopes`: its id and secret.
pub async fn classic(server: &Server, own: &str, scopes: &[&str]) -> (i64, String) {
    let token = api(
        server,
        own,
        Method::POST,
        "/user/tokens",
        json!({ "note": "hostile", "scopes": scopes }),
    )
    .await;
    (
        token["id"].as_i64().expect("id"),
        token["token"].as_str().expect("token").to_owned(),
    )
}

pub fn fine_grained_request(owner: &str, packages: &[&str], permission: &str) -> Value {
    json!({
        "type": "fine_grained",
        "note": "hostile",
        "resource_owner": owner,
        "packages": packages,
        "permissions": { "packages": permission },
    })
}

/// A fine-grained token of the user behind `own`.
pub async fn fine_grained(
    server: &Server,
    own: &str,
    owner: &str,
    packages: &[&str],
    permission: &str,
) -> String {
    let token = api(
        server,
        own,
        Method::POST,
        "/user/tokens",
        fine_grained_request(owner, packages, permission),
    )
    .await;
    token["token"].as_str().expect("token").to_owned()
}

/// Sets something of an `acme` package as the site administrator.
pub async fn package_setting(
    server: &Server,
    method: Method,
    package: &str,
    setting: &str,
    body: Value,
) {
    let short = package.trim_start_matches("acme/");
    api(
        server,
        &server.admin_token,
        method,
        &format!("/orgs/acme/packages/container/{short}{setting}"),
        body,
    )
    .await;
}

pub async fn make_visible(server: &Server, package: &str, visibility: &str) {
    package_setting(
        server,
        Method::PATCH,
        package,
        "",
        json!({ "visibility": visibility }),
    )
    .await;
}

pub async fn repo(server: &Server, name: &str, visibility: &str) {
    api(
        server,
        &server.admin_token,
        Method::POST,
        "/orgs/acme/repos",
        json!({ "name": name, "visibility": visibility }),
    )
    .await;
}

/// A registry client that logs in with `token`.
pub fn login(token: &str) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Basic {}", base64_encode(format!("x:{token}").as_bytes()));
    headers.insert(
        reqwest::header::AUTHORIZATION,
        value.parse().expect("header"),
    );
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .expect("client")
}

/// Status, error code and body of a response, with `name` replaced by `<name>`.
pub async fn shape(response: Response, name: &str) -> String {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let short = name.split_once('/').map_or(name, |(_, s)| s);
    format!(
        "{status} {}",
        body.replace(name, "<name>").replace(short, "<name>")
    )
}

pub async fn pull(http: &Client, server: &Server, name: &str) -> Response {
    http.get(server.url(&format!("/v2/{name}/manifests/v1")))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("pull")
}

pub async fn push_manifest(
    http: &Client,
    server: &Server,
    name: &str,
    manifest: &[u8],
) -> Response {
    http.put(server.url(&format!("/v2/{name}/manifests/v1")))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.to_vec())
        .send()
        .await
        .expect("push")
}

pub async fn status_and_code(response: Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let code = body["errors"][0]["code"]
        .as_str()
        .or_else(|| body["message"].as_str())
        .unwrap_or("")
        .to_owned();
    (status, code)
}

/// The claims of a registry token (`brt1.<payload>.<mac>`).
pub fn claims(token: &str) -> Value {
    let payload = token
        .strip_prefix("brt1.")
        .and_then(|rest| rest.split('.').next())
        .expect("a registry token");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}
