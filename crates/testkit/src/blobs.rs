//! The blob contract ([`berth_core::ports::BlobStore`]): resumable uploads written and read
//! back, commits under a digest, ranges, and what fails.
//!
//! Each clause takes a fresh, empty store; [`blob_contract!`](crate::blob_contract) stamps them
//! per backend. The fixtures are public so a backend's own extras (its on-disk layout) drive
//! the store the same way.

use berth_core::ports::{BlobStore, ByteStream, UploadProgress, UploadWriter};
use berth_core::{Algorithm, Digest, StoreErrorKind};
use bytes::Bytes;
use futures_util::StreamExt;
use std::io::ErrorKind;

/// Stamps the blob contract for one backend: `blob_contract!(fs, open)` makes `mod fs` with
/// one test per clause of [`blobs`](crate::blobs), each on the store `open` returns (see the
/// [crate] docs), on a two-thread runtime.
#[macro_export]
macro_rules! blob_contract {
    ($backend:ident, $open:expr) => {
        $crate::__stamp!(
            $backend,
            $open,
            blobs,
            [::tokio::test(flavor = "multi_thread", worker_threads = 2)],
            [
                two_writers_append_and_read_back,
                large_upload_is_flushed_while_streaming_and_reads_back,
                writer_at_smaller_offset_discards_the_rest,
                dropped_writer_is_cut_off_by_the_next,
                resuming_a_missing_or_short_upload_fails,
                committed_blob_is_readable_by_range,
                reading_past_the_end_is_an_error_not_a_short_stream,
                committing_an_existing_digest_keeps_one_copy,
                sha512_blobs_are_committed_under_their_algorithm,
                abort_removes_and_tolerates_missing,
                invalid_upload_ids_are_rejected,
                missing_blob_is_not_found,
                purging_removes_only_uploads_older_than_the_cutoff,
                a_fresh_store_probes_ok_and_leaves_nothing,
                small_and_large_requests_mix_in_one_upload,
                batches_of_chunks_append_in_order,
                committing_again_after_an_interruption_completes,
                deleted_blobs_are_gone_and_can_be_stored_again,
                listing_pages_through_old_blobs_in_digest_order,
                uploads_finished_to_commit_are_committed_whole,
                uploads_finished_to_commit_and_refused_leave_nothing,
            ]
        );
    };
}

/// Deterministic, non-repeating-looking test bytes.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

