//! Berth's blob store on S3-compatible object storage (AWS S3, Garage, MinIO…), through the
//! `object_store` crate.
//!
//! # Layout (under an optional key prefix)
//! - `uploads/{id}/{start}`: a staged piece of upload `id` — the bytes of a request that did
//!   not fill a part, starting at byte `start` of the upload. Deleted when the upload ends
//!   (those folded into a part since included: the state records them); pieces no recorded
//!   state names are purged by age like upload files.
//! - `data/{id}`: the object upload `id`'s multipart upload writes; once completed it is a
//!   blob's bytes, and it stays where it is.
//! - `blobs/{algorithm}/{hex}`: blob `digest`. Either the bytes themselves (an upload that
//!   never filled a part is copied here, server-side, on commit: at most a few MiB; one
//!   whole in its committing request is written here directly from memory) or, with
//!   the content type [`LOCATION_TYPE`], a small JSON record of where its bytes are
//!   (`data/{id}`). Large blobs are therefore never copied: Distribution's S3 driver writes
//!   every blob twice (upload path, then a server-side copy to its digest path).
//!
//! # Uploads across nodes
//! Parts go to the upload's multipart upload as they fill (8 MiB); a request's remainder is
//! staged as an object. The multipart id, the parts' ETags and the staged pieces' lengths are
//! the upload's state ([`UploadProgress::state`](berth_core::ports::UploadProgress::state)), which Berth records in its metadata with the
//! upload's offset, so whichever node takes the next request goes on from there. A request
//! that fails before its progress is recorded leaves parts that the next request overwrites
//! (same part numbers) and staged pieces that are never named (purged by age).
//!
//! Where a blob's bytes are does not change once committed, so it is cached per node.

mod orphans;
mod state;
mod writer;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use berth_core::ports::{BlobStore, ByteStream, HeldBytes, Millis, StoreResult, UploadWriter};
use berth_core::{Digest, StoreError, StoreErrorKind};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, Checksum};
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    Attribute, AttributeValue, Attributes, ClientOptions, GetOptions, GetRange, ObjectStore,
    ObjectStoreExt, PutOptions, PutPayload, RetryConfig,
};
use serde::{Deserialize, Serialize};

use crate::state::UploadState;
use crate::writer::S3UploadWriter;

/// The content type of a blob object that records where the blob's bytes are.
pub const LOCATION_TYPE: &str = "application/vnd.berth.blob-location.v1+json";

/// Bytes at which a writer sends a part.
pub(crate) const PART: u64 = 8 << 20;

/// S3's smallest part but the last: a request's remainder at least this large is sent as a
/// part, a smaller one is staged.
pub(crate) const MIN_PART: u64 = 5 << 20;

/// Where committed blobs' bytes are, remembered per node (each entry ~100 bytes).
const LOCATIONS_CACHED: usize = 100_000;

/// The default for [`S3Settings::upload_memory`]: eight parts' worth.
pub const DEFAULT_UPLOAD_MEMORY: u64 = 64 << 20;

/// How long a request waits for room in the node's upload memory before it answers
/// unavailable (the client retries; the upload keeps what it made durable).
const ROOM_WAIT: Duration = Duration::from_secs(30);

/// How to reach the bucket. The secret is kept out of `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// The bucket.
    pub bucket: String,
    /// A key prefix inside the bucket (no leading or trailing `/`); empty for none.
    pub prefix: String,
    /// The S3 endpoint (`http://127.0.0.1:3900` for a local Garage); `None` for AWS.
    pub endpoint: Option<String>,
    /// The region (`garage` for Garage).
    pub region: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// Bytes of upload buffers the node holds at most, across every upload
    /// (`s3_upload_memory_mib`): the bytes of parts being filled or on their way to S3, and
    /// of staged pieces read back. At least one part (8 MiB).
    pub upload_memory: u64,
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("upload_memory", &self.upload_memory)
            .finish()
    }
}

