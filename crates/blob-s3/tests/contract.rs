//! The blob contract (`berth_testkit::blobs`) on the test Garage cluster (three nodes,
//! replication 3), each clause under a key prefix of its own; and what only the S3 store has:
//! where its objects go, presigned URLs, and the errors its settings get.

use berth_blob_s3::{OpenError, S3BlobStore, S3Settings};
use berth_core::Digest;
use berth_core::ports::BlobStore;
use berth_testkit::blobs::{collect, pattern, push, write_parts};
use berth_testkit::inspect::{BlobInspector, S3Inspector};
use berth_testkit::services::s3_service;

fn settings(prefix: &str) -> S3Settings {
    let s3 = s3_service();
    S3Settings {
        bucket: s3.bucket,
        prefix: prefix.to_owned(),
        endpoint: Some(s3.endpoint),
        region: s3.region,
        access_key_id: s3.key_id,
        secret_access_key: s3.secret,
        upload_memory: berth_blob_s3::DEFAULT_UPLOAD_MEMORY,
    }
}

/// A store under a fresh prefix of the shared test bucket.
async fn store() -> S3BlobStore {
    let prefix = format!("contract-{}", uuid::Uuid::new_v4().simple());
    S3BlobStore::open(&settings(&prefix)).await.unwrap()
}

/// [`store`] as the contract's stamp takes it (nothing to keep beside the store).
async fn open() -> ((), S3BlobStore) {
    ((), store().await)
}

berth_testkit::blob_contract!(s3, open);

/// An S3 client of the test bucket with none of the store's settings (no prefix, bodies
/// signed, no checksums): what another program, or an earlier Berth, does to the bucket.
fn plain_client() -> object_store::aws::AmazonS3 {
    let s3 = s3_service();
    object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(s3.bucket)
        .with_region(s3.region)
        .with_endpoint(s3.endpoint)
        .with_access_key_id(s3.key_id)
        .with_secret_access_key(s3.secret)
        .with_allow_http(true)
        .build()
        .unwrap()
}

