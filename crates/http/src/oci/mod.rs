//! The OCI distribution routes: one dispatcher, one module per endpoint group.

mod blobs;
mod listings;
mod manifests;
mod uploads;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use berth_core::RegistryError;
use berth_core::RepoName;
use berth_core::access::Action;
use serde::Deserialize;

use crate::AppState;
use crate::endpoint::{Endpoint, Operation, ParseError, reference_error};
use crate::error::{OciError, error_response};
use crate::origin::Origin;

/// Query parameters any distribution endpoint may take.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    /// Digest of a monolithic push or the final PUT of an upload.
    pub digest: Option<String>,
    /// Blob to mount from another repository.
    pub mount: Option<String>,
    /// Repository to mount from.
    pub from: Option<String>,
    /// Page size of a listing.
    pub n: Option<String>,
    /// Last item of the previous page.
    pub last: Option<String>,
    /// Referrers filter.
    #[serde(rename = "artifactType")]
    pub artifact_type: Option<String>,
}

/// The result type of handlers.
pub type Answer = Result<Response, OciError>;

/// Routes one `/v2` request: parse the endpoint, look up what the method does there
/// ([`Endpoint::operation`]), authenticate, check the action that operation needs, then hand
/// it to its group's handler. A 401 carries the challenge for the endpoint's scope.
pub async fn dispatch(
    State(state): State<AppState>,
    origin: Origin,
    method: Method,
    uri: Uri,
    Query(params): Query<Params>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let endpoint = match Endpoint::parse(uri.path()) {
        Ok(endpoint) => endpoint,
        Err(ParseError::Invalid(e)) => {
            crate::observe::note_endpoint("v2_invalid", None);
            return OciError(e).into_response();
        }
        Err(ParseError::NoSuchEndpoint) => {
            crate::observe::note_endpoint("v2_unknown", None);
            return not_found(uri).await;
        }
    };
    let operation = endpoint.operation(&method);
    crate::observe::note_endpoint(
        operation.as_ref().map_or(endpoint.label(), Operation::name),
        endpoint.name(),
    );
    // Refused before authorization: authorizing a push may create the package, and a push
    // that cannot succeed must leave nothing behind.
    if let Some(Operation::PushInvalidReference(error)) = operation {
        return OciError(reference_error(error)).into_response();
    }
    let action = operation.as_ref().and_then(Operation::action);
    let scope = challenge_scope(&endpoint, action, &params);
    let answer = handle(
        &state, &origin, &method, &endpoint, operation, params, &headers, body,
    )
    .await;
    let mut response = answer.unwrap_or_else(IntoResponse::into_response);
    // Only refusals carry a challenge: the scope is formed for them alone.
    if matches!(
        response.status(),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
    ) {
        state
            .auth
            .add_challenge(&mut response, &origin, scope.as_deref());
    }
    response
}

/// The scope a client should request after a 401 here. A cross-repository mount also names
/// pull on the repository it mounts from (as Distribution's challenge does), so the token the
/// client fetches can mount instead of falling back to an upload.
fn challenge_scope(endpoint: &Endpoint, action: Option<Action>, params: &Params) -> Option<String> {
    if matches!(endpoint, Endpoint::Catalog) {
        return Some("registry:catalog:*".into());
    }
    let name = endpoint.name()?;
    let verbs = match action? {
        Action::Pull => "pull",
        Action::Push => "pull,push",
        Action::Delete | Action::Manage => "delete",
    };
    let mut scope = format!("repository:{name}:{verbs}");
    if let (Endpoint::StartUpload(_), Some(from)) = (endpoint, mount_source(params))
        && &from != name
    {
        scope.push_str(&format!(" repository:{from}:pull"));
    }
    Some(scope)
}

