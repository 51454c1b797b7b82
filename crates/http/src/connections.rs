//! The connection loop: accepts TCP connections under limits and serves HTTP/1.1 on each (or,
//! with TLS, HTTP/2 or HTTP/1.1 as ALPN chose), so no client — however slow, stalled or
//! numerous — can hold what everyone else needs.
//!
//! - At most `max_connections` connections at once, and `max_connections_per_address` from
//!   one client address (an IPv6 address by its /64; trusted proxies only count towards the
//!   total). A connection over a cap is answered at once (`429`/`503`, `Connection: close`)
//!   and closed: it never waits in a queue and never starves the others.
//! - A new connection must send its request head within `header_read_timeout`; a kept-alive
//!   connection may sit idle for `idle_timeout`, and then has `header_read_timeout` again
//!   from the first byte of its next request.
//! - A request body that sends nothing for `body_read_timeout` fails (the handler sees a
//!   body error: an upload session keeps what it made durable and stays resumable) and the
//!   connection closes; a response the client does not read for `send_timeout` is abandoned.
//! - With TLS, the handshake reads through the same deadlines: it and the first request head
//!   must come within `header_read_timeout`. On HTTP/2, frames between requests (pings,
//!   window updates) are not request heads: an HTTP/2 connection with no stream open closes
//!   after `idle_timeout`, and opens at most [`H2_MAX_STREAMS`] streams at once.
//!
//! Per request it works out the [`Origin`] (client address, base URL) and puts it in the
//! request's extensions.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

use crate::origin::{Origin, OverTls, TrustedProxies};

/// Limits on connections and on how long each phase of a request may stall.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections served at once from one client address (not counting trusted proxies).
    pub max_connections_per_address: usize,
    /// Time a request head may take, from a new connection or the first byte of a head.
    pub header_read_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Time a request body may go without delivering a byte.
    pub body_read_timeout: Duration,
    /// Time a response may wait for the client to take more bytes.
    pub send_timeout: Duration,
    /// Peers whose forwarding headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// The operator's `external_url`, without a trailing `/`.
    pub external_url: Option<Arc<str>>,
}

/// Refusals of connections over a cap being written at once; past it, they are just closed.
const REFUSALS_AT_ONCE: usize = 64;

/// Streams one HTTP/2 connection may have open at once (each is a request in flight).
pub const H2_MAX_STREAMS: u32 = 64;

/// Serves `router` on `listener` until `shutdown` completes, then lets the requests in flight
/// finish (kept-alive connections close after their current request). With `tls`, every
/// connection is TLS and ALPN picks HTTP/2 or HTTP/1.1; without, it is plain HTTP/1.1.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limits = Arc::new(limits);
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let total = Arc::new(Semaphore::new(max));
    let per_address = Arc::new(AddressCounts::default());
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    let (stop, stopped) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let local = match tcp.local_addr() {
            Ok(local) => local,
            Err(_) => continue,
        };
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::warn!(%err, "could not set TCP_NODELAY");
        }
        let Ok(permit) = total.clone().try_acquire_owned() else {
            refuse(tcp, tls.is_some(), &refusals, Refusal::Busy);
            continue;
        };
        let slot = if limits.trusted_proxies.contains(peer.ip()) {
            None
        } else {
            match per_address.take(peer.ip(), limits.max_connections_per_address) {
                Some(slot) => Some(slot),
                None => {
                    refuse(tcp, tls.is_some(), &refusals, Refusal::PerAddress);
                    continue;
                }
            }
        };
        let connection = Connection {
            router: router.clone(),
            tls: tls.is_some(),
            limits: limits.clone(),
            peer,
            local,
        };
        let stopped = stopped.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            connection.run(tcp, tls, stopped).await;
            drop(slot);
            drop(permit);
        });
    }
    // Stop listening at once: new connections are refused by the kernel, not queued.
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a permit until it ends: all of them back means all are done.
    let _ = total.acquire_many(max as u32).await;
    Ok(())
}