/// Why the store could not be opened, naming the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A setting is missing or malformed.
    #[error("{setting}: {message}")]
    Setting {
        /// The setting's name.
        setting: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The endpoint did not answer.
    #[error("s3_endpoint: cannot reach the S3 endpoint {endpoint} ({source})")]
    Unreachable {
        /// The endpoint tried.
        endpoint: String,
        /// Why.
        source: object_store::Error,
    },
    /// The endpoint answered but refused the credentials or the bucket.
    #[error(
        "s3_access_key_id / s3_secret_access_key: the S3 endpoint refused access to bucket `{bucket}` with key `{key}` ({source})"
    )]
    Refused {
        /// The bucket.
        bucket: String,
        /// The access key id used.
        key: String,
        /// What S3 answered.
        source: object_store::Error,
    },
    /// The bucket does not exist.
    #[error("blob_store: the bucket `{bucket}` does not exist at the S3 endpoint ({source})")]
    NoBucket {
        /// The bucket.
        bucket: String,
        /// What S3 answered.
        source: object_store::Error,
    },
}

/// Key names under the store's prefix.
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        let prefix = prefix.trim_matches('/');
        Keys {
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        }
    }

    fn path(&self, rest: String) -> Path {
        Path::from(format!("{}{rest}", self.prefix))
    }

    fn blob(&self, digest: &Digest) -> Path {
        self.path(format!(
            "blobs/{}/{}",
            digest.algorithm().as_str(),
            digest.hex()
        ))
    }

    pub(crate) fn data(&self, id: &str) -> Path {
        self.path(format!("data/{id}"))
    }

    /// What every `data/{id}` key starts with, `/` included.
    pub(crate) fn data_prefix(&self) -> String {
        format!("{}data/", self.prefix)
    }

    pub(crate) fn staged(&self, id: &str, start: u64) -> Path {
        self.path(format!("uploads/{id}/{start:020}"))
    }

    fn uploads(&self) -> Path {
        self.path("uploads".to_owned())
    }

    /// `blobs`, the prefix every blob's key starts with.
    fn blobs(&self) -> Path {
        self.path("blobs".to_owned())
    }

    /// The digest blob key `key` (from a listing of [`Keys::blobs`]) is the key of.
    fn digest_of(&self, key: &Path) -> Option<Digest> {
        let rest = key.as_ref().strip_prefix(&self.prefix)?;
        let rest = rest.strip_prefix("blobs/")?;
        let (algorithm, hex) = rest.split_once('/')?;
        let digest: Digest = format!("{algorithm}:{hex}").parse().ok()?;
        (self.blob(&digest) == *key).then_some(digest)
    }

    fn probe(&self) -> Path {
        self.path("probe".to_owned())
    }
}

/// Where a committed blob's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    /// In the blob's own object.
    Direct { size: u64 },
    /// In the object an upload wrote.
    At { key: String, size: u64 },
}

impl Location {
    fn size(&self) -> u64 {
        match self {
            Location::Direct { size } | Location::At { size, .. } => *size,
        }
    }
}

/// The JSON a location object holds.
#[derive(Serialize, Deserialize)]
struct LocationRecord {
    key: String,
    size: u64,
}

pub(crate) struct Inner {
    pub(crate) s3: AmazonS3,
    pub(crate) keys: Keys,
    locations: quick_cache::sync::Cache<Digest, Location>,
    /// The node's upload memory, a permit per byte ([`S3Settings::upload_memory`]).
    room: Arc<tokio::sync::Semaphore>,
    /// Its bytes in all.
    room_bytes: u64,
    /// Lists open multipart uploads, which `object_store` cannot.
    lister: orphans::Lister,
}

/// The S3 blob store. Cheap to clone.
#[derive(Clone)]
pub struct S3BlobStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("store", &self.inner.s3.to_string())
            .field("prefix", &self.inner.keys.prefix)
            .finish()
    }
}

/// Maps an `object_store` error into a store error: not found as not found; network
/// failures and server errors (what retrying later may fix) as unavailable.
pub(crate) fn failed(context: impl Into<String>) -> impl FnOnce(object_store::Error) -> StoreError {
    let context = context.into();
    move |err| {
        let kind = match &err {
            object_store::Error::NotFound { .. } => StoreErrorKind::NotFound,
            object_store::Error::Generic { .. } => StoreErrorKind::Unavailable,
            _ => StoreErrorKind::Other,
        };
        StoreError::of_kind(kind, context, err)
    }
}

