//! Looking into a blob store from an end-to-end test: what it holds, and the states a crash
//! leaves, made by hand.
//!
//! The end-to-end suites ask a [`BlobInspector`] by meaning — a blob's stored copies, an
//! upload's bytes — and never build a path themselves, so they run unchanged on any blob
//! backend that has an inspector. [`FsInspector`] is the filesystem backend's (`berth-blob`):
//! the only place outside that crate that knows its directory layout.
//!
//! Calls only `std::fs`; panics (with what it was doing) instead of returning errors: it
//! serves tests, where a failed look is a failed test.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use berth_core::Digest;

/// What an end-to-end test may ask of, or do to, the blob store behind a running server.
///
/// The mutating operations make the state a process killed at a given moment leaves, for
/// crash-recovery tests; the server is stopped while they run.
#[async_trait]
pub trait BlobInspector: Send + Sync {
    /// Every stored blob as `algorithm:hex`, one entry per stored copy (a content-addressed
    /// store holds each content once), in no particular order. Whatever else the blob area
    /// holds is listed too, as the backend names it, so a stray object fails a comparison.
    async fn stored_blobs(&self) -> Vec<String>;

    /// How many stored copies hold the blob `digest` (0 when it is not stored).
    async fn blob_copies(&self, digest: &Digest) -> usize;

    /// The stored bytes of blob `digest`, when it is stored.
    async fn blob_bytes(&self, digest: &Digest) -> Option<Vec<u8>>;

    /// The ids of the uploads whose bytes the store holds: sessions in progress, and whatever
    /// an ended or abandoned session left behind.
    async fn uploads_held(&self) -> Vec<String>;

    /// The bytes the store holds for upload `id`, when it holds any.
    async fn upload_bytes(&self, id: &str) -> Option<Vec<u8>>;

    /// Sets the bytes of upload `id`, creating it: what a request that wrote them and was then
    /// cut off leaves.
    async fn write_upload_bytes(&self, id: &str, bytes: &[u8]);

    /// Removes the bytes of upload `id` (they must exist): a session whose bytes are lost.
    async fn remove_upload_bytes(&self, id: &str);

    /// Moves upload `id`'s bytes to blob `digest` as committing the upload does, and nothing
    /// else: the state a final `PUT` killed after the move and before recording it leaves.
    async fn move_upload_to_blob(&self, id: &str, digest: &Digest);

    /// Flips the bits of the first byte of blob `digest`'s stored bytes (which must exist),
    /// in place, keeping their length: the bit rot `berth fsck` is for.
    async fn corrupt_blob(&self, digest: &Digest);

    /// Makes the blob area unusable under a running server, as a failed disk or a lost mount
    /// would; [`BlobInspector::mend_blob_area`] puts it back as it was.
    async fn break_blob_area(&self);

    /// Undoes [`BlobInspector::break_blob_area`].
    async fn mend_blob_area(&self);
}

/// The inspector of `berth-blob`'s filesystem store rooted at a data directory:
///
/// ```text
/// <root>/blobs/<algorithm>/<first two hex chars>/<hex>   committed blobs
/// <root>/uploads/<id>                                    uploads in progress
/// ```
#[derive(Debug, Clone)]
pub struct FsInspector {
    blobs: PathBuf,
    uploads: PathBuf,
}

impl FsInspector {
    /// The inspector of the store rooted at `root` (a server's data directory).
    pub fn new(root: &Path) -> Self {
        FsInspector {
            blobs: root.join("blobs"),
            uploads: root.join("uploads"),
        }
    }

    /// Where blob `digest` lives.
    fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.blobs
            .join(digest.algorithm().as_str())
            .join(&hex[..2])
            .join(hex)
    }

    /// Where upload `id`'s bytes live; ids are plain names.
    fn upload_path(&self, id: &str) -> PathBuf {
        assert!(
            !id.is_empty() && !id.contains(['/', '\\', '.']),
            "not an upload id: {id:?}"
        );
        self.uploads.join(id)
    }
}

#[async_trait]
impl BlobInspector for FsInspector {
    async fn stored_blobs(&self) -> Vec<String> {
        files_under(&self.blobs)
            .iter()
            .map(|path| {
                let relative = path.strip_prefix(&self.blobs).expect("under the blobs");
                let mut parts = relative.iter().map(|p| p.to_string_lossy());
                let algorithm = parts.next().unwrap_or_default();
                let name = parts.next_back().unwrap_or_default();
                format!("{algorithm}:{name}")
            })
            .collect()
    }

