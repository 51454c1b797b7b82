//! The registry services: what each distribution-spec operation does, in terms of the ports.
//!
//! Called by the HTTP layer with parsed values only; calls [`MetadataStore`] and [`BlobStore`];
//! never touches HTTP types. Each operation either completes or leaves no blob, manifest or tag
//! behind: failures clean up what they wrote before returning the error.

mod allowance;
mod blobs;
mod cache;
mod gc;
mod immutable;
mod labels;
mod listings;
mod manifests;
mod quota;
mod uploads;
mod versions;

use std::sync::Arc;

pub use blobs::{BlobRead, ByteRange};
pub use cache::ManifestCache;
pub use gc::{GcOptions, GcReport};
pub use listings::Page;
pub use manifests::PushedManifest;
pub use manifests::RESTORE_WINDOW;
pub use uploads::{BODY_FRAME_MAX, MountOutcome, UploadLimits, upload_paused, uploads_streaming};
pub use versions::{DeletedVersion, Restored};

pub(crate) use crate::ports::now_millis;
use crate::ports::{BlobStore, MetadataStore};

/// The OCI distribution registry over one metadata store and one blob store.
#[derive(Clone)]
pub struct Registry {
    meta: Arc<dyn MetadataStore>,
    blobs: Arc<dyn BlobStore>,
    downloads: Arc<versions::Downloads>,
    upload_limits: UploadLimits,
    /// Bytes of request bodies on their way to the blob store, across every upload (see
    /// [`uploads::IN_FLIGHT`]).
    in_flight: Arc<tokio::sync::Semaphore>,
    /// Manifest reads remembered (nodes on PostgreSQL); `None`: every read asks the store.
    manifest_cache: Option<Arc<ManifestCache>>,
    /// Blob GETs answer a redirect to a URL of the blob store valid this long, when it has
    /// such URLs (see [`BlobStore::presigned_url`]); `None`: Berth serves the bytes.
    blob_redirect: Option<std::time::Duration>,
}

impl Registry {
    /// A registry over the given stores.
    pub fn new(meta: Arc<dyn MetadataStore>, blobs: Arc<dyn BlobStore>) -> Self {
        Registry {
            meta,
            blobs,
            downloads: Arc::default(),
            upload_limits: UploadLimits::default(),
            in_flight: Arc::new(tokio::sync::Semaphore::new(uploads::IN_FLIGHT)),
            manifest_cache: None,
            blob_redirect: None,
        }
    }

    /// The same registry, answering blob GETs with a redirect to a URL of the blob store
    /// that expires after `expires_in` (for stores that have such URLs).
    pub fn with_blob_redirect(mut self, expires_in: std::time::Duration) -> Self {
        self.blob_redirect = Some(expires_in);
        self
    }

    /// The same registry, remembering manifest reads in `cache`.
    pub fn with_manifest_cache(mut self, cache: Arc<ManifestCache>) -> Self {
        self.manifest_cache = Some(cache);
        self
    }

    /// The metadata store, for the use cases beside the registry (storage policies).
    pub(crate) fn meta(&self) -> &Arc<dyn MetadataStore> {
        &self.meta
    }

    /// After a write of manifests or tags: the manifest cache forgets what it outdates.
    fn manifests_changed(&self) {
        if let Some(cache) = &self.manifest_cache {
            cache.forget();
        }
    }

    /// The same registry with `limits` on the open uploads of each account.
    pub fn with_upload_limits(mut self, limits: UploadLimits) -> Self {
        self.upload_limits = limits;
        self
    }
}
