//! The JSON shapes of the management API: GitHub's fields for users, organizations,
//! memberships, teams and repositories; Berth's for tokens and apps, in the same style.
//! Times are ISO 8601 in UTC, as GitHub writes them.

use std::time::{Duration, UNIX_EPOCH};

use berth_core::access::store::{Account, AppInstallation, CredentialInfo, SourceRepo};
use berth_core::access::{AccountKind, Grant, OrgRole, Principal, Team, Visibility};
use berth_core::ports::Millis;
use serde_json::{Value, json};

/// `2026-11-23T10:00:00Z`.
pub fn time(millis: Millis) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(millis.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Optional time, `null` when absent.
pub fn maybe_time(millis: Option<Millis>) -> Value {
    millis.map_or(Value::Null, |m| Value::String(time(m)))
}

/// Parses an ISO 8601 / RFC 3339 time into milliseconds since the epoch.
pub fn parse_time(text: &str) -> Option<Millis> {
    let at = humantime::parse_rfc3339_weak(text)
        .or_else(|_| humantime::parse_rfc3339_weak(&format!("{text}T00:00:00Z")))
        .ok()?;
    Some(at.duration_since(UNIX_EPOCH).ok()?.as_millis() as Millis)
}

/// A user or organization, as GitHub's simple user / organization objects, as `viewer` may
/// see it (a user's e-mail address only to themselves and site administrators).
pub fn account(base: &str, account: &Account, viewer: &Principal) -> Value {
    let login = &account.login;
    let api = format!("{base}/api/v3");
    match account.kind {
        AccountKind::User => json!({
            "login": login,
            "id": account.id,
            "type": "User",
            "site_admin": account.site_admin,
            "name": account.name,
            "email": account.email_seen_by(viewer),
            "url": format!("{api}/users/{login}"),
            "html_url": format!("{base}/{login}"),
            "repos_url": format!("{api}/users/{login}/repos"),
            "organizations_url": format!("{api}/users/{login}/orgs"),
            "created_at": time(account.created_at),
        }),
        AccountKind::Organization => json!({
            "login": login,
            "id": account.id,
            "type": "Organization",
            "name": account.name,
            "url": format!("{api}/orgs/{login}"),
            "html_url": format!("{base}/{login}"),
            "repos_url": format!("{api}/orgs/{login}/repos"),
            "members_url": format!("{api}/orgs/{login}/members{{/member}}"),
            "created_at": time(account.created_at),
            "packages": package_settings(account),
            "requires_token_authorization": account.requires_sso,
        }),
    }
}

/// An account's package creation settings.
pub fn package_settings(account: &Account) -> Value {
    json!({
        "default_visibility": account.policy.default_visibility.as_str(),
        "member_visibilities": account
            .policy
            .member_visibilities
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>(),
    })
}

/// An organization membership (GitHub's `org-membership`).
pub fn membership(
    base: &str,
    org: &Account,
    user: &Account,
    role: OrgRole,
    viewer: &Principal,
) -> Value {
    json!({
        "url": format!("{base}/api/v3/orgs/{}/memberships/{}", org.login, user.login),
        "state": "active",
        "role": match role { OrgRole::Owner => "admin", OrgRole::Member => "member" },
        "organization_url": format!("{base}/api/v3/orgs/{}", org.login),
        "organization": account(base, org, viewer),
        "user": account(base, user, viewer),
    })
}

/// A team (GitHub's `team-full`, the fields Berth has).
pub fn team(base: &str, team: &Team) -> Value {
    let url = format!("{base}/api/v3/orgs/{}/teams/{}", team.org, team.slug);
    json!({
        "id": team.id,
        "name": team.name,
        "slug": team.slug,
        "description": null,
        "privacy": "closed",
        "permission": "pull",
        "url": url,
        "html_url": format!("{base}/orgs/{}/teams/{}", team.org, team.slug),
        "members_url": format!("{url}/members{{/member}}"),
        "repositories_url": format!("{url}/repos"),
        "parent": null,
    })
}

/// A repository (GitHub's `repository`, the fields Berth has).
pub fn repo(base: &str, repo: &SourceRepo, owner: &Account, viewer: &Principal) -> Value {
    let full_name = format!("{}/{}", repo.owner_login, repo.name);
    json!({
        "id": repo.id,
        "name": repo.name,
        "full_name": full_name,
        "owner": account(base, owner, viewer),
        "private": repo.visibility != Visibility::Public,
        "visibility": repo.visibility.as_str(),
        "url": format!("{base}/api/v3/repos/{full_name}"),
        "html_url": format!("{base}/{full_name}"),
        "created_at": time(repo.created_at),
    })
}

/// A token as listed: never its secret.
pub fn token(base: &str, info: &CredentialInfo) -> Value {
    let mut value = json!({
        "id": info.id,
        "url": format!("{base}/api/v3/user/tokens/{}", info.id),
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

/// An app installation (GitHub's `installation`, the fields Berth has).
pub fn installation(
    base: &str,
    installation: &AppInstallation,
    account: &Account,
    viewer: &Principal,
) -> Value {
    json!({
        "id": installation.id,
        "app_id": installation.app,
        "app_slug": installation.app_slug,
        "account": self::account(base, account, viewer),
        "repository_selection": selection(installation),
        "repository_ids": installation.repositories,
        "permissions": { "packages": installation.permission.as_str() },
        "access_tokens_url": format!("{base}/api/v3/app/installations/{}/access_tokens", installation.id),
    })
}

/// `all` or `selected`.
pub fn selection(installation: &AppInstallation) -> &'static str {
    if installation.repositories.is_some() {
        "selected"
    } else {
        "all"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_through_iso_8601() {
        let millis = 1_795_000_000_000;
        let text = time(millis);
        assert!(text.ends_with('Z'), "{text}");
        assert_eq!(parse_time(&text), Some(millis));
        assert_eq!(parse_time("2030-01-02"), parse_time("2030-01-02T00:00:00Z"));
        assert_eq!(parse_time("next week"), None);
    }
}