    async fn blob_copies(&self, digest: &Digest) -> usize {
        files_under(&self.blobs)
            .iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains(digest.hex()))
            })
            .count()
    }

    async fn blob_bytes(&self, digest: &Digest) -> Option<Vec<u8>> {
        read_if_present(&self.blob_path(digest))
    }

    async fn uploads_held(&self) -> Vec<String> {
        files_under(&self.uploads)
            .iter()
            .map(|p| {
                p.strip_prefix(&self.uploads)
                    .expect("under the uploads")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }

    async fn upload_bytes(&self, id: &str) -> Option<Vec<u8>> {
        read_if_present(&self.upload_path(id))
    }

    async fn write_upload_bytes(&self, id: &str, bytes: &[u8]) {
        let path = self.upload_path(id);
        std::fs::write(&path, bytes)
            .unwrap_or_else(|e| panic!("writing upload {}: {e}", path.display()));
    }

    async fn remove_upload_bytes(&self, id: &str) {
        let path = self.upload_path(id);
        std::fs::remove_file(&path)
            .unwrap_or_else(|e| panic!("removing upload {}: {e}", path.display()));
    }

    async fn move_upload_to_blob(&self, id: &str, digest: &Digest) {
        let upload = self.upload_path(id);
        let blob = self.blob_path(digest);
        let shard = blob.parent().expect("a blob's shard directory");
        std::fs::create_dir_all(shard)
            .unwrap_or_else(|e| panic!("creating {}: {e}", shard.display()));
        std::fs::rename(&upload, &blob)
            .unwrap_or_else(|e| panic!("moving {} to {}: {e}", upload.display(), blob.display()));
    }

    async fn corrupt_blob(&self, digest: &Digest) {
        use std::io::{Read as _, Seek as _, Write as _};
        let path = self.blob_path(digest);
        let corrupt = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)?;
            let mut first = [0u8; 1];
            file.read_exact(&mut first)?;
            file.rewind()?;
            file.write_all(&[!first[0]])?;
            file.sync_all()
        };
        corrupt().unwrap_or_else(|e| panic!("corrupting {}: {e}", path.display()));
    }

    /// The blobs directory moved aside and a plain file put in its place (permissions would
    /// do, but tests often run as root, whom they do not stop).
    async fn break_blob_area(&self) {
        let aside = self.blobs.with_extension("broken");
        std::fs::rename(&self.blobs, &aside)
            .unwrap_or_else(|e| panic!("moving {} aside: {e}", self.blobs.display()));
        std::fs::write(&self.blobs, b"not a directory")
            .unwrap_or_else(|e| panic!("writing {}: {e}", self.blobs.display()));
    }

    async fn mend_blob_area(&self) {
        let aside = self.blobs.with_extension("broken");
        std::fs::remove_file(&self.blobs)
            .unwrap_or_else(|e| panic!("removing {}: {e}", self.blobs.display()));
        std::fs::rename(&aside, &self.blobs)
            .unwrap_or_else(|e| panic!("moving {} back: {e}", self.blobs.display()));
    }
}

/// The bytes of the file at `path`, `None` when there is none.
fn read_if_present(path: &Path) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("reading {}: {e}", path.display()),
    }
}

/// Every regular file under `dir`, recursively (none when `dir` does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.map_while(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    //! The inspector against the real filesystem store: if `berth-blob` changes its layout,
    //! these fail before an end-to-end test misreads it.

    use berth_blob::FsBlobStore;
    use berth_core::ports::BlobStore;
    use bytes::Bytes;

    use super::*;

    async fn upload(store: &FsBlobStore, id: &str, bytes: &[u8]) {
        let mut writer = store.upload_writer(id, &[], 0).await.expect("writer");
        writer
            .write(Bytes::copy_from_slice(bytes))
            .await
            .expect("write");
        writer.finish().await.expect("finish");
    }

    #[tokio::test]
    async fn sees_what_the_filesystem_store_holds() {
        let root = tempfile::tempdir().expect("temp dir");
        let store = FsBlobStore::open(root.path()).expect("open");
        let inspector = FsInspector::new(root.path());
        assert!(inspector.stored_blobs().await.is_empty());
        assert!(inspector.uploads_held().await.is_empty());

        upload(&store, "up-1", b"hello").await;
        assert_eq!(inspector.uploads_held().await, ["up-1"]);
        assert_eq!(
            inspector.upload_bytes("up-1").await.as_deref(),
            Some(&b"hello"[..])
        );

        let digest = Digest::sha256(b"hello");
        store
            .commit_upload("up-1", &[], &digest)
            .await
            .expect("commit");
        assert!(inspector.uploads_held().await.is_empty());
        assert_eq!(inspector.upload_bytes("up-1").await, None);
        assert_eq!(inspector.stored_blobs().await, [digest.as_str().to_owned()]);
        assert_eq!(inspector.blob_copies(&digest).await, 1);
        assert_eq!(
            inspector.blob_bytes(&digest).await.as_deref(),
            Some(&b"hello"[..])
        );
    }

    #[tokio::test]
    async fn makes_states_the_filesystem_store_reads() {
        let root = tempfile::tempdir().expect("temp dir");
        let store = FsBlobStore::open(root.path()).expect("open");
        let inspector = FsInspector::new(root.path());

        inspector.write_upload_bytes("up-2", b"abc").await;
        assert_eq!(store.upload_len("up-2", &[]).await.expect("len"), Some(3));
        inspector.remove_upload_bytes("up-2").await;
        assert_eq!(store.upload_len("up-2", &[]).await.expect("len"), None);

        inspector.write_upload_bytes("up-3", b"moved").await;
        let digest = Digest::sha256(b"moved");
        inspector.move_upload_to_blob("up-3", &digest).await;
        assert_eq!(store.stat(&digest).await.expect("stat"), Some(5));
        assert_eq!(store.upload_len("up-3", &[]).await.expect("len"), None);
    }
}
