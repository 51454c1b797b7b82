//! Every port method of [`Broken`](super::Broken) forwards to the real store, except the
//! ones a mutant breaks (`*_broken`, in `main.rs`). Written out from the traits' declarations.

use async_trait::async_trait;
use berth_core::access::store::*;
use berth_core::access::*;
use berth_core::hooks::model::*;
use berth_core::hooks::store::*;
use berth_core::ports::*;
use berth_core::{Digest, RepoName, Tag};

use super::Broken;

#[async_trait]
impl BlobLinkStore for Broken {
    async fn linked_blob_size(&self, repo: &RepoName, digest: &Digest) -> StoreResult<Option<u64>> {
        self.inner.linked_blob_size(repo, digest).await
    }
    async fn link_blob(&self, repo: &RepoName, digest: &Digest, size: u64) -> StoreResult<()> {
        self.inner.link_blob(repo, digest, size).await
    }
    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> StoreResult<bool> {
        self.inner.unlink_blob(repo, digest).await
    }
}

#[async_trait]
impl UploadStore for Broken {
    async fn create_upload(&self, session: &UploadSession) -> StoreResult<()> {
        self.inner.create_upload(session).await
    }
    async fn get_upload(&self, repo: &RepoName, id: &str) -> StoreResult<Option<UploadSession>> {
        self.inner.get_upload(repo, id).await
    }
    async fn lease_upload(
        &self,
        repo: &RepoName,
        id: &str,
        token: &str,
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<Lease> {
        self.lease_upload_broken(repo, id, token, now, lease_until)
            .await
    }
    async fn renew_upload_lease(
        &self,
        id: &str,
        token: &str,
        lease_until: Millis,
    ) -> StoreResult<()> {
        self.inner.renew_upload_lease(id, token, lease_until).await
    }
    async fn advance_upload(
        &self,
        id: &str,
        token: &str,
        offset: u64,
        hash_state: &[u8],
    ) -> StoreResult<()> {
        self.inner
            .advance_upload(id, token, offset, hash_state)
            .await
    }
    async fn release_upload(&self, id: &str, token: &str) -> StoreResult<()> {
        self.inner.release_upload(id, token).await
    }
    async fn delete_upload(&self, id: &str) -> StoreResult<bool> {
        self.inner.delete_upload(id).await
    }
    async fn stale_uploads(
        &self,
        started_before: Millis,
        empty_started_before: Millis,
        now: Millis,
        limit: usize,
    ) -> StoreResult<Vec<UploadSession>> {
        self.inner
            .stale_uploads(started_before, empty_started_before, now, limit)
            .await
    }
    async fn mark_upload_verified(
        &self,
        id: &str,
        token: &str,
        digest: &Digest,
        size: u64,
    ) -> StoreResult<()> {
        self.inner
            .mark_upload_verified(id, token, digest, size)
            .await
    }
    async fn uploads_to_check(&self, now: Millis, limit: usize) -> StoreResult<Vec<UploadSession>> {
        self.inner.uploads_to_check(now, limit).await
    }
    async fn owner_uploads(&self, owner: &str) -> StoreResult<(u64, u64)> {
        self.inner.owner_uploads(owner).await
    }
    async fn complete_upload(
        &self,
        id: Option<&str>,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
    ) -> StoreResult<()> {
        self.inner.complete_upload(id, repo, digest, size).await
    }
}

#[async_trait]
impl ManifestStore for Broken {
    async fn put_manifest(
        &self,
        repo: &RepoName,
        manifest: &NewManifest,
        tag: Option<&Tag>,
    ) -> StoreResult<PutManifestOutcome> {
        self.inner.put_manifest(repo, manifest, tag).await
    }
    async fn manifest_by_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
    ) -> StoreResult<Option<StoredManifest>> {
        self.inner.manifest_by_tag(repo, tag).await
    }
    async fn manifest_by_digest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> StoreResult<Option<StoredManifest>> {
        self.inner.manifest_by_digest(repo, digest).await
    }
    async fn delete_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        now: Millis,
    ) -> StoreResult<DeleteOutcome> {
        self.inner.delete_manifest(repo, digest, now).await
    }
    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> StoreResult<bool> {
        self.inner.delete_tag(repo, tag).await
    }
    async fn list_referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> StoreResult<Vec<Referrer>> {
        self.inner
            .list_referrers(repo, subject, artifact_type)
            .await
    }
}

