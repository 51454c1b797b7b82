//! Observing requests: one middleware around every route counts each request in the
//! Prometheus metrics (endpoint name × method × status class, latency, body bytes), writes one
//! request log line (target `berth::request`), and gives the request an `X-Request-Id` that
//! every log line written while it is handled carries: the id sits in the request's
//! task-local slot ([`with_request_id`]) and the binary's log writer adds it to each line
//! written from the request's task. (A tracing span per request did the same at ~2 % of a
//! manifest GET: it is entered and left on every poll, and sqlx carries it to its threads.)
//!
//! What only the handlers know — the endpoint's name, the repository, who called — they note
//! in a task-local slot ([`note_endpoint`], [`note_principal`]) that the middleware opens
//! around the request: no allocation, no lock. Labels are static strings (an `/api/v3` route
//! is labelled by its template, never its path), so no label carries a repository, a path or
//! a secret. Records through the `metrics` facade: the binary installs the recorder.

use std::borrow::Cow;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_core::RepoName;
use berth_core::access::{CredentialId, Grant, Principal};
use http_body::{Body as HttpBody, Frame, SizeHint};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::origin::Origin;

/// Requests answered, by `endpoint`, `method` and `status` class (`2xx`…).
pub const REQUESTS: &str = "berth_http_requests_total";
/// Time from a request's arrival to its response body's end, by `endpoint` and `method`.
pub const DURATION: &str = "berth_http_request_duration_seconds";
/// Request body bytes received, by `endpoint`.
pub const RECEIVED: &str = "berth_http_received_bytes_total";
/// Response body bytes sent, by `endpoint`.
pub const SENT: &str = "berth_http_sent_bytes_total";
/// Requests refused by a rate limit, by `limit`.
pub const REFUSALS: &str = "berth_rate_limit_refusals_total";

/// The request id header, taken from the client when sane and echoed in every response.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static FACTS: RefCell<Facts>;
}

