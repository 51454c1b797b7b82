//! The metadata contract (`berth_testkit::meta`) on a fresh PostgreSQL database per clause,
//! and what only a database shared by several nodes needs: data and leases outlive a node,
//! the schema's own constraints, and two stores on one database (two nodes) racing — for a
//! lease, to create a repository, to delete a manifest an index is being pushed with, to
//! count downloads.

use std::collections::HashSet;

use berth_core::ports::{
    BlobLinkStore, DeleteOutcome, Lease, ListingStore, ManifestStore, PutManifestOutcome,
    UploadStore, VersionState, VersionStore,
};
use berth_meta_postgres::{PgMetadataStore, PgOptions};
use berth_testkit::meta::{digest, manifest, repo, session, tag};

mod support;

berth_testkit::metadata_contract!(postgres, support::open);

/// Two stores on one new database: two nodes sharing it.
async fn two_nodes() -> (String, PgMetadataStore, PgMetadataStore) {
    let url = berth_testkit::services::postgres_database().await;
    let a = PgMetadataStore::open(&url, PgOptions::default())
        .await
        .expect("open node a");
    let b = PgMetadataStore::open(&url, PgOptions::default())
        .await
        .expect("open node b");
    (url, a, b)
}

/// An image index with `children`, whose bytes are `body`.
fn index(body: &str, children: &[&berth_core::Digest]) -> berth_core::ports::NewManifest {
    let mut index = manifest(body);
    index.media_type = "application/vnd.oci.image.index.v1+json".to_owned();
    index.blobs = Vec::new();
    index.children = children.iter().map(|d| (*d).clone()).collect();
    index
}

#[tokio::test]
async fn data_and_leases_outlive_a_node() {
    let url = berth_testkit::services::postgres_database().await;
    let r = repo("acme/durable");
    let m = manifest("durable");
    {
        let s = PgMetadataStore::open(&url, PgOptions::default())
            .await
            .unwrap();
        s.link_blob(&r, &digest("layer"), 77).await.unwrap();
        s.put_manifest(&r, &m, Some(&tag("stable"))).await.unwrap();
        s.create_upload(&session("u", "acme/durable"))
            .await
            .unwrap();
        s.advance_upload("u", "none", 1, b"x", b"")
            .await
            .unwrap_err();
        assert!(matches!(
            s.lease_upload(&r, "u", "t", 0, i64::MAX).await.unwrap(),
            Lease::Granted(_)
        ));
        s.close().await;
    }
    let s = PgMetadataStore::open(&url, PgOptions::default())
        .await
        .unwrap();
    assert_eq!(
        s.linked_blob_size(&r, &digest("layer")).await.unwrap(),
        Some(77)
    );
    assert_eq!(
        s.manifest_by_tag(&r, &tag("stable"))
            .await
            .unwrap()
            .unwrap()
            .content,
        m.content
    );
    // Unlike SQLite's single process, another node may still hold the lease: opening leaves
    // it alone, and it ends by time only.
    assert_eq!(
        s.lease_upload(&r, "u", "t2", 0, 10).await.unwrap(),
        Lease::Busy
    );
    s.renew_upload_lease("u", "t", 100).await.unwrap();
    assert!(matches!(
        s.lease_upload(&r, "u", "t2", 101, 200).await.unwrap(),
        Lease::Granted(_)
    ));
}