#[async_trait]
impl VersionStore for Broken {
    async fn list_versions(
        &self,
        repo: &RepoName,
        state: VersionState,
        deleted_after: Millis,
        offset: u64,
        limit: usize,
    ) -> StoreResult<(u64, Vec<VersionRecord>)> {
        self.inner
            .list_versions(repo, state, deleted_after, offset, limit)
            .await
    }
    async fn version(&self, repo: &RepoName, id: i64) -> StoreResult<Option<VersionRecord>> {
        self.inner.version(repo, id).await
    }
    async fn restore_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> StoreResult<RestoreOutcome> {
        self.inner.restore_manifest(repo, digest).await
    }
    async fn add_downloads(&self, counts: &[(RepoName, Digest, u64)]) -> StoreResult<()> {
        self.inner.add_downloads(counts).await
    }
    async fn purge_deleted_manifests(&self, before: Millis) -> StoreResult<u64> {
        self.inner.purge_deleted_manifests(before).await
    }
}

#[async_trait]
impl ListingStore for Broken {
    async fn list_tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        limit: usize,
    ) -> StoreResult<Option<Vec<String>>> {
        self.inner.list_tags(repo, last, limit).await
    }
    async fn list_repositories(
        &self,
        last: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        self.inner.list_repositories(last, limit).await
    }
    async fn repository_exists(&self, repo: &RepoName) -> StoreResult<bool> {
        self.inner.repository_exists(repo).await
    }
}

#[async_trait]
impl DirectoryStore for Broken {
    async fn create_user(&self, user: &NewUser, now: Millis) -> StoreResult<Created<AccountId>> {
        self.inner.create_user(user, now).await
    }
    async fn create_org(
        &self,
        login: &str,
        name: Option<&str>,
        owner: AccountId,
        now: Millis,
    ) -> StoreResult<Created<AccountId>> {
        self.inner.create_org(login, name, owner, now).await
    }
    async fn account(&self, login: &str) -> StoreResult<Option<Account>> {
        self.inner.account(login).await
    }
    async fn account_by_id(&self, id: AccountId) -> StoreResult<Option<Account>> {
        self.inner.account_by_id(id).await
    }
    async fn password_hash(&self, login: &str) -> StoreResult<Option<String>> {
        self.inner.password_hash(login).await
    }
    async fn set_membership(
        &self,
        org: AccountId,
        user: AccountId,
        role: Option<OrgRole>,
    ) -> StoreResult<()> {
        self.inner.set_membership(org, user, role).await
    }
    async fn membership(&self, org: AccountId, user: AccountId) -> StoreResult<Option<OrgRole>> {
        self.inner.membership(org, user).await
    }
    async fn set_requires_sso(&self, org: AccountId, required: bool) -> StoreResult<()> {
        self.inner.set_requires_sso(org, required).await
    }
    async fn set_package_policy(
        &self,
        account: AccountId,
        policy: &PackagePolicy,
    ) -> StoreResult<()> {
        self.inner.set_package_policy(account, policy).await
    }
    async fn create_team(
        &self,
        org: AccountId,
        slug: &str,
        name: &str,
    ) -> StoreResult<Created<TeamId>> {
        self.inner.create_team(org, slug, name).await
    }
    async fn team(&self, org: AccountId, slug: &str) -> StoreResult<Option<TeamId>> {
        self.inner.team(org, slug).await
    }
    async fn set_team_member(
        &self,
        team: TeamId,
        user: AccountId,
        member: bool,
    ) -> StoreResult<()> {
        self.inner.set_team_member(team, user, member).await
    }
    async fn create_repo(
        &self,
        owner: AccountId,
        name: &str,
        visibility: Visibility,
        now: Millis,
    ) -> StoreResult<Created<RepoId>> {
        self.inner.create_repo(owner, name, visibility, now).await
    }
    async fn repo(&self, owner_login: &str, name: &str) -> StoreResult<Option<SourceRepo>> {
        self.inner.repo(owner_login, name).await
    }
    async fn repo_by_id(&self, id: RepoId) -> StoreResult<Option<SourceRepo>> {
        self.inner.repo_by_id(id).await
    }
    async fn set_collaborator(
        &self,
        repo: RepoId,
        user: AccountId,
        role: Option<Role>,
    ) -> StoreResult<()> {
        self.inner.set_collaborator(repo, user, role).await
    }
    async fn repo_role(&self, repo: RepoId, user: AccountId) -> StoreResult<Option<Role>> {
        self.inner.repo_role(repo, user).await
    }
    async fn set_team_repo(
        &self,
        team: TeamId,
        repo: RepoId,
        role: Option<Role>,
    ) -> StoreResult<()> {
        self.inner.set_team_repo(team, repo, role).await
    }
}

