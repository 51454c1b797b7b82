//! Listings: tags, referrers and the catalog.

use serde_json::{Value, json};

use crate::digest::Digest;
use crate::error::{RegistryError, Result};
use crate::manifest::OCI_INDEX;
use crate::name::RepoName;
use crate::ports::Referrer;

use super::Registry;

/// One page of a paginated listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The names on this page, in lexical order.
    pub items: Vec<String>,
    /// Whether more follow after the last item.
    pub more: bool,
}

impl Page {
    fn from_overfetch(mut items: Vec<String>, limit: usize) -> Page {
        let more = items.len() > limit;
        items.truncate(limit);
        Page { items, more }
    }
}

impl Registry {
    /// Tags of `repo` after `last`, at most `limit` (all when `None`).
    pub async fn list_tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Page> {
        let limit = limit.unwrap_or(usize::MAX - 1);
        let tags = self
            .meta
            .list_tags(repo, last, limit + 1)
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(repo.to_string()))?;
        Ok(Page::from_overfetch(tags, limit))
    }

    /// Repositories after `last`, at most `limit` (all when `None`).
    pub async fn catalog(&self, last: Option<&str>, limit: Option<usize>) -> Result<Page> {
        let limit = limit.unwrap_or(usize::MAX - 1);
        let names = self.meta.list_repositories(last, limit + 1).await?;
        Ok(Page::from_overfetch(names, limit))
    }

    /// The manifests of `repo` whose subject is `subject` (the records the referrers API
    /// lists), for a package page.
    pub async fn referrer_records(
        &self,
        repo: &RepoName,
        subject: &Digest,
    ) -> Result<Vec<Referrer>> {
        Ok(self.meta.list_referrers(repo, subject, None).await?)
    }

    /// The OCI image index listing manifests of `repo` whose subject is `subject`, optionally
    /// only those of `artifact_type`.
    pub async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Value> {
        let referrers = self
            .meta
            .list_referrers(repo, subject, artifact_type)
            .await?;
        if referrers.is_empty() && !self.meta.repository_exists(repo).await? {
            return Err(RegistryError::NameUnknown(repo.to_string()));
        }
        let manifests: Vec<Value> = referrers
            .into_iter()
            .map(|r| {
                let mut descriptor = json!({
                    "mediaType": r.media_type,
                    "digest": r.digest,
                    "size": r.size,
                });
                if let Some(artifact_type) = r.artifact_type {
                    descriptor["artifactType"] = Value::String(artifact_type);
                }
                if let Some(annotations) = r.annotations.and_then(|a| serde_json::from_str(&a).ok())
                {
                    descriptor["annotations"] = annotations;
                }
                descriptor
            })
            .collect();
        Ok(json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests }))
    }
}
