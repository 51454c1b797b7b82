//! Source repositories, their collaborators and teams, and job tokens.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_core::access::store::SourceRepo;
use berth_core::access::{Principal, Role, Visibility};
use serde::Deserialize;
use serde_json::json;

use super::accounts::required;
use berth_core::github::{self, repos};

use super::{
    ApiResult, GitHubError, PackagesPermission, Who, answer, body, no_content, role, visibility,
};
use crate::AppState;

#[derive(Deserialize)]
struct CreateRepo {
    name: Option<String>,
    private: Option<bool>,
    visibility: Option<String>,
}

/// `POST /user/repos`: `{name, private, visibility}`.
pub async fn create_user_repo(State(state): State<AppState>, who: Who, bytes: Bytes) -> ApiResult {
    create_repo(state, who, None, &bytes).await
}

/// `POST /orgs/{org}/repos`: `{name, private, visibility}`.
pub async fn create_org_repo(
    State(state): State<AppState>,
    who: Who,
    Path(org): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    create_repo(state, who, Some(&org), &bytes).await
}

async fn create_repo(state: AppState, who: Who, org: Option<&str>, bytes: &[u8]) -> ApiResult {
    let request: CreateRepo = body(bytes)?;
    let name = required("Repository", "name", request.name)?;
    // GitHub: `visibility` wins over `private`; new repositories are public by default.
    let visibility = match (request.visibility.as_deref(), request.private) {
        (Some(text), _) => visibility("Repository", "visibility", text)?,
        (None, Some(true)) => Visibility::Private,
        (None, _) => Visibility::Public,
    };
    let repo = state
        .auth
        .access
        .create_repo_as(&who.principal, org, &name, visibility)
        .await?;
    render(&state, &who, &repo, StatusCode::CREATED).await
}

/// `GET /repos/{owner}/{repo}`.
pub async fn repo(
    State(state): State<AppState>,
    who: Who,
    Path((owner, name)): Path<(String, String)>,
) -> ApiResult {
    let repo = state
        .auth
        .access
        .repo_as(&who.principal, &owner, &name)
        .await?;
    render(&state, &who, &repo, StatusCode::OK).await
}

async fn render(state: &AppState, who: &Who, repo: &SourceRepo, status: StatusCode) -> ApiResult {
    let owner = state.auth.access.account(&repo.owner_login, None).await?;
    Ok(answer(status, repos::repository(&who.base, repo, &owner)))
}

#[derive(Deserialize)]
struct Permission {
    permission: Option<String>,
}

/// `PUT /repos/{owner}/{repo}/collaborators/{username}`: `{permission}` (default `push`).
/// Berth has no invitations, so this answers 204 as GitHub does for an existing
/// collaborator.
pub async fn set_collaborator(
    State(state): State<AppState>,
    who: Who,
    Path((owner, name, username)): Path<(String, String, String)>,
    bytes: Bytes,
) -> ApiResult {
    let request: Permission = body(&bytes)?;
    let role = role(
        "Collaborator",
        "permission",
        request.permission.as_deref().unwrap_or("push"),
    )?;
    state
        .auth
        .access
        .set_collaborator_as(&who.principal, &owner, &name, &username, Some(role))
        .await?;
    Ok(no_content())
}

/// `DELETE /repos/{owner}/{repo}/collaborators/{username}`.
pub async fn remove_collaborator(
    State(state): State<AppState>,
    who: Who,
    Path((owner, name, username)): Path<(String, String, String)>,
) -> ApiResult {
    state
        .auth
        .access
        .set_collaborator_as(&who.principal, &owner, &name, &username, None)
        .await?;
    Ok(no_content())
}

/// `PUT /orgs/{org}/teams/{team}/repos/{owner}/{repo}`: `{permission}` (default `push`).
pub async fn set_team_repo(
    State(state): State<AppState>,
    who: Who,
    Path((org, team, owner, name)): Path<(String, String, String, String)>,
    bytes: Bytes,
) -> ApiResult {
    let request: Permission = body(&bytes)?;
    let role = role(
        "Team",
        "permission",
        request.permission.as_deref().unwrap_or("push"),
    )?;
    team_repo(
        &state,
        &who.principal,
        (&org, &team, &owner, &name),
        Some(role),
    )
    .await
}

/// `DELETE /orgs/{org}/teams/{team}/repos/{owner}/{repo}`.
pub async fn remove_team_repo(
    State(state): State<AppState>,
    who: Who,
    Path((org, team, owner, name)): Path<(String, String, String, String)>,
) -> ApiResult {
    team_repo(&state, &who.principal, (&org, &team, &owner, &name), None).await
}

async fn team_repo(
    state: &AppState,
    principal: &Principal,
    (org, team, owner, name): (&str, &str, &str, &str),
    role: Option<Role>,
) -> ApiResult {
    state
        .auth
        .access
        .set_team_repo_as(principal, org, team, owner, name, role)
        .await?;
    Ok(no_content())
}

#[derive(Deserialize)]
struct CreateJobToken {
    #[serde(default)]
    permissions: PackagesPermission,
    expires_in: Option<i64>,
}

/// `POST /repos/{owner}/{repo}/actions/job-tokens`: `{permissions: {packages}, expires_in}`
/// mints a job token for the repository (what a CI runner hands its job as
/// `GITHUB_TOKEN`). Berth's; on GitHub, Actions mints these itself.
pub async fn create_job_token(
    State(state): State<AppState>,
    who: Who,
    Path((owner, name)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult {
    let request: CreateJobToken = body(&bytes)?;
    let permission = request
        .permissions
        .role("JobToken", Some(Role::Read))?
        .unwrap_or(Role::Read);
    if request.expires_in.is_some_and(|s| s <= 0) {
        return Err(GitHubError::invalid(
            "JobToken",
            "expires_in",
            "invalid",
            "expires_in is a number of seconds greater than 0".into(),
        ));
    }
    let (secret, expires_at, repo) = state
        .auth
        .access
        .create_job_token_as(
            &who.principal,
            &owner,
            &name,
            permission,
            request.expires_in.map(|s| s.saturating_mul(1000)),
        )
        .await?;
    Ok(answer(
        StatusCode::CREATED,
        json!({
            "token": secret.expose(),
            "expires_at": github::time(expires_at),
            "repository": format!("{}/{}", repo.owner_login, repo.name),
            "permissions": { "packages": permission.as_str() },
        }),
    ))
}
