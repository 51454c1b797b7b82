//! `GET /token`: the token endpoint of the Docker/OCI auth flow. Takes Basic
//! `any-username:token` (or nothing, for an anonymous token) and `scope` parameters, and
//! answers a registry token granting exactly the requested actions the principal may do.
//!
//! `POST /token`: the same endpoint in its OAuth2 form (Distribution's "OAuth2 token
//! authentication"), which containerd and Docker try first: an
//! `application/x-www-form-urlencoded` body with `grant_type=password` (`username`,
//! `password`: a Berth token) or `grant_type=refresh_token` (`refresh_token`), plus
//! `service`, `client_id` and `scope`. `access_type=offline` adds a refresh token, which
//! stands for the credential (resolved again on each use) and is accepted only here.
//! Errors are RFC 6749's: `{"error","error_description"}`.

use std::time::{Duration, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use berth_core::RegistryError;
use berth_core::access::{Action, Principal};
use berth_core::name::RepoName;
use percent_encoding::percent_decode_str;
use serde_json::json;

use super::registry_token::{Claims, Grant, now_secs};
use crate::AppState;
use crate::error::OciError;
use crate::origin::Origin;

/// How long a registry token lives.
const LIFETIME_SECS: i64 = 300;
/// How long a refresh token lives. Each use resolves its credential again, so revoking or
/// expiring the credential ends it sooner.
const REFRESH_LIFETIME_SECS: i64 = 90 * 24 * 3600;

/// A registry token just minted.
struct Minted {
    token: String,
    /// Issued at, seconds since the epoch.
    iat: i64,
    /// The same, as RFC 3339.
    issued_at: String,
    /// The granted scopes, space-separated.
    scope: String,
}

/// Signs a registry token for `principal` granting what it may do of `scopes`.
async fn mint(
    state: &AppState,
    principal: &Principal,
    scopes: &[String],
) -> Result<Minted, RegistryError> {
    let mut access = Vec::new();
    for scope in scopes {
        if let Some(grant) = granted(state, principal, scope).await? {
            access.push(grant);
        }
    }
    let scope = access
        .iter()
        .map(|g| format!("{}:{}:{}", g.kind, g.name, g.actions.join(",")))
        .collect::<Vec<_>>()
        .join(" ");
    let sub = match principal {
        Principal::Anonymous => None,
        Principal::Token(c) => Some(c.id),
    };
    let iat = now_secs();
    let claims = Claims {
        sub,
        access,
        iat,
        exp: iat + LIFETIME_SECS,
    };
    let token = state.auth.key.sign(&claims);
    let issued_at = humantime::format_rfc3339_seconds(
        UNIX_EPOCH + Duration::from_secs(u64::try_from(iat).unwrap_or(0)),
    )
    .to_string();
    Ok(Minted {
        token,
        iat,
        issued_at,
        scope,
    })
}

fn json_answer(body: serde_json::Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Answers the token request.
pub async fn token(
    State(state): State<AppState>,
    origin: Origin,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let auth = &state.auth;
    let caller = match auth.caller(&headers, Some(origin.client.ip())).await {
        Ok(caller) => caller,
        Err(err) => {
            let mut response = OciError(err).into_response();
            auth.add_challenge(&mut response, &origin, None);
            return response;
        }
    };
    if caller.token_scopes.is_some() {
        let mut response = OciError(RegistryError::Unauthorized(
            "a registry token cannot be exchanged for another; authenticate with your Berth token"
                .into(),
        ))
        .into_response();
        auth.add_challenge(&mut response, &origin, None);
        return response;
    }
    let scopes = requested_scopes(uri.query().unwrap_or(""));
    match mint(&state, &caller.principal, &scopes).await {
        Ok(minted) => json_answer(json!({
            "token": minted.token,
            "access_token": minted.token,
            "expires_in": LIFETIME_SECS,
            "issued_at": minted.issued_at,
        })),
        Err(err) => OciError(err).into_response(),
    }
}

/// An RFC 6749 §5.2 error answer.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "error": error, "error_description": description }).to_string(),
    )
        .into_response()
}

