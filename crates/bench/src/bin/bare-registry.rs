//! The least an HTTP registry can do for the benchmark's load: no authentication, no
//! metadata database, no limits. Started as Distribution is (`bare-registry serve
//! <config.yml>`, reading `addr:` and `rootdirectory:`), it answers the calls the bench makes
//! and does for a blob upload what Berth's filesystem writer does: hash each frame as it
//! arrives, write it in the request's task (its room on disk reserved ahead of it, up to the
//! body's announced length), write back every [`WRITEBACK_EVERY`] bytes on a
//! blocking thread (one at a time), `fdatasync` before answering, and on `PUT` move the file to
//! its digest's name and sync the directory. Measures how much of the machine's ceiling HTTP
//! itself takes.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Hyper's read buffer, as Berth's while few uploads stream.
const READ_BUFFER: usize = 512 << 10;
/// Write back every this many bytes: Berth's writer's.
const WRITEBACK_EVERY: u64 = berth_blob::WRITEBACK_EVERY;
/// Wait for the writeback under way once this many bytes are behind it: Berth's writer's.
const UNFLUSHED_MAX: u64 = berth_blob::UNFLUSHED_MAX;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() == 3 && args[1] == "serve",
        "usage: bare-registry serve <config.yml>"
    );
    let config = std::fs::read_to_string(&args[2]).context("reading the config")?;
    let value = |key: &str| {
        config
            .lines()
            .find_map(|line| line.trim().strip_prefix(key).map(str::trim))
            .map(str::to_owned)
            .with_context(|| format!("no `{key}` in the config"))
    };
    let addr = value("addr:")?;
    let root = PathBuf::from(value("rootdirectory:")?);
    std::fs::create_dir_all(root.join("uploads"))?;
    std::fs::create_dir_all(root.join("blobs"))?;
    let state = Arc::new(State {
        root,
        next: AtomicU64::new(0),
        uploads: Mutex::new(HashMap::new()),
        manifests: Mutex::new(HashMap::new()),
    });
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(addr, state))
}

async fn serve(addr: String, state: Arc<State>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    loop {
        let (socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, std::convert::Infallible>(state.handle(request).await) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .keep_alive(true)
                .max_buf_size(READ_BUFFER);
            let _ = builder
                .serve_connection(TokioIo::new(socket), service)
                .await;
        });
    }
}

/// An upload under way: its file, the hash of what it holds, and its length.
struct Upload {
    path: PathBuf,
    file: Arc<File>,
    hasher: Sha256,
    len: u64,
}

struct State {
    root: PathBuf,
    next: AtomicU64,
    uploads: Mutex<HashMap<String, Upload>>,
    /// `(repository, reference)` → the manifest's media type and bytes.
    manifests: Mutex<HashMap<(String, String), (String, Bytes)>>,
}

impl State {
    async fn handle(&self, request: Request<Incoming>) -> Response<Reply> {
        match self.route(request).await {
            Ok(response) => response,
            Err(err) => reply(StatusCode::BAD_REQUEST, full(format!("{err:#}").into())),
        }
    }

