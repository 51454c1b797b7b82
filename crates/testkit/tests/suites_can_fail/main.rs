//! The suites can fail: each mutant below is a real backend with one rule broken, and the
//! clause that states the rule must fail on it (and pass on the same backend unbroken, so
//! the failure is the rule's, not the setup's). One mutant per suite at least.
//!
//! A metadata mutant is the SQLite store with one trigger added to its database that undoes
//! what a rule needs (a lease that lapses as it is taken, a revocation that is undone…): the
//! backend's own code, broken in its data, with no wrapper to keep in step with the ports.

use std::any::Any;
use std::panic::AssertUnwindSafe;

use berth_blob::FsBlobStore;
use berth_core::Digest;
use berth_core::ports::{BlobStore, ByteStream, HeldBytes, Millis, StoreResult, UploadWriter};
use berth_meta_sqlite::SqliteMetadataStore;
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use sqlx::Connection as _;
use tempfile::TempDir;

/// The rule a metadata mutant breaks: a trigger that undoes it, or none.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rule {
    /// None: the store as shipped.
    Kept,
    /// An upload's lease lapses the moment it is taken, so whoever asks next gets it too.
    LeaseNeverExclusive,
    /// A collaborator's role on a repository is dropped as it is granted.
    CollaboratorRoleDropped,
    /// A claimed webhook delivery's lease lapses at once, so the queue hands it out again.
    DeliveryHandedOutTwice,
    /// A revocation is acknowledged and undone.
    RevocationIgnored,
    /// A blob an account holds already counts again when another of its repositories links it.
    SharedBlobCountedTwice,
    /// A quota is acknowledged and forgotten.
    QuotaForgotten,
    /// Garbage collection's flag on a blob is dropped as it is set, so a new link is taken.
    GcFlagDropped,
    /// Downloads are counted but their time is not kept as the version's last pull, so a
    /// retention policy would delete versions still in use.
    LastPullForgotten,
}

impl Rule {
    /// The trigger that breaks the rule.
    fn trigger(self) -> Option<&'static str> {
        Some(match self {
            Rule::Kept => return None,
            Rule::LeaseNeverExclusive => {
                "CREATE TRIGGER mutant AFTER UPDATE OF lease_token ON uploads \
                 WHEN NEW.lease_token IS NOT NULL \
                 BEGIN UPDATE uploads SET lease_until = -1 WHERE id = NEW.id; END"
            }
            Rule::CollaboratorRoleDropped => {
                "CREATE TRIGGER mutant AFTER INSERT ON repo_collaborators \
                 BEGIN DELETE FROM repo_collaborators \
                     WHERE repo_id = NEW.repo_id AND user_id = NEW.user_id; END"
            }
            Rule::GcFlagDropped => {
                "CREATE TRIGGER mutant AFTER UPDATE OF deleting_at ON blobs \
                 WHEN NEW.deleting_at IS NOT NULL \
                 BEGIN UPDATE blobs SET deleting_at = NULL WHERE digest = NEW.digest; END"
            }
            Rule::DeliveryHandedOutTwice => {
                "CREATE TRIGGER mutant AFTER UPDATE OF lease_token ON hook_deliveries \
                 WHEN NEW.lease_token IS NOT NULL \
                 BEGIN UPDATE hook_deliveries SET lease_until = NULL WHERE id = NEW.id; END"
            }
            Rule::LastPullForgotten => {
                "CREATE TRIGGER mutant AFTER UPDATE OF last_pulled_at ON package_versions \
                 WHEN NEW.last_pulled_at IS NOT NULL \
                 BEGIN UPDATE package_versions SET last_pulled_at = NULL WHERE id = NEW.id; END"
            }
            Rule::RevocationIgnored => {
                "CREATE TRIGGER mutant AFTER UPDATE OF revoked_at ON credentials \
                 WHEN NEW.revoked_at IS NOT NULL \
                 BEGIN UPDATE credentials SET revoked_at = NULL WHERE id = NEW.id; END"
            }
            Rule::SharedBlobCountedTwice => {
                "CREATE TRIGGER mutant AFTER UPDATE OF links ON account_blobs \
                 WHEN NEW.links > OLD.links \
                 BEGIN UPDATE account_usage SET bytes = bytes + NEW.size \
                     WHERE owner = NEW.owner; END"
            }
            Rule::QuotaForgotten => {
                "CREATE TRIGGER mutant AFTER INSERT ON storage_quotas \
                 BEGIN DELETE FROM storage_quotas WHERE account_id = NEW.account_id; END"
            }
        })
    }
}