/// Every byte of `stream`; panics on an error.
pub async fn collect(mut stream: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

/// Writes `parts` through one writer opened at `offset` with the upload's recorded `state`;
/// returns what the writer finished with.
pub async fn write_parts(
    store: &impl BlobStore,
    id: &str,
    state: &[u8],
    offset: u64,
    parts: &[&[u8]],
) -> UploadProgress {
    let writer = fill(store, id, state, offset, parts).await;
    writer.finish().await.unwrap()
}

/// A writer of upload `id` opened at `offset` with `state`, having written `parts`.
async fn fill(
    store: &impl BlobStore,
    id: &str,
    state: &[u8],
    offset: u64,
    parts: &[&[u8]],
) -> Box<dyn UploadWriter> {
    let mut writer = store.upload_writer(id, state, offset).await.unwrap();
    for part in parts {
        writer.write(Bytes::copy_from_slice(part)).await.unwrap();
    }
    writer
}

/// Uploads and commits `bytes` in one request; returns its digest and the upload's last state.
pub async fn push(store: &impl BlobStore, id: &str, bytes: &[u8]) -> (Digest, UploadProgress) {
    let done = write_parts(store, id, &[], 0, &[bytes]).await;
    assert_eq!(done.len, bytes.len() as u64);
    let digest = Digest::sha256(bytes);
    store.commit_upload(id, &done.state, &digest).await.unwrap();
    (digest, done)
}

/// The upload ids a store must refuse (they could name a path outside its uploads).
pub const INVALID_UPLOAD_IDS: [&str; 6] = ["../x", "", "a/b", "..", ".hidden", "x\0y"];

/// Two writers append and read back.
pub async fn two_writers_append_and_read_back<S: BlobStore>(store: S) {
    let data = pattern(3 * 1024 * 1024 + 17, 1);
    let (first, second) = data.split_at(1_500_001);
    let one = write_parts(&store, "up-1", &[], 0, &[&first[..1000], &first[1000..]]).await;
    assert_eq!(one.len, first.len() as u64);
    let (a, b) = second.split_at(700_000);
    let two = write_parts(&store, "up-1", &one.state, one.len, &[a, b, &[]]).await;
    assert_eq!(two.len, data.len() as u64);
    let read = collect(
        store
            .read_upload("up-1", &two.state, two.len)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(read, data);
    let prefix = collect(store.read_upload("up-1", &two.state, 10).await.unwrap()).await;
    assert_eq!(prefix, &data[..10]);
}

/// Large upload is flushed while streaming, reads back, and commits.
pub async fn large_upload_is_flushed_while_streaming_and_reads_back<S: BlobStore>(store: S) {
    use sha2::Digest as _;
    let base = pattern(1 << 20, 7);
    let mut expected = sha2::Sha256::new();
    let mut writer = store.upload_writer("big", &[], 0).await.unwrap();
    // Past two background flush thresholds (and several object-store parts).
    for i in 0..70u8 {
        let mut chunk = base.clone();
        chunk[0] = i;
        expected.update(&chunk);
        writer.write(Bytes::from(chunk)).await.unwrap();
    }
    let done = writer.finish().await.unwrap();
    assert_eq!(done.len, 70 << 20);
    let mut stream = store
        .read_upload("big", &done.state, done.len)
        .await
        .unwrap();
    let mut actual = sha2::Sha256::new();
    let mut read = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        read += chunk.len() as u64;
        actual.update(&chunk);
    }
    assert_eq!(read, done.len);
    let hash = actual.finalize();
    assert_eq!(hash, expected.finalize());
    // Re-read (as a sha512 push does) and then committed under its digest.
    let digest: Digest = format!("sha256:{}", hex::encode(hash)).parse().unwrap();
    store
        .commit_upload("big", &done.state, &digest)
        .await
        .unwrap();
    assert_eq!(store.stat(&digest).await.unwrap(), Some(70 << 20));
    let tail = collect(store.read(&digest, (70 << 20) - 3, 70 << 20).await.unwrap()).await;
    assert_eq!(tail, &base[base.len() - 3..]);
}

/// A writer opened at a recorded length and state discards whatever was written after that
/// state was recorded (a request that wrote bytes but never completed).
pub async fn writer_at_smaller_offset_discards_the_rest<S: BlobStore>(store: S) {
    let data = pattern(200_000, 2);
    let recorded = write_parts(&store, "u", &[], 0, &[&data[..100_000]]).await;
    // Written, but its request failed before the progress was recorded.
    write_parts(&store, "u", &recorded.state, 100_000, &[&data[100_000..]]).await;
    let tail = pattern(5_000, 3);
    let done = write_parts(&store, "u", &recorded.state, 100_000, &[&tail]).await;
    assert_eq!(done.len, 105_000);
    let read = collect(store.read_upload("u", &done.state, done.len).await.unwrap()).await;
    assert_eq!(&read[..100_000], &data[..100_000]);
    assert_eq!(&read[100_000..], &tail[..]);
    // Nothing beyond the new length survives either.
    let digest = Digest::sha256(&read);
    store
        .commit_upload("u", &done.state, &digest)
        .await
        .unwrap();
    assert_eq!(store.stat(&digest).await.unwrap(), Some(105_000));
    assert_eq!(
        collect(store.read(&digest, 0, 105_000).await.unwrap()).await,
        read
    );
}

/// Dropped writer is cut off by the next.
pub async fn dropped_writer_is_cut_off_by_the_next<S: BlobStore>(store: S) {
    let mut writer = store.upload_writer("d", &[], 0).await.unwrap();
    writer
        .write(Bytes::from(pattern(1 << 20, 4)))
        .await
        .unwrap();
    drop(writer);
    let done = write_parts(&store, "d", &[], 0, &[b"fresh"]).await;
    assert_eq!(done.len, 5);
    assert_eq!(
        collect(store.read_upload("d", &done.state, 5).await.unwrap()).await,
        b"fresh"
    );
}

/// Resuming a missing upload fails as not found; resuming past a short one fails.
pub async fn resuming_a_missing_or_short_upload_fails<S: BlobStore>(store: S) {
    let missing = store
        .upload_writer("nope", &[], 10)
        .await
        .err()
        .expect("missing upload");
    assert_eq!(missing.kind(), StoreErrorKind::NotFound, "{missing}");
    let short = write_parts(&store, "short", &[], 0, &[b"abc"]).await;
    assert!(store.upload_writer("short", &short.state, 4).await.is_err());
}

/// Committed blob is readable by range.
pub async fn committed_blob_is_readable_by_range<S: BlobStore>(store: S) {
    let data = pattern(2 * 1024 * 1024 + 3, 5);
    let digest = Digest::sha256(&data);
    assert_eq!(store.stat(&digest).await.unwrap(), None);
    let (_, done) = push(&store, "c", &data).await;
    assert_eq!(store.stat(&digest).await.unwrap(), Some(data.len() as u64));
    let whole = collect(store.read(&digest, 0, data.len() as u64).await.unwrap()).await;
    assert_eq!(whole, data);
    for (start, end) in [(0, 1), (5, 5), (1000, 1_048_577), (1_048_576, 2_097_155)] {
        let got = collect(store.read(&digest, start, end).await.unwrap()).await;
        assert_eq!(got, &data[start as usize..end as usize], "{start}..{end}");
    }
    // The upload is gone once committed.
    assert!(store.read_upload("c", &done.state, 1).await.is_err());
}

/// Reading past the end is an error not a short stream.
pub async fn reading_past_the_end_is_an_error_not_a_short_stream<S: BlobStore>(store: S) {
    let (digest, _) = push(&store, "s", b"short").await;
    // A committed blob's length is checked before the first byte is served.
    // (What error it is, is the backend's: the filesystem's extras check theirs.)
    if store.read(&digest, 2, 100).await.is_ok() {
        panic!("a range past the end must not stream");
    }
    // An upload read past its end ends the stream with an error, never silently short.
    let done = write_parts(&store, "u", &[], 0, &[b"short"]).await;
    let mut stream = store.read_upload("u", &done.state, 100).await.unwrap();
    let mut read = Vec::new();
    let err = loop {
        match stream.next().await.expect("the stream ends with an error") {
            Ok(chunk) => read.extend_from_slice(&chunk),
            Err(err) => break err,
        }
    };
    assert_eq!(read, b"short");
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    assert!(store.read(&digest, 3, 2).await.is_err());
}

/// Committing an existing digest keeps one copy.
pub async fn committing_an_existing_digest_keeps_one_copy<S: BlobStore>(store: S) {
    let data = pattern(4096, 6);
    let (digest, one) = push(&store, "one", &data).await;
    let (_, two) = push(&store, "two", &data).await;
    assert_eq!(store.stat(&digest).await.unwrap(), Some(4096));
    for (id, done) in [("one", one), ("two", two)] {
        assert_eq!(
            store.upload_len(id, &done.state).await.unwrap(),
            None,
            "no upload is left"
        );
    }
    let read = collect(store.read(&digest, 0, 4096).await.unwrap()).await;
    assert_eq!(read, data);
}

/// A sha512 digest is a blob's address as a sha256 one is.
pub async fn sha512_blobs_are_committed_under_their_algorithm<S: BlobStore>(store: S) {
    let done = write_parts(&store, "x", &[], 0, &[b"hello"]).await;
    let digest = Digest::of(Algorithm::Sha512, b"hello");
    store
        .commit_upload("x", &done.state, &digest)
        .await
        .unwrap();
    assert_eq!(store.stat(&digest).await.unwrap(), Some(5));
    assert_eq!(store.stat(&Digest::sha256(b"hello")).await.unwrap(), None);
    assert_eq!(
        collect(store.read(&digest, 0, 5).await.unwrap()).await,
        b"hello"
    );
}

/// Abort removes and tolerates missing.
pub async fn abort_removes_and_tolerates_missing<S: BlobStore>(store: S) {
    let done = write_parts(&store, "gone", &[], 0, &[b"bytes"]).await;
    store.abort_upload("gone", &done.state).await.unwrap();
    assert_eq!(store.upload_len("gone", &done.state).await.unwrap(), None);
    let err = store
        .read_upload("gone", &done.state, 1)
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), StoreErrorKind::NotFound, "{err}");
    store.abort_upload("gone", &done.state).await.unwrap();
    store.abort_upload("never", &[]).await.unwrap();
}

