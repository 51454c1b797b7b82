//! Authentication at the HTTP edge: the `Authorization` header becomes a [`Caller`], refusals
//! carry the `WWW-Authenticate` challenge clients need, and `GET /token` mints short-lived
//! registry tokens (the `docker login` flow).
//!
//! Calls [`berth_core::access::Access`] for everything that needs the store; parses headers
//! and signs tokens itself.

mod limiter;
mod registry_token;
mod token_endpoint;

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use berth_core::RegistryError;
use berth_core::access::{Access, Action, Presented, Principal, token};
use berth_core::name::RepoName;

use crate::origin::Origin;

pub use limiter::FailureLimiter;
pub use registry_token::{Grant as ScopeGrant, SigningKey};
pub use token_endpoint::{oauth_token, token};

/// Authentication settings and services, shared by every request.
#[derive(Clone)]
pub struct Auth {
    /// The access service.
    pub access: Access,
    /// Signs and checks registry tokens.
    pub key: Arc<SigningKey>,
    /// Failed authentications per client address.
    pub limiter: Arc<FailureLimiter>,
}

/// Who is calling, and what a registry token (if one was used) limits them to.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The principal.
    pub principal: Principal,
    /// The scopes a registry token grants; `None` when a secret was presented directly.
    pub token_scopes: Option<Vec<ScopeGrant>>,
}

impl Caller {
    /// Whether the caller authenticated at all.
    pub fn is_anonymous(&self) -> bool {
        self.principal == Principal::Anonymous
    }

    /// Whether a registry token used for this request covers `verb` on `resource`
    /// (always true without a registry token).
    pub fn token_covers(&self, kind: &str, resource: &str, verb: &str) -> bool {
        self.token_scopes.as_ref().is_none_or(|scopes| {
            scopes.iter().any(|s| {
                s.kind == kind
                    && s.name == resource
                    && s.actions.iter().any(|a| a == verb || a == "*")
            })
        })
    }
}

impl Auth {
    /// Resolves the caller of a request from its headers. Failures are counted per client
    /// address; past the limit, a failing attempt from it answers 429 until the window ends.
    /// A valid credential always passes: only failures are limited.
    pub async fn caller(
        &self,
        headers: &HeaderMap,
        client: Option<IpAddr>,
    ) -> Result<Caller, RegistryError> {
        let caller = match headers.get(header::AUTHORIZATION) {
            None => Ok(Caller {
                principal: Principal::Anonymous,
                token_scopes: None,
            }),
            Some(presented) => self.counted(client, self.resolve(presented)).await,
        };
        if let Ok(caller) = &caller {
            crate::observe::note_principal(&caller.principal);
        }
        caller
    }

    /// The principal behind a secret sent in a request body (`POST /token`'s password grant),
    /// counted against the client's failures as a header would be.
    pub async fn secret_principal(
        &self,
        secret: &str,
        client: Option<IpAddr>,
    ) -> Result<Principal, RegistryError> {
        let presented = Presented::Secret(secret.to_owned());
        self.counted(client, self.access.principal(&presented))
            .await
    }

    /// The principal a refresh token from `POST /token` names (its credential, resolved
    /// again: a revoked or expired credential's refresh token stops working at once).
    pub async fn refresh_principal(
        &self,
        token: &str,
        client: Option<IpAddr>,
    ) -> Result<Principal, RegistryError> {
        self.counted(client, async {
            let claims = self.key.verify_refresh(token)?;
            let Some(id) = claims.sub else {
                return Err(RegistryError::Unauthorized(
                    "that refresh token names no credential; log in again".into(),
                ));
            };
            self.access
                .principal(&Presented::RegistryToken(Some(id)))
                .await
        })
        .await
    }

    /// Runs an authentication attempt and counts its failure; a failure from a client past
    /// its limit answers 429. A success always passes: only failures are limited.
    async fn counted<T>(
        &self,
        client: Option<IpAddr>,
        attempt: impl Future<Output = Result<T, RegistryError>>,
    ) -> Result<T, RegistryError> {
        let result = attempt.await;
        if let (Err(RegistryError::Unauthorized(_)), Some(ip)) = (&result, client) {
            if let Some(wait) = self.limiter.blocked(ip) {
                return Err(RegistryError::TooManyRequests(wait.as_secs().max(1)));
            }
            self.limiter.failed(ip);
        }
        result
    }

