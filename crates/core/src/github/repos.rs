//! Repositories: the REST API's `repository` object and the webhooks' (the fields Berth has
//! of each).

use serde_json::{Value, json};

use super::urls::{repo_api, repo_page};
use super::users::{account, simple_user};
use super::{node_id, time};
use crate::access::store::{Account, SourceRepo};
use crate::access::{Principal, Visibility};

/// `owner/name`.
pub fn full_name(repo: &SourceRepo) -> String {
    format!("{}/{}", repo.owner_login, repo.name)
}

/// A repository as the REST API shows it, its owner as `viewer` may see it.
pub fn repository(base: &str, repo: &SourceRepo, owner: &Account, viewer: &Principal) -> Value {
    let full_name = full_name(repo);
    json!({
        "id": repo.id,
        "name": repo.name,
        "full_name": full_name,
        "owner": account(base, owner, viewer),
        "private": repo.visibility != Visibility::Public,
        "visibility": repo.visibility.as_str(),
        "url": repo_api(base, &full_name),
        "html_url": repo_page(base, &full_name),
        "created_at": time(repo.created_at),
    })
}

/// A repository in the webhook payloads' `repository` shape.
pub fn webhook_repository(base: &str, repo: &SourceRepo, owner: &Account) -> Value {
    let full_name = full_name(repo);
    let api = repo_api(base, &full_name);
    json!({
        "id": repo.id,
        "node_id": node_id("Repository", repo.id),
        "name": repo.name,
        "full_name": full_name,
        "private": repo.visibility != Visibility::Public,
        "owner": simple_user(base, owner),
        "html_url": repo_page(base, &full_name),
        "description": null,
        "fork": false,
        "url": api,
        "hooks_url": format!("{api}/hooks"),
        "collaborators_url": format!("{api}/collaborators{{/collaborator}}"),
        "created_at": time(repo.created_at),
        "updated_at": time(repo.created_at),
        "pushed_at": null,
        "homepage": null,
        "archived": false,
        "disabled": false,
        "visibility": repo.visibility.as_str(),
        "default_branch": "main",
    })
}
