//! Who may manage what: the pure rules behind the management operations
//! ([`super::manage`]), beside [`decide`], the rule for registry actions.
//!
//! Each rule takes the facts its operation has already read — the caller, their role in an
//! organization or on a repository, a package's [`Target`] — and does no I/O, so a front can
//! ask before it offers an action (a web UI before it renders a button) and get the answer the
//! operation would give. The operations call these rules; none decides such a question inline.
//!
//! The rules decide by who the caller is: the account behind the token and its roles, site
//! administrators passing wherever they do. What the token itself may do is checked apart by
//! the operations: they need a user's classic token, and its scopes (`admin:org`, `repo`,
//! `site_admin`, …) must cover the operation.

use super::decide::{Decision, administers_owner, decide};
use super::model::{
    AccountId, Action, Grant, OrgRole, Principal, Role, Scopes, Target, Visibility,
};

/// Whether the caller is a site administrator: they create users and organizations, and pass
/// the role checks below (but for other users' tokens and SSO authorization, which are their
/// owners' alone).
pub fn may_administer_site(principal: &Principal) -> bool {
    matches!(principal, Principal::Token(credential) if credential.site_admin)
}

/// Whether the caller manages an organization (its members, teams, SSO requirement, package
/// policy, apps, hooks), given their `role` in it: its owners and site administrators.
pub fn may_manage_org(principal: &Principal, role: Option<OrgRole>) -> bool {
    role == Some(OrgRole::Owner) || may_administer_site(principal)
}

/// Whether the caller manages user account `user` (its package policy, its apps): the user
/// themself and site administrators.
pub fn may_manage_user(principal: &Principal, user: AccountId) -> bool {
    principal.user() == Some(user) || may_administer_site(principal)
}

/// Whether the caller sees who belongs to an organization, given their `role` in it: its
/// members and owners, and site administrators.
pub fn may_see_members(principal: &Principal, role: Option<OrgRole>) -> bool {
    belongs(principal, role)
}

/// Whether the caller creates repositories in an organization, given their `role` in it: its
/// members and owners, and site administrators.
pub fn may_create_repo_in(principal: &Principal, role: Option<OrgRole>) -> bool {
    belongs(principal, role)
}

/// Whether the caller sees a source repository of this `visibility`, given their `role` on it
/// (which matters, and need be read, only for a private one and a caller with a user): public
/// ones are seen by everyone, internal ones by every user, private ones by those with a role
/// and site administrators.
pub fn may_see_repo(principal: &Principal, visibility: Visibility, role: Option<Role>) -> bool {
    match visibility {
        Visibility::Public => true,
        _ if principal.user().is_none() => false,
        Visibility::Internal => true,
        Visibility::Private => role.is_some() || may_administer_site(principal),
    }
}

/// Whether the caller manages a source repository (its collaborators, its hooks), given their
/// `role` on it (owners of the organization owning it are its admins): its admins and site
/// administrators.
pub fn may_manage_repo(principal: &Principal, role: Option<Role>) -> bool {
    role == Some(Role::Admin) || may_administer_site(principal)
}

/// Whether the caller runs a repository's jobs (mints its job tokens), given their `role` on
/// it: those with write access and site administrators.
pub fn may_run_jobs_of(principal: &Principal, role: Option<Role>) -> bool {
    role >= Some(Role::Write) || may_administer_site(principal)
}

/// Whether the caller changes the settings of the package `target` describes (visibility,
/// roles, link, job access): [`decide`] with [`Action::Manage`], whose refusal the operations
/// turn into their answer (not found, or what is missing).
pub fn may_manage_package(principal: &Principal, target: &Target) -> bool {
    decide(principal, target, Action::Manage) == Decision::Allow
}

/// Whether the caller, who manages the package of `target` ([`may_manage_package`]), may
/// give it `visibility`: administrators of the owning account choose any; others choose among
/// the visibilities the owner's policy lets members create. (That a public package stays
/// public is a rule of the package, not of the caller.)
pub fn may_choose_package_visibility(
    principal: &Principal,
    target: &Target,
    visibility: Visibility,
) -> bool {
    administers_owner(principal, target)
        || target
            .owner
            .as_ref()
            .is_some_and(|owner| owner.policy.member_visibilities.contains(&visibility))
}

/// Whether the caller may hold a classic token with `scopes`: only site administrators hold
/// `site_admin`. (A token also mints at most its own scopes: a limit of the token.)
pub fn may_hold_scopes(principal: &Principal, scopes: &Scopes) -> bool {
    !scopes.site_admin() || may_administer_site(principal)
}

/// Whether the caller mints fine-grained tokens reaching the packages of account `owner`,
/// given their `role` in it when it is an organization (unread, `None`, when `owner` is the
/// caller): the user themself, the organization's members and owners, site administrators.
pub fn may_mint_token_for(principal: &Principal, owner: AccountId, role: Option<OrgRole>) -> bool {
    principal.user() == Some(owner) || belongs(principal, role)
}

/// Whether the caller manages (lists, revokes, authorizes) a token whose user is
/// `token_user`: only that user, not even a site administrator.
pub fn may_manage_token(principal: &Principal, token_user: Option<AccountId>) -> bool {
    token_user.is_some() && principal.user() == token_user
}

/// Whether a user authorizes their classic tokens for an SSO organization, given their `role`
/// in it: its members and owners (site administrators too need to belong).
pub fn may_authorize_sso_for(role: Option<OrgRole>) -> bool {
    role.is_some()
}

/// Whether SSO lets the caller's token act for `account` (with `requires_sso`, its setting)
/// in what it mints: the account does not require SSO, the token is a classic token
/// authorized for it, or the caller is a site administrator. Tokens of other kinds are never
/// authorized: the operations asking this act for classic tokens only. ([`decide`] applies
/// the same requirement to the packages a classic token reaches.)
pub fn sso_admits(principal: &Principal, account: AccountId, requires_sso: bool) -> bool {
    let authorized = match principal {
        Principal::Token(credential) => match &credential.grant {
            Grant::Classic { sso_authorized, .. } => sso_authorized.contains(&account),
            _ => false,
        },
        Principal::Anonymous => false,
    };
    !requires_sso || authorized || may_administer_site(principal)
}

/// A member or owner of the organization, or a site administrator.
fn belongs(principal: &Principal, role: Option<OrgRole>) -> bool {
    role.is_some() || may_administer_site(principal)
}