/// Invalid upload ids are rejected.
pub async fn invalid_upload_ids_are_rejected<S: BlobStore>(store: S) {
    let digest = Digest::sha256(b"");
    let long = "a".repeat(65);
    for id in INVALID_UPLOAD_IDS.into_iter().chain([long.as_str()]) {
        assert!(store.upload_writer(id, &[], 0).await.is_err(), "{id:?}");
        assert!(store.read_upload(id, &[], 0).await.is_err(), "{id:?}");
        assert!(
            store.commit_upload(id, &[], &digest).await.is_err(),
            "{id:?}"
        );
        assert!(store.abort_upload(id, &[]).await.is_err(), "{id:?}");
    }
}

/// Missing blob is not found.
pub async fn missing_blob_is_not_found<S: BlobStore>(store: S) {
    let digest = Digest::sha256(b"never pushed");
    let err = store.read(&digest, 0, 10).await.err().unwrap();
    assert_eq!(err.kind(), StoreErrorKind::NotFound, "{err}");
    assert_eq!(store.stat(&digest).await.unwrap(), None);
}

/// Purging removes only uploads older than the cutoff.
pub async fn purging_removes_only_uploads_older_than_the_cutoff<S: BlobStore>(store: S) {
    let old = write_parts(&store, "old", &[], 0, &[b"stale bytes"]).await;
    // Object stores keep modification times in whole seconds.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let cutoff = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let new = write_parts(&store, "new", &[], 0, &[b"fresh bytes"]).await;
    assert_eq!(store.purge_uploads(cutoff).await.unwrap(), 1);
    assert_eq!(store.upload_len("old", &old.state).await.unwrap(), None);
    assert_eq!(store.upload_len("new", &new.state).await.unwrap(), Some(11));
    assert_eq!(
        store.purge_uploads(0).await.unwrap(),
        0,
        "nothing is older than the epoch"
    );
}

