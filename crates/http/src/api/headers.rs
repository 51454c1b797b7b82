//! GitHub's headers on every `/api/v3` answer, and what GitHub refuses before any handler:
//!
//! - `X-GitHub-Request-Id`: the request's id, the one the request log and `X-Request-Id` carry
//!   ([`crate::observe`]), so a client's report names the log line.
//! - `X-GitHub-Media-Type: github.v3; format=json`, as GitHub answers JSON.
//! - `X-GitHub-Api-Version`: a version GitHub does not have is refused with 400, as GitHub
//!   refuses it; none, or a supported one, passes.
//! - `X-Accepted-OAuth-Scopes` ([`accepted_scopes`], on matched routes): the classic scopes
//!   the endpoint checks for, as GitHub lists them. (`X-OAuth-Scopes`, the caller's, is added
//!   by [`super::limits`], which resolved the caller.)
//! - An error answer that is not JSON (a path segment that does not parse, a body the
//!   framework refused) becomes GitHub's `{"message","documentation_url"}` of the same
//!   status, so no client meets a bare text error.
//!
//! Calls nothing but [`crate::observe::with_request_id`].

use axum::body::to_bytes;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::GitHubError;

/// The REST API versions GitHub serves (its description's versioned breaking changes), the
/// ones a client may ask for.
pub const API_VERSIONS: [&str; 2] = ["2022-11-28", "2026-03-10"];
/// Where GitHub documents its API versions.
const VERSIONS_DOCS: &str = "https://docs.github.com/rest/about-the-rest-api/api-versions";
/// Largest non-JSON error body read to be quoted in the JSON one.
const QUOTED_ERROR: usize = 4096;

/// Middleware on `/api/v3`: refuses an unsupported API version, rewrites a non-JSON error
/// into GitHub's shape and adds the request id and media type headers.
pub async fn github(request: Request, next: Next) -> Response {
    if let Some(version) = request.headers().get("x-github-api-version")
        && !API_VERSIONS.contains(&version.to_str().unwrap_or_default().trim())
    {
        let asked = String::from_utf8_lossy(version.as_bytes()).into_owned();
        let refusal = GitHubError {
            documentation_url: VERSIONS_DOCS,
            ..GitHubError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "Unsupported 'X-GitHub-Api-Version' header: '{asked}'. The supported versions are {}.",
                    API_VERSIONS.join(", ")
                ),
            )
        };
        return stamp(refusal.into_response());
    }
    let response = next.run(request).await;
    stamp(as_github_error(response).await)
}

/// Adds `X-GitHub-Request-Id` and `X-GitHub-Media-Type` (also to the rate limiter's
/// refusals, which answer before this middleware runs).
pub(super) fn stamp(mut response: Response) -> Response {
    let id = crate::observe::with_request_id(|id| HeaderValue::from_bytes(id).ok()).flatten();
    if let Some(id) = id {
        response.headers_mut().insert("x-github-request-id", id);
    }
    response.headers_mut().insert(
        "x-github-media-type",
        HeaderValue::from_static("github.v3; format=json"),
    );
    response
}

/// An error answer whose body is not JSON, as GitHub's JSON error of the same status.
async fn as_github_error(response: Response) -> Response {
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = to_bytes(body, QUOTED_ERROR)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("Error").to_owned()
    } else {
        text
    };
    let mut rewritten = GitHubError::new(status, message).into_response();
    // Keep what the answer said besides its body (a challenge, a Retry-After, the limits).
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
}

/// Route middleware on `/api/v3`: `X-Accepted-OAuth-Scopes`, the scopes the matched endpoint
/// checks for ([`accepted`]).
pub async fn accepted_scopes(request: Request, next: Next) -> Response {
    let accepted = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| accepted(request.method(), path.as_str()));
    let mut response = next.run(request).await;
    if let Some(accepted) = accepted {
        response.headers_mut().insert(
            "x-accepted-oauth-scopes",
            HeaderValue::from_static(accepted),
        );
    }
    response
}

