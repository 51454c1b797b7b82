//! [`MetadataStore`] for [`SqliteMetadataStore`]: each call maps to one query method of the
//! area modules, inside a debug span naming its repository and digest.

use async_trait::async_trait;
use berth_core::digest::Digest;
use berth_core::name::{RepoName, Tag};
use berth_core::ports::{
    DeleteOutcome, Lease, MetadataStore, Millis, NewManifest, PutManifestOutcome, Referrer,
    RestoreOutcome, StoreResult, StoredManifest, UploadSession, VersionRecord, VersionState,
};
use tracing::instrument;

use crate::store::SqliteMetadataStore;

#[async_trait]
impl MetadataStore for SqliteMetadataStore {
    #[instrument(level = "debug", skip(self), fields(%repo, %digest))]
    async fn linked_blob_size(&self, repo: &RepoName, digest: &Digest) -> StoreResult<Option<u64>> {
        self.blob_size(repo.as_str(), digest).await
    }

    #[instrument(level = "debug", skip(self), fields(%repo, %digest))]
    async fn link_blob(&self, repo: &RepoName, digest: &Digest, size: u64) -> StoreResult<()> {
        self.link(repo.as_str(), digest, size).await
    }

    #[instrument(level = "debug", skip(self), fields(%repo, %digest))]
    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> StoreResult<bool> {
        self.unlink(repo.as_str(), digest).await
    }

    #[instrument(level = "debug", skip_all, fields(repo = %session.repo, id = %session.id))]
    async fn create_upload(&self, session: &UploadSession) -> StoreResult<()> {
        self.insert_upload(session).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn stale_uploads(
        &self,
        started_before: Millis,
        empty_started_before: Millis,
        now: Millis,
        limit: usize,
    ) -> StoreResult<Vec<UploadSession>> {
        self.stale_sessions(started_before, empty_started_before, now, limit)
            .await
    }

    #[instrument(level = "debug", skip(self, token), fields(%digest))]
    async fn mark_upload_verified(
        &self,
        id: &str,
        token: &str,
        digest: &Digest,
        size: u64,
    ) -> StoreResult<()> {
        self.mark_verified(id, token, digest, size).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn uploads_to_check(&self, now: Millis, limit: usize) -> StoreResult<Vec<UploadSession>> {
        self.sessions_to_check(now, limit).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn owner_uploads(&self, owner: &str) -> StoreResult<(u64, u64)> {
        self.owner_sessions(owner).await
    }

    #[instrument(level = "debug", skip(self), fields(%repo))]
    async fn get_upload(&self, repo: &RepoName, id: &str) -> StoreResult<Option<UploadSession>> {
        self.read_upload(repo, id).await
    }

    #[instrument(level = "debug", skip(self, token), fields(%repo))]
    async fn lease_upload(
        &self,
        repo: &RepoName,
        id: &str,
        token: &str,
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<Lease> {
        self.take_lease(repo, id, token, now, lease_until).await
    }

    #[instrument(level = "debug", skip(self, token))]
    async fn renew_upload_lease(
        &self,
        id: &str,
        token: &str,
        lease_until: Millis,
    ) -> StoreResult<()> {
        self.renew_lease(id, token, lease_until).await
    }

    #[instrument(level = "debug", skip(self, token, hash_state))]
    async fn advance_upload(
        &self,
        id: &str,
        token: &str,
        offset: u64,
        hash_state: &[u8],
    ) -> StoreResult<()> {
        self.record_progress(id, token, offset, hash_state).await
    }

    #[instrument(level = "debug", skip(self, token))]
    async fn release_upload(&self, id: &str, token: &str) -> StoreResult<()> {
        self.release_lease(id, token).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn delete_upload(&self, id: &str) -> StoreResult<bool> {
        self.remove_upload(id).await
    }

    #[instrument(level = "debug", skip(self), fields(%repo, %digest))]
    async fn complete_upload(
        &self,
        id: Option<&str>,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
    ) -> StoreResult<()> {
        self.finish_upload(id, repo, digest, size).await
    }

    #[instrument(level = "debug", skip(self, manifest), fields(%repo, digest = %manifest.digest, ?tag))]
    async fn put_manifest(
        &self,
        repo: &RepoName,
        manifest: &NewManifest,
        tag: Option<&Tag>,
    ) -> StoreResult<PutManifestOutcome> {
        self.store_manifest(repo, manifest, tag).await
    }

    #[instrument(level = "debug", skip(self), fields(%repo, %tag))]
    async fn manifest_by_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
    ) -> StoreResult<Option<StoredManifest>> {
        self.tagged_manifest(repo, tag).await
    }

    #[instrument(level = "debug", skip(self), fields(%repo, %digest))]
    async fn manifest_by_digest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> StoreResult<Option<StoredManifest>> {
        self.manifest(repo, digest).await
    }

    #[instrument(level = "debug", skip(self), fields(%repo, %digest))]
    async fn delete_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        now: Millis,
    ) -> StoreResult<DeleteOutcome> {
        self.remove_manifest(repo, digest, now).await
    }

    #[instrument(level = "debug", skip(self), fields(%repo, %digest))]
    async fn restore_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> StoreResult<RestoreOutcome> {
        self.restore(repo, digest).await
    }

    #[instrument(level = "debug", skip(self), fields(%repo))]
    async fn list_versions(
        &self,
        repo: &RepoName,
        state: VersionState,
        deleted_after: Millis,
        offset: u64,
        limit: usize,
    ) -> StoreResult<(u64, Vec<VersionRecord>)> {
        self.versions(repo, state, deleted_after, offset, limit)
            .await
    }

    #[instrument(level = "debug", skip(self), fields(%repo))]
    async fn version(&self, repo: &RepoName, id: i64) -> StoreResult<Option<VersionRecord>> {
        self.version_by_id(repo, id).await
    }

    #[instrument(level = "debug", skip_all, fields(n = counts.len()))]
    async fn add_downloads(&self, counts: &[(RepoName, Digest, u64)]) -> StoreResult<()> {
        self.count_downloads(counts).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn purge_deleted_manifests(&self, before: Millis) -> StoreResult<u64> {
        self.purge_manifests(before).await
    }

    #[instrument(level = "debug", skip(self), fields(%repo, %tag))]
    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> StoreResult<bool> {
        self.remove_tag(repo, tag).await
    }

    #[instrument(level = "debug", skip(self), fields(%repo))]
    async fn list_tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        limit: usize,
    ) -> StoreResult<Option<Vec<String>>> {
        self.tags(repo, last, limit).await
    }

    #[instrument(level = "debug", skip(self), fields(%repo, %subject))]
    async fn list_referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> StoreResult<Vec<Referrer>> {
        self.referrers(repo, subject, artifact_type).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn list_repositories(
        &self,
        last: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        self.repositories(last, limit).await
    }

    #[instrument(level = "debug", skip(self), fields(%repo))]
    async fn repository_exists(&self, repo: &RepoName) -> StoreResult<bool> {
        self.has_repository(repo).await
    }
}