/// An accept error: per-connection ones are skipped; running out of descriptors (or memory)
/// waits a moment so the loop does not spin while connections close.
async fn accept_failed(err: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    ) {
        return;
    }
    tracing::warn!(%err, "accepting a connection failed; retrying shortly");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// The most an HTTP/1 connection's read buffer grows to (hyper's default is ~400 KiB): the
/// registry's bound on a request body's frames (`core/src/registry/uploads.rs`
/// `BODY_FRAME_MAX`, which says why this size). A frame is a slice of this buffer and keeps
/// it alive while the connection reads on into a fresh one; an upload holds its frames until
/// they are written. Measured with 16 clients pushing: ~400 KiB buffers held 18 MiB of the
/// heap, 64 KiB about 3 MiB (BENCHMARKS.md, "Lean and steady, part 2").
const READ_BUFFER: usize = berth_core::registry::BODY_FRAME_MAX;

/// Uploads streaming at once up to which a connection reads as much as [`READ_BUFFER`] holds.
const FEW_UPLOADS: usize = 4;

/// The most one read takes while more than [`FEW_UPLOADS`] uploads stream: just under a
/// quarter of [`READ_BUFFER`]. hyper sizes each connection's next buffer by its reads (it
/// doubles it after a read that filled it, halves it after two reads in a row below half of
/// it), so capped reads bring a pushing connection's buffers, and the frames that keep them
/// alive, down to a quarter as the crowd comes, and uncapped ones let them grow back as it
/// goes. With 4 clients pushing, full-size reads took 4–5 % less server CPU per GiB than
/// reads of half. With 16, the pushes peaked at 37–39 MiB with reads capped at half, 33–35
/// with a quarter, for the same server CPU (BENCHMARKS.md, "Lean and steady, part 13").
const CROWDED_READ: usize = READ_BUFFER / 4 - 1;

/// The most one read takes from a connection while `streaming` uploads stream.
fn read_limit(streaming: usize) -> usize {
    if streaming <= FEW_UPLOADS {
        READ_BUFFER
    } else {
        CROWDED_READ
    }
}

/// An HTTP/1 connection's byte stream, each read taking at most what `limit` says at the time
/// of the read ([`read_limit`] of the uploads streaming now).
struct SizedReads<I> {
    io: tokio::io::Take<I>,
    limit: fn() -> usize,
}

impl<I: AsyncRead + Unpin> SizedReads<I> {
    fn new(io: I, limit: fn() -> usize) -> Self {
        SizedReads {
            io: tokio::io::AsyncReadExt::take(io, 0),
            limit,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for SizedReads<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let limit = (self.limit)() as u64;
        self.io.set_limit(limit);
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncWrite for SizedReads<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.io.get_mut()).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.io.get_mut()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.get_ref().is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.io.get_mut()).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.io.get_mut()).poll_shutdown(cx)
    }
}

/// One accepted connection.
struct Connection {
    router: Router,
    /// Whether the connection is TLS: its requests get [`OverTls`].
    tls: bool,
    limits: Arc<ConnectionLimits>,
    peer: SocketAddr,
    local: SocketAddr,
}

impl Connection {
    async fn run(
        self,
        tcp: TcpStream,
        tls: Option<TlsAcceptor>,
        mut stopped: watch::Receiver<bool>,
    ) {
        let activity = Arc::new(Activity::default());
        let io = GuardedIo::new(tcp, activity.clone(), &self.limits);
        let Some(acceptor) = tls else {
            return self.serve_http1(io, activity, stopped).await;
        };
        // The handshake reads through GuardedIo: a new connection's head deadline bounds it.
        let mut tls = tokio::select! {
            accepted = acceptor.accept(io) => match accepted {
                Ok(tls) => tls,
                Err(err) => {
                    tracing::debug!(%err, "TLS handshake failed");
                    return;
                }
            },
            () = async { drop(stopped.wait_for(|stop| *stop).await) } => return,
        };
        let (guarded, session) = tls.get_mut();
        if session.alpn_protocol() == Some(crate::tls::H2) {
            guarded.multiplexed = true;
            self.serve_http2(tls, activity, stopped).await
        } else {
            self.serve_http1(tls, activity, stopped).await
        }
    }

