//! Clauses of upload sessions: leases, progress, completion, and what goes stale.

use berth_core::StoreErrorKind;
use berth_core::ports::{CountedLease, Lease, MetadataStore, OwnerUploads, StorageUsage};

use super::{digest, repo, session};

/// Leases exclude and expire.
pub async fn leases_exclude_and_expire<S: MetadataStore + Clone>(s: S) {
    let r = repo("acme/up");
    s.create_upload(&session("u1", "acme/up")).await.unwrap();
    assert_eq!(
        s.get_upload(&r, "u1").await.unwrap(),
        Some(session("u1", "acme/up"))
    );
    assert_eq!(s.get_upload(&repo("other"), "u1").await.unwrap(), None);
    assert!(
        !s.repository_exists(&r).await.unwrap(),
        "an upload alone creates no repository"
    );

    let Lease::Granted(got) = s.lease_upload(&r, "u1", "t1", 100, 200).await.unwrap() else {
        panic!("first lease must be granted");
    };
    assert_eq!(got, session("u1", "acme/up"));
    assert_eq!(
        s.lease_upload(&r, "u1", "t2", 150, 250).await.unwrap(),
        Lease::Busy
    );
    assert_eq!(
        s.lease_upload(&repo("other"), "u1", "t2", 150, 250)
            .await
            .unwrap(),
        Lease::Missing
    );
    assert_eq!(
        s.lease_upload(&r, "nope", "t2", 150, 250).await.unwrap(),
        Lease::Missing
    );

    s.renew_upload_lease("u1", "t1", 300).await.unwrap();
    assert_eq!(
        s.lease_upload(&r, "u1", "t2", 250, 400).await.unwrap(),
        Lease::Busy
    );
    // Once the lease's time has passed another request takes it, and the old holder is out.
    assert!(matches!(
        s.lease_upload(&r, "u1", "t2", 301, 400).await.unwrap(),
        Lease::Granted(_)
    ));
    assert!(s.renew_upload_lease("u1", "t1", 500).await.is_err());
    let err = s
        .advance_upload("u1", "t1", 5, b"stale", b"parts")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::LeaseLost, "{err}");

    // The holder records progress, which releases the lease.
    s.advance_upload("u1", "t2", 42, b"state", b"parts")
        .await
        .unwrap();
    let Lease::Granted(got) = s.lease_upload(&r, "u1", "t3", 302, 400).await.unwrap() else {
        panic!("advance must release the lease");
    };
    assert_eq!(
        (
            got.offset,
            got.hash_state.as_slice(),
            got.blob_state.as_slice()
        ),
        (42, &b"state"[..], &b"parts"[..]),
        "offset, hash state and blob state are recorded together"
    );

    // Releasing under a wrong token does nothing; under the right one frees the lease.
    s.release_upload("u1", "wrong").await.unwrap();
    assert_eq!(
        s.lease_upload(&r, "u1", "t4", 303, 400).await.unwrap(),
        Lease::Busy
    );
    s.release_upload("u1", "t3").await.unwrap();
    assert!(matches!(
        s.lease_upload(&r, "u1", "t4", 303, 400).await.unwrap(),
        Lease::Granted(_)
    ));

    assert!(s.delete_upload("u1").await.unwrap());
    assert!(!s.delete_upload("u1").await.unwrap());
    assert_eq!(
        s.lease_upload(&r, "u1", "t5", 304, 400).await.unwrap(),
        Lease::Missing
    );
}

/// Concurrent lease requests grant one.
pub async fn concurrent_lease_requests_grant_one<S: MetadataStore + Clone>(s: S) {
    let r = repo("acme/race");
    s.create_upload(&session("u", "acme/race")).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (s, r) = (s.clone(), r.clone());
            tokio::spawn(async move { s.lease_upload(&r, "u", &format!("t{i}"), 0, 10_000).await })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            Lease::Granted(_) => granted += 1,
            Lease::Busy => {}
            Lease::Missing => panic!("upload exists"),
        }
    }
    assert_eq!(granted, 1);
}

