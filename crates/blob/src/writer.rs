//! The upload writer: appends one request's bytes to its upload file.
//!
//! Each batch is written where it arrives, in the request's task, with one `writev` into the
//! page cache: the bytes were just hashed there, so they are copied out of a warm cache and
//! their read buffers go straight back to be read into again. Opening the file (which may
//! wait for a lock) and every flush to disk run on blocking threads, so a write does not wait
//! for the disk on its own account: it copies, as hashing the same bytes does. (A buffered
//! write can still pause while the machine as a whole is past the kernel's dirty-page limits
//! or short of memory.) Measured against handing each batch to a writing thread of its own:
//! BENCHMARKS.md, "Lean and steady, part 10".
//!
//! The writer holds an exclusive advisory lock (`flock`) on the upload file for as long as it
//! lives. A writer dropped without [`UploadWriter::finish`] writes nothing more, and the next
//! writer of the same upload waits for that lock before truncating, so bytes of an abandoned
//! request can never land on top of the next request's.
//!
//! A large upload is written back to disk while it streams (every [`WRITEBACK_EVERY`] bytes, on
//! a blocking thread, see [`Flush`]), so `finish` does not stall the request for the whole
//! body's writeback: measured on 4 clients × 256 MiB at 300 MiB/s each, `finish` went from
//! ~500 ms to ~70 ms and the push from ~710 to ~1050 MiB/s total. On Linux that writeback is
//! `sync_file_range`: it writes the pages and waits for them, without the journal commit and
//! the disk's cache flush an `fdatasync` adds each time; the one `fdatasync` of `finish` makes
//! it all durable. Against an `fdatasync` every 4 MiB, the last `fdatasync` of an 8 MiB chunk
//! took medians of 1.5–2.1 ms instead of 3.5–5.1 (BENCHMARKS.md, "Lean and steady, part 16").
//! A disk slower than the network pushes back: once [`UNFLUSHED_MAX`] bytes wait behind a
//! writeback still running, the request waits for it (asynchronously) before writing more, so
//! an upload's dirty pages stay bounded and uploads do not drive the kernel into the
//! dirty-page throttling that would pause the thread writing.
//!
//! A request that announces its length ([`UploadWriter::announce`]: its `Content-Length`) has
//! its room on disk reserved ahead of its bytes, [`RESERVE_AHEAD`] at a time and never past
//! what it announced ([`reserve`]: `fallocate` keeping the file's length). The filesystem then
//! allocates the blocks once per reservation instead of once per page written (ext4's
//! delayed allocation); measured, the push's server CPU per GiB fell by a tenth
//! (BENCHMARKS.md, "Lean and steady, part 25"). Room reserved past the bytes a request wrote
//! (it ended early) is given back when its writer is dropped. A reservation runs in the
//! request's task, as the write does: measured over that bench, medians of 21–25 µs and 99th
//! percentiles of 1.1–1.6 ms, once per 8 MiB (the writes: 6–7 µs and 154–186 µs, per batch).

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use berth_core::StoreError;
use berth_core::ports::{StoreResult, UploadProgress, UploadWriter};
use bytes::Bytes;
use tokio::task::JoinHandle;

use crate::error::FsBlobError;
use crate::sync_dir;

/// Why an upload file could not be opened: an `io::Error` or an [`FsBlobError`].
pub(crate) type OpenError = Box<dyn std::error::Error + Send + Sync>;

/// The store error of `doing` that failed with `source`: an I/O error's kind is kept.
pub(crate) fn open_error(doing: String, source: OpenError) -> StoreError {
    match source.downcast::<io::Error>() {
        Ok(io) => StoreError::io(doing, *io),
        Err(other) => StoreError::new(doing, other),
    }
}

