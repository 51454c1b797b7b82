//! Clauses of storage quotas: an account's usage follows its blob links (each blob once), a
//! quota is set, read and cleared, and a link that would go over it changes nothing — also
//! when many race.

use berth_core::access::store::{AccessStore, Created, NewUser};
use berth_core::access::{AccountId, Visibility};
use berth_core::ports::{CountedLease, Lease, Linked, MetadataStore, Started, StorageUsage};

use super::{digest, repo, session};

/// Creates user `login` and answers its id.
async fn user<S: AccessStore>(s: &S, login: &str) -> AccountId {
    let user = NewUser {
        login: login.to_owned(),
        name: None,
        email: None,
        password_hash: None,
        site_admin: false,
    };
    match s.create_user(&user, 1).await.unwrap() {
        Created::New(id) => id,
        Created::Taken => panic!("login {login} taken"),
    }
}

fn usage(used: u64, limit: Option<u64>) -> StorageUsage {
    StorageUsage { used, limit }
}

/// Usage is the bytes of the distinct blobs an account's repositories link: a blob in two
/// repositories of one account counts once, another account (even one whose name starts
/// the same) counts apart, and unlinking the last link gives the bytes back.
pub async fn usage_counts_each_blob_of_an_account_once<S: MetadataStore + Clone>(s: S) {
    let (shared, own, foreign) = (digest("shared"), digest("own"), digest("foreign"));
    s.link_blob(&repo("acme/a"), &shared, 10).await.unwrap();
    s.link_blob(&repo("acme/b/deep"), &shared, 10)
        .await
        .unwrap();
    s.link_blob(&repo("acme/b/deep"), &own, 20).await.unwrap();
    s.link_blob(&repo("acme/b/deep"), &own, 20).await.unwrap(); // again: idempotent
    s.link_blob(&repo("other/x"), &shared, 10).await.unwrap();
    s.link_blob(&repo("acmes/z"), &foreign, 5).await.unwrap();
    assert_eq!(s.storage_usage("acme").await.unwrap(), usage(30, None));
    assert_eq!(s.storage_usage("other").await.unwrap(), usage(10, None));
    assert_eq!(s.storage_usage("acmes").await.unwrap(), usage(5, None));
    assert_eq!(s.storage_usage("nobody").await.unwrap(), usage(0, None));
    assert!(s.account_holds_blob("acme", &shared).await.unwrap());
    assert!(!s.account_holds_blob("acme", &foreign).await.unwrap());

    assert!(s.unlink_blob(&repo("acme/a"), &shared).await.unwrap());
    assert_eq!(
        s.storage_usage("acme").await.unwrap(),
        usage(30, None),
        "acme/b/deep still links the shared blob"
    );
    assert!(s.unlink_blob(&repo("acme/b/deep"), &shared).await.unwrap());
    assert_eq!(s.storage_usage("acme").await.unwrap(), usage(20, None));
    assert!(!s.account_holds_blob("acme", &shared).await.unwrap());
    assert_eq!(
        s.storage_usage("other").await.unwrap(),
        usage(10, None),
        "other accounts keep theirs"
    );
}

/// A quota is set on an account (its login compared without case), changed, and cleared.
pub async fn a_quota_is_set_read_and_cleared<S: MetadataStore + AccessStore + Clone>(s: S) {
    let acme = user(&s, "Acme").await;
    let other = user(&s, "other").await;
    s.link_blob(&repo("acme/a"), &digest("d"), 7).await.unwrap();
    s.set_storage_quota(acme, Some(100), 1).await.unwrap();
    assert_eq!(s.storage_usage("acme").await.unwrap(), usage(7, Some(100)));
    assert_eq!(s.storage_usage("other").await.unwrap(), usage(0, None));
    // What an upload is checked against reads the same usage and quota.
    let uploads = |owner: &'static str| {
        let s = s.clone();
        async move { s.owner_uploads(owner).await.unwrap().usage }
    };
    assert_eq!(uploads("acme").await, usage(7, Some(100)));
    assert_eq!(uploads("other").await, usage(0, None));
    s.set_storage_quota(acme, Some(50), 2).await.unwrap();
    s.set_storage_quota(other, Some(0), 2).await.unwrap();
    assert_eq!(s.storage_usage("acme").await.unwrap(), usage(7, Some(50)));
    assert_eq!(s.storage_usage("other").await.unwrap(), usage(0, Some(0)));
    assert_eq!(uploads("acme").await, usage(7, Some(50)));
    assert_eq!(uploads("other").await, usage(0, Some(0)));
    // So does a chunk's lease, taken with them.
    s.create_upload(&session("q", "acme/a")).await.unwrap();
    let CountedLease::Granted(_, counted) = s
        .lease_upload_counting(&repo("acme/a"), "q", "t", 1, 100)
        .await
        .unwrap()
    else {
        panic!("a free lease must be granted")
    };
    assert_eq!(counted.usage, usage(7, Some(50)));
    s.set_storage_quota(acme, None, 3).await.unwrap();
    s.set_storage_quota(acme, None, 3).await.unwrap(); // clearing twice is fine
    assert_eq!(s.storage_usage("acme").await.unwrap(), usage(7, None));
    assert_eq!(uploads("acme").await, usage(7, None));
}

