//! `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>`.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::access::Principal;
use berth_core::manifest::MAX_MANIFEST_BYTES;
use berth_core::registry::Registry;
use berth_core::services::{ManifestPush, Services};
use berth_core::{Reference, RegistryError, RepoName};
use futures_util::StreamExt;

use super::{Answer, DRAIN_LIMIT, empty, header_value};
use crate::error::OciError;

/// Whether the client's `Accept` header admits `media_type`. No header, `*/*` or
/// `application/*` admit everything.
fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    let mut any_header = false;
    for value in headers.get_all(header::ACCEPT) {
        any_header = true;
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let item = item.split(';').next().unwrap_or("").trim();
            if item == media_type || item == "*/*" || item == "application/*" || item.is_empty() {
                return true;
            }
        }
    }
    !any_header
}

/// Serves a manifest's bytes exactly as pushed, or only its headers.
pub async fn get(
    registry: &Registry,
    name: &RepoName,
    reference: &Reference,
    headers: &HeaderMap,
    head_only: bool,
) -> Answer {
    let manifest = registry.get_manifest(name, reference).await?;
    if !accepts(headers, &manifest.media_type) {
        return Err(OciError(RegistryError::ManifestUnknown(format!(
            "{reference} (it is a {}, which the request's Accept header does not list)",
            manifest.media_type
        ))));
    }
    let builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, header_value(&manifest.media_type))
        .header(header::CONTENT_LENGTH, manifest.content.len())
        .header(
            "docker-content-digest",
            header_value(manifest.digest.as_str()),
        )
        .header(
            header::ETAG,
            header_value(&format!("\"{}\"", manifest.digest)),
        );
    let body = if head_only {
        Body::empty()
    } else {
        registry.count_download(name, &manifest.digest);
        Body::from(manifest.content)
    };
    Ok(builder
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
}

/// Validates and stores a manifest (at most 4 MiB, read whole): one call to
/// [`Services::push_manifest`], which also links the package and queues its webhooks.
pub async fn put(
    services: &Services,
    pusher: &Principal,
    name: &RepoName,
    reference: &Reference,
    headers: &HeaderMap,
    base: &str,
    body: Body,
) -> Answer {
    let content = read_manifest_body(body).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let pushed = services
        .push_manifest(ManifestPush {
            pusher,
            name,
            reference,
            content_type,
            content,
            base,
        })
        .await?;
    let location = header_value(&format!("/v2/{name}/manifests/{}", pushed.digest));
    let mut answer = vec![
        ("location", location),
        (
            "docker-content-digest",
            header_value(pushed.digest.as_str()),
        ),
    ];
    if let Some(subject) = &pushed.subject {
        answer.push(("oci-subject", header_value(subject.as_str())));
    }
    Ok(empty(StatusCode::CREATED, &answer))
}

/// Reads a manifest body of at most [`MAX_MANIFEST_BYTES`]. A larger body is answered 413
/// after draining it (up to [`DRAIN_LIMIT`]); nothing of it is kept.
async fn read_manifest_body(body: Body) -> Result<bytes::Bytes, OciError> {
    let mut frames = body.into_data_stream();
    let mut content = bytes::BytesMut::new();
    let mut seen = 0u64;
    while let Some(frame) = frames.next().await {
        let frame = frame.map_err(|e| {
            OciError(RegistryError::ManifestInvalid(format!(
                "the manifest body could not be read completely: {e}"
            )))
        })?;
        seen += frame.len() as u64;
        if seen <= MAX_MANIFEST_BYTES {
            content.extend_from_slice(&frame);
        } else if seen > DRAIN_LIMIT {
            break;
        }
    }
    if seen > MAX_MANIFEST_BYTES {
        return Err(OciError(RegistryError::ManifestTooLarge(
            seen,
            MAX_MANIFEST_BYTES,
        )));
    }
    Ok(content.freeze())
}

/// Deletes a manifest by digest (restorable for 30 days; refused while a tagged index needs
/// it), or a tag: one call to [`Services::delete_manifest`].
pub async fn delete(
    services: &Services,
    deleter: &Principal,
    name: &RepoName,
    reference: &Reference,
    base: &str,
) -> Answer {
    services
        .delete_manifest(deleter, name, reference, base)
        .await?;
    Ok(empty(StatusCode::ACCEPTED, &[]))
}
