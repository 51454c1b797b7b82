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
//! Windows of [`WINDOW`] bytes are mapped (with `MAP_POPULATE`) on a blocking thread, one
//! ahead of the one being sent, and unmapped as soon as hyper has written them, so a stream
//! keeps at most two windows mapped however large the blob.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use berth_core::StoreError;
use berth_core::ports::{ByteStream, StoreResult};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::error::FsBlobError;

/// Bytes mapped at a time. A multiple of every page size Linux uses. Mapped pages count in
/// the process's resident set while mapped: 4 MiB windows made 4 concurrent pulls 72 MiB
/// peak RSS against 48 with 1 MiB, at the same rate.
const WINDOW: u64 = 1 << 20;

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
    let opened = tokio::task::spawn_blocking(move || -> io::Result<File> {
        let file = File::open(&path)?;
        let len = file.metadata()?.len();
        if len < end {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("blob file holds {len} bytes, fewer than the {end} requested"),
            ));
        }
        Ok(file)
    })
    .await
    .map_err(|e| StoreError::new(format!("opening {what}"), e))?
    .map_err(|e| StoreError::io(format!("opening {what}"), e))?;
    let file = Arc::new(opened);
    let windows = window_bounds(start, end).map(move |(from, to)| {
        let file = Arc::clone(&file);
        async move {
            tokio::task::spawn_blocking(move || map_window(&file, from, to))
                .await
                .unwrap_or_else(|join| Err(io::Error::other(join)))
        }
    });
    // One window is mapped ahead of the one hyper is writing.
    Ok(Box::pin(futures_util::stream::iter(windows).buffered(2)))
}

/// The `[from, to)` spans of the windows covering `start..end`, aligned to [`WINDOW`].
fn window_bounds(start: u64, end: u64) -> impl Iterator<Item = (u64, u64)> {
    let first = start - start % WINDOW;
    (first..end)
        .step_by(WINDOW as usize)
        .map(move |at| (at.max(start), (at + WINDOW).min(end)))
        .filter(|(from, to)| from < to)
}

/// Maps bytes `from..to` of `file` (the window starting at the aligned offset below `from`).
fn map_window(file: &File, from: u64, to: u64) -> io::Result<Bytes> {
    let base = from - from % WINDOW;
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

    #[test]
    fn windows_cover_the_range_exactly() {
        let spans: Vec<_> = window_bounds(1, 2 * WINDOW + 5).collect();
        assert_eq!(
            spans,
            vec![
                (1, WINDOW),
                (WINDOW, 2 * WINDOW),
                (2 * WINDOW, 2 * WINDOW + 5)
            ]
        );
        assert_eq!(window_bounds(7, 7).count(), 0);
        let inner: Vec<_> = window_bounds(WINDOW + 3, WINDOW + 9).collect();
        assert_eq!(inner, vec![(WINDOW + 3, WINDOW + 9)]);
    }
}
