//! The management API under `/api/v3`, shaped like GitHub's REST API (GitHub Enterprise
//! Server paths where GitHub has an endpoint, Berth endpoints in the same style where GitHub
//! only has a web page), so GitHub clients and scripts work against Berth.
//!
//! Path of a request: the [`Who`] extractor resolves the `Authorization` header (`token`,
//! `Bearer` or Basic, a Berth token) into a principal; a handler parses the JSON body with
//! [`body`], calls one [`berth_core::access::Access`] management operation, and renders the
//! result with GitHub's objects from [`berth_core::github`]. Refusals become GitHub's
//! `{"message","documentation_url"}` bodies in [`GitHubError`]. Around the routes, two
//! middleware layers: [`limits`] (rate limits; it resolves the caller `Who` then takes) and
//! [`etag`] (conditional GETs).

mod accounts;
pub mod etag;
pub mod graphql;
pub mod headers;
mod hooks;
pub mod limits;
mod listings;
mod meta;
mod package_settings;
mod packages;
mod policies;
mod quotas;
mod repos;
mod tokens;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use berth_core::RegistryError;
use berth_core::access::{ManageError, Principal, Role, Visibility};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::AppState;
use crate::origin::Origin;

/// Where GitHub-shaped errors point people.
const DOCS: &str = "https://docs.github.com/rest";

/// The `/api/v3` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(meta::root))
        .route("/meta", get(meta::meta))
        .route("/rate_limit", get(meta::rate_limit))
        .route("/orgs/{org}/members", get(listings::org_members))
        .route("/user/orgs", get(listings::my_orgs))
        .route("/users/{login}/repos", get(listings::user_repos))
        .route("/user", get(accounts::current_user))
        .route("/users/{login}", get(accounts::user))
        .route("/orgs/{org}", get(accounts::org))
        .route("/admin/users", post(accounts::create_user))
        .route("/admin/organizations", post(accounts::create_org))
        .route(
            "/orgs/{org}/memberships/{username}",
            get(accounts::membership)
                .put(accounts::set_membership)
                .delete(accounts::remove_membership),
        )
        .route("/orgs/{org}/sso", put(accounts::set_sso))
        .route(
            "/orgs/{owner}/packages/settings",
            axum::routing::patch(accounts::package_settings),
        )
        .route(
            "/users/{owner}/packages/settings",
            axum::routing::patch(accounts::package_settings),
        )
        .route(
            "/orgs/{owner}/packages/policies",
            get(policies::account).put(policies::set_account),
        )
        .route(
            "/users/{owner}/packages/policies",
            get(policies::account).put(policies::set_account),
        )
        .route(
            "/orgs/{owner}/packages/policies/dry-run",
            post(policies::account_dry_run),
        )
        .route(
            "/users/{owner}/packages/policies/dry-run",
            post(policies::account_dry_run),
        )
        .route("/orgs/{owner}/packages/quota", get(quotas::get))
        .route("/users/{owner}/packages/quota", get(quotas::get))
        .route(
            "/admin/storage-quotas/{owner}",
            get(quotas::get).put(quotas::set).delete(quotas::clear),
        )
        .route(
            "/orgs/{org}/teams",
            get(listings::org_teams).post(accounts::create_team),
        )
        .route(
            "/orgs/{org}/teams/{team}/memberships/{username}",
            put(accounts::add_team_member).delete(accounts::remove_team_member),
        )
        .route(
            "/orgs/{org}/teams/{team}/repos/{owner}/{repo}",
            put(repos::set_team_repo).delete(repos::remove_team_repo),
        )
        .route(
            "/user/repos",
            get(listings::my_repos).post(repos::create_user_repo),
        )
        .route(
            "/orgs/{org}/repos",
            get(listings::org_repos).post(repos::create_org_repo),
        )
        .route("/repos/{owner}/{repo}", get(repos::repo))
        .route(
            "/repos/{owner}/{repo}/collaborators/{username}",
            put(repos::set_collaborator).delete(repos::remove_collaborator),
        )
        .route(
            "/repos/{owner}/{repo}/actions/job-tokens",
            post(repos::create_job_token),
        )
        .route("/user/packages", get(packages::list_mine))
        .route("/users/{login}/packages", get(packages::list_user))
        .route("/orgs/{org}/packages", get(packages::list_org))
        .route(
            "/{kind}/{owner}/packages/container/{package}",
            axum::routing::patch(package_settings::update),
        )
        .route(
            "/{kind}/{owner}/packages/container/{package}/collaborators/{username}",
            put(package_settings::set_user_role).delete(package_settings::remove_user_role),
        )
        .route(
            "/{kind}/{owner}/packages/container/{package}/teams/{team}",
            put(package_settings::set_team_role).delete(package_settings::remove_team_role),
        )
        .route(
            "/{kind}/{owner}/packages/container/{package}/repository",
            put(package_settings::link).delete(package_settings::unlink),
        )
        .route(
            "/{kind}/{owner}/packages/container/{package}/actions-access/{repo}",
            put(package_settings::set_job_access).delete(package_settings::remove_job_access),
        )
        .route(
            "/{kind}/{owner}/packages/container/{package}/policies",
            get(policies::get).put(policies::set),
        )
        .route(
            "/{kind}/{owner}/packages/container/{package}/policies/dry-run",
            post(policies::dry_run),
        )
        .route("/user/tokens", get(tokens::list).post(tokens::create))
        .route("/user/tokens/{id}", delete(tokens::revoke))
        .route("/user/tokens/{id}/sso/{org}", put(tokens::authorize_sso))
        .route("/apps", post(tokens::create_app))
        .route("/apps/{slug}/installations", post(tokens::install_app))
        .route(
            "/app/installations/{id}/access_tokens",
            post(tokens::installation_token),
        )
        .merge(hooks::router())
        .merge(packages::router())
        .route_layer(axum::middleware::from_fn(headers::accepted_scopes))
        // A method a path does not have is GitHub's 404, as a path it does not have.
        .method_not_allowed_fallback(headers::not_found)
        .fallback(headers::not_found)
        .layer(axum::middleware::from_fn(headers::github))
}

