//! The metadata contract: the registry's ports ([`berth_core::ports::MetadataStore`]) — blob
//! links, upload sessions and their leases, manifests and tags, versions, listings, storage
//! usage and quotas.
//!
//! Each clause takes a fresh, empty store; [`metadata_contract!`](crate::metadata_contract)
//! stamps them per backend. The fixtures are public so a backend's own extras (reopening a
//! database, checking its schema) build the same values.

mod gc;
mod manifests;
mod quotas;
mod uploads;

pub use gc::*;
pub use manifests::*;
pub use quotas::*;
pub use uploads::*;

use berth_core::ports::{NewManifest, PutManifestOutcome, UploadSession};
use berth_core::{Digest, RepoName, Tag};
use bytes::Bytes;

/// Stamps the metadata contract for one backend: `metadata_contract!(sqlite, open)` makes
/// `mod sqlite` with one test per clause of [`meta`](crate::meta), each on the store `open`
/// returns (see the [crate] docs).
#[macro_export]
macro_rules! metadata_contract {
    ($backend:ident, $open:expr) => {
        $crate::__stamp!(
            $backend,
            $open,
            meta,
            [::tokio::test],
            [
                blobs_are_linked_per_repository,
                leases_exclude_and_expire,
                concurrent_lease_requests_grant_one,
                complete_upload_removes_session_and_links_blob,
                manifests_by_tag_and_digest,
                deleting_a_manifest_deletes_its_tags,
                deleted_versions_restore_with_their_tags_and_children,
                a_deleted_manifest_pushed_again_is_published_anew,
                versions_filter_by_tags_in_the_store,
                index_with_missing_child_stores_nothing,
                tags_paginate_in_byte_order,
                repositories_paginate,
                referrers_filter_by_subject_and_artifact_type,
                stale_uploads_are_the_old_unleased_ones,
                sessions_without_a_byte_go_stale_sooner,
                a_verified_mark_is_kept_under_the_lease_and_listed_for_recovery,
                open_uploads_are_counted_per_owner,
                a_counted_lease_reads_the_owners_uploads,
                usage_counts_each_blob_of_an_account_once,
                a_quota_is_set_read_and_cleared,
                links_over_the_quota_change_nothing,
                racing_links_never_pass_the_quota,
                new_uploads_start_within_the_owners_limits,
                a_purged_package_gives_its_blobs_back,
                a_fresh_store_probes_ok,
                gc_takes_only_old_unused_links,
                gc_marks_then_flags_then_forgets,
                gc_keeps_what_is_referenced_or_claimed,
                gc_adopts_strays,
                gc_flags_in_pages,
                purging_a_manifest_purges_its_referrers,
            ]
        );
    };
}

/// The repository `name`.
pub fn repo(name: &str) -> RepoName {
    name.parse().expect("repo name")
}

/// The tag `name`.
pub fn tag(name: &str) -> Tag {
    name.parse().expect("tag")
}

/// The sha256 digest of `seed`.
pub fn digest(seed: &str) -> Digest {
    Digest::sha256(seed.as_bytes())
}

/// An image manifest whose bytes are `body`, naming two blobs and requiring none.
pub fn manifest(body: &str) -> NewManifest {
    let content = Bytes::from(body.to_owned());
    NewManifest {
        digest: Digest::sha256(&content),
        media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
        content,
        artifact_type: None,
        subject: None,
        blobs: vec![digest("config"), digest("layer")],
        required_blobs: Vec::new(),
        children: Vec::new(),
        annotations: None,
        total_size: body.len() as u64,
        platforms: Vec::new(),
        labels: Default::default(),
        pushed_by: None,
        tag_immutable: false,
    }
}

/// A put outcome without its version id, which depends on insertion order.
pub fn shape(outcome: PutManifestOutcome) -> PutManifestOutcome {
    match outcome {
        PutManifestOutcome::Stored {
            created,
            tag_moved,
            first_publish,
            ..
        } => PutManifestOutcome::Stored {
            created,
            tag_moved,
            version_id: crate::id(0),
            first_publish,
        },
        other => other,
    }
}

/// A new upload session `id` of `repo_name`, started at 1 000 ms, with no bytes.
pub fn session(id: &str, repo_name: &str) -> UploadSession {
    UploadSession {
        id: id.to_owned(),
        repo: repo(repo_name),
        offset: 0,
        hash_state: Vec::new(),
        blob_state: Vec::new(),
        started_at: 1_000,
        verified: None,
    }
}
