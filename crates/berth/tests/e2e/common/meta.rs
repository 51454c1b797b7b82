//! The SQLite metadata backend read and written directly, for the few end-to-end checks that
//! need the store's own view (what a package is linked to) or a state only a killed process
//! leaves (an upload the final `PUT` marked verified). Everything here is specific to
//! `berth-meta-sqlite` and its file in the data directory; the rest of the suites see the
//! metadata only over HTTP.

use berth_core::RepoName;
use berth_core::access::store::{DirectoryStore, PackageStore};
use berth_core::ports::{Lease, UploadStore};
use berth_meta_sqlite::SqliteMetadataStore;

use super::Server;

/// The metadata database of `server`'s data directory.
pub fn database(server: &Server) -> std::path::PathBuf {
    server.data_dir().join("metadata.sqlite")
}

/// The package's link as the store holds it: `(owner/name of the repository, inherits)`.
pub async fn link_of(server: &Server, package: &str) -> Option<(String, bool)> {
    let store = SqliteMetadataStore::open_shared(&database(server))
        .await
        .expect("open the metadata database");
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

/// Records what a final `PUT` of upload `id` in `repo` records before it moves the bytes:
/// its lease on the session, and the session verified as `digest` of `len` bytes. The
/// server must be stopped.
pub async fn verified_by_a_final_put(
    server: &Server,
    repo: &str,
    id: &str,
    digest: &str,
    len: usize,
) {
    let store = SqliteMetadataStore::open(&database(server))
        .await
        .expect("open the metadata database");
    let name = repo.parse().expect("repository name");
    let Lease::Granted(_) = store
        .lease_upload(&name, id, "crashed-put", 0, i64::MAX)
        .await
        .expect("lease the session")
    else {
        panic!("lease the session as the final PUT did")
    };
    let digest = digest.parse().expect("digest");
    store
        .mark_upload_verified(id, "crashed-put", &digest, len as u64)
        .await
        .expect("mark the session verified");
}