    async fn route(&self, request: Request<Incoming>) -> anyhow::Result<Response<Reply>> {
        let path = request.uri().path().to_owned();
        let query = request.uri().query().unwrap_or("").to_owned();
        let method = request.method().clone();
        if path == "/v2/" {
            return Ok(reply(StatusCode::OK, full(Bytes::from_static(b"{}"))));
        }
        let rest = path.strip_prefix("/v2/").context("not under /v2/")?;
        if let Some(name) = rest.strip_suffix("/blobs/uploads/")
            && method == Method::POST
        {
            return self.start(name);
        }
        if let Some((name, id)) = rest.split_once("/blobs/uploads/") {
            let name = name.to_owned();
            let id = id.to_owned();
            let body = request.into_body();
            return match method {
                Method::PATCH => {
                    let len = self.append(&id, body).await?;
                    let mut response = reply(StatusCode::ACCEPTED, empty());
                    let headers = response.headers_mut();
                    headers.insert(
                        "location",
                        format!("/v2/{name}/blobs/uploads/{id}").parse()?,
                    );
                    headers.insert("range", format!("0-{}", len.saturating_sub(1)).parse()?);
                    Ok(response)
                }
                Method::PUT => {
                    let digest = query
                        .split('&')
                        .find_map(|pair| pair.strip_prefix("digest="))
                        .context("no digest")?
                        .replace("%3A", ":");
                    self.append(&id, body).await?;
                    self.finish(&id, &digest).await?;
                    let mut response = reply(StatusCode::CREATED, empty());
                    let headers = response.headers_mut();
                    headers.insert("location", format!("/v2/{name}/blobs/{digest}").parse()?);
                    headers.insert("docker-content-digest", digest.parse()?);
                    Ok(response)
                }
                _ => Ok(reply(StatusCode::METHOD_NOT_ALLOWED, empty())),
            };
        }
        if let Some((_, digest)) = rest.split_once("/blobs/") {
            let hex = digest.strip_prefix("sha256:").context("not sha256")?;
            return self.read_blob(hex);
        }
        if let Some((name, reference)) = rest.split_once("/manifests/") {
            let key = (name.to_owned(), reference.to_owned());
            if method == Method::PUT {
                let media_type = request
                    .headers()
                    .get("content-type")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("application/vnd.oci.image.manifest.v1+json")
                    .to_owned();
                let bytes = request.into_body().collect().await?.to_bytes();
                let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
                self.manifests
                    .lock()
                    .unwrap()
                    .insert(key, (media_type, bytes));
                let mut response = reply(StatusCode::CREATED, empty());
                response
                    .headers_mut()
                    .insert("docker-content-digest", digest.parse()?);
                return Ok(response);
            }
            let found = self.manifests.lock().unwrap().get(&key).cloned();
            return Ok(match found {
                Some((media_type, bytes)) => {
                    let mut response = reply(StatusCode::OK, full(bytes));
                    response
                        .headers_mut()
                        .insert("content-type", media_type.parse()?);
                    response
                }
                None => reply(StatusCode::NOT_FOUND, empty()),
            });
        }
        Ok(reply(StatusCode::NOT_FOUND, empty()))
    }

    fn start(&self, name: &str) -> anyhow::Result<Response<Reply>> {
        let id = self.next.fetch_add(1, Ordering::Relaxed).to_string();
        let path = self.root.join("uploads").join(&id);
        let file = File::create(&path)?;
        self.uploads.lock().unwrap().insert(
            id.clone(),
            Upload {
                path,
                file: Arc::new(file),
                hasher: Sha256::new(),
                len: 0,
            },
        );
        let mut response = reply(StatusCode::ACCEPTED, empty());
        response.headers_mut().insert(
            "location",
            format!("/v2/{name}/blobs/uploads/{id}").parse()?,
        );
        Ok(response)
    }

    /// Hashes and writes `body` onto upload `id`, written back as it goes and durable at the
    /// end; returns the upload's length. On an error the upload is discarded, file and all.
    async fn append(&self, id: &str, body: Incoming) -> anyhow::Result<u64> {
        let mut upload = self
            .uploads
            .lock()
            .unwrap()
            .remove(id)
            .context("unknown upload")?;
        if let Err(err) = write_body(&mut upload, body).await {
            let _ = std::fs::remove_file(&upload.path);
            return Err(err.context("the upload was discarded"));
        }
        let len = upload.len;
        self.uploads.lock().unwrap().insert(id.to_owned(), upload);
        Ok(len)
    }