/// A client with the same credentials but no prefix, to look at the objects themselves.
async fn raw_get(url: &str) -> (u16, Vec<u8>) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_blob_is_read_where_its_upload_wrote_it_and_served_by_presigned_urls() {
    let store = store().await;
    let data = pattern(9 << 20, 3);
    let (digest, _) = push(&store, "large", &data).await;
    // The store's Debug names where it is, never the secret.
    let shown = format!("{store:?}");
    assert!(shown.contains("contract-"), "{shown}");
    assert!(!shown.contains(&s3_service().secret), "{shown}");
    let url = store
        .presigned_url(&digest, std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .expect("S3 presigns");
    assert!(
        url.contains("/data/large"),
        "large blobs are served from their upload's object: {url}"
    );
    let (status, body) = raw_get(&url).await;
    assert_eq!(status, 200);
    assert!(body == data, "the presigned URL serves the blob");
    // A small blob is its own object.
    let (small, _) = push(&store, "small", b"tiny").await;
    let url = store
        .presigned_url(&small, std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert!(
        url.contains(&format!("/blobs/sha256/{}", small.hex())),
        "{url}"
    );
    assert_eq!(raw_get(&url).await, (200, b"tiny".to_vec()));
    let missing = Digest::sha256(b"never pushed");
    assert_eq!(
        store
            .presigned_url(&missing, std::time::Duration::from_secs(60))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_goes_on_with_an_upload_and_reads_its_blob() {
    let prefix = format!("nodes-{}", uuid::Uuid::new_v4().simple());
    let one = S3BlobStore::open(&settings(&prefix)).await.unwrap();
    let two = S3BlobStore::open(&settings(&prefix)).await.unwrap();
    let data = pattern(11 << 20, 5);
    let first = write_parts(&one, "shared", &[], 0, &[&data[..6 << 20]]).await;
    // Its multipart upload was opened for checksums, and its state says so.
    let recorded: serde_json::Value = serde_json::from_slice(&first.state).unwrap();
    assert_eq!(recorded["checksummed"], true, "{recorded}");
    let second = write_parts(&two, "shared", &first.state, first.len, &[&data[6 << 20..]]).await;
    assert_eq!(second.len, data.len() as u64);
    let digest = Digest::sha256(&data);
    one.commit_upload("shared", &second.state, &digest)
        .await
        .unwrap();
    // Node two never saw the commit: it finds the blob in the bucket.
    assert_eq!(two.stat(&digest).await.unwrap(), Some(data.len() as u64));
    let read = collect(two.read(&digest, 0, data.len() as u64).await.unwrap()).await;
    assert!(read == data);
}

/// Staged pieces folded into a part outlive the request that folded them (until its state is
/// recorded, the recorded one names them); they go when the upload is committed or aborted,
/// not days later when purged by age.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_pieces_folded_into_parts_go_when_the_upload_ends() {
    let prefix = format!("folded-{}", uuid::Uuid::new_v4().simple());
    let store = S3BlobStore::open(&settings(&prefix)).await.unwrap();
    let inspector = S3Inspector::new(&s3_service(), &prefix);
    let data = pattern(7 << 20, 9);
    // Staged, staged, then a request whose bytes and the staged ones make a part; staged tail.
    let cuts = [0, 1 << 20, 4 << 20, 6 << 20, data.len()];
    for (id, commit) in [("committed", true), ("aborted", false)] {
        let mut progress = write_parts(&store, id, &[], 0, &[&data[..cuts[1]]]).await;
        for window in cuts[1..].windows(2) {
            progress = write_parts(
                &store,
                id,
                &progress.state,
                progress.len,
                &[&data[window[0]..window[1]]],
            )
            .await;
        }
        assert_eq!(progress.len, data.len() as u64);
        if commit {
            let digest = Digest::sha256(&data);
            store
                .commit_upload(id, &progress.state, &digest)
                .await
                .unwrap();
            assert!(collect(store.read(&digest, 0, progress.len).await.unwrap()).await == data);
        } else {
            store.abort_upload(id, &progress.state).await.unwrap();
        }
        assert_eq!(
            inspector.uploads_held().await,
            Vec::<String>::new(),
            "nothing of upload `{id}` is left"
        );
    }
}

#[tokio::test]
async fn wrong_credentials_and_unreachable_endpoints_are_named_at_open() {
    let mut wrong = settings("x");
    wrong.secret_access_key = "not-the-secret".into();
    let err = S3BlobStore::open(&wrong).await.unwrap_err();
    assert!(matches!(err, OpenError::Refused { .. }), "{err:?}");
    assert!(err.to_string().contains("s3_secret_access_key"), "{err}");
    assert!(!err.to_string().contains("not-the-secret"), "{err}");
    assert!(!format!("{wrong:?}").contains("not-the-secret"));

    let mut bucket = settings("x");
    bucket.bucket = "no-such-bucket".into();
    let err = S3BlobStore::open(&bucket).await.unwrap_err();
    assert!(err.to_string().contains("no-such-bucket"), "{err}");

    let mut away = settings("x");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    away.endpoint = Some(format!("http://127.0.0.1:{port}"));
    let began = std::time::Instant::now();
    let err = S3BlobStore::open(&away).await.unwrap_err();
    assert!(matches!(err, OpenError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("s3_endpoint"), "{err}");
    assert!(
        began.elapsed() < std::time::Duration::from_secs(60),
        "gives up in time"
    );

    let mut unset = settings("x");
    unset.access_key_id.clear();
    let err = S3BlobStore::open(&unset).await.unwrap_err();
    assert!(err.to_string().starts_with("s3_access_key_id"), "{err}");
}

/// Upload buffers share the node's upload memory, byte for byte. With room for one part
/// (8 MiB): a second upload's bytes wait while the first holds 7.5 MiB, and go on once the
/// first's request ends; two uploads each short of room both go on (a writer stages its own
/// bytes before it waits, so neither waits for room the other holds); after 30 s without room a
/// write answers unavailable (503) naming the setting. Every blob is whole. An upload memory
/// under one part is refused at open, naming the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_share_the_upload_memory() {
    use berth_core::StoreErrorKind;
    use std::time::Duration;

    let mut small = settings("x");
    small.upload_memory = 4 << 20;
    let err = S3BlobStore::open(&small).await.unwrap_err();
    assert!(err.to_string().starts_with("s3_upload_memory_mib"), "{err}");

    let prefix = format!("room-{}", uuid::Uuid::new_v4().simple());
    let mut one_part = settings(&prefix);
    one_part.upload_memory = 8 << 20;
    let store = S3BlobStore::open(&one_part).await.unwrap();
    let half = (15 << 20) / 2;
    let first = pattern(2 * half, 1);
    let second = pattern(3 << 20, 2);

    let mut a = store.upload_writer("first", &[], 0).await.unwrap();
    a.write(first[..half].to_vec().into()).await.unwrap();
    let mut b = store.upload_writer("second", &[], 0).await.unwrap();
    let waiting = tokio::time::timeout(
        Duration::from_secs(2),
        b.write(second[..1 << 20].to_vec().into()),
    )
    .await;
    assert!(waiting.is_err(), "the second upload waits for room");
    // The first request ends: its bytes go to S3 as a part, and the room comes back.
    let a_done = a.finish().await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        b.write(second[..1 << 20].to_vec().into()),
    )
    .await
    .expect("room comes back when the first request ends")
    .unwrap();
    // The first's next request wants 7.5 MiB while the second holds 1 MiB and wants 2 more:
    // the second stages its 1 MiB rather than wait holding it.
    let mut a = store
        .upload_writer("first", &a_done.state, a_done.len)
        .await
        .unwrap();
    let (a_done, b_wrote) = tokio::time::timeout(Duration::from_secs(25), async {
        tokio::join!(
            async {
                a.write(first[half..].to_vec().into()).await?;
                a.finish().await
            },
            b.write(second[1 << 20..].to_vec().into())
        )
    })
    .await
    .expect("two uploads short of room do not wait for each other");
    let a_done = a_done.unwrap();
    b_wrote.unwrap();
    let b_done = b.finish().await.unwrap();

    // A third holds 7 MiB; a fourth's 2 MiB wait, and give up after 30 s with an error that
    // says what to do.
    let mut c = store.upload_writer("third", &[], 0).await.unwrap();
    c.write(vec![1; 7 << 20].into()).await.unwrap();
    let mut d = store.upload_writer("fourth", &[], 0).await.unwrap();
    let began = std::time::Instant::now();
    let err = d.write(vec![2; 2 << 20].into()).await.unwrap_err();
    assert!(began.elapsed() >= Duration::from_secs(29), "{err}");
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("s3_upload_memory_mib"), "{err}");
    drop(d);
    drop(c);

    for (id, data, done) in [("first", &first, a_done), ("second", &second, b_done)] {
        assert_eq!(done.len, data.len() as u64);
        let digest = Digest::sha256(data);
        store.commit_upload(id, &done.state, &digest).await.unwrap();
        let read = collect(store.read(&digest, 0, done.len).await.unwrap()).await;
        assert!(read == *data, "blob `{id}` is whole");
    }
}

/// A node killed mid-request leaves its multipart upload open (its writer never dropped):
/// the upload purge aborts it once it is older than the cutoff, and leaves younger ones, and
/// multipart uploads outside the store's `data/` area, alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purging_aborts_multipart_uploads_a_killed_node_left_open() {
    use object_store::multipart::MultipartStore as _;

    let prefix = format!("orphans-{}", uuid::Uuid::new_v4().simple());
    let store = S3BlobStore::open(&settings(&prefix)).await.unwrap();
    let inspector = S3Inspector::new(&s3_service(), &prefix);
    let mut killed = store.upload_writer("killed", &[], 0).await.unwrap();
    killed.write(pattern(9 << 20, 4).into()).await.unwrap();
    // The process dies: the writer is never finished nor dropped.
    std::mem::forget(killed);
    // A multipart upload under the prefix but outside `data/`: not the store's.
    let s3 = plain_client();
    let foreign = object_store::path::Path::from(format!("{prefix}/elsewhere/x"));
    let foreign_id = s3.create_multipart(&foreign).await.unwrap();
    assert_eq!(inspector.uploads_held().await, vec!["killed".to_owned()]);

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert_eq!(store.purge_uploads(now - 3_600_000).await.unwrap(), 0);
    assert_eq!(
        inspector.uploads_held().await,
        vec!["killed".to_owned()],
        "an upload started after the cutoff stays"
    );
    assert_eq!(store.purge_uploads(now + 60_000).await.unwrap(), 1);
    assert_eq!(inspector.uploads_held().await, Vec::<String>::new());
    // The foreign one is still open: aborting it succeeds (S3 answers NoSuchUpload to an
    // abort of an upload no longer open).
    s3.abort_multipart(&foreign, &foreign_id).await.unwrap();
}

