//! `GET /v2/<name>/tags/list`, `GET /v2/_catalog`, `GET /v2/<name>/referrers/<digest>`.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use berth_core::RegistryError;
use berth_core::access::Action;
use berth_core::manifest::OCI_INDEX;
use berth_core::registry::{Page, Registry};
use berth_core::{Digest, RepoName};
use serde_json::json;

use super::{Answer, Params, header_value, page_size};
use crate::AppState;
use crate::auth::Caller;
use crate::error::OciError;

fn json_page(path: &str, n: Option<usize>, page: &Page, body: serde_json::Value) -> Response {
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response();
    if let (true, Some(last)) = (page.more, page.items.last()) {
        let n = n.map(|n| format!("n={n}&")).unwrap_or_default();
        let link = format!(
            "<{path}?{n}last={}>; rel=\"next\"",
            berth_core::uri::escape_component(last)
        );
        response
            .headers_mut()
            .insert(header::LINK, header_value(&link));
    }
    response
}

/// Lists a repository's tags, paginated by `n` and `last`.
pub async fn tags(registry: &Registry, name: &RepoName, params: &Params) -> Answer {
    let n = page_size(params)?;
    let page = registry.list_tags(name, params.last.as_deref(), n).await?;
    let body = json!({ "name": name.as_str(), "tags": page.items });
    Ok(json_page(&format!("/v2/{name}/tags/list"), n, &page, body))
}

/// Lists the repositories the caller may read, paginated by `n` and `last`.
pub async fn catalog(state: &AppState, caller: &Caller, params: &Params) -> Answer {
    if caller.is_anonymous() {
        return Err(OciError(RegistryError::Unauthorized(
            "the catalog lists what you may read: log in with a token".into(),
        )));
    }
    if !caller.token_covers("registry", "catalog", "*") {
        return Err(OciError(RegistryError::InsufficientScope(
            "the catalog".into(),
        )));
    }
    let n = page_size(params)?;
    let want = n.unwrap_or(usize::MAX);
    let mut items = Vec::new();
    let mut last = params.last.clone();
    let mut more = false;
    // Read the store in batches and keep what the caller may read, until the page is full.
    while items.len() < want {
        let batch = (want - items.len()).clamp(100, 1000);
        let page = state
            .services
            .registry
            .catalog(last.as_deref(), Some(batch))
            .await?;
        for name in &page.items {
            let Ok(repo) = name.parse::<RepoName>() else {
                continue;
            };
            if state
                .auth
                .access
                .permits(&caller.principal, &repo, Action::Pull)
                .await?
            {
                if items.len() == want {
                    more = true;
                    break;
                }
                items.push(name.clone());
            }
        }
        last = page.items.last().cloned();
        if !page.more || more {
            more = more || (page.more && items.len() == want);
            break;
        }
    }
    let page = Page { items, more };
    let body = json!({ "repositories": page.items });
    Ok(json_page("/v2/_catalog", n, &page, body))
}

/// Lists manifests whose subject is `digest`, optionally filtered by `artifactType`.
pub async fn referrers(
    registry: &Registry,
    name: &RepoName,
    digest: &Digest,
    params: &Params,
) -> Answer {
    let filter = params.artifact_type.as_deref().filter(|t| !t.is_empty());
    let index = registry.referrers(name, digest, filter).await?;
    let mut response = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(OCI_INDEX))],
        index.to_string(),
    )
        .into_response();
    if filter.is_some() {
        response.headers_mut().insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(response)
}
