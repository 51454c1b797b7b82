//! The error vocabulary of the registry: one enum whose variants are the distribution spec's
//! error codes. The HTTP layer maps each variant to a status in exactly one place.

use crate::digest::Digest;

/// What kind of failure a storage port reports, in the domain's words (never the backend's):
/// callers branch on it, and its text is for logs only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The thing named does not exist (a blob's bytes, an upload's file).
    NotFound,
    /// A write collided with another (a unique name, a concurrent change).
    Conflict,
    /// A lease (an upload's, a webhook delivery's) is no longer held under the caller's
    /// token: it expired and another request took it, or its subject was deleted. The caller
    /// must stop writing under it. Every port reports a lost lease this way.
    LeaseLost,
    /// The backend did not answer (busy, unreachable, out of connections); retrying later
    /// may succeed.
    Unavailable,
    /// The blob is being removed by garbage collection (its bytes may already be gone):
    /// nothing may link it until the removal ends. Retrying a little later succeeds.
    Collecting,
    /// Anything else.
    Other,
}

impl StoreErrorKind {
    /// The kind as a metric label: `not_found`, `conflict`, `lease_lost`, `unavailable`,
    /// `collecting`, `other`.
    pub fn label(self) -> &'static str {
        match self {
            StoreErrorKind::NotFound => "not_found",
            StoreErrorKind::Conflict => "conflict",
            StoreErrorKind::LeaseLost => "lease_lost",
            StoreErrorKind::Unavailable => "unavailable",
            StoreErrorKind::Collecting => "collecting",
            StoreErrorKind::Other => "other",
        }
    }
}