/// What the handler of a request learned, for its metrics and log line.
#[derive(Default)]
struct Facts {
    id: Option<HeaderValue>,
    endpoint: Option<&'static str>,
    repository: Option<RepoName>,
    principal: Option<(&'static str, Option<CredentialId>)>,
}

/// Notes the endpoint a request reached (its fixed name) and its repository. Outside the
/// middleware (unit tests), does nothing.
pub fn note_endpoint(name: &'static str, repository: Option<&RepoName>) {
    let repository = repository.filter(|_| log_enabled()).cloned();
    let _ = FACTS.try_with(|facts| {
        let mut facts = facts.borrow_mut();
        facts.endpoint = Some(name);
        facts.repository = repository;
    });
}

/// Notes who called: the kind of principal and its credential's id, never a secret.
pub fn note_principal(principal: &Principal) {
    let who = match principal {
        Principal::Anonymous => ("anonymous", None),
        Principal::Token(credential) => {
            let kind = match credential.grant {
                Grant::Classic { .. } => "classic_token",
                Grant::FineGrained { .. } => "fine_grained_token",
                Grant::App { .. } => "app_installation",
                Grant::Job { .. } => "job_token",
            };
            (kind, Some(credential.id))
        }
    };
    let _ = FACTS.try_with(|facts| facts.borrow_mut().principal = Some(who));
}

/// Counts a refusal by rate limit `limit` (`api_hourly`, `api_burst`, `auth_failures`).
pub fn refused(limit: &'static str) {
    metrics::counter!(REFUSALS, "limit" => limit).increment(1);
}

/// Calls `f` with the id of the request whose task is running, if any (for log lines).
pub fn with_request_id<R>(f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    FACTS
        .try_with(|facts| {
            let facts = facts.try_borrow().ok()?;
            facts.id.as_ref().map(|id| f(id.as_bytes()))
        })
        .ok()
        .flatten()
}

fn log_enabled() -> bool {
    tracing::enabled!(target: "berth::request", tracing::Level::INFO)
}

/// The middleware: see the module documentation.
pub async fn observe(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(request.method());
    let id = request_id(request.headers());
    let client = request.extensions().get::<Origin>().map(|o| o.client);
    let route = request.extensions().get::<MatchedPath>().cloned();
    let (parts, body) = request.into_parts();
    let received = (!body.is_end_stream()).then(|| Arc::new(AtomicU64::new(0)));
    let body = match &received {
        Some(count) => Body::new(CountIn {
            inner: body,
            count: count.clone(),
        }),
        None => body,
    };
    let request = Request::from_parts(parts, body);
    let facts = Facts {
        id: Some(id),
        ..Facts::default()
    };
    let (mut response, facts) = FACTS
        .scope(RefCell::new(facts), async move {
            let response = next.run(request).await;
            (response, FACTS.with(|facts| facts.take()))
        })
        .await;
    if let Some(id) = &facts.id {
        response
            .headers_mut()
            .insert(X_REQUEST_ID.clone(), id.clone());
    }
    let endpoint = match (facts.endpoint, route) {
        (Some(name), _) => Cow::Borrowed(name),
        (None, Some(route)) => Cow::Owned(template_label(route.as_str())),
        (None, None) => Cow::Borrowed("unknown"),
    };
    let record = Record {
        start,
        method,
        endpoint,
        status: response.status(),
        facts,
        client,
        received,
        sent: 0,
    };
    if response.body().is_end_stream() {
        record.finish();
        return response;
    }
    // A small body of known size (a manifest, an API object) goes out in one write: record
    // it now, without wrapping the body, so the hot small answers pay no per-frame wrapper.
    if let Some(len) = response.body().size_hint().exact()
        && len <= SMALL_BODY
    {
        let mut record = record;
        record.sent = len;
        record.finish();
        return response;
    }
    response.map(|inner| {
        Body::new(Observed {
            inner,
            record: Some(record),
        })
    })
}

/// Bodies of at most this many bytes with a known length are recorded as the response
/// leaves the handler rather than when their last frame is written.
const SMALL_BODY: u64 = 64 * 1024;

/// One request's metrics and log line, written when its response body ends.
struct Record {
    start: Instant,
    method: &'static str,
    endpoint: Cow<'static, str>,
    status: StatusCode,
    facts: Facts,
    client: Option<SocketAddr>,
    received: Option<Arc<AtomicU64>>,
    sent: u64,
}

impl Record {
    fn finish(self) {
        let elapsed = self.start.elapsed();
        let received = self
            .received
            .as_ref()
            .map_or(0, |count| count.load(Ordering::Relaxed));
        let class = status_class(self.status);
        let record = |series: &Series| {
            series.requests.increment(1);
            series.duration.record(elapsed.as_secs_f64());
            if received > 0 {
                series.received.increment(received);
            }
            if self.sent > 0 {
                series.sent.increment(self.sent);
            }
        };
        match &self.endpoint {
            Cow::Borrowed(endpoint) => Series::with_cached(endpoint, self.method, class, record),
            Cow::Owned(endpoint) => {
                record(&Series::new(endpoint.clone().into(), self.method, class))
            }
        }
        let (principal_kind, principal_id) = self.facts.principal.unzip();
        tracing::info!(
            target: "berth::request",
            request_id = self.facts.id.as_ref().and_then(|id| id.to_str().ok()),
            method = self.method,
            endpoint = &*self.endpoint,
            repository = self.facts.repository.as_ref().map(RepoName::as_str),
            status = self.status.as_u16(),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            bytes_in = received,
            bytes_out = self.sent,
            principal_kind,
            principal_id = principal_id.flatten().map(|id| id.0),
            client = self.client.map(tracing::field::display),
            "request"
        );
    }
}

/// The metric handles of one endpoint × method × status class.
#[derive(Clone)]
struct Series {
    requests: metrics::Counter,
    duration: metrics::Histogram,
    received: metrics::Counter,
    sent: metrics::Counter,
}

/// Cached series by (endpoint, method, class) — all static strings, compared by address.
type SeriesCache = Vec<((usize, usize, usize), Series)>;

thread_local! {
    /// Each worker thread's handles for static labels: after the first request of a kind,
    /// recording is a few atomic adds, with no key built or looked up in the recorder.
    static SERIES: RefCell<SeriesCache> = const { RefCell::new(Vec::new()) };
}

impl Series {
    fn new(endpoint: metrics::SharedString, method: &'static str, class: &'static str) -> Self {
        Series {
            requests: metrics::counter!(REQUESTS, "endpoint" => endpoint.clone(), "method" => method, "status" => class),
            duration: metrics::histogram!(DURATION, "endpoint" => endpoint.clone(), "method" => method),
            received: metrics::counter!(RECEIVED, "endpoint" => endpoint.clone()),
            sent: metrics::counter!(SENT, "endpoint" => endpoint),
        }
    }

    /// Calls `record` with this thread's handles for static labels (made on first use), without
    /// cloning them.
    fn with_cached(
        endpoint: &'static str,
        method: &'static str,
        class: &'static str,
        record: impl FnOnce(&Series),
    ) {
        let key = (
            endpoint.as_ptr() as usize,
            method.as_ptr() as usize,
            class.as_ptr() as usize,
        );
        SERIES.with(|cache| {
            if let Some((_, series)) = cache.borrow().iter().find(|(k, _)| *k == key) {
                return record(series);
            }
            let series = Series::new(endpoint.into(), method, class);
            record(&series);
            cache.borrow_mut().push((key, series));
        })
    }
}

/// A response body that counts its bytes and finishes its [`Record`] at its end (or when
/// dropped: a client that went away).
struct Observed {
    inner: Body,
    record: Option<Record>,
}

impl Observed {
    fn finish(&mut self) {
        if let Some(record) = self.record.take() {
            record.finish();
        }
    }
}

impl HttpBody for Observed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let poll = Pin::new(&mut self.inner).poll_frame(cx);
        match &poll {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(record)) = (frame.data_ref(), self.record.as_mut()) {
                    record.sent += data.len() as u64;
                }
                // Finished before the last bytes are written, so a client that reads them
                // sees the request counted.
                if self.inner.is_end_stream() {
                    self.finish();
                }
            }
            Poll::Ready(_) => self.finish(),
            Poll::Pending => {}
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A request body that counts the bytes passing through it.
struct CountIn {
    inner: Body,
    count: Arc<AtomicU64>,
}

