//! Storage quotas (Berth's): `GET /{orgs|users}/{owner}/packages/quota` for the account's
//! owners and site administrators; `GET`/`PUT`/`DELETE /admin/storage-quotas/{account}` for
//! site administrators, in the style of GitHub Enterprise Server's `/admin` endpoints.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_core::github::users;
use serde::Deserialize;
use serde_json::Value;

use super::{ApiResult, GitHubError, Who, answer, body, no_content};
use crate::AppState;

/// `GET /orgs/{org}/packages/quota`, `GET /users/{user}/packages/quota` and
/// `GET /admin/storage-quotas/{account}`: usage and quota.
pub async fn get(State(state): State<AppState>, who: Who, Path(owner): Path<String>) -> ApiResult {
    let quota = state
        .services
        .storage_quota_as(&who.principal, &owner)
        .await?;
    Ok(answer(StatusCode::OK, users::storage_quota(&quota)))
}

#[derive(Deserialize)]
struct SetQuota {
    limit_bytes: Option<Value>,
}

/// `PUT /admin/storage-quotas/{account}`: `{limit_bytes}`, a whole number of bytes.
pub async fn set(
    State(state): State<AppState>,
    who: Who,
    Path(account): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    let request: SetQuota = body(&bytes)?;
    let limit = limit_bytes(request.limit_bytes)?;
    let quota = state
        .services
        .set_storage_quota_as(&who.principal, &account, Some(limit))
        .await?;
    Ok(answer(StatusCode::OK, users::storage_quota(&quota)))
}

/// `DELETE /admin/storage-quotas/{account}`: the account has no quota any more.
pub async fn clear(
    State(state): State<AppState>,
    who: Who,
    Path(account): Path<String>,
) -> ApiResult {
    state
        .services
        .set_storage_quota_as(&who.principal, &account, None)
        .await?;
    Ok(no_content())
}

/// `limit_bytes`: required, a whole number of bytes from 0 to 2^63 − 1.
fn limit_bytes(value: Option<Value>) -> ApiResult<u64> {
    let value = super::accounts::required("StorageQuota", "limit_bytes", value)?;
    value
        .as_u64()
        .filter(|&n| i64::try_from(n).is_ok())
        .ok_or_else(|| {
            GitHubError::invalid(
                "StorageQuota",
                "limit_bytes",
                "invalid",
                format!(
                    "`{value}` is not a number of bytes: give a whole number from 0 to {} (e.g. 10737418240 for 10 GiB); DELETE the quota to remove it",
                    i64::MAX
                ),
            )
        })
}