#[async_trait]
impl PackageStore for Broken {
    async fn target(&self, name: &RepoName, user: Option<AccountId>) -> StoreResult<Target> {
        self.target_broken(name, user).await
    }
    async fn create_package(
        &self,
        name: &RepoName,
        owner: AccountId,
        visibility: Visibility,
        link: Option<RepoId>,
        admin: Option<AccountId>,
        now: Millis,
    ) -> StoreResult<()> {
        self.inner
            .create_package(name, owner, visibility, link, admin, now)
            .await
    }
    async fn packages_of(
        &self,
        owner: AccountId,
        user: Option<AccountId>,
    ) -> StoreResult<Vec<(PackageRecord, Target)>> {
        self.inner.packages_of(owner, user).await
    }
    async fn package_record(&self, name: &RepoName) -> StoreResult<Option<PackageRecord>> {
        self.inner.package_record(name).await
    }
    async fn set_package_deleted(&self, name: &RepoName, at: Option<Millis>) -> StoreResult<bool> {
        self.inner.set_package_deleted(name, at).await
    }
    async fn purge_deleted_packages(&self, before: Millis) -> StoreResult<u64> {
        self.inner.purge_deleted_packages(before).await
    }
    async fn set_package_visibility(
        &self,
        name: &RepoName,
        visibility: Visibility,
    ) -> StoreResult<bool> {
        self.inner.set_package_visibility(name, visibility).await
    }
    async fn set_package_role(
        &self,
        name: &RepoName,
        grantee: Grantee,
        role: Option<Role>,
    ) -> StoreResult<bool> {
        self.inner.set_package_role(name, grantee, role).await
    }
    async fn link_unlinked_package(
        &self,
        name: &RepoName,
        repo: RepoId,
        inherits: bool,
    ) -> StoreResult<bool> {
        self.inner.link_unlinked_package(name, repo, inherits).await
    }
    async fn link_package(
        &self,
        name: &RepoName,
        repo: Option<RepoId>,
        inherits: bool,
    ) -> StoreResult<bool> {
        self.inner.link_package(name, repo, inherits).await
    }
    async fn set_package_job_access(
        &self,
        name: &RepoName,
        repo: RepoId,
        role: Option<Role>,
    ) -> StoreResult<bool> {
        self.inner.set_package_job_access(name, repo, role).await
    }
}

#[async_trait]
impl CredentialStore for Broken {
    async fn create_credential(&self, credential: &NewCredential) -> StoreResult<CredentialId> {
        self.inner.create_credential(credential).await
    }
    async fn resolve_secret(&self, hash: &[u8], now: Millis) -> StoreResult<Resolved> {
        self.inner.resolve_secret(hash, now).await
    }
    async fn resolve_credential(&self, id: CredentialId, now: Millis) -> StoreResult<Resolved> {
        self.inner.resolve_credential(id, now).await
    }
    async fn touch_credentials(&self, uses: &[(CredentialId, Millis)]) -> StoreResult<()> {
        self.inner.touch_credentials(uses).await
    }
    async fn revoke_credential(&self, id: CredentialId, now: Millis) -> StoreResult<bool> {
        self.revoke_credential_broken(id, now).await
    }
    async fn list_credentials(&self, user: AccountId) -> StoreResult<Vec<CredentialInfo>> {
        self.inner.list_credentials(user).await
    }
    async fn credential(&self, id: CredentialId) -> StoreResult<Option<CredentialInfo>> {
        self.inner.credential(id).await
    }
    async fn authorize_sso(&self, id: CredentialId, org: AccountId) -> StoreResult<()> {
        self.inner.authorize_sso(id, org).await
    }
}