/// Answers the OAuth2 form of the token request (`POST /token`).
pub async fn oauth_token(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send the token request as application/x-www-form-urlencoded (RFC 6749), or use GET /token",
        );
    }
    let form = form_pairs(&String::from_utf8_lossy(&body));
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    for required in ["grant_type", "service", "client_id"] {
        if field(required).is_none() {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("the `{required}` parameter is required"),
            );
        }
    }
    let ip = Some(origin.client.ip());
    let (principal, refresh) = match field("grant_type").unwrap_or_default() {
        "password" => {
            let (Some(_username), Some(password)) = (field("username"), field("password")) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "grant_type=password needs `username` and `password` (a Berth token)",
                );
            };
            match state.auth.secret_principal(password, ip).await {
                Ok(principal) => (principal, None),
                Err(err) => return grant_refused(err),
            }
        }
        "refresh_token" => {
            let Some(refresh) = field("refresh_token") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "grant_type=refresh_token needs `refresh_token`",
                );
            };
            match state.auth.refresh_principal(refresh, ip).await {
                // The spec: a refresh grant hands back the same refresh token, not a new one.
                Ok(principal) => (principal, Some(refresh.to_owned())),
                Err(err) => return grant_refused(err),
            }
        }
        other => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!(
                    "grant_type `{other}` is not supported; use `password` or `refresh_token`"
                ),
            );
        }
    };
    let scopes = requested_scopes(&String::from_utf8_lossy(&body));
    let minted = match mint(&state, &principal, &scopes).await {
        Ok(minted) => minted,
        Err(err) => return OciError(err).into_response(),
    };
    let refresh = refresh.or_else(|| {
        let offline = field("access_type") == Some("offline");
        let sub = match &principal {
            Principal::Token(c) => Some(c.id),
            Principal::Anonymous => None,
        };
        (offline && sub.is_some()).then(|| {
            state.auth.key.sign_refresh(&Claims {
                sub,
                access: Vec::new(),
                iat: minted.iat,
                exp: minted.iat + REFRESH_LIFETIME_SECS,
            })
        })
    });
    let mut body = json!({
        "access_token": minted.token,
        "scope": minted.scope,
        "expires_in": LIFETIME_SECS,
        "issued_at": minted.issued_at,
    });
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    json_answer(body)
}

/// A refused grant: bad credentials are `invalid_grant` (RFC 6749 §5.2) with the reason;
/// too many failures keep their 429 and `Retry-After`.
fn grant_refused(err: RegistryError) -> Response {
    match err {
        RegistryError::Unauthorized(reason) => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &reason)
        }
        other => OciError(other).into_response(),
    }
}

/// The pairs of an `application/x-www-form-urlencoded` text, decoded.
fn form_pairs(text: &str) -> Vec<(String, String)> {
    let decode = |raw: &str| {
        percent_decode_str(&raw.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

/// The `scope` parameters: repeated, each possibly holding several space-separated scopes.
fn requested_scopes(form: &str) -> Vec<String> {
    form_pairs(form)
        .into_iter()
        .filter(|(key, _)| key == "scope")
        .flat_map(|(_, value)| {
            value
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// What of `scope` the principal gets; unknown or unparseable scopes grant nothing (as the
/// distribution token spec asks: the client then fails on the registry with a clear error).
async fn granted(
    state: &AppState,
    principal: &Principal,
    scope: &str,
) -> Result<Option<Grant>, RegistryError> {
    let Some((kind, rest)) = scope.split_once(':') else {
        return Ok(None);
    };
    let Some((name, actions)) = rest.rsplit_once(':') else {
        return Ok(None);
    };
    if kind == "registry" && name == "catalog" {
        // The catalog lists only what the principal may read, so anyone signed in may ask.
        let allowed = principal != &Principal::Anonymous;
        return Ok(allowed.then(|| Grant {
            kind: kind.into(),
            name: name.into(),
            actions: vec!["*".into()],
        }));
    }
    if kind != "repository" {
        return Ok(None);
    }
    let Ok(repo) = name.parse::<RepoName>() else {
        return Ok(None);
    };
    let mut wanted = Vec::new();
    for verb in actions.split(',') {
        let actions: &[Action] = match verb {
            "pull" => &[Action::Pull],
            "push" => &[Action::Push],
            "delete" => &[Action::Delete],
            "*" => &[Action::Pull, Action::Push, Action::Delete],
            _ => &[],
        };
        for action in actions {
            if !wanted.contains(action) {
                wanted.push(*action);
            }
        }
    }
    let granted: Vec<String> = state
        .auth
        .access
        .grantable(principal, &repo, &wanted)
        .await?
        .into_iter()
        .map(|action| action.verb().to_owned())
        .collect();
    Ok((!granted.is_empty()).then(|| Grant {
        kind: kind.into(),
        name: name.into(),
        actions: granted,
    }))
}

#[cfg(test)]
mod tests {
    use super::requested_scopes;

    #[test]
    fn scopes_come_from_repeated_and_space_separated_parameters() {
        let query = "service=x&scope=repository%3Aacme%2Fapp%3Apull%2Cpush&scope=repository:a/b:pull+registry:catalog:*";
        assert_eq!(
            requested_scopes(query),
            vec![
                "repository:acme/app:pull,push",
                "repository:a/b:pull",
                "registry:catalog:*"
            ]
        );
    }
}
