//! The storage ports: what the registry services need from metadata and blob storage.
//!
//! Neither trait assumes a local path or a single process: every piece of state a request
//! needs (upload offsets, resumable hash state, leases) lives behind these calls, so an upload
//! started on one node can be finished on another. Implementations live in their own crates
//! (`berth-meta-sqlite`, `berth-blob`) and never call the registry services.

use crate::ids::VersionId;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

use crate::access::AccountId;
use crate::digest::Digest;
use crate::error::StoreError;
use crate::labels::Labels;
use crate::name::{RepoName, Tag};
use crate::policies::{PackagePolicies, Policies, PolicyScope, VersionFacts};

/// Result of a storage call.
pub type StoreResult<T> = Result<T, StoreError>;

/// A stream of blob bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(Millis::MAX))
        .unwrap_or(0)
}

/// An upload in progress, as persisted between requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSession {
    /// Opaque id (a UUID), the last segment of the upload URL.
    pub id: String,
    /// The repository the upload was started in.
    pub repo: RepoName,
    /// Bytes received and made durable so far.
    pub offset: u64,
    /// Serialized SHA-256 state after `offset` bytes (see [`crate::hashing`]).
    pub hash_state: Vec<u8>,
    /// What the blob store needs to go on with the upload's bytes, as its last recorded
    /// writer returned it (see [`UploadProgress`]); empty for a store that keeps none.
    pub blob_state: Vec<u8>,
    /// When the upload started.
    pub started_at: Millis,
    /// Set by a final `PUT` once the whole upload verified as this digest of this size, just
    /// before its bytes move to their content address: a session that still has it was
    /// interrupted between that move and the metadata commit, and is completed from it.
    pub verified: Option<(Digest, u64)>,
}

/// A manifest ready to be stored: its exact bytes and what was learnt from parsing them.
#[derive(Debug, Clone)]
pub struct NewManifest {
    /// Digest of `content` (sha256 unless pushed by a sha512 digest).
    pub digest: Digest,
    /// The manifest's media type.
    pub media_type: String,
    /// The bytes exactly as pushed.
    pub content: Bytes,
    /// `artifactType`, or for image manifests without one, the config media type.
    pub artifact_type: Option<String>,
    /// The `subject` this manifest refers to, if any.
    pub subject: Option<Digest>,
    /// Blobs (config and layers) the manifest references, for garbage collection.
    pub blobs: Vec<Digest>,
    /// Blobs that must already be in the repository, with the size their descriptors state:
    /// the config and every layer without `urls` (foreign layers live elsewhere). Sorted,
    /// without repeats.
    pub required_blobs: Vec<BlobRef>,
    /// Child manifests an index references.
    pub children: Vec<Digest>,
    /// The manifest's `annotations`, as JSON text, for the referrers listing.
    pub annotations: Option<String>,
    /// The version's size: the manifest plus the sizes its descriptors state (config and
    /// layers, or an index's children).
    pub total_size: u64,
    /// Platforms of an index's children (`os/arch[/variant]`), in order.
    pub platforms: Vec<String>,
    /// The image's OCI labels (annotations over config labels), set by the registry.
    pub labels: Labels,
    /// The account whose token pushed it, set by the registry.
    pub pushed_by: Option<AccountId>,
    /// The tag it is pushed under must not move to it from another manifest (an
    /// immutable-tag rule protects it), set by the registry: the store checks it in the write
    /// transaction and answers [`PutManifestOutcome::TagImmutable`].
    pub tag_immutable: bool,
}

/// A blob as a manifest's descriptor names it: its digest and the size the descriptor states.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BlobRef {
    /// The blob's digest.
    pub digest: Digest,
    /// The descriptor's `size`.
    pub size: u64,
}

impl BlobRef {
    /// The descriptor at `index` (counted from 0) of `wanted`, which a metadata store's query
    /// named as the first blob `repo` does not hold as stated, with the size it does hold
    /// (`stored`; `None`: not linked at all). An index outside `wanted` is the store's error.
    pub fn unmet<'d>(
        wanted: &'d [BlobRef],
        index: i64,
        stored: Option<i64>,
        repo: &str,
    ) -> Result<(&'d BlobRef, Option<u64>), StoreError> {
        let blob = usize::try_from(index)
            .ok()
            .and_then(|i| wanted.get(i))
            .ok_or_else(|| {
                StoreError::new(
                    format!("checking which blobs {repo} holds"),
                    "position out of range",
                )
            })?;
        Ok((blob, stored.map(|s| s.unsigned_abs())))
    }
}

