//! A read-through cache over an [`AccessStore`] for the two reads every registry request
//! makes: resolving its credential and gathering the package's [`Target`]. Every other call
//! goes straight through.
//!
//! Invalidation: every write made through this store bumps a generation number, and an entry
//! is served only while the generation it was read under is current, so a change made through
//! this process (a revoked token, a removed role, a deleted package) is seen by the very next
//! request. An entry read while a write was in flight carries the generation from before the
//! write and is never served. Writes by another process are seen when its [`ChangeSignal`]
//! changes (`berth admin` announces each command), and in any case once an entry is `ttl`
//! old (other nodes of a cluster). Expiry is checked on every hit, from the credential's own
//! `expires_at`.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::model::{AccountId, CredentialId, OrgRole, PackagePolicy, Principal, RepoId, Role};
use super::model::{Target, Visibility};
use super::store::{
    AccessStore, Account, App, AppId, AppInstallation, Created, CredentialInfo, Grantee,
    InstallationId, NewCredential, NewUser, PackageRecord, Resolved, SourceRepo, TeamId,
};
use crate::name::RepoName;
use crate::ports::{Millis, StoreResult};

/// A cheap, synchronous reading that changes whenever another process changed access data
/// (the binary stats a file `berth admin` replaces); checked on every cached read.
pub type ChangeSignal = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Entries per map before it is emptied (a crude bound: the working set of a registry is
/// a few tokens and packages).
const MAX_ENTRIES: usize = 10_000;

struct Cached<T> {
    value: T,
    generation: u64,
    at: Instant,
}

type Entries<K, T> = Mutex<HashMap<K, Cached<T>>>;

/// Targets by package, then by asking user (two levels, so a hit looks up borrowed keys).
type Targets = Mutex<HashMap<RepoName, HashMap<Option<AccountId>, Cached<Target>>>>;

/// An [`AccessStore`] that remembers resolved credentials and targets (see the module
/// documentation for when they are forgotten).
pub struct CachedAccessStore {
    inner: Arc<dyn AccessStore>,
    ttl: Duration,
    generation: AtomicU64,
    signal: Option<ChangeSignal>,
    signalled: AtomicU64,
    secrets: Entries<Vec<u8>, Principal>,
    credentials: Entries<CredentialId, Principal>,
    targets: Targets,
}

impl CachedAccessStore {
    /// Caches `inner`'s credential and target reads for at most `ttl`, and forgets them
    /// whenever `signal` reads differently.
    pub fn new(inner: Arc<dyn AccessStore>, ttl: Duration, signal: Option<ChangeSignal>) -> Self {
        let signalled = signal.as_ref().map_or(0, |read| read());
        CachedAccessStore {
            inner,
            ttl,
            generation: AtomicU64::new(0),
            signal,
            signalled: AtomicU64::new(signalled),
            secrets: Mutex::default(),
            credentials: Mutex::default(),
            targets: Mutex::default(),
        }
    }

    /// The current generation, after taking in a change another process signalled.
    fn current(&self) -> u64 {
        if let Some(read) = &self.signal {
            let now = read();
            if self.signalled.swap(now, Ordering::AcqRel) != now {
                self.generation.fetch_add(1, Ordering::AcqRel);
            }
        }
        self.generation.load(Ordering::Acquire)
    }

    /// The entry's value if it was read under `generation` (the current one) within the ttl.
    fn fresh<T: Clone>(&self, entry: Option<&Cached<T>>, generation: u64) -> Option<T> {
        entry
            .filter(|e| e.generation == generation && e.at.elapsed() < self.ttl)
            .map(|e| e.value.clone())
    }

    /// A credential resolution through `entries`: remembered if fresh, else `read` (only
    /// valid credentials are remembered).
    async fn resolve<Q, K>(
        &self,
        entries: &Entries<K, Principal>,
        key: &Q,
        now: Millis,
        read: impl Future<Output = StoreResult<Resolved>>,
    ) -> StoreResult<Resolved>
    where
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        K: Borrow<Q> + Hash + Eq,
    {
        // Read before the lookup and kept for the insert: a write in between outdates it.
        let generation = self.current();
        if let Some(principal) = self.fresh(lock(entries).get(key), generation) {
            return Ok(resolved_at(principal, now));
        }
        let resolved = read.await?;
        if let Resolved::Valid(principal) = &resolved {
            let entry = Cached {
                value: principal.clone(),
                generation,
                at: Instant::now(),
            };
            remember(&mut lock(entries), key.to_owned(), entry);
        }
        Ok(resolved)
    }

    /// After a write: forgets everything read before it.
    fn wrote<T>(&self, done: StoreResult<T>) -> StoreResult<T> {
        self.generation.fetch_add(1, Ordering::AcqRel);
        done
    }
}

/// A cached principal as the store would resolve it at `now`: its credential may have
/// expired since it was cached.
fn resolved_at(principal: Principal, now: Millis) -> Resolved {
    match &principal {
        Principal::Token(credential) => match credential.expires_at {
            Some(at) if at <= now => Resolved::Expired(at),
            _ => Resolved::Valid(principal),
        },
        Principal::Anonymous => Resolved::Valid(principal),
    }
}

fn remember<K: Hash + Eq, T>(map: &mut HashMap<K, Cached<T>>, key: K, entry: Cached<T>) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(key, entry);
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl AccessStore for CachedAccessStore {
    async fn resolve_secret(&self, hash: &[u8], now: Millis) -> StoreResult<Resolved> {
        self.resolve(
            &self.secrets,
            hash,
            now,
            self.inner.resolve_secret(hash, now),
        )
        .await
    }

    async fn resolve_credential(&self, id: CredentialId, now: Millis) -> StoreResult<Resolved> {
        self.resolve(
            &self.credentials,
            &id,
            now,
            self.inner.resolve_credential(id, now),
        )
        .await
    }

    async fn target(&self, name: &RepoName, user: Option<AccountId>) -> StoreResult<Target> {
        let generation = self.current();
        let hit = {
            let targets = lock(&self.targets);
            self.fresh(
                targets.get(name).and_then(|users| users.get(&user)),
                generation,
            )
        };
        if let Some(target) = hit {
            return Ok(target);
        }
        let target = self.inner.target(name, user).await?;
        let mut targets = lock(&self.targets);
        if targets.len() >= MAX_ENTRIES {
            targets.clear();
        }
        let entry = Cached {
            value: target.clone(),
            generation,
            at: Instant::now(),
        };
        remember(targets.entry(name.clone()).or_default(), user, entry);
        Ok(target)
    }

    // --- reads that go straight through ---

    async fn account(&self, login: &str) -> StoreResult<Option<Account>> {
        self.inner.account(login).await
    }

    async fn account_by_id(&self, id: AccountId) -> StoreResult<Option<Account>> {
        self.inner.account_by_id(id).await
    }

    async fn membership(&self, org: AccountId, user: AccountId) -> StoreResult<Option<OrgRole>> {
        self.inner.membership(org, user).await
    }

    async fn team(&self, org: AccountId, slug: &str) -> StoreResult<Option<TeamId>> {
        self.inner.team(org, slug).await
    }

    async fn repo(&self, owner_login: &str, name: &str) -> StoreResult<Option<SourceRepo>> {
        self.inner.repo(owner_login, name).await
    }

    async fn repo_by_id(&self, id: RepoId) -> StoreResult<Option<SourceRepo>> {
        self.inner.repo_by_id(id).await
    }

    async fn repo_role(&self, repo: RepoId, user: AccountId) -> StoreResult<Option<Role>> {
        self.inner.repo_role(repo, user).await
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

    async fn list_credentials(&self, user: AccountId) -> StoreResult<Vec<CredentialInfo>> {
        self.inner.list_credentials(user).await
    }

    async fn credential(&self, id: CredentialId) -> StoreResult<Option<CredentialInfo>> {
        self.inner.credential(id).await
    }

    async fn app(&self, slug: &str) -> StoreResult<Option<App>> {
        self.inner.app(slug).await
    }

    async fn installation_for_secret(
        &self,
        id: InstallationId,
        secret_hash: &[u8],
    ) -> StoreResult<Option<AppInstallation>> {
        self.inner.installation_for_secret(id, secret_hash).await
    }

    /// Last-used times change no permission: no invalidation.
    async fn touch_credentials(&self, uses: &[(CredentialId, Millis)]) -> StoreResult<()> {
        self.inner.touch_credentials(uses).await
    }

    // --- writes: each forgets what was read before it ---

    async fn create_user(&self, user: &NewUser, now: Millis) -> StoreResult<Created<AccountId>> {
        self.wrote(self.inner.create_user(user, now).await)
    }

    async fn create_org(
        &self,
        login: &str,
        name: Option<&str>,
        owner: AccountId,
        now: Millis,
    ) -> StoreResult<Created<AccountId>> {
        self.wrote(self.inner.create_org(login, name, owner, now).await)
    }

    async fn set_membership(
        &self,
        org: AccountId,
        user: AccountId,
        role: Option<OrgRole>,
    ) -> StoreResult<()> {
        self.wrote(self.inner.set_membership(org, user, role).await)
    }

    async fn set_requires_sso(&self, org: AccountId, required: bool) -> StoreResult<()> {
        self.wrote(self.inner.set_requires_sso(org, required).await)
    }

    async fn set_package_policy(
        &self,
        account: AccountId,
        policy: &PackagePolicy,
    ) -> StoreResult<()> {
        self.wrote(self.inner.set_package_policy(account, policy).await)
    }

    async fn create_team(
        &self,
        org: AccountId,
        slug: &str,
        name: &str,
    ) -> StoreResult<Created<TeamId>> {
        self.wrote(self.inner.create_team(org, slug, name).await)
    }

    async fn set_team_member(
        &self,
        team: TeamId,
        user: AccountId,
        member: bool,
    ) -> StoreResult<()> {
        self.wrote(self.inner.set_team_member(team, user, member).await)
    }

    async fn create_repo(
        &self,
        owner: AccountId,
        name: &str,
        visibility: Visibility,
        now: Millis,
    ) -> StoreResult<Created<RepoId>> {
        self.wrote(self.inner.create_repo(owner, name, visibility, now).await)
    }

    async fn set_collaborator(
        &self,
        repo: RepoId,
        user: AccountId,
        role: Option<Role>,
    ) -> StoreResult<()> {
        self.wrote(self.inner.set_collaborator(repo, user, role).await)
    }

    async fn set_team_repo(
        &self,
        team: TeamId,
        repo: RepoId,
        role: Option<Role>,
    ) -> StoreResult<()> {
        self.wrote(self.inner.set_team_repo(team, repo, role).await)
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
        let done = self
            .inner
            .create_package(name, owner, visibility, link, admin, now)
            .await;
        self.wrote(done)
    }

    async fn set_package_deleted(&self, name: &RepoName, at: Option<Millis>) -> StoreResult<bool> {
        self.wrote(self.inner.set_package_deleted(name, at).await)
    }

    async fn purge_deleted_packages(&self, before: Millis) -> StoreResult<u64> {
        self.wrote(self.inner.purge_deleted_packages(before).await)
    }

    async fn set_package_visibility(
        &self,
        name: &RepoName,
        visibility: Visibility,
    ) -> StoreResult<bool> {
        self.wrote(self.inner.set_package_visibility(name, visibility).await)
    }

    async fn set_package_role(
        &self,
        name: &RepoName,
        grantee: Grantee,
        role: Option<Role>,
    ) -> StoreResult<bool> {
        self.wrote(self.inner.set_package_role(name, grantee, role).await)
    }

    async fn link_unlinked_package(
        &self,
        name: &RepoName,
        repo: RepoId,
        inherits: bool,
    ) -> StoreResult<bool> {
        self.wrote(self.inner.link_unlinked_package(name, repo, inherits).await)
    }

    async fn link_package(
        &self,
        name: &RepoName,
        repo: Option<RepoId>,
        inherits: bool,
    ) -> StoreResult<bool> {
        self.wrote(self.inner.link_package(name, repo, inherits).await)
    }

    async fn set_package_job_access(
        &self,
        name: &RepoName,
        repo: RepoId,
        role: Option<Role>,
    ) -> StoreResult<bool> {
        self.wrote(self.inner.set_package_job_access(name, repo, role).await)
    }

    async fn create_credential(&self, credential: &NewCredential) -> StoreResult<CredentialId> {
        self.wrote(self.inner.create_credential(credential).await)
    }

    async fn revoke_credential(&self, id: CredentialId, now: Millis) -> StoreResult<bool> {
        self.wrote(self.inner.revoke_credential(id, now).await)
    }

    async fn authorize_sso(&self, id: CredentialId, org: AccountId) -> StoreResult<()> {
        self.wrote(self.inner.authorize_sso(id, org).await)
    }

    async fn create_app(
        &self,
        owner: AccountId,
        slug: &str,
        secret_hash: &[u8],
        now: Millis,
    ) -> StoreResult<Created<AppId>> {
        self.wrote(self.inner.create_app(owner, slug, secret_hash, now).await)
    }

    async fn install_app(
        &self,
        app: AppId,
        account: AccountId,
        repositories: Option<&[RepoId]>,
        permission: Role,
        now: Millis,
    ) -> StoreResult<InstallationId> {
        let done = self
            .inner
            .install_app(app, account, repositories, permission, now)
            .await;
        self.wrote(done)
    }
}
