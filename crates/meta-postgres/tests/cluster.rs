//! What nodes sharing one database coordinate through it: one signing key, one node per
//! housekeeping pass, and every node hearing every access change.

use std::time::Duration;

use berth_meta_postgres::{PgMetadataStore, PgOptions};
use sqlx::Connection as _;

/// Two nodes on one fresh database, and its URL.
async fn two_nodes() -> (PgMetadataStore, PgMetadataStore, String) {
    let url = berth_testkit::services::postgres_database().await;
    let a = PgMetadataStore::open(&url, PgOptions::default())
        .await
        .unwrap();
    let b = PgMetadataStore::open(&url, PgOptions::default())
        .await
        .unwrap();
    (a, b, url)
}

#[tokio::test]
async fn every_node_gets_the_secret_the_first_one_stored() {
    let (a, b, _) = two_nodes().await;
    let first = a
        .shared_secret("token-signing-key", b"first")
        .await
        .unwrap();
    let second = b
        .shared_secret("token-signing-key", b"second")
        .await
        .unwrap();
    assert_eq!(first, b"first");
    assert_eq!(second, b"first", "the second node takes the stored secret");
    assert_eq!(a.shared_secret("other", b"x").await.unwrap(), b"x");
}

#[tokio::test]
async fn one_node_at_a_time_runs_a_housekeeping_task() {
    let (a, b, _) = two_nodes().await;
    let hold = Duration::from_millis(300);
    assert!(a.lead("purge", hold).await.unwrap());
    assert!(!b.lead("purge", hold).await.unwrap(), "held by a");
    assert!(b.lead("other", hold).await.unwrap(), "tasks are held apart");
    assert!(
        a.lead("purge", hold).await.unwrap(),
        "the holder extends its hold"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(b.lead("purge", hold).await.unwrap(), "a's hold ran out");
    assert!(!a.lead("purge", hold).await.unwrap(), "now held by b");
}

/// Waits up to 5 s for `signal` to read other than `before`.
async fn changed(signal: &berth_core::access::cache::ChangeSignal, before: u64) -> bool {
    for _ in 0..100 {
        if signal() != before {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn every_node_hears_access_changes_made_anywhere() {
    let (a, b, url) = two_nodes().await;
    let heard_by_a = a.access_changes().await.unwrap();
    let heard_by_b = b.access_changes().await.unwrap();
    let (before_a, before_b) = (heard_by_a(), heard_by_b());
    assert_eq!(heard_by_a(), before_a, "steady while nothing changes");
    // A change made by hand, outside any node.
    let mut by_hand = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO accounts (login, kind, created_at) VALUES ('octo', 'user', 0)")
        .execute(&mut by_hand)
        .await
        .unwrap();
    assert!(
        changed(&heard_by_a, before_a).await,
        "node a heard the insert"
    );
    assert!(
        changed(&heard_by_b, before_b).await,
        "node b heard the insert"
    );

    // A credential's last use moving is not an access change.
    sqlx::query(
        "INSERT INTO credentials (kind, token_hash, user_id, note, scopes, created_at) \
         SELECT 'classic', '\\x01', id, 'n', 'read:packages', 0 FROM accounts",
    )
    .execute(&mut by_hand)
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let settled = heard_by_a();
    sqlx::query("UPDATE credentials SET last_used_at = 5")
        .execute(&mut by_hand)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(heard_by_a(), settled, "last use is not an access change");
    sqlx::query("UPDATE credentials SET revoked_at = 5")
        .execute(&mut by_hand)
        .await
        .unwrap();
    assert!(changed(&heard_by_a, settled).await, "a revocation is");
}

#[tokio::test]
async fn a_node_that_loses_its_listening_connection_serves_no_stale_reading() {
    let (a, _b, url) = two_nodes().await;
    let heard = a.access_changes().await.unwrap();
    let before = heard();
    // Cut every other connection to this database, the listener's among them.
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    assert!(changed(&heard, before).await, "the loss counts as a change");
    // Once listening again, changes are heard as before.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let settled = heard();
    sqlx::query("INSERT INTO accounts (login, kind, created_at) VALUES ('late', 'user', 0)")
        .execute(&mut admin)
        .await
        .unwrap();
    assert!(changed(&heard, settled).await, "heard after reconnecting");
}

#[tokio::test]
async fn one_connection_hears_both_channels_and_each_reading_moves_with_its_own() {
    let (a, _b, url) = two_nodes().await;
    let access = a.access_changes().await.unwrap();
    let registry = a.registry_changes().await.unwrap();
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    let listeners: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(listeners, 1, "one listening connection per node");
    let (access_before, registry_before) = (access(), registry());
    sqlx::query("SELECT pg_notify('berth_registry_changed', '')")
        .execute(&mut admin)
        .await
        .unwrap();
    assert!(changed(&registry, registry_before).await, "registry heard");
    assert_eq!(
        access(),
        access_before,
        "a registry change is no access change"
    );
    sqlx::query("SELECT pg_notify('berth_access_changed', '')")
        .execute(&mut admin)
        .await
        .unwrap();
    assert!(changed(&access, access_before).await, "access heard");
}

#[tokio::test]
async fn a_restarted_node_gives_back_its_own_leases_and_no_other_nodes() {
    use berth_core::ports::{Lease, UploadSession, UploadStore as _};
    let url = berth_testkit::services::postgres_database().await;
    let named = |node: &str| PgOptions {
        node: Some(node.to_owned()),
        ..PgOptions::default()
    };
    let a = PgMetadataStore::open(&url, named("node-a")).await.unwrap();
    let b = PgMetadataStore::open(&url, named("node-b")).await.unwrap();
    let repo = "acme/app".parse().unwrap();
    for id in ["held-by-a", "held-by-b"] {
        let session = UploadSession {
            id: id.to_owned(),
            repo: "acme/app".parse().unwrap(),
            offset: 0,
            hash_state: Vec::new(),
            blob_state: Vec::new(),
            started_at: 0,
            verified: None,
        };
        a.create_upload(&session).await.unwrap();
    }
    let far = i64::MAX / 2;
    assert!(matches!(
        a.lease_upload(&repo, "held-by-a", "t1", 0, far)
            .await
            .unwrap(),
        Lease::Granted(_)
    ));
    assert!(matches!(
        b.lease_upload(&repo, "held-by-b", "t2", 0, far)
            .await
            .unwrap(),
        Lease::Granted(_)
    ));
    // Node a is killed and starts again under its name.
    drop(a);
    let a = PgMetadataStore::open(&url, named("node-a")).await.unwrap();
    assert_eq!(a.release_leases_of_this_node().await.unwrap(), (1, 0));
    assert!(
        matches!(
            a.lease_upload(&repo, "held-by-a", "t3", 1, far)
                .await
                .unwrap(),
            Lease::Granted(_)
        ),
        "its own upload is free again"
    );
    assert!(
        !matches!(
            a.lease_upload(&repo, "held-by-b", "t4", 1, far)
                .await
                .unwrap(),
            Lease::Granted(_)
        ),
        "node b's lease stands"
    );
}
