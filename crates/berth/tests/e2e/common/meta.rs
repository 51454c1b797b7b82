//! The server's metadata store read and written directly through its ports, for the few
//! end-to-end checks that need the store's own view (what a package is linked to) or a state
//! only a killed process leaves (an upload the final `PUT` marked verified). The one place
//! the suites open a metadata backend: the server's own, SQLite in its data directory or the
//! PostgreSQL database the harness gave it; the rest of the suites see the metadata only over
//! HTTP.

use berth_core::RepoName;
use berth_core::access::store::AccessStore;
use berth_core::ports::{Lease, MetadataStore};
use berth_meta_postgres::{PgMetadataStore, PgOptions};
use berth_meta_sqlite::SqliteMetadataStore;

use super::Server;

/// Both metadata ports of one backend.
pub trait Meta: AccessStore + MetadataStore {}
impl<T: AccessStore + MetadataStore> Meta for T {}

/// The SQLite database file of `server`'s data directory (the embedded default).
pub fn database(server: &Server) -> std::path::PathBuf {
    server.data_dir().join("metadata.sqlite")
}

/// `server`'s metadata store, opened beside it (leases left alone).
pub async fn open(server: &Server) -> Box<dyn Meta> {
    match server.database_url() {
        // Under the server's own node name: what it leases here, it gives back when it
        // starts again.
        Some(url) => Box::new(
            PgMetadataStore::open(
                url,
                PgOptions {
                    node: std::fs::read_to_string(server.data_dir().join("node-id"))
                        .ok()
                        .map(|name| name.trim().to_owned()),
                    ..PgOptions::default()
                },
            )
            .await
            .expect("open the server's PostgreSQL database"),
        ),
        None => Box::new(
            SqliteMetadataStore::open_shared(&database(server))
                .await
                .expect("open the metadata database"),
        ),
    }
}

/// The package's link as the store holds it: `(owner/name of the repository, inherits)`.
pub async fn link_of(server: &Server, package: &str) -> Option<(String, bool)> {
    let store = open(server).await;
    let name: RepoName = package.parse().expect("package name");
    let target = store.target(&name, None).await.expect("read the package");
    let package = target.package.expect("the package exists");
    let linked = package.linked?;
    let repo = store
        .repo_by_id(linked.id)
        .await
        .expect("read the repository")
        .expect("the linked repository exists");
    Some((
        format!("{}/{}", repo.owner_login, repo.name),
        package.inherits,
    ))
}

/// What a final `PUT` of upload `id` in `repo` with body `tail`, verified as `digest`, leaves
/// when its process is killed after recording the verification: its lease on the session, the
/// tail appended through the server's blob store, and the session marked verified with the
/// store's state for the whole; with `moved`, the bytes also committed under their digest (the
/// move done, its recording not). The server must be stopped.
pub async fn stopped_in_a_final_put(
    server: &Server,
    repo: &str,
    id: &str,
    tail: &[u8],
    digest: &str,
    moved: bool,
) {
    let store = open(server).await;
    let name = repo.parse().expect("repository name");
    let Lease::Granted(session) = store
        .lease_upload(&name, id, "crashed-put", 0, i64::MAX)
        .await
        .expect("lease the session")
    else {
        panic!("lease the session as the final PUT did")
    };
    let blobs = server.blob_store().await;
    let mut writer = blobs
        .upload_writer(id, &session.blob_state, session.offset)
        .await
        .expect("resume the upload");
    writer
        .write(bytes::Bytes::copy_from_slice(tail))
        .await
        .expect("append the final body");
    let written = writer.finish().await.expect("finish the final body");
    let digest = digest.parse().expect("digest");
    store
        .mark_upload_verified(id, "crashed-put", &digest, written.len, &written.state)
        .await
        .expect("mark the session verified");
    if moved {
        blobs
            .commit_upload(id, &written.state, &digest)
            .await
            .expect("move the bytes to their digest");
    }
}
