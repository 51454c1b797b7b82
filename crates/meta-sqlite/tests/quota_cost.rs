//! What an account's storage usage costs to read and to keep, on a store holding 100,000 blob
//! links of one account (the figures in ARCHITECTURE.md, "Storage quotas"). A measurement, not
//! a check: run it with `cargo nextest run -p berth-meta-sqlite --run-ignored only quota_cost
//! --no-capture`.

use std::time::Instant;

use berth_core::ports::{BlobLinkStore, QuotaStore};
use berth_meta_sqlite::SqliteMetadataStore;
use berth_testkit::meta::{digest, repo};

/// The usage as a query over the links would compute it.
const QUERY: &str = "SELECT COALESCE(SUM(b.size), 0) FROM blobs b WHERE b.digest IN ( \
     SELECT rb.digest FROM repositories r JOIN repository_blobs rb ON rb.repository_id = r.id \
     WHERE r.name >= 'acme/' AND r.name < 'acme0')";

#[tokio::test]
#[ignore = "a measurement; run by hand"]
async fn quota_cost() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("meta.db");
    SqliteMetadataStore::open(&path)
        .await
        .unwrap()
        .close()
        .await;
    let pool =
        sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path))
            .await
            .unwrap();
    // 100 repositories of acme; 100,000 links of 80,000 distinct 1000-byte blobs (the last
    // 20,000 links a second repository's of blobs linked already).
    let started = Instant::now();
    for statement in [
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99) \
         INSERT INTO repositories (name, created_at) SELECT 'acme/p' || i, 0 FROM n",
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 79999) \
         INSERT INTO blobs (digest, size) SELECT printf('sha256:%064d', i), 1000 FROM n",
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999) \
         INSERT INTO repository_blobs (repository_id, digest) \
         SELECT (SELECT id FROM repositories WHERE name = 'acme/p' || ((i + i / 80000) % 100)), \
                printf('sha256:%064d', i % 80000) FROM n",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    println!("seeded 100,000 links in {:?}", started.elapsed());

    let store = SqliteMetadataStore::open(&path).await.unwrap();
    let usage = store.storage_usage("acme").await.unwrap();
    let (computed,): (i64,) = sqlx::query_as(QUERY).fetch_one(&pool).await.unwrap();
    assert_eq!(usage.used, 80_000_000);
    assert_eq!(computed, 80_000_000);

    let runs = 2_000;
    let started = Instant::now();
    for _ in 0..runs {
        store.storage_usage("acme").await.unwrap();
    }
    println!("read the kept usage: {:?} each", started.elapsed() / runs);
    let runs = 20;
    let started = Instant::now();
    for _ in 0..runs {
        sqlx::query(QUERY).fetch_one(&pool).await.unwrap();
    }
    println!(
        "compute it from the links: {:?} each",
        started.elapsed() / runs
    );

    let links = 500;
    let started = Instant::now();
    for i in 0..links {
        store
            .link_blob(&repo("acme/p1"), &digest(&format!("with {i}")), 1000)
            .await
            .unwrap();
    }
    println!(
        "link a blob, usage kept: {:?} each",
        started.elapsed() / links
    );
    store.close().await;
    for drop in [
        "DROP TRIGGER repository_blob_linked",
        "DROP TRIGGER repository_blob_unlinked",
    ] {
        sqlx::query(drop).execute(&pool).await.unwrap();
    }
    let store = SqliteMetadataStore::open(&path).await.unwrap();
    let started = Instant::now();
    for i in 0..links {
        store
            .link_blob(&repo("acme/p1"), &digest(&format!("without {i}")), 1000)
            .await
            .unwrap();
    }
    println!(
        "link a blob, usage not kept: {:?} each",
        started.elapsed() / links
    );
}