/// Bytes written between two background writebacks (see [`Flush`]). Far smaller than the
/// 8 MiB chunks clients commonly PATCH, so a chunk's final `fdatasync` has little left to write
/// (BENCHMARKS.md, "Lean and steady, part 16": an `fdatasync` every 4 MiB left it 3.5–5.1 ms,
/// `sync_file_range` every 1 MiB 1.5–2.1). Each writeback is a hand-off to a blocking thread
/// and back, about three context switches: every 2 MiB rather than every 1 MiB took 3–5 % less
/// server CPU per GiB pushed, for the same share of the ceiling; every 4 MiB 2–3 % less again,
/// but chunked pushes fell back 4 points, their last sync having more left to write
/// (BENCHMARKS.md, "Lean and steady, part 22"). The bench's ceiling and its bare server write
/// back at the same interval.
pub const WRITEBACK_EVERY: u64 = 2 << 20;
/// The most bytes written while a writeback runs before the request waits for it. The bench's
/// bare server waits at the same point.
pub const UNFLUSHED_MAX: u64 = 16 << 20;
/// How far past the bytes written a request's announced room is reserved on disk at a time
/// (see [`reservation`]): a client that announces a large body and sends little of it holds
/// at most this much more than it sent, and only until its request ends.
pub const RESERVE_AHEAD: u64 = 8 << 20;

/// Appends one request's bytes to an upload file. Created by
/// [`crate::FsBlobStore`]'s `upload_writer`.
pub struct FsUploadWriter {
    id: String,
    /// The locked upload file, positioned at its end; shared with a running [`Flush`].
    file: Arc<File>,
    /// The upload's length: where it began (the file's length when opened) and what this
    /// writer appended.
    len: u64,
    /// Where the bytes not yet handed to a writeback begin.
    flushed_to: u64,
    /// The flush under way, if any.
    flush: Option<Flush>,
    /// A new file's directory, whose entry must be durable too before its bytes count.
    new_entry_in: Option<PathBuf>,
    /// Where the room reserved on disk ends (see [`reservation`]).
    reserved_to: u64,
    /// Where the bytes the request announced end: `len` until it announces any.
    announced_to: u64,
}

impl FsUploadWriter {
    /// Opens upload file `path` at `offset` (creating it when `offset` is 0, discarding any
    /// bytes past `offset`).
    pub(crate) async fn open(
        id: &str,
        path: PathBuf,
        uploads_dir: PathBuf,
        offset: u64,
    ) -> StoreResult<Self> {
        let context = format!("opening upload `{id}` at offset {offset}");
        // An upload that has bytes already (each chunk after the first) opens here, without a
        // blocking thread's two wake-ups, when nothing is unusual: its file exists, no other
        // writer holds its lock, and nothing lies past `offset`. Otherwise (a new file, which
        // ext4 can take a third of a millisecond to create; a lock to wait for; stale bytes to
        // cut off) it opens on a blocking thread.
        let opened = match (offset > 0).then(|| open_at_once(&path, offset)) {
            Some(Ok(Some(file))) => Ok(file),
            Some(Err(err)) => Err(err.into()),
            None | Some(Ok(None)) => {
                tokio::task::spawn_blocking(move || open_for_append(&path, offset))
                    .await
                    .map_err(|join| StoreError::new(context.clone(), join))?
            }
        };
        let file = opened.map_err(|source| open_error(context, source))?;
        Ok(FsUploadWriter {
            id: id.to_owned(),
            file: Arc::new(file),
            len: offset,
            flushed_to: offset,
            flush: None,
            new_entry_in: (offset == 0).then_some(uploads_dir),
            reserved_to: offset,
            announced_to: offset,
        })
    }

    /// An error of `doing` this upload.
    fn error(
        &self,
        doing: &str,
        err: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StoreError {
        StoreError::new(format!("{doing} upload `{}`", self.id), err)
    }

    /// Waits for the flush under way, if any, and reports its error.
    async fn flushed(&mut self) -> StoreResult<()> {
        let Some(flush) = self.flush.take() else {
            return Ok(());
        };
        match flush.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(self.error("flushing", err)),
            Err(join) => Err(self.error("flushing", join)),
        }
    }