    /// Checks upload `id` hashes to `digest`, and moves it to the blob's name, durably.
    async fn finish(&self, id: &str, digest: &str) -> anyhow::Result<()> {
        let upload = self
            .uploads
            .lock()
            .unwrap()
            .remove(id)
            .context("unknown upload")?;
        let actual = format!("sha256:{}", hex::encode(upload.hasher.finalize()));
        if actual != digest {
            std::fs::remove_file(&upload.path)?;
            anyhow::bail!("the upload hashes to {actual}, not {digest}; it was discarded");
        }
        let blobs = self.root.join("blobs");
        let target = blobs.join(digest.trim_start_matches("sha256:"));
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            std::fs::rename(&upload.path, &target)?;
            File::open(&blobs)?.sync_all()
        })
        .await??;
        Ok(())
    }

    fn read_blob(&self, hex: &str) -> anyhow::Result<Response<Reply>> {
        let path = self.root.join("blobs").join(hex);
        let Ok(file) = File::open(&path) else {
            return Ok(reply(StatusCode::NOT_FOUND, empty()));
        };
        let len = file.metadata()?.len();
        let (sender, receiver) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || read_into(file, &sender));
        let mut response = reply(StatusCode::OK, pieces(receiver));
        response
            .headers_mut()
            .insert("content-length", len.to_string().parse()?);
        Ok(response)
    }
}

/// Hashes and appends `body` to `upload`, written back every [`WRITEBACK_EVERY`] bytes (one
/// writeback at a time, waited for once [`UNFLUSHED_MAX`] bytes are behind it) and durable at
/// the end.
async fn write_body(upload: &mut Upload, mut body: Incoming) -> anyhow::Result<()> {
    let mut flushed_to = upload.len;
    let mut flush: Option<JoinHandle<io::Result<()>>> = None;
    // Room reserved on disk as Berth's writer reserves it: ahead of the bytes, up to the
    // body's announced length.
    let announced_to = upload.len + hyper::body::Body::size_hint(&body).exact().unwrap_or(0);
    let mut reserved_to = upload.len;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        upload.hasher.update(&data);
        let batch = data.len() as u64;
        if let Some((from, to)) =
            berth_blob::reservation(upload.len, batch, reserved_to, announced_to)
        {
            berth_blob::reserve(&upload.file, from, to)?;
            reserved_to = to;
        }
        (&*upload.file).write_all(&data)?;
        upload.len += data.len() as u64;
        let unflushed = upload.len - flushed_to;
        let running = flush.as_ref().is_some_and(|f| !f.is_finished());
        if unflushed < WRITEBACK_EVERY || (running && unflushed < UNFLUSHED_MAX) {
            continue;
        }
        if let Some(previous) = flush.take() {
            previous.await??;
        }
        let (from, to, file) = (flushed_to, upload.len, Arc::clone(&upload.file));
        flushed_to = to;
        flush = Some(tokio::task::spawn_blocking(move || {
            berth_blob::write_back(&file, from, to)
        }));
    }
    let file = Arc::clone(&upload.file);
    let synced = tokio::task::spawn_blocking(move || file.sync_data());
    if let Some(running) = flush {
        running.await??;
    }
    synced.await??;
    Ok(())
}

/// Sends `file` in 512 KiB pieces until it ends or the response is dropped.
fn read_into(mut file: File, sender: &mpsc::Sender<io::Result<Bytes>>) {
    loop {
        let mut buf = vec![0u8; READ_BUFFER];
        match file.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                buf.truncate(n);
                if sender.blocking_send(Ok(buf.into())).is_err() {
                    return;
                }
            }
            Err(err) => {
                let _ = sender.blocking_send(Err(err));
                return;
            }
        }
    }
}

fn reply(status: StatusCode, body: Reply) -> Response<Reply> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

/// A response body: bytes at hand, or a file's pieces as a blocking thread reads them.
type Reply = BoxBody<Bytes, io::Error>;

fn empty() -> Reply {
    Empty::new().map_err(|never| match never {}).boxed()
}

fn full(bytes: Bytes) -> Reply {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

fn pieces(mut receiver: mpsc::Receiver<io::Result<Bytes>>) -> Reply {
    let stream = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    BodyExt::boxed(StreamBody::new(stream.map(|piece| piece.map(Frame::data))))
}
