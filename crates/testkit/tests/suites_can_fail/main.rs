//! The suites can fail: each mutant below is a real backend with one rule broken, and the
//! clause that states the rule must fail on it (and pass on the same wrapper unbroken, so
//! the failure is the rule's, not the wrapper's). One mutant per suite at least.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use berth_blob::FsBlobStore;
use berth_core::access::store::{CredentialStore, PackageStore};
use berth_core::access::{AccountId, CredentialId, Target};
use berth_core::hooks::store::{Claimed, HookStore};
use berth_core::ports::{
    BlobStore, ByteStream, Lease, Millis, StoreResult, UploadStore, UploadWriter,
};
use berth_core::{Digest, RepoName};
use berth_meta_sqlite::SqliteMetadataStore;
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use tempfile::TempDir;

mod forward;

/// The rule a [`Broken`] store breaks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rule {
    /// None: the wrapper only forwards.
    Kept,
    /// An upload's lease is granted to whoever asks, held or not.
    LeaseNeverExclusive,
    /// A target never reports the caller's role on the linked repository.
    TargetIgnoresRepoRole,
    /// The hook queue hands out again what it handed out last, lease or not.
    DeliveryHandedOutTwice,
    /// A revocation is acknowledged but never stored.
    RevocationIgnored,
}

/// The SQLite store with one rule broken.
#[derive(Clone)]
struct Broken {
    inner: SqliteMetadataStore,
    rule: Rule,
    /// The last batch the queue handed out (for [`Rule::DeliveryHandedOutTwice`]).
    last_claimed: Arc<Mutex<Vec<Claimed>>>,
}

impl Broken {
    async fn lease_upload_broken(
        &self,
        repo: &RepoName,
        id: &str,
        token: &str,
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<Lease> {
        let lease = self
            .inner
            .lease_upload(repo, id, token, now, lease_until)
            .await?;
        if self.rule == Rule::LeaseNeverExclusive && lease == Lease::Busy {
            let session = self.inner.get_upload(repo, id).await?.expect("leased");
            return Ok(Lease::Granted(session));
        }
        Ok(lease)
    }

    async fn target_broken(&self, name: &RepoName, user: Option<AccountId>) -> StoreResult<Target> {
        let mut target = self.inner.target(name, user).await?;
        if self.rule == Rule::TargetIgnoresRepoRole {
            target.relations.repo_role = None;
        }
        Ok(target)
    }

    async fn revoke_credential_broken(&self, id: CredentialId, now: Millis) -> StoreResult<bool> {
        if self.rule == Rule::RevocationIgnored {
            return Ok(self.inner.credential(id).await?.is_some());
        }
        self.inner.revoke_credential(id, now).await
    }

    async fn claim_due_broken(
        &self,
        now: Millis,
        token: &str,
        lease_until: Millis,
        limit: usize,
    ) -> StoreResult<Vec<Claimed>> {
        let claimed = self.inner.claim_due(now, token, lease_until, limit).await?;
        if self.rule != Rule::DeliveryHandedOutTwice {
            return Ok(claimed);
        }
        let mut last = self.last_claimed.lock().unwrap();
        if claimed.is_empty() {
            return Ok(last.clone());
        }
        *last = claimed.clone();
        Ok(claimed)
    }
}

/// A fresh SQLite store breaking `rule`, and its directory.
async fn broken(rule: Rule) -> (TempDir, Broken) {
    let dir = tempfile::tempdir().unwrap();
    let inner = SqliteMetadataStore::open(&dir.path().join("meta.db"))
        .await
        .unwrap();
    let store = Broken {
        inner,
        rule,
        last_claimed: Arc::default(),
    };
    (dir, store)
}

/// The filesystem blob store with one rule broken.
struct BrokenBlobs {
    inner: FsBlobStore,
    rule: BlobRule,
}

/// The rule a [`BrokenBlobs`] store breaks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum BlobRule {
    /// None: the wrapper only forwards.
    Kept,
    /// A range read serves the whole blob.
    IgnoresRanges,
    /// An upload reads back with its first byte changed.
    ServesWrongBytes,
}

#[async_trait::async_trait]
impl BlobStore for BrokenBlobs {
    async fn stat(&self, digest: &Digest) -> StoreResult<Option<u64>> {
        self.inner.stat(digest).await
    }

    async fn read(&self, digest: &Digest, start: u64, end: u64) -> StoreResult<ByteStream> {
        if self.rule == BlobRule::IgnoresRanges {
            let len = self.inner.stat(digest).await?.unwrap_or(end);
            return self.inner.read(digest, 0, len).await;
        }
        self.inner.read(digest, start, end).await
    }

    async fn upload_writer(&self, id: &str, offset: u64) -> StoreResult<Box<dyn UploadWriter>> {
        self.inner.upload_writer(id, offset).await
    }