/// A manifest as stored.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    /// Its digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its bytes exactly as pushed.
    pub content: Bytes,
}

/// A live manifest with its repository's name, as `berth fsck` reads every one of them.
#[derive(Debug, Clone)]
pub struct LiveManifest {
    /// Its repository's name.
    pub repository: String,
    /// The digest it is stored under.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// The bytes as pushed.
    pub content: Bytes,
}

/// A manifest whose `subject` is a given digest, as the referrers API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    /// The referring manifest's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its artifact type, if any.
    pub artifact_type: Option<String>,
    /// Its annotations as JSON text, if any.
    pub annotations: Option<String>,
}

/// Outcome of asking for an upload's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// The lease is held; here is the session as persisted.
    Granted(UploadSession),
    /// Another request holds the lease.
    Busy,
    /// No such upload in that repository.
    Missing,
}

/// Outcome of asking for an upload's lease together with what its account holds in open
/// uploads (see [`UploadStore::lease_upload_counting`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CountedLease {
    /// The lease is held; here is the session as persisted, and the open uploads of its
    /// repository's owner as the lease was taken.
    Granted(UploadSession, OwnerUploads),
    /// Another request holds the lease.
    Busy,
    /// No such upload in that repository.
    Missing,
}

/// Outcome of starting an upload under its account's limits (see
/// [`UploadStore::create_upload_within`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// The session is stored.
    Created,
    /// Nothing was stored: the account may not start an upload. Here is what it holds, read
    /// after the refusal.
    Refused(OwnerUploads),
}

/// Outcome of writing a manifest under a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutManifestOutcome {
    /// Stored.
    Stored {
        /// The digest was new to the repository (a new version), not a re-push.
        created: bool,
        /// The tag was created or moved to this manifest (false without a tag, or when it
        /// already pointed here).
        tag_moved: bool,
        /// The package version's id.
        version_id: VersionId,
        /// The repository had no tag before this write (read in the same transaction).
        first_publish: bool,
    },
    /// The tag is immutable ([`NewManifest::tag_immutable`]) and points at this other
    /// manifest; nothing was stored.
    TagImmutable(Digest),
    /// This child of the index is not a manifest of this repository; nothing was stored.
    MissingChild(Digest),
    /// This required blob is not in the repository; nothing was stored.
    MissingBlob(Digest),
    /// This required blob is in the repository with another size than its descriptor
    /// states; nothing was stored.
    BlobSizeMismatch {
        /// The blob.
        digest: Digest,
        /// The size the descriptor states.
        declared: u64,
        /// The size of the stored blob.
        stored: u64,
    },
}

/// Outcome of deleting a manifest by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Marked deleted; restorable until purged.
    Deleted,
    /// No live manifest with that digest in the repository.
    Missing,
    /// A tagged index references it; nothing changed.
    ReferencedBy {
        /// The index.
        index: Digest,
        /// The index's tags.
        tags: Vec<String>,
    },
}

/// Which versions a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionState {
    /// Live versions.
    Active,
    /// Deleted versions not purged yet.
    Deleted,
}

/// A package version: a manifest of a repository with what the Packages API shows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    /// Its id, stable across tag moves, deletion and restore.
    pub id: VersionId,
    /// The manifest digest (the version's name).
    pub digest: Digest,
    /// The manifest's media type.
    pub media_type: String,
    /// Its tags, sorted; for a deleted version, the tags it had.
    pub tags: Vec<String>,
    /// When it was first pushed.
    pub created_at: Millis,
    /// When it was last pushed again or a tag moved to it.
    pub updated_at: Millis,
    /// When it was deleted.
    pub deleted_at: Option<Millis>,
    /// Who pushed it: account id and login.
    pub pushed_by: Option<(AccountId, String)>,
    /// Manifest plus what it references directly, in bytes.
    pub total_size: u64,
    /// Platforms of an index.
    pub platforms: Vec<String>,
    /// Its OCI labels.
    pub labels: Labels,
    /// Manifest GETs recorded so far.
    pub downloads: u64,
}

/// Outcome of restoring a deleted manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreOutcome {
    /// Restored with these tags, and with the deleted children of an index it references.
    Restored {
        /// Tags given back.
        tags: Vec<String>,
        /// Tags it had that now point elsewhere (left where they are).
        taken: Vec<String>,
    },
    /// It is not deleted.
    NotDeleted,
    /// No such manifest (or purged).
    Missing,
}