    /// Starts a writeback of the bytes written since the last one began when [`flush_step`]
    /// says so, waiting (asynchronously) for the one under way first when it says that.
    async fn flush_as_needed(&mut self) -> StoreResult<()> {
        let running = self
            .flush
            .as_ref()
            .is_some_and(|flush| !flush.is_finished());
        match flush_step(self.len - self.flushed_to, running) {
            FlushStep::None => return Ok(()),
            // Waits for a lagging writeback, or takes a finished one's result.
            FlushStep::Start | FlushStep::WaitThenStart => self.flushed().await?,
        }
        let (from, to) = (self.flushed_to, self.len);
        self.flushed_to = to;
        let file = Arc::clone(&self.file);
        self.flush = Some(tokio::task::spawn_blocking(move || {
            write_back(&file, from, to)
        }));
        Ok(())
    }
}

/// The room `from..to` to reserve on disk before writing `batch` bytes at `len`, when they go
/// past `reserved_to` and the request announced bytes up to `announced_to` beyond it: up to
/// [`RESERVE_AHEAD`] past the batch's end, never past the announced end. `None` when the
/// batch fits in the room already reserved, or nothing more was announced.
pub fn reservation(
    len: u64,
    batch: u64,
    reserved_to: u64,
    announced_to: u64,
) -> Option<(u64, u64)> {
    let end = len + batch;
    if end <= reserved_to {
        return None;
    }
    let from = reserved_to.max(len);
    let to = announced_to.min(end.saturating_add(RESERVE_AHEAD));
    (to > from).then_some((from, to))
}

/// Reserves bytes `from..to` of `file` on disk without changing its length (`fallocate` with
/// `FALLOC_FL_KEEP_SIZE`), so writing them later allocates nothing. Elsewhere than Linux, and
/// on filesystems that cannot, nothing is reserved: the writes allocate as they go.
#[cfg(target_os = "linux")]
pub fn reserve(file: &File, from: u64, to: u64) -> io::Result<()> {
    let len = to.checked_sub(from).ok_or(io::ErrorKind::InvalidInput)?;
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::KEEP_SIZE, from, len) {
        Ok(()) | Err(rustix::io::Errno::OPNOTSUPP) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}

/// Reserves nothing: `fallocate` is Linux's.
#[cfg(not(target_os = "linux"))]
pub fn reserve(_file: &File, _from: u64, _to: u64) -> io::Result<()> {
    Ok(())
}

/// What a writer does about flushing after a write.
#[derive(Debug, PartialEq, Eq)]
enum FlushStep {
    /// Nothing yet: too little written since the last writeback began, or the bytes fold into
    /// the writeback after the one under way.
    None,
    /// Start a writeback.
    Start,
    /// The disk lags: wait for the writeback under way, then start one.
    WaitThenStart,
}

/// The writeback policy: one every [`WRITEBACK_EVERY`] bytes, one at a time, and the request
/// waits for the one under way once [`UNFLUSHED_MAX`] bytes are behind it. `unflushed` is
/// what was written since the last writeback began; `running`, whether it is still under way.
fn flush_step(unflushed: u64, running: bool) -> FlushStep {
    match (unflushed, running) {
        (n, _) if n < WRITEBACK_EVERY => FlushStep::None,
        (n, true) if n < UNFLUSHED_MAX => FlushStep::None,
        (_, true) => FlushStep::WaitThenStart,
        (_, false) => FlushStep::Start,
    }
}

/// A writeback ([`write_back`]) of an upload file's latest bytes, on a blocking thread. It
/// shares the writer's open file, so a writeback error it sees would not be reported again to
/// the writer's own last `fdatasync`: the writer waits for it and fails with it.
type Flush = JoinHandle<io::Result<()>>;

/// Writes bytes `from..to` of `file` to disk and waits for them (`sync_file_range`), without
/// the journal commit and cache flush of an `fdatasync`: it makes the final `fdatasync` short,
/// not the bytes durable. Elsewhere than Linux, an `fdatasync`. (The bench's disk ceiling
/// writes back with it too, so it measures the same disk work as this writer.)
#[cfg(target_os = "linux")]
pub fn write_back(file: &File, from: u64, to: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let offset = i64::try_from(from).map_err(|_| io::ErrorKind::InvalidInput)?;
    let len = to
        .checked_sub(from)
        .and_then(|len| i64::try_from(len).ok())
        .ok_or(io::ErrorKind::InvalidInput)?;
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: the descriptor is borrowed from `file`, open for the whole call; the call takes
    // only integers and touches no memory of ours. rustix and nix do not wrap it.
    #[allow(unsafe_code)]
    let done = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) };
    if done == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Writes `file`'s bytes back to disk: an `fdatasync`, as `sync_file_range` is Linux's.