    async fn serve_http1<I>(self, io: I, activity: Arc<Activity>, stopped: watch::Receiver<bool>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // GuardedIo enforces the head and idle limits; hyper's own timer (which runs from the
        // end of the last response, through the idle time) only backs them up.
        let backstop = self.limits.idle_timeout + self.limits.header_read_timeout;
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            self.call(request, &activity)
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(backstop + Duration::from_secs(1))
            .keep_alive(true)
            .max_buf_size(READ_BUFFER);
        let io = SizedReads::new(io, || read_limit(berth_core::registry::uploads_streaming()));
        let conn = builder.serve_connection(TokioIo::new(io), service);
        until_stopped(conn, |conn| conn.graceful_shutdown(), stopped).await;
    }

    async fn serve_http2<I>(self, io: I, activity: Arc<Activity>, stopped: watch::Receiver<bool>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            self.call(request, &activity)
        });
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .max_concurrent_streams(H2_MAX_STREAMS);
        let conn = builder.serve_connection(TokioIo::new(io), service);
        until_stopped(conn, |conn| conn.graceful_shutdown(), stopped).await;
    }

    fn call(
        &self,
        mut request: Request<Incoming>,
        activity: &Arc<Activity>,
    ) -> impl Future<Output = Result<axum::response::Response, Infallible>> + use<> {
        let in_flight = InFlight::begin(activity.clone());
        if self.tls {
            request.extensions_mut().insert(OverTls);
        }
        let origin = Origin::of(
            &request,
            self.peer,
            self.local,
            &self.limits.trusted_proxies,
            self.limits.external_url.as_ref(),
        );
        request.extensions_mut().insert(origin);
        let request =
            request.map(|body| Body::new(StallTimeout::new(body, self.limits.body_read_timeout)));
        let mut router = self.router.clone();
        async move {
            let response = router.call(request).await?;
            Ok(response.map(|body| Body::new(Tracked { body, in_flight })))
        }
    }
}

/// Drives a connection to its end; when the server stops first, asks it to finish the
/// requests in flight (`graceful`) and then close.
async fn until_stopped<C>(
    conn: C,
    graceful: impl FnOnce(Pin<&mut C>),
    mut stopped: watch::Receiver<bool>,
) where
    C: Future<Output = Result<(), hyper::Error>>,
{
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        // The server stops (or its loop is gone): finish the request in flight, then close.
        () = async { drop(stopped.wait_for(|stop| *stop).await) } => {
            graceful(conn.as_mut());
            conn.as_mut().await
        }
    };
    if let Err(err) = result {
        tracing::debug!(%err, "connection ended");
    }
}

/// What a connection is doing, shared by its I/O and its requests.
#[derive(Debug)]
struct Activity {
    created: std::time::Instant,
    /// Requests whose response has not been sent yet.
    in_flight: AtomicU32,
    /// Milliseconds since `created` when the last response was sent; `NEVER` before the first.
    idle_since: AtomicU64,
    /// Milliseconds since `created` of the first byte of a request head not yet parsed.
    head_started: AtomicU64,
}

const NEVER: u64 = u64::MAX;

impl Default for Activity {
    fn default() -> Self {
        Activity {
            created: std::time::Instant::now(),
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(NEVER),
            head_started: AtomicU64::new(NEVER),
        }
    }
}

impl Activity {
    fn now(&self) -> u64 {
        self.created.elapsed().as_millis() as u64
    }

    /// When reading must have made progress by, while no request is in flight: the head's
    /// deadline once it started, the idle deadline between requests, and a new connection's
    /// head deadline before its first request.
    fn read_deadline(&self, limits: &Timeouts) -> std::time::Instant {
        let head = self.head_started.load(Ordering::Relaxed);
        let idle = self.idle_since.load(Ordering::Relaxed);
        let (from, allowed) = match (head, idle) {
            (NEVER, NEVER) => (0, limits.header),
            (NEVER, idle) => (idle, limits.idle),
            (head, _) => (head, limits.header),
        };
        self.created + Duration::from_millis(from) + allowed
    }
}

