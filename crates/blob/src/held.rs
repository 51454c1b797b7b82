//! A new upload's first bytes, kept in memory while they are few: a small blob pushed in one
//! request is written once, under its digest, on one blocking thread
//! ([`commit_held`]), instead of being created as an upload file, synced and renamed on three
//! (BENCHMARKS.md, "Lean and steady, part 23": each hand-off to a blocking thread and back is
//! about three context switches, and a small image's config and layer are two such blobs).
//!
//! [`NewUploadWriter`] keeps what it is given until the upload passes [`HELD_MAX`] bytes or
//! the store's [`HELD_BUDGET`] has no room for more; then it opens the upload file and goes on
//! as an [`FsUploadWriter`]. Finished to commit, it hands its bytes over
//! ([`UploadProgress::held`]); finished otherwise (a `PATCH`), it writes them to the upload
//! file, durably, on one blocking thread.

use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use berth_core::StoreError;
use berth_core::ports::{HeldBytes, StoreResult, UploadProgress, UploadWriter};
use bytes::{Bytes, BytesMut};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::sync_dir;
use crate::writer::{FsUploadWriter, OpenError, open_error, open_for_append, write_all_vectored};

/// The most bytes an upload keeps in memory: a config, a manifest-sized layer, an
/// attestation. A larger upload goes to its file once it passes this.
pub(crate) const HELD_MAX: usize = 64 << 10;

/// The most bytes all uploads of a store keep in memory together (64 uploads at
/// [`HELD_MAX`]); past it, new bytes go to their upload files at once.
pub(crate) const HELD_BUDGET: usize = 4 << 20;

/// Files [`commit_held`] has written, numbering their names (`.held-<pid>-<n>`) so that no two
/// of the process's are alike; the `.` keeps them from ever being taken for an upload id.
static HELD_FILES: AtomicU64 = AtomicU64::new(0);

/// Receives a new upload (offset 0), keeping its bytes in memory while they are few (see the
/// module's documentation).
pub(crate) struct NewUploadWriter {
    id: String,
    path: PathBuf,
    uploads_dir: PathBuf,
    /// The store's room for held bytes.
    budget: Arc<Semaphore>,
    /// The bytes kept, copied out of the request's read buffers (a frame kept as it came
    /// would keep its whole read buffer alive), and their room in `budget`.
    held: BytesMut,
    room: Option<OwnedSemaphorePermit>,
    /// The upload file's writer, once the bytes outgrew memory.
    file: Option<FsUploadWriter>,
    /// What the request announced, for the file's writer to reserve room for.
    announced: Option<u64>,
}

impl NewUploadWriter {
    pub(crate) fn new(
        id: &str,
        path: PathBuf,
        uploads_dir: PathBuf,
        budget: Arc<Semaphore>,
    ) -> Self {
        NewUploadWriter {
            id: id.to_owned(),
            path,
            uploads_dir,
            budget,
            held: BytesMut::new(),
            room: None,
            file: None,
            announced: None,
        }
    }

    /// Keeps `chunks` when they fit, giving them back otherwise.
    fn keep(&mut self, chunks: Vec<Bytes>) -> Result<(), Vec<Bytes>> {
        let len: usize = chunks.iter().map(Bytes::len).sum();
        if self.held.len() + len > HELD_MAX {
            return Err(chunks);
        }
        let want = u32::try_from(len).expect("at most HELD_MAX");
        let Ok(more) = Arc::clone(&self.budget).try_acquire_many_owned(want) else {
            return Err(chunks);
        };
        match &mut self.room {
            Some(room) => room.merge(more),
            None => self.room = Some(more),
        }
        for chunk in chunks {
            self.held.extend_from_slice(&chunk);
        }
        Ok(())
    }
}

#[async_trait]
impl UploadWriter for NewUploadWriter {
    async fn write(&mut self, chunk: Bytes) -> StoreResult<()> {
        self.write_batch(vec![chunk]).await
    }

    async fn write_batch(&mut self, chunks: Vec<Bytes>) -> StoreResult<()> {
        if let Some(file) = &mut self.file {
            return file.write_batch(chunks).await;
        }
        let Err(chunks) = self.keep(chunks) else {
            return Ok(());
        };
        let mut file =
            FsUploadWriter::open(&self.id, self.path.clone(), self.uploads_dir.clone(), 0).await?;
        if let Some(bytes) = self.announced {
            file.announce(bytes);
        }
        let mut all = vec![std::mem::take(&mut self.held).freeze()];
        all.extend(chunks);
        let written = file.write_batch(all).await;
        // Their room comes back now that they are in the page cache.
        self.room = None;
        self.file = Some(file);
        written
    }

    fn announce(&mut self, bytes: u64) {
        match &mut self.file {
            Some(file) => file.announce(bytes),
            None => self.announced = Some(self.held.len() as u64 + bytes),
        }
    }

