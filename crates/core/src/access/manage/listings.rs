//! Listings: an organization's members, teams and repositories, the caller's organizations
//! and repositories, a user's repositories. Each shows only what the caller may see, and what
//! it may not see is absent, never an error of its own (as on GitHub). The HTTP layer pages
//! what these answer.
//!
//! Membership is GitHub's "concealed" membership (Berth keeps no public one): members of the
//! organization and site administrators see it, with a classic token holding `read:org` (or
//! `write:org`, `admin:org`, which include it); everyone else sees no members and no
//! organizations, as GitHub shows them only public ones. Repositories are seen as
//! `GET /repos/{owner}/{repo}` sees them ([`may_see_repo`]).

use std::collections::HashMap;

use super::{ManageError, ManageResult, Team, actor};
use crate::access::Visibility;
use crate::access::model::{AccountId, AccountKind, Grant, OrgRole, Principal};
use crate::access::rules::{may_see_members, may_see_repo};
use crate::access::service::Access;
use crate::access::store::{Account, RepoSet, SourceRepo};

/// The scopes that let a classic token see organization memberships and teams: `read:org`
/// and the scopes that include it (GitHub's `X-Accepted-OAuth-Scopes` of those endpoints).
pub const ORG_READ_SCOPES: [&str; 3] = ["read:org", "write:org", "admin:org"];

/// The scopes that let a classic token manage a repository's webhooks, as GitHub accepts
/// them: `write:repo_hook` (included by `admin:repo_hook`) or `repo`.
pub const REPO_HOOK_SCOPES: [&str; 2] = ["write:repo_hook", "repo"];

/// Whether the caller's token lets it see memberships: a classic token holding `read:org`.
fn reads_org(principal: &Principal) -> bool {
    match principal {
        Principal::Token(credential) => match &credential.grant {
            Grant::Classic { scopes, .. } => scopes.holds("read:org"),
            _ => false,
        },
        Principal::Anonymous => false,
    }
}

/// How a user is affiliated with a repository (`GET /user/repos?affiliation=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affiliation {
    /// They own it.
    Owner,
    /// They hold a role on it, directly or through a team.
    Collaborator,
    /// An organization they belong to owns it.
    OrganizationMember,
}

/// Which repositories by visibility (`GET /user/repos?visibility=`; internal ones are
/// private to the public, as GitHub counts them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoVisibility {
    /// Every one.
    All,
    /// Public ones.
    Public,
    /// Private and internal ones.
    Private,
}

/// What `GET /user/repos` narrows the caller's repositories to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyRepos {
    /// By visibility.
    pub visibility: RepoVisibility,
    /// By affiliation: repositories with any of these.
    pub affiliations: Vec<Affiliation>,
}

impl Default for MyRepos {
    /// GitHub's defaults: every visibility, every affiliation.
    fn default() -> Self {
        MyRepos {
            visibility: RepoVisibility::All,
            affiliations: vec![
                Affiliation::Owner,
                Affiliation::Collaborator,
                Affiliation::OrganizationMember,
            ],
        }
    }
}

impl Access {
    /// The members of organization `org` the caller sees, with their roles: all of them for
    /// its members and site administrators with `read:org`, none for everyone else.
    pub async fn org_members_as(
        &self,
        principal: &Principal,
        org: &str,
    ) -> ManageResult<Vec<(Account, OrgRole)>> {
        let org = self.account(org, Some(AccountKind::Organization)).await?;
        if !self.sees_members_of(principal, org.id).await? {
            return Ok(Vec::new());
        }
        Ok(self.store().org_members(org.id).await?)
    }

    /// The organizations the caller belongs to (`GET /user/orgs`): none without `read:org`.
    pub async fn my_orgs_as(&self, principal: &Principal) -> ManageResult<Vec<Account>> {
        let actor = actor(principal)?;
        if !reads_org(principal) {
            return Ok(Vec::new());
        }
        Ok(self.store().orgs_of(actor.user).await?)
    }

    /// The teams of organization `org` (`GET /orgs/{org}/teams`): its members and site
    /// administrators, with `read:org`.
    pub async fn teams_as(&self, principal: &Principal, org: &str) -> ManageResult<Vec<Team>> {
        let actor = actor(principal)?;
        let org = self.account(org, Some(AccountKind::Organization)).await?;
        let role = self.store().membership(org.id, actor.user).await?;
        if !may_see_members(principal, role) {
            return Err(ManageError::Forbidden(format!(
                "You must be a member of `{}` to list its teams",
                org.login
            )));
        }
        actor.need_any(&ORG_READ_SCOPES)?;
        let teams = self.store().teams(org.id).await?;
        Ok(teams
            .into_iter()
            .map(|(id, slug, name)| Team {
                id,
                slug,
                name,
                org: org.login.clone(),
            })
            .collect())
    }

