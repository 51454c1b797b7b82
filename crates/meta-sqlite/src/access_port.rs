//! [`AccessStore`] for [`SqliteMetadataStore`]: each call maps to one query method of
//! `accounts`, `packages`, `credentials` or `apps`, inside a debug span naming what it is
//! about. Secrets' hashes are never recorded in spans.

use async_trait::async_trait;
use berth_core::access::store::{
    AccessStore, Account, App, AppId, AppInstallation, Created, CredentialInfo, Grantee,
    InstallationId, NewCredential, NewUser, PackageRecord, Resolved, SourceRepo, TeamId,
};
use berth_core::access::{
    AccountId, CredentialId, OrgRole, PackagePolicy, RepoId, Role, Target, Visibility,
};
use berth_core::name::RepoName;
use berth_core::ports::{Millis, StoreResult};
use tracing::instrument;

use crate::store::SqliteMetadataStore;

#[async_trait]
impl AccessStore for SqliteMetadataStore {
    #[instrument(level = "debug", skip_all, fields(login = %user.login))]
    async fn create_user(&self, user: &NewUser, now: Millis) -> StoreResult<Created<AccountId>> {
        self.insert_user(user, now).await
    }

    #[instrument(level = "debug", skip(self, name))]
    async fn create_org(
        &self,
        login: &str,
        name: Option<&str>,
        owner: AccountId,
        now: Millis,
    ) -> StoreResult<Created<AccountId>> {
        self.insert_org(login, name, owner, now).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn account(&self, login: &str) -> StoreResult<Option<Account>> {
        self.account_by_login(login).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn account_by_id(&self, id: AccountId) -> StoreResult<Option<Account>> {
        self.account_with_id(id).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn set_membership(
        &self,
        org: AccountId,
        user: AccountId,
        role: Option<OrgRole>,
    ) -> StoreResult<()> {
        self.put_membership(org, user, role).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn membership(&self, org: AccountId, user: AccountId) -> StoreResult<Option<OrgRole>> {
        self.org_role(org, user).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn set_requires_sso(&self, org: AccountId, required: bool) -> StoreResult<()> {
        self.put_requires_sso(org, required).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn set_package_policy(
        &self,
        account: AccountId,
        policy: &PackagePolicy,
    ) -> StoreResult<()> {
        self.put_package_policy(account, policy).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn create_team(
        &self,
        org: AccountId,
        slug: &str,
        name: &str,
    ) -> StoreResult<Created<TeamId>> {
        self.insert_team(org, slug, name).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn team(&self, org: AccountId, slug: &str) -> StoreResult<Option<TeamId>> {
        self.team_id(org, slug).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn set_team_member(
        &self,
        team: TeamId,
        user: AccountId,
        member: bool,
    ) -> StoreResult<()> {
        self.put_team_member(team, user, member).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn create_repo(
        &self,
        owner: AccountId,
        name: &str,
        visibility: Visibility,
        now: Millis,
    ) -> StoreResult<Created<RepoId>> {
        self.insert_repo(owner, name, visibility, now).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn repo(&self, owner_login: &str, name: &str) -> StoreResult<Option<SourceRepo>> {
        self.repo_by_name(owner_login, name).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn repo_by_id(&self, id: RepoId) -> StoreResult<Option<SourceRepo>> {
        self.repo_with_id(id).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn set_collaborator(
        &self,
        repo: RepoId,
        user: AccountId,
        role: Option<Role>,
    ) -> StoreResult<()> {
        self.put_collaborator(repo, user, role).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn repo_role(&self, repo: RepoId, user: AccountId) -> StoreResult<Option<Role>> {
        self.user_repo_role(repo, user).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn set_team_repo(
        &self,
        team: TeamId,
        repo: RepoId,
        role: Option<Role>,
    ) -> StoreResult<()> {
        self.put_team_repo(team, repo, role).await
    }

    #[instrument(level = "debug", skip(self), fields(%name))]
    async fn target(&self, name: &RepoName, user: Option<AccountId>) -> StoreResult<Target> {
        self.read_target(name, user).await
    }

    #[instrument(level = "debug", skip(self), fields(%name))]
    async fn create_package(
        &self,
        name: &RepoName,
        owner: AccountId,
        visibility: Visibility,
        link: Option<RepoId>,
        admin: Option<AccountId>,
        now: Millis,
    ) -> StoreResult<()> {
        self.insert_package(name, owner, visibility, link, admin, now)
            .await
    }

    #[instrument(level = "debug", skip(self), fields(%name))]
    async fn link_unlinked_package(
        &self,
        name: &RepoName,
        repo: RepoId,
        inherits: bool,
    ) -> StoreResult<bool> {
        self.put_package_link(name, Some(repo), inherits, true)
            .await
    }

    #[instrument(level = "debug", skip(self))]
    async fn packages_of(
        &self,
        owner: AccountId,
        user: Option<AccountId>,
    ) -> StoreResult<Vec<(PackageRecord, Target)>> {
        self.read_owner_targets(owner, user).await
    }

    #[instrument(level = "debug", skip(self), fields(%name))]
    async fn package_record(&self, name: &RepoName) -> StoreResult<Option<PackageRecord>> {
        self.package_by_name(name).await
    }

    #[instrument(level = "debug", skip(self), fields(%name))]
    async fn set_package_deleted(&self, name: &RepoName, at: Option<Millis>) -> StoreResult<bool> {
        self.put_package_deleted(name, at).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn purge_deleted_packages(&self, before: Millis) -> StoreResult<u64> {
        self.purge_packages(before).await
    }

    #[instrument(level = "debug", skip(self), fields(%name))]
    async fn set_package_visibility(
        &self,
        name: &RepoName,
        visibility: Visibility,
    ) -> StoreResult<bool> {
        self.put_package_visibility(name, visibility).await
    }

    #[instrument(level = "debug", skip(self), fields(%name))]
    async fn set_package_role(
        &self,
        name: &RepoName,
        grantee: Grantee,
        role: Option<Role>,
    ) -> StoreResult<bool> {
        self.put_package_role(name, grantee, role).await
    }

    #[instrument(level = "debug", skip(self), fields(%name))]
    async fn link_package(
        &self,
        name: &RepoName,
        repo: Option<RepoId>,
        inherits: bool,
    ) -> StoreResult<bool> {
        self.put_package_link(name, repo, inherits, false).await
    }

    #[instrument(level = "debug", skip(self), fields(%name))]
    async fn set_package_job_access(
        &self,
        name: &RepoName,
        repo: RepoId,
        role: Option<Role>,
    ) -> StoreResult<bool> {
        self.put_package_job_access(name, repo, role).await
    }

    #[instrument(level = "debug", skip_all, fields(kind = credential.kind.as_str(), user = ?credential.user))]
    async fn create_credential(&self, credential: &NewCredential) -> StoreResult<CredentialId> {
        self.insert_credential(credential).await
    }

    #[instrument(level = "debug", skip(self, hash))]
    async fn resolve_secret(&self, hash: &[u8], now: Millis) -> StoreResult<Resolved> {
        self.resolve_hash(hash, now).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn resolve_credential(&self, id: CredentialId, now: Millis) -> StoreResult<Resolved> {
        self.resolve_id(id, now).await
    }

    #[instrument(level = "debug", skip_all, fields(count = uses.len()))]
    async fn touch_credentials(&self, uses: &[(CredentialId, Millis)]) -> StoreResult<()> {
        self.record_uses(uses).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn revoke_credential(&self, id: CredentialId, now: Millis) -> StoreResult<bool> {
        self.revoke(id, now).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn list_credentials(&self, user: AccountId) -> StoreResult<Vec<CredentialInfo>> {
        self.credentials_of(user).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn credential(&self, id: CredentialId) -> StoreResult<Option<CredentialInfo>> {
        self.credential_info(id).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn authorize_sso(&self, id: CredentialId, org: AccountId) -> StoreResult<()> {
        self.insert_sso_authorization(id, org).await
    }

    #[instrument(level = "debug", skip(self, secret_hash))]
    async fn create_app(
        &self,
        owner: AccountId,
        slug: &str,
        secret_hash: &[u8],
        now: Millis,
    ) -> StoreResult<Created<AppId>> {
        self.insert_app(owner, slug, secret_hash, now).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn app(&self, slug: &str) -> StoreResult<Option<App>> {
        self.app_by_slug(slug).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn install_app(
        &self,
        app: AppId,
        account: AccountId,
        repositories: Option<&[RepoId]>,
        permission: Role,
        now: Millis,
    ) -> StoreResult<InstallationId> {
        self.upsert_installation(app, account, repositories, permission, now)
            .await
    }

    #[instrument(level = "debug", skip(self, secret_hash))]
    async fn installation_for_secret(
        &self,
        id: InstallationId,
        secret_hash: &[u8],
    ) -> StoreResult<Option<AppInstallation>> {
        self.installation_with_secret(id, secret_hash).await
    }
}
