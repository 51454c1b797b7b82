//! Looking into a blob store from an end-to-end test: what it holds, and the states a crash
//! leaves, made by hand.
//!
//! The end-to-end suites ask a [`BlobInspector`] by meaning — a blob's stored copies, an
//! upload's bytes — and never build a path themselves, so they run unchanged on any blob
//! backend that has an inspector. [`FsInspector`] is the filesystem backend's (`berth-blob`):
//! the only place outside that crate that knows its directory layout. [`S3Inspector`] is the
//! S3 backend's (`berth-blob-s3`), reading the bucket through `object_store` as that crate
//! lays it out.
//!
//! Panics (with what it was doing) instead of returning errors: it serves tests, where a
//! failed look is a failed test. A crash state that one backend cannot be put in from outside
//! (on S3 an upload's progress is recorded in the metadata with its session, which an
//! inspector does not write) panics saying so: the tests that need it are the filesystem
//! store's, and skip themselves on the other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use berth_core::Digest;
use futures_util::TryStreamExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{
    Attribute, AttributeValue, Attributes, ClientOptions, GetOptions, ObjectStore as _,
    ObjectStoreExt as _, PutOptions,
};

use crate::services::S3Service;

/// What an end-to-end test may ask of, or do to, the blob store behind a running server.
///
/// The mutating operations make the state a process killed at a given moment leaves, for
/// crash-recovery tests; the server is stopped while they run.
#[async_trait]
pub trait BlobInspector: Send + Sync {
    /// Every stored blob as `algorithm:hex`, one entry per stored copy (a content-addressed
    /// store holds each content once), in no particular order. Whatever else the blob area
    /// holds is listed too, as the backend names it, so a stray object fails a comparison.
    async fn stored_blobs(&self) -> Vec<String>;

    /// How many stored copies hold the blob `digest` (0 when it is not stored).
    async fn blob_copies(&self, digest: &Digest) -> usize;

    /// The stored bytes of blob `digest`, when it is stored.
    async fn blob_bytes(&self, digest: &Digest) -> Option<Vec<u8>>;

    /// The ids of the uploads whose bytes the store holds: sessions in progress, and whatever
    /// an ended or abandoned session left behind.
    async fn uploads_held(&self) -> Vec<String>;

    /// The bytes the store holds for upload `id`, when it holds any.
    async fn upload_bytes(&self, id: &str) -> Option<Vec<u8>>;

    /// Sets the bytes of upload `id`, creating it: what a request that wrote them and was then
    /// cut off leaves.
    async fn write_upload_bytes(&self, id: &str, bytes: &[u8]);

    /// Removes the bytes of upload `id` (they must exist): a session whose bytes are lost.
    async fn remove_upload_bytes(&self, id: &str);

    /// Moves upload `id`'s bytes to blob `digest` as committing the upload does, and nothing
    /// else: the state a final `PUT` killed after the move and before recording it leaves.
    async fn move_upload_to_blob(&self, id: &str, digest: &Digest);

    /// Flips the bits of the first byte of blob `digest`'s stored bytes (which must exist),
    /// in place, keeping their length: the bit rot `berth fsck` is for.
    async fn corrupt_blob(&self, digest: &Digest);

    /// Makes the blob area unusable under a running server, as a failed disk or a lost mount
    /// would; [`BlobInspector::mend_blob_area`] puts it back as it was.
    async fn break_blob_area(&self);

    /// Undoes [`BlobInspector::break_blob_area`].
    async fn mend_blob_area(&self);
}

/// The inspector of `berth-blob`'s filesystem store rooted at a data directory:
///
/// ```text
/// <root>/blobs/<algorithm>/<first two hex chars>/<hex>   committed blobs
/// <root>/uploads/<id>                                    uploads in progress
/// ```
#[derive(Debug, Clone)]
pub struct FsInspector {
    blobs: PathBuf,
    uploads: PathBuf,
}

impl FsInspector {
    /// The inspector of the store rooted at `root` (a server's data directory).
    pub fn new(root: &Path) -> Self {
        FsInspector {
            blobs: root.join("blobs"),
            uploads: root.join("uploads"),
        }
    }

    /// Where blob `digest` lives.
    fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.blobs
            .join(digest.algorithm().as_str())
            .join(&hex[..2])
            .join(hex)
    }

    /// Upload `id`'s length and the bytes its file takes on disk (its allocated blocks, room
    /// reserved past its end included), when it has a file.
    pub fn upload_on_disk(&self, id: &str) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(self.upload_path(id)).ok()?;
        Some((meta.len(), meta.blocks() * 512))
    }

    /// Where upload `id`'s bytes live; ids are plain names.
    fn upload_path(&self, id: &str) -> PathBuf {
        assert!(
            !id.is_empty() && !id.contains(['/', '\\', '.']),
            "not an upload id: {id:?}"
        );
        self.uploads.join(id)
    }
}

