//! The one client of the management API (`/api/v3`) the suites use: GitHub-style requests
//! (`Authorization: token …`, `Accept: application/vnd.github+json`, JSON bodies) decoded as
//! JSON.

use std::time::{Duration, Instant};

use reqwest::{RequestBuilder, Response};
use serde_json::Value;

use super::{Server, anonymous_client};

/// A caller of `/api/v3` on one server.
pub struct Api<'a> {
    server: &'a Server,
    /// The `Authorization` header sent, if any.
    authorization: Option<String>,
}

impl<'a> Api<'a> {
    /// A caller with a Berth token, sent as GitHub's clients do: `Authorization: token …`.
    pub fn new(server: &'a Server, token: &str) -> Self {
        Api::with_authorization(server, &format!("token {token}"))
    }

    /// A caller sending no credentials.
    pub fn anonymous(server: &'a Server) -> Self {
        Api {
            server,
            authorization: None,
        }
    }

    /// A caller with `token` when there is one, else anonymous.
    pub fn maybe(server: &'a Server, token: Option<&str>) -> Self {
        match token {
            Some(token) => Api::new(server, token),
            None => Api::anonymous(server),
        }
    }

    /// A caller sending `authorization` as it is, e.g. `Bearer <app secret>`.
    pub fn with_authorization(server: &'a Server, authorization: &str) -> Self {
        Api {
            server,
            authorization: Some(authorization.to_owned()),
        }
    }

    /// The request `method path` (`path` under `/api/v3`) with this caller's headers, to add
    /// more before sending.
    pub fn request(&self, method: &str, path: &str) -> RequestBuilder {
        let url = self.server.url(&format!("/api/v3{path}"));
        let mut request = anonymous_client()
            .request(method.parse().expect("method"), url)
            .header("accept", "application/vnd.github+json");
        if let Some(authorization) = &self.authorization {
            request = request.header("authorization", authorization);
        }
        request
    }

    /// Sends `method path` with `body` as JSON; the response as it came.
    pub async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Response {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("API call")
    }

    /// Sends `method path`; the status and the body as JSON (`null` when empty).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let response = self.send(method, path, body).await;
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        super::schema::assert_rest(method, path, status, &value);
        (status, value)
    }

    /// Calls and asserts the status; the body.
    pub async fn expect(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let (got, value) = self.call(method, path, body).await;
        assert_eq!(got, status, "{method} {path}: {value}");
        value
    }

    /// Calls and asserts success (any 2xx); the body.
    pub async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (got, value) = self.call(method, path, body).await;
        assert!(
            (200..300).contains(&got),
            "{method} /api/v3{path}: {got} {value}"
        );
        value
    }

    /// `GET path` until `done` holds for its body, at most 10 s; the body.
    pub async fn until(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let value = self.expect("GET", path, None, 200).await;
            if done(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "GET {path} never got there: {value}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Asserts a GitHub-shaped error body (a `message` and a `documentation_url`); the message.
pub fn github_error(value: &Value) -> &str {
    assert!(
        value["documentation_url"].is_string(),
        "documentation_url missing: {value}"
    );
    value["message"].as_str().expect("message")
}