    /// The repositories of organization `org` the caller sees, newest first as GitHub's
    /// default (`sort=created`), with their owner.
    pub async fn org_repos_as(
        &self,
        principal: &Principal,
        org: &str,
    ) -> ManageResult<Vec<(SourceRepo, Account)>> {
        let org = self.account(org, Some(AccountKind::Organization)).await?;
        let mut repos = self
            .visible_repos(principal, RepoSet::OwnedBy(org.id))
            .await?;
        repos.sort_by_key(|(repo, _)| std::cmp::Reverse((repo.created_at, repo.id)));
        Ok(repos)
    }

    /// The public repositories of user `login` (`GET /users/{username}/repos`, which GitHub
    /// answers with public repositories only), by name.
    pub async fn user_repos_as(
        &self,
        login: &str,
    ) -> ManageResult<(Account, Vec<(SourceRepo, Account)>)> {
        let user = self.account(login, Some(AccountKind::User)).await?;
        let repos = self
            .visible_repos(&Principal::Anonymous, RepoSet::OwnedBy(user.id))
            .await?;
        Ok((user, repos))
    }

    /// The repositories the caller is affiliated with and sees (`GET /user/repos`): their
    /// own, their organizations', those they hold a role on; by full name; narrowed by
    /// `filter` as GitHub narrows them.
    pub async fn my_repos_as(
        &self,
        principal: &Principal,
        filter: MyRepos,
    ) -> ManageResult<Vec<(SourceRepo, Account)>> {
        let actor = actor(principal)?;
        let repos = self
            .visible_repos(principal, RepoSet::AffiliatedWith(actor.user))
            .await?;
        let mut member_of: HashMap<AccountId, bool> = HashMap::new();
        let mut kept = Vec::new();
        for (repo, owner) in repos {
            let wanted_visibility = match filter.visibility {
                RepoVisibility::All => true,
                RepoVisibility::Public => repo.visibility == Visibility::Public,
                RepoVisibility::Private => repo.visibility != Visibility::Public,
            };
            if !wanted_visibility {
                continue;
            }
            // Each repository has one affiliation, the closest: owned, else through the
            // organization owning it, else as a collaborator (directly or by a team).
            let affiliation = if owner.id == actor.user {
                Affiliation::Owner
            } else if owner.kind == AccountKind::Organization && {
                match member_of.get(&owner.id) {
                    Some(member) => *member,
                    None => {
                        let member = self
                            .store()
                            .membership(owner.id, actor.user)
                            .await?
                            .is_some();
                        member_of.insert(owner.id, member);
                        member
                    }
                }
            } {
                Affiliation::OrganizationMember
            } else {
                Affiliation::Collaborator
            };
            if filter.affiliations.contains(&affiliation) {
                kept.push((repo, owner));
            }
        }
        Ok(kept)
    }

    /// The repositories of `set` the caller sees, each with its owner's account.
    async fn visible_repos(
        &self,
        principal: &Principal,
        set: RepoSet,
    ) -> ManageResult<Vec<(SourceRepo, Account)>> {
        let repos = self.store().repos(set, principal.user()).await?;
        let mut owners: HashMap<AccountId, Account> = HashMap::new();
        let mut seen = Vec::new();
        for (repo, role) in repos {
            if !may_see_repo(principal, repo.visibility, role) {
                continue;
            }
            let owner = match owners.get(&repo.owner) {
                Some(owner) => owner.clone(),
                None => {
                    let owner = self.account_with_id(repo.owner).await?;
                    owners.insert(repo.owner, owner.clone());
                    owner
                }
            };
            seen.push((repo, owner));
        }
        Ok(seen)
    }

    /// Whether the caller sees the members of organization `org`.
    async fn sees_members_of(&self, principal: &Principal, org: AccountId) -> ManageResult<bool> {
        if !reads_org(principal) {
            return Ok(false);
        }
        let role = match principal.user() {
            Some(user) => self.store().membership(org, user).await?,
            None => None,
        };
        Ok(may_see_members(principal, role))
    }

    /// Organization `login`, if the caller owns it (or is a site administrator) and its
    /// classic token holds `admin:org_hook`: who manages an organization's webhooks, as
    /// GitHub decides it (`admin:org` does not include `admin:org_hook`).
    pub async fn org_hooks_owned_by(
        &self,
        principal: &Principal,
        login: &str,
    ) -> ManageResult<Account> {
        self.org_owned_with(principal, login, "admin:org_hook")
            .await
    }

    /// Refuses unless the caller's classic token holds a scope that manages repository
    /// webhooks ([`REPO_HOOK_SCOPES`]).
    pub fn need_repo_hook_scope(&self, principal: &Principal) -> ManageResult<()> {
        actor(principal)?.need_any(&REPO_HOOK_SCOPES)
    }
}
