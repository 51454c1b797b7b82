//! Asking the registry as a principal and reading its answers, for the suites that check who
//! reaches what over HTTP (the principals themselves come from [`super::world`]).

use base64::Engine as _;
use reqwest::{Client, Response};
use serde_json::Value;

use super::Server;

/// The OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

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