/// `/api/v3/`, the API root with its trailing slash as GitHub's clients ask for it: the
/// nested [`router`] serves `/api/v3` alone. Mounted beside it, under the same layers.
pub fn root_router() -> Router<AppState> {
    Router::new()
        .route("/api/v3/", get(meta::root))
        .route_layer(axum::middleware::from_fn(headers::accepted_scopes))
        .method_not_allowed_fallback(headers::not_found)
        .layer(axum::middleware::from_fn(headers::github))
}

/// A refusal in GitHub's shape: `{"message", "documentation_url"}`, plus `errors` for 422.
#[derive(Debug, Clone)]
pub struct GitHubError {
    status: StatusCode,
    message: String,
    documentation_url: &'static str,
    errors: Option<Value>,
    retry_after: Option<u64>,
}

impl GitHubError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        GitHubError {
            status,
            message: message.into(),
            documentation_url: DOCS,
            errors: None,
            retry_after: None,
        }
    }

    /// 422 naming the field that is wrong.
    fn invalid(resource: &str, field: &str, code: &str, message: String) -> Self {
        GitHubError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: "Validation Failed".into(),
            documentation_url: DOCS,
            errors: Some(json!([{
                "resource": resource,
                "field": field,
                "code": code,
                "message": message,
            }])),
            retry_after: None,
        }
    }
}

impl From<ManageError> for GitHubError {
    fn from(error: ManageError) -> Self {
        match error {
            ManageError::Unauthenticated(m) => GitHubError::new(StatusCode::UNAUTHORIZED, m),
            ManageError::NotFound(m) => GitHubError::new(StatusCode::NOT_FOUND, m),
            ManageError::Forbidden(m) => GitHubError::new(StatusCode::FORBIDDEN, m),
            ManageError::Conflict(m) => GitHubError::new(StatusCode::CONFLICT, m),
            ManageError::Invalid {
                resource,
                field,
                code,
                message,
            } => GitHubError::invalid(resource, field, code, message),
            ManageError::Store(e) if e.kind() == berth_core::error::StoreErrorKind::Unavailable => {
                tracing::error!(error = %e, "storage unavailable");
                GitHubError {
                    retry_after: Some(crate::error::UNAVAILABLE_RETRY_SECS),
                    ..GitHubError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Berth's storage is unavailable right now (it has been logged); retry shortly",
                    )
                }
            }
            ManageError::Store(e) => {
                tracing::error!(error = %e, "storage failure");
                GitHubError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Berth could not complete the request because of an internal storage error; it has been logged",
                )
            }
        }
    }
}

impl From<RegistryError> for GitHubError {
    fn from(error: RegistryError) -> Self {
        let status = crate::error::status_of(&error);
        let message = error.to_string();
        match error {
            RegistryError::Store(e) => ManageError::Store(e).into(),
            RegistryError::TooManyRequests(seconds) => GitHubError {
                retry_after: Some(seconds),
                ..GitHubError::new(status, message)
            },
            _ => GitHubError::new(status, message),
        }
    }
}

