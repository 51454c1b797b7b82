//! Users, organizations, memberships, teams and account package settings.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_core::access::store::NewUser;
use berth_core::access::{AccountKind, OrgRole, Visibility};
use serde::Deserialize;

use berth_core::github::users;

use super::{ApiResult, GitHubError, Who, answer, body, no_content, visibility};
use crate::AppState;

/// `GET /user`.
pub async fn current_user(State(state): State<AppState>, who: Who) -> ApiResult {
    let user = state.auth.access.current_user(&who.principal).await?;
    Ok(answer(
        StatusCode::OK,
        users::private_user(&who.base, &user, &who.principal),
    ))
}

/// `GET /users/{login}`.
pub async fn user(State(state): State<AppState>, who: Who, Path(login): Path<String>) -> ApiResult {
    let user = state.auth.access.account(&login, None).await?;
    Ok(answer(
        StatusCode::OK,
        users::user(&who.base, &user, &who.principal),
    ))
}

/// `GET /orgs/{org}`.
pub async fn org(State(state): State<AppState>, who: Who, Path(login): Path<String>) -> ApiResult {
    let org = state
        .auth
        .access
        .account(&login, Some(AccountKind::Organization))
        .await?;
    Ok(answer(StatusCode::OK, users::organization(&who.base, &org)))
}

#[derive(Deserialize)]
struct CreateUser {
    login: Option<String>,
    email: Option<String>,
    name: Option<String>,
    #[serde(default)]
    suspended: bool,
}

/// `POST /admin/users` (GitHub Enterprise Server): `{login, email}`.
pub async fn create_user(State(state): State<AppState>, who: Who, bytes: Bytes) -> ApiResult {
    let request: CreateUser = body(&bytes)?;
    let login = required("User", "login", request.login)?;
    if request.suspended {
        return Err(GitHubError::invalid(
            "User",
            "suspended",
            "invalid",
            "Berth does not suspend users; revoke their tokens instead".into(),
        ));
    }
    let user = state
        .auth
        .access
        .create_user_as(
            &who.principal,
            NewUser {
                login,
                name: request.name,
                email: request.email,
                password_hash: None,
                site_admin: false,
            },
        )
        .await?;
    Ok(answer(
        StatusCode::CREATED,
        users::account(&who.base, &user, &who.principal),
    ))
}

#[derive(Deserialize)]
struct CreateOrg {
    login: Option<String>,
    admin: Option<String>,
    profile_name: Option<String>,
}

/// `POST /admin/organizations` (GitHub Enterprise Server): `{login, admin, profile_name}`.
pub async fn create_org(State(state): State<AppState>, who: Who, bytes: Bytes) -> ApiResult {
    let request: CreateOrg = body(&bytes)?;
    let login = required("Organization", "login", request.login)?;
    let admin = required("Organization", "admin", request.admin)?;
    let org = state
        .auth
        .access
        .create_org_as(
            &who.principal,
            &login,
            &admin,
            request.profile_name.as_deref(),
        )
        .await?;
    Ok(answer(
        StatusCode::CREATED,
        users::organization(&who.base, &org),
    ))
}

/// `GET /orgs/{org}/memberships/{username}`.
pub async fn membership(
    State(state): State<AppState>,
    who: Who,
    Path((org, username)): Path<(String, String)>,
) -> ApiResult {
    let (org, user, role) = state
        .auth
        .access
        .membership_as(&who.principal, &org, &username)
        .await?;
    Ok(answer(
        StatusCode::OK,
        users::membership(&who.base, &org, &user, role, &who.principal),
    ))
}

#[derive(Deserialize)]
struct SetMembership {
    role: Option<String>,
}