    async fn read_upload(&self, id: &str, len: u64) -> StoreResult<ByteStream> {
        let stream = self.inner.read_upload(id, len).await?;
        if self.rule != BlobRule::ServesWrongBytes {
            return Ok(stream);
        }
        let mut first = true;
        Ok(Box::pin(stream.map(move |chunk| {
            let chunk = chunk?;
            if !std::mem::take(&mut first) || chunk.is_empty() {
                return Ok(chunk);
            }
            let mut bytes = chunk.to_vec();
            bytes[0] ^= 0xff;
            Ok(Bytes::from(bytes))
        })))
    }

    async fn commit_upload(&self, id: &str, digest: &Digest) -> StoreResult<()> {
        self.inner.commit_upload(id, digest).await
    }

    async fn abort_upload(&self, id: &str) -> StoreResult<()> {
        self.inner.abort_upload(id).await
    }

    async fn upload_len(&self, id: &str) -> StoreResult<Option<u64>> {
        self.inner.upload_len(id).await
    }

    async fn purge_uploads(&self, modified_before: Millis) -> StoreResult<usize> {
        self.inner.purge_uploads(modified_before).await
    }
}

/// A fresh filesystem blob store breaking `rule`, and its directory.
fn broken_blobs(rule: BlobRule) -> (TempDir, BrokenBlobs) {
    let dir = tempfile::tempdir().unwrap();
    let inner = FsBlobStore::open(dir.path()).unwrap();
    (dir, BrokenBlobs { inner, rule })
}

/// Runs a clause; its panic's message, if it failed.
async fn failure(clause: impl Future<Output = ()>) -> Option<String> {
    let outcome: Result<(), Box<dyn Any + Send>> = AssertUnwindSafe(clause).catch_unwind().await;
    let panic = outcome.err()?;
    let text = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()));
    Some(text.unwrap_or_else(|| "a panic".to_owned()))
}

/// Runs `clause` on a store breaking `rule` (it must fail) and on one keeping every rule (it
/// must pass).
macro_rules! fails_only_when_broken {
    ($open:ident, $kept:expr, $rule:expr, $clause:path) => {{
        let (_dir, store) = $open($kept).await;
        assert_eq!(failure($clause(store)).await, None, "passes unbroken");
        let (_dir, store) = $open($rule).await;
        let Some(why) = failure($clause(store)).await else {
            panic!("{:?} must fail {}", $rule, stringify!($clause));
        };
        let why = why.lines().next().unwrap_or_default();
        eprintln!("{:?} fails {}: {why}", $rule, stringify!($clause));
    }};
}

#[tokio::test]
async fn a_lease_that_is_not_exclusive_fails_the_upload_clauses() {
    use berth_testkit::meta;
    let rule = Rule::LeaseNeverExclusive;
    fails_only_when_broken!(
        broken,
        Rule::Kept,
        rule,
        meta::concurrent_lease_requests_grant_one
    );
    fails_only_when_broken!(broken, Rule::Kept, rule, meta::leases_exclude_and_expire);
}

#[tokio::test]
async fn a_target_that_ignores_the_repository_role_fails_the_role_clause() {
    use berth_testkit::access;
    let rule = Rule::TargetIgnoresRepoRole;
    fails_only_when_broken!(
        broken,
        Rule::Kept,
        rule,
        access::repo_role_comes_from_collaborators_teams_and_ownership
    );
}

#[tokio::test]
async fn a_queue_that_hands_a_delivery_out_twice_fails_the_queue_clause() {
    use berth_testkit::hooks;
    fails_only_when_broken!(
        broken,
        Rule::Kept,
        Rule::DeliveryHandedOutTwice,
        hooks::the_queue_hands_out_each_hooks_oldest_delivery_once_under_a_lease
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_store_that_ignores_ranges_fails_the_range_clause() {
    use berth_testkit::blobs;
    let open = async |rule| broken_blobs(rule);
    fails_only_when_broken!(
        open,
        BlobRule::Kept,
        BlobRule::IgnoresRanges,
        blobs::committed_blob_is_readable_by_range
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_store_that_serves_wrong_bytes_fails_the_read_back_clauses() {
    use berth_testkit::blobs;
    let open = async |rule| broken_blobs(rule);
    let rule = BlobRule::ServesWrongBytes;
    fails_only_when_broken!(
        open,
        BlobRule::Kept,
        rule,
        blobs::two_writers_append_and_read_back
    );
    fails_only_when_broken!(
        open,
        BlobRule::Kept,
        rule,
        blobs::writer_at_smaller_offset_discards_the_rest
    );
}

#[tokio::test]
async fn a_store_that_ignores_revocations_fails_the_cache_clause() {
    use berth_testkit::cache;
    fails_only_when_broken!(
        broken,
        Rule::Kept,
        Rule::RevocationIgnored,
        cache::a_revocation_through_the_cache_applies_to_the_next_read
    );
}