#[async_trait]
impl BlobInspector for FsInspector {
    async fn stored_blobs(&self) -> Vec<String> {
        files_under(&self.blobs)
            .iter()
            .map(|path| {
                let relative = path.strip_prefix(&self.blobs).expect("under the blobs");
                let mut parts = relative.iter().map(|p| p.to_string_lossy());
                let algorithm = parts.next().unwrap_or_default();
                let name = parts.next_back().unwrap_or_default();
                format!("{algorithm}:{name}")
            })
            .collect()
    }

    async fn blob_copies(&self, digest: &Digest) -> usize {
        files_under(&self.blobs)
            .iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains(digest.hex()))
            })
            .count()
    }

    async fn blob_bytes(&self, digest: &Digest) -> Option<Vec<u8>> {
        read_if_present(&self.blob_path(digest))
    }

    async fn uploads_held(&self) -> Vec<String> {
        files_under(&self.uploads)
            .iter()
            .map(|p| {
                p.strip_prefix(&self.uploads)
                    .expect("under the uploads")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }

    async fn upload_bytes(&self, id: &str) -> Option<Vec<u8>> {
        read_if_present(&self.upload_path(id))
    }

    async fn write_upload_bytes(&self, id: &str, bytes: &[u8]) {
        let path = self.upload_path(id);
        std::fs::write(&path, bytes)
            .unwrap_or_else(|e| panic!("writing upload {}: {e}", path.display()));
    }

    async fn remove_upload_bytes(&self, id: &str) {
        let path = self.upload_path(id);
        std::fs::remove_file(&path)
            .unwrap_or_else(|e| panic!("removing upload {}: {e}", path.display()));
    }

    async fn move_upload_to_blob(&self, id: &str, digest: &Digest) {
        let upload = self.upload_path(id);
        let blob = self.blob_path(digest);
        let shard = blob.parent().expect("a blob's shard directory");
        std::fs::create_dir_all(shard)
            .unwrap_or_else(|e| panic!("creating {}: {e}", shard.display()));
        std::fs::rename(&upload, &blob)
            .unwrap_or_else(|e| panic!("moving {} to {}: {e}", upload.display(), blob.display()));
    }

    async fn corrupt_blob(&self, digest: &Digest) {
        use std::io::{Read as _, Seek as _, Write as _};
        let path = self.blob_path(digest);
        let corrupt = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)?;
            let mut first = [0u8; 1];
            file.read_exact(&mut first)?;
            file.rewind()?;
            file.write_all(&[!first[0]])?;
            file.sync_all()
        };
        corrupt().unwrap_or_else(|e| panic!("corrupting {}: {e}", path.display()));
    }

    /// The blobs directory moved aside and a plain file put in its place (permissions would
    /// do, but tests often run as root, whom they do not stop).
    async fn break_blob_area(&self) {
        let aside = self.blobs.with_extension("broken");
        std::fs::rename(&self.blobs, &aside)
            .unwrap_or_else(|e| panic!("moving {} aside: {e}", self.blobs.display()));
        std::fs::write(&self.blobs, b"not a directory")
            .unwrap_or_else(|e| panic!("writing {}: {e}", self.blobs.display()));
    }

    async fn mend_blob_area(&self) {
        let aside = self.blobs.with_extension("broken");
        std::fs::remove_file(&self.blobs)
            .unwrap_or_else(|e| panic!("removing {}: {e}", self.blobs.display()));
        std::fs::rename(&aside, &self.blobs)
            .unwrap_or_else(|e| panic!("moving {} back: {e}", self.blobs.display()));
    }
}

/// The content type `berth-blob-s3` gives a blob object that records where the blob's bytes
/// are (its `LOCATION_TYPE`; the self-test below checks they agree).
pub const S3_LOCATION_TYPE: &str = "application/vnd.berth.blob-location.v1+json";

/// The inspector of `berth-blob-s3`'s store under a key prefix of a bucket:
///
/// ```text
/// <prefix>/blobs/<algorithm>/<hex>         a committed blob: its bytes, or (content type
///                                          S3_LOCATION_TYPE) {"key","size"} naming data/<id>
/// <prefix>/data/<id>                       the object upload <id>'s multipart upload wrote
/// <prefix>/uploads/<id>/<start:020>        a staged piece of upload <id> from byte <start>
/// ```
///
/// An upload's progress (its multipart upload, the parts' ETags, its staged pieces) is recorded
/// in the metadata with its session, not in the bucket. The inspector finds an upload by its
/// objects and by its multipart upload still open (S3's ListMultipartUploads), but reads its
/// bytes only while they are objects: staged pieces from byte 0, or a completed `data/<id>`
/// (S3 does not let the parts of an open multipart upload be read).
#[derive(Debug, Clone)]
pub struct S3Inspector {
    s3: AmazonS3,
    /// `<prefix>/`, or empty.
    prefix: String,
    /// For the one request `object_store` does not make (listing open multipart uploads).
    service: S3Service,
}

