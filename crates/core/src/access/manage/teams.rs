//! Teams of an organization: creating them, their members, their repositories.

use super::{ManageError, ManageResult, invalid, not_member, taken};
use crate::access::model::{AccountKind, Principal, Role};
use crate::access::service::Access;
use crate::access::store::{Account, Created, TeamId};

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

    pub(super) async fn team_of(&self, org: &Account, slug: &str) -> ManageResult<TeamId> {
        self.store()
            .team(org.id, slug)
            .await?
            .ok_or_else(|| ManageError::NotFound(format!("`{}` has no team `{slug}`", org.login)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_slugs_are_lower_case_with_single_hyphens() {
        assert_eq!(slug_of("Platform Team"), "platform-team");
        assert_eq!(slug_of("  Ops / SRE!! "), "ops-sre");
        assert_eq!(slug_of("!!"), "");
    }
}
