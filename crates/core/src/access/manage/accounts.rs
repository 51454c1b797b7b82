//! Accounts: users, organizations, memberships, SSO and the package creation policy.

use super::{ManageError, ManageResult, actor, invalid, taken, valid_login};
use crate::access::model::{AccountKind, OrgRole, PackagePolicy, Principal, Visibility};
use crate::access::rules::may_see_members;
use crate::access::service::Access;
use crate::access::store::{Account, Created, NewUser};
use crate::ports::now_millis;

impl Access {
    /// The calling user's account (`GET /user`).
    pub async fn current_user(&self, principal: &Principal) -> ManageResult<Account> {
        let actor = actor(principal)?;
        self.store()
            .account_by_id(actor.user)
            .await?
            .ok_or_else(|| ManageError::Unauthenticated("the token's user no longer exists".into()))
    }

    /// Account `login` (users and organizations are public knowledge, as on GitHub).
    pub async fn account(&self, login: &str, kind: Option<AccountKind>) -> ManageResult<Account> {
        self.store()
            .account(login)
            .await?
            .filter(|a| kind.is_none_or(|k| a.kind == k))
            .ok_or_else(|| ManageError::NotFound(format!("there is no account named `{login}`")))
    }

    /// Creates a user (site administrators, `site_admin` scope).
    pub async fn create_user_as(
        &self,
        principal: &Principal,
        user: NewUser,
    ) -> ManageResult<Account> {
        self.site_admin(principal)?;
        if !valid_login(&user.login) {
            return Err(invalid(
                "User",
                "login",
                "invalid",
                format!(
                    "login `{}` is invalid: use letters, digits and single hyphens (not first or last), at most 39 characters",
                    user.login
                ),
            ));
        }
        let id = match self.changed(self.store().create_user(&user, now_millis()).await)? {
            Created::New(id) => id,
            Created::Taken => return Err(taken("User", "login", &user.login)),
        };
        self.account_with_id(id).await
    }

    /// Creates an organization whose first owner is `admin` (site administrators).
    pub async fn create_org_as(
        &self,
        principal: &Principal,
        login: &str,
        admin: &str,
        profile_name: Option<&str>,
    ) -> ManageResult<Account> {
        self.site_admin(principal)?;
        if !valid_login(login) {
            return Err(invalid(
                "Organization",
                "login",
                "invalid",
                format!(
                    "login `{login}` is invalid: use letters, digits and single hyphens (not first or last), at most 39 characters"
                ),
            ));
        }
        let owner = self.user_field("Organization", "admin", admin).await?;
        let id = match self.changed(
            self.store()
                .create_org(login, profile_name, owner.id, now_millis())
                .await,
        )? {
            Created::New(id) => id,
            Created::Taken => return Err(taken("Organization", "login", login)),
        };
        self.account_with_id(id).await
    }

    /// Sets (or with `None` removes) `user`'s membership of `org` (org owners, `admin:org`).
    pub async fn set_membership_as(
        &self,
        principal: &Principal,
        org: &str,
        user: &str,
        role: Option<OrgRole>,
    ) -> ManageResult<(Account, Account)> {
        let org = self.org_owned_by(principal, org).await?;
        let member = self.account(user, Some(AccountKind::User)).await?;
        self.changed(self.store().set_membership(org.id, member.id, role).await)?;
        Ok((org, member))
    }

    /// Membership role of `user` in `org`, for members and owners of the organization.
    pub async fn membership_as(
        &self,
        principal: &Principal,
        org: &str,
        user: &str,
    ) -> ManageResult<(Account, Account, OrgRole)> {
        let actor = actor(principal)?;
        let org = self.account(org, Some(AccountKind::Organization)).await?;
        let member = self.account(user, Some(AccountKind::User)).await?;
        let own = self.store().membership(org.id, actor.user).await?;
        if !may_see_members(principal, own) {
            return Err(ManageError::NotFound(format!(
                "`{}` is not a member of `{}` that you can see",
                member.login, org.login
            )));
        }
        let role = self
            .store()
            .membership(org.id, member.id)
            .await?
            .ok_or_else(|| {
                ManageError::NotFound(format!(
                    "`{}` is not a member of `{}`",
                    member.login, org.login
                ))
            })?;
        Ok((org, member, role))
    }

    /// Organization `org`, if the caller manages it (its owners and site administrators,
    /// `admin:org`): what an organization's settings pages show. A member who does not manage
    /// it is refused (`Forbidden`), as the use cases that change those settings refuse them.
    pub async fn org_managed_as(&self, principal: &Principal, org: &str) -> ManageResult<Account> {
        self.org_owned_by(principal, org).await
    }

    /// Sets whether `org` requires classic tokens to be SSO-authorized (org owners).
    pub async fn set_requires_sso_as(
        &self,
        principal: &Principal,
        org: &str,
        required: bool,
    ) -> ManageResult<Account> {
        let org = self.org_owned_by(principal, org).await?;
        self.changed(self.store().set_requires_sso(org.id, required).await)?;
        self.account_with_id(org.id).await
    }

    /// Sets an account's package creation policy: the organization's owners, or the user.
    pub async fn set_package_policy_as(
        &self,
        principal: &Principal,
        account: &str,
        default_visibility: Option<Visibility>,
        member_visibilities: Option<Vec<Visibility>>,
    ) -> ManageResult<Account> {
        let account = self.account_administered_by(principal, account).await?;
        let mut policy: PackagePolicy = account.policy.clone();
        if let Some(visibility) = default_visibility {
            policy.default_visibility = visibility;
        }
        if let Some(mut visibilities) = member_visibilities {
            visibilities.sort();
            visibilities.dedup();
            policy.member_visibilities = visibilities;
        }
        self.changed(self.store().set_package_policy(account.id, &policy).await)?;
        self.account_with_id(account.id).await
    }
}
