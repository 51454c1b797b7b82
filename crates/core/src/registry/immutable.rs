//! Immutable tags: the checks every path that moves or removes a tag makes first (a manifest
//! PUT by tag, a tag DELETE, a manifest DELETE by digest, a version delete). A refusal is
//! `DENIED` naming the rule and its pattern.
//!
//! A push reads the package's policies first and tells the store the tag is immutable; the
//! store refuses to move it inside the write transaction, so of two pushes creating the same
//! immutable tag at once the first keeps it. The delete paths check before deleting.

use crate::digest::Digest;
use crate::error::{RegistryError, Result};
use crate::name::{RepoName, Tag};
use crate::policies::ImmutableRule;

use super::Registry;

impl Registry {
    /// The immutable-tag rule protecting `tag` of `repo`, if any: the manifest PUT passes it
    /// to the store, which refuses in its write transaction to move the tag
    /// ([`crate::ports::PutManifestOutcome::TagImmutable`]).
    pub(super) async fn immutable_rule(
        &self,
        repo: &RepoName,
        tag: &Tag,
    ) -> Result<Option<ImmutableRule>> {
        Ok(self
            .meta
            .package_policies(repo)
            .await?
            .immutable_rule(tag.as_str()))
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