/// Complete upload removes session and links blob.
pub async fn complete_upload_removes_session_and_links_blob<S: MetadataStore + Clone>(s: S) {
    let r = repo("acme/done");
    let d = digest("blob");
    s.create_upload(&session("u", "acme/done")).await.unwrap();
    s.complete_upload(Some("u"), &r, &d, 1234).await.unwrap();
    assert_eq!(s.get_upload(&r, "u").await.unwrap(), None);
    assert!(!s.delete_upload("u").await.unwrap());
    assert_eq!(s.linked_blob_size(&r, &d).await.unwrap(), Some(1234));
    assert!(s.repository_exists(&r).await.unwrap());

    // A monolithic push has no session.
    let other = repo("acme/mono");
    s.complete_upload(None, &other, &d, 1234).await.unwrap();
    assert_eq!(s.linked_blob_size(&other, &d).await.unwrap(), Some(1234));
}

/// Stale uploads are the old unleased ones.
pub async fn stale_uploads_are_the_old_unleased_ones<S: MetadataStore + Clone>(store: S) {
    let mut old = session("old", "acme/app");
    old.started_at = 1_000;
    let mut busy = session("busy", "acme/app");
    busy.started_at = 1_000;
    let mut young = session("young", "acme/app");
    young.started_at = 9_000;
    for s in [&old, &busy, &young] {
        store.create_upload(s).await.unwrap();
    }
    let now = 10_000;
    assert!(matches!(
        store
            .lease_upload(&repo("acme/app"), "busy", "t", now, now + 30_000)
            .await
            .unwrap(),
        Lease::Granted(_)
    ));
    let stale = store.stale_uploads(5_000, 0, now, 10).await.unwrap();
    let ids: Vec<&str> = stale.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["old"], "young and leased sessions are not stale");
    assert_eq!(stale[0].repo, repo("acme/app"));
    // Once its lease has run out, the busy one is stale too.
    let later = store
        .stale_uploads(5_000, 0, now + 60_000, 10)
        .await
        .unwrap();
    assert_eq!(later.len(), 2);
    assert_eq!(
        store.stale_uploads(5_000, 0, now, 0).await.unwrap().len(),
        0
    );
}

/// Sessions without a byte go stale sooner.
pub async fn sessions_without_a_byte_go_stale_sooner<S: MetadataStore + Clone>(store: S) {
    let mut empty = session("empty", "acme/app");
    empty.started_at = 8_000;
    let mut started = session("started", "acme/app");
    started.started_at = 8_000;
    for s in [&empty, &started] {
        store.create_upload(s).await.unwrap();
    }
    let now = 10_000;
    let Lease::Granted(_) = store
        .lease_upload(&repo("acme/app"), "started", "t", now, now + 30_000)
        .await
        .unwrap()
    else {
        panic!("lease")
    };
    store
        .advance_upload("started", "t", 10, b"state", b"")
        .await
        .unwrap();
    let stale = store.stale_uploads(5_000, 9_000, now, 10).await.unwrap();
    let ids: Vec<&str> = stale.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        ["empty"],
        "only the session that never received a byte"
    );
}

/// A verified mark is kept under the lease and listed for recovery.
pub async fn a_verified_mark_is_kept_under_the_lease_and_listed_for_recovery<
    S: MetadataStore + Clone,
>(
    store: S,
) {
    store
        .create_upload(&session("u1", "acme/app"))
        .await
        .unwrap();
    store
        .create_upload(&session("u2", "acme/app"))
        .await
        .unwrap();
    let digest: berth_core::Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
    let now = 10_000;
    assert!(
        store
            .mark_upload_verified("u1", "nobody", &digest, 5, b"tail")
            .await
            .is_err(),
        "marking needs the lease"
    );
    let Lease::Granted(_) = store
        .lease_upload(&repo("acme/app"), "u1", "t", now, now + 30_000)
        .await
        .unwrap()
    else {
        panic!("lease")
    };
    store
        .mark_upload_verified("u1", "t", &digest, 5, b"tail")
        .await
        .unwrap();
    assert!(
        store.uploads_to_check(now, 10).await.unwrap().is_empty(),
        "a leased session is left to its holder"
    );
    let later = now + 60_000;
    let check = store.uploads_to_check(later, 10).await.unwrap();
    let ids: Vec<&str> = check.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["u1"], "an empty unmarked session needs no check");
    assert_eq!(check[0].verified, Some((digest.clone(), 5)));
    let read = store
        .get_upload(&repo("acme/app"), "u1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.verified, Some((digest, 5)));
    assert_eq!(
        read.blob_state, b"tail",
        "the blob state after the last bytes is kept for the commit"
    );
}

