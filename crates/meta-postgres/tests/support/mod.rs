//! What every contract file of this crate shares: a fresh store per clause, each on a new
//! database of the test PostgreSQL cluster (see `berth_testkit::services`).

use berth_meta_postgres::{PgMetadataStore, PgOptions};

/// A fresh store on a new, empty database.
#[allow(dead_code)]
pub async fn open() -> ((), PgMetadataStore) {
    let url = berth_testkit::services::postgres_database().await;
    let store = PgMetadataStore::open(&url, PgOptions::default())
        .await
        .expect("open");
    ((), store)
}
