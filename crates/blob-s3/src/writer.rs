//! Receiving one request's bytes: whole parts go to the upload's multipart upload as they
//! fill (two in flight at most), and what is left at the end is staged as an object of its
//! own, to be folded into the next part. Each part's buffer holds room in the node's upload
//! memory ([`crate::Inner::room`]) from its first byte until S3 has it.

use std::collections::VecDeque;
use std::sync::Arc;

use async_trait::async_trait;
use berth_core::StoreError;
use berth_core::ports::{StoreResult, UploadProgress, UploadWriter};
use bytes::{Bytes, BytesMut};
use object_store::multipart::{MultipartStore, PartId};
use object_store::{ObjectStoreExt, PutPayload};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;

use crate::state::{Part, UploadState};
use crate::{Inner, MIN_PART, PART, failed};

/// Parts being uploaded at once by one writer: one goes out while the next fills.
const PARTS_IN_FLIGHT: usize = 2;

/// A part on its way: its length and the task uploading it.
type Pending = (u64, JoinHandle<Result<PartId, object_store::Error>>);

/// The part being filled: its bytes (allocated once, for exactly what completes the part
/// after the staged pieces) and its room in the node's upload memory.
struct Filling {
    buf: BytesMut,
    /// The bytes at which the part is complete.
    full_at: usize,
    room: OwnedSemaphorePermit,
}

pub(crate) struct S3UploadWriter {
    inner: Arc<Inner>,
    id: String,
    state: UploadState,
    filling: Option<Filling>,
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
            filling: None,
            pending: VecDeque::new(),
            opened: None,
        }
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
        self.opened = Some(id.clone());
        Ok(id)
    }

    /// Sends the staged pieces and the part being filled as the next part; the part's room
    /// comes back when S3 has it.
    async fn send_part(&mut self, filling: Filling) -> StoreResult<()> {
        let multipart = self.multipart().await?;
        let mut chunks = self.inner.read_staged(&self.id, &self.state).await?;
        chunks.push(filling.buf.freeze());
        let room = filling.room;
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
            let filling = match &mut self.filling {
                Some(filling) => filling,
                None => {
                    let room = self
                        .inner
                        .room(|| format!("receiving bytes of upload `{}`", self.id))
                        .await?;
                    // The staged pieces (less than a part) are read back when the part goes.
                    let full_at = (PART - self.state.staged_len()) as usize;
                    self.filling.insert(Filling {
                        buf: BytesMut::with_capacity(full_at),
                        full_at,
                        room,
                    })
                }
            };
            let take = chunk.len().min(filling.full_at - filling.buf.len());
            filling.buf.extend_from_slice(&chunk.split_to(take));
            if filling.buf.len() == filling.full_at {
                let full = self.filling.take().expect("a part is being filled");
                self.send_part(full).await?;
            }
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> StoreResult<UploadProgress> {
        let mut tail = self.filling.take().filter(|f| !f.buf.is_empty());
        if let Some(filling) =
            tail.take_if(|f| self.state.staged_len() + f.buf.len() as u64 >= MIN_PART)
        {
            self.send_part(filling).await?;
        }
        while !self.pending.is_empty() {
            self.settle_oldest().await?;
        }
        if let Some(filling) = tail {
            let key = self.inner.keys.staged(&self.id, self.state.len());
            let piece = filling.buf.freeze();
            let len = piece.len() as u64;
            self.inner
                .s3
                .put(&key, piece.into())
                .await
                .map_err(failed(format!("staging the tail of upload `{}`", self.id)))?;
            self.state.staged.push(len);
        }
        self.opened = None;
        Ok(UploadProgress {
            len: self.state.len(),
            state: self.state.encode(),
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
                tracing::warn!(%key, error = %err, "aborting an unfinished multipart upload failed; a bucket lifecycle rule for incomplete multipart uploads reclaims it");
            }
        });
    }
}
