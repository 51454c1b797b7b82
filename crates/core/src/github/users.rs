//! Users and organizations: GitHub's `simple-user` (webhooks, package owners), the REST
//! API's user and organization objects, `organization-simple` (webhooks), and the
//! organization membership and team objects.

use serde_json::{Value, json};

use super::urls::{account_page, api, avatar, org_api, team_api, team_page, user_api};
use super::{node_id, time};
use crate::access::store::Account;
use crate::access::{AccountKind, OrgRole, Principal, Team};
use crate::ports::Millis;

/// A user or organization as the REST API shows it, as `viewer` may see it: a user in
/// GitHub's `public-user` shape (organizations too, as GitHub's `/users/{login}` shows them),
/// an organization in its `organization-full` shape. A user's e-mail address shows only to
/// themselves and site administrators.
pub fn account(base: &str, account: &Account, viewer: &Principal) -> Value {
    match account.kind {
        AccountKind::User => user(base, account, viewer),
        AccountKind::Organization => organization(base, account),
    }
}

/// A user (or an organization, as `GET /users/{login}` shows one) in GitHub's `public-user`
/// shape: [`simple_user`]'s fields and the profile, counts Berth keeps none of at `0`.
pub fn user(base: &str, account: &Account, viewer: &Principal) -> Value {
    let mut value = simple_user(base, account);
    let profile = json!({
        "name": account.name,
        "company": null,
        "blog": "",
        "location": null,
        "email": account.email_seen_by(viewer),
        "hireable": null,
        "bio": null,
        "twitter_username": null,
        "public_repos": 0,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "created_at": time(account.created_at),
        "updated_at": time(account.created_at),
    });
    merge(&mut value, profile);
    value
}

/// The caller themselves in GitHub's `private-user` shape (`GET /user`): [`user`] with the
/// private counts (Berth keeps none of them: `0`) and `user_view_type: private`.
pub fn private_user(base: &str, account: &Account, viewer: &Principal) -> Value {
    let mut value = user(base, account, viewer);
    merge(
        &mut value,
        json!({
            "user_view_type": "private",
            "private_gists": 0,
            "total_private_repos": 0,
            "owned_private_repos": 0,
            "disk_usage": 0,
            "collaborators": 0,
            "two_factor_authentication": false,
        }),
    );
    value
}

/// An organization in GitHub's `organization-full` shape ([`organization_simple`]'s fields,
/// the page, the counts Berth keeps none of at `0`), with Berth's additions: `name`, its
/// package creation settings under `packages`, and `requires_token_authorization` (SSO).
pub fn organization(base: &str, org: &Account) -> Value {
    let mut value = organization_simple(base, org);
    merge(
        &mut value,
        json!({
            "html_url": account_page(base, &org.login),
            "type": "Organization",
            "has_organization_projects": false,
            "has_repository_projects": false,
            "public_repos": 0,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": time(org.created_at),
            "updated_at": time(org.created_at),
            "archived_at": null,
            "packages": package_settings(org),
            "requires_token_authorization": org.requires_sso,
        }),
    );
    // GitHub's `name` is a string when present; Berth's organizations may have none.
    if let Some(name) = &org.name {
        value["name"] = json!(name);
    }
    value
}

/// `value` (a user's `simple-user`) with the e-mail address `viewer` may see of `user`.
fn with_email(mut value: Value, user: &Account, viewer: &Principal) -> Value {
    value["email"] = json!(user.email_seen_by(viewer));
    value
}

/// Adds `more`'s keys to the object `value`.
fn merge(value: &mut Value, more: Value) {
    if let (Value::Object(value), Value::Object(more)) = (value, more) {
        value.extend(more);
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
        "avatar_url": avatar(base, account.id),
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
        "avatar_url": avatar(base, org.id),
        "description": null,
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
        "organization": organization_simple(base, org),
        "user": with_email(simple_user(base, user), user, viewer),
    })
}

/// A team in GitHub's `team` shape (listings, a team's parent).
pub fn team(base: &str, team: &Team) -> Value {
    let url = team_api(base, &team.org, &team.slug);
    json!({
        "id": team.id,
        "node_id": node_id("Team", team.id),
        "name": team.name,
        "slug": team.slug,
        "description": null,
        "privacy": "closed",
        "notification_setting": "notifications_enabled",
        "permission": "pull",
        "url": url,
        "html_url": team_page(base, &team.org, &team.slug),
        "members_url": format!("{url}/members{{/member}}"),
        "repositories_url": format!("{url}/repos"),
        "type": "organization",
        "parent": null,
    })
}

/// A team in GitHub's `team-full` shape (creating one answers it): [`team`] with its
/// organization, its counts and times.
pub fn team_full(
    base: &str,
    team: &Team,
    org: &Account,
    members: usize,
    repos: usize,
    created_at: Millis,
) -> Value {
    let mut value = self::team(base, team);
    merge(
        &mut value,
        json!({
            "members_count": members,
            "repos_count": repos,
            "created_at": time(created_at),
            "updated_at": time(created_at),
            "organization": organization(base, org),
        }),
    );
    value
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