impl IntoResponse for GitHubError {
    fn into_response(self) -> Response {
        let mut body =
            json!({ "message": self.message, "documentation_url": self.documentation_url });
        if let Some(errors) = self.errors {
            body["errors"] = errors;
        }
        let mut response = answer(self.status, body);
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"Berth API\""),
            );
        }
        response
    }
}

/// Result of an API handler.
pub type ApiResult<T = Response> = Result<T, GitHubError>;

/// Who calls the API, and the base URL they reach Berth at (for `url` fields).
pub struct Who {
    /// The principal.
    pub principal: Principal,
    /// `https://registry.example`, no trailing slash.
    pub base: String,
}

impl FromRequestParts<AppState> for Who {
    type Rejection = GitHubError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let origin = Origin::from_request_parts(parts, state).await;
        let client = origin.as_ref().ok().map(|o| o.client.ip());
        // The rate limiter resolved the caller already; outside it, resolve here.
        let caller = match parts.extensions.remove::<limits::Resolved>() {
            Some(limits::Resolved(resolved)) => resolved?,
            None => state
                .auth
                .caller(&parts.headers, client)
                .await
                .map_err(caller_refused)?,
        };
        if caller.token_scopes.is_some() {
            return Err(GitHubError::new(
                StatusCode::UNAUTHORIZED,
                "registry tokens from /token work on /v2/ only; send your Berth token to the API",
            ));
        }
        Ok(Who {
            principal: caller.principal,
            base: origin
                .map(|o| o.base_url.to_string())
                .map_err(|(_, why)| GitHubError::new(StatusCode::INTERNAL_SERVER_ERROR, why))?,
        })
    }
}

/// Why the credentials of a request were refused, as GitHub answers: 401 `Bad credentials`
/// for a token that is unknown, mistyped, expired or revoked (the reason is logged, not
/// told); other refusals (the failure limiter's 429) as they are.
pub(crate) fn caller_refused(error: RegistryError) -> GitHubError {
    match error {
        RegistryError::Unauthorized(why) => {
            tracing::debug!(%why, "API credentials refused");
            GitHubError::new(StatusCode::UNAUTHORIZED, "Bad credentials")
        }
        other => other.into(),
    }
}

/// Parses a JSON request body; an empty body is `{}`.
pub fn body<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| {
        GitHubError::new(
            StatusCode::BAD_REQUEST,
            format!("Problems parsing JSON: {e}"),
        )
    })
}

/// A JSON answer with `status`.
pub fn answer(status: StatusCode, value: Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        value.to_string(),
    )
        .into_response()
}

/// 204 No Content.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Parses a visibility field.
fn visibility(resource: &str, field: &str, text: &str) -> ApiResult<Visibility> {
    match text {
        "private" => Ok(Visibility::Private),
        "internal" => Ok(Visibility::Internal),
        "public" => Ok(Visibility::Public),
        other => Err(GitHubError::invalid(
            resource,
            field,
            "invalid",
            format!("`{other}` is not a visibility; use private, internal or public"),
        )),
    }
}

/// Parses a role field, in GitHub's repository spelling (`pull`, `triage`, `push`,
/// `maintain`, `admin`) or Berth's package spelling (`read`, `write`, `admin`).
fn role(resource: &str, field: &str, text: &str) -> ApiResult<Role> {
    match text {
        "read" | "pull" | "triage" => Ok(Role::Read),
        "write" | "push" | "maintain" => Ok(Role::Write),
        "admin" => Ok(Role::Admin),
        other => Err(GitHubError::invalid(
            resource,
            field,
            "invalid",
            format!("`{other}` is not a role; use read, write or admin"),
        )),
    }
}

/// The `permissions.packages` of a token request: `read` or `write`.
#[derive(Debug, Default, serde::Deserialize)]
struct PackagesPermission {
    packages: Option<String>,
}

impl PackagesPermission {
    fn role(&self, resource: &str, default: Option<Role>) -> ApiResult<Option<Role>> {
        match self.packages.as_deref() {
            None => Ok(default),
            Some("read") => Ok(Some(Role::Read)),
            Some("write") => Ok(Some(Role::Write)),
            Some(other) => Err(GitHubError::invalid(
                resource,
                "permissions",
                "invalid",
                format!("packages permission `{other}` is not read or write"),
            )),
        }
    }
}
