//! Package settings: visibility, roles, the link to a source repository, job access.

use super::{ManageError, ManageResult, actor, invalid};
use crate::access::decide::{Decision, decide};
use crate::access::model::{AccountKind, Action, Principal, Role, Target, Visibility};
use crate::access::rules::may_choose_package_visibility;
use crate::access::service::Access;
use crate::access::store::{Grantee, PackageGrant};
use crate::name::RepoName;
use crate::ports::Millis;

/// What a package's settings page shows: its visibility, its own roles, the linked repository
/// and whether access is inherited from it, the repositories whose job tokens may use it.
#[derive(Debug, Clone)]
pub struct PackageSettings {
    /// Its visibility.
    pub visibility: Visibility,
    /// Users' and teams' roles on it, users first.
    pub grants: Vec<PackageGrant>,
    /// The linked repository's name (without the owner).
    pub linked: Option<String>,
    /// Whether access is inherited from the linked repository.
    pub inherits: bool,
    /// Repositories (names without the owner) whose job tokens may use it, with their role.
    pub job_access: Vec<(String, Role)>,
    /// When it was deleted (restorable meanwhile).
    pub deleted_at: Option<Millis>,
}

/// A package role's grantee as a request names it.
#[derive(Debug, Clone, Copy)]
pub enum GranteeName<'a> {
    /// A user login.
    User(&'a str),
    /// A team slug of the owning organization.
    Team(&'a str),
}

impl Access {
    /// The settings of package `name` (package admins; a deleted package's too, so its
    /// admins can restore it). Who may not see it gets `NotFound`, who sees it but is no admin
    /// `Forbidden`.
    pub async fn package_settings_as(
        &self,
        principal: &Principal,
        name: &RepoName,
    ) -> ManageResult<PackageSettings> {
        actor(principal)?;
        let target = self.target(name, principal.user()).await?;
        may_manage(principal, &target, name)?;
        let package = target
            .package
            .as_ref()
            .ok_or_else(|| package_not_found(name))?;
        let repo_name = |id| async move {
            Ok::<_, ManageError>(self.store().repo_by_id(id).await?.map(|repo| repo.name))
        };
        let linked = match &package.linked {
            Some(linked) => repo_name(linked.id).await?,
            None => None,
        };
        let mut job_access = Vec::with_capacity(package.job_access.len());
        for (repo, role) in &package.job_access {
            if let Some(repo) = repo_name(*repo).await? {
                job_access.push((repo, *role));
            }
        }
        job_access.sort();
        Ok(PackageSettings {
            visibility: package.visibility,
            grants: self.store().package_grants(name).await?,
            linked,
            inherits: package.inherits,
            job_access,
            deleted_at: package.deleted_at,
        })
    }

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
        if !may_choose_package_visibility(principal, &target, visibility) {
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

fn package_not_found(name: &RepoName) -> ManageError {
    ManageError::NotFound(format!("there is no package `{name}`"))
}
