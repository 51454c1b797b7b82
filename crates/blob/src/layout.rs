//! Where things live under the store's root: pure path computations and the upload-id check.
//! Calls nothing but `std::path`; every path handed to the filesystem is built here.
//!
//! ```text
//! <root>/blobs/<algorithm>/<first two hex chars>/<hex>   committed blobs
//! <root>/uploads/<id>                                    uploads in progress
//! ```

use std::path::{Path, PathBuf};

use berth_core::Digest;

use crate::error::FsBlobError;

/// Longest upload id accepted.
const MAX_ID_LEN: usize = 64;

/// The directory layout of one store.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    blobs: PathBuf,
    uploads: PathBuf,
}

impl Layout {
    /// The layout rooted at `root`.
    pub(crate) fn new(root: &Path) -> Self {
        Layout {
            blobs: root.join("blobs"),
            uploads: root.join("uploads"),
        }
    }

    /// `<root>/blobs`.
    pub(crate) fn blobs_dir(&self) -> &Path {
        &self.blobs
    }

    /// `<root>/uploads`.
    pub(crate) fn uploads_dir(&self) -> &Path {
        &self.uploads
    }

    /// `<root>/blobs/<algorithm>`.
    pub(crate) fn algorithm_dir(&self, algorithm: berth_core::Algorithm) -> PathBuf {
        self.blobs.join(algorithm.as_str())
    }

    /// `<root>/blobs/<algorithm>/<first two hex chars>/<hex>`. A [`Digest`] holds only
    /// lowercase hex after its algorithm, so this cannot leave the blobs directory.
    pub(crate) fn blob(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.algorithm_dir(digest.algorithm())
            .join(&hex[..2])
            .join(hex)
    }

    /// `<root>/uploads/<id>`, once `id` is known to be a safe file name.
    pub(crate) fn upload(&self, id: &str) -> Result<PathBuf, FsBlobError> {
        let valid = (1..=MAX_ID_LEN).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(self.uploads.join(id))
        } else {
            Err(FsBlobError::InvalidUploadId(id.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_paths_are_sharded_by_hex_prefix() {
        let layout = Layout::new(Path::new("/data"));
        let digest = Digest::sha256(b"");
        assert_eq!(
            layout.blob(&digest),
            Path::new("/data/blobs/sha256/e3").join(digest.hex())
        );
    }

    #[test]
    fn upload_ids_must_be_plain_names() {
        let layout = Layout::new(Path::new("/data"));
        assert_eq!(
            layout.upload("a-B_9").unwrap(),
            Path::new("/data/uploads/a-B_9")
        );
        assert!(layout.upload(&"x".repeat(64)).is_ok());
        for bad in [
            "",
            "../x",
            "a/b",
            ".",
            "..",
            "a.b",
            "a b",
            "é",
            &"x".repeat(65),
        ] {
            assert!(layout.upload(bad).is_err(), "{bad:?} accepted");
        }
    }
}