#[cfg(not(target_os = "linux"))]
pub fn write_back(file: &File, _from: u64, _to: u64) -> io::Result<()> {
    file.sync_data()
}

#[async_trait]
impl UploadWriter for FsUploadWriter {
    async fn write(&mut self, chunk: Bytes) -> StoreResult<()> {
        self.write_batch(vec![chunk]).await
    }

    async fn write_batch(&mut self, chunks: Vec<Bytes>) -> StoreResult<()> {
        let batch: u64 = chunks.iter().map(|chunk| chunk.len() as u64).sum();
        if batch == 0 {
            return Ok(());
        }
        if let Some((from, to)) = reservation(self.len, batch, self.reserved_to, self.announced_to)
        {
            // A hint: a write past room that could not be reserved reports its own error.
            match reserve(&self.file, from, to) {
                Ok(()) => self.reserved_to = to,
                Err(err) => {
                    tracing::debug!(upload = %self.id, %err, "reserving room on disk");
                    self.announced_to = self.len;
                }
            }
        }
        let len =
            write_all_vectored(&self.file, &chunks).map_err(|err| self.error("writing", err))?;
        // The frames' room in the upload budget comes back now, not after a flush waited for.
        drop(chunks);
        self.len += len;
        self.flush_as_needed().await
    }

    fn announce(&mut self, bytes: u64) {
        self.announced_to = self.len.saturating_add(bytes);
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
    /// Makes everything written durable (with `entry`, a new file's directory entry too) and
    /// reports the upload's length.
    async fn finish_with(mut self: Box<Self>, entry: bool) -> StoreResult<UploadProgress> {
        let dir = if entry {
            self.new_entry_in.take()
        } else {
            None
        };
        let running = self.flush.take();
        // The last sync starts at once, beside a writeback still under way rather than after
        // it: it waits for the pages that writeback is writing anyway. Both are waited for and
        // either's error fails the request, since a writeback error is reported once per open
        // file, to whichever call of the shared file sees it first.
        let file = Arc::clone(&self.file);
        let synced = tokio::task::spawn_blocking(move || -> io::Result<()> {
            file.sync_data()?;
            dir.as_deref().map_or(Ok(()), sync_dir)
        });
        if let Some(running) = running {
            match running.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => return Err(self.error("flushing", err)),
                Err(join) => return Err(self.error("flushing", join)),
            }
        }
        match synced.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(self.error("finishing", err)),
            Err(join) => return Err(self.error("finishing", join)),
        }
        // The file at its path is all the state there is.
        Ok(UploadProgress {
            len: self.len,
            state: Vec::new(),
            held: None,
        })
    }
}

impl Drop for FsUploadWriter {
    /// Gives back room reserved past the bytes written (a request that ended before its
    /// announced end), while the writer still holds the file's lock: ext4 frees a file's
    /// blocks past its end when it is truncated to its own length. A request that wrote all
    /// it announced has nothing to give back.
    fn drop(&mut self) {
        if self.reserved_to > self.len
            && let Err(err) = self.file.set_len(self.len)
        {
            tracing::warn!(upload = %self.id, %err, "giving back room reserved on disk");
        }
    }
}

