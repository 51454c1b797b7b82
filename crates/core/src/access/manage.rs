//! Management operations behind the `/api/v3` API: accounts, organizations, teams, source
//! repositories, package settings, tokens, apps and job tokens. Each one checks who asks
//! (a user's classic token and its scopes, the user's role) before it changes anything, and
//! answers a [`ManageError`] the HTTP layer turns into GitHub's error shapes.
//!
//! Package settings are checked by [`decide`] with [`Action::Manage`], so the rule that
//! invisible packages are not found holds here as on the registry.

use super::decide::{Decision, administers_owner, decide};
use super::model::{
    AccountId, AccountKind, Action, Credential, CredentialId, Grant, OrgRole, PackagePolicy,
    Principal, Role, Scopes, Target, Visibility,
};
use super::service::Access;
use super::store::{
    Account, AppInstallation, Created, CredentialInfo, Grantee, InstallationId, NewCredential,
    NewUser, SourceRepo, TeamId,
};
use super::token::{Secret, TokenKind, hash_secret};
use crate::error::StoreError;
use crate::name::RepoName;
use crate::ports::{Millis, now_millis};

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

/// A team as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    /// Row id.
    pub id: TeamId,
    /// URL-safe name, unique in the organization.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// The organization's login.
    pub org: String,
}

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

/// An installation token just issued to an app.
#[derive(Debug)]
pub struct InstallationToken {
    /// The secret.
    pub secret: Secret,
    /// When it expires.
    pub expires_at: Millis,
    /// The installation it acts for, narrowed to what the request asked.
    pub installation: AppInstallation,
}