/// What a [`proxy`] saw of each request it forwarded: `METHOD /path`, then ` (copy)` for a
/// server-side copy.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A loopback proxy to `endpoint` (`http://host:port`); its endpoint, and what it saw. With
/// `corrupt`, it changes one byte in the body of every `PUT` of at least 1 MiB it forwards,
/// as a faulty link or NIC would.
async fn proxy(endpoint: &str, corrupt: bool) -> (String, Seen) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    let upstream = endpoint.trim_start_matches("http://").to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Seen::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let server = tokio::net::TcpStream::connect(&upstream).await?;
                let (client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(
                    async move { tokio::io::copy(&mut server_read, &mut client_write).await },
                );
                let mut requests = BufReader::new(client_read);
                loop {
                    // One request's head, then exactly its body.
                    let mut head = Vec::new();
                    while !head.ends_with(b"\r\n\r\n") {
                        if requests.read_until(b'\n', &mut head).await? == 0 {
                            return Ok::<_, std::io::Error>(());
                        }
                    }
                    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
                    let line = text.lines().next().unwrap_or_default();
                    let request = line.rsplit_once(' ').map_or(line, |(r, _)| r).to_owned();
                    let copy = text.lines().any(|l| l.starts_with("x-amz-copy-source:"));
                    log.lock()
                        .unwrap()
                        .push(format!("{request}{}", if copy { " (copy)" } else { "" }));
                    let length: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    server_write.write_all(&head).await?;
                    let mut body = vec![0; length];
                    requests.read_exact(&mut body).await?;
                    if corrupt && text.starts_with("put ") && length >= 1 << 20 {
                        body[length / 2] ^= 0x01;
                    }
                    server_write.write_all(&body).await?;
                }
            });
        }
    });
    (format!("http://{address}"), seen)
}

