//! GitHub's rate limits on the management API: every `/api/v3` answer carries the
//! `x-ratelimit-*` headers of its caller's budget.
//!
//! A budget is per credential (per client address for anonymous callers, and for requests
//! whose credentials fail), counted in a window that starts with the key's first request and
//! lasts an hour, as on GitHub. Spent: 403 with `x-ratelimit-remaining: 0`, GitHub's primary
//! limit answer. More than the per-minute burst limit in one minute: 429 with `Retry-After`,
//! GitHub's secondary limit. A `304 Not Modified` gives its request back to the hourly
//! budget.
//!
//! The counts live in this process's memory, and a request is decided there: no database
//! call on the request path. Nodes sharing PostgreSQL share the hourly budgets through it
//! ([`RateLimiter::keep_synced`]): every [`SYNC`](crate::shared_counts::SYNC) (500 ms) a
//! node adds what each key counted since its last sync into the key's shared window, all
//! keys in one statement, and takes back each key's total and window start, which become
//! its own (the window, and so `x-ratelimit-reset`, is the same on every node, and starts
//! with the key's first request on the node that hands its count over first). A node keeps
//! reading a key for two seconds after it last counted a request of it, so it hears the
//! rest of the cluster spend the budget and refuses too; past that, it reads the key again
//! with the next request it serves for it.
//!
//! The bound: a node admits while its own view is under the limit, and that view misses only
//! what the other nodes counted in their last two syncs (the one they have not pushed yet,
//! and the one they pushed since this node last read), or, for a key it has not served for
//! two seconds, until its next sync. So with N nodes a window admits at most the limit plus
//! what the N nodes admit for the key in about two sync intervals (a second): a key spent
//! round-robin at a steady rate overshoots by about a second of that rate, and never by
//! more than N−1 times the limit (each node's view holds at least its own count). While the
//! database does not answer, each node counts alone and pushes its counts when it answers
//! again.
//!
//! The per-minute burst limit stays per node: it guards a node's share of the load, and N
//! nodes behind a balancer admit up to N times `per_minute` for one key in a minute. One
//! process alone (SQLite) counts only in memory, exactly as before.
//!
//! [`enforce`] resolves the caller once ([`crate::auth::Auth::caller`]) and hands the result
//! to the [`super::Who`] extractor, so a request still costs one credential lookup. Calls
//! the auth service; never the stores directly.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_core::access::token::{self, TokenKind};
use berth_core::access::{CredentialId, Grant, Principal};
use berth_core::ports::{CountDelta, Millis, SharedCount, SharedCounters, StoreResult, now_millis};
use sha2::{Digest as _, Sha256};

use super::GitHubError;
use crate::AppState;
use crate::auth::Caller;
use crate::origin::Origin;
use crate::shared_counts;

/// Where GitHub documents its rate limits.
const RATE_LIMIT_DOCS: &str =
    "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api";
/// Where GitHub documents its secondary (burst) limits.
const SECONDARY_DOCS: &str = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits";
/// The burst limit's window.
const MINUTE: Duration = Duration::from_secs(60);
/// Keys tracked before the first sweep of ended windows.
const SWEEP_AT: usize = 10_000;

/// The budgets, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests per window for a credential.
    pub per_hour: u32,
    /// Requests per window for a client address without (valid) credentials.
    pub anonymous_per_hour: u32,
    /// Requests per minute for any key before the secondary limit answers 429.
    pub per_minute: u32,
    /// The budget's window: an hour, shorter only in tests.
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_hour: 5000,
            anonymous_per_hour: 60,
            per_minute: 900,
            window: Duration::from_secs(3600),
        }
    }
}

/// Whose budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    /// A resolved credential.
    Credential(CredentialId),
    /// An app's secret, checked by its own endpoint: keyed by its SHA-256.
    AppSecret([u8; 32]),
    /// A client address (an IPv6 address by its /64, which one host usually holds whole).
    Address(IpAddr),
}