/// `PUT /orgs/{org}/memberships/{username}`: `{role: admin|member}` (default member). Berth
/// has no invitations: the membership is active at once.
pub async fn set_membership(
    State(state): State<AppState>,
    who: Who,
    Path((org, username)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult {
    let request: SetMembership = body(&bytes)?;
    let role = match request.role.as_deref() {
        None | Some("member") => OrgRole::Member,
        Some("admin") => OrgRole::Owner,
        Some(other) => {
            return Err(GitHubError::invalid(
                "Membership",
                "role",
                "invalid",
                format!("`{other}` is not a membership role; use admin or member"),
            ));
        }
    };
    let (org, user) = state
        .auth
        .access
        .set_membership_as(&who.principal, &org, &username, Some(role))
        .await?;
    Ok(answer(
        StatusCode::OK,
        users::membership(&who.base, &org, &user, role, &who.principal),
    ))
}

/// `DELETE /orgs/{org}/memberships/{username}`.
pub async fn remove_membership(
    State(state): State<AppState>,
    who: Who,
    Path((org, username)): Path<(String, String)>,
) -> ApiResult {
    state
        .auth
        .access
        .set_membership_as(&who.principal, &org, &username, None)
        .await?;
    Ok(no_content())
}

#[derive(Deserialize)]
struct SetSso {
    required: Option<bool>,
}

/// `PUT /orgs/{org}/sso`: `{required: bool}` — whether classic tokens must be authorized
/// for the organization (SSO) to reach its packages. Berth's; GitHub sets this with SAML.
pub async fn set_sso(
    State(state): State<AppState>,
    who: Who,
    Path(org): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    let request: SetSso = body(&bytes)?;
    let required = required("Organization", "required", request.required)?;
    let org = state
        .auth
        .access
        .set_requires_sso_as(&who.principal, &org, required)
        .await?;
    Ok(answer(StatusCode::OK, users::organization(&who.base, &org)))
}

#[derive(Deserialize)]
struct PackageSettings {
    default_visibility: Option<String>,
    member_visibilities: Option<Vec<String>>,
}

/// `PATCH /orgs/{org}/packages/settings` and `PATCH /users/{user}/packages/settings`:
/// `{default_visibility, member_visibilities}` — the visibility of new packages and which
/// visibilities members may give packages (`[]`: members may not create packages).
pub async fn package_settings(
    State(state): State<AppState>,
    who: Who,
    Path(owner): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    let request: PackageSettings = body(&bytes)?;
    let default_visibility = request
        .default_visibility
        .as_deref()
        .map(|v| visibility("PackageSettings", "default_visibility", v))
        .transpose()?;
    let member_visibilities = request
        .member_visibilities
        .map(|list| {
            list.iter()
                .map(|v| visibility("PackageSettings", "member_visibilities", v))
                .collect::<ApiResult<Vec<Visibility>>>()
        })
        .transpose()?;
    let account = state
        .auth
        .access
        .set_package_policy_as(
            &who.principal,
            &owner,
            default_visibility,
            member_visibilities,
        )
        .await?;
    Ok(answer(StatusCode::OK, users::package_settings(&account)))
}

#[derive(Deserialize)]
struct CreateTeam {
    name: Option<String>,
    #[serde(default)]
    maintainers: Vec<String>,
    #[serde(default)]
    repo_names: Vec<String>,
    permission: Option<String>,
}

/// `POST /orgs/{org}/teams`: `{name, maintainers, repo_names, permission}`.
pub async fn create_team(
    State(state): State<AppState>,
    who: Who,
    Path(org): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    let request: CreateTeam = body(&bytes)?;
    let name = required("Team", "name", request.name)?;
    let permission = super::role(
        "Team",
        "permission",
        request.permission.as_deref().unwrap_or("pull"),
    )?;
    let access = &state.auth.access;
    let team = access
        .create_team_as(&who.principal, &org, &name, &request.maintainers)
        .await?;
    for full_name in &request.repo_names {
        let (owner, repo) = full_name.split_once('/').unwrap_or((&org, full_name));
        access
            .set_team_repo_as(
                &who.principal,
                &org,
                &team.slug,
                owner,
                repo,
                Some(permission),
            )
            .await?;
    }
    let created_at = berth_core::ports::now_millis();
    let org = access
        .account(&org, Some(AccountKind::Organization))
        .await?;
    let members: std::collections::HashSet<String> = request
        .maintainers
        .iter()
        .map(|login| login.to_ascii_lowercase())
        .collect();
    Ok(answer(
        StatusCode::CREATED,
        users::team_full(
            &who.base,
            &team,
            &org,
            members.len(),
            request.repo_names.len(),
            created_at,
        ),
    ))
}

#[derive(Deserialize)]
struct TeamMembership {
    role: Option<String>,
}

/// `PUT /orgs/{org}/teams/{team}/memberships/{username}`: `{role: member|maintainer}`.
/// The user must already be a member of the organization.
pub async fn add_team_member(
    State(state): State<AppState>,
    who: Who,
    Path((org, team, username)): Path<(String, String, String)>,
    bytes: Bytes,
) -> ApiResult {
    let request: TeamMembership = body(&bytes)?;
    let role = request.role.unwrap_or_else(|| "member".into());
    if role != "member" && role != "maintainer" {
        return Err(GitHubError::invalid(
            "TeamMembership",
            "role",
            "invalid",
            format!("`{role}` is not a team role; use member or maintainer"),
        ));
    }
    let (user, _) = state
        .auth
        .access
        .set_team_member_as(&who.principal, &org, &team, &username, true)
        .await?;
    Ok(answer(
        StatusCode::OK,
        serde_json::json!({
            "url": format!("{}/api/v3/orgs/{org}/teams/{team}/memberships/{}", who.base, user.login),
            "role": role,
            "state": "active",
        }),
    ))
}

/// `DELETE /orgs/{org}/teams/{team}/memberships/{username}`.
pub async fn remove_team_member(
    State(state): State<AppState>,
    who: Who,
    Path((org, team, username)): Path<(String, String, String)>,
) -> ApiResult {
    state
        .auth
        .access
        .set_team_member_as(&who.principal, &org, &team, &username, false)
        .await?;
    Ok(no_content())
}

/// A required field, or GitHub's `missing_field` 422.
pub(super) fn required<T>(resource: &str, field: &str, value: Option<T>) -> ApiResult<T> {
    value.ok_or_else(|| {
        GitHubError::invalid(
            resource,
            field,
            "missing_field",
            format!("`{field}` is required"),
        )
    })
}
