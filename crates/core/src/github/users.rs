//! Users and organizations: GitHub's `simple-user` (webhooks, package owners), the REST
//! API's user and organization objects, `organization-simple` (webhooks), and the
//! organization membership and team objects.

use serde_json::{Value, json};

use super::urls::{account_page, api, org_api, team_api, team_page, user_api};
use super::{node_id, time};
use crate::access::store::Account;
use crate::access::{AccountKind, OrgRole, Principal, Team};

/// A user or organization as the REST API shows it (GitHub's user and organization objects,
/// the fields Berth has), as `viewer` may see it: a user's e-mail address only to themselves
/// and site administrators.
pub fn account(base: &str, account: &Account, viewer: &Principal) -> Value {
    let login = &account.login;
    let api = api(base);
    match account.kind {
        AccountKind::User => json!({
            "login": login,
            "id": account.id,
            "type": "User",
            "site_admin": account.site_admin,
            "name": account.name,
            "email": account.email_seen_by(viewer),
            "url": user_api(base, login),
            "html_url": account_page(base, login),
            "repos_url": format!("{api}/users/{login}/repos"),
            "organizations_url": format!("{api}/users/{login}/orgs"),
            "created_at": time(account.created_at),
        }),
        AccountKind::Organization => json!({
            "login": login,
            "id": account.id,
            "type": "Organization",
            "name": account.name,
            "url": org_api(base, login),
            "html_url": account_page(base, login),
            "repos_url": format!("{api}/orgs/{login}/repos"),
            "members_url": format!("{api}/orgs/{login}/members{{/member}}"),
            "created_at": time(account.created_at),
            "packages": package_settings(account),
            "requires_token_authorization": account.requires_sso,
        }),
    }
}

/// An account's package creation settings (Berth's, under the organization's `packages`).
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

/// An account in GitHub's `simple-user` shape (organizations too, as package owners and
/// senders; GitHub files both under `/users/` there).
pub fn simple_user(base: &str, account: &Account) -> Value {
    let api = api(base);
    let login = &account.login;
    let kind = match account.kind {
        AccountKind::User => "User",
        AccountKind::Organization => "Organization",
    };
    json!({
        "login": login,
        "id": account.id,
        "node_id": node_id(kind, account.id),
        "avatar_url": "",
        "gravatar_id": "",
        "url": user_api(base, login),
        "html_url": account_page(base, login),
        "followers_url": format!("{api}/users/{login}/followers"),
        "following_url": format!("{api}/users/{login}/following{{/other_user}}"),
        "gists_url": format!("{api}/users/{login}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/users/{login}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/users/{login}/subscriptions"),
        "organizations_url": format!("{api}/users/{login}/orgs"),
        "repos_url": format!("{api}/users/{login}/repos"),
        "events_url": format!("{api}/users/{login}/events{{/privacy}}"),
        "received_events_url": format!("{api}/users/{login}/received_events"),
        "type": kind,
        "user_view_type": "public",
        "site_admin": account.site_admin,
    })
}

/// An organization in GitHub's `organization-simple` shape (webhook payloads).
pub fn organization_simple(base: &str, org: &Account) -> Value {
    let api = org_api(base, &org.login);
    json!({
        "login": org.login,
        "id": org.id,
        "node_id": node_id("Organization", org.id),
        "url": api,
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events"),
        "hooks_url": format!("{api}/hooks"),
        "issues_url": format!("{api}/issues"),
        "members_url": format!("{api}/members{{/member}}"),
        "public_members_url": format!("{api}/public_members{{/member}}"),
        "avatar_url": "",
        "description": org.name.clone().unwrap_or_default(),
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
    let org_url = org_api(base, &org.login);
    json!({
        "url": format!("{org_url}/memberships/{}", user.login),
        "state": "active",
        "role": match role { OrgRole::Owner => "admin", OrgRole::Member => "member" },
        "organization_url": org_url,
        "organization": account(base, org, viewer),
        "user": account(base, user, viewer),
    })
}

/// A team (GitHub's `team-full`, the fields Berth has).
pub fn team(base: &str, team: &Team) -> Value {
    let url = team_api(base, &team.org, &team.slug);
    json!({
        "id": team.id,
        "name": team.name,
        "slug": team.slug,
        "description": null,
        "privacy": "closed",
        "permission": "pull",
        "url": url,
        "html_url": team_page(base, &team.org, &team.slug),
        "members_url": format!("{url}/members{{/member}}"),
        "repositories_url": format!("{url}/repos"),
        "parent": null,
    })
}

/// An account's storage quota (Berth's): the bytes of the distinct blobs its packages
/// reference, and the quota a site administrator set (`null`: none).
pub fn storage_quota(quota: &crate::quotas::StorageQuota) -> Value {
    let usage = quota.usage;
    json!({
        "account": quota.account.login,
        "used_bytes": usage.used,
        "limit_bytes": usage.limit,
        "used_percent": usage.limit.map(|limit| if limit == 0 {
            100.0
        } else {
            (usage.used as f64 * 1000.0 / limit as f64).round() / 10.0
        }),
    })
}
