//! Conditional requests, as GitHub answers them: a successful `GET` under `/api/v3` carries
//! a weak `ETag` (`W/"<hex SHA-256 of the body>"`), and a `GET` whose `If-None-Match` names
//! it is answered `304 Not Modified` with the same headers and no body.
//!
//! A single object that says when it last changed (an `updated_at`) also carries
//! `Last-Modified`, and a `GET` with `If-Modified-Since` at or after it (and no
//! `If-None-Match`, which wins, as RFC 9110 says) is answered `304` too.
//!
//! The body is buffered to be hashed: the API's answers are small JSON. One whose size is
//! unknown or over [`MAX_TAGGED_BODY`] passes through untagged. Calls nothing.

use axum::body::{Body, HttpBody as _, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};
use std::time::SystemTime;

use super::GitHubError;

/// Largest body given an `ETag`.
pub const MAX_TAGGED_BODY: usize = 8 << 20;

/// Middleware on `/api/v3`: tags `200` answers to `GET`, and answers `304` when the client
/// has that version already.
pub async fn conditional(request: Request, next: Next) -> Response {
    if request.method() != Method::GET {
        return next.run(request).await;
    }
    let if_none_match: Vec<HeaderValue> = request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .cloned()
        .collect();
    let if_modified_since = request
        .headers()
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    if body
        .size_hint()
        .upper()
        .is_none_or(|size| size > MAX_TAGGED_BODY as u64)
    {
        return Response::from_parts(parts, body);
    }
    let bytes = match to_bytes(body, MAX_TAGGED_BODY).await {
        Ok(bytes) => bytes,
        Err(err) => {
            tracing::error!(error = %err, "reading an API answer to tag it failed");
            return GitHubError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Berth could not complete the request because of an internal error; it has been logged",
            )
            .into_response();
        }
    };
    let opaque = hex(&Sha256::digest(&bytes));
    let etag = HeaderValue::from_str(&format!("W/\"{opaque}\"")).expect("hex is a header value");
    parts.headers.insert(header::ETAG, etag);
    if !parts.headers.contains_key(header::VARY) {
        // The same URL answers each caller with its own view.
        parts.headers.insert(
            header::VARY,
            HeaderValue::from_static("Accept, Authorization"),
        );
    }
    let modified = last_modified(&bytes);
    if let Some(modified) = modified {
        let date = HeaderValue::from_str(&httpdate::fmt_http_date(modified))
            .expect("an HTTP date is a header value");
        parts.headers.insert(header::LAST_MODIFIED, date);
    }
    let unmodified = match (if_none_match.is_empty(), modified, if_modified_since) {
        (true, Some(modified), Some(since)) => modified <= since,
        _ => false,
    };
    if unmodified || none_match(&if_none_match, &opaque) {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::CONTENT_TYPE);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// When the object `body` is last changed, by its `updated_at` (whole seconds, as HTTP dates
/// have them); `None` for a list, or an object without one.
fn last_modified(body: &[u8]) -> Option<SystemTime> {
    #[derive(serde::Deserialize)]
    struct Stamped {
        updated_at: Option<String>,
    }
    if body.first() != Some(&b'{') {
        return None;
    }
    let stamped: Stamped = serde_json::from_slice(body).ok()?;
    humantime::parse_rfc3339_weak(&stamped.updated_at?).ok()
}

/// Whether `If-None-Match` (every value of the header) names the entity tag whose opaque
/// part is `opaque`, weakly or strongly, or is `*`. Comparison is weak, as RFC 9110 says
/// for `If-None-Match`.
fn none_match(values: &[HeaderValue], opaque: &str) -> bool {
    values
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || opaque_part(tag) == Some(opaque))
}

/// `abc` of `W/"abc"` or `"abc"`.
fn opaque_part(tag: &str) -> Option<&str> {
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    tag.strip_prefix('"')?.strip_suffix('"')
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(lines: &[&str], opaque: &str) -> bool {
        let values: Vec<HeaderValue> = lines.iter().map(|l| l.parse().unwrap()).collect();
        none_match(&values, opaque)
    }

    #[test]
    fn weak_strong_listed_and_star_tags_match() {
        assert!(matches(&["W/\"abc\""], "abc"));
        assert!(matches(&["\"abc\""], "abc"));
        assert!(matches(&["\"x\", W/\"abc\" ,\"y\""], "abc"));
        assert!(matches(&["\"x\"", "W/\"abc\""], "abc"));
        assert!(matches(&["*"], "abc"));
    }

    #[test]
    fn other_or_malformed_tags_do_not_match() {
        assert!(!matches(&[], "abc"));
        assert!(!matches(&["W/\"abd\""], "abc"));
        assert!(!matches(&["abc"], "abc"));
        assert!(!matches(&["w/\"abc\""], "abc"));
        assert!(!matches(&["\"abc"], "abc"));
        assert!(!matches(&[""], "abc"));
    }

    #[test]
    fn an_object_is_modified_when_its_updated_at_says() {
        let at = last_modified(br#"{"id":1,"updated_at":"2026-11-23T10:00:00Z"}"#).unwrap();
        assert_eq!(httpdate::fmt_http_date(at), "Mon, 23 Nov 2026 10:00:00 GMT");
        assert_eq!(
            last_modified(br#"[{"updated_at":"2026-11-23T10:00:00Z"}]"#),
            None
        );
        assert_eq!(last_modified(br#"{"updated_at":null}"#), None);
        assert_eq!(last_modified(br#"{"id":1}"#), None);
    }

    #[test]
    fn the_tag_is_the_hex_sha256_of_the_body() {
        assert_eq!(
            hex(&Sha256::digest(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
