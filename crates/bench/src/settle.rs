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

/// Keeps every CPU busy and samples the machine's steal until a [`WINDOW`] of samples counts
/// next to none, or `limit` has passed.
pub fn until_quiet(limit: Duration) -> anyhow::Result<Settled> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..cpus)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let result = sample(limit);
    stop.store(true, Ordering::Relaxed);
    for spinner in spinners {
        spinner
            .join()
            .map_err(|_| anyhow::anyhow!("a spinning thread panicked"))?;
    }
    result
}

/// The sampling loop of [`until_quiet`], while the spinners run.
fn sample(limit: Duration) -> anyhow::Result<Settled> {
    let started = Instant::now();
    let first = machine_steal_seconds()?;
    let mut last = first;
    let mut window = Window::default();
    loop {
        std::thread::sleep(SAMPLE_EVERY);
        let now = machine_steal_seconds()?;
        let quiet = window.push(now - last);
        last = now;
        if quiet || started.elapsed() >= limit {
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
    fn small_steal_spread_over_a_window_adds_up() {
        let mut window = Window::default();
        let each = QUIET_STEAL_S / WINDOW as f64 * 2.0;
        let quiet = (0..WINDOW).any(|_| window.push(each));
        assert!(!quiet, "twice the quiet steal, spread thin, is not quiet");
    }
}
