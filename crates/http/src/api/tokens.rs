//! Tokens, apps and app installation tokens. GitHub creates personal access tokens and apps
//! on web pages; Berth does it here, in the same style. The installation token exchange is
//! GitHub's own endpoint, with the app's secret in place of GitHub's signed JWT.

use std::time::UNIX_EPOCH;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use berth_core::access::{NewToken, Role, Scopes, TokenRequest};
use berth_core::github::{self, credentials};
use berth_core::ports::Millis;
use serde::Deserialize;
use serde_json::json;

use super::accounts::required;
use super::{ApiResult, GitHubError, PackagesPermission, Who, answer, body, no_content};
use crate::AppState;
use crate::origin::Origin;

#[derive(Deserialize)]
struct CreateToken {
    #[serde(rename = "type")]
    kind: Option<String>,
    note: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    expires_at: Option<String>,
    resource_owner: Option<String>,
    #[serde(default)]
    repositories: Vec<String>,
    #[serde(default)]
    packages: Vec<String>,
    #[serde(default)]
    permissions: PackagesPermission,
}

/// `POST /user/tokens`: creates a token for the calling user and shows its secret once.
/// Classic: `{note, scopes, expires_at}`; fine-grained: `{type: "fine_grained", note,
/// resource_owner, repositories, packages, permissions: {packages}, expires_at}`.
pub async fn create(State(state): State<AppState>, who: Who, bytes: Bytes) -> ApiResult {
    let request: CreateToken = body(&bytes)?;
    let note = required("Token", "note", request.note)?;
    let expires_at = match request.expires_at.as_deref() {
        None => None,
        Some(text) => Some(parse_time(text).ok_or_else(|| {
            GitHubError::invalid(
                "Token",
                "expires_at",
                "invalid",
                format!("`{text}` is not an ISO 8601 time such as 2030-01-31T00:00:00Z"),
            )
        })?),
    };
    let token_request = match request.kind.as_deref().unwrap_or("classic") {
        "classic" => {
            let scopes: Scopes =
                request.scopes.join(",").parse().map_err(|message| {
                    GitHubError::invalid("Token", "scopes", "invalid", message)
                })?;
            TokenRequest::Classic {
                note,
                scopes,
                expires_at,
            }
        }
        "fine_grained" => TokenRequest::FineGrained {
            note,
            resource_owner: required("Token", "resource_owner", request.resource_owner)?,
            repositories: request.repositories,
            packages: request.packages,
            permission: request.permissions.role("Token", None)?.ok_or_else(|| {
                GitHubError::invalid(
                    "Token",
                    "permissions",
                    "missing_field",
                    "a fine-grained token needs permissions.packages: read or write".into(),
                )
            })?,
            expires_at,
        },
        other => {
            return Err(GitHubError::invalid(
                "Token",
                "type",
                "invalid",
                format!("`{other}` is not a token type; use classic or fine_grained"),
            ));
        }
    };
    let NewToken { info, secret } = state
        .auth
        .access
        .create_token_as(&who.principal, token_request)
        .await?;
    let mut value = credentials::token(&who.base, &info);
    value["token"] = json!(secret.expose());
    Ok(answer(StatusCode::CREATED, value))
}

/// `GET /user/tokens`: the calling user's tokens, newest first, never their secrets.
pub async fn list(State(state): State<AppState>, who: Who) -> ApiResult {
    let tokens = state.auth.access.list_tokens_as(&who.principal).await?;
    let list: Vec<_> = tokens
        .iter()
        .map(|t| credentials::token(&who.base, t))
        .collect();
    Ok(answer(StatusCode::OK, json!(list)))
}

/// `DELETE /user/tokens/{id}`: revokes one of the calling user's tokens.
pub async fn revoke(State(state): State<AppState>, who: Who, Path(id): Path<i64>) -> ApiResult {
    state
        .auth
        .access
        .revoke_token_as(&who.principal, berth_core::ids::CredentialId(id))
        .await?;
    Ok(no_content())
}

/// `PUT /user/tokens/{id}/sso/{org}`: authorizes a classic token for an organization that
/// requires SSO.
pub async fn authorize_sso(
    State(state): State<AppState>,
    who: Who,
    Path((id, org)): Path<(i64, String)>,
) -> ApiResult {
    let info = state
        .auth
        .access
        .authorize_token_sso_as(&who.principal, berth_core::ids::CredentialId(id), &org)
        .await?;
    Ok(answer(StatusCode::OK, credentials::token(&who.base, &info)))
}

#[derive(Deserialize)]
struct CreateApp {
    slug: Option<String>,
    owner: Option<String>,
    #[serde(flatten)]
    hook: super::hooks::AppHookBody,
}