fn is_not_found(err: &object_store::Error) -> bool {
    matches!(err, object_store::Error::NotFound { .. })
}

/// Upload ids name keys: 1–64 characters of `[A-Za-z0-9_-]`, as on the filesystem.
fn check_id(id: &str) -> StoreResult<()> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(StoreError::of_kind(
            StoreErrorKind::Other,
            format!("upload id `{}`", id.escape_debug()),
            "is not 1-64 characters of A-Z, a-z, 0-9, `_` or `-`",
        ))
    }
}

fn eof(what: &str, len: u64, wanted: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!("{what} holds {len} bytes, fewer than the {wanted} asked for"),
    )
}

impl S3BlobStore {
    /// Connects to the bucket and checks it answers with these credentials; the error names
    /// the setting to fix.
    pub async fn open(settings: &S3Settings) -> Result<Self, OpenError> {
        let store = Self::connect(settings)?;
        // A listing (of nothing) rather than a HEAD: its error has a body naming the cause.
        match store
            .inner
            .s3
            .list_with_delimiter(Some(&store.inner.keys.probe()))
            .await
        {
            Ok(_) => Ok(store),
            Err(err) if is_not_found(&err) || err.to_string().contains("NoSuchBucket") => {
                Err(OpenError::NoBucket {
                    bucket: settings.bucket.clone(),
                    source: err,
                })
            }
            // object_store keeps the HTTP status of a failed listing in a private type: its
            // debug text tells an answer (refused) from no answer (unreachable).
            Err(err @ object_store::Error::Generic { .. })
                if !format!("{err:?}").contains("Status {") =>
            {
                Err(OpenError::Unreachable {
                    endpoint: settings
                        .endpoint
                        .clone()
                        .unwrap_or_else(|| "(AWS)".to_owned()),
                    source: err,
                })
            }
            Err(err) => Err(OpenError::Refused {
                bucket: settings.bucket.clone(),
                key: settings.access_key_id.clone(),
                source: err,
            }),
        }
    }

    /// Builds the client without contacting the endpoint.
    pub fn connect(settings: &S3Settings) -> Result<Self, OpenError> {
        let missing = |setting: &'static str| OpenError::Setting {
            setting,
            message: "is not set; an S3 blob store needs it".to_owned(),
        };
        if settings.bucket.is_empty() {
            return Err(OpenError::Setting {
                setting: "blob_store",
                message: "names no bucket; write s3://<bucket>[/<prefix>]".to_owned(),
            });
        }
        if settings.access_key_id.is_empty() {
            return Err(missing("s3_access_key_id"));
        }
        if settings.secret_access_key.is_empty() {
            return Err(missing("s3_secret_access_key"));
        }
        if settings.upload_memory < PART {
            return Err(OpenError::Setting {
                setting: "s3_upload_memory_mib",
                message: format!(
                    "is {} MiB, less than one part ({} MiB); every upload would wait forever",
                    settings.upload_memory >> 20,
                    PART >> 20
                ),
            });
        }
        let client = ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            // Blob bodies stream for as long as the client reads: no whole-request timeout,
            // but a stalled read fails.
            .with_timeout_disabled()
            .with_read_timeout(Duration::from_secs(60))
            .with_pool_max_idle_per_host(64)
            .with_allow_http(
                settings
                    .endpoint
                    .as_deref()
                    .is_some_and(|e| e.starts_with("http://")),
            );
        let retry = RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(15),
            ..RetryConfig::default()
        };
        let lister =
            orphans::Lister::new(settings, &client).map_err(|message| OpenError::Setting {
                setting: "s3_endpoint",
                message,
            })?;
        let room_bytes = usize::try_from(settings.upload_memory)
            .unwrap_or(usize::MAX)
            .min(tokio::sync::Semaphore::MAX_PERMITS);
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_access_key_id(&settings.access_key_id)
            .with_secret_access_key(&settings.secret_access_key)
            .with_client_options(client)
            .with_retry(retry)
            // Bodies are checked end to end by a CRC-64/NVME the store verifies (a mismatch is
            // refused, `BadDigest`) rather than by signing their SHA-256: the signature's
            // SHA-256 cost Berth and the store ~10 % of a push's CPU between them, and a CRC is
            // what a checksum needs (integrity, not secrecy; the request's headers, this
            // checksum among them, stay signed).
            .with_unsigned_payload(true)
            .with_checksum_algorithm(Checksum::CRC64NVME);
        if let Some(endpoint) = &settings.endpoint {
            // Path-style requests: what Garage and most self-hosted stores serve.
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        let s3 = builder.build().map_err(|e| OpenError::Setting {
            setting: "s3_endpoint",
            message: e.to_string(),
        })?;
        Ok(S3BlobStore {
            inner: Arc::new(Inner {
                s3,
                keys: Keys::new(&settings.prefix),
                locations: quick_cache::sync::Cache::new(LOCATIONS_CACHED),
                room: Arc::new(tokio::sync::Semaphore::new(room_bytes)),
                room_bytes: room_bytes as u64,
                lister,
            }),
        })
    }
}

