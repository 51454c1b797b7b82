//! GitHub's Packages REST API for `package_type=container`: list an account's packages, get,
//! delete and restore a package, list, get, delete and restore its versions; plus Berth's
//! download counts. Paths and JSON as GitHub's; nested names `%2F`-encoded. A package's
//! settings are in [`super::package_settings`]; both resolve paths with [`package`].

use berth_core::ids::VersionId;
use std::collections::HashMap;

use axum::Router;
use axum::extract::{FromRequestParts, OriginalUri, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{self, post};
use berth_core::access::AccountKind;
use berth_core::access::store::Account;
use berth_core::github::packages::{package as package_json, version as version_json};
use berth_core::github::urls::PackageUrls;
use berth_core::name::RepoName;
use berth_core::packages::PageRequest;
use berth_core::ports::VersionState;
use serde::Deserialize;
use serde_json::{Value, json};

use super::listings::Paging;
use super::{ApiResult, GitHubError, Who, answer, no_content};
use crate::AppState;

/// The package and version routes, each under an owner's path and the caller's own.
pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for base in [
        "/{kind}/{owner}/packages/container/{package}",
        "/user/packages/container/{package}",
    ] {
        router = router
            .route(base, routing::get(get).delete(delete))
            .route(&format!("{base}/restore"), post(restore))
            .route(&format!("{base}/versions"), routing::get(versions))
            .route(
                &format!("{base}/versions/{{id}}"),
                routing::get(version).delete(delete_version),
            )
            .route(
                &format!("{base}/versions/{{id}}/restore"),
                post(restore_version),
            )
            .route(&format!("{base}/downloads"), routing::get(downloads));
    }
    router
}

/// GitHub's package types; Berth holds containers only, so the others list nothing.
const PACKAGE_TYPES: [&str; 6] = ["npm", "maven", "rubygems", "docker", "nuget", "container"];

/// Query of the listings.
#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    package_type: Option<String>,
    visibility: Option<String>,
    state: Option<String>,
    #[serde(flatten)]
    paging: Paging,
}

impl ListQuery {
    /// `page` (from 1) and `per_page` (default 30, at most 100), as GitHub reads them.
    fn page(&self) -> ApiResult<PageRequest> {
        self.paging.request("Package")
    }
}

/// Whether the listing asks for containers; other known types have no packages here.
fn containers(query: &ListQuery) -> ApiResult<bool> {
    match query.package_type.as_deref() {
        None => Err(GitHubError::invalid(
            "Package",
            "package_type",
            "missing_field",
            "package_type is required: use package_type=container".into(),
        )),
        Some("container") => Ok(true),
        Some(other) if PACKAGE_TYPES.contains(&other) => Ok(false),
        Some(other) => Err(GitHubError::invalid(
            "Package",
            "package_type",
            "invalid",
            format!(
                "`{other}` is not a package type; use one of {}",
                PACKAGE_TYPES.join(", ")
            ),
        )),
    }
}

/// `GET /user/packages`.
pub async fn list_mine(
    State(state): State<AppState>,
    who: Who,
    uri: OriginalUri,
    Query(query): Query<ListQuery>,
) -> ApiResult {
    let me = state.auth.access.current_user(&who.principal).await?;
    list(&state, &who, &me, &uri, &query).await
}