/// A fresh SQLite store breaking `rule`, and its directory.
async fn broken(rule: Rule) -> (TempDir, SqliteMetadataStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    let store = SqliteMetadataStore::open(&path).await.unwrap();
    if let Some(trigger) = rule.trigger() {
        let url = format!("sqlite://{}", path.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query(trigger).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }
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
    /// A deletion answers done and keeps the bytes.
    DeleteKeepsBytes,
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

    async fn upload_writer(
        &self,
        id: &str,
        state: &[u8],
        offset: u64,
    ) -> StoreResult<Box<dyn UploadWriter>> {
        self.inner.upload_writer(id, state, offset).await
    }

    async fn read_upload(&self, id: &str, state: &[u8], len: u64) -> StoreResult<ByteStream> {
        let stream = self.inner.read_upload(id, state, len).await?;
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

    async fn commit_upload(&self, id: &str, state: &[u8], digest: &Digest) -> StoreResult<()> {
        self.inner.commit_upload(id, state, digest).await
    }

    async fn commit_held(&self, id: &str, held: HeldBytes, digest: &Digest) -> StoreResult<()> {
        self.inner.commit_held(id, held, digest).await
    }

    async fn abort_upload(&self, id: &str, state: &[u8]) -> StoreResult<()> {
        self.inner.abort_upload(id, state).await
    }

    async fn upload_len(&self, id: &str, state: &[u8]) -> StoreResult<Option<u64>> {
        self.inner.upload_len(id, state).await
    }

    async fn purge_uploads(&self, modified_before: Millis) -> StoreResult<usize> {
        self.inner.purge_uploads(modified_before).await
    }

    async fn delete(&self, digest: &Digest) -> StoreResult<bool> {
        if self.rule == BlobRule::DeleteKeepsBytes {
            return Ok(self.inner.stat(digest).await?.is_some());
        }
        self.inner.delete(digest).await
    }

    async fn list_blobs(
        &self,
        after: Option<&Digest>,
        limit: usize,
        modified_before: Millis,
    ) -> StoreResult<(Vec<Digest>, Option<Digest>)> {
        self.inner.list_blobs(after, limit, modified_before).await
    }

    async fn probe(&self) -> StoreResult<()> {
        self.inner.probe().await
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
async fn a_store_that_counts_a_shared_blob_twice_fails_the_usage_clause() {
    use berth_testkit::meta;
    let rule = Rule::SharedBlobCountedTwice;
    fails_only_when_broken!(
        broken,
        Rule::Kept,
        rule,
        meta::usage_counts_each_blob_of_an_account_once
    );
}

#[tokio::test]
async fn a_store_that_forgets_quotas_fails_the_quota_clauses() {
    use berth_testkit::meta;
    let rule = Rule::QuotaForgotten;
    fails_only_when_broken!(
        broken,
        Rule::Kept,
        rule,
        meta::a_quota_is_set_read_and_cleared
    );
    fails_only_when_broken!(
        broken,
        Rule::Kept,
        rule,
        meta::links_over_the_quota_change_nothing
    );
    fails_only_when_broken!(
        broken,
        Rule::Kept,
        rule,
        meta::racing_links_never_pass_the_quota
    );
    fails_only_when_broken!(
        broken,
        Rule::Kept,
        rule,
        meta::new_uploads_start_within_the_owners_limits
    );
}

#[tokio::test]
async fn a_store_that_drops_collaborator_roles_fails_the_role_clause() {
    use berth_testkit::access;
    let rule = Rule::CollaboratorRoleDropped;
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
async fn a_store_that_drops_the_gc_flag_fails_the_flag_clause() {
    use berth_testkit::meta;
    fails_only_when_broken!(
        broken,
        Rule::Kept,
        Rule::GcFlagDropped,
        meta::gc_marks_then_flags_then_forgets
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_store_that_keeps_deleted_bytes_fails_the_deletion_clause() {
    use berth_testkit::blobs;
    let open = async |rule| broken_blobs(rule);
    fails_only_when_broken!(
        open,
        BlobRule::Kept,
        BlobRule::DeleteKeepsBytes,
        blobs::deleted_blobs_are_gone_and_can_be_stored_again
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

#[tokio::test]
async fn a_store_that_forgets_the_last_pull_fails_the_retention_facts_clause() {
    use berth_testkit::policies;
    fails_only_when_broken!(
        broken,
        Rule::Kept,
        Rule::LastPullForgotten,
        policies::retention_facts_name_tags_children_subjects_and_last_pulls
    );
}
