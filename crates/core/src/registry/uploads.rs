//! Blob uploads: sessions, streamed and chunked appends, monolithic pushes, mounts.
//!
//! Bytes stream through `ingest`: each frame of a request body is hashed (SHA-256) as it
//! arrives and gathered, uncopied, into a batch of about [`BATCH`] bytes, and each batch goes
//! to the blob store's writer in one hand-off. Nothing holds a whole blob in memory, and what
//! every upload holds at once is bounded ([`IN_FLIGHT`]). A session's offset and hash state are persisted only after its
//! bytes are durable, and only by the request holding the session's lease, so a resumed
//! upload — after a restart, or on another node — hashes exactly the bytes the store holds.

use std::fmt::Display;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::Digest as _;

use crate::digest::{Algorithm, Digest};
use crate::error::{RegistryError, Result, StoreErrorKind};
use crate::hashing::UploadHasher;
use crate::name::RepoName;
use crate::ports::{
    CountedLease, Lease, Linked, OwnerUploads, Started, UploadProgress, UploadSession, UploadWriter,
};

use super::allowance::{Allowance, Chunk, Over};
use super::quota::{Need, Room};
use super::{Registry, now_millis};

/// The most bytes one frame of a request body holds: the HTTP front stops its connections'
/// read buffers at this size (hyper's `max_buf_size`, `http/src/connections.rs`), and a frame
/// is a slice of one. A held frame keeps its whole read buffer alive, so this size is also what
/// a held frame may cost beyond its own bytes. 64 KiB buffers made pushes cost +6–8 % server CPU
/// per GiB against hyper's default ~400 KiB (four to six times the reads and frames), and
/// 256 KiB ones broke 40 MiB with 16 clients pushing while batches were written on a thread of
/// their own (parts 5 and 6). Since each batch is written in the request's task (part 10), its
/// frames are held only while it gathers. 512 KiB frames took ~4 % less server CPU per GiB
/// pushed than 256 KiB ones with 4 clients, but broke 40 MiB with 16 (part 12), so the front
/// reads this much at once only while few uploads stream, and less when many do (part 13).
/// Measured in BENCHMARKS.md, "Lean and steady", parts 12 and 13.
pub const BODY_FRAME_MAX: usize = 512 << 10;
/// The bytes of frames gathered into one hand-off to the blob store's writer.
///
/// Frames (at most [`BODY_FRAME_MAX`]) are little work for one call each (the filesystem store's
/// `writev`, the object store's part buffering); a batch of them is written with one. The frames
/// are held, not copied: a held frame keeps its read buffer alive, which [`BODY_FRAME_MAX`] bounds,
/// and [`MAX_FRAMES`] bounds how many a batch keeps. Copying frames into buffers of this size cost
/// 7–10 % more server CPU per GiB pushed, and hashing them on a blocking thread of their own a
/// wake-up per batch and a thread per request; each frame is hashed in the request's task as it
/// arrives instead (SHA-256 with the CPU's SHA extensions took 30–50 µs per 64 KiB measured, so
/// 240–400 µs for a full frame). 1 MiB batches took no less CPU than 512 KiB ones with 512 KiB
/// frames, and with 16 clients pushing held 3 MiB more. Measured in BENCHMARKS.md, "Lean and
/// steady", parts 5, 12 and 13.
const BATCH: usize = 512 << 10;
/// Bytes of request bodies that may be between the network and the disk at once, across
/// every upload: received, not yet written. A batch waits for room before it gathers, which
/// pushes back on the sender through TCP, so memory stays flat however many clients push at
/// once (16 uploads' writer queues, when they were unbounded, held ~64 MiB).
pub(crate) const IN_FLIGHT: usize = 8 << 20;
/// How long the frames of a part-full batch may wait for more before they are handed on
/// anyway: a client that sends a little and then slows down or stalls holds no room in
/// [`IN_FLIGHT`] for longer than this, so a few such clients cannot stall everyone's uploads.
const BATCH_MAX_AGE: Duration = Duration::from_millis(50);
const _: () = assert!(
    BATCH <= IN_FLIGHT,
    "a batch must fit the in-flight budget, or waiting for its room never ends"
);
/// How long an upload's lease lasts without renewal.
const LEASE: Duration = Duration::from_secs(30);
/// How often a long request renews its lease.
const RENEW_EVERY: Duration = Duration::from_secs(10);

/// Outcome of a cross-repository mount request.
#[derive(Debug)]
pub enum MountOutcome {
    /// The blob is now in the repository.
    Mounted,
    /// The source did not hold it: a fresh upload session was started instead.
    Session(UploadSession),
}

/// Limits on what the open upload sessions of one account (the repositories `owner/…`) may
/// hold, so abandoned uploads cannot fill the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Open sessions at once.
    pub sessions: u64,
    /// Bytes held by open sessions.
    pub bytes: u64,
}

impl Default for UploadLimits {
    fn default() -> Self {
        UploadLimits {
            sessions: 1000,
            bytes: 64 << 30,
        }
    }
}

