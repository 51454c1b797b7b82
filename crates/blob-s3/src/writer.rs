//! Receiving one request's bytes: whole parts go to the upload's multipart upload as they
//! fill (two in flight at most), and what is left at the end is staged as an object of its
//! own, to be folded into the next part — unless the request commits an upload it holds
//! whole and smaller than a part, whose bytes stay in memory for the commit to write.
//!
//! Every byte a writer buffers holds room in the node's upload memory ([`Inner::room`]),
//! taken as the bytes come and given back when S3 has them. A writer holding room waits for
//! more only briefly ([`HOLDING_WAIT`]), then stages what it holds and waits holding none
//! (parts already on their way finish on their own), so no two uploads can each wait for
//! the other's room.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use berth_core::StoreError;
use berth_core::ports::{HeldBytes, StoreResult, UploadProgress, UploadWriter};
use bytes::{Bytes, BytesMut};
use object_store::multipart::{MultipartStore, PartId};
use object_store::{ObjectStoreExt, PutPayload};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;

use crate::state::{Part, UploadState};
use crate::{Inner, MIN_PART, PART, failed};

/// Parts being uploaded at once by one writer: one goes out while the next fills.
const PARTS_IN_FLIGHT: usize = 2;

/// How long a writer holding room waits for more before it stages what it holds and waits
/// holding none (waiting that long holding room is bounded). An 8 MiB part on its way takes about this long to reach S3 here, so room held
/// by parts in flight comes back within it; room held by stalled clients does not.
const HOLDING_WAIT: Duration = Duration::from_millis(250);

/// A part on its way: its length and the task uploading it.
type Pending = (u64, JoinHandle<Result<PartId, object_store::Error>>);

pub(crate) struct S3UploadWriter {
    inner: Arc<Inner>,
    id: String,
    state: UploadState,
    /// The part being filled after the staged pieces: allocated once, for exactly what
    /// completes the part, when its first byte comes.
    buf: BytesMut,
    /// Room held in the node's upload memory: the staged pieces' bytes (read back when the
    /// part goes) and the buffer's.
    room: Option<OwnedSemaphorePermit>,
    pending: VecDeque<Pending>,
    /// The multipart upload this writer opened (not one recorded before): aborted if the
    /// writer is dropped unfinished, since nothing recorded names it.
    opened: Option<String>,
}

impl S3UploadWriter {
    pub(crate) fn new(inner: Arc<Inner>, id: &str, state: UploadState) -> Self {
        S3UploadWriter {
            inner,
            id: id.to_owned(),
            state,
            buf: BytesMut::new(),
            room: None,
            pending: VecDeque::new(),
            opened: None,
        }
    }

    /// The buffer's length at which the part is complete.
    fn full_at(&self) -> usize {
        // The staged pieces total less than a part.
        (PART - self.state.staged_len()) as usize
    }

    /// Stages the buffer, if it holds anything, as a piece of its own (an object); the room
    /// it held can go.
    async fn stage_buffer(&mut self) -> StoreResult<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let key = self.inner.keys.staged(&self.id, self.state.len());
        let piece = std::mem::take(&mut self.buf).freeze();
        let len = piece.len() as u64;
        self.inner
            .s3
            .put(&key, piece.into())
            .await
            .map_err(failed(format!("staging bytes of upload `{}`", self.id)))?;
        self.state.staged.push(len);
        Ok(())
    }

    async fn multipart(&mut self) -> StoreResult<String> {
        if let Some(id) = &self.state.multipart {
            return Ok(id.clone());
        }
        let key = self.inner.keys.data(&self.id);
        let id = self
            .inner
            .s3
            .create_multipart(&key)
            .await
            .map_err(failed(format!(
                "starting the multipart upload of `{}`",
                self.id
            )))?;
        self.state.multipart = Some(id.clone());
        self.state.checksummed = true;
        self.opened = Some(id.clone());
        Ok(id)
    }

    /// Sends the staged pieces and the buffer as the next part; the room they held comes
    /// back when S3 has it.
    async fn send_part(&mut self) -> StoreResult<()> {
        let multipart = self.multipart().await?;
        let mut chunks = self.inner.read_staged(&self.id, &self.state).await?;
        chunks.push(std::mem::take(&mut self.buf).freeze());
        let room = self.room.take();
        let len = chunks.iter().map(|c| c.len() as u64).sum();
        // Their objects go when the upload ends: until this request's state is recorded, the
        // recorded one still names them.
        let folded = self.state.staged_starts();
        self.state.folded.extend(folded);
        self.state.staged.clear();
        while self.pending.len() >= PARTS_IN_FLIGHT {
            self.settle_oldest().await?;
        }
        let index = self.state.parts.len() + self.pending.len();
        let inner = self.inner.clone();
        let key = inner.keys.data(&self.id);
        let payload: PutPayload = chunks.into_iter().collect();
        let task = tokio::spawn(async move {
            let sent = inner.s3.put_part(&key, &multipart, index, payload).await;
            drop(room);
            sent
        });
        self.pending.push_back((len, task));
        Ok(())
    }

    async fn settle_oldest(&mut self) -> StoreResult<()> {
        let Some((len, task)) = self.pending.pop_front() else {
            return Ok(());
        };
        let context = format!("uploading a part of `{}`", self.id);
        let part = task
            .await
            .map_err(|e| StoreError::new(context.clone(), e))?
            .map_err(failed(context))?;
        self.state.parts.push(Part {
            etag: part.content_id,
            len,
        });
        Ok(())
    }
}

