//! The blob contract ([`berth_core::ports::BlobStore`]): resumable uploads written and read
//! back, commits under a digest, ranges, and what fails.
//!
//! Each clause takes a fresh, empty store; [`blob_contract!`](crate::blob_contract) stamps them
//! per backend. The fixtures are public so a backend's own extras (its on-disk layout) drive
//! the store the same way.

use berth_core::ports::{BlobStore, ByteStream};
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

/// Writes `parts` through one writer opened at `offset`; returns the new length.
pub async fn write_parts(store: &impl BlobStore, id: &str, offset: u64, parts: &[&[u8]]) -> u64 {
    let mut writer = store.upload_writer(id, offset).await.unwrap();
    for part in parts {
        writer.write(Bytes::copy_from_slice(part)).await.unwrap();
    }
    writer.finish().await.unwrap()
}

/// Uploads and commits `bytes`; returns its digest.
pub async fn push(store: &impl BlobStore, id: &str, bytes: &[u8]) -> Digest {
    let len = write_parts(store, id, 0, &[bytes]).await;
    assert_eq!(len, bytes.len() as u64);
    let digest = Digest::sha256(bytes);
    store.commit_upload(id, &digest).await.unwrap();
    digest
}

/// The upload ids a store must refuse (they could name a path outside its uploads).
pub const INVALID_UPLOAD_IDS: [&str; 6] = ["../x", "", "a/b", "..", ".hidden", "x\0y"];

/// Two writers append and read back.
pub async fn two_writers_append_and_read_back<S: BlobStore>(store: S) {
    let data = pattern(3 * 1024 * 1024 + 17, 1);
    let (first, second) = data.split_at(1_500_001);
    let len = write_parts(&store, "up-1", 0, &[&first[..1000], &first[1000..]]).await;
    assert_eq!(len, first.len() as u64);
    let (a, b) = second.split_at(700_000);
    let len = write_parts(&store, "up-1", len, &[a, b, &[]]).await;
    assert_eq!(len, data.len() as u64);
    let read = collect(store.read_upload("up-1", len).await.unwrap()).await;
    assert_eq!(read, data);
    let prefix = collect(store.read_upload("up-1", 10).await.unwrap()).await;
    assert_eq!(prefix, &data[..10]);
}

/// Large upload is flushed while streaming and reads back.
pub async fn large_upload_is_flushed_while_streaming_and_reads_back<S: BlobStore>(store: S) {
    use sha2::Digest as _;
    let base = pattern(1 << 20, 7);
    let mut expected = sha2::Sha256::new();
    let mut writer = store.upload_writer("big", 0).await.unwrap();
    // Past two background flush thresholds.
    for i in 0..70u8 {
        let mut chunk = base.clone();
        chunk[0] = i;
        expected.update(&chunk);
        writer.write(Bytes::from(chunk)).await.unwrap();
    }
    let len = writer.finish().await.unwrap();
    assert_eq!(len, 70 << 20);
    let mut stream = store.read_upload("big", len).await.unwrap();
    let mut actual = sha2::Sha256::new();
    let mut read = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        read += chunk.len() as u64;
        actual.update(&chunk);
    }
    assert_eq!(read, len);
    assert_eq!(actual.finalize(), expected.finalize());
}

/// Writer at smaller offset discards the rest.
pub async fn writer_at_smaller_offset_discards_the_rest<S: BlobStore>(store: S) {
    let data = pattern(200_000, 2);
    write_parts(&store, "u", 0, &[&data]).await;
    // A request that wrote past 100_000 but never completed: resume from 100_000.
    let tail = pattern(5_000, 3);
    let len = write_parts(&store, "u", 100_000, &[&tail]).await;
    assert_eq!(len, 105_000);
    let read = collect(store.read_upload("u", len).await.unwrap()).await;
    assert_eq!(&read[..100_000], &data[..100_000]);
    assert_eq!(&read[100_000..], &tail[..]);
    // Nothing beyond the new length survives either.
    let digest = Digest::sha256(&read);
    store.commit_upload("u", &digest).await.unwrap();
    assert_eq!(store.stat(&digest).await.unwrap(), Some(105_000));
}

/// Dropped writer is cut off by the next.
pub async fn dropped_writer_is_cut_off_by_the_next<S: BlobStore>(store: S) {
    let mut writer = store.upload_writer("d", 0).await.unwrap();
    writer
        .write(Bytes::from(pattern(1 << 20, 4)))
        .await
        .unwrap();
    drop(writer);
    let len = write_parts(&store, "d", 0, &[b"fresh"]).await;
    assert_eq!(len, 5);
    assert_eq!(
        collect(store.read_upload("d", 5).await.unwrap()).await,
        b"fresh"
    );
}

/// Resuming a missing upload fails as not found; resuming past a short one fails.
pub async fn resuming_a_missing_or_short_upload_fails<S: BlobStore>(store: S) {
    let missing = store
        .upload_writer("nope", 10)
        .await
        .err()
        .expect("missing upload");
    assert_eq!(missing.kind(), StoreErrorKind::NotFound, "{missing}");
    write_parts(&store, "short", 0, &[b"abc"]).await;
    assert!(store.upload_writer("short", 4).await.is_err());
}

