//! Management operations behind the `/api/v3` API, one module per resource as in
//! `crates/http/src/api/`: [`accounts`] (users, organizations, memberships, package creation
//! policy), [`teams`], [`repos`] (source repositories and collaborators), [`package_settings`],
//! [`tokens`] (personal access tokens and job tokens) and [`apps`]. Each one checks who asks
//! (a user's classic token and its scopes, the user's role) before it changes anything, and
//! answers a [`ManageError`] the HTTP layer turns into GitHub's error shapes. Whether the
//! user's role suffices is asked of the pure rules in [`super::rules`], never decided inline.
//!
//! Package settings are checked by [`decide`](super::decide::decide) with
//! [`Action::Manage`](super::model::Action::Manage), so the rule that invisible packages are not
//! found holds here as on the registry.
//!
//! This module holds what the parts share: the error, the calling [`Actor`], and the checks
//! every resource asks (site administrator, organization owner, account administrator).
//! Every store write goes through [`Access::changed`], so the access cache forgets.

mod accounts;
mod apps;
mod listings;
mod package_settings;
mod repos;
mod teams;
mod tokens;

pub use apps::InstallationToken;
pub use listings::{Affiliation, MyRepos, ORG_READ_SCOPES, REPO_HOOK_SCOPES, RepoVisibility};
pub use package_settings::{GranteeName, PackageSettings};
pub use teams::Team;
pub use tokens::{NewToken, TokenRequest};

use super::model::{AccountId, AccountKind, Credential, Grant, OrgRole, Principal, Scopes};
use super::rules::{may_administer_site, may_manage_org, may_manage_user, sso_admits};
use super::service::Access;
use super::store::Account;
use crate::error::StoreError;

/// Why a management call was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// No usable credentials (GitHub: 401 "Requires authentication").
    #[error("{0}")]
    Unauthenticated(String),
    /// The thing does not exist, or the caller may not know it does.
    #[error("{0}")]
    NotFound(String),
    /// The caller sees it but may not do this; the text says what is missing.
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the state of the thing (GitHub: 409), e.g. deleting a
    /// version a tagged multi-arch image needs; the text says what to do.
    #[error("{0}")]
    Conflict(String),
    /// A field of the request is invalid (GitHub: 422 "Validation Failed").
    #[error("{message}")]
    Invalid {
        /// GitHub's resource name (`User`, `Repository`, …).
        resource: &'static str,
        /// The field.
        field: &'static str,
        /// GitHub's code: `missing_field`, `invalid`, `already_exists`, `custom`.
        code: &'static str,
        /// What is wrong, for a person.
        message: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Result of a management call.
pub type ManageResult<T> = Result<T, ManageError>;

fn invalid(
    resource: &'static str,
    field: &'static str,
    code: &'static str,
    message: impl Into<String>,
) -> ManageError {
    ManageError::Invalid {
        resource,
        field,
        code,
        message: message.into(),
    }
}

/// The calling user and their classic token's scopes.
pub(crate) struct Actor<'a> {
    pub(crate) principal: &'a Principal,
    pub(crate) credential: &'a Credential,
    pub(crate) user: AccountId,
    pub(crate) scopes: Scopes,
}

impl Actor<'_> {
    /// Refuses when `account` requires SSO-authorized classic tokens and the calling token
    /// is not authorized for it (site administrators need no authorization, as in
    /// [`decide`]): a token it mints would reach the organization's packages, which the
    /// calling token does not.
    pub(crate) fn need_sso_for(&self, account: &Account) -> ManageResult<()> {
        if !sso_admits(self.principal, account.id, account.requires_sso) {
            return Err(ManageError::Forbidden(format!(
                "the token is not authorized for `{}`, which requires SSO authorization of classic tokens, so it cannot mint a token that reaches it; authorize it (PUT /api/v3/user/tokens/{}/sso/{}) or use one that is",
                account.login, self.credential.id, account.login
            )));
        }
        Ok(())
    }

    /// Whether the calling token reaches packages through private repositories (`repo`).
    pub(crate) fn has_repo_scope(&self) -> bool {
        self.scopes.repo()
    }

    /// Refuses unless the token holds one of `scopes` (directly or through a scope that
    /// includes it), naming the first: GitHub's `X-Accepted-OAuth-Scopes` of an endpoint.
    pub(crate) fn need_any(&self, scopes: &[&str]) -> ManageResult<()> {
        if self.scopes.holds_any(scopes) {
            Ok(())
        } else {
            Err(ManageError::Forbidden(format!(
                "the token lacks the {} scope this needs (any of: {})",
                scopes.first().copied().unwrap_or_default(),
                scopes.join(", ")
            )))
        }
    }

    pub(crate) fn need(&self, scope: &str) -> ManageResult<()> {
        let needed: Scopes = scope.parse().expect("scope names in this module are valid");
        if self.scopes.covers(&needed) {
            Ok(())
        } else {
            Err(ManageError::Forbidden(format!(
                "the token lacks the {scope} scope this needs"
            )))
        }
    }
}

