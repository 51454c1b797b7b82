//! How the allocator treats the buffers a push streams through.
//!
//! A push makes hyper allocate a fresh read buffer of up to 512 KiB whenever frames of the last
//! one are still held (the registry holds a body's frames until they are written,
//! `core/src/registry/uploads.rs`), and frees each once its frames are written. With glibc's
//! defaults, freed buffers are handed back to the kernel (a heap trim or an `munmap`) and the
//! next one is faulted in again, page by page: ~50,000 page faults and one zeroing pass per GiB
//! pushed, more on virtual machines whose host reclaims freed guest memory. Keeping freed
//! memory for reuse measured ~8 % less server CPU per GiB pushed (BENCHMARKS.md). The cost: the
//! process keeps up to [`TRIM_THRESHOLD`] of freed memory per allocator arena instead of
//! returning it (4 MiB kept per arena was not enough to stop the faults). So there is one
//! arena, and what it keeps is handed back as uploads pause ([`hand_back_when_uploads_pause`]):
//! the pulls and reads that follow a burst of pushes do not carry it (benchmark peak RSS over
//! the whole run 48 → 38 MiB; 16 clients' 41–44 → 36–37 MiB).

/// Allocations up to this size come from the reusable heap rather than their own mapping.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 8 << 20;
/// Free memory an arena keeps at its top before giving it back to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: i32 = 16 << 20;

/// Allocator arenas. glibc gives threads arenas of their own (up to 8 per core), and
/// `malloc_trim` cannot shrink the top of any but the first: each runtime worker's arena kept
/// ~10 MiB after pushes. One arena: its lock is taken only by allocations too large for the
/// per-thread caches, and everything freed can be handed back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: i32 = 1;

/// Makes the allocator keep and reuse freed buffers. Call before any thread starts. Best
/// effort: another allocator (musl, or a platform without glibc) keeps its own defaults, and a
/// value glibc refused would leave its default in place, which is correct, only slower.
pub fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `mallopt` only sets allocator parameters; it is called from `main` before any
    // other thread exists, and both values are within glibc's accepted ranges.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

/// Freed memory worth handing back: less is what a lone client's chunks take again at once
/// (~2.5 MiB in flight), and keeping it spares that push a page fault per page per chunk
/// (handing back at every pause cost a lone client pushing 8 MiB chunks ~9 % more server CPU).
const WORTH_HANDING_BACK: usize = 4 << 20;

/// How often, at most, the allocator is asked what it keeps (a walk of its free lists), and
/// memory handed back. Each hand-back costs the next push a page fault per page it takes
/// again (~1.5 ms of CPU per hand-back measured), so several clients whose uploads keep
/// pausing together do not pay it more than a few times a second; small pushes, each a pause,
/// do not pay the walk each time.
const AT_MOST_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Hands the freed memory kept for pushes back to the kernel as uploads pause: what a burst of
/// pushes kept would otherwise stay resident through the pulls and manifest reads that follow
/// (16 clients' pulls, begun the moment their pushes ended, peaked at 41–48 MiB instead of
/// 34–37). When the last streaming upload ends and the allocator holds at least
/// [`WORTH_HANDING_BACK`] freed, looked at no more than once per [`AT_MOST_EVERY`]. Woken by
/// that end, never by a timer while nothing happens. Runs forever.
pub async fn hand_back_when_uploads_pause() {
    use berth_core::registry::{upload_paused, uploads_streaming};
    use tokio::time::Instant;
    let mut looked: Option<Instant> = None;
    loop {
        upload_paused().await;
        if let Some(at) = looked {
            tokio::time::sleep_until(at + AT_MOST_EVERY).await;
        }
        // Uploads that began meanwhile wake this loop again as they end.
        if uploads_streaming() == 0 {
            looked = Some(Instant::now());
            if freed() >= WORTH_HANDING_BACK {
                let _ = tokio::task::spawn_blocking(trim).await;
            }
        }
    }
}

/// Bytes the allocator holds freed, for reuse or to hand back.
fn freed() -> usize {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `mallinfo2` only reads the allocator's statistics, under its own locks.
    unsafe {
        libc::mallinfo2().fordblks
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    0
}

/// Returns every free page of every arena to the kernel.
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `malloc_trim` only releases free memory; it takes the allocator's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