/// The calling user and their classic token's scopes.
pub(crate) struct Actor<'a> {
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
        let authorized = match &self.credential.grant {
            Grant::Classic { sso_authorized, .. } => sso_authorized.contains(&account.id),
            _ => false,
        };
        if account.requires_sso && !authorized && !self.credential.site_admin {
            return Err(ManageError::Forbidden(format!(
                "the token is not authorized for `{}`, which requires SSO authorization of classic tokens, so it cannot mint a token that reaches it; authorize it (PUT /api/v3/user/tokens/{}/sso/{}) or use one that is",
                account.login, self.credential.id, account.login
            )));
        }
        Ok(())
    }

    /// Whether the calling token reaches packages through private repositories (`repo`).
    pub(crate) fn has_repo_scope(&self) -> bool {
        self.scopes.repo
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

/// Whether `name` is a valid repository name: letters, digits, `.`, `-`, `_`, at most 100.
fn valid_repo_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// A team's slug from its name: lower case, runs of other characters become one `-`.
fn slug_of(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

impl Access {
    // --- accounts ---

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
        if own.is_none() && !actor.credential.site_admin {
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

    // --- teams ---

    /// Creates team `name` in `org` with `maintainers` as its first members (org owners).
    pub async fn create_team_as(
        &self,
        principal: &Principal,
        org: &str,
        name: &str,
        maintainers: &[String],
    ) -> ManageResult<Team> {
        let org = self.org_owned_by(principal, org).await?;
        let slug = slug_of(name);
        if slug.is_empty() {
            return Err(invalid(
                "Team",
                "name",
                "invalid",
                "a team name needs at least one letter or digit",
            ));
        }
        let mut members = Vec::new();
        for login in maintainers {
            let user = self.user_field("Team", "maintainers", login).await?;
            if self.store().membership(org.id, user.id).await?.is_none() {
                return Err(not_member(&user.login, &org.login));
            }
            members.push(user.id);
        }
        let id = match self.changed(self.store().create_team(org.id, &slug, name).await)? {
            Created::New(id) => id,
            Created::Taken => return Err(taken("Team", "name", name)),
        };
        for user in members {
            self.changed(self.store().set_team_member(id, user, true).await)?;
        }
        Ok(Team {
            id,
            slug,
            name: name.to_owned(),
            org: org.login,
        })
    }

    /// Adds (`true`) or removes `user` from team `slug` of `org` (org owners).
    pub async fn set_team_member_as(
        &self,
        principal: &Principal,
        org: &str,
        slug: &str,
        user: &str,
        member: bool,
    ) -> ManageResult<(Account, TeamId)> {
        let org = self.org_owned_by(principal, org).await?;
        let team = self.team_of(&org, slug).await?;
        let user = self.account(user, Some(AccountKind::User)).await?;
        if member && self.store().membership(org.id, user.id).await?.is_none() {
            return Err(not_member(&user.login, &org.login));
        }
        self.changed(self.store().set_team_member(team, user.id, member).await)?;
        Ok((user, team))
    }

    /// Gives team `slug` of `org` a role on repository `owner/repo` of the same organization
    /// (`None` removes it; org owners).
    pub async fn set_team_repo_as(
        &self,
        principal: &Principal,
        org: &str,
        slug: &str,
        owner: &str,
        repo: &str,
        role: Option<Role>,
    ) -> ManageResult<()> {
        let org = self.org_owned_by(principal, org).await?;
        let team = self.team_of(&org, slug).await?;
        let repo = self.repo_named(owner, repo).await?;
        if repo.owner != org.id {
            return Err(invalid(
                "Team",
                "repository",
                "invalid",
                format!(
                    "a team of `{}` can only be given repositories of `{}`",
                    org.login, org.login
                ),
            ));
        }
        self.changed(self.store().set_team_repo(team, repo.id, role).await)?;
        Ok(())
    }

    // --- source repositories ---

    /// Creates repository `name` under `owner` (`None`: the calling user). Organization
    /// members may create repositories in it; a creator who is not an owner administers it.
    /// Needs the `repo` scope.
    pub async fn create_repo_as(
        &self,
        principal: &Principal,
        owner: Option<&str>,
        name: &str,
        visibility: Visibility,
    ) -> ManageResult<SourceRepo> {
        let actor = actor(principal)?;
        actor.need("repo")?;
        let owner = match owner {
            None => self.account_with_id(actor.user).await?,
            Some(login) => {
                let org = self.account(login, Some(AccountKind::Organization)).await?;
                let role = self.store().membership(org.id, actor.user).await?;
                if role.is_none() && !actor.credential.site_admin {
                    return Err(ManageError::Forbidden(format!(
                        "only members of `{}` may create repositories in it",
                        org.login
                    )));
                }
                org
            }
        };
        if owner.kind == AccountKind::User && visibility == Visibility::Internal {
            return Err(invalid(
                "Repository",
                "visibility",
                "invalid",
                "only organizations have internal repositories",
            ));
        }
        if !valid_repo_name(name) {
            return Err(invalid(
                "Repository",
                "name",
                "invalid",
                format!(
                    "repository name `{name}` is invalid: use letters, digits, `.`, `-` and `_`, at most 100 characters"
                ),
            ));
        }
        let id = match self.changed(
            self.store()
                .create_repo(owner.id, name, visibility, now_millis())
                .await,
        )? {
            Created::New(id) => id,
            Created::Taken => {
                return Err(invalid(
                    "Repository",
                    "name",
                    "custom",
                    "name already exists on this account",
                ));
            }
        };
        if owner.id != actor.user
            && self.store().repo_role(id, actor.user).await? != Some(Role::Admin)
        {
            self.changed(
                self.store()
                    .set_collaborator(id, actor.user, Some(Role::Admin))
                    .await,
            )?;
        }
        self.store()
            .repo_by_id(id)
            .await?
            .ok_or_else(|| ManageError::NotFound(format!("repository `{name}` vanished")))
    }

    /// Repository `owner/name` if the caller may see it (public and internal ones are seen
    /// by every signed-in user).
    pub async fn repo_as(
        &self,
        principal: &Principal,
        owner: &str,
        name: &str,
    ) -> ManageResult<SourceRepo> {
        let repo = self.repo_named(owner, name).await?;
        let seen = match principal.user() {
            _ if repo.visibility == Visibility::Public => true,
            Some(user) => {
                repo.visibility == Visibility::Internal
                    || self.store().repo_role(repo.id, user).await?.is_some()
                    || matches!(principal, Principal::Token(c) if c.site_admin)
            }
            None => false,
        };
        if seen {
            Ok(repo)
        } else {
            Err(repo_not_found(owner, name))
        }
    }

    /// Sets (`None`: removes) `user`'s collaborator role on `owner/name` (repository admins,
    /// `repo` scope).
    pub async fn set_collaborator_as(
        &self,
        principal: &Principal,
        owner: &str,
        name: &str,
        user: &str,
        role: Option<Role>,
    ) -> ManageResult<(SourceRepo, Account)> {
        let actor = actor(principal)?;
        let repo = self.repo_as(principal, owner, name).await?;
        actor.need("repo")?;
        let own = self.store().repo_role(repo.id, actor.user).await?;
        if own != Some(Role::Admin) && !actor.credential.site_admin {
            return Err(ManageError::Forbidden(
                "Must have admin rights to Repository.".into(),
            ));
        }
        let user = self.account(user, Some(AccountKind::User)).await?;
        self.changed(self.store().set_collaborator(repo.id, user.id, role).await)?;
        Ok((repo, user))
    }

    // --- package settings ---

    /// Sets a package's visibility (package admins). A public package stays public, as on
    /// GitHub; members who do not own the account choose among its allowed visibilities.
    pub async fn set_package_visibility_as(
        &self,
        principal: &Principal,
        name: &RepoName,
        visibility: Visibility,
    ) -> ManageResult<()> {
        let target = self.manageable(principal, name).await?;
        let package = target.package.as_ref().expect("manageable packages exist");
        if package.visibility == Visibility::Public && visibility != Visibility::Public {
            return Err(invalid(
                "Package",
                "visibility",
                "invalid",
                "a public package cannot be made private or internal again (as on GitHub); delete it and publish it anew",
            ));
        }
        let owner = target.owner.as_ref().expect("packages have owners");
        if !administers_owner(principal, &target)
            && !owner.policy.member_visibilities.contains(&visibility)
        {
            return Err(ManageError::Forbidden(format!(
                "`{}` does not let members make packages {}; ask an owner",
                owner.login,
                visibility.as_str()
            )));
        }
        self.changed(self.store().set_package_visibility(name, visibility).await)?;
        Ok(())
    }

    /// Gives a user or a team (organization packages only) a role on a package, or removes it
    /// (package admins).
    pub async fn set_package_role_as(
        &self,
        principal: &Principal,
        name: &RepoName,
        grantee: GranteeName<'_>,
        role: Option<Role>,
    ) -> ManageResult<()> {
        let target = self.manageable(principal, name).await?;
        let owner = target.owner.as_ref().expect("packages have owners");
        let grantee = match grantee {
            GranteeName::User(login) => {
                Grantee::User(self.account(login, Some(AccountKind::User)).await?.id)
            }
            GranteeName::Team(slug) => {
                if owner.kind != AccountKind::Organization {
                    return Err(invalid(
                        "Package",
                        "team",
                        "invalid",
                        "teams get roles only on organization packages",
                    ));
                }
                let org = self.account_with_id(owner.id).await?;
                Grantee::Team(self.team_of(&org, slug).await?)
            }
        };
        self.changed(self.store().set_package_role(name, grantee, role).await)?;
        Ok(())
    }

    /// Links a package to repository `repo` of the same owner (or unlinks it with `None`)
    /// and sets whether it inherits the repository's access (default: it does when newly
    /// linked). A package that does not exist yet is created, linked and inheriting, by whoever
    /// may create it: its first publish then finds it linked.
    pub async fn link_package_as(
        &self,
        principal: &Principal,
        name: &RepoName,
        repo: Option<&str>,
        inherits: Option<bool>,
    ) -> ManageResult<()> {
        actor(principal)?;
        let target = self.target(name, principal.user()).await?;
        let owner_login = name.owner();
        let repo = match repo {
            None => None,
            Some(repo_name) => {
                let found = self.repo_as(principal, owner_login, repo_name).await;
                Some(found.map_err(|_| {
                    invalid(
                        "Package",
                        "repository",
                        "invalid",
                        format!("there is no repository `{owner_login}/{repo_name}` you can see; a package links only to a repository of its own owner"),
                    )
                })?)
            }
        };
        if target.package.is_none() {
            let Some(repo) = repo else {
                return Err(package_not_found(name));
            };
            return match decide(principal, &target, Action::Push) {
                Decision::Create { visibility, .. } => {
                    self.create_package_for(principal, &target, name, visibility, Some(repo.id))
                        .await?;
                    if inherits == Some(false) {
                        self.changed(self.store().link_package(name, Some(repo.id), false).await)?;
                    }
                    Ok(())
                }
                // Whoever may not create it is told what a package they may not see answers
                // (404): the refusal to create ("cannot create packages in …") would tell
                // them the name is free, and so which private names are taken.
                _ => Err(package_not_found(name)),
            };
        }
        may_manage(principal, &target, name)?;
        let inherits = repo.is_some() && inherits.unwrap_or(true);
        self.changed(
            self.store()
                .link_package(name, repo.map(|r| r.id), inherits)
                .await,
        )?;
        Ok(())
    }

    /// Lets job tokens of repository `repo` (same owner) use a package with `role` (read or
    /// write; `None` removes it; package admins).
    pub async fn set_package_job_access_as(
        &self,
        principal: &Principal,
        name: &RepoName,
        repo: &str,
        role: Option<Role>,
    ) -> ManageResult<()> {
        self.manageable(principal, name).await?;
        if role == Some(Role::Admin) {
            return Err(invalid(
                "Package",
                "role",
                "invalid",
                "job tokens get read or write, never admin",
            ));
        }
        let owner_login = name.owner();
        let repo = self
            .repo_as(principal, owner_login, repo)
            .await
            .map_err(|_| {
                invalid(
                    "Package",
                    "repository",
                    "invalid",
                    format!("there is no repository `{owner_login}/{repo}` you can see; job access is granted to repositories of the package's owner"),
                )
            })?;
        self.changed(
            self.store()
                .set_package_job_access(name, repo.id, role)
                .await,
        )?;
        Ok(())
    }

    // --- tokens ---

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
                if scopes.site_admin && !actor.credential.site_admin {
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
                let belongs = owner.id == actor.user
                    || self
                        .store()
                        .membership(owner.id, actor.user)
                        .await?
                        .is_some();
                if !belongs && !actor.credential.site_admin {
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
        let org = self.account(org, Some(AccountKind::Organization)).await?;
        if self.store().membership(org.id, actor.user).await?.is_none() {
            return Err(not_member(&actor.credential.login, &org.login));
        }
        self.changed(self.store().authorize_sso(token.id, org.id).await)?;
        self.token_info(token.id).await
    }

    // --- apps ---

    /// Registers app `slug`, owned by the calling user or an organization they own; the
    /// secret it exchanges for installation tokens is returned once.
    pub async fn create_app_as(
        &self,
        principal: &Principal,
        owner: Option<&str>,
        slug: &str,
    ) -> ManageResult<(super::store::AppId, Secret)> {
        let actor = actor(principal)?;
        let owner = match owner {
            None => actor.user,
            Some(login) => self.account_administered_by(principal, login).await?.id,
        };
        if !valid_login(slug) {
            return Err(invalid(
                "Integration",
                "slug",
                "invalid",
                format!("app slug `{slug}` is invalid: use letters, digits and single hyphens"),
            ));
        }
        let secret = Secret::generate(TokenKind::AppSecret);
        match self.changed(
            self.store()
                .create_app(owner, slug, &secret.hash(), now_millis())
                .await,
        )? {
            Created::New(id) => Ok((id, secret)),
            Created::Taken => Err(taken("Integration", "slug", slug)),
        }
    }

    /// Installs app `slug` on `account` (the user, or an organization they own) with
    /// selected repositories (`None`: all) and a packages permission.
    pub async fn install_app_as(
        &self,
        principal: &Principal,
        slug: &str,
        account: &str,
        repositories: Option<&[String]>,
        permission: Role,
    ) -> ManageResult<AppInstallation> {
        let account = self.account_administered_by(principal, account).await?;
        let app = self
            .store()
            .app(slug)
            .await?
            .ok_or_else(|| ManageError::NotFound(format!("there is no app named `{slug}`")))?;
        if permission == Role::Admin {
            return Err(invalid(
                "Installation",
                "permissions",
                "invalid",
                "apps get packages: read or write",
            ));
        }
        let repos = match repositories {
            None => None,
            Some(names) => {
                let mut ids = Vec::new();
                for name in names {
                    let short = name.rsplit('/').next().unwrap_or(name);
                    ids.push(self.repo_named(&account.login, short).await?.id);
                }
                Some(ids)
            }
        };
        let id = self.changed(
            self.store()
                .install_app(
                    app.id,
                    account.id,
                    repos.as_deref(),
                    permission,
                    now_millis(),
                )
                .await,
        )?;
        Ok(AppInstallation {
            id,
            app: app.id,
            app_slug: app.slug,
            account: account.id,
            repositories: repos,
            permission,
        })
    }

    /// Exchanges an app's secret for an installation token (GitHub's
    /// `POST /app/installations/{id}/access_tokens`), optionally narrowed to some of the
    /// installation's repositories and a lower permission. It expires after the configured
    /// app token lifetime (one hour by default).
    pub async fn installation_token(
        &self,
        app_secret: &str,
        installation: InstallationId,
        repositories: Option<&[String]>,
        permission: Option<Role>,
    ) -> ManageResult<InstallationToken> {
        let unknown = || {
            ManageError::Unauthenticated(format!(
                "the app secret is not valid for installation {installation}"
            ))
        };
        if super::token::recognize(app_secret) != Some(TokenKind::AppSecret) {
            return Err(unknown());
        }
        let mut found = self
            .store()
            .installation_for_secret(installation, &hash_secret(app_secret))
            .await?
            .ok_or_else(unknown)?;
        if let Some(permission) = permission {
            if permission > found.permission {
                return Err(invalid(
                    "Installation",
                    "permissions",
                    "invalid",
                    "the token cannot have more permission than the installation",
                ));
            }
            found.permission = permission;
        }
        if let Some(names) = repositories {
            let account = self.account_with_id(found.account).await?;
            let mut ids = Vec::new();
            for name in names {
                let short = name.rsplit('/').next().unwrap_or(name);
                let repo = self.repo_named(&account.login, short).await?;
                if found
                    .repositories
                    .as_ref()
                    .is_some_and(|r| !r.contains(&repo.id))
                {
                    return Err(invalid(
                        "Installation",
                        "repositories",
                        "invalid",
                        format!("repository `{short}` is not selected by the installation"),
                    ));
                }
                ids.push(repo.id);
            }
            found.repositories = Some(ids);
        }
        let now = now_millis();
        let expires_at = now + self.lifetimes().app;
        let secret = Secret::generate(TokenKind::App);
        self.changed(
            self.store()
                .create_credential(&NewCredential {
                    kind: TokenKind::App,
                    hash: secret.hash(),
                    user: None,
                    note: found.app_slug.clone(),
                    grant: Grant::App {
                        account: found.account,
                        repositories: found.repositories.clone(),
                        permission: found.permission,
                    },
                    expires_at: Some(expires_at),
                    created_at: now,
                })
                .await,
        )?;
        Ok(InstallationToken {
            secret,
            expires_at,
            installation: found,
        })
    }

    // --- job tokens ---

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
        if role < Some(Role::Write) && !actor.credential.site_admin {
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

    // --- shared checks ---

    fn site_admin<'a>(&self, principal: &'a Principal) -> ManageResult<Actor<'a>> {
        let actor = actor(principal)?;
        if !actor.credential.site_admin {
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
        let actor = actor(principal)?;
        let org = self.account(login, Some(AccountKind::Organization)).await?;
        let role = self.store().membership(org.id, actor.user).await?;
        if role != Some(OrgRole::Owner) && !actor.credential.site_admin {
            return Err(ManageError::Forbidden(format!(
                "You must be an owner of `{}` to do this",
                org.login
            )));
        }
        actor.need("admin:org")?;
        Ok(org)
    }

    /// Account `login` if the caller is that user or owns that organization.
    async fn account_administered_by(
        &self,
        principal: &Principal,
        login: &str,
    ) -> ManageResult<Account> {
        let actor = actor(principal)?;
        let account = self.account(login, None).await?;
        match account.kind {
            AccountKind::User if account.id == actor.user || actor.credential.site_admin => {
                Ok(account)
            }
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

    async fn team_of(&self, org: &Account, slug: &str) -> ManageResult<TeamId> {
        self.store()
            .team(org.id, slug)
            .await?
            .ok_or_else(|| ManageError::NotFound(format!("`{}` has no team `{slug}`", org.login)))
    }

    async fn repo_named(&self, owner: &str, name: &str) -> ManageResult<SourceRepo> {
        self.store()
            .repo(owner, name)
            .await?
            .ok_or_else(|| repo_not_found(owner, name))
    }

    /// The target of package `name` if the caller administers it.
    async fn manageable(&self, principal: &Principal, name: &RepoName) -> ManageResult<Target> {
        actor(principal)?;
        let target = self.target(name, principal.user()).await?;
        may_manage(principal, &target, name)?;
        if target
            .package
            .as_ref()
            .is_some_and(|p| p.deleted_at.is_some())
        {
            // Its admins may see it (they may restore it), but its settings stay as they
            // were until it is restored.
            return Err(ManageError::Conflict(format!(
                "package `{name}` is deleted; restore it (POST …/packages/container/…/restore) before changing its settings"
            )));
        }
        Ok(target)
    }

    async fn own_token(&self, actor: &Actor<'_>, id: CredentialId) -> ManageResult<CredentialInfo> {
        self.store()
            .credential(id)
            .await?
            .filter(|t| t.user == Some(actor.user))
            .ok_or_else(|| ManageError::NotFound(format!("you have no token {id}")))
    }

    async fn token_info(&self, id: CredentialId) -> ManageResult<CredentialInfo> {
        self.store()
            .credential(id)
            .await?
            .ok_or_else(|| ManageError::NotFound(format!("token {id} vanished")))
    }
}

/// A package role's grantee as a request names it.
#[derive(Debug, Clone, Copy)]
pub enum GranteeName<'a> {
    /// A user login.
    User(&'a str),
    /// A team slug of the owning organization.
    Team(&'a str),
}

/// Whether `principal` may change the settings of the package `target` describes.
fn may_manage(principal: &Principal, target: &Target, name: &RepoName) -> ManageResult<()> {
    match decide(principal, target, Action::Manage) {
        Decision::Allow => Ok(()),
        Decision::Denied(why) => Err(ManageError::Forbidden(why)),
        Decision::Unauthenticated => Err(ManageError::Unauthenticated(
            "Requires authentication".into(),
        )),
        Decision::NotFound | Decision::Create { .. } => Err(package_not_found(name)),
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

fn unknown_owner(login: &str) -> ManageError {
    invalid(
        "Token",
        "resource_owner",
        "invalid",
        format!("`{login}` is not you or an organization you belong to"),
    )
}

fn repo_not_found(owner: &str, name: &str) -> ManageError {
    ManageError::NotFound(format!("there is no repository `{owner}/{name}`"))
}

fn package_not_found(name: &RepoName) -> ManageError {
    ManageError::NotFound(format!("there is no package `{name}`"))
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

    #[test]
    fn repository_names_follow_github_rules() {
        assert!(valid_repo_name("api.server_v2-x"));
        for bad in ["", ".", "..", "a/b", "a b", &"r".repeat(101)] {
            assert!(!valid_repo_name(bad), "{bad}");
        }
    }

    #[test]
    fn team_slugs_are_lower_case_with_single_hyphens() {
        assert_eq!(slug_of("Platform Team"), "platform-team");
        assert_eq!(slug_of("  Ops / SRE!! "), "ops-sre");
        assert_eq!(slug_of("!!"), "");
    }
}
