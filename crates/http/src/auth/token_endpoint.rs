//! `GET /token`: the token endpoint of the Docker/OCI auth flow. Takes Basic
//! `any-username:token` (or nothing, for an anonymous token) and `scope` parameters, and
//! answers a registry token granting exactly the requested actions the principal may do.

use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use berth_core::RegistryError;
use berth_core::access::Action;
use berth_core::name::RepoName;
use percent_encoding::percent_decode_str;
use serde_json::json;

use super::registry_token::{Claims, Grant, now_secs};
use crate::AppState;
use crate::error::ApiError;

/// How long a registry token lives.
const LIFETIME_SECS: i64 = 300;

/// Answers the token request.
pub async fn token(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let auth = &state.auth;
    let caller = match auth.caller(&headers, Some(client.ip())).await {
        Ok(caller) => caller,
        Err(err) => {
            let mut response = ApiError(err).into_response();
            auth.add_challenge(&mut response, &headers, None);
            return response;
        }
    };
    if caller.token_scopes.is_some() {
        let mut response = ApiError(RegistryError::Unauthorized(
            "a registry token cannot be exchanged for another; authenticate with your Berth token"
                .into(),
        ))
        .into_response();
        auth.add_challenge(&mut response, &headers, None);
        return response;
    }
    let mut access = Vec::new();
    for scope in requested_scopes(uri.query().unwrap_or("")) {
        match granted(&state, &caller.principal, &scope).await {
            Ok(Some(grant)) => access.push(grant),
            Ok(None) => {}
            Err(err) => return ApiError(err).into_response(),
        }
    }
    let sub = match &caller.principal {
        berth_core::access::Principal::Anonymous => None,
        berth_core::access::Principal::Token(c) => Some(c.id),
    };
    let iat = now_secs();
    let claims = Claims {
        sub,
        access,
        iat,
        exp: iat + LIFETIME_SECS,
    };
    let token = auth.key.sign(&claims);
    let issued_at = humantime::format_rfc3339_seconds(
        UNIX_EPOCH + Duration::from_secs(u64::try_from(iat).unwrap_or(0)),
    )
    .to_string();
    (
        [(header::CONTENT_TYPE, "application/json")],
        json!({
            "token": token,
            "access_token": token,
            "expires_in": LIFETIME_SECS,
            "issued_at": issued_at,
        })
        .to_string(),
    )
        .into_response()
}

/// The `scope` parameters: repeated, each possibly holding several space-separated scopes.
fn requested_scopes(query: &str) -> Vec<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(key, _)| *key == "scope")
        .flat_map(|(_, value)| {
            let value = value.replace('+', " ");
            let decoded = percent_decode_str(&value).decode_utf8_lossy().into_owned();
            decoded
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
    principal: &berth_core::access::Principal,
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
        let allowed = principal != &berth_core::access::Principal::Anonymous;
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