/// What the blob area of an S3 store holds, read in one pass.
struct S3Blobs {
    /// `algorithm:hex` (or the key, for an object not named so) → the object holding its
    /// bytes: the blob's own key, or the `data/<id>` key its location record names.
    blobs: BTreeMap<String, Key>,
    /// The `data/<id>` keys some location record names.
    referenced: BTreeSet<String>,
}

impl S3Inspector {
    /// The inspector of the store under `prefix` (no leading or trailing `/`; empty for the
    /// whole bucket) of the test Garage cluster's bucket.
    pub fn new(service: &S3Service, prefix: &str) -> Self {
        let client = ClientOptions::new().with_allow_http(service.endpoint.starts_with("http://"));
        let s3 = AmazonS3Builder::new()
            .with_bucket_name(&service.bucket)
            .with_region(&service.region)
            .with_access_key_id(&service.key_id)
            .with_secret_access_key(&service.secret)
            .with_endpoint(&service.endpoint)
            .with_virtual_hosted_style_request(false)
            .with_client_options(client)
            .build()
            .unwrap_or_else(|e| panic!("an S3 client for {}: {e}", service.endpoint));
        let prefix = prefix.trim_matches('/');
        S3Inspector {
            s3,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            service: service.clone(),
        }
    }

    /// The multipart uploads still open under `<prefix>/data/`: `(upload id, S3's id of its
    /// multipart upload)`, in key order. A signed ListMultipartUploads (path-style), since
    /// `object_store` has no call for it; each upload it names is then confirmed by a
    /// ListParts, for the reason [`S3Inspector::list`] gives.
    async fn open_multiparts(&self) -> Vec<(String, String)> {
        let under = format!("{}data/", self.prefix);
        let url = format!(
            "{}?prefix={}&uploads=",
            self.bucket_url(),
            berth_core::uri::escape_component(&under)
        );
        let (status, body) = self
            .signed_get(&url, "listing the open multipart uploads")
            .await;
        assert_eq!(status, 200, "listing the open multipart uploads: {body}");
        assert!(
            !body.contains("<IsTruncated>true</IsTruncated>"),
            "more open multipart uploads than one listing holds: {body}"
        );
        let element = |block: &str, name: &str| -> String {
            let open = format!("<{name}>");
            let start = block
                .find(&open)
                .unwrap_or_else(|| panic!("no <{name}> in {block}"))
                + open.len();
            let end = block[start..]
                .find(&format!("</{name}>"))
                .unwrap_or_else(|| panic!("no </{name}> in {block}"));
            block[start..start + end].to_owned()
        };
        let mut open = Vec::new();
        for block in body.split("<Upload>").skip(1) {
            let key = element(block, "Key");
            let upload = element(block, "UploadId");
            let parts = format!(
                "{}/{}?uploadId={}",
                self.bucket_url(),
                key.split('/')
                    .map(berth_core::uri::escape_component)
                    .collect::<Vec<_>>()
                    .join("/"),
                berth_core::uri::escape_component(&upload)
            );
            let (status, body) = self.signed_get(&parts, "listing an upload's parts").await;
            if status == 404 {
                continue;
            }
            assert_eq!(status, 200, "listing the parts of {key}: {body}");
            let id = key.strip_prefix(&under).unwrap_or(&key).to_owned();
            open.push((id, upload));
        }
        open.sort();
        open
    }

    /// `http://endpoint/bucket`, path-style.
    fn bucket_url(&self) -> String {
        format!(
            "{}/{}",
            self.service.endpoint.trim_end_matches('/'),
            self.service.bucket
        )
    }

    /// A GET of `url` signed with the service's key: its status and body.
    async fn signed_get(&self, url: &str, doing: &str) -> (u16, String) {
        use object_store::aws::{AwsAuthorizer, AwsCredential};
        use object_store::client::{
            HttpConnector as _, HttpRequest, HttpRequestBody, ReqwestConnector,
        };
        let mut request = HttpRequest::new(HttpRequestBody::empty());
        *request.uri_mut() = url.parse().expect("a URL");
        let credential = AwsCredential {
            key_id: self.service.key_id.clone(),
            secret_key: self.service.secret.clone(),
            token: None,
        };
        AwsAuthorizer::new(&credential, "s3", &self.service.region)
            .try_authorize(&mut request, None)
            .unwrap_or_else(|e| panic!("signing the request {doing}: {e}"));
        let client = ReqwestConnector::default()
            .connect(&ClientOptions::new().with_allow_http(true))
            .expect("an HTTP client");
        let response = client
            .execute(request)
            .await
            .unwrap_or_else(|e| panic!("{doing}: {e}"));
        let status = response.status();
        let body = response
            .into_body()
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{doing}: {e}"));
        (status.as_u16(), String::from_utf8_lossy(&body).into_owned())
    }

