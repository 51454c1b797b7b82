//! Serving committed blobs from memory maps, one window at a time.
//!
//! A blob GET through `read(2)` copies every byte twice (page cache → buffer → socket) and
//! hands each chunk from a blocking thread to the connection task. Mapping the file lets hyper
//! write straight from the page cache: measured on 4 × 256 MiB pulls, server CPU fell from
//! 0.80 s to 0.45 s per 2 GiB. This is the crate's one use of `unsafe`.
//!
//! Why it is sound here: a mapping is only undefined behaviour to read if the file changes
//! underneath it. Blob files are immutable by construction — written under `uploads/`,
//! fsynced, then renamed into their content address and never opened for writing again;
//! removing one only unlinks it, which leaves existing mappings intact. Upload files, which do
//! change, are never mapped (they use [`crate::reader`]). The residual risk is an I/O error of
//! the disk while a page is faulted in, which raises SIGBUS instead of returning EIO.
//!
//! A range of at most 64 KiB is not mapped: it is read on the blocking thread that opens the
//! file ([`SMALL_READ`]).
//!
//! Windows are mapped (with `MAP_POPULATE`) on a blocking thread, one ahead of the one being
//! sent, and unmapped as soon as hyper has written them. Mapped pages count in the process's
//! resident set, so a window's size shrinks as more streams run: all of them together keep
//! about [`MAPPED`] mapped (4 concurrent pulls with fixed 4 MiB windows peaked at 72 MiB RSS;
//! with 1 MiB, 48 MiB; 16 pulls with 1 MiB, 63 MiB).

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use berth_core::StoreError;
use berth_core::ports::{ByteStream, StoreResult};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::error::FsBlobError;

/// Bytes every blob stream together keeps mapped, about (see the module docs).
const MAPPED: u64 = 8 << 20;
/// The largest window: beyond it, fewer mappings per byte no longer pay.
const MAX_WINDOW: u64 = 1 << 20;
/// The smallest window, and the alignment of every window's start: a multiple of every page
/// size Linux uses.
const MIN_WINDOW: u64 = 64 << 10;
/// Windows one stream holds at once: the one hyper writes and two being mapped ahead.
const HELD: u64 = 3;

/// The largest range read with `pread` on the thread that opens the file, in the same
/// hand-off, rather than mapped: a config, a small layer. Mapping it would cost a second
/// hand-off, and a `mmap` and `munmap` for a few KiB (BENCHMARKS.md, "Lean and steady,
/// part 23").
const SMALL_READ: u64 = MIN_WINDOW;

/// A blob file opened for a range: read already when the range is small.
enum Opened {
    Read(Bytes),
    File(File),
}

/// Blob streams open now.
static STREAMS: AtomicU64 = AtomicU64::new(0);

/// Counts a blob stream in [`STREAMS`] while it lives.
struct Counted;

impl Counted {
    fn begin() -> Self {
        STREAMS.fetch_add(1, Ordering::Relaxed);
        Counted
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        STREAMS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The window size while `streams` streams run.
fn window_for(streams: u64) -> u64 {
    let share = MAPPED / (HELD * streams.max(1));
    share.clamp(MIN_WINDOW, MAX_WINDOW) / MIN_WINDOW * MIN_WINDOW
}

/// The span `[from, to)` of the window starting at `from`, at most `window` bytes from the
/// aligned offset below `from`, ending by `end`.
fn next_span(from: u64, end: u64, window: u64) -> (u64, u64) {
    let base = from - from % MIN_WINDOW;
    (from, (base + window).min(end))
}

/// Streams bytes `start..end` of the committed blob at `path`.
pub(crate) async fn read_range(
    path: PathBuf,
    start: u64,
    end: u64,
    what: &str,
) -> StoreResult<ByteStream> {
    if end < start {
        return Err(StoreError::new(
            format!("reading {what}"),
            FsBlobError::InvalidRange { start, end },
        ));
    }
    let small = end - start <= SMALL_READ;
    let opened = tokio::task::spawn_blocking(move || -> io::Result<Opened> {
        let file = File::open(&path)?;
        let len = file.metadata()?.len();
        if len < end {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("blob file holds {len} bytes, fewer than the {end} requested"),
            ));
        }
        if small {
            let mut bytes = vec![0; (end - start) as usize];
            std::os::unix::fs::FileExt::read_exact_at(&file, &mut bytes, start)?;
            return Ok(Opened::Read(Bytes::from(bytes)));
        }
        Ok(Opened::File(file))
    })
    .await
    .map_err(|e| StoreError::new(format!("opening {what}"), e))?
    .map_err(|e| StoreError::io(format!("opening {what}"), e))?;
    let file = match opened {
        Opened::Read(bytes) => {
            return Ok(Box::pin(futures_util::stream::once(std::future::ready(
                Ok(bytes),
            ))));
        }
        Opened::File(file) => Arc::new(file),
    };
    let counted = Counted::begin();
    // Each window's size is chosen as it is due, from the streams running then.
    let windows = futures_util::stream::unfold((start, counted), move |(from, counted)| {
        let file = Arc::clone(&file);
        async move {
            if from >= end {
                return None;
            }
            let (from, to) = next_span(from, end, window_for(STREAMS.load(Ordering::Relaxed)));
            let mapping = async move {
                tokio::task::spawn_blocking(move || map_window(&file, from, to))
                    .await
                    .unwrap_or_else(|join| Err(io::Error::other(join)))
            };
            Some((mapping, (to, counted)))
        }
    });
    // Windows are mapped ahead of the one hyper is writing.
    Ok(Box::pin(windows.buffered(HELD as usize - 1)))
}

