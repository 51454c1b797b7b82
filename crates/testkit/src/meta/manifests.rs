//! Clauses of blob links, manifests, tags, versions, listings and referrers.

use berth_core::Digest;
use berth_core::ports::{
    BlobRef, DeleteOutcome, MetadataStore, PutManifestOutcome, RestoreOutcome, VersionState,
};

use super::{digest, manifest, repo, shape, tag};

/// Blobs are linked per repository.
pub async fn blobs_are_linked_per_repository<S: MetadataStore + Clone>(s: S) {
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
            version_id: crate::id(0),
            first_publish: true,
        }
    );

    assert!(s.unlink_blob(&a, &d1).await.unwrap());
    assert!(!s.unlink_blob(&a, &d1).await.unwrap());
    assert!(!s.unlink_blob(&b, &d1).await.unwrap());
    assert_eq!(s.linked_blob_size(&a, &d1).await.unwrap(), None);
    assert_eq!(s.linked_blob_size(&a, &d2).await.unwrap(), Some(20));
}

/// Manifests by tag and digest.
pub async fn manifests_by_tag_and_digest<S: MetadataStore + Clone>(s: S) {
    let r = repo("acme/app");
    let (v1, v2) = (manifest("one"), manifest("two"));
    let latest = tag("latest");

    assert_eq!(
        shape(s.put_manifest(&r, &v1, Some(&latest)).await.unwrap()),
        PutManifestOutcome::Stored {
            created: true,
            tag_moved: true,
            version_id: crate::id(0),
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
            version_id: crate::id(0),
            first_publish: false,
        }
    );
    assert_eq!(
        shape(s.put_manifest(&r, &v2, Some(&latest)).await.unwrap()),
        PutManifestOutcome::Stored {
            created: true,
            tag_moved: true,
            version_id: crate::id(0),
            first_publish: false,
        },
        "a new version, and latest moved to it"
    );
    assert_eq!(
        shape(s.put_manifest(&r, &v2, Some(&latest)).await.unwrap()),
        PutManifestOutcome::Stored {
            created: false,
            tag_moved: false,
            version_id: crate::id(0),
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
            version_id: crate::id(0),
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

/// Deleting a manifest deletes its tags.
pub async fn deleting_a_manifest_deletes_its_tags<S: MetadataStore + Clone>(s: S) {
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
            version_id: crate::id(0),
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

/// A deleted manifest pushed again is a new publish: stored as `created`, its version touched,
/// and the tags its deleted version had are not kept for it (a later deletion lists only the
/// tags it has then).
pub async fn a_deleted_manifest_pushed_again_is_published_anew<S: MetadataStore + Clone>(s: S) {
    let r = repo("acme/again");
    let m = manifest("again");
    s.put_manifest(&r, &m, Some(&tag("old"))).await.unwrap();
    assert_eq!(
        s.delete_manifest(&r, &m.digest, 10).await.unwrap(),
        DeleteOutcome::Deleted
    );
    let again = s.put_manifest(&r, &m, Some(&tag("new"))).await.unwrap();
    assert!(
        matches!(
            again,
            PutManifestOutcome::Stored {
                created: true,
                tag_moved: true,
                ..
            }
        ),
        "{again:?}"
    );
    assert!(s.manifest_by_digest(&r, &m.digest).await.unwrap().is_some());
    let same = s.put_manifest(&r, &m, Some(&tag("new"))).await.unwrap();
    assert!(
        matches!(
            same,
            PutManifestOutcome::Stored {
                created: false,
                tag_moved: false,
                ..
            }
        ),
        "the same push again changes nothing: {same:?}"
    );
    assert_eq!(
        s.delete_manifest(&r, &m.digest, 20).await.unwrap(),
        DeleteOutcome::Deleted
    );
    let (_, deleted) = s
        .list_versions(&r, VersionState::Deleted, None, 0, 0, 10)
        .await
        .unwrap();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(
        deleted[0].tags,
        ["new"],
        "the first deletion's tags are not given back"
    );
}

/// Deleted versions restore with their tags and children.
pub async fn deleted_versions_restore_with_their_tags_and_children<S: MetadataStore + Clone>(s: S) {
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
        .list_versions(&r, VersionState::Deleted, None, 0, 0, 10)
        .await
        .unwrap();
    assert_eq!(total, 2);
    let (recent, listed) = s
        .list_versions(&r, VersionState::Deleted, None, 10, 0, 10)
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
        .list_versions(&r, VersionState::Active, None, 0, 0, 10)
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

    s.add_downloads(&[(r.clone(), child.digest.clone(), 3)], 9_000)
        .await
        .unwrap();
    s.add_downloads(&[(r.clone(), child.digest.clone(), 2)], 9_500)
        .await
        .unwrap();
    assert_eq!(s.version(&r, child_id).await.unwrap().unwrap().downloads, 5);
    s.add_downloads(&[(r.clone(), index.digest.clone(), 4)], 9_600)
        .await
        .unwrap();
    assert_eq!(
        s.downloads(&r).await.unwrap(),
        9,
        "the live versions' downloads added up"
    );
    assert_eq!(s.downloads(&repo("acme/none")).await.unwrap(), 0);

    // Purge: only what was deleted before the cut-off goes, for good.
    s.delete_manifest(&r, &other.digest, 50).await.unwrap();
    assert_eq!(s.purge_deleted_manifests(40).await.unwrap(), 0);
    assert_eq!(s.purge_deleted_manifests(60).await.unwrap(), 1);
    assert_eq!(
        s.restore_manifest(&r, &other.digest).await.unwrap(),
        RestoreOutcome::Missing
    );
    let (total, _) = s
        .list_versions(&r, VersionState::Active, None, 0, 0, 10)
        .await
        .unwrap();
    assert_eq!(total, 2);
}

/// Index with missing child stores nothing.
pub async fn index_with_missing_child_stores_nothing<S: MetadataStore + Clone>(s: S) {
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
            version_id: crate::id(0),
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

/// Tags paginate in byte order.
pub async fn tags_paginate_in_byte_order<S: MetadataStore + Clone>(s: S) {
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

/// Repositories paginate.
pub async fn repositories_paginate<S: MetadataStore + Clone>(s: S) {
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

/// A fresh store answers the readiness probe, and still does after a write.
pub async fn a_fresh_store_probes_ok<S: MetadataStore + Clone>(s: S) {
    s.probe().await.unwrap();
    s.link_blob(&repo("a"), &digest("d"), 1).await.unwrap();
    s.probe().await.unwrap();
}

/// Referrers filter by subject and artifact type.
pub async fn referrers_filter_by_subject_and_artifact_type<S: MetadataStore + Clone>(s: S) {
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

/// Versions filter by whether they are tagged (a deleted one by the tags it had) in the
/// store: the total counts only what the filter admits, so pages stay whole.
pub async fn versions_filter_by_tags_in_the_store<S: MetadataStore + Clone>(s: S) {
    let r = repo("acme/filtered");
    let tagged = manifest("tagged");
    let untagged = manifest("untagged");
    let gone_tagged = manifest("gone-tagged");
    let gone_untagged = manifest("gone-untagged");
    s.put_manifest(&r, &tagged, Some(&tag("v1"))).await.unwrap();
    s.put_manifest(&r, &untagged, None).await.unwrap();
    s.put_manifest(&r, &gone_tagged, Some(&tag("old")))
        .await
        .unwrap();
    s.put_manifest(&r, &gone_untagged, None).await.unwrap();
    s.delete_manifest(&r, &gone_tagged.digest, 10)
        .await
        .unwrap();
    s.delete_manifest(&r, &gone_untagged.digest, 10)
        .await
        .unwrap();

    let digests = |versions: Vec<berth_core::ports::VersionRecord>| {
        versions.into_iter().map(|v| v.digest).collect::<Vec<_>>()
    };
    for (state, filter, expected) in [
        (VersionState::Active, Some(true), &tagged),
        (VersionState::Active, Some(false), &untagged),
        (VersionState::Deleted, Some(true), &gone_tagged),
        (VersionState::Deleted, Some(false), &gone_untagged),
    ] {
        let (total, listed) = s.list_versions(&r, state, filter, 0, 0, 1).await.unwrap();
        assert_eq!(
            (total, digests(listed)),
            (1, vec![expected.digest.clone()]),
            "{state:?} tagged={filter:?}"
        );
        let (_, past_the_end) = s.list_versions(&r, state, filter, 0, 1, 1).await.unwrap();
        assert!(past_the_end.is_empty(), "{state:?} tagged={filter:?}");
    }
    let (all, _) = s
        .list_versions(&r, VersionState::Active, None, 0, 0, 10)
        .await
        .unwrap();
    assert_eq!(all, 2, "no filter: tagged and untagged");
}