/// Which blobs each repository holds (the link a pull checks before serving bytes).
#[async_trait]
pub trait BlobLinkStore: Send + Sync + 'static {
    /// The size of `digest` if `repo` holds that blob.
    async fn linked_blob_size(&self, repo: &RepoName, digest: &Digest) -> StoreResult<Option<u64>>;

    /// Records that `repo` holds `digest` of `size` bytes (creating the repository if new),
    /// unless that takes its account's storage over its quota (see [`QuotaStore`]).
    async fn link_blob(&self, repo: &RepoName, digest: &Digest, size: u64) -> StoreResult<Linked>;

    /// Removes `digest` from `repo`; false when it was not there.
    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> StoreResult<bool>;
}

/// Upload sessions and their leases: the state of a resumable upload between requests, so any node can take the next one.
#[async_trait]
pub trait UploadStore: Send + Sync + 'static {
    /// Persists a new upload session.
    async fn create_upload(&self, session: &UploadSession) -> StoreResult<()>;

    /// Persists `session`, a new upload, unless the account owning its repository may not
    /// start one (see [`OwnerUploads::admits_new_upload`]): it has `max_open` sessions open
    /// already, or a storage quota with no room left. Refused, nothing is stored and the
    /// answer carries what the account holds.
    ///
    /// By default [`UploadStore::owner_uploads`] then [`UploadStore::create_upload`]: two
    /// round trips, between which another request may start an upload of the same account,
    /// so starts at the same moment may pass the limit by as many as run at once. A store
    /// that can check and insert in one statement on a single writer does both at once,
    /// atomically (SQLite).
    async fn create_upload_within(
        &self,
        session: &UploadSession,
        max_open: u64,
    ) -> StoreResult<Started> {
        let uploads = self.owner_uploads(session.repo.owner()).await?;
        if !uploads.admits_new_upload(max_open) {
            return Ok(Started::Refused(uploads));
        }
        self.create_upload(session).await?;
        Ok(Started::Created)
    }

    /// The upload `id` of `repo`, without taking it.
    async fn get_upload(&self, repo: &RepoName, id: &str) -> StoreResult<Option<UploadSession>>;

    /// Takes a lease on upload `id` of `repo` until `lease_until` (ms), so no other request
    /// (on any node) writes to it meanwhile. A lease whose time has passed is free again.
    async fn lease_upload(
        &self,
        repo: &RepoName,
        id: &str,
        token: &str,
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<Lease>;

    /// [`UploadStore::lease_upload`], and when it is granted, [`UploadStore::owner_uploads`] of
    /// `repo`'s owner: what a request bringing bytes needs before it reads its body. By
    /// default both at once, releasing a lease taken when the count failed; a store that can
    /// answer both in one round trip does (SQLite: one statement on its writer's thread).
    async fn lease_upload_counting(
        &self,
        repo: &RepoName,
        id: &str,
        token: &str,
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<CountedLease> {
        let (lease, uploads) = futures_util::future::join(
            self.lease_upload(repo, id, token, now, lease_until),
            self.owner_uploads(repo.owner()),
        )
        .await;
        match lease? {
            Lease::Granted(session) => match uploads {
                Ok(uploads) => Ok(CountedLease::Granted(session, uploads)),
                Err(err) => {
                    self.release_upload(id, token).await?;
                    Err(err)
                }
            },
            Lease::Busy => Ok(CountedLease::Busy),
            Lease::Missing => Ok(CountedLease::Missing),
        }
    }

    /// Extends a lease held under `token`.
    async fn renew_upload_lease(
        &self,
        id: &str,
        token: &str,
        lease_until: Millis,
    ) -> StoreResult<()>;

    /// Records progress of a leased upload (its length, hash state and the blob store's
    /// state for it, together) and releases the lease.
    async fn advance_upload(
        &self,
        id: &str,
        token: &str,
        offset: u64,
        hash_state: &[u8],
        blob_state: &[u8],
    ) -> StoreResult<()>;

    /// Releases a lease without recording progress.
    async fn release_upload(&self, id: &str, token: &str) -> StoreResult<()>;

    /// Deletes an upload session; false when it did not exist.
    async fn delete_upload(&self, id: &str) -> StoreResult<bool>;

    /// Up to `limit` upload sessions whose lease is free at `now` and that started before
    /// `started_before`, or before `empty_started_before` without having received a byte:
    /// candidates for purging.
    async fn stale_uploads(
        &self,
        started_before: Millis,
        empty_started_before: Millis,
        now: Millis,
        limit: usize,
    ) -> StoreResult<Vec<UploadSession>>;

    /// Records, under the lease `token`, that upload `id` verified as `digest` of `size`
    /// bytes (see [`UploadSession::verified`]), with the blob store's state after its last
    /// bytes (what committing it needs).
    async fn mark_upload_verified(
        &self,
        id: &str,
        token: &str,
        digest: &Digest,
        size: u64,
        blob_state: &[u8],
    ) -> StoreResult<()>;

    /// Up to `limit` sessions a crash may have left unfinishable, whose lease is free at
    /// `now`: those marked verified, and those that received bytes (whose upload file must
    /// still hold them).
    async fn uploads_to_check(&self, now: Millis, limit: usize) -> StoreResult<Vec<UploadSession>>;

    /// The open upload sessions of repositories of `owner` (`owner/…`) and the account's
    /// storage usage, read together: what a new upload, or a chunk of one, is checked
    /// against.
    async fn owner_uploads(&self, owner: &str) -> StoreResult<OwnerUploads>;

    /// In one transaction: deletes upload `id` (when given) and links `digest` to `repo`,
    /// unless that takes the account's storage over its quota: then nothing changes (the
    /// session stays) and the answer says so.
    async fn complete_upload(
        &self,
        id: Option<&str>,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
    ) -> StoreResult<Linked>;
}

/// An account's storage: the bytes of the distinct blobs its repositories (`owner/…`) link,
/// and the quota a site administrator set on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageUsage {
    /// Bytes of the distinct blobs linked in any repository of the account (a blob linked in
    /// two of them counts once).
    pub used: u64,
    /// The quota, if any.
    pub limit: Option<u64>,
}

