//! The blob contract (`berth_testkit::blobs`) on a temporary directory per clause, and what
//! only the filesystem store has: its on-disk layout, and the I/O errors under its failures.

use std::io::ErrorKind;
use std::path::Path;

use berth_blob::FsBlobStore;
use berth_core::ports::BlobStore;
use berth_core::{Algorithm, Digest, StoreError};
use berth_testkit::blobs::{INVALID_UPLOAD_IDS, push, write_parts};
use tempfile::TempDir;

/// A fresh store in a temporary directory (kept as long as the store).
async fn open() -> (TempDir, FsBlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    (dir, store)
}

berth_testkit::blob_contract!(fs, open);

fn io_kind(err: &StoreError) -> Option<ErrorKind> {
    err.source
        .downcast_ref::<std::io::Error>()
        .map(|e| e.kind())
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[tokio::test]
async fn failures_carry_the_io_error_underneath() {
    let (_dir, store) = open().await;
    let err = store.upload_writer("nope", &[], 10).await.err().unwrap();
    assert_eq!(io_kind(&err), Some(ErrorKind::NotFound));
    let err = store
        .read(&Digest::sha256(b"never pushed"), 0, 10)
        .await
        .err();
    assert_eq!(io_kind(&err.unwrap()), Some(ErrorKind::NotFound));
    write_parts(&store, "gone", &[], 0, &[b"bytes"]).await;
    store.abort_upload("gone", &[]).await.unwrap();
    let err = store.read_upload("gone", &[], 1).await.err().unwrap();
    assert_eq!(io_kind(&err), Some(ErrorKind::NotFound));
    // A committed blob's length is checked before the first byte is served.
    let (digest, _) = push(&store, "s", b"short").await;
    let err = store.read(&digest, 2, 100).await.err().unwrap();
    let io = err
        .source
        .downcast_ref::<std::io::Error>()
        .expect("io error");
    assert_eq!(io.kind(), ErrorKind::UnexpectedEof);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committing_an_existing_digest_keeps_one_file() {
    let (dir, store) = open().await;
    let data = berth_testkit::blobs::pattern(4096, 6);
    let (digest, _) = push(&store, "one", &data).await;
    push(&store, "two", &data).await;
    let shard = dir.path().join("blobs/sha256").join(&digest.hex()[..2]);
    assert_eq!(entries(&shard), 1);
    assert_eq!(entries(&dir.path().join("uploads")), 0);
}

#[tokio::test]
async fn every_shard_exists_from_the_start_so_commits_create_none() {
    let (dir, store) = open().await;
    for algorithm in ["sha256", "sha512"] {
        let root = dir.path().join("blobs").join(algorithm);
        assert_eq!(entries(&root), 256, "{algorithm} shards");
        for shard in ["00", "7f", "ff"] {
            assert!(root.join(shard).is_dir(), "{algorithm}/{shard}");
        }
    }
    // A commit lands in its shard, which it finds made; opening again is a no-op.
    let (digest, _) = push(&store, "one", b"bytes").await;
    let sha256 = dir.path().join("blobs/sha256");
    assert_eq!(entries(&sha256.join(&digest.hex()[..2])), 1);
    FsBlobStore::open(dir.path()).unwrap();
    assert_eq!(entries(&sha256), 256);
}

#[tokio::test]
async fn sha512_blobs_live_under_their_algorithm() {
    let (dir, store) = open().await;
    write_parts(&store, "x", &[], 0, &[b"hello"]).await;
    let digest = Digest::of(Algorithm::Sha512, b"hello");
    store.commit_upload("x", &[], &digest).await.unwrap();
    assert!(
        dir.path()
            .join("blobs/sha512")
            .join(&digest.hex()[..2])
            .join(digest.hex())
            .is_file()
    );
}

#[tokio::test]
async fn aborting_removes_the_upload_file() {
    let (dir, store) = open().await;
    write_parts(&store, "gone", &[], 0, &[b"bytes"]).await;
    store.abort_upload("gone", &[]).await.unwrap();
    assert!(!dir.path().join("uploads/gone").exists());
}

#[tokio::test]
async fn invalid_upload_ids_write_nothing_outside_the_uploads() {
    let (dir, store) = open().await;
    for id in INVALID_UPLOAD_IDS {
        assert!(store.upload_writer(id, &[], 0).await.is_err(), "{id:?}");
    }
    assert!(!dir.path().join("x").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purging_removes_the_old_upload_files() {
    let (dir, store) = open().await;
    write_parts(&store, "old", &[], 0, &[b"stale bytes"]).await;
    let cutoff = berth_core::ports::now_millis() + 1;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    write_parts(&store, "new", &[], 0, &[b"fresh bytes"]).await;
    assert_eq!(store.purge_uploads(cutoff).await.unwrap(), 1);
    let uploads = dir.path().join("uploads");
    assert!(!uploads.join("old").exists());
    assert!(uploads.join("new").exists());
}

/// The names in `uploads/`.
fn upload_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("uploads"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A small blob pushed whole in the request that commits it is kept in memory until its
/// commit writes it under its digest: no upload file is made, and the commit leaves none
/// behind. Pushed again, it is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_upload_committed_in_its_request_makes_no_upload_file() {
    let (dir, store) = open().await;
    let data = berth_testkit::blobs::pattern(3000, 7);
    let digest = Digest::sha256(&data);
    for id in ["small", "again"] {
        let written = berth_testkit::blobs::write_to_commit(&store, id, &data).await;
        assert!(written.held.is_some(), "the bytes are held");
        assert_eq!(upload_files(dir.path()), Vec::<String>::new());
        store.commit_written(id, written, &digest).await.unwrap();
        assert_eq!(upload_files(dir.path()), Vec::<String>::new());
        let blob = dir
            .path()
            .join("blobs/sha256")
            .join(&digest.hex()[..2])
            .join(digest.hex());
        assert_eq!(std::fs::read(blob).unwrap(), data);
    }
}

/// An upload that grows past what a writer keeps in memory (64 KiB) goes to its file as it
/// streams, and a small one that is not committed in its request (a `PATCH`) is written to
/// its file when it finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_too_large_to_hold_or_not_committing_go_to_their_files() {
    let (dir, store) = open().await;
    let mut writer = store.upload_writer("large", &[], 0).await.unwrap();
    writer
        .write(bytes::Bytes::from(vec![1u8; 40 << 10]))
        .await
        .unwrap();
    assert_eq!(upload_files(dir.path()), Vec::<String>::new());
    writer
        .write(bytes::Bytes::from(vec![2u8; 40 << 10]))
        .await
        .unwrap();
    assert_eq!(upload_files(dir.path()), ["large"], "past 64 KiB");
    let written = writer.finish_to_commit().await.unwrap();
    assert!(written.held.is_none());
    assert_eq!(written.len, 80 << 10);
    assert_eq!(
        std::fs::read(dir.path().join("uploads/large"))
            .unwrap()
            .len(),
        80 << 10
    );
    let done = write_parts(&store, "patch", &[], 0, &[b"a small chunk"]).await;
    assert!(done.held.is_none());
    assert_eq!(
        std::fs::read(dir.path().join("uploads/patch")).unwrap(),
        b"a small chunk"
    );
}

/// Ranges on both sides of 64 KiB (read when opened below it, mapped above) read back the
/// right bytes from any offset; the length check before them refuses a range past the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_and_mapped_ranges_read_the_same_bytes() {
    let (_dir, store) = open().await;
    let data = berth_testkit::blobs::pattern(200 << 10, 9);
    let (digest, _) = push(&store, "ranged", &data).await;
    let ranges = [
        (0, 3000),
        (1234, 1234 + (64 << 10)),
        (1234, 1235 + (64 << 10)),
        (70 << 10, 200 << 10),
        (199 << 10, 200 << 10),
    ];
    for (start, end) in ranges {
        let read =
            berth_testkit::blobs::collect(store.read(&digest, start, end).await.unwrap()).await;
        assert!(read == data[start as usize..end as usize], "{start}..{end}");
    }
    let err = store
        .read(&digest, 199 << 10, 201 << 10)
        .await
        .err()
        .unwrap();
    assert_eq!(io_kind(&err), Some(ErrorKind::UnexpectedEof));
}