    fn key(&self, rest: &str) -> Key {
        Key::from(format!("{}{rest}", self.prefix))
    }

    fn blob_key(&self, digest: &Digest) -> Key {
        self.key(&format!(
            "blobs/{}/{}",
            digest.algorithm().as_str(),
            digest.hex()
        ))
    }

    fn data_key(&self, id: &str) -> Key {
        self.key(&format!("data/{}", checked_id(id)))
    }

    /// `key` with the prefix taken off.
    fn relative<'k>(&self, key: &'k str) -> &'k str {
        key.strip_prefix(&self.prefix).unwrap_or(key)
    }

    /// Every object under `<prefix>/<under>`, in key order.
    ///
    /// A listing alone may still name an object deleted a moment ago: Garage answers it from
    /// two of its three replicas, each dropping the deletions it holds before the two answers
    /// are merged, so a replica the deletion has not reached yet shows the object as live. A
    /// read of one key merges the replicas' records first, so each listed object is confirmed
    /// by a HEAD and kept only when it is found.
    async fn list(&self, under: &str) -> Vec<object_store::ObjectMeta> {
        let mut found = Vec::new();
        for object in self.listed(under).await {
            match self.s3.head(&object.location).await {
                Ok(_) => found.push(object),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => panic!("reading {}: {e}", object.location),
            }
        }
        found
    }

    /// What a listing of `<prefix>/<under>` names, in key order, unconfirmed (see
    /// [`S3Inspector::list`]): for a caller that reads each object anyway.
    async fn listed(&self, under: &str) -> Vec<object_store::ObjectMeta> {
        let prefix = self.key(under);
        let mut listed: Vec<_> = self
            .s3
            .list(Some(&prefix))
            .try_collect()
            .await
            .unwrap_or_else(|e| panic!("listing {prefix}: {e}"));
        listed.sort_by(|a, b| a.location.cmp(&b.location));
        listed
    }

    /// The object at `key`: its bytes and whether it is a location record; `None` when absent.
    async fn get(&self, key: &Key) -> Option<(Vec<u8>, bool)> {
        let found = match self.s3.get(key).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => return None,
            Err(e) => panic!("reading {key}: {e}"),
        };
        let is_location = matches!(
            found.attributes.get(&Attribute::ContentType),
            Some(value) if value.as_ref() == S3_LOCATION_TYPE
        );
        let bytes = found
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("reading {key}: {e}"));
        Some((bytes.to_vec(), is_location))
    }

    /// Where a location record says the bytes are.
    fn location(key: &Key, record: &[u8]) -> Key {
        let record: serde_json::Value = serde_json::from_slice(record)
            .unwrap_or_else(|e| panic!("the location record {key}: {e}"));
        let at = record["key"]
            .as_str()
            .unwrap_or_else(|| panic!("the location record {key} names no key: {record}"));
        Key::from(at)
    }

    /// The committed blobs and what their location records name.
    async fn blob_area(&self) -> S3Blobs {
        let mut area = S3Blobs {
            blobs: BTreeMap::new(),
            referenced: BTreeSet::new(),
        };
        // Each object is read below, and one found gone is skipped there.
        for object in self.listed("blobs").await {
            let key = object.location;
            let name = match self.relative(key.as_ref()).split('/').collect::<Vec<_>>()[..] {
                ["blobs", algorithm, hex] => format!("{algorithm}:{hex}"),
                _ => key.to_string(),
            };
            // A HEAD says which it is; only a location record is read.
            let head = GetOptions {
                head: true,
                ..GetOptions::default()
            };
            let is_location = match self.s3.get_opts(&key, head).await {
                Ok(found) => matches!(
                    found.attributes.get(&Attribute::ContentType),
                    Some(value) if value.as_ref() == S3_LOCATION_TYPE
                ),
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => panic!("looking up {key}: {e}"),
            };
            let holder = if is_location {
                let Some((bytes, _)) = self.get(&key).await else {
                    continue;
                };
                let at = Self::location(&key, &bytes);
                area.referenced.insert(at.to_string());
                at
            } else {
                key
            };
            area.blobs.insert(name, holder);
        }
        area
    }

    /// Upload `id`'s staged pieces, in order: `(start, key)`.
    async fn staged(&self, id: &str) -> Vec<(u64, Key)> {
        let under = format!("uploads/{}/", checked_id(id));
        self.list(&under)
            .await
            .into_iter()
            .map(|object| {
                let start = object
                    .location
                    .filename()
                    .and_then(|name| name.parse().ok())
                    .unwrap_or_else(|| panic!("a staged piece named {}", object.location));
                (start, object.location)
            })
            .collect()
    }

    /// Upload `id`'s completed `data/<id>` object when no blob's location names it.
    async fn unclaimed_data(&self, id: &str) -> Option<Vec<u8>> {
        let key = self.data_key(id);
        let (bytes, _) = self.get(&key).await?;
        let area = self.blob_area().await;
        (!area.referenced.contains(key.as_ref())).then_some(bytes)
    }

    /// The bytes of upload `id`'s staged pieces, which must begin at byte 0 and follow each
    /// other; `None` when there are none.
    async fn staged_bytes(&self, id: &str) -> Option<Vec<u8>> {
        let pieces = self.staged(id).await;
        if pieces.is_empty() {
            return None;
        }
        let mut bytes = Vec::new();
        for (start, key) in pieces {
            assert_eq!(
                start,
                bytes.len() as u64,
                "upload {id}: the staged piece {key} does not begin where the bytes before it end \
                 (its first bytes are parts of a multipart upload still open, which S3 does not \
                 let be read, or a request left a piece its session does not name)"
            );
            let (piece, _) = self
                .get(&key)
                .await
                .unwrap_or_else(|| panic!("the staged piece {key} vanished"));
            bytes.extend_from_slice(&piece);
        }
        Some(bytes)
    }

    async fn delete(&self, key: &Key) {
        match self.s3.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => panic!("deleting {key}: {e}"),
        }
    }

    async fn put(&self, key: &Key, bytes: Vec<u8>, content_type: Option<&'static str>) {
        let mut attributes = Attributes::new();
        if let Some(content_type) = content_type {
            attributes.insert(Attribute::ContentType, AttributeValue::from(content_type));
        }
        let options = PutOptions {
            attributes,
            ..PutOptions::default()
        };
        self.s3
            .put_opts(key, bytes.into(), options)
            .await
            .unwrap_or_else(|e| panic!("writing {key}: {e}"));
    }
}