/// A fresh store answers the readiness probe, and probing leaves no upload behind.
pub async fn a_fresh_store_probes_ok_and_leaves_nothing<S: BlobStore>(store: S) {
    for _ in 0..3 {
        store.probe().await.unwrap();
    }
    assert_eq!(
        store.purge_uploads(i64::MAX).await.unwrap(),
        0,
        "a probe left a file among the uploads"
    );
}

/// Requests of every size make one upload: several small ones (smaller than an object
/// store's smallest part), a large one, and a small last one; the blob reads back whole and
/// by ranges across the requests' boundaries.
pub async fn small_and_large_requests_mix_in_one_upload<S: BlobStore>(store: S) {
    let data = pattern(13 * 1024 * 1024 + 100, 9);
    let cuts = [0, 1 << 20, 3 << 20, 4 << 20, 13 << 20, data.len()];
    let mut done = UploadProgress::default();
    for pair in cuts.windows(2) {
        let piece = &data[pair[0]..pair[1]];
        let (a, b) = piece.split_at(piece.len() / 2);
        done = write_parts(&store, "mix", &done.state, done.len, &[a, b]).await;
        assert_eq!(done.len, pair[1] as u64);
        assert_eq!(
            store.upload_len("mix", &done.state).await.unwrap(),
            Some(done.len)
        );
    }
    let digest = Digest::sha256(&data);
    store
        .commit_upload("mix", &done.state, &digest)
        .await
        .unwrap();
    assert_eq!(store.stat(&digest).await.unwrap(), Some(data.len() as u64));
    let whole = collect(store.read(&digest, 0, data.len() as u64).await.unwrap()).await;
    assert!(whole == data, "the blob reads back as uploaded");
    for (start, end) in [
        (0, 10),
        ((1 << 20) - 5, (1 << 20) + 5),
        ((13 << 20) - 1, data.len()),
    ] {
        let got = collect(store.read(&digest, start as u64, end as u64).await.unwrap()).await;
        assert_eq!(got, &data[start..end], "{start}..{end}");
    }
}

