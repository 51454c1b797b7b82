//! The blob store contract, driven through the `BlobStore` port against a temporary directory.

use std::io::ErrorKind;

use berth_blob::FsBlobStore;
use berth_core::ports::{BlobStore, ByteStream};
use berth_core::{Algorithm, Digest, StoreError};
use bytes::Bytes;
use futures_util::StreamExt;

fn store() -> (tempfile::TempDir, FsBlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    (dir, store)
}

/// Deterministic, non-repeating-looking test bytes.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

async fn collect(mut stream: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

/// Writes `parts` through one writer opened at `offset`; returns the new length.
async fn write_parts(store: &FsBlobStore, id: &str, offset: u64, parts: &[&[u8]]) -> u64 {
    let mut writer = store.upload_writer(id, offset).await.unwrap();
    for part in parts {
        writer.write(Bytes::copy_from_slice(part)).await.unwrap();
    }
    writer.finish().await.unwrap()
}

fn io_kind(err: &StoreError) -> Option<ErrorKind> {
    err.source
        .downcast_ref::<std::io::Error>()
        .map(|e| e.kind())
}

/// Uploads and commits `bytes`; returns its digest.
async fn push(store: &FsBlobStore, id: &str, bytes: &[u8]) -> Digest {
    let len = write_parts(store, id, 0, &[bytes]).await;
    assert_eq!(len, bytes.len() as u64);
    let digest = Digest::sha256(bytes);
    store.commit_upload(id, &digest).await.unwrap();
    digest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_append_and_read_back() {
    let (_dir, store) = store();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_upload_is_flushed_while_streaming_and_reads_back() {
    use sha2::Digest as _;
    let (_dir, store) = store();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_at_smaller_offset_discards_the_rest() {
    let (_dir, store) = store();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_writer_is_cut_off_by_the_next() {
    let (_dir, store) = store();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_a_missing_or_short_upload_fails() {
    let (_dir, store) = store();
    let err = store.upload_writer("nope", 10).await.err().unwrap();
    assert_eq!(io_kind(&err), Some(ErrorKind::NotFound));
    write_parts(&store, "short", 0, &[b"abc"]).await;
    assert!(store.upload_writer("short", 4).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_blob_is_readable_by_range() {
    let (_dir, store) = store();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_past_the_end_is_an_error_not_a_short_stream() {
    let (_dir, store) = store();
    let digest = push(&store, "s", b"short").await;
    // A committed blob's length is checked before the first byte is served.
    let err = match store.read(&digest, 2, 100).await {
        Ok(_) => panic!("a range past the end must not stream"),
        Err(err) => err,
    };
    let io = err
        .source
        .downcast_ref::<std::io::Error>()
        .expect("io error");
    assert_eq!(io.kind(), ErrorKind::UnexpectedEof);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committing_an_existing_digest_keeps_one_copy() {
    let (dir, store) = store();
    let data = pattern(4096, 6);
    let digest = push(&store, "one", &data).await;
    push(&store, "two", &data).await;
    let shard = dir.path().join("blobs/sha256").join(&digest.hex()[..2]);
    assert_eq!(std::fs::read_dir(&shard).unwrap().count(), 1);
    assert_eq!(
        std::fs::read_dir(dir.path().join("uploads"))
            .unwrap()
            .count(),
        0
    );
    let read = collect(store.read(&digest, 0, 4096).await.unwrap()).await;
    assert_eq!(read, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha512_blobs_live_under_their_algorithm() {
    let (dir, store) = store();
    write_parts(&store, "x", 0, &[b"hello"]).await;
    let digest = Digest::of(Algorithm::Sha512, b"hello");
    store.commit_upload("x", &digest).await.unwrap();
    assert!(
        dir.path()
            .join("blobs/sha512")
            .join(&digest.hex()[..2])
            .join(digest.hex())
            .is_file()
    );
    assert_eq!(store.stat(&digest).await.unwrap(), Some(5));
}

#[tokio::test]
async fn abort_removes_and_tolerates_missing() {
    let (dir, store) = store();
    write_parts(&store, "gone", 0, &[b"bytes"]).await;
    store.abort_upload("gone").await.unwrap();
    assert!(!dir.path().join("uploads/gone").exists());
    let err = store.read_upload("gone", 1).await.err().unwrap();
    assert_eq!(io_kind(&err), Some(ErrorKind::NotFound));
    store.abort_upload("gone").await.unwrap();
}

#[tokio::test]
async fn invalid_upload_ids_are_rejected() {
    let (dir, store) = store();
    let digest = Digest::sha256(b"");
    let long = "a".repeat(65);
    for id in ["../x", "", "a/b", "..", ".hidden", "x\0y", long.as_str()] {
        assert!(store.upload_writer(id, 0).await.is_err(), "{id:?}");
        assert!(store.read_upload(id, 0).await.is_err(), "{id:?}");
        assert!(store.commit_upload(id, &digest).await.is_err(), "{id:?}");
        assert!(store.abort_upload(id).await.is_err(), "{id:?}");
    }
    assert!(!dir.path().join("x").exists());
}

#[tokio::test]
async fn missing_blob_is_not_found() {
    let (_dir, store) = store();
    let digest = Digest::sha256(b"never pushed");
    let err = store.read(&digest, 0, 10).await.err().unwrap();
    assert_eq!(io_kind(&err), Some(ErrorKind::NotFound));
    assert_eq!(store.stat(&digest).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purging_removes_only_uploads_older_than_the_cutoff() {
    let (dir, store) = store();
    write_parts(&store, "old", 0, &[b"stale bytes"]).await;
    let cutoff = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 1;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    write_parts(&store, "new", 0, &[b"fresh bytes"]).await;
    assert_eq!(store.purge_uploads(cutoff).await.unwrap(), 1);
    let uploads = dir.path().join("uploads");
    assert!(!uploads.join("old").exists());
    assert!(uploads.join("new").exists());
    assert_eq!(
        store.purge_uploads(0).await.unwrap(),
        0,
        "nothing is older than the epoch"
    );
}
