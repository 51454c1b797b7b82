//! Immutable tags: the checks every path that moves or removes a tag makes first (a manifest
//! PUT by tag, a tag DELETE, a manifest DELETE by digest, a version delete). A refusal is
//! `DENIED` naming the rule and its pattern.
//!
//! The check reads the package's policies and the tag before the write, outside its
//! transaction: two pushes racing to create the same immutable tag may both pass, the second
//! moving it (what any "create if absent" check outside the store allows; pushing an
//! immutable tag twice at once is not a flow any client has).

use crate::digest::Digest;
use crate::error::{RegistryError, Result};
use crate::name::{RepoName, Tag};

use super::Registry;

impl Registry {
    /// Refuses to point immutable tag `tag` of `repo` at `digest` when it points elsewhere
    /// (pushing it anew, or pushing the same digest again, passes).
    pub(super) async fn guard_tag_move(
        &self,
        repo: &RepoName,
        tag: &Tag,
        digest: &Digest,
    ) -> Result<()> {
        let policies = self.meta.package_policies(repo).await?;
        let Some(rule) = policies.immutable_rule(tag.as_str()) else {
            return Ok(());
        };
        match self.meta.manifest_by_tag(repo, tag).await? {
            Some(current) if &current.digest != digest => Err(RegistryError::Denied(
                rule.refusal(tag.as_str(), &format!("moved from {}", current.digest)),
            )),
            _ => Ok(()),
        }
    }

    /// Refuses to delete tag `tag` of `repo` when it exists and an immutable-tag rule
    /// protects it (a missing tag answers what it always answers).
    pub(super) async fn guard_tag_delete(&self, repo: &RepoName, tag: &Tag) -> Result<()> {
        let policies = self.meta.package_policies(repo).await?;
        let Some(rule) = policies.immutable_rule(tag.as_str()) else {
            return Ok(());
        };
        match self.meta.manifest_by_tag(repo, tag).await? {
            Some(_) => Err(RegistryError::Denied(rule.refusal(tag.as_str(), "deleted"))),
            None => Ok(()),
        }
    }

    /// Refuses to delete (`what`: "deleted") any of `tags` an immutable-tag rule protects.
    pub(crate) async fn guard_tags(
        &self,
        repo: &RepoName,
        tags: &[String],
        what: &str,
    ) -> Result<()> {
        if tags.is_empty() {
            return Ok(());
        }
        let policies = self.meta.package_policies(repo).await?;
        for tag in tags {
            if let Some(rule) = policies.immutable_rule(tag) {
                return Err(RegistryError::Denied(rule.refusal(tag, what)));
            }
        }
        Ok(())
    }

    /// Refuses to delete manifest `digest` while an immutable tag points at it.
    pub(super) async fn guard_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        let policies = self.meta.package_policies(repo).await?;
        if !policies.has_immutable_tags() {
            return Ok(());
        }
        for tag in self.meta.manifest_tags(repo, digest).await? {
            if let Some(rule) = policies.immutable_rule(&tag) {
                return Err(RegistryError::Denied(rule.refusal(
                    &tag,
                    &format!("deleted, nor the manifest {digest} it points at"),
                )));
            }
        }
        Ok(())
    }
}
