//! Source repositories: creating them, seeing them, their collaborators.

use super::{ManageError, ManageResult, actor, invalid};
use crate::access::model::{AccountKind, Principal, Role, Visibility};
use crate::access::rules::{may_create_repo_in, may_manage_repo, may_see_repo};
use crate::access::service::Access;
use crate::access::store::{Account, Created, SourceRepo};
use crate::ports::now_millis;

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

impl Access {
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
                let (org, role) = self.org_with_role(&actor, login).await?;
                if !may_create_repo_in(principal, role) {
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
        // The role is read only where it decides: a private repository, a caller with a user.
        let role = match principal.user() {
            Some(user) if repo.visibility == Visibility::Private => {
                self.store().repo_role(repo.id, user).await?
            }
            _ => None,
        };
        if may_see_repo(principal, repo.visibility, role) {
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
        if !may_manage_repo(principal, own) {
            return Err(ManageError::Forbidden(
                "Must have admin rights to Repository.".into(),
            ));
        }
        let user = self.account(user, Some(AccountKind::User)).await?;
        self.changed(self.store().set_collaborator(repo.id, user.id, role).await)?;
        Ok((repo, user))
    }

    pub(super) async fn repo_named(&self, owner: &str, name: &str) -> ManageResult<SourceRepo> {
        self.store()
            .repo(owner, name)
            .await?
            .ok_or_else(|| repo_not_found(owner, name))
    }
}

fn repo_not_found(owner: &str, name: &str) -> ManageError {
    ManageError::NotFound(format!("there is no repository `{owner}/{name}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_github_rules() {
        assert!(valid_repo_name("api.server_v2-x"));
        for bad in ["", ".", "..", "a/b", "a b", &"r".repeat(101)] {
            assert!(!valid_repo_name(bad), "{bad}");
        }
    }
}