/// Opens (or creates, at offset 0) the upload file, waits for the lock, and positions it at
/// `offset`, cutting off anything beyond. I/O errors are returned as they are, so a missing
/// file reads as `NotFound`.
pub(crate) fn open_for_append(path: &Path, offset: u64) -> Result<File, OpenError> {
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

/// Opens existing upload file `path` at `offset` when that needs no waiting: its lock is
/// free and the file holds exactly `offset` bytes. `None` when it does not (the file stays
/// as it was), for [`open_for_append`] to do on a blocking thread.
fn open_at_once(path: &Path, offset: u64) -> io::Result<Option<File>> {
    let mut file = OpenOptions::new().write(true).open(path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
        Err(std::fs::TryLockError::Error(err)) if err.kind() == io::ErrorKind::Unsupported => {}
        Err(std::fs::TryLockError::Error(err)) => return Err(err),
    }
    if file.metadata()?.len() != offset {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(offset))?;
    Ok(Some(file))
}

/// Writes every byte of `chunks`, in order, with as few `writev` calls as the kernel allows;
/// returns how many.
pub(crate) fn write_all_vectored(mut file: &File, chunks: &[Bytes]) -> io::Result<u64> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writeback_starts_once_writeback_every_bytes_are_written() {
        assert_eq!(flush_step(0, false), FlushStep::None);
        assert_eq!(flush_step(WRITEBACK_EVERY - 1, false), FlushStep::None);
        assert_eq!(flush_step(WRITEBACK_EVERY, false), FlushStep::Start);
    }

    #[test]
    fn bytes_written_while_a_writeback_runs_fold_into_the_next() {
        assert_eq!(flush_step(WRITEBACK_EVERY, true), FlushStep::None);
        assert_eq!(flush_step(UNFLUSHED_MAX - 1, true), FlushStep::None);
    }

    #[test]
    fn a_request_waits_for_a_lagging_writeback_before_writing_more() {
        assert_eq!(flush_step(UNFLUSHED_MAX, true), FlushStep::WaitThenStart);
        assert_eq!(flush_step(UNFLUSHED_MAX, false), FlushStep::Start);
    }

    const MIB: u64 = 1 << 20;

    #[test]
    fn room_is_reserved_ahead_of_the_bytes_but_never_past_what_was_announced() {
        assert_eq!(reservation(0, MIB, 0, 0), None, "nothing announced");
        assert_eq!(
            reservation(0, MIB / 2, 0, 64 * MIB),
            Some((0, MIB / 2 + RESERVE_AHEAD)),
            "the first batch reserves itself and RESERVE_AHEAD more"
        );
        assert_eq!(
            reservation(MIB, MIB / 2, 8 * MIB, 64 * MIB),
            None,
            "the batch fits in the room reserved"
        );
        assert_eq!(
            reservation(8 * MIB, MIB, 8 * MIB + 4096, 64 * MIB),
            Some((8 * MIB + 4096, 9 * MIB + RESERVE_AHEAD)),
            "a batch past the room reserves from where the room ends"
        );
        assert_eq!(
            reservation(60 * MIB, MIB, 60 * MIB, 64 * MIB),
            Some((60 * MIB, 64 * MIB)),
            "never past the announced end"
        );
        assert_eq!(reservation(64 * MIB, MIB, 64 * MIB, 64 * MIB), None);
        assert_eq!(
            reservation(u64::MAX - MIB, MIB, 0, u64::MAX),
            Some((u64::MAX - MIB, u64::MAX))
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn announced_room_is_reserved_and_what_an_early_end_left_is_given_back() {
        /// The bytes `path` takes on disk.
        fn used(path: &Path) -> u64 {
            use std::os::unix::fs::MetadataExt as _;
            std::fs::metadata(path).unwrap().blocks() * 512
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload");
        let open = |offset| FsUploadWriter::open("u", path.clone(), dir.path().to_owned(), offset);
        let piece = || vec![Bytes::from(vec![1u8; MIB as usize])];

        // Nothing announced: the write allocates its own blocks, nothing more.
        let mut writer = open(0).await.unwrap();
        writer.write_batch(piece()).await.unwrap();
        assert!(used(&path) <= MIB + 64 * 1024, "{}", used(&path));
        Box::new(writer).finish().await.unwrap();

        // Announced 32 MiB, ended after 1: room was reserved ahead, and is given back.
        let mut writer = open(MIB).await.unwrap();
        writer.announce(32 * MIB);
        writer.write_batch(piece()).await.unwrap();
        assert!(
            used(&path) >= 2 * MIB + RESERVE_AHEAD,
            "reserved ahead: {}",
            used(&path)
        );
        drop(writer);
        assert!(used(&path) <= 2 * MIB + 64 * 1024, "{}", used(&path));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * MIB);

        // Announced 3 MiB, wrote them: the room fits the bytes.
        let mut writer = open(2 * MIB).await.unwrap();
        writer.announce(3 * MIB);
        for _ in 0..3 {
            writer.write_batch(piece()).await.unwrap();
        }
        let done = Box::new(writer).finish().await.unwrap();
        assert_eq!(done.len, 5 * MIB);
        assert!(
            (5 * MIB..=5 * MIB + 64 * 1024).contains(&used(&path)),
            "{}",
            used(&path)
        );
    }

    #[test]
    fn a_chunk_opens_at_once_only_when_nothing_needs_waiting_or_cutting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload");
        std::fs::write(&path, b"0123").unwrap();
        let file = open_at_once(&path, 4)
            .unwrap()
            .expect("a free lock, exactly its bytes");
        assert_eq!(file.metadata().unwrap().len(), 4);
        assert!(
            open_at_once(&path, 4).unwrap().is_none(),
            "its lock is held: the blocking open waits for it"
        );
        drop(file);
        assert!(
            open_at_once(&path, 2).unwrap().is_none(),
            "bytes past the offset are left for the blocking open to cut off"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"0123");
        let missing = open_at_once(&dir.path().join("gone"), 4).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }

    /// A chunk longer than a writeback's worth ends while that writeback may still run: every
    /// byte is in the file when the chunk is answered, and the next chunk appends after it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chunks_finish_beside_a_writeback_under_way_with_every_byte_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload");
        let piece = Bytes::from(vec![7u8; (WRITEBACK_EVERY as usize) + 12_345]);
        let mut offset = 0;
        for _ in 0..3 {
            let mut writer = Box::new(
                FsUploadWriter::open("u", path.clone(), dir.path().to_owned(), offset)
                    .await
                    .unwrap(),
            );
            writer.write_batch(vec![piece.clone()]).await.unwrap();
            assert!(
                writer.flush.is_some(),
                "a writeback was started by the write"
            );
            assert_eq!(
                writer.flushed_to,
                offset + piece.len() as u64,
                "the writeback covers every byte written since the chunk began"
            );
            offset = writer.finish().await.unwrap().len;
            assert_eq!(std::fs::metadata(&path).unwrap().len(), offset);
        }
        assert_eq!(offset, 3 * piece.len() as u64);
        assert!(std::fs::read(&path).unwrap().iter().all(|&b| b == 7));
    }

    /// A writeback's bytes are on disk (`sync_file_range` waited for them), and what it cannot
    /// write back is an error, never ignored.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_writeback_reports_what_it_cannot_write_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload");
        let mut file = File::create(&path).unwrap();
        file.write_all(&[1u8; 8192]).unwrap();
        write_back(&file, 0, 8192).unwrap();
        let beyond = write_back(&file, u64::MAX - 1, u64::MAX).unwrap_err();
        assert_eq!(beyond.kind(), io::ErrorKind::InvalidInput);
        let backwards = write_back(&file, 8192, 0).unwrap_err();
        assert_eq!(backwards.kind(), io::ErrorKind::InvalidInput);
        // Not a file that has pages to write back: the kernel's ESPIPE comes through.
        let device = File::open("/dev/null").unwrap();
        let refused = write_back(&device, 0, 1).unwrap_err();
        assert_eq!(refused.raw_os_error(), Some(libc::ESPIPE), "{refused}");
    }

    /// An upload whose file a stale writer still locks opens only once that lock is gone;
    /// then it truncates the stale bytes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_opens_only_once_a_stale_writers_lock_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload");
        std::fs::write(&path, b"kept-stale").unwrap();
        let stale = File::open(&path).unwrap();
        stale.lock().unwrap();
        let opening = tokio::spawn(FsUploadWriter::open(
            "u",
            path.clone(),
            dir.path().to_owned(),
            4,
        ));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            !opening.is_finished(),
            "opened while the stale lock was held"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"kept-stale");
        drop(stale);
        let writer = tokio::time::timeout(std::time::Duration::from_secs(10), opening)
            .await
            .expect("opens once the lock is gone")
            .unwrap()
            .unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"kept",
            "cut back to its offset"
        );
        drop(writer);
        // A free lock: opened at once.
        let writer = FsUploadWriter::open("u", path.clone(), dir.path().to_owned(), 2)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"ke");
        drop(writer);
    }
}
