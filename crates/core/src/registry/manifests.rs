//! Manifests: push with validation, fetch by tag or digest, delete.

use crate::ids::VersionId;
use bytes::Bytes;

use crate::access::AccountId;
use crate::digest::{Algorithm, Digest};
use crate::error::{RegistryError, Result};
use crate::labels::{self, Labels};
use crate::manifest;
use crate::name::{Reference, RepoName};
use crate::ports::{DeleteOutcome, PutManifestOutcome, StoredManifest, now_millis};

use super::Registry;

/// What a successful manifest push stored.
#[derive(Debug, Clone)]
pub struct PushedManifest {
    /// Digest of the pushed bytes.
    pub digest: Digest,
    /// The manifest's subject, echoed in `OCI-Subject`.
    pub subject: Option<Digest>,
    /// Whether this push belongs to the package's first publish: the repository had no tag
    /// before it. (A multi-arch image arrives as several PUTs — children by digest, often in
    /// parallel, then the tagged index — and all of them are its first publish.)
    pub first_publish: bool,
    /// The digest was new to the repository: a new package version (not a re-push).
    pub created: bool,
    /// The push created the tag or moved it to this manifest.
    pub tag_moved: bool,
    /// The package version's id (stable across tag moves, deletion and restore).
    pub version_id: VersionId,
    /// The image's OCI labels (manifest annotations over config labels).
    pub labels: Labels,
}

/// How long a deleted version or package can be restored (GitHub's 30 days).
pub const RESTORE_WINDOW: crate::ports::Millis = 30 * 24 * 3_600_000;

/// Why `digest` cannot be deleted: the tagged `index` references it.
pub fn referenced_by(digest: &Digest, index: &Digest, tags: &[String]) -> String {
    format!(
        "{digest} is a platform of the multi-arch image {index} (tagged {}); deleting it would \
         break that image. Delete the index first, then this manifest",
        tags.join(", ")
    )
}

impl Registry {
    /// Validates and stores a manifest under `reference`, pushed by `pusher`. Every blob it
    /// needs and every child of an index must already be in `repo`, and its labels must be
    /// within [`labels::LIMITS`]; nothing is stored when a check fails.
    pub async fn put_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        content: Bytes,
        pusher: Option<AccountId>,
    ) -> Result<PushedManifest> {
        let algorithm = match reference {
            Reference::Digest(d) => d.algorithm(),
            Reference::Tag(_) => Algorithm::Sha256,
        };
        let mut manifest = manifest::parse(content, content_type, algorithm)?;
        if let Reference::Digest(expected) = reference
            && expected != &manifest.digest
        {
            return Err(RegistryError::DigestInvalid(format!(
                "manifest bytes hash to {}, not {expected} as in the URL",
                manifest.digest
            )));
        }
        let tag = match reference {
            Reference::Tag(tag) => Some(tag),
            Reference::Digest(_) => None,
        };
        // Two independent reads (the config blob's labels, the tag's policy) at once: each is
        // a round trip to another thread, which a push otherwise waits for in turn.
        let immutable = async {
            match tag {
                Some(tag) => self.immutable_rule(repo, tag).await,
                None => Ok(None),
            }
        };
        let (labels, immutable) =
            futures_util::future::try_join(self.image_labels(repo, &manifest.content), immutable)
                .await?;
        manifest.labels = labels;
        if let Some(message) = labels::over_limit(&manifest.labels) {
            return Err(RegistryError::ManifestInvalid(message));
        }
        manifest.pushed_by = pusher;
        manifest.tag_immutable = immutable.is_some();
        let outcome = self.meta.put_manifest(repo, &manifest, tag).await;
        self.manifests_changed();
        match outcome? {
            PutManifestOutcome::Stored {
                created,
                tag_moved,
                version_id,
                first_publish,
            } => Ok(PushedManifest {
                digest: manifest.digest,
                subject: manifest.subject,
                first_publish,
                created,
                tag_moved,
                version_id,
                labels: manifest.labels,
            }),
            PutManifestOutcome::TagImmutable(current) => {
                let (Some(rule), Some(tag)) = (immutable, tag) else {
                    return Err(RegistryError::Denied(format!(
                        "the tag points at {current} and cannot be moved"
                    )));
                };
                Err(RegistryError::Denied(
                    rule.refusal(tag.as_str(), &format!("moved from {current}")),
                ))
            }
            PutManifestOutcome::MissingChild(missing)
            | PutManifestOutcome::MissingBlob(missing) => {
                Err(RegistryError::ManifestBlobUnknown(missing))
            }
            PutManifestOutcome::BlobSizeMismatch {
                digest,
                declared,
                stored,
            } => Err(RegistryError::ManifestInvalid(format!(
                "the manifest's descriptor of blob {digest} states size {declared}, but the blob \
                 this repository holds is {stored} bytes; fix the descriptor's size (clients \
                 would refuse the blob when pulling)"
            ))),
        }
    }

    /// The manifest `reference` of `repo`. Answers NAME_UNKNOWN when the repository does not
    /// exist at all, MANIFEST_UNKNOWN when it does but holds no such manifest.
    pub async fn get_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<StoredManifest> {
        // Read before the store is asked, and kept for the insert: a write in between
        // outdates what is read.
        let cached = self
            .manifest_cache
            .as_ref()
            .map(|cache| (cache, cache.current()));
        if let Some((cache, generation)) = &cached
            && let Some(manifest) = cache.get(repo, reference, *generation)
        {
            return Ok(manifest);
        }
        let found = match reference {
            Reference::Tag(tag) => self.meta.manifest_by_tag(repo, tag).await?,
            Reference::Digest(digest) => self.meta.manifest_by_digest(repo, digest).await?,
        };
        if let (Some((cache, generation)), Some(manifest)) = (&cached, &found) {
            cache.put(repo, reference, manifest, *generation);
        }
        match found {
            Some(manifest) => Ok(manifest),
            None => Err(self.unknown_manifest(repo, reference).await),
        }
    }

    /// Deletes a manifest by digest (with every tag pointing at it; restorable for
    /// [`RESTORE_WINDOW`]), or a tag alone. A manifest a tagged index references is not
    /// deleted: the index would break (pulling it by tag fails for that platform).
    pub async fn delete_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<()> {
        let deleted = self.delete_reference(repo, reference).await;
        self.manifests_changed();
        if deleted? {
            Ok(())
        } else {
            Err(self.unknown_manifest(repo, reference).await)
        }
    }

    /// The store's half of [`Registry::delete_manifest`]: whether something was deleted.
    async fn delete_reference(&self, repo: &RepoName, reference: &Reference) -> Result<bool> {
        Ok(match reference {
            Reference::Tag(tag) => {
                self.guard_tag_delete(repo, tag).await?;
                self.meta.delete_tag(repo, tag).await?
            }
            Reference::Digest(digest) => {
                self.guard_manifest(repo, digest).await?;
                match self
                    .meta
                    .delete_manifest(repo, digest, now_millis())
                    .await?
                {
                    DeleteOutcome::Deleted => true,
                    DeleteOutcome::Missing => false,
                    DeleteOutcome::ReferencedBy { index, tags } => {
                        return Err(RegistryError::Denied(referenced_by(digest, &index, &tags)));
                    }
                }
            }
        })
    }

    pub(super) async fn unknown_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> RegistryError {
        match self.meta.repository_exists(repo).await {
            Ok(true) => RegistryError::ManifestUnknown(reference.to_string()),
            Ok(false) => RegistryError::NameUnknown(repo.to_string()),
            Err(e) => e.into(),
        }
    }
}