/// Bytes changed on their way to the object store are refused by it (the store sends each
/// body's CRC-64/NVME, which the object store checks, since bodies are not signed): the write
/// fails as unavailable, so the client's request is retried, and no blob appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_changed_on_the_way_to_the_object_store_are_refused() {
    use berth_core::StoreErrorKind;

    let prefix = format!("corrupt-{}", uuid::Uuid::new_v4().simple());
    let mut through_proxy = settings(&prefix);
    through_proxy.endpoint = Some(proxy(&s3_service().endpoint, true).await.0);
    let store = S3BlobStore::open(&through_proxy).await.unwrap();
    let inspector = S3Inspector::new(&s3_service(), &prefix);
    // A part (8 MiB, sent as it fills) and a staged piece (2 MiB, sent when the request ends).
    for (id, len) in [("part", 9 << 20), ("staged", 2 << 20)] {
        let data = pattern(len, 7);
        let mut writer = store.upload_writer(id, &[], 0).await.unwrap();
        let written = match writer.write(data.into()).await {
            Ok(()) => writer.finish().await.map(|_| ()),
            Err(err) => Err(err),
        };
        let err = written.expect_err("a changed body is refused");
        assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{id}: {err}");
    }
    assert_eq!(inspector.stored_blobs().await, Vec::<String>::new());
    // The same store's small writes (under 1 MiB, left alone by the proxy) go through.
    let (digest, _) = push(&store, "small", b"unchanged").await;
    assert_eq!(
        collect(store.read(&digest, 0, 9).await.unwrap()).await,
        b"unchanged"
    );
}

/// An upload whose multipart upload an earlier Berth opened, before bodies carried their
/// CRC (no checksum asked for, parts named by ETag in its recorded state), is taken on and
/// committed by this one: the blob is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_opened_before_bodies_carried_checksums_is_finished() {
    use object_store::multipart::MultipartStore as _;

    let prefix = format!("upgrade-{}", uuid::Uuid::new_v4().simple());
    let data = pattern(20 << 20, 11);
    // What the earlier version did: a multipart upload without checksums, one part sent.
    let earlier = plain_client();
    let key = object_store::path::Path::from(format!("{prefix}/data/earlier"));
    let multipart = earlier.create_multipart(&key).await.unwrap();
    let first = earlier
        .put_part(&key, &multipart, 0, data[..8 << 20].to_vec().into())
        .await
        .unwrap();
    let state = serde_json::json!({
        "multipart": multipart,
        "parts": [{"etag": first.content_id, "len": 8 << 20}],
    });
    let state = serde_json::to_vec(&state).unwrap();

    // This version takes the next request (a part of its own and a staged tail) and commits.
    let store = S3BlobStore::open(&settings(&prefix)).await.unwrap();
    let done = write_parts(&store, "earlier", &state, 8 << 20, &[&data[8 << 20..]]).await;
    assert_eq!(done.len, data.len() as u64);
    // Still named an upload opened without checksums: its parts are completed by ETag.
    let recorded: serde_json::Value = serde_json::from_slice(&done.state).unwrap();
    assert_eq!(recorded.get("checksummed"), None, "{recorded}");
    let digest = Digest::sha256(&data);
    store
        .commit_upload("earlier", &done.state, &digest)
        .await
        .unwrap();
    assert!(collect(store.read(&digest, 0, done.len).await.unwrap()).await == data);
}