/// What an account's next upload, or chunk of one, is checked against (see
/// [`UploadStore::owner_uploads`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerUploads {
    /// Open upload sessions of the account's repositories.
    pub open: u64,
    /// The bytes they hold.
    pub held: u64,
    /// The account's storage usage and quota.
    pub usage: StorageUsage,
}

impl OwnerUploads {
    /// Whether the account may start one more upload: it has fewer than `max_open` open, and
    /// its quota, if any, has room left once its open uploads' bytes are counted.
    pub fn admits_new_upload(&self, max_open: u64) -> bool {
        self.open < max_open
            && self
                .usage
                .limit
                .is_none_or(|limit| limit > self.usage.used.saturating_add(self.held))
    }
}

/// Outcome of linking a blob into a repository under its account's quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linked {
    /// Linked (or already was). Under a quota (`limit`), the account's usage went from
    /// `before` to `after` (equal when the account already held the blob), checked against
    /// it in the same transaction; without one the store need not read the usage after the
    /// link, and both are the usage before.
    Done {
        /// Usage before the link.
        before: u64,
        /// Usage after it.
        after: u64,
        /// The account's quota, as the transaction read it.
        limit: Option<u64>,
    },
    /// The link would have taken the account's usage over its quota: nothing changed.
    OverQuota {
        /// Usage now.
        used: u64,
        /// The quota.
        limit: u64,
        /// Bytes the link would have added.
        adds: u64,
    },
}

/// Storage quotas per account, and the usage they are checked against. Usage is kept by the
/// database itself as blob links come and go (whoever adds or removes them: a push, a
/// package purge, garbage collection), so reading it is one row, whatever the account holds.
#[async_trait]
pub trait QuotaStore: Send + Sync + 'static {
    /// The storage of account `owner` (the first segment of its repositories' names; logins
    /// compare case-insensitively): usage and quota, in one read.
    async fn storage_usage(&self, owner: &str) -> StoreResult<StorageUsage>;

    /// Whether any repository of account `owner` links `digest` (a blob that costs the
    /// account nothing more).
    async fn account_holds_blob(&self, owner: &str, digest: &Digest) -> StoreResult<bool>;

    /// Sets account `account`'s quota to `limit` bytes, or removes it (`None`).
    async fn set_storage_quota(
        &self,
        account: AccountId,
        limit: Option<u64>,
        now: Millis,
    ) -> StoreResult<()>;
}

