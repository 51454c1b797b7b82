//! TLS: a CA and server certificates made here (rcgen); skopeo and oras-py push and pull over
//! HTTPS verifying them, HTTP/2 by ALPN, URLs that say `https`, the certificate replaced on
//! disk served to the next connection while an earlier one goes on, the plain side listener,
//! and the start-up errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::common::{ADMIN, Server, require, run, temp_path};

/// A test CA and the server's certificate files, signed by it.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    dir: tempfile::TempDir,
}

impl Pki {
    /// A new CA, and a first server certificate (`serial` 1) written out.
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Berth test CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pki = Pki {
            ca,
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(pki.ca_dir()).unwrap();
        std::fs::write(pki.ca_dir().join("ca.crt"), pki.ca.pem()).unwrap();
        pki.issue("berth one", 1);
        pki
    }

    /// A directory holding only `ca.crt` (as containers' `--cert-dir` wants).
    fn ca_dir(&self) -> PathBuf {
        self.dir.path().join("ca")
    }

    fn ca_file(&self) -> PathBuf {
        self.ca_dir().join("ca.crt")
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("server.crt")
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// Issues a server certificate for `localhost` and 127.0.0.1 and puts it and a new key in
    /// place, each by a rename (as a certificate manager would); its DER.
    fn issue(&self, common_name: &str, serial: u64) -> CertificateDer<'static> {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.serial_number = Some(SerialNumber::from(serial));
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        replace(&self.key(), key.serialize_pem().as_bytes());
        replace(&self.cert(), cert.pem().as_bytes());
        cert.der().clone()
    }

