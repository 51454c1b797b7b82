//! The services every front shares, built once by the binary: the registry, the access model,
//! the Packages API and webhooks, and the use cases that span them ("push a manifest",
//! "delete a manifest"). A front — the OCI API, the GitHub-shaped API, `berth admin`, a web
//! UI — parses a request, makes one call here, and renders what comes back.

use bytes::Bytes;

use crate::access::{Access, Linking, Principal};
use crate::error::Result;
use crate::hooks::{Hooks, PackageAction, PackageEvent};
use crate::labels::SOURCE;
use crate::name::{Reference, RepoName};
use crate::packages::Packages;
use crate::registry::{PushedManifest, Registry};

/// The services, each cheap to clone (they share their state).
#[derive(Clone)]
pub struct Services {
    /// Blobs, uploads, manifests and tags.
    pub registry: Registry,
    /// Who may do what, and the management of accounts, repositories and tokens.
    pub access: Access,
    /// The Packages API: packages and their versions.
    pub packages: Packages,
    /// Webhooks and their delivery queue.
    pub hooks: Hooks,
}

/// A manifest push as the OCI API received it.
#[derive(Debug, Clone)]
pub struct ManifestPush<'a> {
    /// Who pushes (already authorized to).
    pub pusher: &'a Principal,
    /// The repository.
    pub name: &'a RepoName,
    /// The tag or digest pushed to.
    pub reference: &'a Reference,
    /// The request's `Content-Type`.
    pub content_type: Option<&'a str>,
    /// The manifest's bytes.
    pub content: Bytes,
    /// The URL clients reach Berth at, for the webhook payloads' URLs.
    pub base: &'a str,
}

impl Services {
    /// The bundle over `registry`, `access` and `hooks`.
    pub fn new(registry: Registry, access: Access, hooks: Hooks) -> Self {
        let packages = Packages::new(access.clone(), registry.clone(), hooks.clone());
        Services {
            registry,
            access,
            packages,
            hooks,
        }
    }

    /// Pushes a manifest: stores it, links the package to the source repository its
    /// `org.opencontainers.image.source` label names, and queues the `published` (new
    /// version) or `updated` (a tag moved) webhook deliveries. Only storing can fail: the
    /// manifest is stored before the rest, so a failed link or queue is logged and the push
    /// still succeeds.
    pub async fn push_manifest(&self, push: ManifestPush<'_>) -> Result<PushedManifest> {
        let pushed = self
            .registry
            .put_manifest(
                push.name,
                push.reference,
                push.content_type,
                push.content.clone(),
                push.pusher.user(),
            )
            .await?;
        self.link_source(push.pusher, push.name, &pushed).await;
        if pushed.created || pushed.tag_moved {
            let action = if pushed.created {
                PackageAction::Published
            } else {
                PackageAction::Updated
            };
            let tag = match push.reference {
                Reference::Tag(tag) => Some(tag.to_string()),
                Reference::Digest(_) => None,
            };
            self.hooks
                .package_event(PackageEvent {
                    action,
                    name: push.name.clone(),
                    digest: pushed.digest.clone(),
                    tag,
                    manifest: Some(push.content),
                    labels: pushed.labels.clone(),
                    sender: push.pusher.clone(),
                    base: push.base.to_owned(),
                    version_id: Some(pushed.version_id),
                })
                .await;
        }
        Ok(pushed)
    }

    /// Deletes a manifest by digest (restorable for 30 days; refused while a tagged index
    /// needs it) or a tag; a deleted manifest queues the `deleted` deliveries of hooks that
    /// opted in.
    pub async fn delete_manifest(
        &self,
        deleter: &Principal,
        name: &RepoName,
        reference: &Reference,
        base: &str,
    ) -> Result<()> {
        let before = match reference {
            Reference::Digest(_) => self.registry.get_manifest(name, reference).await.ok(),
            Reference::Tag(_) => None,
        };
        self.registry.delete_manifest(name, reference).await?;
        if let Some(manifest) = before {
            let labels = self
                .registry
                .image_labels(name, &manifest.content)
                .await
                .unwrap_or_default();
            self.hooks
                .package_event(PackageEvent {
                    action: PackageAction::Deleted,
                    name: name.clone(),
                    digest: manifest.digest,
                    tag: None,
                    manifest: Some(manifest.content),
                    labels,
                    sender: deleter.clone(),
                    base: base.to_owned(),
                    version_id: None,
                })
                .await;
        }
        Ok(())
    }

    /// Links package `name` to the repository the pushed image's
    /// `org.opencontainers.image.source` names (annotation, else config label). Never fails
    /// the push: a failure is logged.
    async fn link_source(&self, pusher: &Principal, name: &RepoName, pushed: &PushedManifest) {
        let Some(source) = pushed.labels.get(SOURCE) else {
            return;
        };
        match self
            .access
            .link_source(pusher, name, source, pushed.first_publish)
            .await
        {
            Ok(Linking::Linked { repo, inherits }) => {
                tracing::info!(package = %name, %source, %repo, inherits, "linked package to its source repository");
            }
            Ok(outcome) => {
                tracing::debug!(package = %name, %source, ?outcome, "source label ignored");
            }
            Err(err) => {
                tracing::warn!(package = %name, %source, error = %err, "linking package to its source repository failed");
            }
        }
    }
}