impl Key {
    fn address(ip: Option<IpAddr>) -> Key {
        let ip = match ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)) {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    IpAddr::V6(Ipv6Addr::from(prefix))
                }
            },
            v4 => v4,
        };
        Key::Address(ip)
    }

    /// The key's name among the nodes' shared counters: `api:cred:<id>`,
    /// `api:app:<sha256 hex>` or `api:addr:<address>`.
    fn shared_name(&self) -> String {
        match self {
            Key::Credential(id) => format!("api:cred:{}", id.0),
            Key::AppSecret(digest) => {
                let mut name = String::with_capacity(8 + 64);
                name.push_str("api:app:");
                for byte in digest {
                    let _ = write!(name, "{byte:02x}");
                }
                name
            }
            Key::Address(ip) => format!("api:addr:{ip}"),
        }
    }
}

/// The state of a budget, as the headers tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests per window.
    pub limit: u32,
    /// Requests counted in this window.
    pub used: u32,
    /// When the window ends, in seconds since the Unix epoch.
    pub reset: u64,
}

impl Quota {
    /// Requests left in this window.
    pub fn remaining(&self) -> u32 {
        self.limit.saturating_sub(self.used)
    }
}

/// What the budget says about one more request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Counted; serve it.
    Allowed(Quota),
    /// The window's budget is spent (403).
    Spent(Quota),
    /// Too many requests this minute (429); retry after this many seconds.
    Burst(Quota, u64),
}

/// One key's windows. Pure: the caller passes the clock.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    started: Instant,
    /// `started` in wall-clock time (ms since the epoch, rounded up): where the shared window
    /// begins when this node counts first.
    since: Millis,
    reset: u64,
    /// Requests counted in this window: this node's, and the other nodes' as of the last sync.
    used: u32,
    /// What this node added to `used` (refunds taken off) since it last handed its count to
    /// the shared store.
    unsynced: i64,
    /// Syncs left that read this key though it counted nothing (see
    /// [`shared_counts::due`]).
    rereads: u8,
    minute_started: Instant,
    minute_used: u32,
}

impl Bucket {
    fn new(now: Instant, epoch: Duration, window: Duration) -> Bucket {
        Bucket {
            started: now,
            since: Millis::try_from(epoch.as_micros().div_ceil(1000)).unwrap_or(Millis::MAX),
            reset: (epoch + window).as_secs_f64().ceil() as u64,
            used: 0,
            unsynced: 0,
            rereads: 0,
            minute_started: now,
            minute_used: 0,
        }
    }

    /// Whether both windows ended by `now`.
    fn ended(&self, now: Instant, window: Duration) -> bool {
        now.duration_since(self.started) >= window
            && now.duration_since(self.minute_started) >= MINUTE
    }

    /// Counts one request at `now` (`epoch`: the same instant as wall-clock time) against
    /// `limit` per `window` and `per_minute`; refused requests are not counted.
    fn charge(
        &mut self,
        now: Instant,
        epoch: Duration,
        limit: u32,
        per_minute: u32,
        window: Duration,
    ) -> Verdict {
        if now.duration_since(self.started) >= window {
            let minute = (self.minute_started, self.minute_used);
            *self = Bucket::new(now, epoch, window);
            (self.minute_started, self.minute_used) = minute;
        }
        let since_minute = now.duration_since(self.minute_started);
        if since_minute >= MINUTE {
            self.minute_started = now;
            self.minute_used = 0;
        }
        let quota = Quota {
            limit,
            used: self.used,
            reset: self.reset,
        };
        if self.used >= limit {
            return Verdict::Spent(Quota {
                used: limit,
                ..quota
            });
        }
        if self.minute_used >= per_minute {
            let wait = MINUTE.saturating_sub(now.duration_since(self.minute_started));
            return Verdict::Burst(quota, wait.as_secs_f64().ceil().max(1.0) as u64);
        }
        self.used += 1;
        self.unsynced += 1;
        self.minute_used += 1;
        Verdict::Allowed(Quota {
            used: self.used,
            ..quota
        })
    }