/// Creates the upload `sessions` (id, repository), then records 1,234 bytes received by
/// `sessions[advanced]` under a lease that expires at 100 ms.
async fn open_uploads<S: MetadataStore>(store: &S, sessions: &[(&str, &str)], advanced: usize) {
    for (id, name) in sessions {
        store.create_upload(&session(id, name)).await.unwrap();
    }
    let (id, name) = sessions[advanced];
    let Lease::Granted(_) = store
        .lease_upload(&repo(name), id, "t", 1, 100)
        .await
        .unwrap()
    else {
        panic!("lease")
    };
    store
        .advance_upload(id, "t", 1234, b"state", b"")
        .await
        .unwrap();
}

/// Open uploads are counted per owner.
pub async fn open_uploads_are_counted_per_owner<S: MetadataStore + Clone>(store: S) {
    let sessions = [
        ("a", "acme/app"),
        ("b", "acme/x/y"),
        ("c", "acmes/app"),
        ("d", "acme-b/app"),
    ];
    open_uploads(&store, &sessions, 1).await;
    let held = |uploads: OwnerUploads| (uploads.open, uploads.held);
    assert_eq!(held(store.owner_uploads("acme").await.unwrap()), (2, 1234));
    assert_eq!(held(store.owner_uploads("acmes").await.unwrap()), (1, 0));
    assert_eq!(held(store.owner_uploads("nobody").await.unwrap()), (0, 0));
}

/// A lease taken with the owner's open uploads reads them as `owner_uploads` does, and is
/// refused, busy or missing, as `lease_upload` is.
pub async fn a_counted_lease_reads_the_owners_uploads<S: MetadataStore + Clone>(store: S) {
    open_uploads(
        &store,
        &[("a", "acme/app"), ("b", "acme/x"), ("c", "acmes/app")],
        1,
    )
    .await;
    let expected = OwnerUploads {
        open: 2,
        held: 1234,
        usage: StorageUsage {
            used: 0,
            limit: None,
        },
    };
    let app = repo("acme/app");
    assert_eq!(
        store
            .lease_upload_counting(&app, "a", "t1", 10, 100)
            .await
            .unwrap(),
        CountedLease::Granted(session("a", "acme/app"), expected)
    );
    assert_eq!(
        store
            .lease_upload_counting(&app, "a", "t2", 20, 200)
            .await
            .unwrap(),
        CountedLease::Busy
    );
    assert_eq!(
        store
            .lease_upload_counting(&app, "nope", "t2", 20, 200)
            .await
            .unwrap(),
        CountedLease::Missing
    );
    assert_eq!(
        store
            .lease_upload_counting(&repo("acmes/app"), "a", "t2", 20, 200)
            .await
            .unwrap(),
        CountedLease::Missing
    );
    // A lease released with its progress is free again, and the progress is the session's.
    let CountedLease::Granted(session_b, uploads) = store
        .lease_upload_counting(&repo("acme/x"), "b", "t3", 101, 300)
        .await
        .unwrap()
    else {
        panic!("a free lease must be granted")
    };
    assert_eq!((session_b.offset, uploads), (1234, expected));
    let CountedLease::Granted(_, uploads) = store
        .lease_upload_counting(&repo("acmes/app"), "c", "t4", 101, 300)
        .await
        .unwrap()
    else {
        panic!("a free lease must be granted")
    };
    assert_eq!((uploads.open, uploads.held), (1, 0));
}