pub(crate) fn actor(principal: &Principal) -> ManageResult<Actor<'_>> {
    let Principal::Token(credential) = principal else {
        return Err(ManageError::Unauthenticated(
            "Requires authentication: send a personal access token (`Authorization: Bearer <token>`)"
                .into(),
        ));
    };
    match (&credential.grant, credential.user) {
        (Grant::Classic { scopes, .. }, Some(user)) => Ok(Actor {
            principal,
            credential,
            user,
            scopes: *scopes,
        }),
        (Grant::FineGrained { .. }, _) => Err(ManageError::Forbidden(
            "Resource not accessible by fine-grained personal access token: fine-grained tokens reach packages only; use a classic token".into(),
        )),
        _ => Err(ManageError::Forbidden(
            "Resource not accessible by integration: app installation and job tokens reach packages only; use a user's classic token".into(),
        )),
    }
}

/// Whether `login` is a valid GitHub login: letters, digits and single hyphens, not at either
/// end, at most 39 characters.
fn valid_login(login: &str) -> bool {
    !login.is_empty()
        && login.len() <= 39
        && !login.starts_with('-')
        && !login.ends_with('-')
        && !login.contains("--")
        && login.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl Access {
    pub(crate) fn site_admin<'a>(&self, principal: &'a Principal) -> ManageResult<Actor<'a>> {
        let actor = actor(principal)?;
        if !may_administer_site(principal) {
            return Err(ManageError::Forbidden(
                "Must be a site administrator to do this".into(),
            ));
        }
        actor.need("site_admin")?;
        Ok(actor)
    }

    /// Organization `login`, if the caller owns it (or is a site admin) and holds `admin:org`.
    pub(crate) async fn org_owned_by(
        &self,
        principal: &Principal,
        login: &str,
    ) -> ManageResult<Account> {
        self.org_owned_with(principal, login, "admin:org").await
    }

    /// Organization `login`, if the caller owns it (or is a site admin) and holds `scope`.
    pub(crate) async fn org_owned_with(
        &self,
        principal: &Principal,
        login: &str,
        scope: &str,
    ) -> ManageResult<Account> {
        let actor = actor(principal)?;
        let (org, role) = self.org_with_role(&actor, login).await?;
        if !may_manage_org(principal, role) {
            return Err(ManageError::Forbidden(format!(
                "You must be an owner of `{}` to do this",
                org.login
            )));
        }
        actor.need(scope)?;
        Ok(org)
    }

    /// Organization `login` and the caller's role in it, the facts the rules about
    /// organizations take.
    async fn org_with_role(
        &self,
        actor: &Actor<'_>,
        login: &str,
    ) -> ManageResult<(Account, Option<OrgRole>)> {
        let org = self.account(login, Some(AccountKind::Organization)).await?;
        let role = self.store().membership(org.id, actor.user).await?;
        Ok((org, role))
    }

    /// Account `login` if the caller is that user or owns that organization.
    pub(crate) async fn account_administered_by(
        &self,
        principal: &Principal,
        login: &str,
    ) -> ManageResult<Account> {
        actor(principal)?;
        let account = self.account(login, None).await?;
        match account.kind {
            AccountKind::User if may_manage_user(principal, account.id) => Ok(account),
            AccountKind::User => Err(ManageError::Forbidden(format!(
                "only `{}` manages their own account",
                account.login
            ))),
            AccountKind::Organization => self.org_owned_by(principal, login).await,
        }
    }

    async fn account_with_id(&self, id: AccountId) -> ManageResult<Account> {
        self.store()
            .account_by_id(id)
            .await?
            .ok_or_else(|| ManageError::NotFound(format!("account {id} vanished")))
    }

    /// User `login` named in a request field: 422 when there is none.
    async fn user_field(
        &self,
        resource: &'static str,
        field: &'static str,
        login: &str,
    ) -> ManageResult<Account> {
        self.account(login, Some(AccountKind::User))
            .await
            .map_err(|_| {
                invalid(
                    resource,
                    field,
                    "invalid",
                    format!("there is no user named `{login}`"),
                )
            })
    }
}

fn taken(resource: &'static str, field: &'static str, value: &str) -> ManageError {
    invalid(
        resource,
        field,
        "already_exists",
        format!("`{value}` is already taken"),
    )
}

fn not_member(user: &str, org: &str) -> ManageError {
    invalid(
        "Membership",
        "username",
        "invalid",
        format!("`{user}` is not a member of `{org}`; add them to the organization first"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_follow_github_rules() {
        for ok in ["a", "acme", "Acme-Corp", "x1-2", &"a".repeat(39)] {
            assert!(valid_login(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a--b", "a_b", "a.b", &"a".repeat(40), "ä"] {
            assert!(!valid_login(bad), "{bad}");
        }
    }
}
