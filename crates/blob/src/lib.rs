//! Berth's filesystem blob store: [`FsBlobStore`] implements [`BlobStore`] over a directory.
//!
//! Direction of calls: the registry services call this crate through the port; this crate
//! calls only `std::fs` (always inside `spawn_blocking`, on long-lived tasks for the data
//! path), `tokio::fs` for metadata, and tokio channels. It never calls the registry services
//! or the metadata store, and knows nothing of repositories: blobs are shared by digest.
//!
//! Invariants:
//! - A blob is readable under a digest only once all of its bytes are durable: uploads are
//!   fsynced, then renamed into place atomically, then the directory is fsynced.
//! - Bytes under a digest are never rewritten: committing an existing digest drops the upload.
//! - Every path comes from [`layout`]: digests are lowercase hex, upload ids are checked to be
//!   `[A-Za-z0-9_-]{1,64}`, so no caller input can name a file outside the root.
//! - Memory is bounded per stream: a reader or writer holds a few ~1 MiB chunks at most. A new
//!   upload keeps its first bytes in memory while they are under 64 KiB, within a budget all
//!   uploads share (4 MiB, `held.rs`).

mod error;
mod held;
mod layout;
mod mapped;
mod ops;
mod reader;
mod writer;

use std::fs::{self, File};
use std::io;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use berth_core::ports::{BlobStore, ByteStream, HeldBytes, Millis, StoreResult, UploadWriter};
use berth_core::{Algorithm, Digest, StoreError};

pub use error::FsBlobError;
pub use ops::{Placed, StrayFile};
pub use writer::{
    FsUploadWriter, RESERVE_AHEAD, UNFLUSHED_MAX, WRITEBACK_EVERY, reservation, reserve, write_back,
};

use layout::Layout;

/// A content-addressed blob store in a local directory:
/// `<root>/blobs/<algorithm>/<first two hex chars>/<hex>` for blobs and `<root>/uploads/<id>`
/// for uploads in progress.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    layout: Layout,
    /// Room for the bytes new uploads keep in memory ([`held`]).
    held_room: Arc<tokio::sync::Semaphore>,
}