impl Inner {
    /// Where blob `digest`'s bytes are, if stored.
    async fn locate(&self, digest: &Digest) -> StoreResult<Option<Location>> {
        if let Some(location) = self.locations.get(digest) {
            return Ok(Some(location));
        }
        self.locate_fresh(digest).await
    }

    /// Where blob `digest`'s bytes are, asking the bucket rather than the cache: another node
    /// may have deleted the blob (garbage collection) and stored it again elsewhere.
    async fn locate_fresh(&self, digest: &Digest) -> StoreResult<Option<Location>> {
        self.locations.remove(digest);
        let key = self.keys.blob(digest);
        let head = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        let found = match self.s3.get_opts(&key, head).await {
            Ok(found) => found,
            Err(err) if is_not_found(&err) => {
                self.locations.remove(digest);
                return Ok(None);
            }
            Err(err) => return Err(failed(format!("looking up blob {digest}"))(err)),
        };
        let is_location = matches!(
            found.attributes.get(&Attribute::ContentType),
            Some(value) if value.as_ref() == LOCATION_TYPE
        );
        let location = if is_location {
            let bytes = self
                .get_whole(&key, || format!("reading where blob {digest} is"))
                .await?;
            let record: LocationRecord = serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::new(format!("reading where blob {digest} is"), e))?;
            Location::At {
                key: record.key,
                size: record.size,
            }
        } else {
            Location::Direct {
                size: found.meta.size,
            }
        };
        self.locations.insert(digest.clone(), location.clone());
        Ok(Some(location))
    }

    /// Room for `bytes` bytes (at most a part) in the node's upload memory, once there is:
    /// uploads share it first come, first served. After [`ROOM_WAIT`] without room, an
    /// unavailable error (503): better than waiting on.
    pub(crate) async fn room(
        &self,
        bytes: usize,
        doing: impl Fn() -> String,
    ) -> StoreResult<tokio::sync::OwnedSemaphorePermit> {
        self.room_within(bytes, ROOM_WAIT).await.ok_or_else(|| {
            StoreError::of_kind(
                StoreErrorKind::Unavailable,
                doing(),
                format!(
                    "this node's S3 upload memory ({} MiB, s3_upload_memory_mib) stayed in use by other uploads for {} s; try again",
                    self.room_bytes >> 20,
                    ROOM_WAIT.as_secs()
                ),
            )
        })
    }

    /// Room for `bytes` bytes, if it is free now or comes within `wait`.
    pub(crate) async fn room_within(
        &self,
        bytes: usize,
        wait: Duration,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let wanted = u32::try_from(bytes).ok()?;
        let acquire = self.room.clone().acquire_many_owned(wanted);
        // The semaphore is never closed.
        tokio::time::timeout(wait, acquire).await.ok()?.ok()
    }

    /// The staged pieces' bytes, in order (they total less than a part), read into the room
    /// of one part.
    async fn read_staged_in_room(
        &self,
        id: &str,
        state: &UploadState,
    ) -> StoreResult<(Vec<Bytes>, tokio::sync::OwnedSemaphorePermit)> {
        let room = self
            .room(state.staged_len() as usize, || {
                format!("reading the staged pieces of upload `{id}`")
            })
            .await?;
        Ok((self.read_staged(id, state).await?, room))
    }

    /// The staged pieces' bytes, in order (they total less than a part). The caller holds
    /// their room.
    pub(crate) async fn read_staged(
        &self,
        id: &str,
        state: &UploadState,
    ) -> StoreResult<Vec<Bytes>> {
        let mut pieces = Vec::with_capacity(state.staged.len());
        for key in state.staged_keys(&self.keys, id) {
            let piece = self
                .get_whole(&key, || format!("reading a staged piece of upload `{id}`"))
                .await?;
            pieces.push(piece);
        }
        Ok(pieces)
    }

    /// The whole (small) object `key`.
    async fn get_whole(&self, key: &Path, doing: impl Fn() -> String) -> StoreResult<Bytes> {
        self.s3
            .get(key)
            .await
            .map_err(failed(doing()))?
            .bytes()
            .await
            .map_err(failed(doing()))
    }

    /// Streams bytes `range` of object `key` (a non-empty range).
    async fn stream(
        &self,
        key: &Path,
        range: std::ops::Range<u64>,
        doing: String,
    ) -> StoreResult<ByteStream> {
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        };
        let found = self
            .s3
            .get_opts(key, options)
            .await
            .map_err(failed(doing))?;
        Ok(Box::pin(found.into_stream().map_err(std::io::Error::other)))
    }

    /// Completes the upload's multipart upload (its staged pieces as the last part) unless
    /// that was done before; returns the completed object's size.
    async fn complete(&self, id: &str, multipart: &str, state: &UploadState) -> StoreResult<u64> {
        let key = self.keys.data(id);
        match self.s3.head(&key).await {
            Ok(meta) => return Ok(meta.size),
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(failed(format!("looking up upload `{id}`"))(err)),
        }
        let mut parts = state.part_ids();
        if !state.staged.is_empty() {
            let (chunks, _room) = self.read_staged_in_room(id, state).await?;
            let payload: PutPayload = chunks.into_iter().collect();
            let multipart = multipart.to_owned();
            let last = self
                .s3
                .put_part(&key, &multipart, parts.len(), payload)
                .await
                .map_err(failed(format!("uploading the last part of `{id}`")))?;
            parts.push(state.completing(&last.content_id));
        }
        self.s3
            .complete_multipart(&key, &multipart.to_owned(), parts)
            .await
            .map_err(failed(format!("completing upload `{id}`")))?;
        Ok(state.len())
    }

    /// Deletes `keys`, those already gone included.
    async fn delete_all(&self, keys: Vec<Path>, doing: &str) -> StoreResult<usize> {
        if keys.is_empty() {
            return Ok(0);
        }
        let stream = futures_util::stream::iter(keys.into_iter().map(Ok)).boxed();
        let mut deleted = self.s3.delete_stream(stream);
        let mut count = 0;
        while let Some(done) = deleted.next().await {
            match done {
                Ok(_) => count += 1,
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(failed(doing.to_owned())(err)),
            }
        }
        Ok(count)
    }

    /// Removes what upload `id` wrote: its multipart upload (open or completed) when
    /// `with_data`, and its staged pieces (those folded into parts too).
    async fn discard(&self, id: &str, state: &UploadState, with_data: bool) -> StoreResult<()> {
        let mut keys = state.staged_keys(&self.keys, id);
        keys.extend(state.folded_keys(&self.keys, id));
        if with_data && let Some(multipart) = &state.multipart {
            let data = self.keys.data(id);
            if let Err(err) = self.s3.abort_multipart(&data, multipart).await
                && !is_not_found(&err)
            {
                // Completed already (then its object goes below) or gone: either way no
                // part is left to pay for.
                tracing::debug!(id, error = %err, "aborting a multipart upload");
            }
            keys.push(data);
        }
        self.delete_all(keys, &format!("removing upload `{id}`"))
            .await
            .map(|_| ())
    }
}