/// Manifests, their tags and subject→referrer links. Every write that must happen together happens in one call.
#[async_trait]
pub trait ManifestStore: Send + Sync + 'static {
    /// In one transaction: checks every required blob of `manifest` is a blob of `repo` and
    /// every child is a manifest of `repo` (so a concurrent delete cannot slip between check
    /// and write), stores the
    /// manifest (idempotent on digest) with its references and subject link, and points `tag`
    /// at it when given.
    async fn put_manifest(
        &self,
        repo: &RepoName,
        manifest: &NewManifest,
        tag: Option<&Tag>,
    ) -> StoreResult<PutManifestOutcome>;

    /// The manifest `tag` points to in `repo`.
    async fn manifest_by_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
    ) -> StoreResult<Option<StoredManifest>>;

    /// The manifest `digest` of `repo`.
    async fn manifest_by_digest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> StoreResult<Option<StoredManifest>>;

    /// Marks manifest `digest` deleted at `now` and sets the tags pointing at it aside, in one
    /// transaction, unless an index that has a tag references it. A deleted manifest is
    /// invisible to every read here until restored.
    async fn delete_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        now: Millis,
    ) -> StoreResult<DeleteOutcome>;

    /// Deletes `tag`; false when absent.
    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> StoreResult<bool>;

    /// Manifests of `repo` whose subject is `subject`, optionally of one artifact type.
    async fn list_referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> StoreResult<Vec<Referrer>>;
}

/// Package versions: the Packages API's view of a repository's manifests, with deletion, restore, purge and download counts.
#[async_trait]
pub trait VersionStore: Send + Sync + 'static {
    /// Versions of `repo` in `state` (deleted ones only if deleted after `deleted_after`),
    /// and given `tagged`, only those with (`true`) or without (`false`) tags — a deleted
    /// version by the tags it had — newest first: the total and `limit` of them after
    /// skipping `offset`, filtered and counted in the store so pages stay whole.
    async fn list_versions(
        &self,
        repo: &RepoName,
        state: VersionState,
        tagged: Option<bool>,
        deleted_after: Millis,
        offset: u64,
        limit: usize,
    ) -> StoreResult<(u64, Vec<VersionRecord>)>;

    /// Version `id` of `repo`, live or deleted.
    async fn version(&self, repo: &RepoName, id: VersionId) -> StoreResult<Option<VersionRecord>>;

    /// The downloads of `repo`'s live versions added up, in one query.
    async fn downloads(&self, repo: &RepoName) -> StoreResult<u64>;

    /// Restores deleted manifest `digest` (and deleted children it references) with the tags
    /// it had that are still free, in one transaction.
    async fn restore_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> StoreResult<RestoreOutcome>;

    /// Adds manifest GETs to versions' download counts and records `at` as their last pull.
    async fn add_downloads(
        &self,
        counts: &[(RepoName, Digest, u64)],
        at: Millis,
    ) -> StoreResult<()>;

    /// Removes for good the manifests deleted before `before` (tags set aside, references,
    /// version rows); returns how many.
    async fn purge_deleted_manifests(&self, before: Millis) -> StoreResult<u64>;
}

/// Storage policies (immutable tags, retention) of accounts and packages, and what a
/// retention pass reads. Policies are stored as set and read back whole.
#[async_trait]
pub trait PolicyStore: Send + Sync + 'static {
    /// The policies set on `scope` (`None`: none set).
    async fn policies(&self, scope: PolicyScope<'_>) -> StoreResult<Option<Policies>>;

    /// Sets the policies of `scope` (`None` removes them). A package scope names an existing
    /// package (else `NotFound`).
    async fn set_policies(
        &self,
        scope: PolicyScope<'_>,
        policies: Option<&Policies>,
        at: Millis,
    ) -> StoreResult<()>;

    /// The policies applying to package `repo` (which may not exist yet): its owning
    /// account's (the account named by its first segment) and its own, in one read.
    async fn package_policies(&self, repo: &RepoName) -> StoreResult<PackagePolicies>;

    /// The live packages a retention policy applies to (set on them or on their owner), by
    /// name.
    async fn retained_packages(&self) -> StoreResult<Vec<RepoName>>;

    /// The live versions of `repo` with what retention needs of each (tags, children,
    /// subject, last pull).
    async fn retention_facts(&self, repo: &RepoName) -> StoreResult<Vec<VersionFacts>>;

    /// The tags of `repo` pointing at manifest `digest`, sorted.
    async fn manifest_tags(&self, repo: &RepoName, digest: &Digest) -> StoreResult<Vec<String>>;
}

/// The catalog and tag listings, and whether a repository exists.
#[async_trait]
pub trait ListingStore: Send + Sync + 'static {
    /// Up to `limit` tags of `repo` in lexical order after `last`; `None` when the
    /// repository does not exist.
    async fn list_tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        limit: usize,
    ) -> StoreResult<Option<Vec<String>>>;

    /// Up to `limit` repository names in lexical order after `last`.
    async fn list_repositories(&self, last: Option<&str>, limit: usize)
    -> StoreResult<Vec<String>>;

    /// Whether `repo` exists.
    async fn repository_exists(&self, repo: &RepoName) -> StoreResult<bool>;
}