#[async_trait]
impl AppStore for Broken {
    async fn create_app(
        &self,
        owner: AccountId,
        slug: &str,
        secret_hash: &[u8],
        now: Millis,
    ) -> StoreResult<Created<AppId>> {
        self.inner.create_app(owner, slug, secret_hash, now).await
    }
    async fn app(&self, slug: &str) -> StoreResult<Option<App>> {
        self.inner.app(slug).await
    }
    async fn install_app(
        &self,
        app: AppId,
        account: AccountId,
        repositories: Option<&[RepoId]>,
        permission: Role,
        now: Millis,
    ) -> StoreResult<InstallationId> {
        self.inner
            .install_app(app, account, repositories, permission, now)
            .await
    }
    async fn installation_for_secret(
        &self,
        id: InstallationId,
        secret_hash: &[u8],
    ) -> StoreResult<Option<AppInstallation>> {
        self.inner.installation_for_secret(id, secret_hash).await
    }
}

#[async_trait]
impl HookStore for Broken {
    async fn create_hook(
        &self,
        scope: HookScope,
        settings: &HookSettings,
        now: Millis,
        max_per_account: usize,
    ) -> StoreResult<Option<HookId>> {
        self.inner
            .create_hook(scope, settings, now, max_per_account)
            .await
    }
    async fn hook(&self, id: HookId) -> StoreResult<Option<Hook>> {
        self.inner.hook(id).await
    }
    async fn hooks_of(&self, scope: HookScope) -> StoreResult<Vec<Hook>> {
        self.inner.hooks_of(scope).await
    }
    async fn update_hook(
        &self,
        id: HookId,
        settings: &HookSettings,
        now: Millis,
    ) -> StoreResult<bool> {
        self.inner.update_hook(id, settings, now).await
    }
    async fn delete_hook(&self, id: HookId) -> StoreResult<bool> {
        self.inner.delete_hook(id).await
    }
    async fn hooks_for_package(
        &self,
        owner: AccountId,
        repo: Option<RepoId>,
    ) -> StoreResult<Vec<Hook>> {
        self.inner.hooks_for_package(owner, repo).await
    }
    async fn package_facts(
        &self,
        name: &RepoName,
        digest: &Digest,
    ) -> StoreResult<Option<PackageFacts>> {
        self.inner.package_facts(name, digest).await
    }
    async fn enqueue(&self, deliveries: &[NewDelivery], now: Millis) -> StoreResult<()> {
        self.inner.enqueue(deliveries, now).await
    }
    async fn claim_due(
        &self,
        now: Millis,
        token: &str,
        lease_until: Millis,
        limit: usize,
    ) -> StoreResult<Vec<Claimed>> {
        self.claim_due_broken(now, token, lease_until, limit).await
    }
    async fn next_due(&self) -> StoreResult<Option<Millis>> {
        self.inner.next_due().await
    }
    async fn record_attempt(
        &self,
        delivery: DeliveryId,
        token: &str,
        attempt: &Attempt,
        outcome: AttemptOutcome,
    ) -> StoreResult<()> {
        self.inner
            .record_attempt(delivery, token, attempt, outcome)
            .await
    }
    async fn deliveries(
        &self,
        hook: HookId,
        before: Option<DeliveryId>,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        self.inner.deliveries(hook, before, limit).await
    }
    async fn purge_deliveries(&self, before: Millis) -> StoreResult<u64> {
        self.inner.purge_deliveries(before).await
    }
    async fn delivery(
        &self,
        hook: HookId,
        id: DeliveryId,
    ) -> StoreResult<Option<(Delivery, Vec<Attempt>)>> {
        self.inner.delivery(hook, id).await
    }
}