/// `GET /users/{username}/packages`.
pub async fn list_user(
    State(state): State<AppState>,
    who: Who,
    uri: OriginalUri,
    Path(login): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult {
    let owner = state
        .auth
        .access
        .account(&login, Some(AccountKind::User))
        .await?;
    list(&state, &who, &owner, &uri, &query).await
}

/// `GET /orgs/{org}/packages`.
pub async fn list_org(
    State(state): State<AppState>,
    who: Who,
    uri: OriginalUri,
    Path(login): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult {
    let owner = state
        .auth
        .access
        .account(&login, Some(AccountKind::Organization))
        .await?;
    list(&state, &who, &owner, &uri, &query).await
}

async fn list(
    state: &AppState,
    who: &Who,
    owner: &Account,
    uri: &OriginalUri,
    query: &ListQuery,
) -> ApiResult {
    let page = query.page()?;
    let visibility = match query.visibility.as_deref() {
        None => None,
        Some(text) => Some(super::visibility("Package", "visibility", text)?),
    };
    let (total, views) = if containers(query)? {
        state
            .services
            .packages
            .list_as(&who.principal, owner, visibility, page)
            .await?
    } else {
        (0, Vec::new())
    };
    let items = views.iter().map(|v| package_json(&who.base, v)).collect();
    Ok(paged(&who.base, uri, page, total, items))
}

/// `GET /{orgs|users}/{owner}/packages/container/{name}`.
pub async fn get(State(state): State<AppState>, who: Who, named: Named) -> ApiResult {
    let view = state
        .services
        .packages
        .get_as(&who.principal, &named.name)
        .await?;
    Ok(answer(StatusCode::OK, package_json(&who.base, &view)))
}

/// `DELETE /{orgs|users}/{owner}/packages/container/{name}`: restorable for 30 days.
pub async fn delete(State(state): State<AppState>, who: Who, named: Named) -> ApiResult {
    state
        .services
        .packages
        .delete_as(&who.principal, &named.name)
        .await?;
    Ok(no_content())
}

/// `POST /{orgs|users}/{owner}/packages/container/{name}/restore`.
pub async fn restore(State(state): State<AppState>, who: Who, named: Named) -> ApiResult {
    state
        .services
        .packages
        .restore_as(&who.principal, &named.name)
        .await?;
    Ok(no_content())
}

/// `GET …/packages/container/{name}/versions?state=active|deleted&page&per_page`.
pub async fn versions(
    State(state): State<AppState>,
    who: Who,
    uri: OriginalUri,
    named: Named,
    Query(query): Query<ListQuery>,
) -> ApiResult {
    let page = query.page()?;
    let wanted = match query.state.as_deref() {
        None | Some("active") => VersionState::Active,
        Some("deleted") => VersionState::Deleted,
        Some(other) => {
            return Err(GitHubError::invalid(
                "PackageVersion",
                "state",
                "invalid",
                format!("`{other}` is not a state; use active or deleted"),
            ));
        }
    };
    let (total, versions) = state
        .services
        .packages
        .versions_as(&who.principal, &named.name, wanted, None, page)
        .await?;
    let base = PackageUrls::new(&who.base, &named.kind, &named.owner, &named.name);
    let items = versions.iter().map(|v| version_json(&base, v)).collect();
    Ok(paged(&who.base, &uri, page, total, items))
}

/// `GET …/versions/{id}`.
pub async fn version(State(state): State<AppState>, who: Who, named: Named) -> ApiResult {
    let id = named.version_id()?;
    let version = state
        .services
        .packages
        .version_as(&who.principal, &named.name, id)
        .await?;
    let urls = PackageUrls::new(&who.base, &named.kind, &named.owner, &named.name);
    Ok(answer(StatusCode::OK, version_json(&urls, &version)))
}

/// `DELETE …/versions/{id}`: restorable for 30 days; refused (409) while a tagged index
/// references it. Fires the `deleted` action of hooks that opted in.
pub async fn delete_version(State(state): State<AppState>, who: Who, named: Named) -> ApiResult {
    let id = named.version_id()?;
    state
        .services
        .packages
        .delete_version_as(&who.principal, &named.name, id, &who.base)
        .await?;
    Ok(no_content())
}

/// `POST …/versions/{id}/restore`.
pub async fn restore_version(State(state): State<AppState>, who: Who, named: Named) -> ApiResult {
    let id = named.version_id()?;
    state
        .services
        .packages
        .restore_version_as(&who.principal, &named.name, id)
        .await?;
    Ok(no_content())
}

/// `GET …/packages/container/{name}/downloads` (Berth): download counts per live version,
/// newest first, paginated like the versions.
pub async fn downloads(
    State(state): State<AppState>,
    who: Who,
    uri: OriginalUri,
    named: Named,
    Query(query): Query<ListQuery>,
) -> ApiResult {
    let page = query.page()?;
    let (total, versions) = state
        .services
        .packages
        .versions_as(
            &who.principal,
            &named.name,
            VersionState::Active,
            None,
            page,
        )
        .await?;
    let items = versions
        .iter()
        .map(|v| {
            json!({
                "id": v.id,
                "name": v.digest.as_str(),
                "tags": v.tags,
                "download_count": v.downloads,
            })
        })
        .collect();
    Ok(paged(&who.base, &uri, page, total, items))
}

/// The package a path names, if its owner is of the kind the path says.
pub(super) async fn package(
    state: &AppState,
    kind: &str,
    owner: &str,
    package: &str,
) -> ApiResult<RepoName> {
    let kind = match kind {
        "orgs" => AccountKind::Organization,
        "users" => AccountKind::User,
        _ => return Err(not_found(owner, package)),
    };
    state
        .auth
        .access
        .account(owner, Some(kind))
        .await
        .map_err(|_| not_found(owner, package))?;
    format!("{}/{package}", owner.to_ascii_lowercase())
        .parse()
        .map_err(|_| not_found(owner, package))
}

fn not_found(owner: &str, package: &str) -> GitHubError {
    GitHubError::new(
        StatusCode::NOT_FOUND,
        format!("there is no package `{owner}/{package}`"),
    )
}

/// The package a path names: `/{orgs|users}/{owner}/packages/container/{package}…`, or the
/// caller's own `/user/packages/container/{package}…`, and the `{id}` of a version path.
pub struct Named {
    kind: String,
    owner: String,
    name: RepoName,
    id: Option<String>,
}

impl Named {
    /// The version id of the path.
    fn version_id(&self) -> ApiResult<VersionId> {
        let text = self.id.as_deref().unwrap_or_default();
        text.parse().map_err(|_| {
            GitHubError::new(
                StatusCode::NOT_FOUND,
                format!("Package version not found: `{text}` is not a version id"),
            )
        })
    }
}

impl FromRequestParts<AppState> for Named {
    type Rejection = GitHubError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Path(mut params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| GitHubError::new(StatusCode::NOT_FOUND, e.body_text()))?;
        let (kind, owner) = match (params.remove("kind"), params.remove("owner")) {
            (Some(kind), Some(owner)) => (kind, owner),
            _ => {
                let who = Who::from_request_parts(parts, state).await?;
                let me = state.auth.access.current_user(&who.principal).await?;
                ("users".to_owned(), me.login)
            }
        };
        let short = params.remove("package").unwrap_or_default();
        let name = package(state, &kind, &owner, &short).await?;
        Ok(Named {
            kind,
            owner,
            name,
            id: params.remove("id"),
        })
    }
}

/// A JSON array answer with GitHub's `Link` header (`next`, `last`, `first`, `prev`).
pub(super) fn paged(
    base: &str,
    uri: &OriginalUri,
    page: PageRequest,
    total: u64,
    items: Vec<Value>,
) -> Response {
    let mut response = answer(StatusCode::OK, Value::Array(items));
    let last = total.div_ceil(page.per_page).max(1);
    let link_to = |n: u64| {
        let mut query: Vec<(String, String)> = uri
            .query()
            .map(|q| {
                url_pairs(q)
                    .into_iter()
                    .filter(|(k, _)| k != "page" && k != "per_page")
                    .collect()
            })
            .unwrap_or_default();
        query.push(("per_page".into(), page.per_page.to_string()));
        query.push(("page".into(), n.to_string()));
        let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("<{base}{}?{}>", uri.path(), query.join("&"))
    };
    let mut links = Vec::new();
    if page.page < last {
        links.push(format!("{}; rel=\"next\"", link_to(page.page + 1)));
        links.push(format!("{}; rel=\"last\"", link_to(last)));
    }
    if page.page > 1 {
        links.push(format!("{}; rel=\"first\"", link_to(1)));
        links.push(format!(
            "{}; rel=\"prev\"",
            link_to((page.page - 1).min(last))
        ));
    }
    if !links.is_empty()
        && let Ok(value) = HeaderValue::from_str(&links.join(", "))
    {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}

/// `k=v` pairs of a query string, kept as sent.
fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}