/// `POST /apps`: `{slug, owner}` registers an app owned by the caller or an organization they
/// own, and shows its secret once; with GitHub's `hook_attributes: {url, active}`,
/// `webhook_secret` and `default_events`, the app gets its webhook (see `api/hooks.rs`).
pub async fn create_app(State(state): State<AppState>, who: Who, bytes: Bytes) -> ApiResult {
    let request: CreateApp = body(&bytes)?;
    let slug = required("Integration", "slug", request.slug)?;
    let hook = match request.hook.request()? {
        Some(hook) => Some(state.services.hooks.app_hook_settings(hook).await?),
        None => None,
    };
    let (id, secret) = state
        .auth
        .access
        .create_app_as(&who.principal, request.owner.as_deref(), &slug)
        .await?;
    let mut app = json!({ "id": id, "slug": slug, "client_secret": secret.expose() });
    if let Some(settings) = hook {
        let hooks = &state.services.hooks;
        let hook = hooks
            .create_app_hook(&who.principal, id, settings, &who.base)
            .await?;
        app["hook_attributes"] = json!({ "url": hook.config.url, "active": hook.active });
        app["events"] = json!(hook.events);
    }
    Ok(answer(StatusCode::CREATED, app))
}

#[derive(Deserialize)]
struct Install {
    account: Option<String>,
    repositories: Option<Vec<String>>,
    #[serde(default)]
    permissions: PackagesPermission,
}

/// `POST /apps/{slug}/installations`: `{account, repositories, permissions: {packages}}`
/// installs an app on the caller's account or an organization they own (`repositories`
/// absent: all of them).
pub async fn install_app(
    State(state): State<AppState>,
    who: Who,
    Path(slug): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    let request: Install = body(&bytes)?;
    let account = required("Installation", "account", request.account)?;
    let permission = request
        .permissions
        .role("Installation", Some(Role::Read))?
        .unwrap_or(Role::Read);
    let access = &state.auth.access;
    let installation = access
        .install_app_as(
            &who.principal,
            &slug,
            &account,
            request.repositories.as_deref(),
            permission,
        )
        .await?;
    let account = access.account(&account, None).await?;
    Ok(answer(
        StatusCode::CREATED,
        credentials::installation(&who.base, &installation, &account, &who.principal),
    ))
}

#[derive(Deserialize)]
struct AccessTokenRequest {
    repositories: Option<Vec<String>>,
    #[serde(default)]
    permissions: PackagesPermission,
}

/// `POST /app/installations/{id}/access_tokens` with `Authorization: Bearer <app secret>`:
/// an installation token (`berths_…`) that expires after an hour. Clients log in with it as
/// user `x-access-token`.
pub async fn installation_token(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> ApiResult {
    let limiter = &state.auth.limiter;
    let client = origin.client.ip();
    let secret = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| {
            scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")
        })
        .map(|(_, secret)| secret.trim().to_owned())
        .ok_or_else(|| {
            GitHubError::new(
                StatusCode::UNAUTHORIZED,
                "send the app's secret as `Authorization: Bearer <secret>`",
            )
        })?;
    let request: AccessTokenRequest = body(&bytes)?;
    let permission = request.permissions.role("Installation", None)?;
    let issued = state
        .auth
        .access
        .installation_token(
            &secret,
            berth_core::ids::InstallationId(id),
            request.repositories.as_deref(),
            permission,
        )
        .await;
    let issued = match issued {
        Ok(issued) => issued,
        Err(err) => {
            // Only failures are limited: a valid secret always passes.
            if matches!(err, berth_core::access::ManageError::Unauthenticated(_)) {
                if let Some(wait) = limiter.blocked(client) {
                    return Err(
                        berth_core::RegistryError::TooManyRequests(wait.as_secs().max(1)).into(),
                    );
                }
                limiter.failed(client);
            }
            return Err(err.into());
        }
    };
    let installation = &issued.installation;
    Ok(answer(
        StatusCode::CREATED,
        json!({
            "token": issued.secret.expose(),
            "expires_at": github::time(issued.expires_at),
            "permissions": { "packages": installation.permission.as_str() },
            "repository_selection": credentials::selection(installation),
            "repository_ids": installation.repositories,
        }),
    ))
}

/// Parses a time a client sends (`expires_at`): RFC 3339 / ISO 8601 as GitHub writes them
/// ([`github::time`]), or a date alone (its midnight, UTC), into milliseconds since the epoch.
fn parse_time(text: &str) -> Option<Millis> {
    let at = humantime::parse_rfc3339_weak(text)
        .or_else(|_| humantime::parse_rfc3339_weak(&format!("{text}T00:00:00Z")))
        .ok()?;
    Some(at.duration_since(UNIX_EPOCH).ok()?.as_millis() as Millis)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn times_round_trip_through_iso_8601() {
        let millis = 1_795_000_000_000;
        let text = github::time(millis);
        assert!(text.ends_with('Z'), "{text}");
        assert_eq!(parse_time(&text), Some(millis));
        assert_eq!(parse_time("2030-01-02"), parse_time("2030-01-02T00:00:00Z"));
        assert_eq!(parse_time("next week"), None);
    }

    proptest! {
        /// GitHub's time format is the one this API wrote with humantime before it had one
        /// home in core: same text for any time up to the year 9999.
        #[test]
        fn the_time_format_is_rfc_3339_in_whole_seconds(millis in 0i64..253_402_300_800_000) {
            let at = UNIX_EPOCH + Duration::from_millis(millis as u64);
            prop_assert_eq!(
                github::time(millis),
                humantime::format_rfc3339_seconds(at).to_string()
            );
        }
    }
}
