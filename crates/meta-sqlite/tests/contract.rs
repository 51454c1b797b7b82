//! The MetadataStore contract, exercised against a fresh SQLite database per test.

use berth_core::StoreErrorKind;
use berth_core::ports::{
    BlobLinkStore, BlobRef, DeleteOutcome, Lease, ListingStore, ManifestStore, NewManifest,
    PutManifestOutcome, RestoreOutcome, UploadSession, UploadStore, VersionState, VersionStore,
};
use berth_core::{Digest, RepoName, Tag};
use berth_meta_sqlite::SqliteMetadataStore;
use bytes::Bytes;
use tempfile::TempDir;

async fn store() -> (TempDir, SqliteMetadataStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteMetadataStore::open(&dir.path().join("meta.db"))
        .await
        .expect("open");
    (dir, store)
}

fn repo(name: &str) -> RepoName {
    name.parse().expect("repo name")
}

fn tag(name: &str) -> Tag {
    name.parse().expect("tag")
}

fn digest(seed: &str) -> Digest {
    Digest::sha256(seed.as_bytes())
}

fn manifest(body: &str) -> NewManifest {
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
    }
}

/// A put outcome without its version id, which depends on insertion order.
fn shape(outcome: PutManifestOutcome) -> PutManifestOutcome {
    match outcome {
        PutManifestOutcome::Stored {
            created,
            tag_moved,
            first_publish,
            ..
        } => PutManifestOutcome::Stored {
            created,
            tag_moved,
            version_id: 0,
            first_publish,
        },
        other => other,
    }
}

fn session(id: &str, repo_name: &str) -> UploadSession {
    UploadSession {
        id: id.to_owned(),
        repo: repo(repo_name),
        offset: 0,
        hash_state: Vec::new(),
        started_at: 1_000,
        verified: None,
    }
}