    /// Gives back a request counted at `charged` (a 304), unless its window has ended.
    fn refund(&mut self, charged: Instant, window: Duration) {
        if charged >= self.started && charged.duration_since(self.started) < window && self.used > 0
        {
            self.used -= 1;
            self.unsynced -= 1;
        }
    }

    /// Hands over what this node counted since the last sync: the delta to add to the shared
    /// window.
    fn take(&mut self) -> i64 {
        std::mem::take(&mut self.unsynced)
    }

    /// Takes back a delta [`Bucket::take`] handed over in the window that began at
    /// `counted_in`, when the shared store did not count it.
    fn give_back(&mut self, counted_in: Instant, delta: i64) {
        if self.started == counted_in {
            self.unsynced += delta;
        }
    }

    /// Adopts the shared window the delta handed over in the window that began at
    /// `counted_in` went into: `count` says when it began (`started` here) and what every
    /// node counted in it, and it lasts `window`. What this node counted since then is added
    /// on top (it is in its next delta). Nothing changes when this window ended meanwhile and
    /// a new one began here: its counts are not in the total.
    fn settle(
        &mut self,
        counted_in: Instant,
        count: SharedCount,
        started: Instant,
        window: Millis,
    ) {
        if self.started != counted_in {
            return;
        }
        self.started = started;
        self.since = count.started_at;
        let ends = count.started_at.saturating_add(window).max(0);
        self.reset = u64::try_from(ends).unwrap_or(0).div_ceil(1000);
        let used = i64::try_from(count.total)
            .unwrap_or(i64::MAX)
            .saturating_add(self.unsynced);
        self.used = u32::try_from(used.max(0)).unwrap_or(u32::MAX);
    }
}

/// One key's count handed to the shared store by [`RateLimiter::pending`].
#[derive(Debug, Clone, Copy)]
struct Pending {
    key: Key,
    /// What the key's bucket counted since the last sync.
    delta: i64,
    /// When the bucket's window began, as the bucket had it then.
    counted_in: Instant,
    /// The same in wall-clock time.
    since: Millis,
}

/// The budgets of every key seen in the last window, in this process's memory, shared with
/// the other nodes by [`RateLimiter::keep_synced`] when there are any.
#[derive(Debug)]
pub struct RateLimiter {
    limits: Limits,
    buckets: Mutex<Buckets>,
}

#[derive(Debug)]
struct Buckets {
    map: HashMap<Key, Bucket>,
    /// Size at which ended windows are swept next.
    sweep_at: usize,
}

impl RateLimiter {
    /// A limiter with `limits`, tracking nobody yet.
    pub fn new(limits: Limits) -> Self {
        RateLimiter {
            limits,
            buckets: Mutex::new(Buckets {
                map: HashMap::new(),
                sweep_at: SWEEP_AT,
            }),
        }
    }

    fn limit(&self, key: &Key) -> u32 {
        match key {
            Key::Address(_) => self.limits.anonymous_per_hour,
            _ => self.limits.per_hour,
        }
    }

    fn charge(&self, key: Key, now: Instant) -> Verdict {
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let window = self.limits.window;
        let limit = self.limit(&key);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.map.len() >= buckets.sweep_at {
            buckets.map.retain(|_, b| !b.ended(now, window));
            // Sweeping again only once the live keys doubled keeps the cost per request
            // constant, and the map never holds more than twice the keys of the last window.
            buckets.sweep_at = SWEEP_AT.max(buckets.map.len() * 2);
        }
        buckets
            .map
            .entry(key)
            .or_insert_with(|| Bucket::new(now, epoch, window))
            .charge(now, epoch, limit, self.limits.per_minute, window)
    }

    /// The budget of `key` as it stands, counting nothing: what `GET /rate_limit` shows
    /// (GitHub does not count that request).
    fn peek(&self, key: Key, now: Instant) -> Quota {
        let limit = self.limit(&key);
        let window = self.limits.window;
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        match buckets.map.get(&key) {
            Some(bucket) if now.duration_since(bucket.started) < window => Quota {
                limit,
                used: bucket.used,
                reset: bucket.reset,
            },
            _ => {
                let epoch = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                Quota {
                    limit,
                    used: 0,
                    reset: (epoch + window).as_secs_f64().ceil() as u64,
                }
            }
        }
    }

