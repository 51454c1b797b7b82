//! The upload writer: one long-lived blocking task per writer owns the upload file and does
//! every `write_all`, fed through a small bounded channel, so `write` costs one channel send
//! and a slow disk pushes back on the request body. Calls only `std::fs` (inside
//! `spawn_blocking`) and tokio channels; never the registry services.
//!
//! The task holds an exclusive advisory lock (`flock`) on the upload file for as long as it
//! runs. A writer dropped without [`UploadWriter::finish`] stops at its next chunk, and the
//! next writer of the same upload waits for that lock before truncating, so bytes of an
//! abandoned request can never land on top of the next request's.
//!
//! A large upload is flushed to disk while it streams (every [`SYNC_EVERY`] bytes, by a second
//! blocking task, see [`BackgroundSync`]), so `finish` does not stall the request for the
//! whole body's writeback: measured on 4 clients × 256 MiB at 300 MiB/s each, `finish` went
//! from ~500 ms to ~70 ms and the push from ~710 to ~1050 MiB/s total.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use berth_core::StoreError;
use berth_core::ports::{StoreResult, UploadProgress, UploadWriter};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::FsBlobError;

/// Why an upload file could not be opened: an `io::Error` or an [`FsBlobError`].
type OpenError = Box<dyn std::error::Error + Send + Sync>;

/// Chunks queued for the writing task.
const WRITE_QUEUE: usize = 4;
/// Bytes written between two background flushes (see [`BackgroundSync`]). Smaller than the
/// 8 MiB chunks clients commonly PATCH, so a chunk's final `fdatasync` has at most this much
/// left to write (32 MiB never triggered within such a chunk).
const SYNC_EVERY: u64 = 4 << 20;

/// What the request side tells the writing task.
enum Command {
    /// Append these bytes, in order.
    Write(Vec<Bytes>),
    /// Make everything durable and report the upload's length; with `entry`, a new file's
    /// directory entry too (not needed when the request commits the bytes itself).
    Finish { entry: bool },
}

/// Appends one request's bytes to an upload file. Created by
/// [`crate::FsBlobStore`]'s `upload_writer`.
pub struct FsUploadWriter {
    id: String,
    commands: Option<mpsc::Sender<Command>>,
    task: Option<JoinHandle<io::Result<u64>>>,
    abandoned: Arc<AtomicBool>,
}

impl FsUploadWriter {
    /// Opens upload file `path` at `offset` (creating it when `offset` is 0, discarding any
    /// bytes past `offset`) and starts its writing task.
    pub(crate) async fn open(
        id: &str,
        path: PathBuf,
        uploads_dir: PathBuf,
        offset: u64,
    ) -> StoreResult<Self> {
        let (opened_tx, opened_rx) = oneshot::channel();
        let (commands, rx) = mpsc::channel(WRITE_QUEUE);
        let abandoned = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&abandoned);
        let context = format!("opening upload `{id}` at offset {offset}");
        let task = tokio::task::spawn_blocking(move || {
            let file = match open_for_append(&path, offset) {
                Ok(file) => file,
                Err(err) => {
                    let _ = opened_tx.send(Err(err));
                    return Err(io::Error::other("open failed"));
                }
            };
            let _ = opened_tx.send(Ok(()));
            // A new file's directory entry must be durable too before its bytes count.
            let new_entry = (offset == 0).then_some(uploads_dir);
            write_loop(file, offset, new_entry, rx, &stop)
        });
        match opened_rx.await {
            Ok(Ok(())) => Ok(FsUploadWriter {
                id: id.to_owned(),
                commands: Some(commands),
                task: Some(task),
                abandoned,
            }),
            Ok(Err(source)) => Err(match source.downcast::<io::Error>() {
                Ok(io) => StoreError::io(context, *io),
                Err(other) => StoreError::new(context, other),
            }),
            Err(_) => Err(StoreError::new(context, FsBlobError::TaskStopped)),
        }
    }

    /// Waits for the stopped writing task and returns why it stopped.
    async fn failure(&mut self, doing: &str) -> StoreError {
        self.commands = None;
        let context = format!("{doing} upload `{}`", self.id);
        match self.task.take() {
            Some(task) => match task.await {
                Ok(Err(err)) => StoreError::new(context, err),
                Ok(Ok(_)) => StoreError::new(context, FsBlobError::TaskStopped),
                Err(join) => StoreError::new(context, join),
            },
            None => StoreError::new(context, FsBlobError::TaskStopped),
        }
    }
}

#[async_trait]
impl UploadWriter for FsUploadWriter {
    async fn write(&mut self, chunk: Bytes) -> StoreResult<()> {
        self.write_batch(vec![chunk]).await
    }

    async fn write_batch(&mut self, chunks: Vec<Bytes>) -> StoreResult<()> {
        if chunks.iter().all(Bytes::is_empty) {
            return Ok(());
        }
        if let Some(commands) = &self.commands
            && commands.send(Command::Write(chunks)).await.is_ok()
        {
            return Ok(());
        }
        Err(self.failure("writing").await)
    }

    async fn finish(self: Box<Self>) -> StoreResult<UploadProgress> {
        self.finish_with(true).await
    }

    async fn finish_to_commit(self: Box<Self>) -> StoreResult<UploadProgress> {
        // The commit's rename and its directory sync make the entry durable where it counts.
        self.finish_with(false).await
    }
}

