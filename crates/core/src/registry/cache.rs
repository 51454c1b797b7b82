//! A read-through cache of manifest reads (by tag and by digest), for nodes whose metadata is
//! in another process (PostgreSQL): there a manifest GET is a network round trip, and the
//! same few tags are read over and over. Off by default (SQLite's in-process read is cheaper
//! than keeping copies).
//!
//! Invalidation, as the access cache's: every registry write this process makes through
//! [`super::Registry`] (a push, a tag or manifest deleted, a version restored or purged) bumps
//! a generation, and an entry is served only while the generation it was read under is
//! current; writes by other nodes are seen when the [`ChangeSignal`] changes (the database
//! notifies every node when manifests or tags change), and in any case once an entry is
//! `ttl` old. Only found manifests are remembered, and at most `max_bytes` of them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::access::cache::ChangeSignal;
use crate::name::{Reference, RepoName};
use crate::ports::StoredManifest;

/// Remembers manifest reads (see the module documentation for when they are forgotten).
pub struct ManifestCache {
    ttl: Duration,
    max_bytes: usize,
    generation: AtomicU64,
    signal: Option<ChangeSignal>,
    signalled: AtomicU64,
    entries: Mutex<Entries>,
}

/// Entries by repository, then by reference (two levels, so a hit looks up borrowed keys).
#[derive(Default)]
struct Entries {
    map: HashMap<RepoName, HashMap<Reference, Cached>>,
    bytes: usize,
}

struct Cached {
    manifest: StoredManifest,
    generation: u64,
    at: Instant,
}

impl ManifestCache {
    /// Remembers manifest reads for at most `ttl`, at most `max_bytes` of manifest bytes, and
    /// forgets them whenever `signal` reads differently.
    pub fn new(ttl: Duration, max_bytes: usize, signal: Option<ChangeSignal>) -> Self {
        let signalled = signal.as_ref().map_or(0, |read| read());
        ManifestCache {
            ttl,
            max_bytes,
            generation: AtomicU64::new(0),
            signal,
            signalled: AtomicU64::new(signalled),
            entries: Mutex::default(),
        }
    }

    /// The current generation, after taking in a change another process signalled.
    pub(super) fn current(&self) -> u64 {
        if let Some(read) = &self.signal {
            let now = read();
            if self.signalled.swap(now, Ordering::AcqRel) != now {
                self.generation.fetch_add(1, Ordering::AcqRel);
            }
        }
        self.generation.load(Ordering::Acquire)
    }

    /// The manifest `reference` of `repo` if it was read under `generation` within the ttl.
    pub(super) fn get(
        &self,
        repo: &RepoName,
        reference: &Reference,
        generation: u64,
    ) -> Option<StoredManifest> {
        let entries = self.lock();
        entries
            .map
            .get(repo)
            .and_then(|by_reference| by_reference.get(reference))
            .filter(|e| e.generation == generation && e.at.elapsed() < self.ttl)
            .map(|e| e.manifest.clone())
    }

    /// Remembers `manifest` as read under `generation` (read before the store was asked, so a
    /// write in between outdates it).
    pub(super) fn put(
        &self,
        repo: &RepoName,
        reference: &Reference,
        manifest: &StoredManifest,
        generation: u64,
    ) {
        let size = manifest.content.len();
        if size > self.max_bytes / 16 {
            return;
        }
        let mut entries = self.lock();
        if entries.bytes + size > self.max_bytes {
            entries.map.clear();
            entries.bytes = 0;
        }
        let entry = Cached {
            manifest: manifest.clone(),
            generation,
            at: Instant::now(),
        };
        let replaced = entries
            .map
            .entry(repo.clone())
            .or_default()
            .insert(reference.clone(), entry);
        if let Some(old) = replaced {
            entries.bytes -= old.manifest.content.len();
        }
        entries.bytes += size;
    }

    /// After a registry write: forgets everything read before it.
    pub(super) fn forget(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use bytes::Bytes;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    fn manifest(body: &str) -> StoredManifest {
        StoredManifest {
            digest: Digest::sha256(body.as_bytes()),
            media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
            content: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn entries_are_served_until_a_write_a_signal_or_the_ttl() {
        let changes = Arc::new(AtomicU64::new(0));
        let seen = changes.clone();
        let cache = ManifestCache::new(
            Duration::from_millis(200),
            1 << 20,
            Some(Arc::new(move || seen.load(Ordering::Acquire))),
        );
        let repo: RepoName = "acme/app".parse().unwrap();
        let tag: Reference = "v1".parse().unwrap();
        let m = manifest("{}");
        let generation = cache.current();
        cache.put(&repo, &tag, &m, generation);
        assert_eq!(
            cache.get(&repo, &tag, cache.current()).map(|m| m.digest),
            Some(m.digest.clone())
        );
        // A write through this process.
        cache.forget();
        assert_eq!(
            cache.get(&repo, &tag, cache.current()).map(|m| m.digest),
            None
        );
        // Another node's write.
        let generation = cache.current();
        cache.put(&repo, &tag, &m, generation);
        changes.fetch_add(1, Ordering::AcqRel);
        assert_eq!(
            cache.get(&repo, &tag, cache.current()).map(|m| m.digest),
            None
        );
        // An entry read before a write is never served after it.
        let before = cache.current();
        cache.forget();
        cache.put(&repo, &tag, &m, before);
        assert_eq!(
            cache.get(&repo, &tag, cache.current()).map(|m| m.digest),
            None
        );
        // Age.
        let generation = cache.current();
        cache.put(&repo, &tag, &m, generation);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(
            cache.get(&repo, &tag, cache.current()).map(|m| m.digest),
            None
        );
    }

    #[test]
    fn the_bytes_held_stay_under_the_bound() {
        let cache = ManifestCache::new(Duration::from_secs(60), 1600, None);
        let repo: RepoName = "acme/app".parse().unwrap();
        for i in 0..100 {
            let reference: Reference = format!("v{i}").parse().unwrap();
            cache.put(
                &repo,
                &reference,
                &manifest(&"x".repeat(90)),
                cache.current(),
            );
            assert!(cache.lock().bytes <= 1600);
        }
        let big: Reference = "big".parse().unwrap();
        cache.put(&repo, &big, &manifest(&"x".repeat(200)), cache.current());
        assert!(
            cache.get(&repo, &big, cache.current()).is_none(),
            "too big to keep"
        );
    }
}
