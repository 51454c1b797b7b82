//! Reading and deleting blobs of a repository.

use crate::digest::Digest;
use crate::error::{RegistryError, Result};
use crate::name::RepoName;
use crate::ports::ByteStream;

use super::Registry;

/// A byte range of a blob, both ends inclusive, as in an HTTP `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub first: u64,
    /// Last byte, or `None` for "to the end".
    pub last: Option<u64>,
}

/// What a blob read serves.
pub enum BlobRead {
    /// The whole blob.
    Whole {
        /// Blob size.
        size: u64,
        /// Its bytes.
        stream: ByteStream,
    },
    /// Bytes `first..=last` of the blob.
    Partial {
        /// Blob size.
        size: u64,
        /// First byte served.
        first: u64,
        /// Last byte served.
        last: u64,
        /// Those bytes.
        stream: ByteStream,
    },
    /// The range lies outside the blob.
    Unsatisfiable {
        /// Blob size.
        size: u64,
    },
}

impl Registry {
    /// The size of blob `digest` in `repo`. A blob stored for other repositories only is
    /// unknown here; in a repository that does not exist the name is unknown, as for a
    /// manifest. (Whoever may create a package reads its free name before the first push;
    /// a package they may not read answers NAME_UNKNOWN, so a free name must too, or a blob
    /// GET would tell which names are taken.)
    pub async fn blob_size(&self, repo: &RepoName, digest: &Digest) -> Result<u64> {
        match self.meta.linked_blob_size(repo, digest).await? {
            Some(size) => Ok(size),
            None if self.meta.repository_exists(repo).await? => {
                Err(RegistryError::BlobUnknown(digest.clone()))
            }
            None => Err(RegistryError::NameUnknown(repo.to_string())),
        }
    }

    /// Streams blob `digest` of `repo`, whole or the requested range.
    pub async fn read_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<BlobRead> {
        let size = self.blob_size(repo, digest).await?;
        let Some(ByteRange { first, last }) = range else {
            let stream = self.blobs.read(digest, 0, size).await?;
            return Ok(BlobRead::Whole { size, stream });
        };
        let last = last.map_or(size.saturating_sub(1), |l| l.min(size.saturating_sub(1)));
        if first >= size || last < first {
            return Ok(BlobRead::Unsatisfiable { size });
        }
        let stream = self.blobs.read(digest, first, last + 1).await?;
        Ok(BlobRead::Partial {
            size,
            first,
            last,
            stream,
        })
    }

    /// Removes blob `digest` from `repo`. The bytes stay in the shared store until garbage
    /// collection finds no repository holding them.
    pub async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        if self.meta.unlink_blob(repo, digest).await? {
            Ok(())
        } else {
            Err(RegistryError::BlobUnknown(digest.clone()))
        }
    }
}