/// A link (or a completed upload) that would take the account over its quota changes nothing
/// — the upload session stays, the repository does not hold the blob — while one that
/// reaches the quota exactly, or adds a blob the account holds, goes through.
pub async fn links_over_the_quota_change_nothing<S: MetadataStore + AccessStore + Clone>(s: S) {
    let acme = user(&s, "acme").await;
    s.set_storage_quota(acme, Some(25), 1).await.unwrap();
    let (d1, d2, d3, d4) = (digest("1"), digest("2"), digest("3"), digest("4"));
    assert_eq!(
        s.link_blob(&repo("acme/a"), &d1, 10).await.unwrap(),
        Linked::Done {
            before: 0,
            after: 10,
            limit: Some(25)
        }
    );
    s.create_upload(&session("u", "acme/b")).await.unwrap();
    assert_eq!(
        s.complete_upload(Some("u"), &repo("acme/b"), &d2, 20)
            .await
            .unwrap(),
        Linked::OverQuota {
            used: 10,
            limit: 25,
            adds: 20
        }
    );
    assert!(
        s.get_upload(&repo("acme/b"), "u").await.unwrap().is_some(),
        "a refused completion keeps its session"
    );
    assert_eq!(
        s.linked_blob_size(&repo("acme/b"), &d2).await.unwrap(),
        None
    );
    assert_eq!(s.storage_usage("acme").await.unwrap(), usage(10, Some(25)));
    assert_eq!(
        s.link_blob(&repo("acme/b"), &d1, 10).await.unwrap(),
        Linked::Done {
            before: 10,
            after: 10,
            limit: Some(25)
        },
        "a blob the account holds costs nothing"
    );
    assert_eq!(
        s.complete_upload(Some("u"), &repo("acme/b"), &d3, 15)
            .await
            .unwrap(),
        Linked::Done {
            before: 10,
            after: 25,
            limit: Some(25)
        },
        "reaching the quota exactly is allowed"
    );
    assert_eq!(s.get_upload(&repo("acme/b"), "u").await.unwrap(), None);
    assert!(matches!(
        s.link_blob(&repo("acme/c"), &d4, 1).await.unwrap(),
        Linked::OverQuota { used: 25, .. }
    ));
    assert!(
        !s.account_holds_blob("acme", &d4).await.unwrap(),
        "nothing of a refused link is left"
    );
    // Other accounts and accounts without a quota link as before.
    assert!(matches!(
        s.link_blob(&repo("other/c"), &d4, 1_000).await.unwrap(),
        Linked::Done { limit: None, .. }
    ));
}

/// Links of one account racing each other never take it over its quota: of ten 30-byte
/// blobs under a 100-byte quota, exactly three are linked.
pub async fn racing_links_never_pass_the_quota<S: MetadataStore + AccessStore + Clone>(s: S) {
    let acme = user(&s, "acme").await;
    s.set_storage_quota(acme, Some(100), 1).await.unwrap();
    let links = (0..10).map(|i| {
        let s = s.clone();
        tokio::spawn(async move {
            s.link_blob(
                &repo(&format!("acme/p{}", i % 3)),
                &digest(&i.to_string()),
                30,
            )
            .await
            .unwrap()
        })
    });
    let mut done = 0;
    for link in futures_util::future::join_all(links).await {
        if matches!(link.unwrap(), Linked::Done { .. }) {
            done += 1;
        }
    }
    assert_eq!(done, 3);
    assert_eq!(s.storage_usage("acme").await.unwrap(), usage(90, Some(100)));
}