/// Committed blob is readable by range.
pub async fn committed_blob_is_readable_by_range<S: BlobStore>(store: S) {
    let data = pattern(2 * 1024 * 1024 + 3, 5);
    let digest = Digest::sha256(&data);
    assert_eq!(store.stat(&digest).await.unwrap(), None);
    push(&store, "c", &data).await;
    assert_eq!(store.stat(&digest).await.unwrap(), Some(data.len() as u64));
    let whole = collect(store.read(&digest, 0, data.len() as u64).await.unwrap()).await;
    assert_eq!(whole, data);
    for (start, end) in [(0, 1), (5, 5), (1000, 1_048_577), (1_048_576, 2_097_155)] {
        let got = collect(store.read(&digest, start, end).await.unwrap()).await;
        assert_eq!(got, &data[start as usize..end as usize], "{start}..{end}");
    }
    // The upload is gone once committed.
    assert!(store.read_upload("c", 1).await.is_err());
}

/// Reading past the end is an error not a short stream.
pub async fn reading_past_the_end_is_an_error_not_a_short_stream<S: BlobStore>(store: S) {
    let digest = push(&store, "s", b"short").await;
    // A committed blob's length is checked before the first byte is served.
    // (What error it is, is the backend's: the filesystem's extras check theirs.)
    if store.read(&digest, 2, 100).await.is_ok() {
        panic!("a range past the end must not stream");
    }
    // An upload file read past its end ends the stream with an error, never silently short.
    let mut writer = store.upload_writer("u", 0).await.unwrap();
    writer
        .write(bytes::Bytes::from_static(b"short"))
        .await
        .unwrap();
    writer.finish().await.unwrap();
    let mut stream = store.read_upload("u", 100).await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap(), &b"short"[..]);
    let err = stream.next().await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    assert!(store.read(&digest, 3, 2).await.is_err());
}

/// Committing an existing digest keeps one copy.
pub async fn committing_an_existing_digest_keeps_one_copy<S: BlobStore>(store: S) {
    let data = pattern(4096, 6);
    let digest = push(&store, "one", &data).await;
    push(&store, "two", &data).await;
    assert_eq!(store.stat(&digest).await.unwrap(), Some(4096));
    for id in ["one", "two"] {
        assert_eq!(
            store.upload_len(id).await.unwrap(),
            None,
            "no upload is left"
        );
    }
    let read = collect(store.read(&digest, 0, 4096).await.unwrap()).await;
    assert_eq!(read, data);
}

/// A sha512 digest is a blob's address as a sha256 one is.
pub async fn sha512_blobs_are_committed_under_their_algorithm<S: BlobStore>(store: S) {
    write_parts(&store, "x", 0, &[b"hello"]).await;
    let digest = Digest::of(Algorithm::Sha512, b"hello");
    store.commit_upload("x", &digest).await.unwrap();
    assert_eq!(store.stat(&digest).await.unwrap(), Some(5));
    assert_eq!(store.stat(&Digest::sha256(b"hello")).await.unwrap(), None);
    assert_eq!(
        collect(store.read(&digest, 0, 5).await.unwrap()).await,
        b"hello"
    );
}

/// Abort removes and tolerates missing.
pub async fn abort_removes_and_tolerates_missing<S: BlobStore>(store: S) {
    write_parts(&store, "gone", 0, &[b"bytes"]).await;
    store.abort_upload("gone").await.unwrap();
    assert_eq!(store.upload_len("gone").await.unwrap(), None);
    let err = store.read_upload("gone", 1).await.err().unwrap();
    assert_eq!(err.kind(), StoreErrorKind::NotFound, "{err}");
    store.abort_upload("gone").await.unwrap();
}

/// Invalid upload ids are rejected.
pub async fn invalid_upload_ids_are_rejected<S: BlobStore>(store: S) {
    let digest = Digest::sha256(b"");
    let long = "a".repeat(65);
    for id in INVALID_UPLOAD_IDS.into_iter().chain([long.as_str()]) {
        assert!(store.upload_writer(id, 0).await.is_err(), "{id:?}");
        assert!(store.read_upload(id, 0).await.is_err(), "{id:?}");
        assert!(store.commit_upload(id, &digest).await.is_err(), "{id:?}");
        assert!(store.abort_upload(id).await.is_err(), "{id:?}");
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
    write_parts(&store, "old", 0, &[b"stale bytes"]).await;
    let cutoff = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 1;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    write_parts(&store, "new", 0, &[b"fresh bytes"]).await;
    assert_eq!(store.purge_uploads(cutoff).await.unwrap(), 1);
    assert_eq!(store.upload_len("old").await.unwrap(), None);
    assert_eq!(store.upload_len("new").await.unwrap(), Some(11));
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