    /// The settings that turn TLS on with these files.
    fn env(&self) -> [(&'static str, String); 2] {
        [
            ("BERTH_TLS_CERT", self.cert().display().to_string()),
            ("BERTH_TLS_KEY", self.key().display().to_string()),
        ]
    }

    /// A rustls client trusting only this CA.
    fn connector(&self, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }

    /// A verified TLS connection to `server` (as `localhost`).
    async fn connect(&self, server: &Server, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(&server.host).await.unwrap();
        self.connector(alpn)
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("TLS handshake verifying the test CA")
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn replace(path: &Path, bytes: &[u8]) {
    let temporary = path.with_extension("new");
    std::fs::write(&temporary, bytes).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

fn start(pki: &Pki, extra: &[(&str, &str)]) -> Server {
    let env = pki.env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(extra);
    let server = Server::start_with(&all);
    assert!(server.base.starts_with("https://"), "{}", server.base);
    server
}

/// The certificate the server presents to a new connection.
async fn served_certificate(pki: &Pki, server: &Server) -> CertificateDer<'static> {
    let tls = pki.connect(server, &[b"http/1.1"]).await;
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// Sends `GET /v2/` on an HTTP/1.1 connection and reads the head of the answer.
async fn get_v2(tls: &mut TlsStream<TcpStream>, host: &str) -> String {
    let request = format!("GET /v2/ HTTP/1.1\r\nHost: {host}\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buf[..n]);
    }
    // The challenge's body is small; read what is left of it so the next answer starts clean.
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut have = body.len();
    while have < length {
        have += tls.read(&mut buf).await.unwrap();
    }
    head.to_owned()
}

#[test]
fn skopeo_pushes_and_pulls_over_https_verifying_the_certificate() {
    require("skopeo");
    require("umoci");
    let pki = Pki::new();
    let server = start(&pki, &[]);
    let (_keep, dir) = temp_path();
    let layout = dir.join("src");
    let layout_arg = layout.to_str().unwrap();
    run(Command::new("umoci").args(["init", "--layout", layout_arg]));
    run(Command::new("umoci").args(["new", "--image", &format!("{layout_arg}:v1")]));
    let file = dir.join("payload");
    std::fs::write(
        &file,
        (0..1_500_000u32)
            .map(|b| (b * 7 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    run(Command::new("umoci")
        .args(["insert", "--image", &format!("{layout_arg}:v1")])
        .arg(&file)
        .arg("/payload"));

    let skopeo = || {
        let mut command = Command::new("skopeo");
        command
            .env("REGISTRY_AUTH_FILE", crate::common::auth_file())
            .arg("--insecure-policy");
        command
    };
    let ca_dir = pki.ca_dir();
    let remote = format!("docker://{}/acme/tools/over-tls:v1", server.host);
    // Verification is on: without the CA, skopeo refuses the server.
    let refused = skopeo().args(["inspect", &remote]).output().unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    run(skopeo()
        .args(["copy", "--dest-cert-dir"])
        .arg(&ca_dir)
        .args([&format!("oci:{layout_arg}:v1"), &remote]));
    let out = dir.join("out");
    run(skopeo()
        .args(["copy", "--src-cert-dir"])
        .arg(&ca_dir)
        .args([&remote, &format!("oci:{}:v1", out.display())]));
    assert_eq!(
        manifest_digest(&out),
        manifest_digest(&layout),
        "the manifest pulled is the one pushed"
    );
}

/// The digest of the one manifest an OCI layout's `index.json` lists.
fn manifest_digest(layout: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_owned()
}

#[test]
fn oras_py_pushes_and_pulls_over_https_trusting_the_test_ca() {
    crate::common::require_oras_py();
    let pki = Pki::new();
    let server = start(&pki, &[]);
    let (_keep, dir) = temp_path();
    std::fs::write(dir.join("artifact.bin"), b"an artifact sent over TLS").unwrap();
    let script = r#"
import os, sys
import oras.client
host, ca = sys.argv[1], sys.argv[2]
client = oras.client.OrasClient(hostname=host, tls_verify=ca, auth_backend="basic")
client.auth.set_basic_auth(os.environ["ORAS_USER"], os.environ["ORAS_PASSWORD"])
target = f"{host}/acme/tools/oras-tls:v1"
pushed = client.push(target=target, files=["artifact.bin:application/octet-stream"], quiet=True)
assert pushed.status_code == 201, pushed.status_code
os.makedirs("out")
client.pull(target=target, outdir="out")
print(open("out/artifact.bin", "rb").read().decode())
"#;
    let printed = run(crate::common::python_in(&dir)
        .env("ORAS_USER", ADMIN)
        .env("ORAS_PASSWORD", &server.admin_token)
        .env_remove("REQUESTS_CA_BUNDLE")
        .args(["-c", script, &server.host])
        .arg(pki.ca_file()));
    assert_eq!(printed.trim(), "an artifact sent over TLS");
}

#[test]
fn alpn_offers_http2_and_urls_say_https() {
    require("curl");
    let pki = Pki::new();
    let server = start(&pki, &[]);
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let out = run(Command::new("curl")
            .args(["-sS", flag, "--cacert"])
            .arg(pki.ca_file())
            .args([
                "-D",
                "-",
                "-o",
                "/dev/null",
                "-w",
                "version=%{http_version}",
            ])
            .arg(server.url("/v2/")));
        assert!(out.contains(&format!("version={version}")), "{flag}: {out}");
        assert!(
            out.starts_with(&format!("HTTP/{version} 401")),
            "{flag}: {out}"
        );
        // The challenge names the URL the client used, with its scheme: https.
        let realm = format!("realm=\"{}/token\"", server.base);
        assert!(
            out.to_ascii_lowercase().contains("www-authenticate")
                && out.contains(&realm)
                && server.base.starts_with("https://127.0.0.1:"),
            "{flag}: {out}"
        );
    }
}

#[test]
fn a_blob_goes_up_and_down_over_http2() {
    require("curl");
    let pki = Pki::new();
    let server = start(&pki, &[]);
    let (_keep, dir) = temp_path();
    let bytes: Vec<u8> = (0..3_000_000u32).map(|b| (b * 13 % 241) as u8).collect();
    std::fs::write(dir.join("blob"), &bytes).unwrap();
    let digest = crate::common::digest(&bytes);
    let curl = |args: &[&str]| {
        run(Command::new("curl")
            .args(["-sS", "--http2", "--cacert"])
            .arg(pki.ca_file())
            .args(["-u", &format!("{ADMIN}:{}", server.admin_token)])
            .args(args)
            .current_dir(&dir))
    };
    let pushed = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
        "--data-binary",
        "@blob",
        "-H",
        "content-type: application/octet-stream",
        &server.url(&format!("/v2/acme/tools/h2/blobs/uploads/?digest={digest}")),
    ]);
    assert_eq!(pushed, "2 201");
    let pulled = curl(&[
        "-o",
        "pulled",
        "-w",
        "%{http_version} %{http_code}",
        &server.url(&format!("/v2/acme/tools/h2/blobs/{digest}")),
    ]);
    assert_eq!(pulled, "2 200");
    assert_eq!(std::fs::read(dir.join("pulled")).unwrap(), bytes);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_certificate_is_served_to_the_next_connection() {
    let pki = Pki::new();
    let first = std::fs::read(pki.cert()).unwrap();
    let first = CertificateDer::from_pem_slice(&first).unwrap();
    let server = start(&pki, &[]);
    assert_eq!(served_certificate(&pki, &server).await, first);
    let mut earlier = pki.connect(&server, &[b"http/1.1"]).await;
    assert!(
        get_v2(&mut earlier, &server.host)
            .await
            .starts_with("HTTP/1.1 401")
    );

    // A half-written rotation (a certificate that is not PEM) is refused: the old one stays.
    replace(&pki.cert(), b"not a certificate");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(served_certificate(&pki, &server).await, first);

    let second = pki.issue("berth two", 2);
    assert_ne!(second, first);
    let deadline = Instant::now() + Duration::from_secs(15);
    while served_certificate(&pki, &server).await != second {
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The connection made before the change goes on under its session.
    assert!(
        get_v2(&mut earlier, &server.host)
            .await
            .starts_with("HTTP/1.1 401")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plain_listener_serves_health_and_metrics_only() {
    let pki = Pki::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let plain = format!("127.0.0.1:{port}");
    let _server = start(&pki, &[("BERTH_PLAIN_LISTEN", &plain)]);
    let http = crate::common::anonymous_client();
    let health = http
        .get(format!("http://{plain}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");
    let ready = http
        .get(format!("http://{plain}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = http
        .get(format!("http://{plain}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics.text().await.unwrap().contains("# TYPE"),
        "Prometheus text on the plain listener"
    );
    let registry = http
        .get(format!("http://{plain}/v2/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        registry.status(),
        404,
        "the registry is not on the plain listener"
    );
}

/// Whether the server closes `stream` (end of stream or an error) within `limit`.
async fn closed_within(stream: &mut (impl AsyncReadExt + Unpin), limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_handshake_or_a_silent_tls_connection_is_closed_after_the_header_timeout() {
    let pki = Pki::new();
    let server = start(
        &pki,
        &[
            ("BERTH_HEADER_READ_TIMEOUT_SECS", "1"),
            ("BERTH_IDLE_TIMEOUT_SECS", "30"),
        ],
    );
    let started = Instant::now();
    let mut silent = TcpStream::connect(&server.host).await.unwrap();
    // A TLS record header announcing a ClientHello that never comes.
    let mut partial = TcpStream::connect(&server.host).await.unwrap();
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    // Handshakes done, then nothing: no request head, no HTTP/2 stream.
    let mut h1 = pki.connect(&server, &[b"http/1.1"]).await;
    let mut h2 = pki.connect(&server, &[b"h2"]).await;
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    for (what, closed) in [
        (
            "silent",
            closed_within(&mut silent, Duration::from_secs(4)).await,
        ),
        (
            "partial",
            closed_within(&mut partial, Duration::from_secs(4)).await,
        ),
        (
            "http/1.1",
            closed_within(&mut h1, Duration::from_secs(4)).await,
        ),
        ("h2", closed_within(&mut h2, Duration::from_secs(4)).await),
    ] {
        assert!(closed, "{what} connection still open");
    }
    assert!(started.elapsed() >= Duration::from_millis(900));
}

/// Reads one HTTP/2 frame: (type, flags, stream id).
async fn read_frame(tls: &mut TlsStream<TcpStream>) -> (u8, u8, u32) {
    let mut head = [0u8; 9];
    tls.read_exact(&mut head).await.unwrap();
    let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; length];
    tls.read_exact(&mut payload).await.unwrap();
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    (head[3], head[4], stream)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http2_connection_idles_for_the_idle_timeout_whatever_frames_come_between_requests() {
    let pki = Pki::new();
    let server = start(
        &pki,
        &[
            ("BERTH_HEADER_READ_TIMEOUT_SECS", "1"),
            ("BERTH_IDLE_TIMEOUT_SECS", "4"),
        ],
    );
    let mut h2 = pki.connect(&server, &[b"h2"]).await;
    // The preface, empty SETTINGS, and `GET /v2/` on stream 1 (HPACK: static-table names,
    // literal values without indexing).
    let mut block = vec![0x82, 0x87, 0x04, 0x04];
    block.extend_from_slice(b"/v2/");
    block.extend_from_slice(&[0x01, server.host.len() as u8]);
    block.extend_from_slice(server.host.as_bytes());
    let mut frames = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0".to_vec();
    frames.extend_from_slice(&(block.len() as u32).to_be_bytes()[1..]);
    frames.extend_from_slice(&[0x01, 0x05, 0, 0, 0, 1]);
    frames.extend_from_slice(&block);
    h2.write_all(&frames).await.unwrap();
    // Until the response ends (a frame of stream 1 with END_STREAM).
    loop {
        let (kind, flags, stream) = read_frame(&mut h2).await;
        if stream == 1 && kind <= 1 && flags & 1 == 1 {
            break;
        }
    }
    let answered = Instant::now();
    // Frames between requests (a settings ack, a window update), then quiet for longer than
    // the header timeout: the connection still answers a ping.
    h2.write_all(&[0, 0, 0, 0x04, 0x01, 0, 0, 0, 0])
        .await
        .unwrap();
    h2.write_all(&[0, 0, 4, 0x08, 0, 0, 0, 0, 0, 0, 1, 0, 0])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    h2.write_all(&[0, 0, 8, 0x06, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
        .await
        .unwrap();
    loop {
        let (kind, flags, _) = read_frame(&mut h2).await;
        if kind == 0x06 && flags & 1 == 1 {
            break;
        }
    }
    assert!(closed_within(&mut h2, Duration::from_secs(6)).await);
    assert!(
        answered.elapsed() >= Duration::from_millis(3500),
        "closed before the idle timeout: {:?}",
        answered.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_connection_over_the_cap_is_closed_unanswered() {
    let pki = Pki::new();
    let server = start(&pki, &[("BERTH_MAX_CONNECTIONS_PER_ADDRESS", "1")]);
    let mut first = pki.connect(&server, &[b"http/1.1"]).await;
    let mut over = TcpStream::connect(&server.host).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), over.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection over the cap was not closed");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    assert!(
        get_v2(&mut first, &server.host)
            .await
            .starts_with("HTTP/1.1 401")
    );
}

/// Runs `berth serve` expecting it to refuse to start; its stderr.
fn refused_start(args: &[&str], env: &[(&str, &Path)]) -> String {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .args(args)
        .envs(env.iter().copied())
        .env("BERTH_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("berth serve started: {args:?} {env:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
    stderr
}

#[test]
fn tls_settings_that_cannot_work_stop_the_start_naming_the_problem() {
    let pki = Pki::new();
    let error = refused_start(&[], &[("BERTH_TLS_CERT", &pki.cert())]);
    assert!(error.contains("tls_key"), "{error}");
    let cert = pki.cert().display().to_string();
    let error = refused_start(&["--tls-key", &cert], &[]);
    assert!(error.contains("tls_cert"), "{error}");

    let missing = pki.dir.path().join("missing.crt");
    let error = refused_start(
        &["--tls-cert", missing.to_str().unwrap()],
        &[("BERTH_TLS_KEY", &pki.key())],
    );
    assert!(error.contains(missing.to_str().unwrap()), "{error}");

    let garbage = pki.dir.path().join("garbage.key");
    std::fs::write(&garbage, "-----BEGIN NOTHING-----\nabc\n").unwrap();
    let error = refused_start(
        &["--tls-key", garbage.to_str().unwrap()],
        &[("BERTH_TLS_CERT", &pki.cert())],
    );
    assert!(error.contains(garbage.to_str().unwrap()), "{error}");

    // A key that is not the certificate's names both.
    let other = KeyPair::generate().unwrap();
    let stranger = pki.dir.path().join("stranger.key");
    std::fs::write(&stranger, other.serialize_pem()).unwrap();
    let error = refused_start(
        &["--tls-cert", &cert, "--tls-key", stranger.to_str().unwrap()],
        &[],
    );
    assert!(
        error.contains("stranger.key") && error.contains("server.crt"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_a_certificate_the_file_watch_cannot_see() {
    let pki = Pki::new();
    let server = start(&pki, &[]);
    let first = served_certificate(&pki, &server).await;
    // A new certificate and key written into the same files (same inodes), of the same sizes,
    // with the old modification times put back: nothing the watch compares has changed.
    let (cert_file, key_file) = (pki.cert(), pki.key());
    let stamp = |path: &Path| {
        let meta = std::fs::metadata(path).unwrap();
        (meta.len(), meta.modified().unwrap())
    };
    let (cert_before, key_before) = (stamp(&cert_file), stamp(&key_file));
    let (second, cert_pem, key_pem) = (2..200)
        .find_map(|serial| {
            let mut params =
                CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                    .unwrap();
            params
                .distinguished_name
                .push(DnType::CommonName, "berth one");
            params.serial_number = Some(SerialNumber::from(serial));
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &pki.ca).unwrap();
            let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
            (cert_pem.len() as u64 == cert_before.0 && key_pem.len() as u64 == key_before.0)
                .then(|| (cert.der().clone(), cert_pem, key_pem))
        })
        .expect("a certificate of the same size");
    for (path, bytes, (_, modified)) in [
        (&cert_file, cert_pem.as_bytes(), cert_before),
        (&key_file, key_pem.as_bytes(), key_before),
    ] {
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        std::io::Write::write_all(&mut &file, bytes).unwrap();
        file.set_modified(modified).unwrap();
    }
    assert_eq!(stamp(&cert_file), cert_before);
    // Past a few polls of the watch: still the first certificate.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(served_certificate(&pki, &server).await, first);

    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while served_certificate(&pki, &server).await != second {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