    async fn resolve(&self, value: &HeaderValue) -> Result<Caller, RegistryError> {
        let text = value.to_str().map_err(|_| malformed())?;
        let (scheme, rest) = text.split_once(' ').ok_or_else(malformed)?;
        let rest = rest.trim();
        let mut token_scopes = None;
        let presented = if scheme.eq_ignore_ascii_case("basic") {
            let decoded = STANDARD.decode(rest).map_err(|_| malformed())?;
            let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
            let (_user, secret) = decoded.split_once(':').ok_or_else(malformed)?;
            Presented::Secret(secret.to_owned())
        } else if scheme.eq_ignore_ascii_case("token") {
            // GitHub API clients' form: `Authorization: token <token>`.
            Presented::Secret(rest.to_owned())
        } else if scheme.eq_ignore_ascii_case("bearer") {
            if let Some(claims) = self.key.verify(rest)? {
                token_scopes = Some(claims.access);
                Presented::RegistryToken(claims.sub)
            } else if token::recognize(rest).is_some() {
                Presented::Secret(rest.to_owned())
            } else {
                // GHCR's documented form: `Bearer $(echo -n $TOKEN | base64)`.
                let decoded = STANDARD
                    .decode(rest)
                    .ok()
                    .and_then(|d| String::from_utf8(d).ok())
                    .map(|d| d.trim().to_owned())
                    .filter(|d| token::recognize(d).is_some())
                    .ok_or_else(|| {
                        RegistryError::Unauthorized(
                            "the bearer token is neither a Berth token nor a registry token from /token; create a personal access token".into(),
                        )
                    })?;
                Presented::Secret(decoded)
            }
        } else {
            return Err(malformed());
        };
        let principal = self.access.principal(&presented).await?;
        Ok(Caller {
            principal,
            token_scopes,
        })
    }

    /// Checks `caller` may do `action` on `name` (creating the package on its first push).
    /// A registry token must also cover the action; if it does not but the principal may,
    /// the answer is 401 so the client fetches a token with that scope.
    pub async fn authorize(
        &self,
        caller: &Caller,
        name: &RepoName,
        action: Action,
    ) -> Result<(), RegistryError> {
        self.access
            .authorize(&caller.principal, name, action)
            .await?;
        if !caller.token_covers("repository", name.as_str(), action.verb()) {
            return Err(RegistryError::InsufficientScope(format!(
                "{} on `{name}`",
                action.verb()
            )));
        }
        Ok(())
    }

    /// The `WWW-Authenticate` value for a refusal of `scope` (or of the base endpoint). The
    /// realm is the request's base URL: `external_url`, a trusted proxy's, or the address the
    /// client connected to — never an unchecked `Host` header.
    pub fn challenge(&self, origin: &Origin, scope: Option<&str>) -> HeaderValue {
        let mut value = format!(
            "Bearer realm=\"{}/token\",service=\"{}\"",
            origin.base_url,
            origin.authority()
        );
        if let Some(scope) = scope {
            value.push_str(&format!(",scope=\"{scope}\""));
        }
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }

    /// Adds the challenge to a 401 response that lacks one, and to the refusal of a registry
    /// token's scope (with `error="insufficient_scope"`; the error mapping marks it).
    pub fn add_challenge(&self, response: &mut Response, origin: &Origin, scope: Option<&str>) {
        if response.headers().contains_key(header::WWW_AUTHENTICATE) {
            return;
        }
        let value = if response.extensions().get::<InsufficientScope>().is_some() {
            let plain = self.challenge(origin, scope);
            let text = format!(
                "{},error=\"insufficient_scope\"",
                plain.to_str().unwrap_or("Bearer")
            );
            HeaderValue::from_str(&text).unwrap_or(plain)
        } else if response.status() == StatusCode::UNAUTHORIZED {
            self.challenge(origin, scope)
        } else {
            return;
        };
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
}

/// Marks a response refusing a registry token's scope (set by the error mapping), so
/// [`Auth::add_challenge`] can add the `insufficient_scope` challenge.
#[derive(Debug, Clone, Copy)]
pub struct InsufficientScope;

fn malformed() -> RegistryError {
    RegistryError::Unauthorized(
        "the Authorization header is malformed; send `Basic base64(user:token)` or `Bearer <token>`"
            .into(),
    )
}
