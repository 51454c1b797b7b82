//! What the limiters share to count across nodes: the interval of their syncs, turning the
//! shared store's wall-clock window starts into this process's instants, and the task that
//! syncs a limiter with [`SharedCounters`] until the process exits.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_core::ports::{Millis, SharedCounters, StoreResult, now_millis};

/// How often a limiter adds its counts into the shared store and takes back the totals:
/// the most a node's view of a key lags behind what the other nodes pushed.
pub const SYNC: Duration = Duration::from_millis(500);

/// Syncs in which a limiter still reads a key after it last handed over a count for it (two
/// seconds at [`SYNC`]): a node whose share of a key's requests ended still hears the rest of
/// the cluster's, so it refuses like every other node once the key is spent elsewhere.
const REREADS: u8 = 4;

/// Syncs between two cleanups of ended windows (ten minutes at [`SYNC`]).
const FORGET_EVERY: u64 = 1200;

/// Whether a key goes into this sync: when it counted something since the last one
/// (`unsynced`), and for [`REREADS`] syncs after that, counting them down in `rereads`.
pub(crate) fn due(unsynced: i64, rereads: &mut u8) -> bool {
    if unsynced != 0 {
        *rereads = REREADS;
        true
    } else if *rereads > 0 {
        *rereads -= 1;
        true
    } else {
        false
    }
}

/// `window` in milliseconds, as the shared store counts it.
pub(crate) fn millis(window: Duration) -> Millis {
    Millis::try_from(window.as_millis()).unwrap_or(Millis::MAX)
}

/// The instant of wall-clock time `at`, given that `now` is `now_ms` (another node's clock
/// may be ahead of this one's: such times lie in the future).
pub(crate) fn instant_at(at: Millis, now: Instant, now_ms: Millis) -> Instant {
    let offset = Duration::from_millis(now_ms.abs_diff(at));
    if at <= now_ms {
        now.checked_sub(offset).unwrap_or(now)
    } else {
        now.checked_add(offset).unwrap_or(now)
    }
}

/// Runs `sync` every [`SYNC`] and forgets the shared windows that ended a `window` ago every
/// ten minutes, until the process exits. A failing store is logged once (and its recovery):
/// meanwhile the limiter counts alone and keeps its counts for when the store answers.
pub(crate) async fn keep_synced<F, Fut>(
    what: &'static str,
    window: Duration,
    shared: Arc<dyn SharedCounters>,
    mut sync: F,
) where
    F: FnMut(Arc<dyn SharedCounters>) -> Fut,
    Fut: Future<Output = StoreResult<()>>,
{
    let mut ticks = tokio::time::interval(SYNC);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    for round in 1u64.. {
        ticks.tick().await;
        match sync(shared.clone()).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!(
                    limit = what,
                    "sharing the limit's counts with the other nodes again"
                );
            }
            Ok(()) => {}
            Err(err) if !failing => {
                failing = true;
                tracing::warn!(
                    limit = what,
                    error = %err,
                    "sharing the limit's counts failed; this node counts alone until the database answers"
                );
            }
            Err(err) => tracing::debug!(limit = what, error = %err, "sharing counts failed again"),
        }
        if round % FORGET_EVERY == 0 {
            match shared
                .forget_counts(now_millis().saturating_sub(millis(window)))
                .await
            {
                Ok(forgotten) => {
                    tracing::debug!(limit = what, forgotten, "forgot ended shared windows")
                }
                Err(err) => {
                    tracing::debug!(limit = what, error = %err, "forgetting ended shared windows failed")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_read_for_a_few_syncs_after_its_last_count() {
        let mut rereads = 0;
        assert!(!due(0, &mut rereads), "never counted: nothing to read");
        assert!(due(2, &mut rereads));
        for _ in 0..REREADS {
            assert!(due(0, &mut rereads));
        }
        assert!(!due(0, &mut rereads));
        assert!(due(-1, &mut rereads), "a refund is a count too");
    }

    #[test]
    fn wall_clock_times_become_instants_on_either_side_of_now() {
        let now = Instant::now() + Duration::from_secs(10);
        let now_ms = 1_700_000_000_000;
        assert_eq!(instant_at(now_ms, now, now_ms), now);
        assert_eq!(
            instant_at(now_ms - 1500, now, now_ms),
            now - Duration::from_millis(1500)
        );
        assert_eq!(
            instant_at(now_ms + 20, now, now_ms),
            now + Duration::from_millis(20)
        );
    }
}
