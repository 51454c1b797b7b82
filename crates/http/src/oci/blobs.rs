//! `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::registry::{BlobRead, ByteRange, Registry};
use berth_core::{Digest, RepoName};

use super::{Answer, empty, header_value};

/// The request's `Range`, when it is one Berth serves (see [`crate::ranges::parse_range`]).
fn parse_range(headers: &HeaderMap) -> Option<ByteRange> {
    crate::ranges::parse_range(headers.get(header::RANGE)?.to_str().ok()?)
}

/// Serves a blob, a byte range of it (206), or its headers.
pub async fn get(
    registry: &Registry,
    name: &RepoName,
    digest: &Digest,
    headers: &HeaderMap,
    head_only: bool,
) -> Answer {
    let digest_header = header_value(digest.as_str());
    if head_only {
        let size = registry.blob_size(name, digest).await?;
        return Ok(empty_with_length(size, digest_header));
    }
    let read = registry
        .read_blob(name, digest, parse_range(headers))
        .await?;
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::ACCEPT_RANGES, "bytes")
        .header("docker-content-digest", digest_header)
        .header(header::ETAG, format!("\"{digest}\""));
    let response = match read {
        // The client follows it, sending its Range there; the URL carries its own expiry.
        BlobRead::Redirect { url } => Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header(header::LOCATION, url)
            .header("docker-content-digest", digest.as_str())
            .header(header::CONTENT_LENGTH, 0)
            .body(Body::empty()),
        BlobRead::Whole { size, stream } => builder
            .status(StatusCode::OK)
            .header(header::CONTENT_LENGTH, size)
            .body(Body::from_stream(stream)),
        BlobRead::Partial {
            size,
            first,
            last,
            stream,
        } => builder
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_LENGTH, last - first + 1)
            .header(
                header::CONTENT_RANGE,
                format!("bytes {first}-{last}/{size}"),
            )
            .body(Body::from_stream(stream)),
        BlobRead::Unsatisfiable { size } => builder
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(header::CONTENT_RANGE, format!("bytes */{size}"))
            .header(header::CONTENT_LENGTH, 0)
            .body(Body::empty()),
    };
    Ok(response.unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
}

fn empty_with_length(size: u64, digest: axum::http::HeaderValue) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, size)
        .header(header::ACCEPT_RANGES, "bytes")
        .header("docker-content-digest", digest)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Removes a blob from the repository.
pub async fn delete(registry: &Registry, name: &RepoName, digest: &Digest) -> Answer {
    registry.delete_blob(name, digest).await?;
    Ok(empty(StatusCode::ACCEPTED, &[]))
}