#[tokio::test]
async fn blobs_are_linked_per_repository() {
    let (_dir, s) = store().await;
    let (a, b) = (repo("acme/a"), repo("acme/b"));
    let (d1, d2, d3) = (digest("1"), digest("2"), digest("3"));
    assert!(!s.repository_exists(&a).await.unwrap());
    assert_eq!(s.linked_blob_size(&a, &d1).await.unwrap(), None);

    s.link_blob(&a, &d1, 10).await.unwrap();
    s.link_blob(&a, &d1, 10).await.unwrap(); // idempotent
    s.link_blob(&a, &d2, 20).await.unwrap();
    assert!(s.repository_exists(&a).await.unwrap());
    assert_eq!(s.linked_blob_size(&a, &d1).await.unwrap(), Some(10));
    assert_eq!(
        s.linked_blob_size(&b, &d1).await.unwrap(),
        None,
        "links are per repository"
    );

    // A manifest is stored only when every required blob is linked to its repository.
    let mut needs = manifest(r#"{"needs":"blobs"}"#);
    let wanted = |d: &Digest, size: u64| BlobRef {
        digest: d.clone(),
        size,
    };
    needs.required_blobs = vec![wanted(&d1, 10), wanted(&d2, 20), wanted(&d3, 30)];
    assert_eq!(
        s.put_manifest(&a, &needs, Some(&tag("x"))).await.unwrap(),
        PutManifestOutcome::MissingBlob(d3.clone())
    );
    assert!(
        s.manifest_by_digest(&a, &needs.digest)
            .await
            .unwrap()
            .is_none()
    );
    needs.required_blobs = vec![wanted(&d2, 20), wanted(&d1, 10)];
    assert_eq!(
        s.put_manifest(&b, &needs, None).await.unwrap(),
        PutManifestOutcome::MissingBlob(d2.clone()),
        "blobs of another repository do not count"
    );
    // A descriptor stating another size than the stored blob's is refused, nothing stored.
    let mut wrong = needs.clone();
    wrong.required_blobs = vec![wanted(&d2, 20), wanted(&d1, 11)];
    assert_eq!(
        s.put_manifest(&a, &wrong, Some(&tag("x"))).await.unwrap(),
        PutManifestOutcome::BlobSizeMismatch {
            digest: d1.clone(),
            declared: 11,
            stored: 10
        }
    );
    assert!(
        s.manifest_by_digest(&a, &needs.digest)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        shape(s.put_manifest(&a, &needs, Some(&tag("x"))).await.unwrap()),
        PutManifestOutcome::Stored {
            created: true,
            tag_moved: true,
            version_id: 0,
            first_publish: true,
        }
    );

    assert!(s.unlink_blob(&a, &d1).await.unwrap());
    assert!(!s.unlink_blob(&a, &d1).await.unwrap());
    assert!(!s.unlink_blob(&b, &d1).await.unwrap());
    assert_eq!(s.linked_blob_size(&a, &d1).await.unwrap(), None);
    assert_eq!(s.linked_blob_size(&a, &d2).await.unwrap(), Some(20));
}

#[tokio::test]
async fn leases_exclude_and_expire() {
    let (_dir, s) = store().await;
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
    let err = s.advance_upload("u1", "t1", 5, b"stale").await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::LeaseLost, "{err}");

    // The holder records progress, which releases the lease.
    s.advance_upload("u1", "t2", 42, b"state").await.unwrap();
    let Lease::Granted(got) = s.lease_upload(&r, "u1", "t3", 302, 400).await.unwrap() else {
        panic!("advance must release the lease");
    };
    assert_eq!((got.offset, got.hash_state.as_slice()), (42, &b"state"[..]));

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

#[tokio::test]
async fn concurrent_lease_requests_grant_one() {
    let (_dir, s) = store().await;
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

#[tokio::test]
async fn complete_upload_removes_session_and_links_blob() {
    let (_dir, s) = store().await;
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

#[tokio::test]
async fn manifests_by_tag_and_digest() {
    let (_dir, s) = store().await;
    let r = repo("acme/app");
    let (v1, v2) = (manifest("one"), manifest("two"));
    let latest = tag("latest");

    assert_eq!(
        shape(s.put_manifest(&r, &v1, Some(&latest)).await.unwrap()),
        PutManifestOutcome::Stored {
            created: true,
            tag_moved: true,
            version_id: 0,
            first_publish: true,
        }
    );
    let got = s
        .manifest_by_tag(&r, &latest)
        .await
        .unwrap()
        .expect("tagged");
    assert_eq!(
        (got.digest, got.content),
        (v1.digest.clone(), v1.content.clone())
    );
    assert_eq!(got.media_type, v1.media_type);
    let got = s
        .manifest_by_digest(&r, &v1.digest)
        .await
        .unwrap()
        .expect("by digest");
    assert_eq!(got.content, v1.content);
    assert!(
        s.manifest_by_digest(&repo("acme/other"), &v1.digest)
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.manifest_by_tag(&r, &tag("nope")).await.unwrap().is_none());

    // Same digest again: no error; the tag moves when pushed again.
    assert_eq!(
        shape(s.put_manifest(&r, &v1, None).await.unwrap()),
        PutManifestOutcome::Stored {
            created: false,
            tag_moved: false,
            version_id: 0,
            first_publish: false,
        }
    );
    assert_eq!(
        shape(s.put_manifest(&r, &v2, Some(&latest)).await.unwrap()),
        PutManifestOutcome::Stored {
            created: true,
            tag_moved: true,
            version_id: 0,
            first_publish: false,
        },
        "a new version, and latest moved to it"
    );
    assert_eq!(
        shape(s.put_manifest(&r, &v2, Some(&latest)).await.unwrap()),
        PutManifestOutcome::Stored {
            created: false,
            tag_moved: false,
            version_id: 0,
            first_publish: false,
        },
        "the same push again changes nothing"
    );
    assert_eq!(
        s.manifest_by_tag(&r, &latest)
            .await
            .unwrap()
            .unwrap()
            .digest,
        v2.digest
    );
    assert_eq!(
        shape(s.put_manifest(&r, &v1, Some(&tag("old"))).await.unwrap()),
        PutManifestOutcome::Stored {
            created: false,
            tag_moved: true,
            version_id: 0,
            first_publish: false,
        },
        "a tag moved to an existing version"
    );

    assert!(s.delete_tag(&r, &tag("old")).await.unwrap());
    assert!(!s.delete_tag(&r, &tag("old")).await.unwrap());
    assert!(
        s.manifest_by_digest(&r, &v1.digest)
            .await
            .unwrap()
            .is_some(),
        "tag delete keeps manifest"
    );
}

#[tokio::test]
async fn deleting_a_manifest_deletes_its_tags() {
    let (_dir, s) = store().await;
    let r = repo("acme/app");
    let m = manifest("m");
    s.put_manifest(&r, &m, Some(&tag("a"))).await.unwrap();
    s.put_manifest(&r, &m, Some(&tag("b"))).await.unwrap();
    s.put_manifest(&r, &manifest("keep"), Some(&tag("c")))
        .await
        .unwrap();

    assert_eq!(
        s.delete_manifest(&r, &m.digest, 1).await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert_eq!(
        s.delete_manifest(&r, &m.digest, 2).await.unwrap(),
        DeleteOutcome::Missing,
        "a deleted manifest is not deleted twice"
    );
    assert_eq!(
        s.delete_manifest(&repo("acme/none"), &m.digest, 2)
            .await
            .unwrap(),
        DeleteOutcome::Missing
    );
    assert!(s.manifest_by_digest(&r, &m.digest).await.unwrap().is_none());
    assert!(s.manifest_by_tag(&r, &tag("a")).await.unwrap().is_none());
    assert_eq!(
        s.list_tags(&r, None, usize::MAX).await.unwrap(),
        Some(vec!["c".to_owned()])
    );

    // Pushing it again brings it back as a new publish, without the tags it had.
    assert_eq!(
        shape(s.put_manifest(&r, &m, Some(&tag("a"))).await.unwrap()),
        PutManifestOutcome::Stored {
            created: true,
            tag_moved: true,
            version_id: 0,
            first_publish: false
        }
    );
    assert!(s.manifest_by_tag(&r, &tag("a")).await.unwrap().is_some());
    assert_eq!(
        s.list_tags(&r, None, usize::MAX).await.unwrap(),
        Some(vec!["a".to_owned(), "c".to_owned()])
    );
    assert_eq!(
        s.restore_manifest(&r, &m.digest).await.unwrap(),
        RestoreOutcome::NotDeleted
    );
}

#[tokio::test]
async fn deleted_versions_restore_with_their_tags_and_children() {
    let (_dir, s) = store().await;
    let r = repo("acme/multi");
    let child = manifest("amd64");
    let mut index = manifest("index");
    index.media_type = "application/vnd.oci.image.index.v1+json".to_owned();
    index.blobs = Vec::new();
    index.children = vec![child.digest.clone()];
    index.platforms = vec!["linux/amd64".to_owned()];
    let PutManifestOutcome::Stored {
        version_id: child_id,
        ..
    } = s
        .put_manifest(&r, &child, Some(&tag("amd64")))
        .await
        .unwrap()
    else {
        panic!("child stored")
    };
    s.put_manifest(&r, &index, Some(&tag("latest")))
        .await
        .unwrap();
    s.put_manifest(&r, &index, Some(&tag("v1"))).await.unwrap();

    assert_eq!(
        s.delete_manifest(&r, &child.digest, 10).await.unwrap(),
        DeleteOutcome::ReferencedBy {
            index: index.digest.clone(),
            tags: vec!["latest".to_owned(), "v1".to_owned()]
        },
        "a tagged index protects its platforms"
    );
    assert!(
        s.manifest_by_digest(&r, &child.digest)
            .await
            .unwrap()
            .is_some()
    );

    assert_eq!(
        s.delete_manifest(&r, &index.digest, 10).await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert_eq!(
        s.delete_manifest(&r, &child.digest, 11).await.unwrap(),
        DeleteOutcome::Deleted,
        "an index without tags protects nothing"
    );
    assert_eq!(s.list_tags(&r, None, 10).await.unwrap(), Some(Vec::new()));
    let (total, deleted) = s
        .list_versions(&r, VersionState::Deleted, 0, 0, 10)
        .await
        .unwrap();
    assert_eq!(total, 2);
    let (recent, listed) = s
        .list_versions(&r, VersionState::Deleted, 10, 0, 10)
        .await
        .unwrap();
    assert_eq!(
        (recent, listed.len()),
        (1, 1),
        "only what was deleted after the cut-off"
    );
    let index_version = deleted.iter().find(|v| v.digest == index.digest).unwrap();
    assert_eq!(index_version.tags, ["latest", "v1"], "the tags it had");
    assert_eq!(index_version.deleted_at, Some(10));
    assert_eq!(index_version.platforms, ["linux/amd64"]);
    let (active, _) = s
        .list_versions(&r, VersionState::Active, 0, 0, 10)
        .await
        .unwrap();
    assert_eq!(active, 0);

    // Someone takes `v1` meanwhile.
    let other = manifest("other");
    s.put_manifest(&r, &other, Some(&tag("v1"))).await.unwrap();
    assert_eq!(
        s.restore_manifest(&r, &index.digest).await.unwrap(),
        RestoreOutcome::Restored {
            tags: vec!["latest".to_owned()],
            taken: vec!["v1".to_owned()]
        }
    );
    assert_eq!(
        s.manifest_by_tag(&r, &tag("latest"))
            .await
            .unwrap()
            .unwrap()
            .digest,
        index.digest
    );
    assert_eq!(
        s.manifest_by_tag(&r, &tag("amd64"))
            .await
            .unwrap()
            .unwrap()
            .digest,
        child.digest,
        "the platform came back with the index, tags too"
    );
    let child_version = s.version(&r, child_id).await.unwrap().unwrap();
    assert_eq!(
        (child_version.deleted_at, child_version.tags),
        (None, vec!["amd64".to_owned()])
    );

    s.add_downloads(&[(r.clone(), child.digest.clone(), 3)])
        .await
        .unwrap();
    s.add_downloads(&[(r.clone(), child.digest.clone(), 2)])
        .await
        .unwrap();
    assert_eq!(s.version(&r, child_id).await.unwrap().unwrap().downloads, 5);

    // Purge: only what was deleted before the cut-off goes, for good.
    s.delete_manifest(&r, &other.digest, 50).await.unwrap();
    assert_eq!(s.purge_deleted_manifests(40).await.unwrap(), 0);
    assert_eq!(s.purge_deleted_manifests(60).await.unwrap(), 1);
    assert_eq!(
        s.restore_manifest(&r, &other.digest).await.unwrap(),
        RestoreOutcome::Missing
    );
    let (total, _) = s
        .list_versions(&r, VersionState::Active, 0, 0, 10)
        .await
        .unwrap();
    assert_eq!(total, 2);
}

#[tokio::test]
async fn index_with_missing_child_stores_nothing() {
    let (_dir, s) = store().await;
    let r = repo("acme/multi");
    let child = manifest("amd64");
    let mut index = manifest("index");
    index.media_type = "application/vnd.oci.image.index.v1+json".to_owned();
    index.blobs = Vec::new();
    index.children = vec![child.digest.clone(), digest("arm64")];

    let outcome = s
        .put_manifest(&r, &index, Some(&tag("latest")))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        PutManifestOutcome::MissingChild(child.digest.clone())
    );
    assert!(
        !s.repository_exists(&r).await.unwrap(),
        "not even the repository is created"
    );

    s.put_manifest(&r, &child, None).await.unwrap();
    let outcome = s
        .put_manifest(&r, &index, Some(&tag("latest")))
        .await
        .unwrap();
    assert_eq!(outcome, PutManifestOutcome::MissingChild(digest("arm64")));
    assert!(
        s.manifest_by_digest(&r, &index.digest)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.manifest_by_tag(&r, &tag("latest"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(s.list_tags(&r, None, 10).await.unwrap(), Some(Vec::new()));

    index.children.pop();
    assert_eq!(
        shape(
            s.put_manifest(&r, &index, Some(&tag("latest")))
                .await
                .unwrap()
        ),
        PutManifestOutcome::Stored {
            created: true,
            tag_moved: true,
            version_id: 0,
            first_publish: true,
        }
    );
    assert_eq!(
        s.manifest_by_tag(&r, &tag("latest"))
            .await
            .unwrap()
            .unwrap()
            .digest,
        index.digest
    );
    // Children must be in the same repository.
    let other = repo("acme/elsewhere");
    assert_eq!(
        s.put_manifest(&other, &index, None).await.unwrap(),
        PutManifestOutcome::MissingChild(child.digest.clone())
    );
}

#[tokio::test]
async fn tags_paginate_in_byte_order() {
    let (_dir, s) = store().await;
    let r = repo("acme/tags");
    assert_eq!(s.list_tags(&r, None, 10).await.unwrap(), None);
    let m = manifest("m");
    for t in ["v2", "B", "v10", "a", "v1"] {
        s.put_manifest(&r, &m, Some(&tag(t))).await.unwrap();
    }
    let all = s.list_tags(&r, None, usize::MAX).await.unwrap().unwrap();
    assert_eq!(all, ["B", "a", "v1", "v10", "v2"]);
    assert_eq!(s.list_tags(&r, None, 2).await.unwrap().unwrap(), ["B", "a"]);
    assert_eq!(
        s.list_tags(&r, Some("a"), 2).await.unwrap().unwrap(),
        ["v1", "v10"]
    );
    assert_eq!(
        s.list_tags(&r, Some("v10"), 2).await.unwrap().unwrap(),
        ["v2"]
    );
    assert_eq!(
        s.list_tags(&r, Some("v2"), 2).await.unwrap().unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        s.list_tags(&r, Some("c"), usize::MAX)
            .await
            .unwrap()
            .unwrap(),
        ["v1", "v10", "v2"]
    );
    assert_eq!(
        s.list_tags(&r, None, 0).await.unwrap().unwrap(),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn repositories_paginate() {
    let (_dir, s) = store().await;
    assert!(s.list_repositories(None, 10).await.unwrap().is_empty());
    for name in ["b/x", "a", "b", "c/d/e"] {
        s.link_blob(&repo(name), &digest("d"), 1).await.unwrap();
    }
    assert_eq!(
        s.list_repositories(None, usize::MAX).await.unwrap(),
        ["a", "b", "b/x", "c/d/e"]
    );
    assert_eq!(s.list_repositories(None, 2).await.unwrap(), ["a", "b"]);
    assert_eq!(
        s.list_repositories(Some("b"), 2).await.unwrap(),
        ["b/x", "c/d/e"]
    );
    assert!(
        s.list_repositories(Some("c/d/e"), 2)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn referrers_filter_by_subject_and_artifact_type() {
    let (_dir, s) = store().await;
    let r = repo("acme/signed");
    let image = manifest("image");
    s.put_manifest(&r, &image, Some(&tag("v1"))).await.unwrap();
    let mut sig = manifest("signature");
    sig.subject = Some(image.digest.clone());
    sig.artifact_type = Some("application/vnd.example.sig".to_owned());
    sig.annotations = Some(r#"{"org.example":"yes"}"#.to_owned());
    let mut sbom = manifest("sbom document");
    sbom.subject = Some(image.digest.clone());
    sbom.artifact_type = Some("application/spdx+json".to_owned());
    let mut unrelated = manifest("unrelated");
    unrelated.subject = Some(digest("other image"));
    for m in [&sig, &sbom, &unrelated] {
        s.put_manifest(&r, m, None).await.unwrap();
    }

    let all = s.list_referrers(&r, &image.digest, None).await.unwrap();
    let mut expected = vec![sig.digest.clone(), sbom.digest.clone()];
    expected.sort();
    assert_eq!(
        all.iter().map(|x| x.digest.clone()).collect::<Vec<_>>(),
        expected
    );

    let sigs = s
        .list_referrers(&r, &image.digest, Some("application/vnd.example.sig"))
        .await
        .unwrap();
    assert_eq!(sigs.len(), 1);
    let found = &sigs[0];
    assert_eq!(found.digest, sig.digest);
    assert_eq!(found.size, sig.content.len() as u64);
    assert_eq!(found.media_type, sig.media_type);
    assert_eq!(found.artifact_type, sig.artifact_type);
    assert_eq!(found.annotations, sig.annotations);

    assert!(
        s.list_referrers(&r, &image.digest, Some("text/plain"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.list_referrers(&repo("acme/none"), &image.digest, None)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested.db");
    let r = repo("acme/durable");
    let m = manifest("durable");
    {
        let s = SqliteMetadataStore::open(&path).await.unwrap();
        s.link_blob(&r, &digest("layer"), 77).await.unwrap();
        s.put_manifest(&r, &m, Some(&tag("stable"))).await.unwrap();
        s.create_upload(&session("u", "acme/durable"))
            .await
            .unwrap();
        s.advance_upload("u", "none", 1, b"x").await.unwrap_err();
        assert!(matches!(
            s.lease_upload(&r, "u", "t", 0, i64::MAX).await.unwrap(),
            Lease::Granted(_)
        ));
        s.close().await;
    }
    let s = SqliteMetadataStore::open(&path).await.unwrap();
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
    // The process that held the lease is gone, so reopening frees it.
    assert!(matches!(
        s.lease_upload(&r, "u", "t2", 0, 10).await.unwrap(),
        Lease::Granted(_)
    ));
}

#[tokio::test]
async fn schema_forbids_tags_on_missing_manifests() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("meta.db");
    let s = SqliteMetadataStore::open(&path).await.unwrap();
    let r = repo("acme/fk");
    let m = manifest("m");
    s.put_manifest(&r, &m, Some(&tag("t"))).await.unwrap();
    s.close().await;

    // Straight to the file, past the store: the foreign key holds whatever code writes.
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .foreign_keys(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let dangling = sqlx::query("INSERT INTO tags (repository_id, name, digest, updated_at) SELECT id, 'x', 'sha256:00', 0 FROM repositories")
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

#[tokio::test]
async fn stale_uploads_are_the_old_unleased_ones() {
    let (_dir, store) = store().await;
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

#[tokio::test]
async fn sessions_without_a_byte_go_stale_sooner() {
    let (_dir, store) = store().await;
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
        .advance_upload("started", "t", 10, b"state")
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

#[tokio::test]
async fn a_verified_mark_is_kept_under_the_lease_and_listed_for_recovery() {
    let (_dir, store) = store().await;
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
            .mark_upload_verified("u1", "nobody", &digest, 5)
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
        .mark_upload_verified("u1", "t", &digest, 5)
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
}

#[tokio::test]
async fn open_uploads_are_counted_per_owner() {
    let (_dir, store) = store().await;
    for (id, name) in [
        ("a", "acme/app"),
        ("b", "acme/x/y"),
        ("c", "acmes/app"),
        ("d", "acme-b/app"),
    ] {
        store.create_upload(&session(id, name)).await.unwrap();
    }
    let Lease::Granted(_) = store
        .lease_upload(&repo("acme/x/y"), "b", "t", 1, 100_000)
        .await
        .unwrap()
    else {
        panic!("lease")
    };
    store
        .advance_upload("b", "t", 1234, b"state")
        .await
        .unwrap();
    assert_eq!(store.owner_uploads("acme").await.unwrap(), (2, 1234));
    assert_eq!(store.owner_uploads("acmes").await.unwrap(), (1, 0));
    assert_eq!(store.owner_uploads("nobody").await.unwrap(), (0, 0));
}