impl FsUploadWriter {
    /// Tells the writing task to finish (syncing a new file's directory entry with `entry`)
    /// and waits for the upload's length.
    async fn finish_with(mut self: Box<Self>, entry: bool) -> StoreResult<UploadProgress> {
        if let Some(commands) = self.commands.take() {
            // If the task already stopped this fails; its result below says why.
            let _ = commands.send(Command::Finish { entry }).await;
        }
        let context = format!("finishing upload `{}`", self.id);
        match self.task.take() {
            Some(task) => match task.await {
                // The file at its path is all the state there is.
                Ok(Ok(len)) => Ok(UploadProgress {
                    len,
                    state: Vec::new(),
                    held: None,
                }),
                Ok(Err(err)) => Err(StoreError::new(context, err)),
                Err(join) => Err(StoreError::new(context, join)),
            },
            None => Err(StoreError::new(context, FsBlobError::TaskStopped)),
        }
    }
}

impl Drop for FsUploadWriter {
    fn drop(&mut self) {
        // Tells a task still holding queued chunks not to write them.
        self.abandoned.store(true, Ordering::Relaxed);
    }
}

/// Opens (or creates, at offset 0) the upload file, waits for the lock, and positions it at
/// `offset`, cutting off anything beyond. I/O errors are returned as they are, so a missing
/// file reads as `NotFound`.
fn open_for_append(path: &Path, offset: u64) -> Result<File, OpenError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(offset == 0)
        .open(path)?;
    match file.lock() {
        Ok(()) => {}
        // The lock guards against stale writers; a lone writer is correct without it.
        Err(err) if err.kind() == io::ErrorKind::Unsupported => {}
        Err(err) => return Err(err.into()),
    }
    let len = file.metadata()?.len();
    if len < offset {
        return Err(FsBlobError::UploadTooShort { len, offset }.into());
    }
    if len > offset {
        file.set_len(offset)?;
    }
    file.seek(SeekFrom::Start(offset))?;
    Ok(file)
}

/// Writes every byte of `chunks`, in order, with as few `writev` calls as the kernel allows;
/// returns how many.
fn write_all_vectored(file: &mut File, chunks: &[Bytes]) -> io::Result<u64> {
    let mut slices: Vec<io::IoSlice<'_>> = chunks.iter().map(|c| io::IoSlice::new(c)).collect();
    let mut slices = &mut slices[..];
    let mut total = 0u64;
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                total += n as u64;
                io::IoSlice::advance_slices(&mut slices, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

/// The writing task: appends every chunk received until told to finish (then syncs and
/// returns the total length) or until the writer is dropped.
fn write_loop(
    mut file: File,
    offset: u64,
    new_entry_in: Option<PathBuf>,
    mut commands: mpsc::Receiver<Command>,
    abandoned: &AtomicBool,
) -> io::Result<u64> {
    let mut written = 0u64;
    let mut unsynced = 0u64;
    let mut background: Option<BackgroundSync> = None;
    while let Some(command) = commands.blocking_recv() {
        match command {
            Command::Write(chunks) => {
                if abandoned.load(Ordering::Relaxed) {
                    break;
                }
                let len = write_all_vectored(&mut file, &chunks)?;
                written += len;
                unsynced += len;
                if unsynced >= SYNC_EVERY {
                    unsynced = 0;
                    match &background {
                        Some(sync) => sync.request(),
                        None => background = Some(BackgroundSync::start(&file)?),
                    }
                }
            }
            Command::Finish { entry } => {
                if let Some(sync) = background {
                    sync.finish()?;
                }
                file.sync_data()?;
                if entry && let Some(dir) = new_entry_in {
                    File::open(dir)?.sync_all()?;
                }
                return Ok(offset + written);
            }
        }
    }
    Err(io::Error::other("upload writer dropped before finish"))
}

/// Flushes a large upload to disk while it is still being written, so that `finish` has only
/// the last few MiB left to flush instead of the whole request: a second blocking task calls
/// `fdatasync` on a clone of the file handle whenever asked, at most one flush at a time, and
/// requests made while one runs fold into the next.
///
/// Both handles share one open file description, so a writeback error this task sees would
/// not be reported again to the writer's own `fdatasync`: [`BackgroundSync::finish`] hands it
/// back, and the upload fails.
struct BackgroundSync {
    requests: std::sync::mpsc::SyncSender<()>,
    outcome: std::sync::mpsc::Receiver<io::Result<()>>,
}

impl BackgroundSync {
    /// Starts the flushing task, with a first flush under way.
    fn start(file: &File) -> io::Result<Self> {
        let file = file.try_clone()?;
        let (requests, pending) = std::sync::mpsc::sync_channel::<()>(1);
        let (report, outcome) = std::sync::mpsc::sync_channel(1);
        tokio::task::spawn_blocking(move || {
            let mut result = file.sync_data();
            while result.is_ok() && pending.recv().is_ok() {
                result = file.sync_data();
            }
            let _ = report.send(result);
        });
        Ok(BackgroundSync { requests, outcome })
    }

    /// Asks for another flush; a no-op when one is already queued.
    fn request(&self) {
        let _ = self.requests.try_send(());
    }

    /// Waits for the flush in progress, if any, and reports the first error.
    fn finish(self) -> io::Result<()> {
        drop(self.requests);
        self.outcome
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("background flush stopped")))
    }
}
