//! Blob uploads: `POST /v2/<name>/blobs/uploads/` (start, monolithic push, mount) and
//! `GET`/`PATCH`/`PUT`/`DELETE /v2/<name>/blobs/uploads/<id>`.

use axum::body::{Body, BodyDataStream};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use berth_core::registry::{MountOutcome, Registry};
use berth_core::{Digest, RegistryError, RepoName};

use super::{Answer, Params, drain, empty, header_value, range_header};
use crate::error::OciError;

fn upload_location(name: &RepoName, id: &str) -> HeaderValue {
    header_value(&format!("/v2/{name}/blobs/uploads/{id}"))
}

fn blob_created(name: &RepoName, digest: &Digest) -> axum::response::Response {
    empty(
        StatusCode::CREATED,
        &[
            (
                "location",
                header_value(&format!("/v2/{name}/blobs/{digest}")),
            ),
            ("docker-content-digest", header_value(digest.as_str())),
        ],
    )
}

fn session_answer(
    status: StatusCode,
    name: &RepoName,
    id: &str,
    offset: u64,
) -> axum::response::Response {
    empty(
        status,
        &[
            ("location", upload_location(name, id)),
            ("range", range_header(offset)),
            ("docker-upload-uuid", header_value(id)),
        ],
    )
}

fn digest_param(raw: &str) -> Result<Digest, OciError> {
    raw.parse().map_err(|e: berth_core::digest::DigestError| {
        OciError(RegistryError::DigestInvalid(e.to_string()))
    })
}

/// Answers a request that may carry a blob's bytes (`start`, `patch`, `put`): `handle` on its
/// body. When the answer is not a success (another request holds the upload, a chunk out of
/// order, a bad header, a limit passed), it goes out at once, and what is left of the body is
/// read and discarded behind it on a task of its own (see [`drain`]): a client still sending
/// then finishes and reads the answer and its message, rather than meeting a broken pipe, and
/// one waiting for the answer before it sends (a body announced too large) gets it at once.
pub async fn draining<F>(body: Body, handle: F) -> Answer
where
    F: AsyncFnOnce(&mut BodyDataStream) -> Answer,
{
    let mut body = body.into_data_stream();
    let answer = handle(&mut body).await;
    if !answer
        .as_ref()
        .is_ok_and(|response| response.status().is_success())
    {
        tokio::spawn(async move { drain(&mut body).await });
    }
    answer
}

/// Starts an upload; with `?digest=` pushes the body as the whole blob; with `?mount=&from=`
/// mounts a blob from another repository, falling back to a new session.
pub async fn start(
    registry: &Registry,
    name: &RepoName,
    params: &Params,
    headers: &HeaderMap,
    body: &mut BodyDataStream,
) -> Answer {
    if let Some(mount) = &params.mount {
        let digest = digest_param(mount)?;
        // An invalid `from` cannot hold the blob: fall back to a session, as for any miss.
        let from = params
            .from
            .as_deref()
            .and_then(|f| f.parse::<RepoName>().ok());
        return Ok(
            match registry.mount_blob(name, &digest, from.as_ref()).await? {
                MountOutcome::Mounted => blob_created(name, &digest),
                MountOutcome::Session(s) => session_answer(StatusCode::ACCEPTED, name, &s.id, 0),
            },
        );
    }
    if let Some(raw) = &params.digest {
        let digest = digest_param(raw)?;
        registry
            .push_blob(name, &digest, content_length(headers), body)
            .await?;
        return Ok(blob_created(name, &digest));
    }
    let session = registry.start_upload(name).await?;
    Ok(session_answer(StatusCode::ACCEPTED, name, &session.id, 0))
}

/// Reports how many bytes an upload holds.
pub async fn status(registry: &Registry, name: &RepoName, id: &str) -> Answer {
    let session = registry.upload_status(name, id).await?;
    Ok(session_answer(
        StatusCode::NO_CONTENT,
        name,
        id,
        session.offset,
    ))
}

/// Parses `Content-Range: <start>-<end>` (a `bytes ` prefix and `/<total>` suffix are
/// tolerated).
fn content_range(headers: &HeaderMap) -> Result<Option<(u64, u64)>, OciError> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let invalid = || {
        OciError(RegistryError::BlobUploadInvalid(format!(
            "Content-Range `{}` is not `<start>-<end>` with start <= end",
            value.to_str().unwrap_or("?")
        )))
    };
    let text = value.to_str().map_err(|_| invalid())?;
    crate::ranges::parse_content_range(text)
        .map(Some)
        .ok_or_else(invalid)
}

/// The body's `Content-Length`, when sent and readable (hyper has already refused a
/// malformed one).
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Appends a chunk (with `Content-Range`) or a stream (without) to an upload.
pub async fn patch(
    registry: &Registry,
    name: &RepoName,
    id: &str,
    headers: &HeaderMap,
    body: &mut BodyDataStream,
) -> Answer {
    let range = content_range(headers)?;
    match registry
        .append_upload(name, id, range, content_length(headers), body)
        .await
    {
        Ok(offset) => Ok(session_answer(StatusCode::ACCEPTED, name, id, offset)),
        Err(err) => resumable(err, name, id),
    }
}

/// An out-of-order chunk's 416 also says where to resume (`Location`; the error mapping adds
/// `Range`), since the session is kept.
fn resumable(err: RegistryError, name: &RepoName, id: &str) -> Answer {
    if !matches!(err, RegistryError::RangeInvalid { .. }) {
        return Err(err.into());
    }
    let mut response = axum::response::IntoResponse::into_response(OciError(err));
    response
        .headers_mut()
        .insert("location", upload_location(name, id));
    Ok(response)
}

/// Finishes an upload with an optional last chunk; `?digest=` is required. A last chunk with
/// `Content-Range` must start where the upload ends, as a PATCH must (else 416, and the
/// session stays to be resumed).
pub async fn put(
    registry: &Registry,
    name: &RepoName,
    id: &str,
    params: &Params,
    headers: &HeaderMap,
    body: &mut BodyDataStream,
) -> Answer {
    let raw = params.digest.as_deref().ok_or_else(|| {
        OciError(RegistryError::DigestInvalid(
            "finishing an upload needs `?digest=<algorithm>:<hex>` of the whole blob".into(),
        ))
    })?;
    let digest = digest_param(raw)?;
    let range = content_range(headers)?;
    match registry
        .finish_upload(name, id, &digest, range, content_length(headers), body)
        .await
    {
        Ok(_) => Ok(blob_created(name, &digest)),
        Err(err) => resumable(err, name, id),
    }
}

/// Cancels an upload.
pub async fn cancel(registry: &Registry, name: &RepoName, id: &str) -> Answer {
    registry.cancel_upload(name, id).await?;
    Ok(empty(StatusCode::NO_CONTENT, &[]))
}
