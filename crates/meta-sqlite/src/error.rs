//! Errors this crate raises itself (SQLite's own errors are wrapped as they come).

/// An upload's lease is no longer held under the caller's token: it expired and another
/// request took it, or the upload was deleted. The caller must stop writing to the upload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "upload `{upload_id}` is no longer leased to this request (the lease expired and another request took it, or the upload was deleted)"
)]
pub struct LeaseLost {
    /// The upload whose lease was lost.
    pub upload_id: String,
}
