//! A hostile network: stalled and numerous connections, slow bodies and readers, failed
//! logins from a shared address, forged forwarding and `Host` headers. Every test talks to the
//! real server over TCP.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::{Server, anonymous_client, client, client_with_token, digest, start_upload};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Connects to `server` from local address `from` (any of 127.0.0.0/8).
async fn connect_from(server: &Server, from: &str) -> TcpStream {
    let addr: SocketAddr = server.host.parse().unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Whether the server closes `tcp` within `within` (EOF or reset; bytes it sends first are
/// skipped).
async fn closed_within(tcp: &mut TcpStream, within: Duration) -> bool {
    let mut buf = vec![0u8; 64 << 10];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Reads one response (head and `Content-Length` body) from `tcp`: its status and head.
async fn read_response(tcp: &mut TcpStream) -> (u16, String) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed before a response");
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed inside a body");
        data.extend_from_slice(&buf[..n]);
    }
    let status = head[9..12].parse().unwrap();
    (status, head)
}

fn get_base(server: &Server) -> String {
    format!("GET /v2/ HTTP/1.1\r\nHost: {}\r\n\r\n", server.host)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_head_that_stalls_is_closed_after_the_header_timeout() {
    let server = Server::start_with(&[("BERTH_HEADER_READ_TIMEOUT_SECS", "1")]);
    let mut silent = TcpStream::connect(&server.host).await.unwrap();
    let mut partial = TcpStream::connect(&server.host).await.unwrap();
    partial.write_all(b"GET /v2/ HTTP/1.1\r\nHo").await.unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(4)).await);
    assert!(closed_within(&mut partial, Duration::from_secs(4)).await);
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_alive_connection_may_idle_for_the_idle_timeout_then_is_closed() {
    let server = Server::start_with(&[
        ("BERTH_HEADER_READ_TIMEOUT_SECS", "1"),
        ("BERTH_IDLE_TIMEOUT_SECS", "3"),
    ]);
    let mut tcp = TcpStream::connect(&server.host).await.unwrap();
    tcp.write_all(get_base(&server).as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut tcp).await.0, 401);
    // Longer than the header timeout: idling between requests has its own, longer limit.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    tcp.write_all(get_base(&server).as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut tcp).await.0, 401);
    let idle = Instant::now();
    assert!(closed_within(&mut tcp, Duration::from_secs(6)).await);
    assert!(
        idle.elapsed() >= Duration::from_millis(2500),
        "closed before the idle timeout"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_upload_body_frees_its_connection_and_the_upload_resumes() {
    let server = Server::start_with(&[("BERTH_BODY_READ_TIMEOUT_SECS", "1")]);
    let location = start_upload(&server, "acme/stall").await;
    let blob = vec![5u8; 300_000];
    let mut tcp = crate::common::begin_raw_patch(&server, &location, blob.len()).await;
    tcp.write_all(&blob[..100_000]).await.unwrap();
    assert!(
        closed_within(&mut tcp, Duration::from_secs(5)).await,
        "a body that stalls must free its connection"
    );

    // The session is still there and takes the whole blob.
    let status = client().get(&location).send().await.unwrap();
    assert_eq!(status.status(), 204);
    let d = digest(&blob);
    let done = client()
        .put(format!(
            "{location}{}digest={d}",
            if location.contains('?') { "&" } else { "?" }
        ))
        .body(blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 201, "{}", done.text().await.unwrap());
    let got = client()
        .get(server.url(&format!("/v2/acme/stall/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().len(), blob.len());
}

/// A request that announces its length has room on disk reserved ahead of its bytes, never
/// more than 8 MiB (`berth_blob::RESERVE_AHEAD`) past what it sent, and gives back what it
/// did not fill when it ends early: a client that announces a large body and stalls holds no
/// more disk than it sent once its request is over.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_upload_holds_disk_only_ahead_of_its_bytes_and_gives_the_rest_back() {
    const MIB: u64 = 1 << 20;
    let env = vec![("BERTH_BODY_READ_TIMEOUT_SECS".to_owned(), "1".to_owned())];
    // The filesystem store's: the test looks at its files.
    let server = Server::start_node(crate::common::Stores::default(), env, None);
    let disk = berth_testkit::inspect::FsInspector::new(server.data_dir());
    let location = start_upload(&server, "acme/reserve").await;
    let mut tcp = crate::common::begin_raw_patch(&server, &location, 64 << 20).await;
    let sent = 12 * MIB;
    tcp.write_all(&vec![9u8; sent as usize]).await.unwrap();
    let on_disk = |until: fn(u64, u64) -> bool| {
        let disk = disk.clone();
        let server = &server;
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let ids = server.blobs().uploads_held().await;
                if let [id] = &ids[..]
                    && let Some((len, used)) = disk.upload_on_disk(id)
                    && until(len, used)
                {
                    return (len, used);
                }
                assert!(Instant::now() < deadline, "uploads held: {ids:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let (len, used) = on_disk(|len, _| len == 12 * MIB).await;
    assert!(
        used >= len + 4 * MIB && used <= len + 9 * MIB,
        "{len} bytes written take {used} on disk: room is reserved ahead, at most 8 MiB"
    );
    assert!(
        closed_within(&mut tcp, Duration::from_secs(5)).await,
        "the stalled body ends its request"
    );
    let (len, used) = on_disk(|len, used| used <= len + MIB / 16).await;
    assert_eq!(len, sent, "the bytes sent stay, for the upload to resume");
    assert!(used >= len, "{used}");
}

/// Upload bodies are gathered into batches of 512 KiB, each holding room in an 8 MiB budget
/// every upload shares until its bytes are on disk. Forty uploads that send part of a batch
/// and then stall would hold more than the whole budget if a batch waited to be filled; they
/// are handed on after 50 ms instead, so another client's push goes through while they hang
/// (and long before their 30 s body timeout).
#[tokio::test(flavor = "multi_thread")]
async fn uploads_that_stall_part_way_do_not_hold_up_other_pushes() {
    let server = Server::start();
    let mut stalled = Vec::new();
    for _ in 0..40 {
        let location = start_upload(&server, "acme/stalls").await;
        let mut tcp = crate::common::begin_raw_patch(&server, &location, 1 << 20).await;
        tcp.write_all(&[3u8; 200_000]).await.unwrap();
        stalled.push(tcp);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let blob: Vec<u8> = (0..24u32 << 20).map(|i| (i % 251) as u8).collect();
    let pushed = tokio::time::timeout(
        Duration::from_secs(15),
        crate::common::push_blob(&server, "acme/other", blob.clone()),
    )
    .await
    .expect("a push must not wait for stalled uploads to time out");
    let got = client()
        .get(server.url(&format!("/v2/acme/other/blobs/{pushed}")))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap(), blob);
    // The stalled uploads were only paused: still open, nothing answered yet.
    for tcp in &mut stalled {
        let mut byte = [0u8; 1];
        assert!(
            tokio::time::timeout(Duration::from_millis(10), tcp.read(&mut byte))
                .await
                .is_err(),
            "a stalled upload was answered or closed before its body timeout"
        );
    }
}

/// A body sent as thousands of tiny chunks, some arriving together and some alone, is handed
/// on in short batches of frames (a batch holds at most 8, each keeping its read buffer
/// alive) and is stored whole and in order. The memory bound itself is asserted by the unit
/// tests in `core/src/registry/uploads.rs`.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_of_tiny_chunks_is_stored_whole_and_in_order() {
    let server = Server::start();
    let blob: Vec<u8> = (0..60_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let pieces: Vec<bytes::Bytes> = blob.chunks(13).map(bytes::Bytes::copy_from_slice).collect();
    let body = reqwest::Body::wrap_stream(futures_util::StreamExt::then(
        futures_util::stream::iter(pieces.into_iter().enumerate()),
        |(i, piece)| async move {
            if i % 500 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Ok::<_, std::io::Error>(piece)
        },
    ));
    let d = digest(&blob);
    let location = start_upload(&server, "acme/tiny").await;
    let done = client()
        .put(format!(
            "{location}{}digest={d}",
            if location.contains('?') { "&" } else { "?" }
        ))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 201, "{}", done.text().await.unwrap());
    let got = client()
        .get(server.url(&format!("/v2/acme/tiny/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert!(
        got.bytes().await.unwrap() == blob,
        "the blob reads back as sent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_response_the_client_does_not_read_is_abandoned() {
    let server = Server::start_with(&[("BERTH_SEND_TIMEOUT_SECS", "1")]);
    let blob = vec![9u8; 64 << 20];
    let d = crate::common::push_blob(&server, "acme/slowreader", blob).await;
    let mut tcp = TcpStream::connect(&server.host).await.unwrap();
    let head = format!(
        "GET /v2/acme/slowreader/blobs/{d} HTTP/1.1\r\nHost: {}\r\n\r\n",
        server.host
    );
    tcp.write_all(crate::common::with_auth(&head).as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut buf = vec![0u8; 1 << 20];
    let mut received = tcp.read(&mut buf).await.unwrap();
    assert!(
        buf[..received].starts_with(b"HTTP/1.1 200"),
        "the blob was being served: {:?}",
        String::from_utf8_lossy(&buf[..received.min(64)])
    );
    loop {
        match tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received += n,
            Err(_) => panic!("the server kept a connection nobody reads"),
        }
    }
    assert!(
        received < 64 << 20,
        "the server gave up on a reader that took nothing for the send timeout"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_over_the_per_address_cap_are_answered_429_at_once() {
    let server = Server::start_with(&[("BERTH_MAX_CONNECTIONS_PER_ADDRESS", "4")]);
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut tcp = connect_from(&server, "127.0.0.2").await;
        tcp.write_all(b"GET /v2/ HTTP/1.1\r\n").await.unwrap();
        held.push(tcp);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut over = connect_from(&server, "127.0.0.2").await;
    over.write_all(get_base(&server).as_bytes()).await.unwrap();
    let started = Instant::now();
    let (status, head) = tokio::time::timeout(Duration::from_secs(2), read_response(&mut over))
        .await
        .expect("answered at once");
    assert_eq!(status, 429, "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after"));
    assert!(started.elapsed() < Duration::from_secs(2));
    // Another address is served.
    let ok = client().get(server.url("/v2/")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    // A slot freed is a slot usable again.
    held.pop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = connect_from(&server, "127.0.0.2").await;
    again.write_all(get_base(&server).as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut again).await.0, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_over_the_total_cap_are_answered_503() {
    let server = Server::start_with(&[("BERTH_MAX_CONNECTIONS", "3")]);
    let mut held = Vec::new();
    for from in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        let mut tcp = connect_from(&server, from).await;
        tcp.write_all(b"GET /v2/ HTTP/1.1\r\n").await.unwrap();
        held.push(tcp);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut over = connect_from(&server, "127.0.0.5").await;
    over.write_all(get_base(&server).as_bytes()).await.unwrap();
    let (status, _) = tokio::time::timeout(Duration::from_secs(2), read_response(&mut over))
        .await
        .expect("answered at once");
    assert_eq!(status, 503);
}

/// The finding: about 1,100 unfinished requests exhausted a process's 1,024 descriptors and
/// the server stopped answering everyone. With the per-address cap, the stalled connections
/// of one address hold a bounded number of descriptors and another client is served.
#[tokio::test(flavor = "multi_thread")]
async fn stalled_connections_from_one_address_do_not_exhaust_descriptors() {
    rlimit::increase_nofile_limit(4096).unwrap();
    // Default settings: the stalled connections are held well within the header timeout.
    let server = Server::start();
    let pid = server.pid().to_string();
    let status = std::process::Command::new("prlimit")
        .args(["--pid", &pid, "--nofile=1024:1024"])
        .status()
        .expect("prlimit (util-linux)");
    assert!(status.success());
    let mut held = Vec::new();
    for _ in 0..1100 {
        let mut tcp = connect_from(&server, "127.0.0.2").await;
        let _ = tcp.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n").await;
        held.push(tcp);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let ok = tokio::time::timeout(
        Duration::from_secs(5),
        client().get(server.url("/v2/")).send(),
    )
    .await
    .expect("the server still answers")
    .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(held);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_token_passes_after_failed_logins_from_its_address() {
    let server = Server::start_with(&[("BERTH_AUTH_FAILURES_PER_MINUTE", "5")]);
    let bad = client_with_token("ghp_notavalidtokenatallnotatall0000000000");
    let mut last = 0;
    for _ in 0..6 {
        last = bad
            .get(server.url("/v2/"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
    }
    assert_eq!(last, 429, "failures past the limit are refused");
    let ok = client().get(server.url("/v2/")).send().await.unwrap();
    assert_eq!(ok.status(), 200, "a valid credential always passes");
    let api = client()
        .get(server.url("/api/v3/user"))
        .send()
        .await
        .unwrap();
    let api = crate::common::schema::judged("GET", "/user", api).await;
    assert_eq!(api.status(), 200);
    let again = bad.get(server.url("/v2/")).send().await.unwrap();
    assert_eq!(again.status(), 429);
}

async fn failing_login_from(server: &Server, forwarded_for: &str) -> u16 {
    client_with_token("ghp_notavalidtokenatallnotatall0000000000")
        .get(server.url("/v2/"))
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_trusted_proxy_each_client_has_its_own_failure_count() {
    let server = Server::start_with(&[
        ("BERTH_AUTH_FAILURES_PER_MINUTE", "3"),
        ("BERTH_TRUSTED_PROXIES", "127.0.0.1"),
    ]);
    for _ in 0..3 {
        assert_eq!(failing_login_from(&server, "203.0.113.1").await, 401);
    }
    assert_eq!(failing_login_from(&server, "203.0.113.1").await, 429);
    assert_eq!(
        failing_login_from(&server, "203.0.113.2").await,
        401,
        "another client behind the same proxy is not limited"
    );
    // A client cannot escape its count by prepending an address: the nearest untrusted hop
    // is the client.
    assert_eq!(
        failing_login_from(&server, "198.51.100.7, 203.0.113.1").await,
        429
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let server = Server::start_with(&[("BERTH_AUTH_FAILURES_PER_MINUTE", "3")]);
    for i in 0..3 {
        assert_eq!(
            failing_login_from(&server, &format!("203.0.113.{i}")).await,
            401
        );
    }
    assert_eq!(failing_login_from(&server, "203.0.113.99").await, 429);
}

fn realm(response: &reqwest::Response) -> String {
    let challenge = crate::common::header(response, "www-authenticate");
    challenge
        .split("realm=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_challenge_realm_never_comes_from_an_unchecked_host_header() {
    let server = Server::start();
    let forged = anonymous_client()
        .get(server.url("/v2/"))
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(realm(&forged), server.url("/token"));
    let port = server.host.rsplit(':').next().unwrap();
    let localhost = anonymous_client()
        .get(server.url("/v2/"))
        .header("host", format!("localhost:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(realm(&localhost), format!("http://localhost:{port}/token"));
}

#[tokio::test(flavor = "multi_thread")]
async fn external_url_and_trusted_proxies_give_the_urls() {
    let server = Server::start_with(&[("BERTH_TRUSTED_PROXIES", "127.0.0.0/8")]);
    let proxied = anonymous_client()
        .get(server.url("/v2/"))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "registry.example")
        .send()
        .await
        .unwrap();
    assert_eq!(realm(&proxied), "https://registry.example/token");
    let rfc7239 = anonymous_client()
        .get(server.url("/v2/"))
        .header(
            "forwarded",
            "for=203.0.113.1;proto=https;host=r2.example:8443",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(realm(&rfc7239), "https://r2.example:8443/token");

    let fixed = Server::start_with(&[("BERTH_EXTERNAL_URL", "https://fixed.example/")]);
    let response = anonymous_client()
        .get(fixed.url("/v2/"))
        .header("x-forwarded-host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(realm(&response), "https://fixed.example/token");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_may_have_only_so_many_uploads_open() {
    let server = Server::start_with(&[("BERTH_MAX_UPLOADS_PER_ACCOUNT", "3")]);
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(start_upload(&server, "acme/many").await);
    }
    let over = client()
        .post(server.url("/v2/acme/other/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let message = crate::common::expect_error(over, 429, "TOOMANYREQUESTS").await;
    assert!(message.contains("cancel"), "{message}");
    // Another account is not affected.
    start_upload(&server, &format!("{}/mine", crate::common::ADMIN)).await;
    // Cancelling one makes room.
    let cancelled = client().delete(open.pop().unwrap()).send().await.unwrap();
    assert_eq!(cancelled.status(), 204);
    start_upload(&server, "acme/many").await;
}

async fn patch_status(location: &str, bytes: usize) -> reqwest::Response {
    client()
        .patch(location)
        .header("content-type", "application/octet-stream")
        .body(vec![1u8; bytes])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bytes_of_an_accounts_open_uploads_are_capped() {
    let server = Server::start_with(&[("BERTH_MAX_UPLOAD_BYTES_PER_ACCOUNT", "1000000")]);
    let first = start_upload(&server, "acme/big").await;
    let second = start_upload(&server, "acme/big").await;
    assert_eq!(patch_status(&first, 600_000).await.status(), 202);
    let over = patch_status(&second, 600_000).await;
    let message = crate::common::expect_error(over, 403, "DENIED").await;
    assert!(message.contains("acme"), "{message}");
    // Nothing of the refused request was kept; what fits still goes in.
    let status = client().get(&second).send().await.unwrap();
    assert_eq!(crate::common::header(&status, "range"), "0-0");
    assert_eq!(patch_status(&second, 300_000).await.status(), 202);
    // Another account has its own allowance.
    let mine = start_upload(&server, &format!("{}/mine", crate::common::ADMIN)).await;
    assert_eq!(patch_status(&mine, 900_000).await.status(), 202);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_that_never_received_a_byte_expires_sooner() {
    let server = Server::start_with(&[
        ("BERTH_UPLOAD_EMPTY_TTL_SECS", "1"),
        ("BERTH_UPLOAD_PURGE_INTERVAL_SECS", "1"),
    ]);
    let empty = start_upload(&server, "acme/idle").await;
    let used = start_upload(&server, "acme/idle").await;
    assert_eq!(patch_status(&used, 1000).await.status(), 202);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let gone = client().get(&empty).send().await.unwrap();
    assert_eq!(
        gone.status(),
        404,
        "an empty session expires after its shorter TTL"
    );
    let kept = client().get(&used).send().await.unwrap();
    assert_eq!(
        kept.status(),
        204,
        "a session with bytes keeps the long TTL"
    );
}

/// The app-secret exchange is a login too: past the failure limit a wrong secret is refused
/// with 429, the right one still gets its installation token.
#[tokio::test(flavor = "multi_thread")]
async fn a_valid_app_secret_passes_after_failed_exchanges_from_its_address() {
    let server = Server::start_with(&[("BERTH_AUTH_FAILURES_PER_MINUTE", "3")]);
    let admin = |method: reqwest::Method, path: &str, body: serde_json::Value| {
        client()
            .request(method, server.url(&format!("/api/v3{path}")))
            .json(&body)
            .send()
    };
    let app: serde_json::Value = admin(
        reqwest::Method::POST,
        "/apps",
        serde_json::json!({ "slug": "scanner" }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let secret = app["client_secret"].as_str().unwrap().to_owned();
    let installation: serde_json::Value = admin(
        reqwest::Method::POST,
        "/apps/scanner/installations",
        serde_json::json!({ "account": "acme", "permissions": { "packages": "read" } }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let exchange = server.url(&format!(
        "/api/v3/app/installations/{}/access_tokens",
        installation["id"].as_i64().unwrap()
    ));
    let attempt = |secret: String| {
        anonymous_client()
            .post(&exchange)
            .header("authorization", format!("Bearer {secret}"))
            .send()
    };
    let wrong = "berthc_notthesecretnotthesecretnotthesecret00".to_owned();
    let mut last = 0;
    for _ in 0..4 {
        last = attempt(wrong.clone()).await.unwrap().status().as_u16();
    }
    assert_eq!(last, 429, "failures past the limit are refused");
    assert_eq!(attempt(secret).await.unwrap().status(), 201);
}
