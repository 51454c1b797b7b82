//! Waiting, before a server starts, until the host has finished the work the bench's own
//! deletions gave it.
//!
//! These VMs' disks are mounted with `discard`: deleting a file makes the host trim its blocks,
//! and it does that for a while after the deletion returns, on the CPUs the VM's own work
//! would run on. A VM whose CPUs are busy then counts the host's time as steal. Measured with
//! two CPU spinners and a loop of 256 MiB durable writes: after 6 GiB of synced files were
//! deleted (what each server leaves: its blobs and its ceiling's files), 0.10–0.30 s of steal
//! per second, on and off, for 17 s; without a deletion, 0.00–0.02 (BENCHMARKS.md, "Lean and
//! steady, part 19"). So the runs measured first after a server stopped counted the host's
//! work as steal: the ceiling's run before the next server's monolithic push, in 7 of 18 runs
//! (0–1 of 18 with this wait).
//!
//! The host's trimming cannot be seen from inside the VM except as that steal, and steal shows
//! only while the VM's CPUs want to run. So [`until_quiet`] keeps every CPU busy and samples the
//! machine's steal until a whole [`WINDOW`] passes with next to none, or gives up after a
//! limit. On a machine that counts no steal (not a VM) it returns after one window.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::server::machine_steal_seconds;

/// How often the steal is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// How long the machine must stay quiet: samples in a row, 3 s. The host trims in bursts with
/// quiet gaps of up to about 2 s between them.
const WINDOW: usize = 12;
/// The most steal, in CPU seconds, a quiet window may count: the VM's own background with
/// every CPU busy and nothing deleted (0.00–0.02 s per second).
const QUIET_STEAL_S: f64 = 0.04;

/// What waiting found.
pub struct Settled {
    /// How long it waited.
    pub waited: Duration,
    /// The steal counted meanwhile, in CPU seconds.
    pub steal_s: f64,
    /// Whether the machine went quiet (`false`: it gave up at the limit).
    pub quiet: bool,
}

/// The last [`WINDOW`] samples of steal: quiet once it holds that many and they add up to no
/// more than [`QUIET_STEAL_S`].
#[derive(Default)]
struct Window {
    samples: std::collections::VecDeque<f64>,
}

impl Window {
    /// Adds the steal counted over one sample; says whether the window is now quiet.
    fn push(&mut self, steal_s: f64) -> bool {
        if self.samples.len() == WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back(steal_s);
        self.samples.len() == WINDOW && self.samples.iter().sum::<f64>() <= QUIET_STEAL_S
    }
}

/// [`until_quiet`] on a blocking thread, given up at once (an error saying `interrupted`) on
/// Ctrl-C: the bench's runtime handles that signal once a server has run, so a wait outside
/// it would not see it.
pub async fn until_quiet_or_interrupted(limit: Duration) -> anyhow::Result<Settled> {
    let cancel = Arc::new(AtomicBool::new(false));
    let waiting = tokio::task::spawn_blocking({
        let cancel = Arc::clone(&cancel);
        move || until_quiet(limit, &cancel)
    });
    tokio::pin!(waiting);
    tokio::select! {
        settled = &mut waiting => settled?,
        _ = tokio::signal::ctrl_c() => {
            cancel.store(true, Ordering::Relaxed);
            // Stops within one sample; its spinners are joined before it returns.
            let _ = waiting.await;
            Err(anyhow::anyhow!("interrupted"))
        }
    }
}

/// Keeps every CPU busy and samples the machine's steal until a [`WINDOW`] of samples counts
/// next to none, `limit` has passed, or `cancel` is set.
fn until_quiet(limit: Duration, cancel: &AtomicBool) -> anyhow::Result<Settled> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let stop = AtomicBool::new(false);
    // Scoped: the spinners are joined (and a panic of theirs raised) before this returns.
    std::thread::scope(|scope| {
        for _ in 0..cpus {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            });
        }
        let result = sample(limit, cancel);
        stop.store(true, Ordering::Relaxed);
        result
    })
}

/// The sampling loop of [`until_quiet`], while the spinners run.
fn sample(limit: Duration, cancel: &AtomicBool) -> anyhow::Result<Settled> {
    let started = Instant::now();
    let first = machine_steal_seconds()?;
    let mut last = first;
    let mut window = Window::default();
    loop {
        std::thread::sleep(SAMPLE_EVERY);
        let now = machine_steal_seconds()?;
        let quiet = window.push(now - last);
        last = now;
        if quiet || started.elapsed() >= limit || cancel.load(Ordering::Relaxed) {
            return Ok(Settled {
                waited: started.elapsed(),
                steal_s: now - first,
                quiet,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_quiet_only_once_full_and_with_next_to_no_steal() {
        let mut window = Window::default();
        for _ in 1..WINDOW {
            assert!(
                !window.push(0.0),
                "fewer samples than a window are never quiet"
            );
        }
        assert!(window.push(0.0));
        assert!(
            !window.push(0.2),
            "a sample with the host's trimming breaks the quiet"
        );
        for _ in 1..WINDOW {
            assert!(
                !window.push(0.0),
                "the trimming's sample is still in the window"
            );
        }
        assert!(
            window.push(0.01),
            "once it has left the window, quiet again"
        );
    }

    #[test]
    fn a_cancelled_wait_stops_after_one_sample_without_calling_the_machine_quiet() {
        let started = Instant::now();
        let settled = until_quiet(Duration::from_secs(60), &AtomicBool::new(true)).unwrap();
        assert!(!settled.quiet, "one sample is not a quiet window");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "it waited {:?} after being cancelled",
            started.elapsed()
        );
    }

    #[test]
    fn small_steal_spread_over_a_window_adds_up() {
        let mut window = Window::default();
        let each = QUIET_STEAL_S / WINDOW as f64 * 2.0;
        let quiet = (0..WINDOW).any(|_| window.push(each));
        assert!(!quiet, "twice the quiet steal, spread thin, is not quiet");
    }
}
