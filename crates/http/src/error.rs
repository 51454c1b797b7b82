//! The one place registry errors become HTTP responses: status, headers, and the spec's JSON
//! body `{"errors":[{"code","message","detail"}]}`. Store failures are logged and answered with
//! an opaque 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::RegistryError;
use serde_json::json;

/// A registry error on its way to a `/v2` or `/token` client, in the distribution spec's
/// shape (the management API's errors are `api::GitHubError`).
#[derive(Debug)]
pub struct OciError(pub RegistryError);

impl From<RegistryError> for OciError {
    fn from(e: RegistryError) -> Self {
        OciError(e)
    }
}

impl From<berth_core::StoreError> for OciError {
    fn from(e: berth_core::StoreError) -> Self {
        OciError(e.into())
    }
}

/// The HTTP status of each error.
pub fn status_of(error: &RegistryError) -> StatusCode {
    use RegistryError::*;
    match error {
        BlobUnknown(_) | BlobUploadUnknown(_) | UploadLost(_) | ManifestUnknown(_)
        | NameUnknown(_) => StatusCode::NOT_FOUND,
        BlobUploadInvalid(_)
        | DigestInvalid(_)
        | ManifestBlobUnknown(_)
        | ManifestInvalid(_)
        | NameInvalid(_)
        | SizeInvalid(_)
        | TagInvalid(_)
        | PaginationInvalid(_) => StatusCode::BAD_REQUEST,
        ManifestTooLarge(..) => StatusCode::PAYLOAD_TOO_LARGE,
        RangeInvalid { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
        Unsupported(_) => StatusCode::METHOD_NOT_ALLOWED,
        Unauthorized(_) => StatusCode::UNAUTHORIZED,
        // A registry token lacking a scope gets 403 with the `insufficient_scope` challenge,
        // not the Docker token spec's 401, because that is what real clients recover from
        // (tested, see ARCHITECTURE.md "Choices"): oras-py meets it on every first push (its
        // one cached token came from a pull challenge) and fetches a wider token only on a
        // 403; on a 401 it resends the same token and fails. skopeo/podman (containers/image)
        // and containerd ask for the scopes they need up front and never meet it in their own
        // flows; when forced, neither answer lets them finish (on a 401 containers/image
        // retries that one request with a new token but keeps the old one for the next,
        // containerd retries with its cached token and gives up).
        Denied(_) | InsufficientScope(_) => StatusCode::FORBIDDEN,
        TooManyRequests(_) | TooManyUploads(_) => StatusCode::TOO_MANY_REQUESTS,
        Store(e)
            if matches!(
                e.kind(),
                berth_core::error::StoreErrorKind::Unavailable
                    | berth_core::error::StoreErrorKind::Collecting
            ) =>
        {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The `Retry-After` seconds of a 503 for storage out of reach (a database restarting).
pub const UNAVAILABLE_RETRY_SECS: u64 = 5;

/// Builds the spec's error response.
pub fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    detail: serde_json::Value,
) -> Response {
    let body = json!({ "errors": [{ "code": code, "message": message, "detail": detail }] });
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let error = self.0;
        let status = status_of(&error);
        if let RegistryError::Store(e) = &error
            && e.kind() == berth_core::error::StoreErrorKind::Unavailable
        {
            tracing::error!(error = %e, "storage unavailable");
            // Distribution's code for it; clients retry a 503.
            let mut response = error_response(
                status,
                "UNAVAILABLE",
                "the registry's storage is unavailable right now (it has been logged); retry shortly",
                serde_json::Value::Null,
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(UNAVAILABLE_RETRY_SECS),
            );
            return response;
        }
        if let RegistryError::Store(e) = &error
            && e.kind() == berth_core::error::StoreErrorKind::Collecting
        {
            tracing::info!(error = %e, "refused to link a blob garbage collection is removing");
            let mut response = error_response(
                status,
                "UNAVAILABLE",
                "garbage collection is removing this blob right now; retry the upload in a few seconds",
                serde_json::Value::Null,
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(UNAVAILABLE_RETRY_SECS),
            );
            return response;
        }
        if let RegistryError::Store(e) = &error {
            tracing::error!(error = %e, "storage failure");
            return error_response(
                status,
                error.code(),
                "the registry could not complete the request because of an internal storage error; it has been logged",
                serde_json::Value::Null,
            );
        }
        let detail = match &error {
            RegistryError::BlobUnknown(d) | RegistryError::ManifestBlobUnknown(d) => {
                json!({ "digest": d })
            }
            RegistryError::RangeInvalid { offset, .. } => json!({ "offset": offset }),
            _ => serde_json::Value::Null,
        };
        let mut response = error_response(status, error.code(), &error.to_string(), detail);
        if let RegistryError::RangeInvalid {
            offset, upload_id, ..
        } = &error
        {
            let headers = response.headers_mut();
            headers.insert(header::RANGE, crate::oci::range_header(*offset));
            headers.insert("docker-upload-uuid", crate::oci::header_value(upload_id));
        }
        if let RegistryError::InsufficientScope(_) = &error {
            // The challenge needs the request's host; the dispatcher adds it (see `auth`).
            response
                .extensions_mut()
                .insert(crate::auth::InsufficientScope);
        }
        if let RegistryError::TooManyRequests(seconds) = &error {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
        }
        response
    }
}
