//! Garbage collection's clauses ([`berth_core::ports::GcStore`]): which links and blobs a
//! pass may take, the flag that refuses new links, strays, and referrers purged with their
//! subject.

use berth_core::ports::{Lease, MetadataStore, SizedBlob, now_millis};
use berth_core::{Digest, StoreErrorKind};

use super::{digest, manifest, repo, session, tag};

/// A moment after every link the test made: every link is older than it.
fn later() -> i64 {
    now_millis() + 60_000
}

/// Blob `d` of `size` bytes, referenced by nothing: linked once, then unlinked.
async fn orphan<S: MetadataStore>(s: &S, d: &Digest, size: u64) {
    let scratch = repo("scratch/orphans");
    s.link_blob(&scratch, d, size).await.unwrap();
    assert!(s.unlink_blob(&scratch, d).await.unwrap());
}

/// The digests among `blobs`.
fn digests(blobs: &[SizedBlob]) -> Vec<Digest> {
    blobs.iter().map(|b| b.digest.clone()).collect()
}

/// Links no manifest of their repository uses go once older than the cut-off; links a live
/// or deleted (still restorable) manifest uses stay, until the manifest is purged.
pub async fn gc_takes_only_old_unused_links<S: MetadataStore + Clone>(s: S) {
    let r = repo("acme/app");
    let image = manifest("image"); // uses `config` and `layer`
    for (d, size) in [
        (digest("config"), 10),
        (digest("layer"), 20),
        (digest("extra"), 30),
    ] {
        s.link_blob(&r, &d, size).await.unwrap();
    }
    s.put_manifest(&r, &image, Some(&tag("v1"))).await.unwrap();
    // The same blob in another repository, unused there: only that link goes.
    s.link_blob(&repo("acme/other"), &digest("layer"), 20)
        .await
        .unwrap();

    assert_eq!(s.collect_links(0, false).await.unwrap(), 0, "all too young");
    assert_eq!(s.collect_links(later(), true).await.unwrap(), 2, "dry run");
    assert_eq!(
        s.linked_blob_size(&r, &digest("extra")).await.unwrap(),
        Some(30),
        "a dry run removes nothing"
    );
    assert_eq!(s.collect_links(later(), false).await.unwrap(), 2);
    assert_eq!(
        s.linked_blob_size(&r, &digest("extra")).await.unwrap(),
        None
    );
    assert_eq!(
        s.linked_blob_size(&repo("acme/other"), &digest("layer"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.linked_blob_size(&r, &digest("layer")).await.unwrap(),
        Some(20),
        "the manifest of this repository uses it"
    );

    // Deleted, the manifest can still be restored: its blobs stay.
    s.delete_manifest(&r, &image.digest, 50).await.unwrap();
    assert_eq!(s.collect_links(later(), false).await.unwrap(), 0);
    // Purged, its links go.
    s.purge_deleted_manifests(60).await.unwrap();
    assert_eq!(s.collect_links(later(), false).await.unwrap(), 2);
    assert_eq!(
        s.linked_blob_size(&r, &digest("config")).await.unwrap(),
        None
    );
}

/// A blob referenced by nothing is marked; once its mark is older than the cut-off it is
/// flagged; a flagged blob cannot be linked or claimed until it is forgotten.
pub async fn gc_marks_then_flags_then_forgets<S: MetadataStore + Clone>(s: S) {
    let x = digest("x");
    orphan(&s, &x, 7).await;
    assert_eq!(s.unreferenced_blobs().await.unwrap(), (1, 7));
    assert_eq!(s.mark_unreferenced(1_000).await.unwrap(), (1, 0));
    assert_eq!(
        s.mark_unreferenced(2_000).await.unwrap(),
        (0, 0),
        "marked once"
    );
    assert!(
        s.doom_blobs(999, None, 10, false).await.unwrap().is_empty(),
        "marked after the cut-off"
    );
    let dry = s.doom_blobs(1_000, None, 10, true).await.unwrap();
    assert_eq!(
        dry,
        vec![SizedBlob {
            digest: x.clone(),
            size: 7
        }]
    );

    // The dry run flagged nothing: a link is still taken.
    s.link_blob(&repo("acme/keep"), &x, 7).await.unwrap();
    assert!(
        s.doom_blobs(1_000, None, 10, false)
            .await
            .unwrap()
            .is_empty(),
        "linked again: kept"
    );
    assert!(s.unlink_blob(&repo("acme/keep"), &x).await.unwrap());
    assert!(
        s.doom_blobs(i64::MAX, None, 10, false)
            .await
            .unwrap()
            .is_empty(),
        "the new link cleared the mark: a pass must find it unreferenced again"
    );
    assert_eq!(s.mark_unreferenced(3_000).await.unwrap(), (1, 0));
    let flagged = s.doom_blobs(3_000, None, 10, false).await.unwrap();
    assert_eq!(digests(&flagged), vec![x.clone()]);

    let refused = s.link_blob(&repo("acme/late"), &x, 7).await.unwrap_err();
    assert_eq!(refused.kind(), StoreErrorKind::Collecting);
    assert_eq!(
        s.claim_blob(&x).await.unwrap_err().kind(),
        StoreErrorKind::Collecting
    );
    assert_eq!(
        s.linked_blob_size(&repo("acme/late"), &x).await.unwrap(),
        None
    );
    // An interrupted pass's flags come back to the next one, whatever its cut-off.
    assert_eq!(
        digests(&s.doom_blobs(0, None, 10, false).await.unwrap()),
        vec![x.clone()]
    );

    assert_eq!(s.forget_blobs(std::slice::from_ref(&x)).await.unwrap(), 1);
    assert_eq!(s.unreferenced_blobs().await.unwrap(), (0, 0));
    // Forgotten, it is new again to the next upload.
    s.link_blob(&repo("acme/late"), &x, 7).await.unwrap();
    assert_eq!(
        s.linked_blob_size(&repo("acme/late"), &x).await.unwrap(),
        Some(7)
    );
    assert_eq!(s.forget_blobs(&[x]).await.unwrap(), 0, "only flagged blobs");
}

/// An upload's claim clears a blob's mark; manifests and verified uploads are references.
pub async fn gc_keeps_what_is_referenced_or_claimed<S: MetadataStore + Clone>(s: S) {
    // Referenced by a manifest only (its repository's link removed by hand).
    let r = repo("acme/app");
    s.link_blob(&r, &digest("config"), 1).await.unwrap();
    s.link_blob(&r, &digest("layer"), 2).await.unwrap();
    s.put_manifest(&r, &manifest("image"), None).await.unwrap();
    s.unlink_blob(&r, &digest("config")).await.unwrap();
    // Referenced by a verified upload only.
    let v = digest("verified");
    orphan(&s, &v, 3).await;
    s.create_upload(&session("u1", "acme/app")).await.unwrap();
    assert!(matches!(
        s.lease_upload(&r, "u1", "t", 100, now_millis() + 60_000)
            .await
            .unwrap(),
        Lease::Granted(_)
    ));
    s.mark_upload_verified("u1", "t", &v, 3, &[]).await.unwrap();
    // Claimed by an upload about to commit it.
    let c = digest("claimed");
    orphan(&s, &c, 4).await;

    assert_eq!(
        s.mark_unreferenced(1_000).await.unwrap(),
        (1, 0),
        "only `claimed`"
    );
    s.claim_blob(&c).await.unwrap();
    assert!(
        s.doom_blobs(i64::MAX, None, 10, false)
            .await
            .unwrap()
            .is_empty(),
        "the claim cleared the mark"
    );
    s.claim_blob(&digest("never stored")).await.unwrap();
    assert_eq!(s.unreferenced_blobs().await.unwrap(), (1, 4));
}

/// Stored bytes the metadata does not know are strays: recorded flagged, so nothing links
/// them, and handed to the next deletion.
pub async fn gc_adopts_strays<S: MetadataStore + Clone>(s: S) {
    let known = digest("known");
    s.link_blob(&repo("acme/app"), &known, 1).await.unwrap();
    let stray = digest("stray");
    assert_eq!(
        s.unknown_blobs(&[known.clone(), stray.clone()])
            .await
            .unwrap(),
        vec![stray.clone()]
    );
    let blob = SizedBlob {
        digest: stray.clone(),
        size: 9,
    };
    let known_blob = SizedBlob {
        digest: known.clone(),
        size: 1,
    };
    assert_eq!(
        s.adopt_strays(&[blob.clone(), known_blob]).await.unwrap(),
        vec![blob.clone()],
        "a blob recorded meanwhile is not adopted"
    );
    assert_eq!(
        s.link_blob(&repo("acme/app"), &stray, 9)
            .await
            .unwrap_err()
            .kind(),
        StoreErrorKind::Collecting
    );
    assert_eq!(s.doom_blobs(0, None, 10, false).await.unwrap(), vec![blob]);
}

/// Flagging pages through the candidates in digest order.
pub async fn gc_flags_in_pages<S: MetadataStore + Clone>(s: S) {
    let mut all: Vec<Digest> = (0..5).map(|i| digest(&format!("blob {i}"))).collect();
    all.sort();
    for d in &all {
        orphan(&s, d, 1).await;
    }
    s.mark_unreferenced(1_000).await.unwrap();
    let first = s.doom_blobs(1_000, None, 2, false).await.unwrap();
    assert_eq!(digests(&first), all[..2].to_vec());
    let rest = s
        .doom_blobs(1_000, Some(&first[1].digest), 10, false)
        .await
        .unwrap();
    assert_eq!(digests(&rest), all[2..].to_vec());
}

/// Purging a manifest purges its referrers (signatures, SBOMs, attestations), and theirs.
pub async fn purging_a_manifest_purges_its_referrers<S: MetadataStore + Clone>(s: S) {
    let r = repo("acme/signed");
    let image = manifest("image");
    s.put_manifest(&r, &image, Some(&tag("v1"))).await.unwrap();
    let mut sbom = manifest("sbom");
    sbom.subject = Some(image.digest.clone());
    let mut sbom_sig = manifest("signature of the sbom");
    sbom_sig.subject = Some(sbom.digest.clone());
    let other = manifest("other image");
    s.put_manifest(&r, &sbom, Some(&tag("sbom"))).await.unwrap();
    s.put_manifest(&r, &sbom_sig, None).await.unwrap();
    s.put_manifest(&r, &other, None).await.unwrap();

    s.delete_manifest(&r, &image.digest, 50).await.unwrap();
    assert_eq!(s.purge_deleted_manifests(40).await.unwrap(), 0, "not yet");
    assert!(
        s.manifest_by_digest(&r, &sbom.digest)
            .await
            .unwrap()
            .is_some(),
        "a referrer stays while its subject can be restored"
    );
    assert_eq!(s.purge_deleted_manifests(60).await.unwrap(), 3);
    for gone in [&image, &sbom, &sbom_sig] {
        assert!(
            s.manifest_by_digest(&r, &gone.digest)
                .await
                .unwrap()
                .is_none(),
            "purged with its subject"
        );
    }
    assert!(s.manifest_by_tag(&r, &tag("sbom")).await.unwrap().is_none());
    assert!(
        s.manifest_by_digest(&r, &other.digest)
            .await
            .unwrap()
            .is_some()
    );
}
