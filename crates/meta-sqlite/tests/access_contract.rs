//! The access contract (`berth_testkit::access`) on a fresh SQLite database per clause, and
//! what only SQLite has: its file survives reopening.

use berth_core::access::store::{CredentialStore, DirectoryStore};
use berth_core::access::token::TokenKind;
use berth_meta_sqlite::SqliteMetadataStore;
use berth_testkit::access::{classic, credential, user, valid};

mod support;

berth_testkit::access_contract!(sqlite, support::open);

#[tokio::test]
async fn access_data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    let s = SqliteMetadataStore::open(&path).await.unwrap();
    let alice = user(&s, "alice").await;
    let id = s
        .create_credential(&credential(
            TokenKind::Classic,
            "c",
            Some(alice),
            classic("repo"),
        ))
        .await
        .unwrap();
    s.touch_credentials(&[(id, 9_000)]).await.unwrap();
    s.close().await;

    let s = SqliteMetadataStore::open(&path).await.unwrap();
    assert_eq!(s.account("alice").await.unwrap().unwrap().id, alice);
    assert_eq!(valid(s.resolve_secret(b"c", 0).await.unwrap()).id, id);
    assert_eq!(
        s.credential(id).await.unwrap().unwrap().last_used_at,
        Some(9_000)
    );
}