impl FsBlobStore {
    /// Opens the store rooted at `root`, creating its directories when missing.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let layout = Layout::new(root);
        let create = |dir: &Path| {
            fs::create_dir_all(dir)
                .map_err(|e| StoreError::new(format!("creating {}", dir.display()), e))
        };
        let sync = |dir: &Path| {
            sync_dir(dir).map_err(|e| StoreError::new(format!("syncing {}", dir.display()), e))
        };
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = layout.algorithm_dir(algorithm);
            create(&dir)?;
            // Every shard up front, so that a blob's commit never creates one (and syncs its
            // parent) on the push's path: half of a new registry's first few hundred blobs
            // otherwise did.
            let created = create_shards(&dir).map_err(|e| {
                StoreError::new(format!("creating the shards of {}", dir.display()), e)
            })?;
            if created {
                sync(&dir)?;
            }
        }
        create(layout.uploads_dir())?;
        for dir in [root, layout.blobs_dir()] {
            sync(dir)?;
        }
        Ok(FsBlobStore {
            layout,
            held_room: Arc::new(tokio::sync::Semaphore::new(held::HELD_BUDGET)),
        })
    }

    fn upload_path(&self, id: &str, doing: &str) -> StoreResult<std::path::PathBuf> {
        self.layout
            .upload(id)
            .map_err(|e| StoreError::new(format!("{doing} upload"), e))
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn stat(&self, digest: &Digest) -> StoreResult<Option<u64>> {
        match tokio::fs::metadata(self.layout.blob(digest)).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(StoreError::new(format!("looking up blob {digest}"), err)),
        }
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn read(&self, digest: &Digest, start: u64, end: u64) -> StoreResult<ByteStream> {
        let what = format!("blob {digest}");
        mapped::read_range(self.layout.blob(digest), start, end, &what).await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn upload_writer(
        &self,
        id: &str,
        _state: &[u8],
        offset: u64,
    ) -> StoreResult<Box<dyn UploadWriter>> {
        let path = self.upload_path(id, "opening")?;
        let uploads_dir = self.layout.uploads_dir().to_owned();
        if offset == 0 {
            // Nothing to open yet: a small upload may never need its file (see `held`).
            let budget = Arc::clone(&self.held_room);
            return Ok(Box::new(held::NewUploadWriter::new(
                id,
                path,
                uploads_dir,
                budget,
            )));
        }
        let writer = FsUploadWriter::open(id, path, uploads_dir, offset).await?;
        Ok(Box::new(writer))
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn read_upload(&self, id: &str, _state: &[u8], len: u64) -> StoreResult<ByteStream> {
        let path = self.upload_path(id, "reading")?;
        reader::read_range(path, 0, len, &format!("upload `{id}`")).await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn commit_upload(&self, id: &str, _state: &[u8], digest: &Digest) -> StoreResult<()> {
        let upload = self.upload_path(id, "committing")?;
        let blob = self.layout.blob(digest);
        let context = format!("committing upload `{id}` as blob {digest}");
        tokio::task::spawn_blocking(move || commit(&upload, &blob))
            .await
            .map_err(|e| StoreError::new(context.clone(), e))?
            .map_err(|e| StoreError::io(context, e))
    }

    #[tracing::instrument(level = "debug", skip(self, held))]
    async fn commit_held(&self, id: &str, held: HeldBytes, digest: &Digest) -> StoreResult<()> {
        let uploads_dir = self.layout.uploads_dir().to_owned();
        let blob = self.layout.blob(digest);
        let context = format!("storing upload `{id}` as blob {digest}");
        tokio::task::spawn_blocking(move || held::commit_held(&uploads_dir, &held.bytes, &blob))
            .await
            .map_err(|e| StoreError::new(context.clone(), e))?
            .map_err(|e| StoreError::io(context, e))
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn abort_upload(&self, id: &str, _state: &[u8]) -> StoreResult<()> {
        let path = self.upload_path(id, "aborting")?;
        match tokio::fs::remove_file(path).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(StoreError::new(format!("removing upload `{id}`"), err)),
        }
    }

    async fn upload_len(&self, id: &str, _state: &[u8]) -> StoreResult<Option<u64>> {
        let path = self.upload_path(id, "measuring")?;
        // A `stat` of a file just written is answered from the inode cache: here, rather than
        // on a blocking thread woken for it (every chunk of an upload asks).
        match std::fs::metadata(path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(StoreError::new(format!("measuring upload `{id}`"), err)),
        }
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn purge_uploads(&self, modified_before: Millis) -> StoreResult<usize> {
        let dir = self.layout.uploads_dir().to_owned();
        let cutoff = std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(u64::try_from(modified_before).unwrap_or(0));
        tokio::task::spawn_blocking(move || purge_older_than(&dir, cutoff))
            .await
            .map_err(|e| StoreError::new("purging stale uploads", e))?
            .map_err(|e| StoreError::new("purging stale uploads", e))
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn delete(&self, digest: &Digest) -> StoreResult<bool> {
        match tokio::fs::remove_file(self.layout.blob(digest)).await {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(StoreError::io(format!("deleting blob {digest}"), err)),
        }
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn list_blobs(
        &self,
        after: Option<&Digest>,
        limit: usize,
        modified_before: Millis,
    ) -> StoreResult<(Vec<Digest>, Option<Digest>)> {
        let blobs_dir = self.layout.blobs_dir().to_owned();
        let after = after.cloned();
        let cutoff = std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(u64::try_from(modified_before).unwrap_or(0));
        tokio::task::spawn_blocking(move || ops::list_blobs(&blobs_dir, after, limit, cutoff))
            .await
            .map_err(|e| StoreError::new("listing stored blobs", e))?
            .map_err(|e| StoreError::io("listing stored blobs", e))
    }

    async fn probe(&self) -> StoreResult<()> {
        let layout = self.layout.clone();
        let root = layout.blobs_dir().parent().map(Path::to_owned);
        let context = || {
            let root = root.as_deref().unwrap_or(Path::new(""));
            format!("probing the blob store in {}", root.display())
        };
        tokio::task::spawn_blocking(move || ops::probe(&layout))
            .await
            .map_err(|e| StoreError::new(context(), e))?
            .map_err(|e| StoreError::of_kind(berth_core::StoreErrorKind::Unavailable, context(), e))
    }
}

/// Removes the files in `dir` last modified before `cutoff`; how many were removed.
fn purge_older_than(dir: &Path, cutoff: std::time::SystemTime) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let modified = match entry.metadata().and_then(|m| m.modified()) {
            Ok(modified) => modified,
            // Removed meanwhile (finished or aborted): nothing to purge.
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        if modified < cutoff {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
    }
    Ok(removed)
}

/// Whether `blob` is stored already, its time then touched (content addressed: the stored
/// bytes are the bytes being committed, and garbage collection judges a blob's age by that
/// time). A blob deleted between the look and the touch (by garbage collection, whose claim
/// check the push passed before) is not stored: the caller writes it anew rather than link
/// a blob that is gone.
pub(crate) fn touch_if_stored(blob: &Path) -> io::Result<bool> {
    if !blob.try_exists()? {
        return Ok(false);
    }
    match File::open(blob).and_then(|f| f.set_modified(std::time::SystemTime::now())) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

/// Moves the upload file to `blob`, durably, unless the blob is already there.
/// Either way the blob's modification time becomes now: garbage collection takes stored
/// bytes that no metadata names for strays only when they are older than its grace period,
/// and these are about to be named.
fn commit(upload: &Path, blob: &Path) -> io::Result<()> {
    if touch_if_stored(blob)? {
        return match fs::remove_file(upload) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        };
    }
    File::open(upload)?.set_modified(std::time::SystemTime::now())?;
    // The file's bytes are durable already: every writer of an upload made its bytes durable
    // before it finished (`UploadWriter::finish`), and only finished bytes are committed. A
    // sync here would cost a disk cache flush per blob with nothing to write.
    let shard = blob
        .parent()
        .ok_or_else(|| io::Error::other("blob path has no parent"))?;
    ensure_shard(shard)?;
    fs::rename(upload, blob)?;
    sync_dir(shard)
}

/// Creates blob directory `shard`, durably, when it is missing (they are all made when the
/// store opens; this covers one removed since).
fn ensure_shard(shard: &Path) -> io::Result<()> {
    if !shard.is_dir() {
        fs::create_dir_all(shard)?;
        if let Some(algorithm_dir) = shard.parent() {
            sync_dir(algorithm_dir)?;
        }
    }
    Ok(())
}

/// Creates the 256 shard directories (`00` to `ff`) of `algorithm_dir` that are missing;
/// true when it created any.
fn create_shards(algorithm_dir: &Path) -> io::Result<bool> {
    let mut created = false;
    for shard in 0..=255u8 {
        match fs::create_dir(algorithm_dir.join(format!("{shard:02x}"))) {
            Ok(()) => created = true,
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
    }
    Ok(created)
}

/// Makes the entries of `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored blob is touched and said to be there; a missing one (never written, or
    /// deleted by garbage collection meanwhile) is said to be missing, so the commit writes it.
    #[test]
    fn only_a_stored_blob_is_touched_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let blob = dir.path().join("blob");
        assert!(!touch_if_stored(&blob).unwrap());
        fs::write(&blob, b"bytes").unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1);
        File::open(&blob).unwrap().set_modified(old).unwrap();
        assert!(touch_if_stored(&blob).unwrap());
        assert!(fs::metadata(&blob).unwrap().modified().unwrap() > old);
        fs::remove_file(&blob).unwrap();
        assert!(!touch_if_stored(&blob).unwrap());
    }
}