/// A stream of `chunks`, then an end-of-file error when they hold fewer than `wanted` bytes.
fn chunks_then_eof(chunks: Vec<Bytes>, held: u64, wanted: u64, what: String) -> ByteStream {
    let mut left = wanted;
    let mut out: Vec<std::io::Result<Bytes>> = Vec::new();
    for mut chunk in chunks {
        if left == 0 {
            break;
        }
        if chunk.len() as u64 > left {
            chunk.truncate(left as usize);
        }
        left -= chunk.len() as u64;
        out.push(Ok(chunk));
    }
    if left > 0 {
        out.push(Err(eof(&what, held, wanted)));
    }
    Box::pin(futures_util::stream::iter(out))
}

impl S3BlobStore {
    /// Streams bytes `start..end` of blob `digest`, from where the cache (or with `fresh`, the
    /// bucket) says its bytes are.
    async fn read_at(
        &self,
        digest: &Digest,
        start: u64,
        end: u64,
        fresh: bool,
    ) -> StoreResult<ByteStream> {
        let location = if fresh {
            self.inner.locate_fresh(digest).await?
        } else {
            self.inner.locate(digest).await?
        };
        let Some(location) = location else {
            return Err(StoreError::of_kind(
                StoreErrorKind::NotFound,
                format!("reading blob {digest}"),
                "no such blob",
            ));
        };
        let size = location.size();
        if end < start || end > size {
            return Err(StoreError::new(
                format!("reading blob {digest}"),
                eof("the blob", size, end),
            ));
        }
        if start == end {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        let key = match &location {
            Location::Direct { .. } => self.inner.keys.blob(digest),
            Location::At { key, .. } => Path::from(key.as_str()),
        };
        self.inner
            .stream(&key, start..end, format!("reading blob {digest}"))
            .await
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn stat(&self, digest: &Digest) -> StoreResult<Option<u64>> {
        Ok(self.inner.locate(digest).await?.map(|l| l.size()))
    }

    async fn read(&self, digest: &Digest, start: u64, end: u64) -> StoreResult<ByteStream> {
        let cached = self.inner.locations.get(digest).is_some();
        match self.read_at(digest, start, end, false).await {
            // The cache may name bytes garbage collection deleted on another node since.
            Err(err) if cached && err.kind() == StoreErrorKind::NotFound => {
                self.read_at(digest, start, end, true).await
            }
            done => done,
        }
    }

    async fn presigned_url(
        &self,
        digest: &Digest,
        expires_in: Duration,
    ) -> StoreResult<Option<String>> {
        let Some(location) = self.inner.locate(digest).await? else {
            return Ok(None);
        };
        let key = match &location {
            Location::Direct { .. } => self.inner.keys.blob(digest),
            Location::At { key, .. } => Path::from(key.as_str()),
        };
        let url = self
            .inner
            .s3
            .signed_url(object_store::signer::Method::GET, &key, expires_in)
            .await
            .map_err(failed(format!("signing a URL for blob {digest}")))?;
        Ok(Some(url.to_string()))
    }

    async fn upload_writer(
        &self,
        id: &str,
        state: &[u8],
        offset: u64,
    ) -> StoreResult<Box<dyn UploadWriter>> {
        check_id(id)?;
        let state = UploadState::decode(id, state)?;
        let held = state.len();
        if offset > held {
            return Err(StoreError::of_kind(
                StoreErrorKind::NotFound,
                format!("resuming upload `{id}` at byte {offset}"),
                eof("the upload", held, offset),
            ));
        }
        if offset < held {
            return Err(StoreError::new(
                format!("resuming upload `{id}` at byte {offset}"),
                format!("its recorded state holds {held} bytes"),
            ));
        }
        Ok(Box::new(S3UploadWriter::new(self.inner.clone(), id, state)))
    }

    async fn read_upload(&self, id: &str, state: &[u8], len: u64) -> StoreResult<ByteStream> {
        check_id(id)?;
        let state = UploadState::decode(id, state)?;
        if let Some(multipart) = &state.multipart {
            // Parts of an open multipart upload cannot be read: complete it (the commit that
            // follows finds it completed).
            let size = self.inner.complete(id, multipart, &state).await?;
            let key = self.inner.keys.data(id);
            let wanted = len.min(size);
            let mut stream: ByteStream = if wanted == 0 {
                Box::pin(futures_util::stream::empty())
            } else {
                self.inner
                    .stream(&key, 0..wanted, format!("reading upload `{id}`"))
                    .await?
            };
            if size < len {
                let what = format!("upload `{id}`");
                stream = Box::pin(stream.chain(futures_util::stream::once(async move {
                    Err(eof(&what, size, len))
                })));
            }
            return Ok(stream);
        }
        if state.is_empty() && len > 0 {
            return Err(StoreError::of_kind(
                StoreErrorKind::NotFound,
                format!("reading upload `{id}`"),
                "the upload holds no bytes",
            ));
        }
        let (chunks, room) = self.inner.read_staged_in_room(id, &state).await?;
        let stream = chunks_then_eof(chunks, state.len(), len, format!("upload `{id}`"));
        // The room comes back with the stream's bytes.
        Ok(Box::pin(stream.inspect(move |_| {
            let _ = &room;
        })))
    }

    async fn commit_upload(&self, id: &str, state: &[u8], digest: &Digest) -> StoreResult<()> {
        check_id(id)?;
        let state = UploadState::decode(id, state)?;
        let inner = &self.inner;
        let key = inner.keys.blob(digest);
        let context = format!("committing upload `{id}` as blob {digest}");
        // One staged piece (a `PATCH` then an empty `PUT`) is copied to the digest's key
        // without looking first. The key can only hold these same bytes: the piece is under a
        // part, and a blob recorded by location is at least one. So a stored blob is rewritten
        // with itself (a write where the look was a read), and a new one, the usual case for a
        // config or a small layer, is spared the look. Only if the piece is gone (this upload
        // committed before an interruption) does the commit look.
        if let ([only], None) = (
            state.staged_keys(&inner.keys, id).as_slice(),
            &state.multipart,
        ) && state.len() < MIN_PART
        {
            match inner.s3.copy(only, &key).await {
                Ok(()) => {
                    let size = state.len();
                    inner
                        .locations
                        .insert(digest.clone(), Location::Direct { size });
                    return inner.discard(id, &state, false).await;
                }
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(failed(context)(err)),
            }
        }
        if inner.locate_fresh(digest).await?.is_some() {
            // Stored already (by another upload, or by this one before an interruption).
            let ours = matches!(
                inner.locations.get(digest),
                Some(Location::At { key, .. }) if key == inner.keys.data(id).as_ref()
            );
            return inner.discard(id, &state, !ours).await;
        }
        let location = if let Some(multipart) = &state.multipart {
            let size = inner.complete(id, multipart, &state).await?;
            let data = inner.keys.data(id);
            let record = serde_json::to_vec(&LocationRecord {
                key: data.to_string(),
                size,
            })
            .expect("a location serializes");
            let mut attributes = Attributes::new();
            attributes.insert(Attribute::ContentType, AttributeValue::from(LOCATION_TYPE));
            let options = PutOptions {
                attributes,
                ..PutOptions::default()
            };
            inner
                .s3
                .put_opts(&key, record.into(), options)
                .await
                .map_err(failed(context))?;
            Location::At {
                key: data.to_string(),
                size,
            }
        } else {
            let staged = state.staged_keys(&inner.keys, id);
            match staged.as_slice() {
                [only] => {
                    inner.s3.copy(only, &key).await.map_err(failed(context))?;
                }
                _ => {
                    let (chunks, _room) = inner.read_staged_in_room(id, &state).await?;
                    let payload: PutPayload = chunks.into_iter().collect();
                    inner.s3.put(&key, payload).await.map_err(failed(context))?;
                }
            }
            Location::Direct { size: state.len() }
        };
        inner.locations.insert(digest.clone(), location);
        inner.discard(id, &state, false).await
    }

    async fn commit_held(&self, id: &str, held: HeldBytes, digest: &Digest) -> StoreResult<()> {
        check_id(id)?;
        let inner = &self.inner;
        // Written whether or not the blob is stored: a held upload is under a part, so the
        // digest's object can only be these same bytes (a blob recorded by location is at
        // least a part), and a write costs what asking first would.
        let size = held.bytes.len() as u64;
        let HeldBytes { bytes, room } = held;
        inner
            .s3
            .put(&inner.keys.blob(digest), bytes.into())
            .await
            .map_err(failed(format!("committing upload `{id}` as blob {digest}")))?;
        drop(room);
        inner
            .locations
            .insert(digest.clone(), Location::Direct { size });
        Ok(())
    }

    async fn abort_upload(&self, id: &str, state: &[u8]) -> StoreResult<()> {
        check_id(id)?;
        let state = UploadState::decode(id, state)?;
        self.inner.discard(id, &state, true).await
    }

    async fn upload_len(&self, id: &str, state: &[u8]) -> StoreResult<Option<u64>> {
        check_id(id)?;
        let state = UploadState::decode(id, state)?;
        if state.is_empty() {
            return Ok(None);
        }
        // Staged pieces go oldest first when purged: the first one tells whether all are.
        if let Some(first) = state.staged_keys(&self.inner.keys, id).first() {
            match self.inner.s3.head(first).await {
                Ok(_) => {}
                Err(err) if is_not_found(&err) => return Ok(None),
                Err(err) => return Err(failed(format!("measuring upload `{id}`"))(err)),
            }
        }
        Ok(Some(state.len()))
    }

    async fn purge_uploads(&self, modified_before: Millis) -> StoreResult<usize> {
        let uploads = self.inner.keys.uploads();
        let old: Vec<Path> = self
            .inner
            .s3
            .list(Some(&uploads))
            .try_filter_map(|meta| async move {
                Ok((meta.last_modified.timestamp_millis() < modified_before)
                    .then_some(meta.location))
            })
            .try_collect()
            .await
            .map_err(failed("listing staged upload pieces"))?;
        let pieces = self
            .inner
            .delete_all(old, "purging staged upload pieces")
            .await?;
        Ok(pieces + self.inner.abort_orphans(modified_before).await?)
    }

    async fn delete(&self, digest: &Digest) -> StoreResult<bool> {
        let inner = &self.inner;
        let Some(location) = inner.locate_fresh(digest).await? else {
            return Ok(false);
        };
        let doing = format!("deleting blob {digest}");
        // The bytes before the record that finds them: stopped in between, the record is
        // still there for the next pass to find and finish.
        if let Location::At { key, .. } = &location {
            inner
                .delete_all(vec![Path::from(key.as_str())], &doing)
                .await?;
        }
        inner
            .delete_all(vec![inner.keys.blob(digest)], &doing)
            .await?;
        inner.locations.remove(digest);
        Ok(true)
    }

    async fn list_blobs(
        &self,
        after: Option<&Digest>,
        limit: usize,
        modified_before: Millis,
    ) -> StoreResult<(Vec<Digest>, Option<Digest>)> {
        let inner = &self.inner;
        let prefix = inner.keys.blobs();
        let listing = match after {
            Some(after) => inner
                .s3
                .list_with_offset(Some(&prefix), &inner.keys.blob(after)),
            None => inner.s3.list(Some(&prefix)),
        };
        let page: Vec<object_store::ObjectMeta> = listing
            .take(limit)
            .try_collect()
            .await
            .map_err(failed("listing stored blobs"))?;
        let mut found = Vec::new();
        let mut last = None;
        for meta in &page {
            let Some(digest) = inner.keys.digest_of(&meta.location) else {
                continue;
            };
            if meta.last_modified.timestamp_millis() < modified_before {
                found.push(digest.clone());
            }
            last = Some(digest);
        }
        let more = page.len() == limit;
        Ok((found, if more { last } else { None }))
    }

    async fn probe(&self) -> StoreResult<()> {
        match self.inner.s3.head(&self.inner.keys.probe()).await {
            Ok(_) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(err) => Err(failed("probing the S3 bucket")(err)),
        }
    }
}
