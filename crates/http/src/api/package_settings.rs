//! Package settings (visibility, roles, the linked repository, job access): what GitHub keeps
//! on a package's settings page, as API endpoints in GitHub's package paths:
//! `/{orgs|users}/{owner}/packages/container/{package}` with the package name relative to the
//! owner, nested names `%2F`-encoded (`api%2Fworker` is `acme/api/worker`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use berth_core::access::{GranteeName, Role};
use berth_core::name::RepoName;
use serde::Deserialize;

use super::accounts::required;
use super::packages::package;
use super::{ApiResult, Who, body, no_content, role, visibility};
use crate::AppState;

#[derive(Deserialize)]
struct Update {
    visibility: Option<String>,
}

/// `PATCH …/packages/container/{package}`: `{visibility}`. A public package cannot become
/// private or internal again.
pub async fn update(
    State(state): State<AppState>,
    who: Who,
    Path((kind, owner, name)): Path<(String, String, String)>,
    bytes: Bytes,
) -> ApiResult {
    let request: Update = body(&bytes)?;
    let name = package(&state, &kind, &owner, &name).await?;
    let text = required("Package", "visibility", request.visibility)?;
    let visibility = visibility("Package", "visibility", &text)?;
    state
        .auth
        .access
        .set_package_visibility_as(&who.principal, &name, visibility)
        .await?;
    Ok(no_content())
}

#[derive(Deserialize)]
struct SetRole {
    role: Option<String>,
}

/// The required `role` of a request body.
fn requested_role(bytes: &[u8]) -> ApiResult<Role> {
    let request: SetRole = body(bytes)?;
    role(
        "Package",
        "role",
        &required("Package", "role", request.role)?,
    )
}

/// `PUT …/collaborators/{username}`: `{role: read|write|admin}`.
pub async fn set_user_role(
    State(state): State<AppState>,
    who: Who,
    Path((kind, owner, name, username)): Path<(String, String, String, String)>,
    bytes: Bytes,
) -> ApiResult {
    let role = requested_role(&bytes)?;
    let name = package(&state, &kind, &owner, &name).await?;
    set_role(
        &state,
        &who,
        &name,
        GranteeName::User(&username),
        Some(role),
    )
    .await
}

/// `DELETE …/collaborators/{username}`.
pub async fn remove_user_role(
    State(state): State<AppState>,
    who: Who,
    Path((kind, owner, name, username)): Path<(String, String, String, String)>,
) -> ApiResult {
    let name = package(&state, &kind, &owner, &name).await?;
    set_role(&state, &who, &name, GranteeName::User(&username), None).await
}

/// `PUT …/teams/{team}`: `{role: read|write|admin}` (organization packages).
pub async fn set_team_role(
    State(state): State<AppState>,
    who: Who,
    Path((kind, owner, name, team)): Path<(String, String, String, String)>,
    bytes: Bytes,
) -> ApiResult {
    let role = requested_role(&bytes)?;
    let name = package(&state, &kind, &owner, &name).await?;
    set_role(&state, &who, &name, GranteeName::Team(&team), Some(role)).await
}

/// `DELETE …/teams/{team}`.
pub async fn remove_team_role(
    State(state): State<AppState>,
    who: Who,
    Path((kind, owner, name, team)): Path<(String, String, String, String)>,
) -> ApiResult {
    let name = package(&state, &kind, &owner, &name).await?;
    set_role(&state, &who, &name, GranteeName::Team(&team), None).await
}

async fn set_role(
    state: &AppState,
    who: &Who,
    name: &RepoName,
    grantee: GranteeName<'_>,
    role: Option<Role>,
) -> ApiResult {
    state
        .auth
        .access
        .set_package_role_as(&who.principal, name, grantee, role)
        .await?;
    Ok(no_content())
}

#[derive(Deserialize)]
struct Link {
    repository: Option<String>,
    inherit_access: Option<bool>,
}

/// `PUT …/repository`: `{repository, inherit_access}` links the package to a repository of
/// its owner (`repository` is its name, or `owner/name`); `inherit_access` (default true)
/// makes the repository's access the package's. A package that does not exist yet is created
/// linked, so its first publish inherits.
pub async fn link(
    State(state): State<AppState>,
    who: Who,
    Path((kind, owner, name)): Path<(String, String, String)>,
    bytes: Bytes,
) -> ApiResult {
    let request: Link = body(&bytes)?;
    let repository = required("Package", "repository", request.repository)?;
    let repo = repository
        .split_once('/')
        .map_or(repository.as_str(), |(_, r)| r);
    let name = package(&state, &kind, &owner, &name).await?;
    state
        .auth
        .access
        .link_package_as(&who.principal, &name, Some(repo), request.inherit_access)
        .await?;
    Ok(no_content())
}

/// `DELETE …/repository`: unlinks the package (its own roles apply again).
pub async fn unlink(
    State(state): State<AppState>,
    who: Who,
    Path((kind, owner, name)): Path<(String, String, String)>,
) -> ApiResult {
    let name = package(&state, &kind, &owner, &name).await?;
    state
        .auth
        .access
        .link_package_as(&who.principal, &name, None, None)
        .await?;
    Ok(no_content())
}

/// `PUT …/actions-access/{repo}`: `{role: read|write}` lets job tokens of repository `repo`
/// (of the package's owner) use the package.
pub async fn set_job_access(
    State(state): State<AppState>,
    who: Who,
    Path((kind, owner, name, repo)): Path<(String, String, String, String)>,
    bytes: Bytes,
) -> ApiResult {
    let role = requested_role(&bytes)?;
    let name = package(&state, &kind, &owner, &name).await?;
    state
        .auth
        .access
        .set_package_job_access_as(&who.principal, &name, &repo, Some(role))
        .await?;
    Ok(no_content())
}

/// `DELETE …/actions-access/{repo}`.
pub async fn remove_job_access(
    State(state): State<AppState>,
    who: Who,
    Path((kind, owner, name, repo)): Path<(String, String, String, String)>,
) -> ApiResult {
    let name = package(&state, &kind, &owner, &name).await?;
    state
        .auth
        .access
        .set_package_job_access_as(&who.principal, &name, &repo, None)
        .await?;
    Ok(no_content())
}