    async fn finish(self: Box<Self>) -> StoreResult<UploadProgress> {
        if let Some(file) = self.file {
            return Box::new(file).finish().await;
        }
        let len = self.held.len() as u64;
        let context = format!("writing upload `{}`", self.id);
        let (path, dir, held) = (self.path, self.uploads_dir, [self.held.freeze()]);
        tokio::task::spawn_blocking(move || write_upload(&path, &dir, &held))
            .await
            .map_err(|e| StoreError::new(context.clone(), e))?
            .map_err(|e| open_error(context, e))?;
        Ok(UploadProgress {
            len,
            state: Vec::new(),
            held: None,
        })
    }

    async fn finish_to_commit(self: Box<Self>) -> StoreResult<UploadProgress> {
        if let Some(file) = self.file {
            return Box::new(file).finish_to_commit().await;
        }
        let bytes = self.held.freeze();
        Ok(UploadProgress {
            len: bytes.len() as u64,
            state: Vec::new(),
            held: Some(HeldBytes {
                bytes,
                room: self
                    .room
                    .map(|room| Box::new(room) as Box<dyn std::any::Any + Send + Sync>),
            }),
        })
    }
}

/// Writes `held`, a whole upload, to its file at `path` (replacing any bytes an abandoned
/// request left, once their writer's lock is gone), durably, with its entry in `dir`.
fn write_upload(path: &Path, dir: &Path, held: &[Bytes]) -> Result<(), OpenError> {
    let file = open_for_append(path, 0)?;
    write_all_vectored(&file, held)?;
    file.sync_data()?;
    sync_dir(dir)?;
    Ok(())
}

/// Stores `bytes` as blob `blob`, durably, unless it is there already (then its modification
/// time becomes now, as [`crate::commit`] does): written to a file of its own among the
/// uploads, synced, renamed into place, and the blob's directory synced.
pub(crate) fn commit_held(uploads_dir: &Path, bytes: &[u8], blob: &Path) -> io::Result<()> {
    if crate::touch_if_stored(blob)? {
        return Ok(());
    }
    let temp = uploads_dir.join(format!(
        ".held-{}-{}",
        std::process::id(),
        HELD_FILES.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_data()?;
        let shard = blob
            .parent()
            .ok_or_else(|| io::Error::other("blob path has no parent"))?;
        crate::ensure_shard(shard)?;
        std::fs::rename(&temp, blob)?;
        sync_dir(shard)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use berth_core::ports::BlobStore as _;

    use super::*;
    use crate::FsBlobStore;

    /// What a new upload's request announced reaches the file it outgrows into: its room is
    /// reserved past the bytes held and written, up to the announced end.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_announced_length_reaches_the_file_a_held_upload_outgrows_into() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let mut writer = store.upload_writer("grown", &[], 0).await.unwrap();
        writer.announce(16 << 20);
        writer.write(Bytes::from(vec![2u8; 1000])).await.unwrap();
        let path = dir.path().join("uploads").join("grown");
        assert!(!path.exists(), "a kilobyte is held");
        writer
            .write(Bytes::from(vec![2u8; HELD_MAX]))
            .await
            .unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 1000 + HELD_MAX as u64);
        assert!(
            meta.blocks() * 512 >= meta.len() + crate::RESERVE_AHEAD,
            "room reserved ahead: {} blocks",
            meta.blocks()
        );
        drop(writer);
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.blocks() * 512 <= meta.len() + 4096, "given back");
    }

    /// Uploads keep at most [`HELD_BUDGET`] bytes in memory together: once it is taken, the
    /// next upload's bytes go to its file, and its room comes back when the held bytes go.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn held_bytes_are_bounded_by_the_stores_budget() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let mut holding = Vec::new();
        for n in 0..HELD_BUDGET / HELD_MAX {
            let mut writer = store.upload_writer(&format!("h{n}"), &[], 0).await.unwrap();
            writer
                .write(Bytes::from(vec![0u8; HELD_MAX]))
                .await
                .unwrap();
            holding.push(writer.finish_to_commit().await.unwrap());
        }
        assert!(holding.iter().all(|written| written.held.is_some()));
        let uploads = dir.path().join("uploads");
        assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 0);
        let mut writer = store.upload_writer("over", &[], 0).await.unwrap();
        writer
            .write(Bytes::from_static(b"one byte more"))
            .await
            .unwrap();
        assert!(
            uploads.join("over").exists(),
            "no room left: written to its file"
        );
        drop(writer);
        holding.pop();
        let mut writer = store.upload_writer("room", &[], 0).await.unwrap();
        writer
            .write(Bytes::from_static(b"fits again"))
            .await
            .unwrap();
        assert!(
            !uploads.join("room").exists(),
            "the dropped bytes' room came back"
        );
    }
}