    fn refund(&self, key: Key, charged: Instant) -> Option<Quota> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.map.get_mut(&key)?;
        bucket.refund(charged, self.limits.window);
        Some(Quota {
            limit: self.limit(&key),
            used: bucket.used,
            reset: bucket.reset,
        })
    }

    /// Adds what this node counted since the last sync into the shared windows, in one call,
    /// and makes each key's shared total and window its own.
    pub async fn sync(&self, shared: &dyn SharedCounters) -> StoreResult<()> {
        let pending = self.pending(Instant::now());
        if pending.is_empty() {
            return Ok(());
        }
        let deltas: Vec<CountDelta> = pending
            .iter()
            .map(|p| CountDelta {
                key: p.key.shared_name(),
                delta: p.delta,
                since: p.since,
            })
            .collect();
        let window = shared_counts::millis(self.limits.window);
        match shared.add_counts(&deltas, window, now_millis()).await {
            Ok(counts) => {
                self.settle(&pending, &counts, Instant::now(), now_millis());
                Ok(())
            }
            Err(err) => {
                self.give_back(&pending);
                Err(err)
            }
        }
    }

    /// Syncs with `shared` (the database the nodes share) every
    /// [`SYNC`](crate::shared_counts::SYNC), until the process exits: spawned by the binary
    /// when there are other nodes to count with.
    pub async fn keep_synced(self: Arc<Self>, shared: Arc<dyn SharedCounters>) {
        let window = self.limits.window;
        shared_counts::keep_synced("api_hourly", window, shared, move |shared| {
            let limiter = self.clone();
            async move { limiter.sync(&*shared).await }
        })
        .await;
    }

    /// Takes every key's count since the last sync, for the shared store, with the keys
    /// still read after their last count (delta 0). A window that ended by `now` goes
    /// nowhere: its counts would begin the next one.
    fn pending(&self, now: Instant) -> Vec<Pending> {
        let window = self.limits.window;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets
            .map
            .iter_mut()
            .filter_map(|(key, bucket)| {
                let live = now.duration_since(bucket.started) < window;
                let due = live && shared_counts::due(bucket.unsynced, &mut bucket.rereads);
                due.then(|| Pending {
                    key: *key,
                    counted_in: bucket.started,
                    since: bucket.since,
                    delta: bucket.take(),
                })
            })
            .collect()
    }

    /// Makes the shared store's `counts` (one per `pending`, read when this process's clock
    /// read `now` and the wall clock `now_ms`) the keys' own.
    fn settle(&self, pending: &[Pending], counts: &[SharedCount], now: Instant, now_ms: Millis) {
        let window = shared_counts::millis(self.limits.window);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        for (p, count) in pending.iter().zip(counts) {
            if let Some(bucket) = buckets.map.get_mut(&p.key) {
                let started = shared_counts::instant_at(count.started_at, now, now_ms);
                bucket.settle(p.counted_in, *count, started, window);
            }
        }
    }

    /// Takes back the counts of `pending` the shared store did not take, for the next sync.
    fn give_back(&self, pending: &[Pending]) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        for p in pending {
            if let Some(bucket) = buckets.map.get_mut(&p.key) {
                bucket.give_back(p.counted_in, p.delta);
            }
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.lock().unwrap().map.len()
    }
}

/// The caller [`enforce`] resolved, for [`super::Who`] to take instead of resolving again.
#[derive(Debug, Clone)]
pub(super) struct Resolved(pub(super) Result<Caller, GitHubError>);