/// Upload ids are plain names (they become one key segment).
fn checked_id(id: &str) -> &str {
    assert!(
        !id.is_empty() && !id.contains(['/', '\\', '.']),
        "not an upload id: {id:?}"
    );
    id
}

/// The panic of a state an inspector cannot make on S3.
fn filesystem_state(what: &str) -> ! {
    panic!(
        "{what} is a state of the filesystem blob store that an S3 store cannot be put in from \
         outside (an S3 upload's progress is recorded in the metadata with its session); the \
         test needing it is the filesystem store's and must skip itself on S3 (fs_only!)"
    )
}

#[async_trait]
impl BlobInspector for S3Inspector {
    async fn stored_blobs(&self) -> Vec<String> {
        self.blob_area().await.blobs.into_keys().collect()
    }

    async fn blob_copies(&self, digest: &Digest) -> usize {
        self.blob_area()
            .await
            .blobs
            .keys()
            .filter(|name| name.contains(digest.hex()))
            .count()
    }

    async fn blob_bytes(&self, digest: &Digest) -> Option<Vec<u8>> {
        let key = self.blob_key(digest);
        let (bytes, is_location) = self.get(&key).await?;
        if !is_location {
            return Some(bytes);
        }
        let at = Self::location(&key, &bytes);
        let (bytes, _) = self.get(&at).await.unwrap_or_else(|| {
            panic!("blob {digest}: its location record names {at}, which is gone")
        });
        Some(bytes)
    }

    /// Uploads with staged pieces, a multipart upload still open, or a completed `data/<id>`
    /// no blob names.
    async fn uploads_held(&self) -> Vec<String> {
        let mut ids = BTreeSet::new();
        for object in self.list("uploads").await {
            let relative = self.relative(object.location.as_ref());
            if let Some(id) = relative.split('/').nth(1) {
                ids.insert(id.to_owned());
            }
        }
        let area = self.blob_area().await;
        for object in self.list("data").await {
            if !area.referenced.contains(object.location.as_ref())
                && let Some(id) = object.location.filename()
            {
                ids.insert(id.to_owned());
            }
        }
        ids.extend(self.open_multiparts().await.into_iter().map(|(id, _)| id));
        ids.into_iter().collect()
    }