/// A new upload starts only within its account's limits: fewer open sessions than allowed,
/// and room left in its quota once its open uploads' bytes count. Refused, nothing is stored
/// and the answer says what the account holds; other accounts are not affected.
pub async fn new_uploads_start_within_the_owners_limits<S: MetadataStore + AccessStore + Clone>(
    s: S,
) {
    let acme = user(&s, "acme").await;
    let start = |id: &'static str, name: &'static str, max_open: u64| {
        let s = s.clone();
        async move {
            s.create_upload_within(&session(id, name), max_open)
                .await
                .unwrap()
        }
    };
    assert_eq!(start("a", "acme/app", 2).await, Started::Created);
    assert_eq!(start("b", "acme/x/y", 2).await, Started::Created);
    let Started::Refused(held) = start("c", "acme/app", 2).await else {
        panic!("a third upload must be refused when two may be open")
    };
    assert_eq!((held.open, held.held), (2, 0));
    assert_eq!(s.get_upload(&repo("acme/app"), "c").await.unwrap(), None);
    assert_eq!(start("c", "acme/app", 3).await, Started::Created);
    assert_eq!(start("d", "acmes/app", 1).await, Started::Created);

    // A quota: its room counts what is linked and what open uploads hold.
    s.link_blob(&repo("acme/app"), &digest("1"), 60)
        .await
        .unwrap();
    let Lease::Granted(_) = s
        .lease_upload(&repo("acme/app"), "a", "t", 1, 100)
        .await
        .unwrap()
    else {
        panic!("a free lease must be granted")
    };
    s.advance_upload("a", "t", 40, b"state", b"").await.unwrap();
    s.set_storage_quota(acme, Some(101), 1).await.unwrap();
    assert_eq!(start("e", "acme/app", 10).await, Started::Created);
    s.set_storage_quota(acme, Some(100), 2).await.unwrap();
    let Started::Refused(full) = start("f", "acme/app", 10).await else {
        panic!("an upload must be refused when the quota has no room left")
    };
    assert_eq!((full.open, full.held), (4, 40));
    assert_eq!(full.usage, usage(60, Some(100)));
    assert!(!full.admits_new_upload(10));
    assert_eq!(s.get_upload(&repo("acme/app"), "f").await.unwrap(), None);
    assert_eq!(start("f", "acmes/app", 10).await, Started::Created);
}

/// A package purged for good gives back the bytes of the blobs no other package of the
/// account links: its links go in one statement, counted as one.
pub async fn a_purged_package_gives_its_blobs_back<S: MetadataStore + AccessStore + Clone>(s: S) {
    let acme = user(&s, "acme").await;
    let (app, lib) = (repo("acme/app"), repo("acme/lib"));
    for package in [&app, &lib] {
        s.create_package(package, acme, Visibility::Private, None, None, 1_000)
            .await
            .unwrap();
    }
    for i in 0..50 {
        s.link_blob(&app, &digest(&format!("app {i}")), 10)
            .await
            .unwrap();
    }
    for i in 0..5 {
        s.link_blob(&lib, &digest(&format!("app {i}")), 10)
            .await
            .unwrap();
    }
    s.link_blob(&lib, &digest("lib"), 7).await.unwrap();
    assert_eq!(s.storage_usage("acme").await.unwrap().used, 507);
    assert!(s.set_package_deleted(&app, Some(5_000)).await.unwrap());
    assert_eq!(s.purge_deleted_packages(5_001).await.unwrap(), 1);
    assert_eq!(
        s.storage_usage("acme").await.unwrap().used,
        57,
        "what acme/lib links stays counted"
    );
    assert!(
        s.account_holds_blob("acme", &digest("app 4"))
            .await
            .unwrap()
    );
    assert!(
        !s.account_holds_blob("acme", &digest("app 5"))
            .await
            .unwrap()
    );
}
