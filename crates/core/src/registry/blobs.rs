//! Reading and deleting blobs of a repository.

use crate::digest::Digest;
use crate::error::{RegistryError, Result};
use crate::name::RepoName;
use crate::ports::ByteStream;

use super::Registry;

/// A byte range of a blob, as in an HTTP `Range` header (RFC 9110 §14.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `first-[last]`: from byte `first` to byte `last` (inclusive), or to the end.
    From {
        /// First byte.
        first: u64,
        /// Last byte, or `None` for "to the end".
        last: Option<u64>,
    },
    /// `-n`: the last `n` bytes (the whole blob when it is shorter).
    Suffix(u64),
}

impl ByteRange {
    /// The bytes `first..=last` this range selects of a blob of `size` bytes, or `None` when
    /// it selects none (answered 416).
    pub fn resolve(self, size: u64) -> Option<(u64, u64)> {
        let end = size.checked_sub(1)?;
        match self {
            ByteRange::From { first, last } => {
                let last = last.map_or(end, |l| l.min(end));
                (first <= last).then_some((first, last))
            }
            ByteRange::Suffix(0) => None,
            ByteRange::Suffix(n) => Some((size.saturating_sub(n), end)),
        }
    }
}

/// What a blob read serves.
pub enum BlobRead {
    /// Elsewhere: a URL of the blob store serving it (ranges included) until it expires.
    Redirect {
        /// The URL.
        url: String,
    },
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
        if let Some(expires_in) = self.blob_redirect
            && let Some(url) = self.blobs.presigned_url(digest, expires_in).await?
        {
            return Ok(BlobRead::Redirect { url });
        }
        let Some(range) = range else {
            let stream = self.blobs.read(digest, 0, size).await?;
            return Ok(BlobRead::Whole { size, stream });
        };
        let Some((first, last)) = range.resolve(size) else {
            return Ok(BlobRead::Unsatisfiable { size });
        };
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

#[cfg(test)]
mod tests {
    use super::ByteRange;

    #[test]
    fn ranges_resolve_against_the_blob_size() {
        let from = |first, last| ByteRange::From { first, last };
        assert_eq!(from(100, Some(199)).resolve(1000), Some((100, 199)));
        assert_eq!(from(990, None).resolve(1000), Some((990, 999)));
        assert_eq!(from(990, Some(5000)).resolve(1000), Some((990, 999)));
        assert_eq!(from(1000, None).resolve(1000), None);
        assert_eq!(from(5, Some(4)).resolve(1000), None);
        assert_eq!(ByteRange::Suffix(10).resolve(1000), Some((990, 999)));
        assert_eq!(ByteRange::Suffix(5000).resolve(1000), Some((0, 999)));
        assert_eq!(ByteRange::Suffix(0).resolve(1000), None);
        assert_eq!(ByteRange::Suffix(3).resolve(0), None);
        assert_eq!(from(0, None).resolve(0), None);
    }
}
