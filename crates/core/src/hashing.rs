//! Resumable SHA-256 for uploads: the hash state after each chunk is serialized into the
//! upload session, so the next chunk — on this node or another — continues hashing where the
//! last one stopped without re-reading the bytes.

use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use sha2::{Digest as _, Sha256};

use crate::digest::{Algorithm, Digest};

/// SHA-256 over an upload's bytes so far.
#[derive(Clone, Default)]
pub struct UploadHasher(Sha256);

/// The persisted hash state is not one this build can read.
#[derive(Debug, thiserror::Error)]
#[error("upload hash state is corrupt ({0} bytes)")]
pub struct CorruptHashState(pub usize);

impl UploadHasher {
    /// A hasher over zero bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Restores a hasher from [`UploadHasher::to_state`] output.
    pub fn from_state(state: &[u8]) -> Result<Self, CorruptHashState> {
        let array = SerializedState::<Sha256>::try_from(state)
            .map_err(|_| CorruptHashState(state.len()))?;
        Sha256::deserialize(&array)
            .map(UploadHasher)
            .map_err(|_| CorruptHashState(state.len()))
    }

    /// The state to persist.
    pub fn to_state(&self) -> Vec<u8> {
        self.0.serialize().to_vec()
    }

    /// Hashes `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything hashed so far.
    pub fn digest(&self) -> Digest {
        Digest::from_parts(Algorithm::Sha256, &hex::encode(self.0.clone().finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_mid_stream() {
        let mut h = UploadHasher::new();
        h.update(b"hello ");
        let mut resumed = UploadHasher::from_state(&h.to_state()).unwrap();
        resumed.update(b"world");
        assert_eq!(resumed.digest(), Digest::sha256(b"hello world"));
        assert!(UploadHasher::from_state(b"short").is_err());
    }
}