/// A small upload whole in the request that commits it is held in memory, not staged: the
/// commit writes it under its digest (one object, nothing under `uploads/`), and until then
/// its bytes hold their room in the upload memory. An upload of a part or more is written
/// as it comes, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_upload_whole_in_its_committing_request_is_written_once() {
    use berth_testkit::blobs::write_to_commit;
    use std::time::Duration;

    let prefix = format!("held-{}", uuid::Uuid::new_v4().simple());
    let mut one_part = settings(&prefix);
    one_part.upload_memory = 8 << 20;
    let store = S3BlobStore::open(&one_part).await.unwrap();
    let inspector = S3Inspector::new(&s3_service(), &prefix);

    let data = pattern((9 << 20) / 2, 3);
    let digest = Digest::sha256(&data);
    let written = write_to_commit(&store, "small", &data).await;
    assert!(written.held.is_some(), "{written:?}");
    assert!(written.state.is_empty());
    assert_eq!(inspector.uploads_held().await, Vec::<String>::new());
    // Its 4.5 MiB hold their room: another upload's 4 MiB wait until they are written.
    let mut other = store.upload_writer("other", &[], 0).await.unwrap();
    let waiting =
        tokio::time::timeout(Duration::from_secs(2), other.write(vec![7; 4 << 20].into())).await;
    assert!(waiting.is_err(), "held bytes keep their room");
    store
        .commit_written("small", written, &digest)
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        other.write(vec![7; 4 << 20].into()),
    )
    .await
    .expect("the room comes back once the held bytes are written")
    .unwrap();
    drop(other);
    assert_eq!(inspector.stored_blobs().await, [digest.as_str().to_owned()]);
    assert_eq!(inspector.blob_copies(&digest).await, 1);
    assert!(inspector.blob_bytes(&digest).await == Some(data));
    assert_eq!(inspector.uploads_held().await, Vec::<String>::new());

    let large = pattern(6 << 20, 4);
    let written = write_to_commit(&store, "large", &large).await;
    assert!(written.held.is_none(), "a part or more is not held");
    assert_eq!(inspector.uploads_held().await, ["large"]);
    let big = Digest::sha256(&large);
    store.commit_written("large", written, &big).await.unwrap();
    assert!(collect(store.read(&big, 0, 6 << 20).await.unwrap()).await == large);

    // Refused (its digest did not match): a held upload leaves nothing in the bucket.
    let written = write_to_commit(&store, "refused", b"not what was announced").await;
    assert!(written.held.is_some());
    store.abort_upload("refused", &written.state).await.unwrap();
    drop(written);
    assert_eq!(inspector.uploads_held().await, Vec::<String>::new());
    assert_eq!(inspector.stored_blobs().await.len(), 2);
}

/// A small upload staged by one request and committed by the next (a `PATCH`, then an empty
/// `PUT`) is copied to its digest without a lookup first, then its piece removed: two
/// requests. Committed again after that (a client retrying once the answer was lost), the
/// piece is gone, so the commit looks, finds the blob and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_small_upload_is_committed_without_a_lookup() {
    let prefix = format!("staged-{}", uuid::Uuid::new_v4().simple());
    let mut through_proxy = settings(&prefix);
    let (endpoint, seen) = proxy(&s3_service().endpoint, false).await;
    through_proxy.endpoint = Some(endpoint);
    let store = S3BlobStore::open(&through_proxy).await.unwrap();
    let inspector = S3Inspector::new(&s3_service(), &prefix);

    let data = pattern(100 << 10, 5);
    let digest = Digest::sha256(&data);
    let staged = write_parts(&store, "patched", &[], 0, &[&data]).await;
    assert_eq!(inspector.uploads_held().await, ["patched"]);
    let requests = |seen: &Seen| std::mem::take(&mut *seen.lock().unwrap());
    requests(&seen);
    store
        .commit_upload("patched", &staged.state, &digest)
        .await
        .unwrap();
    let made = requests(&seen);
    let blob = format!("/{prefix}/blobs/");
    assert!(
        matches!(made.as_slice(), [copy, delete]
            if copy.starts_with("put ") && copy.ends_with(" (copy)") && copy.contains(&blob)
                && (delete.starts_with("delete ") || delete.ends_with("?delete"))),
        "{made:?}"
    );
    assert_eq!(inspector.uploads_held().await, Vec::<String>::new());
    assert!(inspector.blob_bytes(&digest).await == Some(data.clone()));

    store
        .commit_upload("patched", &staged.state, &digest)
        .await
        .expect("committed again once its piece is gone, the blob is found");
    let made = requests(&seen);
    assert!(made.iter().any(|r| r.starts_with("head ")), "{made:?}");
    assert_eq!(inspector.blob_copies(&digest).await, 1);
    assert!(collect(store.read(&digest, 0, data.len() as u64).await.unwrap()).await == data);
}
