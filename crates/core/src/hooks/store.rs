//! The hook store port: hooks, the delivery queue and its attempts, and the facts about a
//! package a payload needs. Implemented by each metadata backend; never calls services.
//!
//! The queue's invariants, which every implementation keeps:
//! - Deliveries of one hook are handed out in id order: [`HookStore::claim_due`] returns at
//!   most the oldest pending delivery of each active hook, and only once it is due.
//! - A claim is a lease (a token and an expiry): a delivery leased and unexpired is not
//!   claimed again, and [`HookStore::record_attempt`] changes it only under the same token, so
//!   nodes sharing the database never deliver one twice.

use crate::ids::{InstallationId, PackageId, VersionId};
use async_trait::async_trait;

use super::model::{
    Attempt, AttemptOutcome, Delivery, DeliveryId, Hook, HookId, HookScope, HookSettings,
    NewDelivery,
};
use crate::access::{AccountId, RepoId};
use crate::digest::Digest;
use crate::name::RepoName;
use crate::ports::{Millis, StoreResult};

/// What the store knows of a package and one of its versions, for a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFacts {
    /// The package's row id.
    pub package_id: PackageId,
    /// The owning account.
    pub owner: AccountId,
    /// The package's creation time.
    pub created_at: Millis,
    /// The linked source repository.
    pub linked_repo: Option<RepoId>,
    /// The version's id (`package_versions`), when the version is known.
    pub version_id: Option<VersionId>,
    /// The version's creation time, when stored.
    pub version_created_at: Option<Millis>,
}

/// Where an event of a package's version goes ([`HookStore::package_event_targets`]): the
/// package's facts, its owner's and repository's hooks, and its apps' hooks with the
/// installation each goes through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTargets {
    /// The package and its version.
    pub facts: PackageFacts,
    /// [`HookStore::hooks_for_package`]'s hooks.
    pub hooks: Vec<Hook>,
    /// [`HookStore::app_hooks_for_package`]'s hooks.
    pub app_hooks: Vec<(Hook, InstallationId)>,
}

/// A claimed delivery with the hook it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The delivery.
    pub delivery: Delivery,
    /// Its hook, as it is now (its URL or secret may have changed since queueing).
    pub hook: Hook,
}

/// Hooks and their deliveries.
#[async_trait]
pub trait HookStore: Send + Sync + 'static {
    /// Creates a hook; its id. `None` (nothing created) when the account `scope` belongs to
    /// (the organization or user, the repository's or the app's owner) already has `max_per_account`
    /// hooks, counting its own and its repositories'; counted and created in one write
    /// transaction, so concurrent creations never pass the cap.
    async fn create_hook(
        &self,
        scope: HookScope,
        settings: &HookSettings,
        now: Millis,
        max_per_account: usize,
    ) -> StoreResult<Option<HookId>>;
    /// Hook `id`.
    async fn hook(&self, id: HookId) -> StoreResult<Option<Hook>>;
    /// The hooks attached to `scope`, oldest first.
    async fn hooks_of(&self, scope: HookScope) -> StoreResult<Vec<Hook>>;
    /// Replaces a hook's settings; `false` when there is no such hook.
    async fn update_hook(
        &self,
        id: HookId,
        settings: &HookSettings,
        now: Millis,
    ) -> StoreResult<bool>;
    /// Deletes a hook with its deliveries; `false` when there was none.
    async fn delete_hook(&self, id: HookId) -> StoreResult<bool>;
    /// The active hooks an event of a package of `owner` (linked to `repo`) goes to: the
    /// owner's (organization or user hooks) and the repository's; app hooks are
    /// [`HookStore::app_hooks_for_package`]'s.
    async fn hooks_for_package(
        &self,
        owner: AccountId,
        repo: Option<RepoId>,
    ) -> StoreResult<Vec<Hook>>;
    /// The active app hooks an event of a package of `owner` (linked to `repo`) goes to, each
    /// with the installation it goes through: those of apps installed on `owner` for all its
    /// repositories, or for a selection that includes `repo`. Oldest hook first.
    async fn app_hooks_for_package(
        &self,
        owner: AccountId,
        repo: Option<RepoId>,
    ) -> StoreResult<Vec<(Hook, InstallationId)>>;
    /// The package `name` and its version `digest`; `None` when there is no such package.
    async fn package_facts(
        &self,
        name: &RepoName,
        digest: &Digest,
    ) -> StoreResult<Option<PackageFacts>>;
    /// The package `name` with its version `digest`, and the hooks an event of it goes to
    /// (its [`HookStore::hooks_for_package`] and [`HookStore::app_hooks_for_package`]);
    /// `None` when there is no such package. Every push of a new version waits for this: the
    /// default reads the package, then both kinds of hooks at once; a store may read all
    /// three together.
    async fn package_event_targets(
        &self,
        name: &RepoName,
        digest: &Digest,
    ) -> StoreResult<Option<EventTargets>> {
        let Some(facts) = self.package_facts(name, digest).await? else {
            return Ok(None);
        };
        let (hooks, app_hooks) = futures_util::future::try_join(
            self.hooks_for_package(facts.owner, facts.linked_repo),
            self.app_hooks_for_package(facts.owner, facts.linked_repo),
        )
        .await?;
        Ok(Some(EventTargets {
            facts,
            hooks,
            app_hooks,
        }))
    }
    /// Queues `deliveries`, due at `now`, in one transaction and in the order given.
    async fn enqueue(&self, deliveries: &[NewDelivery], now: Millis) -> StoreResult<()>;
    /// Leases up to `limit` due deliveries under `token` until `lease_until`: at most the
    /// oldest pending delivery of each active hook, if due at `now` and not leased.
    async fn claim_due(
        &self,
        now: Millis,
        token: &str,
        lease_until: Millis,
        limit: usize,
    ) -> StoreResult<Vec<Claimed>>;
    /// The earliest time a pending delivery of an active hook is due, if any.
    async fn next_due(&self) -> StoreResult<Option<Millis>>;
    /// How many deliveries wait to be delivered (pending, of any hook, due or not): the
    /// queue's depth.
    async fn pending_deliveries(&self) -> StoreResult<u64>;
    /// Records `attempt` of a delivery leased under `token`, applies `outcome`, releases the
    /// lease and updates the hook's last response. A lost lease (nothing recorded) is a
    /// [`StoreErrorKind::LeaseLost`](crate::error::StoreErrorKind::LeaseLost) error.
    async fn record_attempt(
        &self,
        delivery: DeliveryId,
        token: &str,
        attempt: &Attempt,
        outcome: AttemptOutcome,
    ) -> StoreResult<()>;
    /// Deliveries of `hook`, newest first, with ids below `before` (all when `None`).
    async fn deliveries(
        &self,
        hook: HookId,
        before: Option<DeliveryId>,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>>;
    /// Deletes delivered and failed deliveries queued before `before`, with their attempts;
    /// how many.
    async fn purge_deliveries(&self, before: Millis) -> StoreResult<u64>;
    /// Delivery `id` of `hook` with every attempt, oldest first.
    async fn delivery(
        &self,
        hook: HookId,
        id: DeliveryId,
    ) -> StoreResult<Option<(Delivery, Vec<Attempt>)>>;
}
