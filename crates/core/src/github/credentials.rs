//! Credentials in GitHub's style: Berth's token objects (never a secret) and GitHub's app
//! `installation`.

use serde_json::{Value, json};

use super::urls::api;
use super::users::account;
use super::{maybe_time, time};
use crate::access::store::{Account, AppInstallation, CredentialInfo};
use crate::access::{Grant, Principal};

/// A token as listed: never its secret.
pub fn token(base: &str, info: &CredentialInfo) -> Value {
    let mut value = json!({
        "id": info.id,
        "url": format!("{}/user/tokens/{}", api(base), info.id),
        "type": info.kind.as_str(),
        "note": info.note,
        "created_at": time(info.created_at),
        "expires_at": maybe_time(info.expires_at),
        "last_used_at": maybe_time(info.last_used_at),
        "revoked_at": maybe_time(info.revoked_at),
    });
    match &info.grant {
        Grant::Classic {
            scopes,
            sso_authorized,
        } => {
            value["scopes"] = json!(scopes.names());
            value["sso_authorized_organization_ids"] = json!(sso_authorized);
        }
        Grant::FineGrained {
            owner,
            packages,
            repositories,
            permission,
            private_repositories,
        } => {
            value["resource_owner_id"] = json!(owner);
            value["packages"] = json!(packages);
            value["repository_ids"] = json!(repositories);
            value["permissions"] = json!({ "packages": permission.as_str() });
            // Berth's addition: whether roles through private repositories count (the
            // minting token had `repo`).
            value["private_repositories"] = json!(private_repositories);
        }
        Grant::App { .. } | Grant::Job { .. } => {}
    }
    value
}

/// An app installation (GitHub's `installation`, the fields Berth has), its account as
/// `viewer` may see it.
pub fn installation(
    base: &str,
    installation: &AppInstallation,
    owner: &Account,
    viewer: &Principal,
) -> Value {
    json!({
        "id": installation.id,
        "app_id": installation.app,
        "app_slug": installation.app_slug,
        "account": account(base, owner, viewer),
        "repository_selection": selection(installation),
        "repository_ids": installation.repositories,
        "permissions": { "packages": installation.permission.as_str() },
        "access_tokens_url": format!("{}/app/installations/{}/access_tokens", api(base), installation.id),
    })
}

/// An installation's `repository_selection`: `all` or `selected`.
pub fn selection(installation: &AppInstallation) -> &'static str {
    if installation.repositories.is_some() {
        "selected"
    } else {
        "all"
    }
}