/// The classic scopes endpoint `method template` checks for, comma-separated as GitHub
/// lists them (empty: none; what it shows needs no scope).
pub fn accepted(method: &Method, template: &str) -> &'static str {
    let template = template.strip_prefix("/api/v3").unwrap_or(template);
    let read = method == Method::GET || method == Method::HEAD;
    let segments: Vec<&str> = template.split('/').skip(1).collect();
    match segments.as_slice() {
        // An account's package settings, policies and quota: its administrators.
        ["orgs", _, "packages", "settings" | "policies" | "quota", ..] => "admin:org",
        [
            "users",
            _,
            "packages",
            "settings" | "policies" | "quota",
            ..,
        ] => "",
        ["user" | "users", ..] if segments.contains(&"packages") => packages(method),
        ["orgs", _, "packages", ..] => packages(method),
        ["{kind}", _, "packages", ..] => packages(method),
        ["user", "orgs"] | ["orgs", _, "members"] | ["orgs", _, "teams"] if read => {
            "admin:org, read:org, write:org"
        }
        ["orgs", _, "memberships", _] if read => "admin:org, read:org, write:org",
        // The webhook operations' scopes, as GitHub's (`Access::org_hooks_owned_by`,
        // `Access::need_repo_hook_scope`): `admin:org` does not include `admin:org_hook`.
        ["orgs", _, "hooks", ..] => "admin:org_hook",
        ["repos", _, _, "hooks", ..] => "admin:repo_hook, repo, write:repo_hook",
        ["user", "repos"] | ["users", _, "repos"] | ["orgs", _, "repos"] if read => "repo",
        ["user", "repos"] | ["orgs", _, "repos"] => "public_repo, repo",
        ["repos", ..] => "repo",
        ["orgs", ..] => "admin:org",
        ["admin", ..] => "site_admin",
        ["user"] | ["users", _] => "user",
        ["user", "hooks", ..] => "write:packages",
        _ => "",
    }
}

/// The scopes of a Packages API endpoint.
fn packages(method: &Method) -> &'static str {
    match *method {
        Method::GET | Method::HEAD => "read:packages",
        Method::DELETE => "delete:packages",
        _ => "write:packages",
    }
}

/// GitHub's 404 for a path or method Berth does not have.
pub async fn not_found() -> Response {
    GitHubError::new(StatusCode::NOT_FOUND, "Not Found").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn text(status: StatusCode, body: &'static str) -> Response {
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        response
    }

    #[tokio::test]
    async fn a_text_error_becomes_githubs_json_of_the_same_status() {
        let rewritten = as_github_error(text(StatusCode::BAD_REQUEST, "Invalid URL: no")).await;
        assert_eq!(rewritten.status(), StatusCode::BAD_REQUEST);
        let body = to_bytes(rewritten.into_body(), 1024).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["message"], "Invalid URL: no");
        assert!(body["documentation_url"].is_string());
        let ok = as_github_error(text(StatusCode::OK, "fine")).await;
        let body = to_bytes(ok.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"fine");
    }

    #[test]
    fn endpoints_accept_githubs_scopes() {
        let get = Method::GET;
        assert_eq!(
            accepted(&get, "/api/v3/orgs/{org}/members"),
            "admin:org, read:org, write:org"
        );
        assert_eq!(
            accepted(&get, "/user/orgs"),
            "admin:org, read:org, write:org"
        );
        assert_eq!(
            accepted(&Method::PUT, "/orgs/{org}/memberships/{username}"),
            "admin:org"
        );
        assert_eq!(accepted(&get, "/users/{login}/packages"), "read:packages");
        assert_eq!(
            accepted(
                &Method::DELETE,
                "/{kind}/{owner}/packages/container/{package}"
            ),
            "delete:packages"
        );
        assert_eq!(
            accepted(&Method::POST, "/orgs/{org}/hooks"),
            "admin:org_hook"
        );
        assert_eq!(accepted(&get, "/user/repos"), "repo");
        assert_eq!(accepted(&Method::POST, "/admin/users"), "site_admin");
        assert_eq!(accepted(&get, "/rate_limit"), "");
        assert_eq!(
            accepted(&Method::PUT, "/orgs/{owner}/packages/policies"),
            "admin:org"
        );
        assert_eq!(
            accepted(&Method::PUT, "/users/{owner}/packages/policies"),
            ""
        );
        assert_eq!(
            accepted(
                &Method::PUT,
                "/orgs/{org}/teams/{team}/repos/{owner}/{repo}"
            ),
            "admin:org"
        );
    }
}
