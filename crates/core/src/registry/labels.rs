//! An image's labels: its manifest's annotations and, for an image manifest, the labels of
//! its config blob (read whole, at most [`MAX_CONFIG_BYTES`]).

use bytes::BytesMut;
use futures_util::StreamExt;

use crate::error::{Result, StoreError};
use crate::labels::{self, Labels, MAX_CONFIG_BYTES};
use crate::name::RepoName;

use super::Registry;

impl Registry {
    /// The labels of `manifest`, a manifest of `repo`: its `annotations` over its config's
    /// `config.Labels` (see [`labels::image_labels`]). A config that is not in `repo`, larger
    /// than [`MAX_CONFIG_BYTES`] or not JSON contributes nothing; only a failing store is an
    /// error.
    pub async fn image_labels(&self, repo: &RepoName, manifest: &[u8]) -> Result<Labels> {
        let Some(config) = labels::manifest_labels(manifest).config else {
            return Ok(labels::image_labels(manifest, None));
        };
        let size = match self.meta.linked_blob_size(repo, &config.digest).await? {
            Some(size) if size <= MAX_CONFIG_BYTES => size,
            _ => return Ok(labels::image_labels(manifest, None)),
        };
        let mut stream = self.blobs.read(&config.digest, 0, size).await?;
        let mut bytes = BytesMut::with_capacity(usize::try_from(size).unwrap_or(0));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                StoreError::new(format!("reading config blob {}", config.digest), e)
            })?;
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > MAX_CONFIG_BYTES {
                return Ok(labels::image_labels(manifest, None));
            }
        }
        Ok(labels::image_labels(manifest, Some(&bytes)))
    }
}
