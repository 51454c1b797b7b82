//! Tokens: a user's personal access tokens (classic and fine-grained), their SSO
//! authorization, and job tokens of a repository.

use super::{Actor, ManageError, ManageResult, actor, invalid, not_member};
use crate::access::model::{CredentialId, Grant, Principal, Role, Scopes};
use crate::access::rules::{
    may_authorize_sso_for, may_hold_scopes, may_manage_token, may_mint_token_for, may_run_jobs_of,
};
use crate::access::service::Access;
use crate::access::store::{CredentialInfo, NewCredential, SourceRepo};
use crate::access::token::{Secret, TokenKind};
use crate::name::RepoName;
use crate::ports::{Millis, now_millis};

/// A token to create for the calling user.
#[derive(Debug, Clone)]
pub enum TokenRequest {
    /// A classic personal access token.
    Classic {
        /// What it is for.
        note: String,
        /// Its scopes (at most the calling token's).
        scopes: Scopes,
        /// Expiry; `None` never.
        expires_at: Option<Millis>,
    },
    /// A fine-grained token.
    FineGrained {
        /// What it is for.
        note: String,
        /// The one account whose packages it reaches: the user or one of their organizations.
        resource_owner: String,
        /// Repository names (of the resource owner) whose linked packages it reaches.
        repositories: Vec<String>,
        /// Package names it reaches (with or without the owner's prefix).
        packages: Vec<String>,
        /// `packages: read` or `packages: write`.
        permission: Role,
        /// Expiry; `None` never.
        expires_at: Option<Millis>,
    },
}

/// A token just created: its listing and its secret, shown once.
#[derive(Debug)]
pub struct NewToken {
    /// What the token is, as listed.
    pub info: CredentialInfo,
    /// The secret.
    pub secret: Secret,
}

impl Access {
    /// Creates a token for the calling user. A classic token gets at most the calling
    /// token's scopes; a fine-grained token reaches one account the user belongs to.
    pub async fn create_token_as(
        &self,
        principal: &Principal,
        request: TokenRequest,
    ) -> ManageResult<NewToken> {
        let actor = actor(principal)?;
        let now = now_millis();
        if let TokenRequest::Classic { expires_at, .. }
        | TokenRequest::FineGrained { expires_at, .. } = &request
            && expires_at.is_some_and(|at| at <= now)
        {
            return Err(invalid(
                "Token",
                "expires_at",
                "invalid",
                "the expiry is in the past",
            ));
        }
        let (kind, note, grant, expires_at) = match request {
            TokenRequest::Classic {
                note,
                scopes,
                expires_at,
            } => {
                if !actor.scopes.covers(&scopes) {
                    return Err(ManageError::Forbidden(format!(
                        "a token can create tokens with at most its own scopes ({}); asked for {}",
                        actor.scopes, scopes
                    )));
                }
                if !may_hold_scopes(principal, &scopes) {
                    return Err(ManageError::Forbidden(
                        "only site administrators may hold the site_admin scope".into(),
                    ));
                }
                let grant = Grant::Classic {
                    scopes,
                    sso_authorized: Vec::new(),
                };
                (TokenKind::Classic, note, grant, expires_at)
            }
            TokenRequest::FineGrained {
                note,
                resource_owner,
                repositories,
                packages,
                permission,
                expires_at,
            } => {
                if permission == Role::Admin {
                    return Err(invalid(
                        "Token",
                        "permissions",
                        "invalid",
                        "fine-grained tokens have packages: read or write",
                    ));
                }
                actor.need(if permission == Role::Write {
                    "write:packages"
                } else {
                    "read:packages"
                })?;
                let owner = self
                    .account(&resource_owner, None)
                    .await
                    .map_err(|_| unknown_owner(&resource_owner))?;
                // The membership is read only when the owner is not the caller.
                let role = if owner.id == actor.user {
                    None
                } else {
                    self.store().membership(owner.id, actor.user).await?
                };
                if !may_mint_token_for(principal, owner.id, role) {
                    return Err(unknown_owner(&resource_owner));
                }
                // SSO authorization is asked of classic tokens only; a fine-grained token
                // names its owner instead, so it is asked here, of the token minting it.
                actor.need_sso_for(&owner)?;
                let mut repos = Vec::new();
                for repo in &repositories {
                    let short = repo.rsplit('/').next().unwrap_or(repo);
                    let found =
                        self.repo_as(principal, &owner.login, short)
                            .await
                            .map_err(|_| {
                                invalid(
                                    "Token",
                                    "repositories",
                                    "invalid",
                                    format!(
                                        "there is no repository `{}/{short}` you can see",
                                        owner.login
                                    ),
                                )
                            })?;
                    repos.push(found.id);
                }
                let mut names = Vec::new();
                for package in &packages {
                    let full = if package
                        .to_ascii_lowercase()
                        .starts_with(&format!("{}/", owner.login.to_ascii_lowercase()))
                    {
                        package.clone()
                    } else {
                        format!("{}/{package}", owner.login.to_ascii_lowercase())
                    };
                    let parsed: RepoName = full.parse().map_err(|e: crate::name::NameError| {
                        invalid("Token", "packages", "invalid", e.to_string())
                    })?;
                    names.push(parsed.as_str().to_owned());
                }
                if repos.is_empty() && names.is_empty() {
                    return Err(invalid(
                        "Token",
                        "packages",
                        "missing_field",
                        "select at least one package or repository",
                    ));
                }
                // A token never reaches further than the one minting it: without `repo`, the
                // minting token reaches nothing through private repositories, so neither does
                // this one.
                let grant = Grant::FineGrained {
                    owner: owner.id,
                    packages: names,
                    repositories: repos,
                    permission,
                    private_repositories: actor.has_repo_scope(),
                };
                (TokenKind::FineGrained, note, grant, expires_at)
            }
        };
        let secret = Secret::generate(kind);
        let id = self.changed(
            self.store()
                .create_credential(&NewCredential {
                    kind,
                    hash: secret.hash(),
                    user: Some(actor.user),
                    note,
                    grant,
                    expires_at,
                    created_at: now,
                })
                .await,
        )?;
        Ok(NewToken {
            info: self.token_info(id).await?,
            secret,
        })
    }