/// Whether a store can serve right now: what a readiness check asks.
#[async_trait]
pub trait HealthProbe: Send + Sync + 'static {
    /// Answers cheaply when the store can read and write; otherwise an error saying what is
    /// wrong (e.g. the database file is gone or no longer writable). Callers bound it with a
    /// deadline.
    async fn probe(&self) -> StoreResult<()>;
}

/// Repository state: which blobs and manifests a repository holds, tags, upload sessions,
/// versions, subject→referrer links and storage quotas — every metadata port of the registry, implemented by
/// one backend over one database (each area's trait in its own module).
pub trait MetadataStore:
    BlobLinkStore
    + UploadStore
    + ManifestStore
    + VersionStore
    + ListingStore
    + GcStore
    + PolicyStore
    + QuotaStore
    + HealthProbe
{
}

impl<T> MetadataStore for T where
    T: BlobLinkStore
        + UploadStore
        + ManifestStore
        + VersionStore
        + ListingStore
        + QuotaStore
        + GcStore
        + PolicyStore
        + HealthProbe
{
}

/// A blob as garbage collection sees it: its digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizedBlob {
    /// The blob's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// What garbage collection asks of the metadata (ARCHITECTURE.md "Garbage collection").
///
/// A blob is *referenced* while a repository links it, a manifest (live, or deleted and
/// still restorable) references it, or an upload's final `PUT` has verified it. A pass marks
/// the blobs it finds referenced by nothing with the time it found them, flags those still
/// referenced by nothing a grace period later, deletes their bytes and then forgets them.
/// Nothing may link a flagged blob ([`StoreErrorKind::Collecting`](crate::error::StoreErrorKind::Collecting)),
/// and flagging re-checks the references under the same lock a new link takes, so a blob is
/// either kept by a new reference or refused to it, never both.
#[async_trait]
pub trait GcStore: Send + Sync + 'static {
    /// Called by an upload before it commits blob `digest`'s bytes: clears the mark a pass
    /// left on the blob (so it is not flagged within a grace period of now); errors with
    /// [`StoreErrorKind::Collecting`](crate::error::StoreErrorKind::Collecting) when the blob
    /// is flagged. Nothing to do for a blob the store does not know.
    async fn claim_blob(&self, digest: &Digest) -> StoreResult<()>;

    /// Removes the links made before `cutoff` that no manifest of their repository references
    /// (live or deleted), each batch in its own short transaction that re-checks them under
    /// lock; with `dry_run` only counts them. Returns how many.
    async fn collect_links(&self, cutoff: Millis, dry_run: bool) -> StoreResult<u64>;

    /// Marks with `now` the blobs referenced by nothing that carry no mark yet, and clears the
    /// mark of marked blobs referenced again. Returns (marked, cleared).
    async fn mark_unreferenced(&self, now: Millis) -> StoreResult<(u64, u64)>;

    /// Up to `limit` blobs after `after` (in digest order) to delete: those already flagged
    /// (by a pass that was interrupted, or adopted strays) and those marked at or before
    /// `cutoff` and still referenced by nothing, which this call flags (unless `dry_run`).
    async fn doom_blobs(
        &self,
        cutoff: Millis,
        after: Option<&Digest>,
        limit: usize,
        dry_run: bool,
    ) -> StoreResult<Vec<SizedBlob>>;

    /// Forgets the flagged blobs among `digests`, whose bytes are gone. Returns how many.
    async fn forget_blobs(&self, digests: &[Digest]) -> StoreResult<u64>;

    /// Of `stored` (blobs whose bytes the blob store holds), the ones the metadata does not
    /// know: strays, left by a process stopped between storing bytes and recording them. A
    /// blob an upload verified is known: the upload's recovery records it.
    async fn unknown_blobs(&self, stored: &[Digest]) -> StoreResult<Vec<Digest>>;

    /// Records `strays` as flagged for deletion, so nothing links them while their bytes go,
    /// except those an upload recorded meanwhile. Returns the ones recorded.
    async fn adopt_strays(&self, strays: &[SizedBlob]) -> StoreResult<Vec<SizedBlob>>;

    /// The blobs referenced by nothing right now (flagged or not): how many, and their bytes.
    async fn unreferenced_blobs(&self) -> StoreResult<(u64, u64)>;
}