/// Batches of chunks (`write_batch`: empty chunks among them, single ones, and batches that
/// cross a multipart store's part size) append in order with single writes, and read back.
pub async fn batches_of_chunks_append_in_order<S: BlobStore>(store: S) {
    let data = Bytes::from(pattern(6 * 1024 * 1024 + 300, 11));
    let mut writer = store.upload_writer("batches", &[], 0).await.unwrap();
    writer
        .write_batch(vec![
            data.slice(..100),
            Bytes::new(),
            data.slice(100..65_536),
        ])
        .await
        .unwrap();
    writer.write(data.slice(65_536..70_000)).await.unwrap();
    writer.write_batch(Vec::new()).await.unwrap();
    writer.write_batch(vec![Bytes::new()]).await.unwrap();
    let big: Vec<Bytes> = (70_000..data.len())
        .step_by(1 << 20)
        .map(|start| data.slice(start..(start + (1 << 20)).min(data.len())))
        .collect();
    writer.write_batch(big).await.unwrap();
    let done = writer.finish().await.unwrap();
    assert_eq!(done.len, data.len() as u64);
    let read = collect(
        store
            .read_upload("batches", &done.state, done.len)
            .await
            .unwrap(),
    )
    .await;
    assert!(read == data, "the batches read back in order");
}

/// Writes `bytes` to new upload `id` in one request that commits it (the writer finishes
/// with [`UploadWriter::finish_to_commit`](berth_core::ports::UploadWriter::finish_to_commit),
/// as a monolithic push's does); returns what it left.
pub async fn write_to_commit(store: &impl BlobStore, id: &str, bytes: &[u8]) -> UploadProgress {
    let pieces: Vec<&[u8]> = bytes.chunks(64 << 10).collect();
    let writer = fill(store, id, &[], 0, &pieces).await;
    writer.finish_to_commit().await.unwrap()
}

/// An upload whole in the request that commits it (empty, small, over an object store's
/// part) is readable under its digest once committed from what its writer left, whether the
/// store wrote the bytes or held them; committed again by another upload, it is stored once.
pub async fn uploads_finished_to_commit_are_committed_whole<S: BlobStore>(store: S) {
    for (n, len) in [0, 5, 1 << 20, 6 << 20].into_iter().enumerate() {
        let data = pattern(len, 30 + n as u8);
        let digest = Digest::sha256(&data);
        for id in [format!("whole-{n}"), format!("again-{n}")] {
            let written = write_to_commit(&store, &id, &data).await;
            assert_eq!(written.len, len as u64);
            store.commit_written(&id, written, &digest).await.unwrap();
            assert_eq!(store.stat(&digest).await.unwrap(), Some(len as u64));
            let read = collect(store.read(&digest, 0, len as u64).await.unwrap()).await;
            assert!(read == data, "{len} bytes read back after `{id}`");
        }
    }
}

