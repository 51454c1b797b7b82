//! Failures particular to the filesystem blob store. Each is wrapped in a
//! [`berth_core::StoreError`] with a note of the operation; I/O errors are wrapped as they are,
//! so callers can still see their [`std::io::ErrorKind`].

/// Why the filesystem blob store refused or failed an operation, other than plain I/O errors.
#[derive(Debug, thiserror::Error)]
pub enum FsBlobError {
    /// The upload id is not 1–64 characters of `[A-Za-z0-9_-]`, so it cannot name a file.
    #[error("upload id `{0}` is not 1-64 characters of A-Z, a-z, 0-9, `_` or `-`")]
    InvalidUploadId(String),
    /// The upload file holds fewer bytes than the offset a writer was asked to resume at.
    #[error("upload file holds {len} bytes, fewer than the recorded offset {offset}")]
    UploadTooShort {
        /// Bytes in the file.
        len: u64,
        /// Offset the writer was asked to start at.
        offset: u64,
    },
    /// A read range whose end lies before its start.
    #[error("read range {start}..{end} ends before it starts")]
    InvalidRange {
        /// First byte asked for.
        start: u64,
        /// One past the last byte asked for.
        end: u64,
    },
    /// A reader's background task stopped without saying why (it panicked).
    #[error("the background file task stopped unexpectedly")]
    TaskStopped,
}
