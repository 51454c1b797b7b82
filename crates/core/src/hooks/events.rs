//! Package events: which hooks an event goes to, and queueing one delivery per hook and
//! subscribed event. Called after a manifest is stored (and, for `deleted`, after a version
//! is deleted); never fails the caller: a failure to queue is logged.

use crate::ids::{InstallationId, VersionId};
use bytes::Bytes;

use super::model::{Hook, NewDelivery};
use super::payload::{PackageAction, package_payload, with_installation};
use super::service::Hooks;
use super::signing::new_guid;
use crate::access::Principal;
use crate::digest::Digest;
use crate::error::StoreError;
use crate::github::packages::{EventPackage, EventVersion};
use crate::labels::Labels;
use crate::name::RepoName;
use crate::ports::now_millis;

/// Something that happened to a package version.
#[derive(Debug, Clone)]
pub struct PackageEvent {
    /// Published, updated or deleted.
    pub action: PackageAction,
    /// The package.
    pub name: RepoName,
    /// The version's manifest digest.
    pub digest: Digest,
    /// The tag pushed (or deleted), if any.
    pub tag: Option<String>,
    /// The manifest's bytes, if known (for a deleted version, read them before deleting).
    pub manifest: Option<Bytes>,
    /// The image's labels ([`crate::registry::Registry::image_labels`]); empty if unknown.
    pub labels: Labels,
    /// Who pushed or deleted.
    pub sender: Principal,
    /// The URL clients reach Berth at (no trailing `/`), for the payload's URLs.
    pub base: String,
    /// The version's id, when the caller knows it (a deleted version is no longer stored, so
    /// pass it); otherwise looked up.
    pub version_id: Option<VersionId>,
}

impl Hooks {
    /// Queues a delivery of `event` to every active hook of the package's owner and linked
    /// repository, and of every app installed on the owner for that repository (its payload
    /// naming the `installation`), that subscribes to `package` or `registry_package` (and, for
    /// [`PackageAction::Deleted`], opted in with `deleted_events`). Never fails: errors are
    /// logged at warn. Returns how many deliveries were queued.
    pub async fn package_event(&self, event: PackageEvent) -> usize {
        match self.queue_package_event(&event).await {
            Ok(queued) => {
                if queued > 0 {
                    tracing::debug!(package = %event.name, digest = %event.digest, action = event.action.as_str(), queued, "queued webhook deliveries");
                }
                queued
            }
            Err(err) => {
                tracing::warn!(package = %event.name, digest = %event.digest, error = %err, "queueing webhook deliveries failed; the push itself succeeded");
                0
            }
        }
    }

    async fn queue_package_event(&self, event: &PackageEvent) -> Result<usize, StoreError> {
        let Some(targets) = self
            .store
            .package_event_targets(&event.name, &event.digest)
            .await?
        else {
            return Ok(0);
        };
        let facts = targets.facts;
        // Each hook with the app installation it goes through, if it is an app's.
        let mut hooks: Vec<(Hook, Option<InstallationId>)> =
            targets.hooks.into_iter().map(|h| (h, None)).collect();
        hooks.extend(
            targets
                .app_hooks
                .into_iter()
                .map(|(h, installation)| (h, Some(installation))),
        );
        hooks.retain(|(h, _)| {
            (event.action != PackageAction::Deleted || h.deleted_events)
                && (h.wants("package") || h.wants("registry_package"))
        });
        if hooks.is_empty() {
            return Ok(0);
        }
        let store = self.access.store();
        let missing = |what: &str| {
            StoreError::new(
                format!("reading the {what} of a webhook payload"),
                "it vanished",
            )
        };
        let owner = store
            .account_by_id(facts.owner)
            .await?
            .ok_or_else(|| missing("package owner"))?;
        let repository = match facts.linked_repo {
            Some(id) => match store.repo_by_id(id).await? {
                Some(repo) => {
                    let repo_owner = store
                        .account_by_id(repo.owner)
                        .await?
                        .ok_or_else(|| missing("repository owner"))?;
                    Some((repo, repo_owner))
                }
                None => None,
            },
            None => None,
        };
        let sender = self
            .sender_of(&event.sender)
            .await?
            .unwrap_or_else(|| owner.clone());
        let now = now_millis();
        let package = EventPackage {
            id: facts.package_id.0,
            name: &event.name,
            owner: &owner,
            created_at: facts.created_at,
            repository: repository.as_ref().map(|(r, o)| (r, o)),
        };
        let version = EventVersion {
            id: event
                .version_id
                .or(facts.version_id)
                .unwrap_or(VersionId(0))
                .0,
            digest: &event.digest,
            tag: event.tag.as_deref(),
            manifest: event.manifest.as_deref(),
            labels: &event.labels,
            created_at: facts.version_created_at.unwrap_or(now),
            updated_at: now,
        };
        let mut deliveries = Vec::new();
        for name in ["package", "registry_package"] {
            // GitHub's `package` `updated` payload always names its repository: a package
            // linked to none has only the `registry_package` one.
            let unlinked_update =
                event.action == PackageAction::Updated && package.repository.is_none();
            if (name == "package" && unlinked_update) || !hooks.iter().any(|(h, _)| h.wants(name)) {
                continue;
            }
            let payload =
                package_payload(name, event.action, &event.base, &package, &version, &sender);
            let text = payload.to_string();
            for (hook, installation) in hooks.iter().filter(|(h, _)| h.wants(name)) {
                deliveries.push(NewDelivery {
                    hook: hook.id,
                    guid: new_guid(),
                    event: name.into(),
                    action: Some(event.action.as_str().into()),
                    payload: match installation {
                        Some(id) => with_installation(payload.clone(), *id).to_string(),
                        None => text.clone(),
                    },
                    redelivery: false,
                    repository_id: facts.linked_repo,
                });
            }
        }
        // One hook's deliveries in the order they were queued: `package` before
        // `registry_package` for the same event.
        deliveries.sort_by_key(|d| d.hook);
        self.store.enqueue(&deliveries, now).await?;
        self.wake.notify_one();
        Ok(deliveries.len())
    }
}