/// An upload finished to commit is no blob before its commit; when the commit never comes
/// (its digest did not match), aborting it leaves no blob and no upload to read.
pub async fn uploads_finished_to_commit_and_refused_leave_nothing<S: BlobStore>(store: S) {
    for (n, len) in [5, 6 << 20].into_iter().enumerate() {
        let data = pattern(len, 40 + n as u8);
        let digest = Digest::sha256(&data);
        let id = format!("refused-{n}");
        let written = write_to_commit(&store, &id, &data).await;
        assert_eq!(
            store.stat(&digest).await.unwrap(),
            None,
            "not before its commit"
        );
        store.abort_upload(&id, &written.state).await.unwrap();
        assert!(
            store
                .read_upload(&id, &written.state, len as u64)
                .await
                .is_err(),
            "upload `{id}` is gone"
        );
        drop(written);
        assert_eq!(store.stat(&digest).await.unwrap(), None);
    }
}

/// A commit interrupted after the blob became readable is completed by committing again
/// with the same state (what settling a verified upload after a crash does), for a small
/// upload and for one of several parts.
pub async fn committing_again_after_an_interruption_completes<S: BlobStore>(store: S) {
    for (id, len) in [("small", 1000), ("parts", 12 << 20)] {
        let data = pattern(len, 11);
        let (digest, done) = push(&store, id, &data).await;
        store.commit_upload(id, &done.state, &digest).await.unwrap();
        assert_eq!(store.stat(&digest).await.unwrap(), Some(len as u64));
        let read = collect(store.read(&digest, 0, len as u64).await.unwrap()).await;
        assert!(read == data, "{id} reads back");
    }
}

/// Garbage collection deletes a blob's bytes (small ones and those an object store keeps where
/// their upload wrote them); the same digest pushed again afterwards is stored and read anew.
pub async fn deleted_blobs_are_gone_and_can_be_stored_again<S: BlobStore>(store: S) {
    let small = pattern(3000, 21);
    let large = pattern(9 << 20, 22);
    let (small_digest, _) = push(&store, "small1", &small).await;
    let (large_digest, _) = push(&store, "large1", &large).await;
    for (digest, data) in [(&small_digest, &small), (&large_digest, &large)] {
        assert!(store.delete(digest).await.unwrap());
        assert_eq!(store.stat(digest).await.unwrap(), None);
        let err = match store.read(digest, 0, 1).await {
            Ok(_) => panic!("a deleted blob must not read"),
            Err(err) => err,
        };
        assert_eq!(err.kind(), StoreErrorKind::NotFound);
        assert!(!store.delete(digest).await.unwrap(), "already gone");
        let again = format!("again{}", data.len());
        let (pushed, _) = push(&store, &again, data).await;
        assert_eq!(&pushed, digest);
        let len = data.len() as u64;
        assert_eq!(store.stat(digest).await.unwrap(), Some(len));
        assert_eq!(
            &collect(store.read(digest, 0, len).await.unwrap()).await,
            data
        );
    }
}

/// Listing pages through the stored blobs in digest order, each page `limit` blobs examined,
/// and keeps only those last written before the cut-off.
pub async fn listing_pages_through_old_blobs_in_digest_order<S: BlobStore>(store: S) {
    let mut stored = Vec::new();
    for i in 0..5u8 {
        let (digest, _) = push(
            &store,
            &format!("list{i}"),
            &pattern(100 + usize::from(i), i),
        )
        .await;
        stored.push(digest);
    }
    stored.sort();
    let future = berth_core::ports::now_millis() + 60_000;
    let mut listed = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let (page, next) = store.list_blobs(after.as_ref(), 2, future).await.unwrap();
        assert!(page.len() <= 2);
        listed.extend(page);
        pages += 1;
        match next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, stored);
    assert!(pages >= 3, "two per page: {pages} pages");
    let past = berth_core::ports::now_millis() - 60_000;
    let (page, _) = store.list_blobs(None, 100, past).await.unwrap();
    assert!(page.is_empty(), "none was written before the cut-off");
}
