//! The operator's use cases, behind `berth admin`: whoever runs commands on the machine owns
//! the instance, so there is no caller to check — but the same names are looked up, the same
//! conflicts answered and every write goes through [`Access::changed`], as for the API.
//! Each command is one call here; a site administrator's web pages can make the same calls
//! after checking [`super::rules::may_administer_site`].

use super::manage::{ManageError, ManageResult};
use super::model::{AccountId, AccountKind, CredentialId, OrgRole, Principal, Role, Visibility};
use super::service::Access;
use super::store::{Account, Created, CredentialInfo, NewUser, Resolved, SourceRepo};
use super::token::{Secret, hash_secret};
use crate::ports::{Millis, now_millis};

impl Access {
    /// Creates a user; with `token`, also a classic token `(scopes, expiry)` for them, whose
    /// secret is returned (shown once).
    pub async fn bootstrap_user(
        &self,
        user: &NewUser,
        token: Option<(super::model::Scopes, Option<Millis>)>,
    ) -> ManageResult<(AccountId, Option<Secret>)> {
        let id = match self.changed(self.store().create_user(user, now_millis()).await)? {
            Created::New(id) => id,
            Created::Taken => return Err(taken(&user.login)),
        };
        let secret = match token {
            Some((scopes, expires)) => Some(
                self.create_classic_token(id, "bootstrap token", scopes, expires)
                    .await?
                    .1,
            ),
            None => None,
        };
        Ok((id, secret))
    }

    /// Creates organization `login` whose first owner is user `owner`.
    pub async fn bootstrap_org(&self, login: &str, owner: &str) -> ManageResult<AccountId> {
        let owner = self.user_named(owner).await?;
        match self.changed(
            self.store()
                .create_org(login, None, owner.id, now_millis())
                .await,
        )? {
            Created::New(id) => Ok(id),
            Created::Taken => Err(taken(login)),
        }
    }

    /// Makes user `user` a member (or owner) of organization `org`.
    pub async fn add_member(&self, org: &str, user: &str, role: OrgRole) -> ManageResult<()> {
        let org = match self.store().account(org).await? {
            Some(account) if account.kind == AccountKind::Organization => account,
            _ => {
                return Err(ManageError::NotFound(format!(
                    "there is no organization `{org}`"
                )));
            }
        };
        let user = self.user_named(user).await?;
        self.changed(
            self.store()
                .set_membership(org.id, user.id, Some(role))
                .await,
        )?;
        Ok(())
    }

    /// Creates repository `name` of account `owner`.
    pub async fn bootstrap_repo(
        &self,
        owner: &str,
        name: &str,
        visibility: Visibility,
    ) -> ManageResult<SourceRepo> {
        let Some(account) = self.store().account(owner).await? else {
            return Err(ManageError::NotFound(format!(
                "there is no user or organization `{owner}`"
            )));
        };
        match self.changed(
            self.store()
                .create_repo(account.id, name, visibility, now_millis())
                .await,
        )? {
            Created::New(id) => self
                .store()
                .repo_by_id(id)
                .await?
                .ok_or_else(|| ManageError::NotFound(format!("repository {id} vanished"))),
            Created::Taken => Err(ManageError::Invalid {
                resource: "Repository",
                field: "name",
                code: "already_exists",
                message: format!("`{owner}` already has a repository `{name}`"),
            }),
        }
    }

    /// Gives user `user` the `role` on repository `owner/name`.
    pub async fn add_collaborator(
        &self,
        owner: &str,
        name: &str,
        user: &str,
        role: Role,
    ) -> ManageResult<SourceRepo> {
        let Some(repo) = self.store().repo(owner, name).await? else {
            return Err(ManageError::NotFound(format!(
                "there is no repository `{owner}/{name}`"
            )));
        };
        let user = self.user_named(user).await?;
        self.changed(
            self.store()
                .set_collaborator(repo.id, user.id, Some(role))
                .await,
        )?;
        Ok(repo)
    }

    /// A classic token for user `login` with `scopes`, expiring at `expires` if given; the
    /// secret is returned (shown once).
    pub async fn bootstrap_token(
        &self,
        login: &str,
        note: &str,
        scopes: super::model::Scopes,
        expires: Option<Millis>,
    ) -> ManageResult<Secret> {
        let user = self.user_named(login).await?;
        Ok(self
            .create_classic_token(user.id, note, scopes, expires)
            .await?
            .1)
    }

    /// Sets user `login`'s password to the Argon2 PHC string `hash` (a reset: no current
    /// password asked; their web sessions go on).
    pub async fn set_password(&self, login: &str, hash: &str) -> ManageResult<()> {
        let user = self.user_named(login).await?;
        if !self.store().set_password_hash(user.id, hash).await? {
            return Err(ManageError::NotFound(format!("no user `{login}`")));
        }
        Ok(())
    }

    /// User `login`'s credentials, newest first.
    pub async fn tokens_of(&self, login: &str) -> ManageResult<Vec<CredentialInfo>> {
        let user = self.user_named(login).await?;
        Ok(self.store().list_credentials(user.id).await?)
    }

    /// Revokes the token whose secret is `secret`.
    pub async fn revoke_secret(&self, secret: &str) -> ManageResult<CredentialId> {
        let now = now_millis();
        let id = match self
            .store()
            .resolve_secret(&hash_secret(secret.trim()), now)
            .await?
        {
            Resolved::Valid(Principal::Token(credential)) => credential.id,
            Resolved::Revoked => {
                return Err(ManageError::Conflict("the token is already revoked".into()));
            }
            Resolved::Expired(_) => {
                return Err(ManageError::Conflict(
                    "the token has expired; nothing to revoke".into(),
                ));
            }
            _ => {
                return Err(ManageError::NotFound(
                    "no such token on this instance".into(),
                ));
            }
        };
        self.changed(self.store().revoke_credential(id, now).await)?;
        Ok(id)
    }

    /// The user `login` (not an organization).
    async fn user_named(&self, login: &str) -> ManageResult<Account> {
        match self.store().account(login).await? {
            Some(account) if account.kind == AccountKind::User => Ok(account),
            Some(_) => Err(ManageError::Invalid {
                resource: "User",
                field: "login",
                code: "invalid",
                message: format!("`{login}` is an organization, not a user"),
            }),
            None => Err(ManageError::NotFound(format!("there is no user `{login}`"))),
        }
    }
}

fn taken(login: &str) -> ManageError {
    ManageError::Invalid {
        resource: "User",
        field: "login",
        code: "already_exists",
        message: format!("the login `{login}` is taken"),
    }
}