    /// Panics when the upload's first bytes are parts of a multipart upload still open: S3
    /// does not let them be read.
    async fn upload_bytes(&self, id: &str) -> Option<Vec<u8>> {
        // Completed, its staged pieces were its last part.
        if let Some(bytes) = self.unclaimed_data(id).await {
            return Some(bytes);
        }
        let open = self.open_multiparts().await;
        assert!(
            !open.iter().any(|(open, _)| open == id),
            "upload {id}'s first bytes are parts of a multipart upload still open, which S3 \
             does not let be read: the test needs an upload smaller than a part (5 MiB)"
        );
        self.staged_bytes(id).await
    }

    /// One staged piece at byte 0, replacing the upload's pieces: what a request whose process
    /// died before recording its progress leaves (bytes no session names, purged by age). A
    /// session's recorded state does not name it: on S3 this is no state of a session.
    async fn write_upload_bytes(&self, id: &str, bytes: &[u8]) {
        for (_, key) in self.staged(id).await {
            self.delete(&key).await;
        }
        let key = self.key(&format!("uploads/{}/{:020}", checked_id(id), 0));
        self.put(&key, bytes.to_vec(), None).await;
    }

    /// Deletes the upload's staged pieces and its completed `data/<id>`, and aborts its
    /// multipart upload still open.
    async fn remove_upload_bytes(&self, id: &str) {
        use object_store::multipart::MultipartStore as _;
        let staged = self.staged(id).await;
        let data = self.unclaimed_data(id).await;
        let open: Vec<String> = self
            .open_multiparts()
            .await
            .into_iter()
            .filter(|(open, _)| open == id)
            .map(|(_, multipart)| multipart)
            .collect();
        assert!(
            !staged.is_empty() || data.is_some() || !open.is_empty(),
            "upload {id} has no bytes in the bucket to remove"
        );
        for (_, key) in staged {
            self.delete(&key).await;
        }
        let key = self.data_key(id);
        if data.is_some() {
            self.delete(&key).await;
        }
        for multipart in open {
            self.s3
                .abort_multipart(&key, &multipart)
                .await
                .unwrap_or_else(|e| panic!("aborting the multipart upload of {key}: {e}"));
        }
    }

    /// As `commit_upload` does: a completed `data/<id>` gets a location record under the
    /// blob's key; staged pieces (from byte 0) become the blob's own object. The pieces go.
    async fn move_upload_to_blob(&self, id: &str, digest: &Digest) {
        let blob = self.blob_key(digest);
        if let Some(data) = self.unclaimed_data(id).await {
            let record = serde_json::json!({
                "key": self.data_key(id).to_string(),
                "size": data.len(),
            });
            let record = serde_json::to_vec(&record).expect("a location record");
            self.put(&blob, record, Some(S3_LOCATION_TYPE)).await;
        } else {
            let bytes = self
                .staged_bytes(id)
                .await
                .unwrap_or_else(|| panic!("upload {id} has no bytes in the bucket to move"));
            self.put(&blob, bytes, None).await;
        }
        for (_, key) in self.staged(id).await {
            self.delete(&key).await;
        }
    }

    /// Rewrites the object holding the blob's bytes (its own, or the `data/<id>` its location
    /// names) with the first byte's bits flipped.
    async fn corrupt_blob(&self, digest: &Digest) {
        let key = self.blob_key(digest);
        let (bytes, is_location) = self
            .get(&key)
            .await
            .unwrap_or_else(|| panic!("blob {digest} is not stored"));
        let (holder, mut bytes) = if is_location {
            let at = Self::location(&key, &bytes);
            let (bytes, _) = self
                .get(&at)
                .await
                .unwrap_or_else(|| panic!("blob {digest}: {at} is gone"));
            (at, bytes)
        } else {
            (key, bytes)
        };
        assert!(!bytes.is_empty(), "blob {digest} has no byte to flip");
        bytes[0] = !bytes[0];
        self.put(&holder, bytes, None).await;
    }

    /// The bucket is every test's: no one test's store can be broken in it.
    async fn break_blob_area(&self) {
        filesystem_state("a blob area made unusable under a running server")
    }

    async fn mend_blob_area(&self) {
        filesystem_state("a blob area made unusable under a running server")
    }
}

/// The bytes of the file at `path`, `None` when there is none.
fn read_if_present(path: &Path) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("reading {}: {e}", path.display()),
    }
}

