//! Package versions as the Packages API sees them: listing, deletion and restore by version
//! id, download counts, purging what was deleted long ago.

use crate::ids::VersionId;
use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

use crate::digest::Digest;
use crate::error::{RegistryError, Result};
use crate::name::RepoName;
use crate::ports::{
    DeleteOutcome, Millis, RestoreOutcome, VersionRecord, VersionState, now_millis,
};

use super::Registry;
use super::manifests::{RESTORE_WINDOW, referenced_by};

/// Manifest GETs counted in memory since the last flush, by repository, then digest (two
/// levels so that counting a known pair looks up borrowed keys and allocates nothing).
#[derive(Default)]
pub(super) struct Downloads(Mutex<HashMap<RepoName, HashMap<Digest, u64>>>);

impl Downloads {
    fn add(&self, repo: &RepoName, digest: &Digest, n: u64) {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(repo).and_then(|d| d.get_mut(digest)) {
            *count += n;
            return;
        }
        *counts
            .entry(repo.clone())
            .or_default()
            .entry(digest.clone())
            .or_insert(0) += n;
    }

    fn pending(&self, repo: &RepoName, digest: &Digest) -> u64 {
        let counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .get(repo)
            .and_then(|d| d.get(digest))
            .copied()
            .unwrap_or(0)
    }

    /// Every pending count of `repo` added up (a deleted version's too: they are few and
    /// flushed within seconds).
    fn pending_total(&self, repo: &RepoName) -> u64 {
        let counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(repo).map_or(0, |d| d.values().sum())
    }

    fn drain(&self) -> Vec<(RepoName, Digest, u64)> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .drain()
            .flat_map(|(repo, digests)| {
                digests
                    .into_iter()
                    .map(move |(digest, n)| (repo.clone(), digest, n))
            })
            .collect()
    }
}

/// A version just deleted.
#[derive(Debug, Clone)]
pub struct DeletedVersion {
    /// The version as it was.
    pub version: VersionRecord,
    /// Its manifest's bytes (read just before the deletion).
    pub manifest: Option<Bytes>,
}

/// A version the API asked to restore, and what came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Tags given back.
    pub tags: Vec<String>,
    /// Tags it had that point elsewhere now.
    pub taken: Vec<String>,
}

impl Registry {
    /// Counts one download (a manifest GET) of `digest` in `repo`: a map update in memory,
    /// written by [`Registry::flush_downloads`] off the request path.
    pub fn count_download(&self, repo: &RepoName, digest: &Digest) {
        self.downloads.add(repo, digest, 1);
    }

    /// Writes the downloads counted since the last flush (called periodically and at
    /// shutdown). Counts that fail to be written are kept for the next flush.
    pub async fn flush_downloads(&self) -> Result<()> {
        let counts = self.downloads.drain();
        if counts.is_empty() {
            return Ok(());
        }
        if let Err(err) = self.meta.add_downloads(&counts, now_millis()).await {
            for (repo, digest, n) in &counts {
                self.downloads.add(repo, digest, *n);
            }
            return Err(err.into());
        }
        Ok(())
    }

    /// Versions of `repo` in `state` (given `tagged`, only the tagged or only the untagged
    /// ones), newest first: the total, and `limit` after `offset`. Deleted ones past the
    /// restore window are left out even before the purge removes them. Download counts
    /// include those not flushed yet.
    pub async fn versions(
        &self,
        repo: &RepoName,
        state: VersionState,
        tagged: Option<bool>,
        offset: u64,
        limit: usize,
    ) -> Result<(u64, Vec<VersionRecord>)> {
        let restorable_since = now_millis() - RESTORE_WINDOW;
        let (total, mut versions) = self
            .meta
            .list_versions(repo, state, tagged, restorable_since, offset, limit)
            .await?;
        for version in &mut versions {
            version.downloads += self.downloads.pending(repo, &version.digest);
        }
        Ok((total, versions))
    }

    /// The downloads of `repo`'s live versions added up (one query), with those not
    /// flushed yet.
    pub async fn downloads(&self, repo: &RepoName) -> Result<u64> {
        Ok(self.meta.downloads(repo).await? + self.downloads.pending_total(repo))
    }

    /// Version `id` of `repo`, live or deleted (deleted ones past the restore window are
    /// gone, even before the purge removes them).
    pub async fn version(&self, repo: &RepoName, id: VersionId) -> Result<Option<VersionRecord>> {
        let now = now_millis();
        Ok(self
            .meta
            .version(repo, id)
            .await?
            .filter(|v| v.deleted_at.is_none_or(|at| at > now - RESTORE_WINDOW))
            .map(|mut v| {
                v.downloads += self.downloads.pending(repo, &v.digest);
                v
            }))
    }

    /// Deletes version `id` (restorable for 30 days). Refused (DENIED) while a tagged index
    /// references it, naming the index.
    pub async fn delete_version(&self, repo: &RepoName, id: VersionId) -> Result<DeletedVersion> {
        let version = self.live_version(repo, id).await?;
        self.guard_tags(repo, &version.tags, "deleted").await?;
        // Its bytes, for whoever reports the deletion (webhooks), while still readable.
        let manifest = self
            .meta
            .manifest_by_digest(repo, &version.digest)
            .await?
            .map(|m| m.content);
        let outcome = self
            .meta
            .delete_manifest(repo, &version.digest, now_millis())
            .await;
        self.manifests_changed();
        match outcome? {
            DeleteOutcome::Deleted => Ok(DeletedVersion { version, manifest }),
            DeleteOutcome::Missing => Err(unknown_version(repo, id)),
            DeleteOutcome::ReferencedBy { index, tags } => Err(RegistryError::Denied(
                referenced_by(&version.digest, &index, &tags),
            )),
        }
    }

    /// Restores deleted version `id` with its tags (those still free) and, for an index, its
    /// deleted platforms.
    pub async fn restore_version(&self, repo: &RepoName, id: VersionId) -> Result<Restored> {
        let version = self
            .version(repo, id)
            .await?
            .ok_or_else(|| unknown_version(repo, id))?;
        let outcome = self.meta.restore_manifest(repo, &version.digest).await;
        self.manifests_changed();
        match outcome? {
            RestoreOutcome::Restored { tags, taken } => Ok(Restored { tags, taken }),
            RestoreOutcome::NotDeleted => Err(RegistryError::Unsupported(format!(
                "version {id} of {repo} is not deleted; there is nothing to restore"
            ))),
            RestoreOutcome::Missing => Err(unknown_version(repo, id)),
        }
    }

    /// Removes for good the versions deleted more than 30 days before `now`.
    pub async fn purge_deleted_versions(&self, now: Millis) -> Result<u64> {
        let purged = self
            .meta
            .purge_deleted_manifests(now - RESTORE_WINDOW)
            .await;
        self.manifests_changed();
        Ok(purged?)
    }

    async fn live_version(&self, repo: &RepoName, id: VersionId) -> Result<VersionRecord> {
        match self.version(repo, id).await? {
            Some(v) if v.deleted_at.is_none() => Ok(v),
            _ => Err(unknown_version(repo, id)),
        }
    }
}

fn unknown_version(repo: &RepoName, id: VersionId) -> RegistryError {
    RegistryError::ManifestUnknown(format!("version {id} of {repo}"))
}