/// Counts a request in flight until its response body is sent or dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.head_started.store(NEVER, Ordering::Relaxed);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let now = self.0.now();
        self.0.idle_since.store(now, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that ends its request's [`InFlight`] when it is dropped.
struct Tracked {
    body: Body,
    #[allow(dead_code)] // held for its Drop
    in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body that fails when no frame comes for `timeout`. The clock is read once per
/// frame; the timer is armed at the first wait and, when it fires, re-armed from the last
/// frame unless that was `timeout` ago — so a streaming body touches the timer about once
/// per `timeout`, not once per frame. (tower-http's `TimeoutBody` creates and registers a new
/// timer on every poll: monolithic pushes measured 20 % slower with it.)
struct StallTimeout {
    body: Incoming,
    timeout: Duration,
    last_frame: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl StallTimeout {
    fn new(body: Incoming, timeout: Duration) -> Self {
        StallTimeout {
            body,
            timeout,
            last_frame: Instant::now(),
            timer: None,
        }
    }
}

impl http_body::Body for StallTimeout {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.last_frame = Instant::now();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = this.last_frame + this.timeout;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                while timer.as_mut().poll(cx).is_ready() {
                    let deadline = this.last_frame + this.timeout;
                    if Instant::now() >= deadline {
                        return Poll::Ready(Some(Err(Box::new(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "the request body sent nothing for {} s",
                                this.timeout.as_secs()
                            ),
                        )))));
                    }
                    timer.as_mut().reset(deadline);
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[derive(Debug, Clone, Copy)]
struct Timeouts {
    header: Duration,
    idle: Duration,
    send: Duration,
}

/// The socket, with deadlines: reads between requests (head and idle) and writes that the
/// client does not take. Body reads are timed by the request body itself.
struct GuardedIo {
    tcp: TcpStream,
    activity: Arc<Activity>,
    timeouts: Timeouts,
    read_timer: Pin<Box<Sleep>>,
    read_armed: Option<std::time::Instant>,
    write_timer: Pin<Box<Sleep>>,
    write_armed: bool,
    /// HTTP/2: bytes read between requests are frames, not the start of a request head, so
    /// they leave the connection under the idle deadline.
    multiplexed: bool,
}

impl GuardedIo {
    fn new(tcp: TcpStream, activity: Arc<Activity>, limits: &ConnectionLimits) -> Self {
        let far = Instant::now() + Duration::from_secs(86_400);
        GuardedIo {
            tcp,
            activity,
            timeouts: Timeouts {
                header: limits.header_read_timeout,
                idle: limits.idle_timeout,
                send: limits.send_timeout,
            },
            read_timer: Box::pin(tokio::time::sleep_until(far)),
            read_armed: None,
            write_timer: Box::pin(tokio::time::sleep_until(far)),
            write_armed: false,
            multiplexed: false,
        }
    }

    fn write_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if !self.write_armed {
            self.write_armed = true;
            let deadline = Instant::now() + self.timeouts.send;
            self.write_timer.as_mut().reset(deadline);
        }
        match self.write_timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took no response bytes for the send timeout",
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for GuardedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.tcp).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.read_armed = None;
                if buf.filled().len() > before
                    && !this.multiplexed
                    && this.activity.in_flight.load(Ordering::Relaxed) == 0
                    && this.activity.head_started.load(Ordering::Relaxed) == NEVER
                {
                    let now = this.activity.now();
                    this.activity.head_started.store(now, Ordering::Relaxed);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                if this.activity.in_flight.load(Ordering::Relaxed) > 0 {
                    this.read_armed = None;
                    return Poll::Pending;
                }
                let deadline = this.activity.read_deadline(&this.timeouts);
                if this.read_armed != Some(deadline) {
                    this.read_armed = Some(deadline);
                    this.read_timer.as_mut().reset(Instant::from_std(deadline));
                }
                match this.read_timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no request within the header or idle timeout",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncWrite for GuardedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.tcp).poll_write(cx, buf) {
            Poll::Pending => self.write_pending(cx).map(Err),
            ready => {
                self.write_armed = false;
                ready
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.write_pending(cx).map(Err),
            ready => {
                self.write_armed = false;
                ready
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// Open connections per client address (an IPv6 address by its /64).
#[derive(Debug, Default)]
struct AddressCounts(Mutex<std::collections::HashMap<IpAddr, usize>>);

/// One connection's place in its address's count.
struct AddressSlot {
    counts: Arc<AddressCounts>,
    key: IpAddr,
}

impl AddressCounts {
    fn take(self: &Arc<Self>, ip: IpAddr, limit: usize) -> Option<AddressSlot> {
        let key = address_key(ip);
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(key).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            counts: self.clone(),
            key,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// The address a per-address limit counts: IPv4 as is, IPv6 by its /64 (one host's usual
/// allocation).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::from(segments)
        }
        v4 => v4,
    }
}

#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// The server's connection cap.
    Busy,
    /// The client address's connection cap.
    PerAddress,
}

/// Answers a connection over a cap and closes it, in the background and briefly; when too
/// many refusals are already being written, closes it without an answer. A TLS connection is
/// closed unanswered: its client cannot read a plain answer, and a handshake is the very
/// work the cap is there to spare.
fn refuse(mut tcp: TcpStream, tls: bool, refusals: &Arc<Semaphore>, why: Refusal) {
    if tls {
        return;
    }
    let Ok(permit) = refusals.clone().try_acquire_owned() else {
        return;
    };
    let (status, code, message) = match why {
        Refusal::Busy => (
            "503 Service Unavailable",
            "UNAVAILABLE",
            "the server is serving as many connections as it may; retry shortly",
        ),
        Refusal::PerAddress => (
            "429 Too Many Requests",
            "TOOMANYREQUESTS",
            "too many connections from your address at once; close some or retry shortly",
        ),
    };
    let body = format!(r#"{{"errors":[{{"code":"{code}","message":"{message}"}}]}}"#);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            tcp.write_all(response.as_bytes()).await?;
            tcp.shutdown().await?;
            // Read what the client sent so closing does not reset the connection before it
            // reads the answer.
            let mut sink = [0u8; 4096];
            loop {
                match tokio::io::AsyncReadExt::read(&mut tcp, &mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            Ok::<_, io::Error>(())
        })
        .await;
        drop(permit);
    });
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[test]
    fn reads_are_full_size_while_few_uploads_stream_and_under_a_quarter_when_many_do() {
        for streaming in 0..=FEW_UPLOADS {
            assert_eq!(read_limit(streaming), READ_BUFFER, "{streaming} uploads");
        }
        for streaming in [FEW_UPLOADS + 1, 16, 1000] {
            let limit = read_limit(streaming);
            assert!(
                limit < READ_BUFFER / 4,
                "{streaming} uploads: {limit}-byte reads would not shrink hyper's buffer to a \
                 quarter"
            );
        }
    }

    fn small() -> usize {
        1000
    }

    fn large() -> usize {
        64 << 10
    }

    #[tokio::test]
    async fn each_read_takes_at_most_the_limit_of_its_time() {
        let data = vec![7u8; 256 << 10];
        let mut reads = SizedReads::new(&data[..], small);
        let mut buffer = vec![0u8; 256 << 10];
        assert_eq!(reads.read(&mut buffer).await.unwrap(), 1000);
        assert_eq!(reads.read(&mut buffer).await.unwrap(), 1000);
        reads.limit = large;
        assert_eq!(reads.read(&mut buffer).await.unwrap(), 64 << 10);
        let mut rest = Vec::new();
        reads.limit = small;
        let read = reads.read_to_end(&mut rest).await.unwrap();
        assert_eq!(2000 + (64 << 10) + read, data.len(), "every byte arrives");
    }

    #[tokio::test]
    async fn writes_pass_through_whole() {
        let (near, mut far) = tokio::io::duplex(1 << 20);
        let mut reads = SizedReads::new(near, small);
        reads.write_all(&[1u8; 5000]).await.unwrap();
        reads.flush().await.unwrap();
        let mut got = vec![0u8; 5000];
        far.read_exact(&mut got).await.unwrap();
        assert!(got.iter().all(|&b| b == 1));
        far.write_all(&[2u8; 3000]).await.unwrap();
        let mut buffer = vec![0u8; 3000];
        assert_eq!(reads.read(&mut buffer).await.unwrap(), 1000);
    }
}
