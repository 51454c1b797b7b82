//! Opening the database: migrations run once however many nodes start together, the store
//! probes healthy, and a database out of reach is a clear, unavailable error.

use berth_core::error::StoreErrorKind;
use berth_core::ports::HealthProbe as _;
use berth_meta_postgres::{PgMetadataStore, PgOptions};
use sqlx::Connection as _;

#[tokio::test]
async fn nodes_opening_one_database_together_migrate_it_once() {
    let url = berth_testkit::services::postgres_database().await;
    let opens = (0..4).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { PgMetadataStore::open(&url, PgOptions::default()).await })
    });
    for open in futures_util::future::join_all(opens).await {
        let store = open.unwrap().expect("every node opens");
        store.probe().await.expect("probes healthy");
    }
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    // Every file in migrations/, by its version number, once.
    let mut expected: Vec<(i64, bool)> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
            .unwrap()
            .map(|entry| {
                let name = entry.unwrap().file_name().into_string().unwrap();
                (name[..name.find('_').unwrap()].parse().unwrap(), true)
            })
            .collect();
    expected.sort();
    assert!(expected.len() >= 7, "{expected:?}");
    assert_eq!(applied, expected, "each migration applied exactly once");
}

#[tokio::test]
async fn a_server_out_of_reach_is_unavailable_and_names_no_password() {
    // A loopback port nothing listens on: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = PgOptions {
        acquire_timeout: std::time::Duration::from_secs(2),
        ..PgOptions::default()
    };
    let err = PgMetadataStore::open(
        &format!("postgres://berth:s3cret@127.0.0.1:{port}/berth"),
        options,
    )
    .await
    .expect_err("nothing listens there");
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    assert!(!format!("{err:?}").contains("s3cret"), "{err:?}");
}

#[tokio::test]
async fn wrong_credentials_are_refused_at_open() {
    let url = berth_testkit::services::postgres_database().await;
    // The test cluster trusts loopback, so a missing role is what a wrong login looks like.
    let bad = url.replacen("postgres://postgres@", "postgres://nobody:pw@", 1);
    let err = PgMetadataStore::open(&bad, PgOptions::default())
        .await
        .expect_err("no such role");
    assert!(err.to_string().contains("connecting"), "{err}");
}
