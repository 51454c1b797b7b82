//! Linking a package to its source repository from the source URL a pushed image carries
//! (`org.opencontainers.image.source`), as GHCR does.
//!
//! A package links to a repository of the same owner on the configured [`Forge`]; a package
//! linked before its first publish inherits the repository's access, one linked later does not
//! (it keeps its own roles, as when a published package is connected by hand on GitHub), and
//! only when the pusher administers the package: a link lets the repository's job tokens, and
//! app or fine-grained tokens selecting the repository, reach the package, which on GitHub
//! only a package admin may allow. A package already linked stays as it is. Calls the [`AccessStore`] port only; the HTTP layer
//! calls this after a manifest push succeeded and never fails the push on its account.
//!
//! [`Forge`]: super::forge::Forge
//! [`AccessStore`]: super::store::AccessStore

use super::decide::{Decision, decide};
use super::model::{Action, Principal, RepoId};
use super::service::Access;
use crate::name::RepoName;
use crate::ports::StoreResult;

/// What [`Access::link_source`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linking {
    /// The package is now linked to `repo`.
    Linked {
        /// The repository.
        repo: RepoId,
        /// Whether it inherits the repository's access (linked at its first publish).
        inherits: bool,
    },
    /// The package was linked already; it stays as it is.
    AlreadyLinked,
    /// The URL is not `<forge>/<owner>/<repository>` of the configured forge.
    NotOnForge,
    /// The URL names a repository of another owner than the package's.
    OtherOwner,
    /// The forge has no such repository here.
    UnknownRepository,
    /// There is no such package (nothing to link).
    NoPackage,
    /// The package was published before and the pusher does not administer it.
    NotAdmin,
}

impl Access {
    /// Links package `name` to the repository `source` names, if that is a repository of the
    /// package's owner on the configured forge and the package is not linked yet. With
    /// `first_publish` (nothing was published in the package before this push) the package
    /// inherits the repository's access; otherwise it keeps its own, and `principal` must
    /// administer the package.
    pub async fn link_source(
        &self,
        principal: &Principal,
        name: &RepoName,
        source: &str,
        first_publish: bool,
    ) -> StoreResult<Linking> {
        let Some(source) = self.forge.repository(source) else {
            return Ok(Linking::NotOnForge);
        };
        if !source.owner.eq_ignore_ascii_case(name.owner()) {
            return Ok(Linking::OtherOwner);
        }
        let target = self.target(name, principal.user()).await?;
        if !first_publish && decide(principal, &target, Action::Manage) != Decision::Allow {
            return Ok(Linking::NotAdmin);
        }
        let (Some(package), Some(owner)) = (target.package, target.owner) else {
            return Ok(Linking::NoPackage);
        };
        if package.linked.is_some() {
            return Ok(Linking::AlreadyLinked);
        }
        let repo = match self.store.repo(&owner.login, &source.name).await? {
            Some(repo) if repo.owner == owner.id => repo,
            _ => return Ok(Linking::UnknownRepository),
        };
        if !self.changed(
            self.store
                .link_unlinked_package(name, repo.id, first_publish)
                .await,
        )? {
            // Linked by a concurrent push meanwhile (or deleted): the first link stays.
            return Ok(Linking::AlreadyLinked);
        }
        Ok(Linking::Linked {
            repo: repo.id,
            inherits: first_publish,
        })
    }
}