/// A failure of a storage port (metadata or blob store). Every one made is counted in
/// `berth_store_errors_total` by kind. Its text is logged, never shown to
/// clients: the HTTP layer answers an opaque 500.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct StoreError {
    /// What kind of failure.
    pub kind: StoreErrorKind,
    /// What the store was doing.
    pub context: String,
    /// The underlying error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl StoreError {
    /// Wraps `source` with a note of what was being done (kind [`StoreErrorKind::Other`]).
    pub fn new(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::of_kind(StoreErrorKind::Other, context, source)
    }

    /// Wraps `source` as a failure of `kind`.
    pub fn of_kind(
        kind: StoreErrorKind,
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        metrics::counter!("berth_store_errors_total", "kind" => kind.label()).increment(1);
        StoreError {
            kind,
            context: context.into(),
            source: source.into(),
        }
    }

    /// Wraps an I/O error: a missing file is [`StoreErrorKind::NotFound`].
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        let kind = match source.kind() {
            std::io::ErrorKind::NotFound => StoreErrorKind::NotFound,
            _ => StoreErrorKind::Other,
        };
        Self::of_kind(kind, context, source)
    }

    /// The lease on `what` (e.g. "upload `id`") is no longer held (see
    /// [`StoreErrorKind::LeaseLost`]).
    pub fn lease_lost(what: impl Into<String>) -> Self {
        let what = what.into();
        Self::of_kind(
            StoreErrorKind::LeaseLost,
            format!("writing {what}"),
            format!(
                "{what} is no longer leased to this request (the lease expired and another request took it, or it was deleted)"
            ),
        )
    }

    /// Blob `digest` is being removed by garbage collection (see
    /// [`StoreErrorKind::Collecting`]).
    pub fn collecting(digest: &Digest) -> Self {
        Self::of_kind(
            StoreErrorKind::Collecting,
            format!("linking blob {digest}"),
            format!("blob {digest} is being removed by garbage collection"),
        )
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

/// Everything a registry request can fail with, by the spec's error codes.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The blob is not in this repository (it may exist elsewhere in the store).
    #[error("blob {0} is not known to this repository")]
    BlobUnknown(Digest),
    /// The upload cannot continue as requested.
    #[error("{0}")]
    BlobUploadInvalid(String),
    /// No upload session with that id in this repository.
    #[error(
        "upload `{0}` is unknown: it was never started here, was cancelled, or has finished; start a new one with POST /v2/<name>/blobs/uploads/"
    )]
    BlobUploadUnknown(String),
    /// An upload whose received bytes were lost when a server stopped; it was discarded.
    #[error(
        "upload `{0}` lost the bytes it had received when the server stopped, and was discarded; start the upload again with POST /v2/<name>/blobs/uploads/"
    )]
    UploadLost(String),
    /// The content does not hash to the digest given, or the digest is malformed.
    #[error("{0}")]
    DigestInvalid(String),
    /// A manifest names a blob this repository does not hold.
    #[error(
        "manifest references blob {0}, which has not been pushed to this repository; push the blob first"
    )]
    ManifestBlobUnknown(Digest),
    /// A manifest is malformed or breaks a rule.
    #[error("{0}")]
    ManifestInvalid(String),
    /// No manifest under that tag or digest.
    #[error("manifest `{0}` is not known to this repository")]
    ManifestUnknown(String),
    /// The repository name breaks the grammar.
    #[error("{0}")]
    NameInvalid(String),
    /// No such repository.
    #[error("repository `{0}` is not known to this registry")]
    NameUnknown(String),
    /// A declared size does not match the content, or content is too large.
    #[error("{0}")]
    SizeInvalid(String),
    /// A manifest body is larger than the registry accepts (answered 413).
    #[error("manifest is {0} bytes; the limit is {1} bytes")]
    ManifestTooLarge(u64, u64),
    /// A tag breaks the grammar.
    #[error("{0}")]
    TagInvalid(String),
    /// A chunk does not start where the upload ends (answered 416 with the current range).
    #[error(
        "chunk starts at byte {start} but the upload holds {offset} bytes; resend from byte {offset}"
    )]
    RangeInvalid {
        /// Where the client said the chunk starts.
        start: u64,
        /// How many bytes the upload holds.
        offset: u64,
        /// The upload's id, for the `Location` header.
        upload_id: String,
    },
    /// A pagination parameter (`n`) is not a number.
    #[error("{0}")]
    PaginationInvalid(String),
    /// The operation is not supported.
    #[error("{0}")]
    Unsupported(String),
    /// No usable credentials: authenticate (answered 401 with a `WWW-Authenticate` challenge).
    #[error("{0}")]
    Unauthorized(String),
    /// The caller sees the repository but may not do this; the text names what is missing.
    #[error("{0}")]
    Denied(String),
    /// A registry token from `/token` does not cover this (RFC 6750 `insufficient_scope`):
    /// answered 403 DENIED with a challenge naming the scope to request. Holds what is not
    /// covered, e.g. "push on `acme/app`".
    #[error("the registry token does not cover {0}; request a token with that scope from /token")]
    InsufficientScope(String),
    /// Too many failed authentications from this client; retry after that many seconds.
    #[error("too many failed authentications from this address; retry in {0} seconds")]
    TooManyRequests(u64),
    /// The account has as many uploads open as it may; the text says what to do.
    #[error("{0}")]
    TooManyUploads(String),
    /// A storage port failed; details are logged, the client sees an opaque message.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RegistryError {
    /// The spec's error code string.
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::BlobUnknown(_) => "BLOB_UNKNOWN",
            RegistryError::BlobUploadInvalid(_) | RegistryError::RangeInvalid { .. } => {
                "BLOB_UPLOAD_INVALID"
            }
            RegistryError::BlobUploadUnknown(_) | RegistryError::UploadLost(_) => {
                "BLOB_UPLOAD_UNKNOWN"
            }
            RegistryError::DigestInvalid(_) => "DIGEST_INVALID",
            RegistryError::ManifestBlobUnknown(_) => "MANIFEST_BLOB_UNKNOWN",
            RegistryError::ManifestInvalid(_) => "MANIFEST_INVALID",
            RegistryError::ManifestUnknown(_) => "MANIFEST_UNKNOWN",
            RegistryError::NameInvalid(_) => "NAME_INVALID",
            RegistryError::NameUnknown(_) => "NAME_UNKNOWN",
            RegistryError::SizeInvalid(_) | RegistryError::ManifestTooLarge(..) => "SIZE_INVALID",
            RegistryError::TagInvalid(_) => "TAG_INVALID",
            RegistryError::PaginationInvalid(_) => "PAGINATION_NUMBER_INVALID",
            RegistryError::Unsupported(_) => "UNSUPPORTED",
            RegistryError::Unauthorized(_) => "UNAUTHORIZED",
            RegistryError::Denied(_) | RegistryError::InsufficientScope(_) => "DENIED",
            RegistryError::TooManyRequests(_) | RegistryError::TooManyUploads(_) => {
                "TOOMANYREQUESTS"
            }
            RegistryError::Store(_) => "UNKNOWN",
        }
    }
}

/// Shorthand for registry results.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
