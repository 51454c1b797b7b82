//! What every contract file of this crate shares: a fresh store per clause.

use berth_meta_sqlite::SqliteMetadataStore;
use tempfile::TempDir;

/// A fresh store in a temporary directory (kept as long as the store).
pub async fn open() -> (TempDir, SqliteMetadataStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteMetadataStore::open(&dir.path().join("meta.db"))
        .await
        .expect("open");
    (dir, store)
}