/// Every regular file under `dir`, recursively (none when `dir` does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.map_while(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    //! The inspector against the real filesystem store: if `berth-blob` changes its layout,
    //! these fail before an end-to-end test misreads it.

    use berth_blob::FsBlobStore;
    use berth_core::ports::BlobStore;
    use bytes::Bytes;

    use super::*;

    async fn upload(store: &FsBlobStore, id: &str, bytes: &[u8]) {
        let mut writer = store.upload_writer(id, &[], 0).await.expect("writer");
        writer
            .write(Bytes::copy_from_slice(bytes))
            .await
            .expect("write");
        writer.finish().await.expect("finish");
    }

    #[tokio::test]
    async fn sees_what_the_filesystem_store_holds() {
        let root = tempfile::tempdir().expect("temp dir");
        let store = FsBlobStore::open(root.path()).expect("open");
        let inspector = FsInspector::new(root.path());
        assert!(inspector.stored_blobs().await.is_empty());
        assert!(inspector.uploads_held().await.is_empty());

        upload(&store, "up-1", b"hello").await;
        assert_eq!(inspector.uploads_held().await, ["up-1"]);
        assert_eq!(
            inspector.upload_bytes("up-1").await.as_deref(),
            Some(&b"hello"[..])
        );

        let digest = Digest::sha256(b"hello");
        store
            .commit_upload("up-1", &[], &digest)
            .await
            .expect("commit");
        assert!(inspector.uploads_held().await.is_empty());
        assert_eq!(inspector.upload_bytes("up-1").await, None);
        assert_eq!(inspector.stored_blobs().await, [digest.as_str().to_owned()]);
        assert_eq!(inspector.blob_copies(&digest).await, 1);
        assert_eq!(
            inspector.blob_bytes(&digest).await.as_deref(),
            Some(&b"hello"[..])
        );
    }

    #[tokio::test]
    async fn makes_states_the_filesystem_store_reads() {
        let root = tempfile::tempdir().expect("temp dir");
        let store = FsBlobStore::open(root.path()).expect("open");
        let inspector = FsInspector::new(root.path());

        inspector.write_upload_bytes("up-2", b"abc").await;
        assert_eq!(store.upload_len("up-2", &[]).await.expect("len"), Some(3));
        inspector.remove_upload_bytes("up-2").await;
        assert_eq!(store.upload_len("up-2", &[]).await.expect("len"), None);

        inspector.write_upload_bytes("up-3", b"moved").await;
        let digest = Digest::sha256(b"moved");
        inspector.move_upload_to_blob("up-3", &digest).await;
        assert_eq!(store.stat(&digest).await.expect("stat"), Some(5));
        assert_eq!(store.upload_len("up-3", &[]).await.expect("len"), None);
    }
}

#[cfg(test)]
mod s3_tests {
    //! The S3 inspector against the real S3 store on the test Garage cluster (each test under
    //! a prefix of its own): if `berth-blob-s3` changes its layout, these fail before an
    //! end-to-end test misreads it.

    use berth_blob_s3::{S3BlobStore, S3Settings};
    use berth_core::ports::{BlobStore, UploadProgress};
    use bytes::Bytes;

    use super::*;
    use crate::services::s3_service;

    /// A store and its inspector under a fresh prefix.
    async fn open() -> (S3BlobStore, S3Inspector, S3Settings) {
        let service = s3_service();
        let prefix = format!("inspect-{}", uuid::Uuid::new_v4().simple());
        let settings = S3Settings {
            bucket: service.bucket.clone(),
            prefix: prefix.clone(),
            endpoint: Some(service.endpoint.clone()),
            region: service.region.clone(),
            access_key_id: service.key_id.clone(),
            secret_access_key: service.secret.clone(),
            upload_memory: berth_blob_s3::DEFAULT_UPLOAD_MEMORY,
        };
        let store = S3BlobStore::open(&settings).await.expect("open");
        (store, S3Inspector::new(&service, &prefix), settings)
    }