/// Middleware on `/api/v3`: charges the caller's budget, refuses a spent one (403) or a
/// burst (429), and adds the `x-ratelimit-*` headers to every answer, and `X-OAuth-Scopes`
/// (the classic token's scopes, as GitHub lists them) to every answer to such a token.
/// `GET /rate_limit` is not counted, as on GitHub; the handler reads the caller's [`Quota`]
/// from the request's extensions.
pub async fn enforce(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let client = request.extensions().get::<Origin>().map(|o| o.client.ip());
    let mut scopes = None;
    let (key, name) = match app_secret(request.headers()) {
        Some(digest) => (Key::AppSecret(digest), "this app".to_owned()),
        None => {
            let resolved = state
                .auth
                .caller(request.headers(), client)
                .await
                .map_err(super::caller_refused);
            if let Ok(Caller {
                principal: Principal::Token(credential),
                token_scopes: None,
            }) = &resolved
                && let Grant::Classic { scopes: held, .. } = &credential.grant
            {
                scopes = HeaderValue::from_str(&held.names().join(", ")).ok();
            }
            let who = match &resolved {
                Ok(Caller {
                    principal: Principal::Token(credential),
                    token_scopes: None,
                }) => Some((Key::Credential(credential.id), credential.login.clone())),
                // Anonymous, a registry token (refused by the API) or failed credentials.
                _ => None,
            };
            request.extensions_mut().insert(Resolved(resolved));
            who.unwrap_or_else(|| (Key::address(client), address_name(client)))
        }
    };
    let limiter = &state.api_limits;
    let now = Instant::now();
    if uncounted(request.method(), request.uri().path()) {
        let quota = limiter.peek(key, now);
        request.extensions_mut().insert(quota);
        let mut response = next.run(request).await;
        add_headers(response.headers_mut(), quota);
        if let Some(scopes) = scopes {
            response.headers_mut().insert("x-oauth-scopes", scopes);
        }
        return response;
    }
    let quota = match limiter.charge(key, now) {
        Verdict::Allowed(quota) => quota,
        Verdict::Spent(quota) => {
            crate::observe::refused("api_hourly");
            return super::headers::stamp(spent(quota, &name, &key, limiter.limits.window));
        }
        Verdict::Burst(quota, wait) => {
            crate::observe::refused("api_burst");
            return super::headers::stamp(burst(quota, wait, limiter.limits.per_minute));
        }
    };
    let mut response = next.run(request).await;
    let quota = match response.status() {
        StatusCode::NOT_MODIFIED => limiter.refund(key, now).unwrap_or(quota),
        // Credentials the endpoint itself refused: the address pays, as for a bad token.
        StatusCode::UNAUTHORIZED if !matches!(key, Key::Address(_)) => {
            limiter.refund(key, now);
            match limiter.charge(Key::address(client), Instant::now()) {
                Verdict::Allowed(q) | Verdict::Spent(q) | Verdict::Burst(q, _) => q,
            }
        }
        _ => quota,
    };
    add_headers(response.headers_mut(), quota);
    if let Some(scopes) = scopes {
        response.headers_mut().insert("x-oauth-scopes", scopes);
    }
    response
}

/// Whether a request is not counted against the budget: `GET /rate_limit`, as on GitHub.
fn uncounted(method: &axum::http::Method, path: &str) -> bool {
    let path = path.strip_prefix("/api/v3").unwrap_or(path);
    method == axum::http::Method::GET && path.trim_end_matches('/') == "/rate_limit"
}

/// The SHA-256 of an app secret presented as `Bearer` or `token`: the installation token
/// endpoint checks it itself, and it is no credential of [`crate::auth::Auth::caller`].
fn app_secret(headers: &HeaderMap) -> Option<[u8; 32]> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = value.split_once(' ')?;
    let secret = secret.trim();
    let bearer = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token");
    (bearer && token::recognize(secret) == Some(TokenKind::AppSecret))
        .then(|| Sha256::digest(secret.as_bytes()).into())
}

fn address_name(client: Option<IpAddr>) -> String {
    match client {
        Some(ip) => format!("your IP address ({ip})"),
        None => "your IP address".to_owned(),
    }
}

fn add_headers(headers: &mut HeaderMap, quota: Quota) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(quota.limit));
    headers.insert(
        "x-ratelimit-remaining",
        HeaderValue::from(quota.remaining()),
    );
    headers.insert("x-ratelimit-used", HeaderValue::from(quota.used));
    headers.insert("x-ratelimit-reset", HeaderValue::from(quota.reset));
    headers.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
}