/// What a finished [`UploadWriter`] leaves: the upload's total length, and the store's own
/// state for the upload after those bytes (for an object store: the multipart upload's id,
/// its parts and any staged tail). The caller records both with the upload's session
/// ([`UploadStore::advance_upload`]) and hands the state back on every later call about the
/// upload, so any node can take the next request. A store that needs none returns it empty.
#[derive(Debug, Default)]
pub struct UploadProgress {
    /// Bytes the upload holds: durably, or in [`UploadProgress::held`].
    pub len: u64,
    /// The store's state for the upload; opaque to everything else.
    pub state: Vec<u8>,
    /// The upload's bytes, when the writer kept them in memory for this request's commit
    /// instead of writing them anywhere (only [`UploadWriter::finish_to_commit`] may, and
    /// only for an upload whose every byte came in that request). Committed with
    /// [`BlobStore::commit_written`]; never recorded, and gone with the request if it is not
    /// committed.
    pub held: Option<HeldBytes>,
}

/// An upload's bytes a writer kept in memory (see [`UploadProgress::held`]), with what holds
/// their room in the store's memory budget until they are written or dropped.
pub struct HeldBytes {
    /// The bytes.
    pub bytes: Bytes,
    /// Gives the bytes' room back when dropped (the store's own, e.g. a semaphore permit).
    pub room: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for HeldBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldBytes")
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// Receives the bytes of one upload request. Writes may be buffered and performed in the
/// background; [`UploadWriter::finish`] returns only when everything written is durable.
#[async_trait]
pub trait UploadWriter: Send {
    /// Appends `chunk`.
    async fn write(&mut self, chunk: Bytes) -> StoreResult<()>;

    /// Appends `chunks` in order, as one hand-off where the store can (the default appends
    /// them one by one).
    async fn write_batch(&mut self, chunks: Vec<Bytes>) -> StoreResult<()> {
        for chunk in chunks {
            self.write(chunk).await?;
        }
        Ok(())
    }

    /// Tells the writer that the request announced `bytes` more (its `Content-Length`) before
    /// any of them is written, so a store may reserve room for them as they come. A hint: the
    /// bytes still arrive through the writes, and a request may end before all of them did.
    /// The default ignores it.
    fn announce(&mut self, bytes: u64) {
        let _ = bytes;
    }

    /// Waits for every write, makes the data durable, and returns the upload's total length
    /// with the store's state for it.
    async fn finish(self: Box<Self>) -> StoreResult<UploadProgress>;

    /// As [`UploadWriter::finish`], for the last bytes of an upload that this same request
    /// commits under their digest or discards: nothing durable names the upload before that
    /// commit, so a crash before it loses nothing a client was told was kept. A store may
    /// skip what only makes the upload itself survive a crash (a new file's directory entry);
    /// and when every byte of the upload came in this request, it may keep them in memory
    /// ([`UploadProgress::held`]) for the commit to write under their digest in one step.
    async fn finish_to_commit(self: Box<Self>) -> StoreResult<UploadProgress> {
        self.finish().await
    }
}

/// The content-addressed blob store shared by every repository: a blob pushed twice is stored
/// once. Blob bytes under a digest always hash to that digest.
///
/// Upload calls take the upload's `id` and `state`: the state the last recorded
/// [`UploadWriter::finish`] of that upload returned (empty before any).
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// The size of blob `digest`, if stored.
    async fn stat(&self, digest: &Digest) -> StoreResult<Option<u64>>;

    /// Streams blob `digest`, from `start` (inclusive) to `end` (exclusive). Errors with a
    /// not-found store error when absent.
    async fn read(&self, digest: &Digest, start: u64, end: u64) -> StoreResult<ByteStream>;

    /// A URL that serves blob `digest` itself for `expires_in`, for a client redirected
    /// there instead of reading through Berth; `None` when the store has no such URLs.
    async fn presigned_url(
        &self,
        _digest: &Digest,
        _expires_in: std::time::Duration,
    ) -> StoreResult<Option<String>> {
        Ok(None)
    }

    /// Opens upload `id` for appending at `offset` (the length recorded with `state`),
    /// creating it when `offset` is 0 and discarding anything written after that state was
    /// recorded (bytes of a request that never completed). Resuming (`offset` > 0) an upload
    /// that has no bytes fails with
    /// [`StoreErrorKind::NotFound`](crate::error::StoreErrorKind::NotFound).
    async fn upload_writer(
        &self,
        id: &str,
        state: &[u8],
        offset: u64,
    ) -> StoreResult<Box<dyn UploadWriter>>;

    /// Streams the first `len` bytes of upload `id` (to hash it with another algorithm).
    async fn read_upload(&self, id: &str, state: &[u8], len: u64) -> StoreResult<ByteStream>;

