//! The metadata contract (`berth_testkit::meta`) on a fresh SQLite database per clause, and
//! what only SQLite has: its file survives reopening, and its schema's own constraints.

use berth_core::ports::{BlobLinkStore, Lease, ManifestStore, Started, UploadStore};
use berth_meta_sqlite::SqliteMetadataStore;
use berth_testkit::meta::{digest, manifest, repo, session, tag};

mod support;

berth_testkit::metadata_contract!(sqlite, support::open);

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
        s.advance_upload("u", "none", 1, b"x", b"")
            .await
            .unwrap_err();
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

/// Uploads started at the same moment never pass their account's limit: SQLite counts and
/// inserts in one statement on its one writer (the port's default, a count then an insert,
/// lets starts that run at once all pass).
#[tokio::test]
async fn racing_starts_never_pass_the_open_uploads_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = SqliteMetadataStore::open(&dir.path().join("meta.db"))
        .await
        .unwrap();
    let starts = (0..20).map(|i| {
        let s = s.clone();
        tokio::spawn(async move {
            s.create_upload_within(&session(&format!("u{i}"), "acme/app"), 5)
                .await
                .unwrap()
        })
    });
    let mut created = 0;
    for start in starts.collect::<Vec<_>>() {
        if start.await.unwrap() == Started::Created {
            created += 1;
        }
    }
    assert_eq!(created, 5);
    assert_eq!(s.owner_uploads("acme").await.unwrap().open, 5);
}
