//! How the allocator treats the buffers a push streams through.
//!
//! hyper reads each request body into a fresh ~400 KiB buffer while the previous ones are still
//! being hashed and written. With glibc's defaults, freed buffers are handed back to the
//! kernel (a heap trim or an `munmap`) and the next one is faulted in again, page by page:
//! ~50,000 page faults and one zeroing pass per GiB pushed, more on virtual machines whose
//! host reclaims freed guest memory. Keeping freed memory for reuse measured ~8 % less server
//! CPU per GiB pushed (BENCHMARKS.md). The cost: the process keeps up to [`TRIM_THRESHOLD`]
//! of freed memory per allocator arena instead of returning it (after the benchmark's pushes,
//! ~20 MB more resident than before; 4 MiB kept per arena was not enough to stop the faults).

/// Allocations up to this size come from the reusable heap rather than their own mapping.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 8 << 20;
/// Free memory an arena keeps at its top before giving it back to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: i32 = 16 << 20;

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
    }
}
