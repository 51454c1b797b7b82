//! Failed authentications per client address, in fixed one-minute windows: past the limit,
//! an address is refused (429 with `Retry-After`) until its window ends.
//!
//! The counts live in this process's memory, and a request is decided there. Nodes sharing
//! PostgreSQL share them through it ([`FailureLimiter::keep_synced`]): every
//! [`SYNC`](crate::shared_counts::SYNC) (500 ms) a node adds each address's failures since
//! its last sync into the address's shared window (`login:<address>`), all addresses in one
//! statement, and takes back the total and the window's start, which become its own. A node
//! keeps reading an address for two seconds after its last failure there, so it hears the
//! other nodes' failures and refuses too; past that, it reads the address again with its
//! next failure.
//!
//! The bound: a node's view misses only what the other nodes counted in their last two syncs
//! (or, for an address it has not seen fail for two seconds, until its next sync), so with N
//! nodes an address gets at most the limit plus the failures the N nodes let through in
//! about two sync intervals (a second), and never more than N times the limit, before every
//! node refuses it. One process alone (SQLite) counts only in memory, exactly as before.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_core::ports::{CountDelta, Millis, SharedCount, SharedCounters, StoreResult, now_millis};

use crate::shared_counts;

const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked before stale windows are swept.
const SWEEP_AT: usize = 10_000;

/// One address's window.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    /// `start` in wall-clock time: where the shared window begins when this node counts
    /// first.
    since: Millis,
    /// Failures in this window: this node's, and the other nodes' as of the last sync.
    failures: u32,
    /// This node's failures since it last handed its count to the shared store.
    unsynced: i64,
    /// Syncs left that read this address though it failed nothing (see
    /// [`shared_counts::due`]).
    rereads: u8,
}

impl Window {
    fn new(start: Instant) -> Window {
        Window {
            start,
            since: now_millis(),
            failures: 0,
            unsynced: 0,
            rereads: 0,
        }
    }
}

/// One address's count handed to the shared store by [`FailureLimiter::pending`].
#[derive(Debug, Clone, Copy)]
struct Pending {
    ip: IpAddr,
    /// Failures since the last sync.
    delta: i64,
    /// When the address's window began, as it was then.
    counted_in: Instant,
    /// The same in wall-clock time.
    since: Millis,
}

/// Counts failures per address.
#[derive(Debug)]
pub struct FailureLimiter {
    limit: u32,
    windows: Mutex<HashMap<IpAddr, Window>>,
}

impl FailureLimiter {
    /// Allows `limit` failures per address per minute.
    pub fn new(limit: u32) -> Self {
        FailureLimiter {
            limit,
            windows: Mutex::default(),
        }
    }

    /// How long `ip` must wait, if it has used up its failures.
    pub fn blocked(&self, ip: IpAddr) -> Option<Duration> {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let window = windows.get(&ip)?;
        let elapsed = window.start.elapsed();
        let wait = (window.failures >= self.limit && elapsed < WINDOW).then(|| WINDOW - elapsed);
        if wait.is_some() {
            crate::observe::refused("auth_failures");
        }
        wait
    }