/// What [`Registry::ingest_range`] took in: the hash and the upload's new length, and
/// whether the account had a storage quota when it began.
struct Ingested {
    hasher: UploadHasher,
    written: UploadProgress,
    under_quota: bool,
}

/// A held lease on an upload: released on every path that does not record progress.
struct Held {
    session: UploadSession,
    token: String,
}

impl Registry {
    /// Starts an upload session in `repo`, unless its account has as many open as it may,
    /// or has no room left in its storage quota (counting its open uploads' bytes).
    pub async fn start_upload(&self, repo: &RepoName) -> Result<UploadSession> {
        let session = UploadSession {
            id: uuid::Uuid::new_v4().simple().to_string(),
            repo: repo.clone(),
            offset: 0,
            hash_state: UploadHasher::new().to_state(),
            blob_state: Vec::new(),
            started_at: now_millis(),
            verified: None,
        };
        let max_open = self.upload_limits.sessions;
        match self.meta.create_upload_within(&session, max_open).await? {
            Started::Created => Ok(session),
            Started::Refused(uploads) => Err(refuse_start(repo.owner(), uploads, max_open)),
        }
    }

    /// Links blob `digest` into `repo` from `from` when `from` holds it (within the account's
    /// storage quota, unless the account holds the blob already); otherwise starts a normal
    /// upload session (as the spec asks).
    pub async fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
    ) -> Result<MountOutcome> {
        if let Some(from) = from
            && let Some(size) = self.meta.linked_blob_size(from, digest).await?
        {
            let owner = repo.owner();
            self.check_link(owner, digest, size, "blob_mount").await?;
            match self.meta.link_blob(repo, digest, size).await {
                Ok(linked) => {
                    self.linked(owner, linked, "blob_mount")?;
                    return Ok(MountOutcome::Mounted);
                }
                // Garbage collection is deleting it: the client uploads it instead.
                Err(err) if err.kind() == StoreErrorKind::Collecting => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(MountOutcome::Session(self.start_upload(repo).await?))
    }

    /// The upload `id` of `repo`, for a status request.
    pub async fn upload_status(&self, repo: &RepoName, id: &str) -> Result<UploadSession> {
        self.meta
            .get_upload(repo, id)
            .await?
            .ok_or_else(|| RegistryError::BlobUploadUnknown(id.to_owned()))
    }

    /// Appends a request body to upload `id`. `range` comes from `Content-Range`
    /// (`start-end`): the chunk must start where the upload ends and carry exactly
    /// `end - start + 1` bytes. `length` is the body's `Content-Length`, if sent: a chunk whose
    /// announced length does not fit the account's storage quota is refused before its body
    /// is read. Returns the new offset.
    pub async fn append_upload<S, E>(
        &self,
        repo: &RepoName,
        id: &str,
        range: Option<(u64, u64)>,
        length: Option<u64>,
        body: S,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: Display,
    {
        let (held, uploads) = self.lease_bringing_bytes(repo, id).await?;
        let chunk = Chunk {
            range,
            length,
            digest: None,
            request: "upload_patch",
        };
        let outcome = self.ingest_range(&held, uploads, id, chunk, body).await;
        match outcome {
            Ok(Ingested {
                hasher, written, ..
            }) => {
                self.meta
                    .advance_upload(
                        id,
                        &held.token,
                        written.len,
                        &hasher.to_state(),
                        &written.state,
                    )
                    .await?;
                Ok(written.len)
            }
            Err(err) => {
                self.meta.release_upload(id, &held.token).await?;
                Err(err)
            }
        }
    }

    /// Appends the final body (possibly empty) to upload `id`, checks the whole upload hashes
    /// to `digest`, and makes the blob part of `repo`. On a mismatch the upload is discarded.
    /// `range` (from `Content-Range`) is checked as for [`Registry::append_upload`]: a last
    /// chunk that does not start where the upload ends, or carries another length, changes
    /// nothing and keeps the session. A blob the account does not hold yet must fit its
    /// storage quota: a refused one is discarded with its session.
    pub async fn finish_upload<S, E>(
        &self,
        repo: &RepoName,
        id: &str,
        digest: &Digest,
        range: Option<(u64, u64)>,
        length: Option<u64>,
        body: S,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: Display,
    {
        let (held, uploads) = self.lease_bringing_bytes(repo, id).await?;
        if let Some((verified, size)) = held.session.verified.clone() {
            return self.finish_verified(held, &verified, size, digest).await;
        }
        let chunk = Chunk {
            range,
            length,
            digest: Some(digest),
            request: "upload_put",
        };
        let ingested = self.ingest_range(&held, uploads, id, chunk, body).await;
        let Ingested {
            hasher,
            written,
            under_quota,
        } = match ingested {
            Ok(done) => done,
            Err(err) => {
                // A broken or misplaced final body leaves the session as it was, to be retried.
                self.meta.release_upload(id, &held.token).await?;
                return Err(err);
            }
        };
        let size = written.len;
        let checked = match self.verify(id, &written, &hasher, digest).await {
            Ok(()) if under_quota => {
                self.check_link(repo.owner(), digest, size, "upload_put")
                    .await
            }
            other => other,
        };
        if let Err(err) = checked {
            self.meta.delete_upload(id).await?;
            self.blobs.abort_upload(id, &written.state).await?;
            return Err(err);
        }
        // Garbage collection leaves the blob alone from here on, or is deleting it: then the
        // session stays as it was, for the client to retry once the deletion is over.
        if let Err(err) = self.meta.claim_blob(digest).await {
            self.meta.release_upload(id, &held.token).await?;
            return Err(err.into());
        }
        // Recorded before the bytes move when earlier requests made bytes durable: if the
        // process stops between the move and the commit below, the session says what its
        // bytes became (see `recover_uploads`). A session without earlier bytes needs no
        // mark: its client's retry sends the whole blob again, which finishes it.
        if held.session.offset > 0 {
            self.meta
                .mark_upload_verified(id, &held.token, digest, size, &written.state)
                .await?;
        }
        self.blobs.commit_written(id, written, digest).await?;
        let linked = self.complete(Some(id), repo, digest, size).await?;
        self.settle(id, repo, linked, "upload_put").await?;
        Ok(size)
    }

    /// What completing session `id` answered: a link refused for the quota (another push of
    /// the account got there first) discards the session, whose bytes are already under their
    /// digest (unlinked: garbage collection's to reclaim).
    async fn settle(
        &self,
        id: &str,
        repo: &RepoName,
        linked: Linked,
        request: &'static str,
    ) -> Result<()> {
        if matches!(linked, Linked::OverQuota { .. }) {
            self.meta.delete_upload(id).await?;
        }
        self.linked(repo.owner(), linked, request)
    }

    /// Completes a session an interrupted final `PUT` verified as `verified`: its bytes are
    /// under that digest, or still in the upload file. A retried `PUT` naming another digest
    /// is refused once the blob is recorded.
    async fn finish_verified(
        &self,
        held: Held,
        verified: &Digest,
        size: u64,
        requested: &Digest,
    ) -> Result<u64> {
        let session = &held.session;
        self.blobs
            .commit_upload(&session.id, &session.blob_state, verified)
            .await?;
        let linked = self
            .complete(Some(&session.id), &session.repo, verified, size)
            .await?;
        self.settle(&session.id, &session.repo, linked, "upload_put")
            .await?;
        if verified != requested {
            return Err(RegistryError::DigestInvalid(format!(
                "this upload's {size} bytes hash to {verified}, not {requested}; it was stored as {verified}"
            )));
        }
        Ok(size)
    }

    /// Settles the sessions a stopped process may have left half-finished, so none answers
    /// an error to every request until it expires: a session marked verified is completed
    /// (its blob recorded in its repository); one whose upload file lost bytes it had
    /// received (its file removed before its row) is deleted, so its client gets
    /// `BLOB_UPLOAD_UNKNOWN` and starts again, as is a verified one its account's storage
    /// quota no longer admits. Returns (completed, deleted).
    pub async fn recover_uploads(&self) -> Result<(usize, usize)> {
        let (mut completed, mut deleted) = (0, 0);
        for session in self.meta.uploads_to_check(now_millis(), usize::MAX).await? {
            let Ok(held) = self.lease(&session.repo, &session.id).await else {
                continue;
            };
            if let Some((digest, size)) = held.session.verified.clone() {
                match self.finish_verified(held, &digest, size, &digest).await {
                    Ok(_) => completed += 1,
                    // Over its account's quota now: the session was discarded.
                    Err(RegistryError::Denied(_)) => deleted += 1,
                    Err(err) => return Err(err),
                }
            } else if self.bytes_lost(&held.session).await? {
                self.meta.delete_upload(&held.session.id).await?;
                deleted += 1;
            } else {
                self.meta.release_upload(&session.id, &held.token).await?;
            }
        }
        Ok((completed, deleted))
    }

    /// Whether the upload file holds fewer bytes than the session received.
    async fn bytes_lost(&self, session: &UploadSession) -> Result<bool> {
        Ok(session.offset > 0
            && self
                .blobs
                .upload_len(&session.id, &session.blob_state)
                .await?
                .is_none_or(|len| len < session.offset))
    }

    /// How many more bytes `chunk` may add to the upload: what the account may still hold in
    /// open sessions (`uploads`, read as the lease was taken), and what its storage quota
    /// leaves after its linked blobs and its open uploads' bytes (this one's included).
    /// Refuses the request when nothing is left, or when the chunk's announced length does
    /// not fit the quota (before its body is read). Also refuses a session whose received
    /// bytes were lost (deleting it, so its client starts again).
    async fn allowance(
        &self,
        held: &Held,
        uploads: OwnerUploads,
        chunk: &Chunk<'_>,
    ) -> Result<Allowance> {
        let session = &held.session;
        if self.bytes_lost(session).await? {
            self.meta.delete_upload(&session.id).await?;
            return Err(RegistryError::UploadLost(session.id.clone()));
        }
        let owner = session.repo.owner();
        let held_bytes = uploads.held;
        let bytes = self.upload_limits.bytes.saturating_sub(held_bytes);
        if bytes == 0 {
            return Err(RegistryError::Denied(format!(
                "the open uploads of `{owner}` hold {held_bytes} bytes, the most this registry allows; finish or cancel some (DELETE their upload URL)"
            )));
        }
        let allowance = Allowance {
            bytes,
            over: Over::Uploads(owner.to_owned()),
            under_quota: false,
        };
        let Some(room) = Room::of(owner, uploads.usage, held_bytes) else {
            return Ok(allowance);
        };
        if let Some(digest) = chunk.digest
            && self.account_holds(owner, digest).await?
        {
            return Ok(Allowance {
                under_quota: true,
                ..allowance
            });
        }
        if let Some(length) = chunk.length()
            && length > room.left()
        {
            return Err(room.refuse(chunk.request, Need::Exactly(length)));
        }
        Ok(allowance.within(room, chunk.request))
    }

    /// Pushes a whole blob in one request (`POST …/blobs/uploads/?digest=`), without a
    /// persisted session. A blob the account does not hold yet must fit its storage quota
    /// (after its open uploads' bytes): one whose `length` (`Content-Length`) does not is
    /// refused before its body is read, one that streams past what is left when it does.
    pub async fn push_blob<S, E>(
        &self,
        repo: &RepoName,
        digest: &Digest,
        length: Option<u64>,
        body: S,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: Display,
    {
        let owner = repo.owner();
        let mut allowance = Allowance {
            bytes: u64::MAX,
            over: Over::Nothing,
            under_quota: false,
        };
        let uploads = self.meta.owner_uploads(owner).await?;
        if let Some(room) = Room::of(owner, uploads.usage, uploads.held)
            && !self.account_holds(owner, digest).await?
        {
            if let Some(length) = length
                && length > room.left()
            {
                return Err(room.refuse("blob_push", Need::Exactly(length)));
            }
            allowance = allowance.within(room, "blob_push");
        }
        let session = UploadSession {
            id: uuid::Uuid::new_v4().simple().to_string(),
            repo: repo.clone(),
            offset: 0,
            hash_state: Vec::new(),
            blob_state: Vec::new(),
            started_at: now_millis(),
            verified: None,
        };
        let held = Held {
            session,
            token: String::new(),
        };
        let id = &held.session.id;
        let (hasher, written) = match self.ingest(&held, body, &allowance, length, true).await {
            Ok(done) => done,
            Err(err) => {
                // Whatever the cut-off writer made durable is the store's to find by id.
                self.blobs.abort_upload(id, &[]).await?;
                return Err(err);
            }
        };
        let checked = match self.verify(id, &written, &hasher, digest).await {
            Ok(()) if allowance.under_quota => {
                self.check_link(owner, digest, written.len, "blob_push")
                    .await
            }
            other => other,
        };
        if let Err(err) = checked {
            self.blobs.abort_upload(id, &written.state).await?;
            return Err(err);
        }
        if let Err(err) = self.meta.claim_blob(digest).await {
            self.blobs.abort_upload(id, &written.state).await?;
            return Err(err.into());
        }
        let size = written.len;
        self.blobs.commit_written(id, written, digest).await?;
        let linked = self.complete(None, repo, digest, size).await?;
        self.linked(owner, linked, "blob_push")?;
        Ok(size)
    }

    /// Records blob `digest` (whose bytes are committed) in `repo`, ending session `id`,
    /// unless that goes over the account's storage quota (see [`Registry::settle`]).
    /// Refused when garbage collection flagged the blob after the upload claimed it (an
    /// upload that stalled for longer than the grace period): the committed bytes may be gone,
    /// so the session goes too and the client starts the upload again.
    async fn complete(
        &self,
        id: Option<&str>,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
    ) -> Result<Linked> {
        match self.meta.complete_upload(id, repo, digest, size).await {
            Err(err) if err.kind() == StoreErrorKind::Collecting => {
                if let Some(id) = id {
                    self.meta.delete_upload(id).await?;
                }
                Err(err.into())
            }
            done => Ok(done?),
        }
    }

    /// Cancels upload `id` of `repo` and discards its bytes.
    pub async fn cancel_upload(&self, repo: &RepoName, id: &str) -> Result<()> {
        let held = self.lease(repo, id).await?;
        // The row goes first: a stop between the two leaves an orphan file (purged after the
        // TTL), never a session whose bytes are gone.
        self.meta.delete_upload(&held.session.id).await?;
        self.blobs
            .abort_upload(id, &held.session.blob_state)
            .await?;
        Ok(())
    }

    /// Discards uploads started more than `ttl` ago (sessions and bytes) and upload files not
    /// written to for `ttl`, such as those of monolithic pushes cut off by a crash. Uploads a
    /// request is writing to are left alone. Returns (sessions, files) removed.
    pub async fn purge_stale_uploads(
        &self,
        ttl: Duration,
        empty_ttl: Duration,
    ) -> Result<(usize, usize)> {
        let now = now_millis();
        let cutoff = now - i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let empty_cutoff = now - i64::try_from(empty_ttl.as_millis()).unwrap_or(i64::MAX);
        let mut sessions = 0;
        for stale in self
            .meta
            .stale_uploads(cutoff, empty_cutoff, now, 1000)
            .await?
        {
            // A request that took the lease meanwhile keeps its upload.
            let Ok(held) = self.lease(&stale.repo, &stale.id).await else {
                continue;
            };
            if self.meta.delete_upload(&held.session.id).await? {
                sessions += 1;
            }
            self.blobs
                .abort_upload(&held.session.id, &held.session.blob_state)
                .await?;
        }
        // Every session whose file is this old was purged above (a file is written after its
        // session starts), so what remains of that age has no live session.
        let files = self.blobs.purge_uploads(cutoff).await?;
        Ok((sessions, files))
    }

    /// [`Registry::lease`] of upload `id`, for a request that brings bytes, and at once the
    /// open uploads of its account, which its allowance is checked against (see
    /// [`Registry::allowance`]), in as few round trips to the metadata store as it allows
    /// ([`UploadStore::lease_upload_counting`]).
    ///
    /// [`UploadStore::lease_upload_counting`]: crate::ports::UploadStore::lease_upload_counting
    async fn lease_bringing_bytes(
        &self,
        repo: &RepoName,
        id: &str,
    ) -> Result<(Held, OwnerUploads)> {
        let token = lease_token();
        let now = now_millis();
        match self
            .meta
            .lease_upload_counting(repo, id, &token, now, now + LEASE.as_millis() as i64)
            .await?
        {
            CountedLease::Granted(session, uploads) => Ok((Held { session, token }, uploads)),
            CountedLease::Missing => Err(RegistryError::BlobUploadUnknown(id.to_owned())),
            CountedLease::Busy => Err(busy(id)),
        }
    }

    async fn lease(&self, repo: &RepoName, id: &str) -> Result<Held> {
        let token = lease_token();
        let now = now_millis();
        match self
            .meta
            .lease_upload(repo, id, &token, now, now + LEASE.as_millis() as i64)
            .await?
        {
            Lease::Granted(session) => Ok(Held { session, token }),
            Lease::Missing => Err(RegistryError::BlobUploadUnknown(id.to_owned())),
            Lease::Busy => Err(busy(id)),
        }
    }

    /// [`Registry::ingest`] of a body whose `Content-Range` (`chunk.range`), when given, must
    /// start where the upload ends and announce exactly the body's length, within the
    /// account's allowance (see [`Registry::allowance`]). Nothing is recorded here:
    /// the caller records progress or releases the lease.
    async fn ingest_range<S, E>(
        &self,
        held: &Held,
        uploads: OwnerUploads,
        id: &str,
        chunk: Chunk<'_>,
        body: S,
    ) -> Result<Ingested>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: Display,
    {
        let range = chunk.range;
        if let Some((start, _)) = range
            && start != held.session.offset
        {
            return Err(RegistryError::RangeInvalid {
                start,
                offset: held.session.offset,
                upload_id: id.to_owned(),
            });
        }
        let allowance = self.allowance(held, uploads, &chunk).await?;
        let committing = chunk.digest.is_some();
        let (hasher, written) = self
            .ingest(held, body, &allowance, chunk.length(), committing)
            .await?;
        let under_quota = allowance.under_quota;
        let offset = written.len;
        if let Some((start, end)) = range
            && offset != end + 1
        {
            return Err(RegistryError::BlobUploadInvalid(format!(
                "Content-Range {start}-{end} announces {} bytes but the body carried {}",
                end + 1 - start,
                offset - start
            )));
        }
        Ok(Ingested {
            hasher,
            written,
            under_quota,
        })
    }

    /// Streams `body` (of `announced` bytes, when the request said) into the upload at its
    /// offset; returns the hash and the new length once the bytes are durable. `committing`:
    /// this request commits the bytes under their digest, or discards them (a final `PUT`, a
    /// monolithic `POST`), so the upload itself need not survive a crash before that.
    async fn ingest<S, E>(
        &self,
        held: &Held,
        mut body: S,
        allowance: &Allowance,
        announced: Option<u64>,
        committing: bool,
    ) -> Result<(UploadHasher, UploadProgress)>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: Display,
    {
        let _streaming = StreamingUpload::begin();
        let session = &held.session;
        let mut hasher = if session.hash_state.is_empty() {
            UploadHasher::new()
        } else {
            UploadHasher::from_state(&session.hash_state)
                .map_err(|e| crate::error::StoreError::new("resuming upload hash", e))?
        };
        let mut writer = self
            .blobs
            .upload_writer(&session.id, &session.blob_state, session.offset)
            .await?;
        if let Some(bytes) = announced {
            writer.announce(bytes);
        }
        let mut gathering: Option<Batch> = None;
        // Hands the batch being gathered on once it is BATCH_MAX_AGE old, full or not: one
        // timer, set anew for each batch that has to wait for more (a small body whose one
        // frame fills its batch never sets it), rather than armed for every frame.
        let age_out = tokio::time::sleep(BATCH_MAX_AGE);
        tokio::pin!(age_out);
        let mut last_renewal = Instant::now();
        let mut received = 0u64;
        // On an error the writer is dropped unfinished: nothing of this request counts.
        loop {
            // A part-full batch waits for more only until it is BATCH_MAX_AGE old;
            // then it is handed on, and the read goes on without one.
            let next = if let Some(batch) = &gathering {
                if age_out.deadline() != batch.hand_on_by {
                    age_out.as_mut().reset(batch.hand_on_by);
                }
                tokio::select! {
                    biased;
                    next = body.next() => next,
                    () = &mut age_out => {
                        self.feed(writer.as_mut(), gathering.take())
                            .await?;
                        continue;
                    }
                }
            } else {
                body.next().await
            };
            let Some(frame) = next else { break };
            let frame = frame.map_err(|e| {
                RegistryError::BlobUploadInvalid(format!(
                    "request body ended before it was complete ({e}); nothing from it was kept"
                ))
            })?;
            received += frame.len() as u64;
            if received > allowance.bytes {
                return Err(allowance.refuse(received));
            }
            hasher.update(&frame);
            // Frames go whole into batches, so hyper can reuse its read buffer (see
            // `Batch::hands_on_before`).
            if gathering
                .as_ref()
                .is_some_and(|batch| batch.hands_on_before(frame.len()))
            {
                self.feed(writer.as_mut(), gathering.take()).await?;
            }
            let mut rest = frame;
            while !rest.is_empty() {
                let batch = match &mut gathering {
                    Some(batch) => batch,
                    None => {
                        // A batch waits for room holding none.
                        let gathered = received - rest.len() as u64;
                        let left = announced.map(|n| n.saturating_sub(gathered));
                        let capacity = batch_capacity(left, rest.len());
                        gathering.insert(Batch::new(capacity, self.room_for(capacity).await?))
                    }
                };
                // Only a frame larger than a whole batch is split (which copies nothing).
                let taken = batch.room().min(rest.len());
                batch.push(rest.split_to(taken));
                if batch.is_full() {
                    self.feed(writer.as_mut(), gathering.take()).await?;
                }
            }
            if !held.token.is_empty() && last_renewal.elapsed() > RENEW_EVERY {
                let until = now_millis() + LEASE.as_millis() as i64;
                self.meta
                    .renew_upload_lease(&session.id, &held.token, until)
                    .await?;
                last_renewal = Instant::now();
            }
        }
        self.feed(writer.as_mut(), gathering.take()).await?;
        let written = if committing {
            writer.finish_to_commit().await
        } else {
            writer.finish().await
        };
        Ok((hasher, written?))
    }

    /// Room for `bytes` bytes in the budget every upload shares (see [`IN_FLIGHT`]), once
    /// there is.
    async fn room_for(&self, bytes: usize) -> Result<tokio::sync::OwnedSemaphorePermit> {
        let want = u32::try_from(bytes).unwrap_or(u32::MAX);
        self.in_flight
            .clone()
            .acquire_many_owned(want)
            .await
            .map_err(|e| {
                crate::error::StoreError::new("waiting for room in the upload budget", e).into()
            })
    }

    /// Hands `batch`'s frames, if any, to the writer; their room in the budget comes back when
    /// the writer has dropped them all.
    async fn feed(&self, writer: &mut dyn UploadWriter, batch: Option<Batch>) -> Result<()> {
        let Some(batch) = batch else {
            return Ok(());
        };
        writer.write_batch(batch.into_frames()).await?;
        Ok(())
    }

    /// Checks the bytes `written` left (held, or in the store with its state) hash to
    /// `digest`.
    async fn verify(
        &self,
        id: &str,
        written: &UploadProgress,
        hasher: &UploadHasher,
        digest: &Digest,
    ) -> Result<()> {
        let size = written.len;
        let actual = match (digest.algorithm(), &written.held) {
            (Algorithm::Sha256, _) => hasher.digest(),
            (Algorithm::Sha512, Some(held)) => Digest::of(Algorithm::Sha512, &held.bytes),
            (Algorithm::Sha512, None) => {
                let mut stream = self.blobs.read_upload(id, &written.state, size).await?;
                let mut sha512 = sha2::Sha512::new();
                while let Some(chunk) = stream.next().await {
                    let chunk =
                        chunk.map_err(|e| crate::error::StoreError::new("re-reading upload", e))?;
                    sha512.update(&chunk);
                }
                Digest::from_parts(Algorithm::Sha512, &hex::encode(sha512.finalize()))
            }
        };
        if &actual == digest {
            Ok(())
        } else {
            Err(RegistryError::DigestInvalid(format!(
                "the {size} bytes uploaded hash to {actual}, not {digest}; the upload was discarded, push it again"
            )))
        }
    }
}

/// The refusal of a new upload of `owner`, which holds `uploads` (read after the refusal, so
/// its sessions may have fallen below `max_open` meanwhile): its quota's when that has no
/// room left, else its open sessions'.
fn refuse_start(owner: &str, uploads: OwnerUploads, max_open: u64) -> RegistryError {
    if let Some(room) = Room::of(owner, uploads.usage, uploads.held)
        && room.left() == 0
    {
        return room.refuse("upload_start", Need::Unknown);
    }
    RegistryError::TooManyUploads(format!(
        "`{owner}` has as many uploads open as this registry allows ({max_open}); finish or cancel some (DELETE their upload URL), or wait for abandoned ones to expire"
    ))
}

/// A new lease's token: whoever holds it may record the upload's progress.
fn lease_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The answer to a request for an upload whose lease another request holds.
fn busy(id: &str) -> RegistryError {
    RegistryError::BlobUploadInvalid(format!(
        "upload `{id}` is receiving another request; send chunks one at a time"
    ))
}

/// The capacity of a new batch, and so the room it takes in the in-flight budget: what the
/// body still announces (`left`, when it said), so a small blob takes little room; never less
/// than the bytes at hand (should the body bring more than it announced), never more than
/// [`BATCH`].
fn batch_capacity(left: Option<u64>, at_hand: usize) -> usize {
    left.map_or(BATCH, |n| usize::try_from(n).unwrap_or(BATCH))
        .clamp(at_hand.min(BATCH), BATCH)
}

/// Frames a batch gathers at most. hyper reads each frame into a buffer of its own (up to
/// [`BODY_FRAME_MAX`], allocated afresh whenever the last one's frames are still held), and a
/// held frame keeps that whole buffer alive however few bytes it carries: a batch keeps at most
/// this many buffers alive, 2 MiB, four times the room it takes, whatever sizes its client's
/// frames come in, so the budget's frames keep at most four times [`IN_FLIGHT`] alive. A body
/// of full frames fills a batch with one or two; one whose reads find less waiting needs more.
/// With 128 KiB frames in 256 KiB batches, cutting batches at 4 frames (then at most twice
/// their room) cost 6–10 % more server CPU per GiB pushed (BENCHMARKS.md, "Lean and steady,
/// part 6"); with 512 KiB frames and batches, 4 frames is again four times the room.
const MAX_FRAMES: usize = 4;
const _: () = assert!(
    MAX_FRAMES * BODY_FRAME_MAX <= 4 * BATCH,
    "a batch's frames must keep at most four times its room alive"
);
/// Frames of a request body being gathered for one hand-off, holding room for the batch's
/// capacity in the in-flight budget.
struct Batch {
    frames: Vec<Bytes>,
    len: usize,
    capacity: usize,
    room: tokio::sync::OwnedSemaphorePermit,
    /// When it is handed on, full or not: [`BATCH_MAX_AGE`] after its first bytes arrived.
    hand_on_by: tokio::time::Instant,
}

impl Batch {
    fn new(capacity: usize, room: tokio::sync::OwnedSemaphorePermit) -> Self {
        Batch {
            frames: Vec::with_capacity(MAX_FRAMES),
            len: 0,
            capacity,
            room,
            hand_on_by: tokio::time::Instant::now() + BATCH_MAX_AGE,
        }
    }

    fn push(&mut self, frame: Bytes) {
        self.len += frame.len();
        self.frames.push(frame);
    }

    /// Whether it is handed on before a frame of `len` bytes, which then starts the next
    /// batch: it holds frames, and that one does not fit in its room. A frame split at the
    /// batch's end stays alive past hyper's next read, which then cannot reuse its buffer and
    /// takes a fresh one; whole frames let hyper read into the buffer just written, still in
    /// the CPU's cache (a GiB pushed in 8 MiB chunks: 259 fresh 512 KiB buffers instead of
    /// 2,120, and a median of 11 % less server CPU; BENCHMARKS.md, "Lean and steady, part 17").
    fn hands_on_before(&self, len: usize) -> bool {
        self.len > 0 && len > self.room()
    }

    /// Whether it is handed on now: it has no room left, or holds [`MAX_FRAMES`] frames.
    fn is_full(&self) -> bool {
        self.room() == 0 || self.frames.len() >= MAX_FRAMES
    }

    /// Bytes it can still take.
    fn room(&self) -> usize {
        self.capacity - self.len
    }

    /// The frames, the last of them holding the batch's room in the budget until it is
    /// dropped: a writer drops a batch's frames in order, or all at once.
    fn into_frames(self) -> Vec<Bytes> {
        let Batch {
            mut frames, room, ..
        } = self;
        if let Some(last) = frames.last_mut() {
            let bytes = std::mem::take(last);
            *last = Bytes::from_owner(Budgeted { bytes, _room: room });
        }
        frames
    }
}

/// Bytes holding room in the in-flight budget.
struct Budgeted {
    bytes: Bytes,
    _room: tokio::sync::OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Budgeted {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Request bodies streaming into uploads now.
static STREAMING: AtomicUsize = AtomicUsize::new(0);
/// Told whenever the last streaming body ends.
static PAUSED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// How many request bodies are streaming into uploads now, for whoever hands memory back when
/// they pause (the binary).
pub fn uploads_streaming() -> usize {
    STREAMING.load(Ordering::Relaxed)
}

/// Waits until the last request body streaming into an upload ends: at once if one has ended
/// leaving none since the last call. For one waiter (the binary's memory hand-back).
pub async fn upload_paused() {
    PAUSED.notified().await;
}

/// Counts a request body being streamed into an upload (a chunk, a final PUT, a monolithic
/// push) in the `berth_uploads_in_progress` gauge and [`uploads_streaming`] while it lives, so
/// a crash or a dropped connection cannot leave the count off.
struct StreamingUpload;

impl StreamingUpload {
    fn begin() -> Self {
        metrics::gauge!("berth_uploads_in_progress").increment(1.0);
        STREAMING.fetch_add(1, Ordering::Relaxed);
        StreamingUpload
    }
}

impl Drop for StreamingUpload {
    fn drop(&mut self) {
        metrics::gauge!("berth_uploads_in_progress").decrement(1.0);
        if STREAMING.fetch_sub(1, Ordering::Relaxed) == 1 {
            PAUSED.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_body_takes_only_its_announced_size_from_the_budget() {
        assert_eq!(batch_capacity(Some(1024), 1024), 1024);
        assert_eq!(
            batch_capacity(Some(1024), 100),
            1024,
            "the rest of a small body is awaited in the same batch"
        );
        assert_eq!(batch_capacity(Some(0), 0), 0);
    }

    #[test]
    fn a_large_or_unannounced_body_takes_one_whole_batch() {
        assert_eq!(batch_capacity(None, 100), BATCH);
        assert_eq!(batch_capacity(Some(1 << 30), 100), BATCH);
        assert_eq!(batch_capacity(Some(u64::MAX), 100), BATCH);
    }

    #[test]
    fn a_body_bringing_more_than_it_announced_gets_room_for_what_is_at_hand() {
        assert_eq!(batch_capacity(Some(10), 4096), 4096);
        assert_eq!(batch_capacity(Some(0), BODY_FRAME_MAX), BODY_FRAME_MAX);
        assert_eq!(
            batch_capacity(Some(0), BATCH * 2),
            BATCH,
            "still never more than one batch"
        );
    }

    fn room(bytes: usize) -> tokio::sync::OwnedSemaphorePermit {
        std::sync::Arc::new(tokio::sync::Semaphore::new(bytes))
            .try_acquire_many_owned(u32::try_from(bytes).expect("a batch's room"))
            .expect("room in a budget of its own size")
    }

    /// A frame of `len` bytes that keeps a whole read buffer of its own alive, as hyper's do.
    fn frame_of(len: usize) -> Bytes {
        let mut buffer = bytes::BytesMut::zeroed(BODY_FRAME_MAX);
        buffer.split_to(len).freeze()
    }

    #[tokio::test]
    async fn tiny_frames_keep_at_most_four_times_their_batchs_room_alive() {
        let mut batch = Batch::new(BATCH, room(BATCH));
        let mut kept = 0;
        while !batch.is_full() {
            batch.push(frame_of(13));
            kept += BODY_FRAME_MAX;
            assert!(kept <= 4 * BATCH, "{kept} bytes of read buffers kept alive");
        }
        assert_eq!(batch.frames.len(), MAX_FRAMES);
        assert_eq!(
            batch.len,
            13 * MAX_FRAMES,
            "handed on long before its room is used"
        );
    }

    #[tokio::test]
    async fn a_frame_that_does_not_fit_starts_the_next_batch_whole() {
        // The request's head took the first read's first bytes: its body frame falls short of
        // a batch, and every later frame would straddle two batches if split.
        let mut batch = Batch::new(BATCH, room(BATCH));
        assert!(
            !batch.hands_on_before(BODY_FRAME_MAX),
            "an empty batch takes any frame"
        );
        batch.push(frame_of(BODY_FRAME_MAX - 300));
        assert!(!batch.is_full());
        assert!(batch.hands_on_before(BODY_FRAME_MAX));
        assert!(batch.hands_on_before(301));
        assert!(
            !batch.hands_on_before(300),
            "a frame that fits is gathered, not handed on"
        );
    }

    #[tokio::test]
    async fn a_batch_of_full_frames_is_handed_on_when_its_room_is_used() {
        let mut batch = Batch::new(BATCH, room(BATCH));
        while !batch.is_full() {
            batch.push(frame_of(batch.room().min(BODY_FRAME_MAX)));
        }
        assert_eq!(batch.room(), 0);
        assert_eq!(batch.frames.len(), BATCH.div_ceil(BODY_FRAME_MAX));
    }
}