/// GitHub's primary limit answer: 403, `x-ratelimit-remaining: 0`.
fn spent(quota: Quota, name: &str, key: &Key, window: Duration) -> Response {
    let per = if window == Duration::from_secs(3600) {
        "hour".to_owned()
    } else {
        format!("{} seconds", window.as_secs_f64())
    };
    let at = berth_core::github::time(
        i64::try_from(quota.reset.saturating_mul(1000)).unwrap_or(i64::MAX),
    );
    let hint = if matches!(key, Key::Address(_)) {
        " (Authenticated requests get a higher rate limit: send a token.)"
    } else {
        ""
    };
    let message = format!(
        "API rate limit exceeded for {name}.{hint} The limit of {} requests per {per} resets at {at}.",
        quota.limit
    );
    let mut response = GitHubError {
        documentation_url: RATE_LIMIT_DOCS,
        ..GitHubError::new(StatusCode::FORBIDDEN, message)
    }
    .into_response();
    add_headers(response.headers_mut(), quota);
    response
}

/// GitHub's secondary limit answer: 429 with `Retry-After`.
fn burst(quota: Quota, wait: u64, per_minute: u32) -> Response {
    let message = format!(
        "You have exceeded a secondary rate limit: more than {per_minute} requests in one minute. Wait {wait} seconds before you try again."
    );
    let mut response = GitHubError {
        documentation_url: SECONDARY_DOCS,
        retry_after: Some(wait),
        ..GitHubError::new(StatusCode::TOO_MANY_REQUESTS, message)
    }
    .into_response();
    add_headers(response.headers_mut(), quota);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);
    const EPOCH: Duration = Duration::from_secs(1_700_000_000);

    fn used(verdict: Verdict) -> u32 {
        match verdict {
            Verdict::Allowed(q) => q.used,
            other => panic!("refused: {other:?}"),
        }
    }

    #[test]
    fn a_window_counts_from_the_first_request_and_resets_an_hour_later() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(t0, EPOCH, HOUR);
        assert_eq!(used(bucket.charge(t0, EPOCH, 3, 100, HOUR)), 1);
        let later = t0 + Duration::from_secs(1800);
        assert_eq!(used(bucket.charge(later, EPOCH, 3, 100, HOUR)), 2);
        let last = bucket.charge(later, EPOCH, 3, 100, HOUR);
        assert_eq!(
            last,
            Verdict::Allowed(Quota {
                limit: 3,
                used: 3,
                reset: EPOCH.as_secs() + 3600
            })
        );
        let Verdict::Spent(quota) = bucket.charge(later, EPOCH, 3, 100, HOUR) else {
            panic!("not spent");
        };
        assert_eq!(
            (quota.remaining(), quota.reset),
            (0, EPOCH.as_secs() + 3600)
        );
        // Refusals are not counted; the window ends an hour after its first request.
        let next = t0 + HOUR;
        let next_epoch = EPOCH + HOUR;
        let Verdict::Allowed(quota) = bucket.charge(next, next_epoch, 3, 100, HOUR) else {
            panic!("not reset");
        };
        assert_eq!((quota.used, quota.reset), (1, EPOCH.as_secs() + 7200));
    }

    #[test]
    fn the_burst_limit_counts_a_minute_and_says_how_long_to_wait() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(t0, EPOCH, HOUR);
        for _ in 0..2 {
            used(bucket.charge(t0, EPOCH, 100, 2, HOUR));
        }
        let t = t0 + Duration::from_millis(20_500);
        let Verdict::Burst(quota, wait) = bucket.charge(t, EPOCH, 100, 2, HOUR) else {
            panic!("no burst limit");
        };
        assert_eq!((quota.used, wait), (2, 40));
        assert_eq!(used(bucket.charge(t0 + MINUTE, EPOCH, 100, 2, HOUR)), 3);
    }

    #[test]
    fn a_refund_gives_back_a_request_of_the_same_window_only() {
        let t0 = Instant::now();
        let window = Duration::from_secs(2);
        let mut bucket = Bucket::new(t0, EPOCH, window);
        used(bucket.charge(t0, EPOCH, 5, 100, window));
        used(bucket.charge(t0, EPOCH, 5, 100, window));
        bucket.refund(t0, window);
        assert_eq!(bucket.used, 1);
        let t1 = t0 + Duration::from_secs(3);
        used(bucket.charge(t1, EPOCH, 5, 100, window));
        bucket.refund(t0, window);
        assert_eq!(bucket.used, 1, "the old window's request is not refunded");
    }

    #[test]
    fn keys_have_their_own_budgets_and_addresses_the_anonymous_one() {
        let limiter = RateLimiter::new(Limits {
            per_hour: 3,
            anonymous_per_hour: 1,
            ..Limits::default()
        });
        let now = Instant::now();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(matches!(
            limiter.charge(Key::address(Some(ip)), now),
            Verdict::Allowed(Quota { limit: 1, .. })
        ));
        assert!(matches!(
            limiter.charge(Key::address(Some(ip)), now),
            Verdict::Spent(_)
        ));
        assert!(matches!(
            limiter.charge(Key::Credential(CredentialId(7)), now),
            Verdict::Allowed(Quota {
                limit: 3,
                used: 1,
                ..
            })
        ));
        assert_eq!(
            limiter
                .refund(Key::Credential(CredentialId(7)), now)
                .unwrap()
                .used,
            0
        );
        assert_eq!(limiter.refund(Key::Credential(CredentialId(8)), now), None);
    }

    #[test]
    fn an_ipv6_host_is_one_key_per_64_and_mapped_ipv4_is_ipv4() {
        let a = Key::address(Some("2001:db8:1:2::1".parse().unwrap()));
        let b = Key::address(Some("2001:db8:1:2:ffff::9".parse().unwrap()));
        let c = Key::address(Some("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mapped = Key::address(Some("::ffff:10.0.0.1".parse().unwrap()));
        assert_eq!(mapped, Key::Address("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn ended_windows_are_swept_so_memory_stays_bounded() {
        let limiter = RateLimiter::new(Limits {
            window: Duration::from_secs(1),
            ..Limits::default()
        });
        let t0 = Instant::now();
        for id in 0..SWEEP_AT as i64 {
            limiter.charge(Key::Credential(CredentialId(id)), t0);
        }
        assert_eq!(limiter.tracked(), SWEEP_AT);
        // Both windows (the hour's and the minute's) of every key ended.
        limiter.charge(Key::Credential(CredentialId(-1)), t0 + MINUTE);
        assert_eq!(limiter.tracked(), 1);
    }

    /// The count of `key`'s bucket.
    fn used_by(limiter: &RateLimiter, key: Key) -> u32 {
        limiter.buckets.lock().unwrap().map[&key].used
    }

    #[test]
    fn a_sync_raises_the_count_to_the_shared_total_and_hands_each_request_over_once() {
        let limiter = RateLimiter::new(Limits {
            per_hour: 12,
            ..Limits::default()
        });
        let key = Key::Credential(CredentialId(7));
        let t0 = Instant::now();
        for _ in 0..3 {
            used(limiter.charge(key, t0));
        }
        let first = limiter.pending(t0);
        assert_eq!((first.len(), first[0].delta), (1, 3));
        // A request while the statement runs; the store answers 10 (7 from other nodes), in
        // a window another node began two seconds before.
        used(limiter.charge(key, t0));
        let (now, now_ms) = (t0 + Duration::from_secs(3), 1_700_000_000_000);
        let started_at = now_ms - 2000;
        let counts = [SharedCount {
            total: 10,
            started_at,
        }];
        limiter.settle(&first, &counts, now, now_ms);
        assert_eq!(
            used_by(&limiter, key),
            11,
            "10 shared and the one in flight"
        );
        let Verdict::Allowed(quota) = limiter.charge(key, now) else {
            panic!("refused");
        };
        assert_eq!(
            (quota.used, quota.reset),
            (12, (started_at + 3_600_000) as u64 / 1000),
            "the shared window is the key's"
        );
        assert!(matches!(limiter.charge(key, now), Verdict::Spent(_)));
        // Only what was counted since the last hand-over goes next: not the 3 again.
        let second = limiter.pending(now);
        assert_eq!(second[0].delta, 2);
        let reread = limiter.pending(now);
        assert_eq!(reread[0].delta, 0, "read again, but nothing counted since");
        // Other nodes went past the limit meanwhile: the count says so, refusals say spent.
        let counts = [SharedCount {
            total: 15,
            started_at,
        }];
        limiter.settle(&second, &counts, now, now_ms);
        assert_eq!(used_by(&limiter, key), 15);
        let Verdict::Spent(quota) = limiter.charge(key, now) else {
            panic!("not spent");
        };
        assert_eq!(quota.remaining(), 0);
        // The window ends when the shared one does: an hour after it began elsewhere.
        let next = now + HOUR - Duration::from_secs(2);
        assert_eq!(used(limiter.charge(key, next)), 1);
    }

    #[test]
    fn a_refund_is_handed_over_as_a_negative_count() {
        let limiter = RateLimiter::new(Limits::default());
        let key = Key::Credential(CredentialId(7));
        let t0 = Instant::now();
        used(limiter.charge(key, t0));
        let first = limiter.pending(t0);
        let counts = [SharedCount {
            total: 1,
            started_at: 1_700_000_000_000,
        }];
        limiter.settle(&first, &counts, t0, 1_700_000_000_000);
        // The 304 comes back after its request was handed over.
        limiter.refund(key, t0);
        assert_eq!(used_by(&limiter, key), 0);
        assert_eq!(limiter.pending(t0)[0].delta, -1);
    }

    #[test]
    fn counts_the_store_did_not_take_go_with_the_next_sync_and_ended_windows_stay_apart() {
        let window = Duration::from_secs(2);
        let limiter = RateLimiter::new(Limits {
            window,
            ..Limits::default()
        });
        let key = Key::address(Some("10.0.0.1".parse().unwrap()));
        let t0 = Instant::now();
        used(limiter.charge(key, t0));
        used(limiter.charge(key, t0));
        let failed = limiter.pending(t0);
        limiter.give_back(&failed);
        let retried = limiter.pending(t0);
        assert_eq!(retried[0].delta, 2, "given back whole, once");
        // The window ends here while the statement runs: its answer is of the old window, and
        // the new window's request stays this node's to hand over.
        let t1 = t0 + Duration::from_secs(3);
        used(limiter.charge(key, t1));
        let counts = [SharedCount {
            total: 50,
            started_at: 1_700_000_000_000,
        }];
        limiter.settle(&retried, &counts, t1, 1_700_000_000_000);
        assert_eq!(used_by(&limiter, key), 1);
        assert_eq!(limiter.pending(t1)[0].delta, 1);
        // A count made in a window that has ended by the sync goes nowhere.
        used(limiter.charge(key, t1));
        assert!(limiter.pending(t1 + window).is_empty());
    }

    #[test]
    fn shared_names_say_which_limit_and_which_key() {
        assert_eq!(
            Key::Credential(CredentialId(42)).shared_name(),
            "api:cred:42"
        );
        let ip = Key::address(Some("2001:db8:1:2::1".parse().unwrap()));
        assert_eq!(ip.shared_name(), "api:addr:2001:db8:1:2::");
        let app = Key::AppSecret([0xab; 32]).shared_name();
        assert_eq!(app, format!("api:app:{}", "ab".repeat(32)));
    }

    #[test]
    fn an_app_secret_is_keyed_by_its_hash_and_tokens_are_not() {
        let secret = token::Secret::generate(TokenKind::AppSecret);
        let mut headers = HeaderMap::new();
        let value = format!("Bearer {}", secret.expose());
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        assert_eq!(
            app_secret(&headers),
            Some(Sha256::digest(secret.expose().as_bytes()).into())
        );
        let classic = token::Secret::generate(TokenKind::Classic);
        let value = format!("token {}", classic.expose());
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        assert_eq!(app_secret(&headers), None);
    }
}