    /// Records a failure from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= SWEEP_AT {
            windows.retain(|_, window| window.start.elapsed() < WINDOW);
        }
        let entry = windows.entry(ip).or_insert(Window::new(Instant::now()));
        if entry.start.elapsed() >= WINDOW {
            *entry = Window::new(Instant::now());
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.unsynced += 1;
    }

    /// Adds the failures counted since the last sync into the shared windows, in one call,
    /// and makes each address's shared total and window its own.
    pub async fn sync(&self, shared: &dyn SharedCounters) -> StoreResult<()> {
        let pending = self.pending();
        if pending.is_empty() {
            return Ok(());
        }
        let deltas: Vec<CountDelta> = pending
            .iter()
            .map(|p| CountDelta {
                key: format!("login:{}", p.ip),
                delta: p.delta,
                since: p.since,
            })
            .collect();
        let window = shared_counts::millis(WINDOW);
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
        shared_counts::keep_synced("auth_failures", WINDOW, shared, move |shared| {
            let limiter = self.clone();
            async move { limiter.sync(&*shared).await }
        })
        .await;
    }

    /// Takes every address's failures since the last sync, for the shared store, with the
    /// addresses still read after their last failure (delta 0). A window that has ended goes
    /// nowhere: its failures would begin the next one.
    fn pending(&self) -> Vec<Pending> {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows
            .iter_mut()
            .filter_map(|(ip, window)| {
                let live = window.start.elapsed() < WINDOW;
                let due = live && shared_counts::due(window.unsynced, &mut window.rereads);
                due.then(|| Pending {
                    ip: *ip,
                    delta: std::mem::take(&mut window.unsynced),
                    counted_in: window.start,
                    since: window.since,
                })
            })
            .collect()
    }

    /// Makes the shared store's `counts` (one per `pending`, read when this process's clock
    /// read `now` and the wall clock `now_ms`) the addresses' own: the shared window, and its
    /// total with what this node counted since on top. An address whose window ended and
    /// began again here meanwhile keeps its own (the total is of the old one).
    fn settle(&self, pending: &[Pending], counts: &[SharedCount], now: Instant, now_ms: Millis) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        for (p, count) in pending.iter().zip(counts) {
            let Some(window) = windows.get_mut(&p.ip) else {
                continue;
            };
            if window.start != p.counted_in {
                continue;
            }
            window.start = shared_counts::instant_at(count.started_at, now, now_ms);
            window.since = count.started_at;
            let failures = i64::try_from(count.total)
                .unwrap_or(i64::MAX)
                .saturating_add(window.unsynced);
            window.failures = u32::try_from(failures.max(0)).unwrap_or(u32::MAX);
        }
    }

    /// Takes back the counts of `pending` the shared store did not take, for the next sync.
    fn give_back(&self, pending: &[Pending]) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        for p in pending {
            if let Some(window) = windows.get_mut(&p.ip)
                && window.start == p.counted_in
            {
                window.unsynced += p.delta;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_the_limit_and_others_are_not() {
        let limiter = FailureLimiter::new(3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..2 {
            limiter.failed(a);
        }
        assert!(limiter.blocked(a).is_none());
        limiter.failed(a);
        assert!(limiter.blocked(a).is_some_and(|d| d <= WINDOW));
        assert!(limiter.blocked(b).is_none());
    }

    #[test]
    fn a_sync_blocks_an_address_for_the_failures_of_every_node_counted_once() {
        let limiter = FailureLimiter::new(5);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        limiter.failed(a);
        limiter.failed(a);
        let first = limiter.pending();
        assert_eq!((first.len(), first[0].delta), (1, 2));
        // A failure while the statement runs; the other nodes counted 3 in a window that
        // began 20 seconds ago.
        limiter.failed(a);
        let now_ms = 1_700_000_000_000;
        let counts = [SharedCount {
            total: 5,
            started_at: now_ms - 20_000,
        }];
        limiter.settle(&first, &counts, Instant::now(), now_ms);
        let wait = limiter.blocked(a).expect("6 failures of 5: blocked");
        assert!(
            (Duration::from_secs(39)..=Duration::from_secs(40)).contains(&wait),
            "until the shared window ends: {wait:?}"
        );
        let second = limiter.pending();
        assert_eq!(second[0].delta, 1, "only the failure not handed over yet");
        assert_eq!(limiter.pending()[0].delta, 0, "read again, nothing counted");
    }

    #[test]
    fn failures_the_store_did_not_take_go_with_the_next_sync() {
        let limiter = FailureLimiter::new(5);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        limiter.failed(a);
        let failed = limiter.pending();
        limiter.give_back(&failed);
        limiter.failed(a);
        assert_eq!(limiter.pending()[0].delta, 2);
    }
}
