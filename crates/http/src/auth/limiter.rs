//! Failed authentications per client address, in fixed one-minute windows: past the limit,
//! an address is refused (429 with `Retry-After`) until its window ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked before stale windows are swept.
const SWEEP_AT: usize = 10_000;

/// Counts failures per address.
#[derive(Debug)]
pub struct FailureLimiter {
    limit: u32,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
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
        let (start, failures) = windows.get(&ip)?;
        let elapsed = start.elapsed();
        let wait = (*failures >= self.limit && elapsed < WINDOW).then(|| WINDOW - elapsed);
        if wait.is_some() {
            crate::observe::refused("auth_failures");
        }
        wait
    }

    /// Records a failure from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= SWEEP_AT {
            windows.retain(|_, (start, _)| start.elapsed() < WINDOW);
        }
        let entry = windows.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
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
}