#[async_trait]
impl UploadWriter for S3UploadWriter {
    async fn write(&mut self, mut chunk: Bytes) -> StoreResult<()> {
        // Copied: the caller's chunk counts against its in-flight budget until dropped, and a
        // part may wait here for the next request's bytes.
        while !chunk.is_empty() {
            let want = chunk.len().min(self.full_at() - self.buf.len());
            if self.room.is_none() {
                // A new part: room for its first bytes and for reading the staged pieces
                // back, waited for holding none.
                let bytes = want + self.state.staged_len() as usize;
                let room = self
                    .inner
                    .room(bytes, || format!("receiving bytes of upload `{}`", self.id));
                self.room = Some(room.await?);
                self.buf = BytesMut::with_capacity(self.full_at());
            } else if let Some(more) = self.inner.room_within(want, HOLDING_WAIT).await {
                if let Some(held) = &mut self.room {
                    held.merge(more);
                }
            } else {
                // Still short of room: stage what this part holds and give its room back
                // before waiting, so that no two uploads wait for each other's room.
                self.stage_buffer().await?;
                self.room = None;
                continue;
            }
            self.buf.extend_from_slice(&chunk.split_to(want));
            if self.buf.len() == self.full_at() {
                self.send_part().await?;
            }
        }
        Ok(())
    }

    async fn finish_to_commit(mut self: Box<Self>) -> StoreResult<UploadProgress> {
        // An upload whole in this request and too small for a part stays in memory: the
        // commit writes it under its digest in one request, where staging it would take
        // three (the staged object's write, its copy to the digest, its removal).
        let whole = self.state.is_empty() && self.pending.is_empty();
        if !whole || self.buf.len() as u64 >= MIN_PART {
            return self.finish().await;
        }
        let bytes = std::mem::take(&mut self.buf).freeze();
        let room = self.room.take();
        Ok(UploadProgress {
            len: bytes.len() as u64,
            state: Vec::new(),
            held: Some(HeldBytes {
                bytes,
                room: room.map(|permit| Box::new(permit) as _),
            }),
        })
    }

    async fn finish(mut self: Box<Self>) -> StoreResult<UploadProgress> {
        if !self.buf.is_empty() && self.state.staged_len() + self.buf.len() as u64 >= MIN_PART {
            self.send_part().await?;
        }
        while !self.pending.is_empty() {
            self.settle_oldest().await?;
        }
        self.stage_buffer().await?;
        self.room = None;
        self.opened = None;
        Ok(UploadProgress {
            len: self.state.len(),
            state: self.state.encode(),
            held: None,
        })
    }
}

impl Drop for S3UploadWriter {
    fn drop(&mut self) {
        for (_, task) in self.pending.drain(..) {
            task.abort();
        }
        let (Some(multipart), Ok(runtime)) =
            (self.opened.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let inner = self.inner.clone();
        let key = inner.keys.data(&self.id);
        runtime.spawn(async move {
            if let Err(err) = inner.s3.abort_multipart(&key, &multipart).await {
                tracing::warn!(%key, error = %err, "aborting an unfinished multipart upload failed; the upload purge aborts it after upload_ttl_secs");
            }
        });
    }
}
