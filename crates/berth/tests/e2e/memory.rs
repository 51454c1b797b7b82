//! Memory the server holds: what a burst of pushes kept for reuse is handed back to the
//! kernel once the uploads end (`berth/src/memory.rs`), so the pulls and reads that follow do
//! not carry it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::common::{Server, push_blob};

const REPO: &str = "acme/memory";

/// The server's resident anonymous memory (its heap, mostly), in KiB, from `/proc`.
fn anonymous_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("RssAnon:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("RssAnon in /proc/<pid>/status")
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_kept_for_pushes_is_handed_back_when_they_end() {
    let server = Server::start();
    let pid = server.pid();
    // One push first, so what any push sets up once is there before the measure starts.
    push_blob(&server, REPO, vec![1u8; 1 << 20]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = anonymous_kib(pid);

    // The most the server held while 8 clients pushed at once, sampled every 5 ms.
    let peak = Arc::new(AtomicU64::new(before));
    let pushing = Arc::new(AtomicBool::new(true));
    let sampler = std::thread::spawn({
        let (peak, pushing) = (Arc::clone(&peak), Arc::clone(&pushing));
        move || {
            while pushing.load(Ordering::Relaxed) {
                peak.fetch_max(anonymous_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    let pushes = (0..8u8).map(|i| push_blob(&server, REPO, vec![i + 2; 24 << 20]));
    futures_util::future::join_all(pushes).await;
    pushing.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    let held = peak.load(Ordering::Relaxed) - before;
    assert!(
        held >= 5 << 10,
        "the pushes should have held more than the 4 MiB worth handing back (held {held} KiB): this test shows nothing"
    );

    // Handed back as the uploads end; a second at most, however slow the machine.
    let mut kept = anonymous_kib(pid).saturating_sub(before);
    for _ in 0..100 {
        if kept <= held / 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        kept = anonymous_kib(pid).saturating_sub(before);
    }
    assert!(
        kept <= held / 4,
        "{kept} KiB of the {held} KiB the pushes held are still resident after they ended"
    );
}
