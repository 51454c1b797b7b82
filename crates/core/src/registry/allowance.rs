//! What a request body may bring to an upload, and who refuses more: the bytes an
//! account's open uploads may hold (`max_upload_bytes_per_account`) and its storage quota
//! (see `quota.rs`), the smaller of the two.

use crate::digest::Digest;
use crate::error::RegistryError;

use super::quota::{Need, Room};

/// What a request adding to an upload says about its body.
pub(super) struct Chunk<'a> {
    /// `Content-Range` (`start-end`).
    pub(super) range: Option<(u64, u64)>,
    /// `Content-Length`.
    pub(super) length: Option<u64>,
    /// The blob's digest, on the final `PUT`.
    pub(super) digest: Option<&'a Digest>,
    /// The request's name in metrics: `upload_patch`, `upload_put`.
    pub(super) request: &'static str,
}

impl Chunk<'_> {
    /// The body's announced length: the range's, else `Content-Length`.
    pub(super) fn length(&self) -> Option<u64> {
        self.range
            .map(|(start, end)| end + 1 - start)
            .or(self.length)
    }
}

/// How many bytes a request body may bring, and who refuses more.
pub(super) struct Allowance {
    /// The bytes.
    pub(super) bytes: u64,
    /// Whose limit more would pass.
    pub(super) over: Over,
    /// Whether the account had a storage quota when the request began. Without one, the
    /// final link's transaction is the only quota check (a quota set meanwhile refuses the
    /// link there).
    pub(super) under_quota: bool,
}

/// Whose limit a body that brings more than its allowance goes over.
pub(super) enum Over {
    /// None: the allowance is unlimited.
    Nothing,
    /// The bytes the open uploads of this account may hold.
    Uploads(String),
    /// The account's storage quota, refused under this request name.
    Quota(Room, &'static str),
}

impl Allowance {
    /// The smaller of this allowance and what `room` leaves.
    pub(super) fn within(self, room: Room, request: &'static str) -> Allowance {
        if room.left() < self.bytes {
            Allowance {
                bytes: room.left(),
                over: Over::Quota(room, request),
                under_quota: true,
            }
        } else {
            Allowance {
                under_quota: true,
                ..self
            }
        }
    }

    /// The refusal of a body that brought `received` bytes, more than its allowance.
    pub(super) fn refuse(&self, received: u64) -> RegistryError {
        match &self.over {
            Over::Quota(room, request) => room.refuse(request, Need::AtLeast(received)),
            Over::Uploads(owner) => RegistryError::Denied(format!(
                "this request would make the open uploads of `{owner}` hold more bytes than this registry allows; nothing from it was kept — finish or cancel other uploads first"
            )),
            Over::Nothing => RegistryError::Denied(format!(
                "this request brought {received} bytes, more than it may; nothing from it was kept"
            )),
        }
    }
}
