//! The endpoints GitHub's tools call first: the API root (`GET /`, GitHub's `root`: URL
//! templates of the API), `GET /meta` (GitHub's `api-overview`) and `GET /rate_limit`
//! (GitHub's `rate-limit-overview`: the caller's budget as [`super::limits`] counts it).

use axum::extract::Extension;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::limits::Quota;
use super::{ApiResult, Who, answer};

/// `GET /api/v3/`: GitHub's root object, its URL templates under this server's API.
pub async fn root(who: Who) -> ApiResult {
    let api = format!("{}/api/v3", who.base);
    let page = who.base.clone();
    let search =
        |kind: &str| format!("{api}/search/{kind}?q={{query}}{{&page,per_page,sort,order}}");
    let value = json!({
        "current_user_url": format!("{api}/user"),
        "current_user_authorizations_html_url":
            format!("{page}/settings/connections/applications{{/client_id}}"),
        "authorizations_url": format!("{api}/authorizations"),
        "code_search_url": search("code"),
        "commit_search_url": search("commits"),
        "emails_url": format!("{api}/user/emails"),
        "emojis_url": format!("{api}/emojis"),
        "events_url": format!("{api}/events"),
        "feeds_url": format!("{api}/feeds"),
        "followers_url": format!("{api}/user/followers"),
        "following_url": format!("{api}/user/following{{/target}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "issue_search_url": search("issues"),
        "issues_url": format!("{api}/issues"),
        "keys_url": format!("{api}/user/keys"),
        "label_search_url": format!(
            "{api}/search/labels?q={{query}}&repository_id={{repository_id}}{{&page,per_page}}"
        ),
        "notifications_url": format!("{api}/notifications"),
        "organization_url": format!("{api}/orgs/{{org}}"),
        "organization_repositories_url":
            format!("{api}/orgs/{{org}}/repos{{?type,page,per_page,sort}}"),
        "organization_teams_url": format!("{api}/orgs/{{org}}/teams"),
        "public_gists_url": format!("{api}/gists/public"),
        "rate_limit_url": format!("{api}/rate_limit"),
        "repository_url": format!("{api}/repos/{{owner}}/{{repo}}"),
        "repository_search_url": search("repositories"),
        "current_user_repositories_url":
            format!("{api}/user/repos{{?type,page,per_page,sort}}"),
        "starred_url": format!("{api}/user/starred{{/owner}}{{/repo}}"),
        "starred_gists_url": format!("{api}/gists/starred"),
        "user_url": format!("{api}/users/{{user}}"),
        "user_organizations_url": format!("{api}/user/orgs"),
        "user_repositories_url": format!("{api}/users/{{user}}/repos{{?type,page,per_page,sort}}"),
        "user_search_url": search("users"),
    });
    Ok(answer(StatusCode::OK, value))
}

/// `GET /meta`: GitHub's `api-overview`. Passwords never authenticate the API
/// (`verifiable_password_authentication: false`); Berth publishes no address ranges, so
/// every list GitHub fills with its own ranges is empty.
pub async fn meta(_who: Who) -> ApiResult {
    let none: Vec<Value> = Vec::new();
    let value = json!({
        "verifiable_password_authentication": false,
        "hooks": none,
        "web": none,
        "api": none,
        "git": none,
        "packages": none,
        "pages": none,
        "importer": none,
        "github_enterprise_importer": none,
        "actions": none,
        "actions_macos": none,
        "dependabot": none,
        "copilot": none,
    });
    Ok(answer(StatusCode::OK, value))
}

/// `GET /rate_limit`: the caller's budget, the numbers [`super::limits`] counts and sends in
/// `x-ratelimit-*`. Not counted itself. Berth counts every `/api/v3` request in one budget,
/// so `search` (which GitHub's description requires, and whose paths Berth answers 404,
/// counted like any other) shows that same budget.
pub async fn rate_limit(_who: Who, quota: Option<Extension<Quota>>) -> ApiResult {
    let Some(Extension(quota)) = quota else {
        tracing::error!("GET /rate_limit ran without the rate limiter");
        return Err(super::GitHubError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the rate limiter did not run for this request; it has been logged",
        ));
    };
    let core = json!({
        "limit": quota.limit,
        "remaining": quota.remaining(),
        "reset": quota.reset,
        "used": quota.used,
        "resource": "core",
    });
    Ok(answer(
        StatusCode::OK,
        json!({ "resources": { "core": core, "search": core }, "rate": core }),
    ))
}