    /// The calling user's tokens, newest first.
    pub async fn list_tokens_as(&self, principal: &Principal) -> ManageResult<Vec<CredentialInfo>> {
        let actor = actor(principal)?;
        Ok(self.store().list_credentials(actor.user).await?)
    }

    /// Revokes one of the calling user's tokens.
    pub async fn revoke_token_as(
        &self,
        principal: &Principal,
        id: CredentialId,
    ) -> ManageResult<()> {
        let actor = actor(principal)?;
        let token = self.own_token(&actor, id).await?;
        self.changed(self.store().revoke_credential(token.id, now_millis()).await)?;
        Ok(())
    }

    /// Authorizes one of the calling user's classic tokens for SSO organization `org`, of
    /// which the user is a member.
    pub async fn authorize_token_sso_as(
        &self,
        principal: &Principal,
        id: CredentialId,
        org: &str,
    ) -> ManageResult<CredentialInfo> {
        let actor = actor(principal)?;
        let token = self.own_token(&actor, id).await?;
        if token.kind != TokenKind::Classic {
            return Err(invalid(
                "Token",
                "id",
                "invalid",
                "only classic tokens are authorized for SSO; fine-grained tokens name their owner",
            ));
        }
        let (org, role) = self.org_with_role(&actor, org).await?;
        if !may_authorize_sso_for(role) {
            return Err(not_member(&actor.credential.login, &org.login));
        }
        self.changed(self.store().authorize_sso(token.id, org.id).await)?;
        self.token_info(token.id).await
    }

    /// Mints a job token for repository `owner/name` (the `GITHUB_TOKEN` analogue): callers
    /// with write access to the repository (`repo` scope) run its jobs. It lives for
    /// `lifetime` (capped at the configured job token lifetime).
    pub async fn create_job_token_as(
        &self,
        principal: &Principal,
        owner: &str,
        name: &str,
        permission: Role,
        lifetime: Option<Millis>,
    ) -> ManageResult<(Secret, Millis, SourceRepo)> {
        let actor = actor(principal)?;
        let repo = self.repo_as(principal, owner, name).await?;
        actor.need("repo")?;
        if permission == Role::Admin {
            return Err(invalid(
                "JobToken",
                "permissions",
                "invalid",
                "job tokens have packages: read or write",
            ));
        }
        let role = self.store().repo_role(repo.id, actor.user).await?;
        if !may_run_jobs_of(principal, role) {
            return Err(ManageError::Forbidden(
                "only users with write access to the repository run its jobs".into(),
            ));
        }
        // The job token reaches the owner's packages without asking for SSO authorization.
        actor.need_sso_for(&self.account_with_id(repo.owner).await?)?;
        let max = self.lifetimes().job;
        let lifetime = lifetime.unwrap_or(max).clamp(1, max);
        let now = now_millis();
        let secret = Secret::generate(TokenKind::Job);
        self.changed(
            self.store()
                .create_credential(&NewCredential {
                    kind: TokenKind::Job,
                    hash: secret.hash(),
                    user: None,
                    note: format!("{}/{}", repo.owner_login, repo.name),
                    grant: Grant::Job {
                        repository: repo.id,
                        owner: repo.owner,
                        permission,
                    },
                    expires_at: Some(now + lifetime),
                    created_at: now,
                })
                .await,
        )?;
        Ok((secret, now + lifetime, repo))
    }

    async fn own_token(&self, actor: &Actor<'_>, id: CredentialId) -> ManageResult<CredentialInfo> {
        self.store()
            .credential(id)
            .await?
            .filter(|t| may_manage_token(actor.principal, t.user))
            .ok_or_else(|| ManageError::NotFound(format!("you have no token {id}")))
    }

    async fn token_info(&self, id: CredentialId) -> ManageResult<CredentialInfo> {
        self.store()
            .credential(id)
            .await?
            .ok_or_else(|| ManageError::NotFound(format!("token {id} vanished")))
    }
}

fn unknown_owner(login: &str) -> ManageError {
    invalid(
        "Token",
        "resource_owner",
        "invalid",
        format!("`{login}` is not you or an organization you belong to"),
    )
}