    /// Writes `bytes` to a new upload `id` in one request; its progress.
    async fn upload(store: &S3BlobStore, id: &str, bytes: &[u8]) -> UploadProgress {
        let mut writer = store.upload_writer(id, &[], 0).await.expect("writer");
        writer
            .write(Bytes::copy_from_slice(bytes))
            .await
            .expect("write");
        writer.finish().await.expect("finish")
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn the_location_type_is_the_stores() {
        assert_eq!(S3_LOCATION_TYPE, berth_blob_s3::LOCATION_TYPE);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sees_what_the_s3_store_holds() {
        let (store, inspector, _) = open().await;
        assert!(inspector.stored_blobs().await.is_empty());
        assert!(inspector.uploads_held().await.is_empty());

        // Small: staged, then copied to its own object.
        let small = upload(&store, "up-1", b"hello").await;
        assert_eq!(inspector.uploads_held().await, ["up-1"]);
        assert_eq!(
            inspector.upload_bytes("up-1").await.as_deref(),
            Some(&b"hello"[..])
        );
        let digest = Digest::sha256(b"hello");
        store
            .commit_upload("up-1", &small.state, &digest)
            .await
            .expect("commit");
        assert!(inspector.uploads_held().await.is_empty());
        assert_eq!(inspector.upload_bytes("up-1").await, None);
        assert_eq!(inspector.stored_blobs().await, [digest.as_str().to_owned()]);
        assert_eq!(inspector.blob_copies(&digest).await, 1);
        assert_eq!(
            inspector.blob_bytes(&digest).await.as_deref(),
            Some(&b"hello"[..])
        );

        // Large: a multipart upload, seen while open, read where it was written.
        let data = pattern(9 << 20);
        let large = upload(&store, "up-2", &data).await;
        assert_eq!(inspector.uploads_held().await, ["up-2"]);
        let probe = inspector.clone();
        let unreadable = tokio::spawn(async move { probe.upload_bytes("up-2").await });
        assert!(
            unreadable.await.is_err(),
            "an open multipart upload's parts are not read"
        );
        let big = Digest::sha256(&data);
        store
            .commit_upload("up-2", &large.state, &big)
            .await
            .expect("commit");
        assert!(inspector.uploads_held().await.is_empty());
        let mut stored = inspector.stored_blobs().await;
        stored.sort();
        let mut expected = vec![digest.as_str().to_owned(), big.as_str().to_owned()];
        expected.sort();
        assert_eq!(stored, expected);
        assert_eq!(inspector.blob_copies(&big).await, 1);
        assert!(inspector.blob_bytes(&big).await == Some(data));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn makes_states_the_s3_store_reads() {
        let (store, inspector, settings) = open().await;

        // Bytes lost under a session, in a part or staged.
        let data = pattern(6 << 20);
        let progress = upload(&store, "up-6", &data).await;
        assert_eq!(inspector.uploads_held().await, ["up-6"]);
        inspector.remove_upload_bytes("up-6").await;
        assert!(inspector.uploads_held().await.is_empty());
        assert!(
            store
                .commit_upload("up-6", &progress.state, &Digest::sha256(&data))
                .await
                .is_err(),
            "its multipart upload is gone"
        );
        let progress = upload(&store, "up-3", b"abc").await;
        assert_eq!(
            store
                .upload_len("up-3", &progress.state)
                .await
                .expect("len"),
            Some(3)
        );
        inspector.remove_upload_bytes("up-3").await;
        assert_eq!(
            store
                .upload_len("up-3", &progress.state)
                .await
                .expect("len"),
            None
        );

        // Bytes no session names, as a cut-off request leaves them: purged by age.
        inspector.write_upload_bytes("orphan", b"half").await;
        assert_eq!(inspector.uploads_held().await, ["orphan"]);
        assert_eq!(
            inspector.upload_bytes("orphan").await.as_deref(),
            Some(&b"half"[..])
        );
        let later = i64::MAX;
        assert_eq!(store.purge_uploads(later).await.expect("purge"), 1);
        assert!(inspector.uploads_held().await.is_empty());

        // Moved to its blob and not recorded: another node (no cache) finds the blob.
        let progress = upload(&store, "up-4", b"moved").await;
        let digest = Digest::sha256(b"moved");
        inspector.move_upload_to_blob("up-4", &digest).await;
        let other = S3BlobStore::open(&settings).await.expect("open");
        assert_eq!(other.stat(&digest).await.expect("stat"), Some(5));
        assert_eq!(
            other
                .upload_len("up-4", &progress.state)
                .await
                .expect("len"),
            None
        );

        // Rot, in a small blob's own object and in a large blob's upload object.
        let data = pattern(9 << 20);
        let large = upload(&store, "up-5", &data).await;
        let big = Digest::sha256(&data);
        store
            .commit_upload("up-5", &large.state, &big)
            .await
            .expect("commit");
        for (digest, len) in [(&digest, 5u64), (&big, data.len() as u64)] {
            let before = inspector.blob_bytes(digest).await.expect("stored");
            inspector.corrupt_blob(digest).await;
            let mut read = Vec::new();
            let mut stream = other.read(digest, 0, len).await.expect("read");
            while let Some(chunk) = stream.try_next().await.expect("chunk") {
                read.extend_from_slice(&chunk);
            }
            assert_eq!(read.len(), before.len(), "the length is kept");
            assert_eq!(read[0], !before[0], "the first byte is flipped");
            assert!(read[1..] == before[1..], "the rest is kept");
        }
    }

    #[tokio::test]
    #[should_panic(expected = "filesystem blob store")]
    async fn a_broken_blob_area_is_the_filesystem_stores() {
        let (_, inspector, _) = open().await;
        inspector.break_blob_area().await;
    }
}