    /// Makes upload `id` (already verified to hash to `digest`) readable under `digest`,
    /// atomically, and removes the upload. If the blob already exists the upload is dropped.
    /// Calling it again for the same upload and state (after an interruption) completes it.
    async fn commit_upload(&self, id: &str, state: &[u8], digest: &Digest) -> StoreResult<()>;

    /// Stores `held`, the whole of upload `id` as its writer kept it in memory (already
    /// verified to hash to `digest`), under `digest`, durably; a blob already there reads the
    /// same after. Only a store whose writer holds bytes is asked: the default refuses.
    async fn commit_held(&self, id: &str, held: HeldBytes, digest: &Digest) -> StoreResult<()> {
        drop(held);
        Err(StoreError::new(
            format!("committing upload `{id}` as blob {digest}"),
            "this store keeps no upload bytes in memory",
        ))
    }

    /// Commits what this request's writer left (`written`, verified to hash to `digest`):
    /// its held bytes ([`BlobStore::commit_held`]), or else its state
    /// ([`BlobStore::commit_upload`]).
    async fn commit_written(
        &self,
        id: &str,
        written: UploadProgress,
        digest: &Digest,
    ) -> StoreResult<()> {
        match written.held {
            Some(held) => self.commit_held(id, held, digest).await,
            None => self.commit_upload(id, &written.state, digest).await,
        }
    }

    /// Removes upload `id`'s bytes, if any.
    async fn abort_upload(&self, id: &str, state: &[u8]) -> StoreResult<()>;

    /// The length of upload `id`'s bytes; `None` when there are none.
    async fn upload_len(&self, id: &str, state: &[u8]) -> StoreResult<Option<u64>>;

    /// Removes the bytes of every upload last written before `modified_before` (ms since the
    /// epoch), whether or not a session names them; returns how many were removed.
    async fn purge_uploads(&self, modified_before: Millis) -> StoreResult<usize>;

    /// Deletes blob `digest`'s bytes (garbage collection, once the metadata flagged it);
    /// false when there were none.
    async fn delete(&self, digest: &Digest) -> StoreResult<bool>;

    /// The stored blobs last written before `modified_before` (ms since the epoch) among the
    /// next `limit` after `after`, in digest order, and where the next page starts (`None`
    /// at the end): what garbage collection compares with the metadata to find bytes nothing
    /// recorded.
    async fn list_blobs(
        &self,
        after: Option<&Digest>,
        limit: usize,
        modified_before: Millis,
    ) -> StoreResult<(Vec<Digest>, Option<Digest>)>;

    /// Answers cheaply when blobs can be read and uploads written (a readiness check);
    /// otherwise an error saying what is wrong. Callers bound it with a deadline.
    async fn probe(&self) -> StoreResult<()>;
}

/// What one node adds to a key's shared window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountDelta {
    /// The key, namespaced by its caller: `api:cred:42`, `login:10.0.0.1`.
    pub key: String,
    /// What the node counted since it last added (negative: requests given back).
    pub delta: i64,
    /// When the window began as the node counts it (its first count of the key): where a new
    /// shared window begins, when the key has none that is live.
    pub since: Millis,
}

/// One key's window as [`SharedCounters::add_counts`] leaves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedCount {
    /// Everything every node added to the key in this window.
    pub total: u64,
    /// When the window began.
    pub started_at: Millis,
}

/// Counters that the nodes sharing one database add into, each counted in a window of time:
/// the budgets of the HTTP limiters (API requests, failed logins), which every node counts in
/// its memory and adds here in batches, taking back what all of them counted.
///
/// A key's window lasts the `window` of the call that began it. Only backends that several
/// nodes share implement it: one process alone counts in its memory.
#[async_trait]
pub trait SharedCounters: Send + Sync + 'static {
    /// Adds each delta into its key's window and returns what the key now holds, in the order
    /// of `deltas` (a key given twice is added twice and answered twice). A key without a
    /// live window at `now` begins one at its delta's `since` (the earliest, if given twice),
    /// but never before the window that ended, nor so early that it has ended by `now`. A
    /// total never goes below zero. One round trip for the whole batch, which locks its keys
    /// in a fixed order, so batches from several nodes never deadlock.
    async fn add_counts(
        &self,
        deltas: &[CountDelta],
        window: Millis,
        now: Millis,
    ) -> StoreResult<Vec<SharedCount>>;

    /// Forgets the windows that ended before `ended_before` (a key without a window is one
    /// whose window ended); returns how many.
    async fn forget_counts(&self, ended_before: Millis) -> StoreResult<u64>;
}