#[tokio::test]
async fn schema_forbids_tags_on_missing_manifests() {
    let (url, s, _) = two_nodes().await;
    let r = repo("acme/fk");
    s.put_manifest(&r, &manifest("m"), Some(&tag("t")))
        .await
        .unwrap();

    // Straight to the database, past the store: the foreign key holds whatever code writes.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let dangling = sqlx::query(
        "INSERT INTO tags (repository_id, name, digest, updated_at) \
         SELECT id, 'x', 'sha256:00', 0 FROM repositories",
    )
    .execute(&pool)
    .await;
    assert!(
        dangling.is_err(),
        "a tag cannot point at a missing manifest"
    );
    let orphaning = sqlx::query("DELETE FROM manifests").execute(&pool).await;
    assert!(
        orphaning.is_err(),
        "a tagged manifest cannot be deleted without its tags"
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_racing_for_a_lease_grant_exactly_one() {
    let (_, a, b) = two_nodes().await;
    let r = repo("acme/race");
    for round in 0..20 {
        let id = format!("u{round}");
        a.create_upload(&session(&id, "acme/race")).await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let node = if i % 2 == 0 { a.clone() } else { b.clone() };
                let (r, id) = (r.clone(), id.clone());
                tokio::spawn(async move {
                    node.lease_upload(&r, &id, &format!("t{i}"), 0, 10_000)
                        .await
                })
            })
            .collect();
        let mut granted = 0;
        for task in tasks {
            match task.await.unwrap().unwrap() {
                Lease::Granted(_) => granted += 1,
                Lease::Busy => {}
                Lease::Missing => panic!("upload {id} exists"),
            }
        }
        assert_eq!(granted, 1, "round {round}");
    }
    // An expired lease, too, goes to exactly one of the nodes racing for it.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let node = if i % 2 == 0 { a.clone() } else { b.clone() };
            let r = r.clone();
            tokio::spawn(async move {
                node.lease_upload(&r, "u0", &format!("late{i}"), 20_000, 30_000)
                    .await
            })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        if let Lease::Granted(_) = task.await.unwrap().unwrap() {
            granted += 1;
        }
    }
    assert_eq!(granted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_pushing_into_one_new_repository_both_succeed() {
    let (_, a, b) = two_nodes().await;
    for round in 0..10 {
        let r = repo(&format!("acme/new{round}"));
        let (ma, mb) = (
            manifest(&format!("a{round}")),
            manifest(&format!("b{round}")),
        );
        // Untagged, then tagged: every push lands, and of two tagged pushes into a repository
        // without tags, only one is its first publish.
        for tagged in [false, true] {
            let (ta, tb) = (tag(&format!("ta{tagged}")), tag(&format!("tb{tagged}")));
            let put_a = {
                let (a, r, ma, ta) = (a.clone(), r.clone(), ma.clone(), ta.clone());
                tokio::spawn(async move { a.put_manifest(&r, &ma, tagged.then_some(&ta)).await })
            };
            let put_b = {
                let (b, r, mb, tb) = (b.clone(), r.clone(), mb.clone(), tb.clone());
                tokio::spawn(async move { b.put_manifest(&r, &mb, tagged.then_some(&tb)).await })
            };
            let mut first_publishes = 0;
            for put in [put_a, put_b] {
                match put.await.unwrap().expect("both pushes succeed") {
                    PutManifestOutcome::Stored { first_publish, .. } => {
                        first_publishes += usize::from(first_publish);
                    }
                    other => panic!("round {round}: {other:?}"),
                }
            }
            if tagged {
                assert_eq!(first_publishes, 1, "round {round}");
            }
        }
        for m in [&ma, &mb] {
            assert!(a.manifest_by_digest(&r, &m.digest).await.unwrap().is_some());
        }
        assert_eq!(
            b.list_tags(&r, None, 10).await.unwrap(),
            Some(vec!["tatrue".to_owned(), "tbtrue".to_owned()])
        );
    }
    let names = a.list_repositories(None, 100).await.unwrap();
    assert_eq!(names.len(), 10, "one repository each: {names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_racing_a_tagged_index_never_leaves_the_index_without_its_child() {
    let (_, a, b) = two_nodes().await;
    let mut outcomes = HashSet::new();
    for round in 0..20 {
        let r = repo(&format!("acme/multi{round}"));
        let child = manifest(&format!("amd64-{round}"));
        a.put_manifest(&r, &child, None).await.unwrap();
        let idx = index(&format!("index-{round}"), &[&child.digest]);
        let delete = {
            let (a, r, d) = (a.clone(), r.clone(), child.digest.clone());
            tokio::spawn(async move { a.delete_manifest(&r, &d, 1).await })
        };
        let put = {
            let (b, r, idx) = (b.clone(), r.clone(), idx.clone());
            tokio::spawn(async move { b.put_manifest(&r, &idx, Some(&tag("latest"))).await })
        };
        let deleted = delete.await.unwrap().unwrap();
        let pushed = put.await.unwrap().unwrap();
        match (&deleted, &pushed) {
            (DeleteOutcome::Deleted, PutManifestOutcome::MissingChild(missing)) => {
                assert_eq!(missing, &child.digest);
                assert!(
                    a.manifest_by_tag(&r, &tag("latest"))
                        .await
                        .unwrap()
                        .is_none()
                );
                assert!(
                    a.manifest_by_digest(&r, &child.digest)
                        .await
                        .unwrap()
                        .is_none()
                );
                outcomes.insert("delete first");
            }
            (DeleteOutcome::ReferencedBy { index, tags }, PutManifestOutcome::Stored { .. }) => {
                assert_eq!(
                    (index, tags.as_slice()),
                    (&idx.digest, &["latest".to_owned()][..])
                );
                assert!(
                    a.manifest_by_digest(&r, &child.digest)
                        .await
                        .unwrap()
                        .is_some()
                );
                outcomes.insert("push first");
            }
            other => panic!("round {round}: both or neither happened: {other:?}"),
        }
    }
    eprintln!("outcomes seen: {outcomes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unlink_racing_a_push_never_leaves_the_push_without_its_blob() {
    let (_, a, b) = two_nodes().await;
    for round in 0..20 {
        let r = repo(&format!("acme/blobs{round}"));
        let layer = digest(&format!("layer{round}"));
        a.link_blob(&r, &layer, 10).await.unwrap();
        let mut m = manifest(&format!("image{round}"));
        m.required_blobs = vec![berth_core::ports::BlobRef {
            digest: layer.clone(),
            size: 10,
        }];
        let unlink = {
            let (a, r, layer) = (a.clone(), r.clone(), layer.clone());
            tokio::spawn(async move { a.unlink_blob(&r, &layer).await })
        };
        let put = {
            let (b, r, m) = (b.clone(), r.clone(), m.clone());
            tokio::spawn(async move { b.put_manifest(&r, &m, None).await })
        };
        assert!(unlink.await.unwrap().unwrap(), "the link existed");
        match put.await.unwrap().unwrap() {
            // The push checked the link before the unlink, which waited for it.
            PutManifestOutcome::Stored { .. } => {}
            PutManifestOutcome::MissingBlob(missing) => {
                assert_eq!(missing, layer);
                assert!(a.manifest_by_digest(&r, &m.digest).await.unwrap().is_none());
            }
            other => panic!("round {round}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_purge_racing_a_push_again_keeps_the_revived_manifest_whole() {
    let (_, a, b) = two_nodes().await;
    for round in 0..10 {
        let r = repo(&format!("acme/purge{round}"));
        let m = manifest(&format!("again{round}"));
        a.put_manifest(&r, &m, Some(&tag("t"))).await.unwrap();
        a.delete_manifest(&r, &m.digest, 5).await.unwrap();
        let purge = {
            let a = a.clone();
            tokio::spawn(async move { a.purge_deleted_manifests(10).await })
        };
        let put = {
            let (b, r, m) = (b.clone(), r.clone(), m.clone());
            tokio::spawn(async move { b.put_manifest(&r, &m, Some(&tag("t"))).await })
        };
        purge.await.unwrap().unwrap();
        assert!(matches!(
            put.await.unwrap().unwrap(),
            PutManifestOutcome::Stored { created: true, .. }
        ));
        // Whichever ran first, the manifest is live with its tag and its version.
        assert!(a.manifest_by_tag(&r, &tag("t")).await.unwrap().is_some());
        let (live, versions) = a
            .list_versions(&r, VersionState::Active, None, 0, 0, 10)
            .await
            .unwrap();
        assert_eq!((live, versions.len()), (1, 1), "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_purging_at_once_purge_each_manifest_once() {
    let (_, a, b) = two_nodes().await;
    let r = repo("acme/sweep");
    for i in 0..30 {
        let m = manifest(&format!("gone{i}"));
        a.put_manifest(&r, &m, Some(&tag(&format!("t{i}"))))
            .await
            .unwrap();
        a.delete_manifest(&r, &m.digest, 5).await.unwrap();
    }
    let sweeps: Vec<_> = [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .map(|node| tokio::spawn(async move { node.purge_deleted_manifests(10).await }))
        .collect();
    let mut purged = 0;
    for sweep in sweeps {
        purged += sweep.await.unwrap().expect("no deadlock");
    }
    assert_eq!(purged, 30);
    let (deleted, _) = a
        .list_versions(&r, VersionState::Deleted, None, 0, 0, 10)
        .await
        .unwrap();
    assert_eq!(deleted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_counting_downloads_at_once_add_up() {
    let (_, a, b) = two_nodes().await;
    let r1 = repo("acme/one");
    let r2 = repo("acme/two");
    let (m1, m2) = (manifest("one"), manifest("two"));
    let PutManifestOutcome::Stored { version_id: v1, .. } =
        a.put_manifest(&r1, &m1, None).await.unwrap()
    else {
        panic!("stored")
    };
    let PutManifestOutcome::Stored { version_id: v2, .. } =
        a.put_manifest(&r2, &m2, None).await.unwrap()
    else {
        panic!("stored")
    };
    // Opposite orders from the two nodes: the rows are locked in one order all the same.
    let forward = vec![
        (r1.clone(), m1.digest.clone(), 1),
        (r2.clone(), m2.digest.clone(), 1),
    ];
    let backward: Vec<_> = forward.iter().rev().cloned().collect();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (node, counts) = if i % 2 == 0 {
                (a.clone(), forward.clone())
            } else {
                (b.clone(), backward.clone())
            };
            tokio::spawn(async move { node.add_downloads(&counts, 1_000).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("no deadlock");
    }
    assert_eq!(a.version(&r1, v1).await.unwrap().unwrap().downloads, 20);
    assert_eq!(a.version(&r2, v2).await.unwrap().unwrap().downloads, 20);
}