/// The repository a mount request (`?mount=<digest>&from=<name>`) mounts from, when valid.
fn mount_source(params: &Params) -> Option<RepoName> {
    params.mount.as_ref()?;
    params.from.as_deref()?.parse().ok()
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    state: &AppState,
    origin: &Origin,
    method: &Method,
    endpoint: &Endpoint,
    operation: Option<Operation<'_>>,
    mut params: Params,
    headers: &HeaderMap,
    body: Body,
) -> Answer {
    let auth = &state.auth;
    let registry = &state.services.registry;
    let caller = auth.caller(headers, Some(origin.client.ip())).await?;
    let Some(operation) = operation else {
        return Err(OciError(RegistryError::Unsupported(format!(
            "{method} is not supported on the {} endpoint",
            endpoint.label()
        ))));
    };
    if let (Some(action), Some(name)) = (operation.action(), endpoint.name()) {
        auth.authorize(&caller, name, action).await?;
    }
    match operation {
        Operation::Ping => {
            // A registry token from /token, even an anonymous one, is a login: Distribution
            // answers 200 to any valid token, and clients ping /v2/ with the token they got.
            if caller.is_anonymous() && caller.token_scopes.is_none() {
                return Err(OciError(RegistryError::Unauthorized(
                    "authentication required: log in with a Berth token (docker login / skopeo login)".into(),
                )));
            }
            Ok(([("content-type", "application/json")], "{}").into_response())
        }
        Operation::Catalog => listings::catalog(state, &caller, &params).await,
        Operation::ListTags(name) => listings::tags(registry, name, &params).await,
        Operation::ListReferrers(name, digest) => {
            listings::referrers(registry, name, digest, &params).await
        }
        Operation::ReadManifest {
            name,
            reference,
            head,
        } => manifests::get(registry, name, reference, headers, head).await,
        Operation::ReadUnknownReference(raw, why) | Operation::DeleteUnknownReference(raw, why) => {
            Err(OciError(RegistryError::ManifestUnknown(format!(
                "{raw} (it is neither a tag nor a digest, so nothing is stored under it: {why})"
            ))))
        }
        // Answered before authentication (see `dispatch`); here for completeness.
        Operation::PushInvalidReference(error) => Err(OciError(reference_error(error))),
        Operation::PushManifest(name, reference) => {
            manifests::put(
                &state.services,
                &caller.principal,
                name,
                reference,
                headers,
                &origin.base_url,
                body,
            )
            .await
        }
        Operation::DeleteManifest(name, reference) => {
            manifests::delete(
                &state.services,
                &caller.principal,
                name,
                reference,
                &origin.base_url,
            )
            .await
        }
        Operation::ReadBlob { name, digest, head } => {
            blobs::get(registry, name, digest, headers, head).await
        }
        Operation::DeleteBlob(name, digest) => blobs::delete(registry, name, digest).await,
        Operation::StartUpload(name) => {
            // A mount from a repository the caller cannot read falls back to a plain upload,
            // exactly as if the blob were not there.
            if let Some(from) = mount_source(&params)
                && !(auth
                    .access
                    .permits(&caller.principal, &from, Action::Pull)
                    .await?
                    && caller.token_covers("repository", from.as_str(), "pull"))
            {
                params.from = None;
            }
            uploads::draining(body, async |body| {
                uploads::start(registry, name, &params, headers, body).await
            })
            .await
        }
        Operation::UploadStatus(name, id) => uploads::status(registry, name, id).await,
        Operation::PatchUpload(name, id) => {
            uploads::draining(body, async |body| {
                uploads::patch(registry, name, id, headers, body).await
            })
            .await
        }
        Operation::FinishUpload(name, id) => {
            uploads::draining(body, async |body| {
                uploads::put(registry, name, id, &params, headers, body).await
            })
            .await
        }
        Operation::CancelUpload(name, id) => uploads::cancel(registry, name, id).await,
    }
}

/// Any path outside the distribution API.
pub async fn not_found(uri: Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "UNSUPPORTED",
        &format!("`{}` is not an endpoint of this registry", uri.path()),
        serde_json::Value::Null,
    )
}

/// How much of a refused request's body is read and discarded, so a client still sending
/// receives the refusal (and its message) instead of a broken pipe. Past this the connection
/// is simply closed.
pub(super) const DRAIN_LIMIT: u64 = 64 << 20;

/// Reads and discards what is left of `body`, up to [`DRAIN_LIMIT`] bytes or its first error:
/// behind the refusal of a request whose body may not have been read whole.
pub(super) async fn drain<S, E>(body: &mut S)
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
{
    use futures_util::StreamExt as _;
    let mut seen = 0u64;
    while seen <= DRAIN_LIMIT {
        match body.next().await {
            Some(Ok(frame)) => seen += frame.len() as u64,
            Some(Err(_)) | None => return,
        }
    }
}

/// A header value from text the registry produced (ids, digests, names: always visible ASCII).
pub fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// The `Range` header of an upload holding `offset` bytes (`0-<last byte>`; `0-0` when empty,
/// as Distribution answers).
pub fn range_header(offset: u64) -> HeaderValue {
    header_value(&format!("0-{}", offset.saturating_sub(1)))
}

/// An empty response with the given status and headers.
pub fn empty(status: StatusCode, headers: &[(&str, HeaderValue)]) -> Response {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, value.clone());
    }
    response
        .header("content-length", "0")
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Parses `n` of a listing: absent means "all", a cap keeps one page bounded.
pub fn page_size(params: &Params) -> Result<Option<usize>, OciError> {
    const MAX_PAGE: usize = 10_000;
    params
        .n
        .as_deref()
        .map(|n| {
            n.parse::<usize>().map(|n| n.min(MAX_PAGE)).map_err(|_| {
                OciError(RegistryError::PaginationInvalid(format!(
                    "`n={n}` is not a page size; use a non-negative integer"
                )))
            })
        })
        .transpose()
}