/// Maps bytes `from..to` of `file` (the window starting at the aligned offset below `from`).
fn map_window(file: &File, from: u64, to: u64) -> io::Result<Bytes> {
    let base = from - from % MIN_WINDOW;
    let len = (to - base) as usize;
    // SAFETY: blob files are never modified or truncated after they are committed (module
    // docs); the mapping is read-only and dropped when hyper has written the bytes.
    #[allow(unsafe_code)]
    let map = unsafe {
        memmap2::MmapOptions::new()
            .offset(base)
            .len(len)
            .populate()
            .map(file)?
    };
    Ok(Bytes::from_owner(map).slice((from - base) as usize..))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A range of at most [`SMALL_READ`] bytes is read when the file opens: its stream maps
    /// nothing (it is not counted among the mapped streams); a larger one is mapped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn small_ranges_are_read_not_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::write(&path, vec![7u8; 2 * SMALL_READ as usize]).unwrap();
        let small = read_range(path.clone(), 10, 10 + SMALL_READ, "small")
            .await
            .unwrap();
        assert_eq!(
            STREAMS.load(Ordering::Relaxed),
            0,
            "the small range maps nothing"
        );
        let large = read_range(path, 10, 11 + SMALL_READ, "large")
            .await
            .unwrap();
        assert_eq!(
            STREAMS.load(Ordering::Relaxed),
            1,
            "the larger range is mapped"
        );
        drop((small, large));
    }

    #[test]
    fn windows_cover_the_range_exactly_whatever_their_sizes() {
        let (start, end) = (5, 3 * MAX_WINDOW + 7);
        let mut from = start;
        let mut spans = Vec::new();
        for window in [MAX_WINDOW, MIN_WINDOW, 4 * MIN_WINDOW].into_iter().cycle() {
            if from >= end {
                break;
            }
            let span = next_span(from, end, window);
            assert!(span.1 > span.0, "progress at {from}");
            assert!(span.1 - (span.0 - span.0 % MIN_WINDOW) <= window);
            spans.push(span);
            from = span.1;
        }
        assert_eq!(spans.first().map(|s| s.0), Some(start));
        assert_eq!(spans.last().map(|s| s.1), Some(end));
        assert!(spans.windows(2).all(|w| w[0].1 == w[1].0), "{spans:?}");
    }

    #[test]
    fn windows_shrink_as_streams_grow_and_stay_aligned() {
        assert_eq!(window_for(0), MAX_WINDOW);
        assert_eq!(window_for(2), MAX_WINDOW);
        assert!(window_for(16) < MAX_WINDOW);
        assert_eq!(window_for(10_000), MIN_WINDOW);
        for streams in 1..64 {
            let window = window_for(streams);
            assert_eq!(window % MIN_WINDOW, 0);
            assert!(window * HELD * streams <= MAPPED.max(MIN_WINDOW * HELD * streams));
        }
    }
}