impl HttpBody for CountIn {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let poll = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &poll
            && let Some(data) = frame.data_ref()
        {
            self.count.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A route template as a label: `/api/v3/repos/{owner}/{repo}` → `/api/v3/repos/:owner/:repo`
/// (braces in label values trip simple exposition parsers).
fn template_label(template: &str) -> String {
    template
        .chars()
        .filter(|c| *c != '}')
        .map(|c| if c == '{' { ':' } else { c })
        .collect()
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// The client's `X-Request-Id` when it is at most 64 characters of `[A-Za-z0-9._-]`, else 16
/// random bytes in hex.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(value) = headers.get(&X_REQUEST_ID)
        && sane_id(value.as_bytes())
    {
        return value.clone();
    }
    generate_id()
}

fn sane_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// 16 bytes from a per-process random seed and a counter, mixed (SplitMix64): unique within
/// the process, unpredictable across processes, and no system call per request.
fn generate_id() -> HeaderValue {
    static SEED: std::sync::OnceLock<[u64; 2]> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = SEED.get_or_init(|| {
        let mut bytes = [0u8; 16];
        // Without a random source, ids are still unique within the process.
        let _ = getrandom::fill(&mut bytes);
        let (a, b) = bytes.split_at(8);
        [
            u64::from_le_bytes(a.try_into().unwrap_or_default()),
            u64::from_le_bytes(b.try_into().unwrap_or_default()),
        ]
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&splitmix(seed[0] ^ n).to_be_bytes());
    bytes[8..].copy_from_slice(&splitmix(seed[1].wrapping_add(n)).to_be_bytes());
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 32];
    for (i, b) in bytes.iter().enumerate() {
        text[2 * i] = HEX[usize::from(b >> 4)];
        text[2 * i + 1] = HEX[usize::from(b & 15)];
    }
    HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// How `/metrics` is served: the recorder's rendering, and the bearer token it needs if any.
pub struct Exposition {
    /// Renders the Prometheus text format (the binary's recorder).
    pub render: Box<dyn Fn() -> String + Send + Sync>,
    /// SHA-256 of the token `Authorization: Bearer` must carry; `None`: served to anyone.
    token_hash: Option<[u8; 32]>,
}

impl Exposition {
    /// Serves `render`'s output, to holders of `token` only when one is given.
    pub fn new(render: Box<dyn Fn() -> String + Send + Sync>, token: Option<&str>) -> Self {
        Exposition {
            render,
            token_hash: token.map(|t| Sha256::digest(t.as_bytes()).into()),
        }
    }

    /// Whether `headers` carry the token (compared in constant time, as hashes).
    fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.token_hash else {
            return true;
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        presented.is_some_and(|token| {
            let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            bool::from(hash.ct_eq(expected))
        })
    }
}

/// The `/metrics` route over `exposition` (not served without one), for the main router or
/// the plain side listener.
pub fn router<S: Clone + Send + Sync + 'static>(
    exposition: Option<std::sync::Arc<Exposition>>,
) -> axum::Router<S> {
    axum::Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .with_state(exposition)
}

/// `GET /metrics`: the Prometheus text format; 401 without the configured bearer token.
async fn metrics(
    State(exposition): State<Option<std::sync::Arc<Exposition>>>,
    headers: HeaderMap,
) -> Response {
    let Some(exposition) = &exposition else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !exposition.admits(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\"")],
            "the metrics need `Authorization: Bearer <metrics_token>`\n",
        )
            .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        (exposition.render)(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_lose_their_braces() {
        assert_eq!(
            template_label("/api/v3/repos/{owner}/{repo}"),
            "/api/v3/repos/:owner/:repo"
        );
    }

    #[test]
    fn only_sane_client_ids_are_kept() {
        assert!(sane_id(b"abc-123"));
        assert!(sane_id(b"A.b_c-9"));
        assert!(!sane_id(b""));
        assert!(!sane_id(b"has space"));
        assert!(!sane_id(b"slash/no"));
        assert!(!sane_id(&[b'a'; 65]));
        assert!(sane_id(&[b'a'; 64]));
    }

    #[test]
    fn generated_ids_are_32_hex_and_differ() {
        let a = generate_id();
        let b = generate_id();
        assert_eq!(a.len(), 32);
        assert!(a.as_bytes().iter().all(u8::is_ascii_hexdigit));
        assert_ne!(a, b);
    }

    #[test]
    fn the_token_is_needed_when_set() {
        let exposition = Exposition::new(Box::new(String::new), Some("s3cret"));
        let mut headers = HeaderMap::new();
        assert!(!exposition.admits(&headers));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer nope"),
        );
        assert!(!exposition.admits(&headers));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert!(exposition.admits(&headers));
        assert!(Exposition::new(Box::new(String::new), None).admits(&HeaderMap::new()));
    }
}
