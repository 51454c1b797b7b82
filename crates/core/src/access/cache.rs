//! A read-through cache for the two reads every registry request makes: resolving its
//! credential and gathering the package's [`Target`]. It decorates only these reads; every
//! other call goes to the store directly.
//!
//! Invalidation: every access write the [`Access`](super::Access) service makes bumps a
//! generation number ([`AccessCache::forget`]), and an entry
//! is served only while the generation it was read under is current, so a change made through
//! this process (a revoked token, a removed role, a deleted package) is seen by the very next
//! request. An entry read while a write was in flight carries the generation from before the
//! write and is never served. Writes by another process are seen when its [`ChangeSignal`]
//! changes (`berth admin` announces each command), and in any case once an entry is `ttl`
//! old (other nodes of a cluster). Expiry is checked on every hit, from the credential's own
//! `expires_at`.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::model::{AccountId, CredentialId, Principal, Target};
use super::store::{CredentialStore, PackageStore, Resolved};
use crate::name::RepoName;
use crate::ports::{Millis, StoreResult};

/// A cheap, synchronous reading that changes whenever another process changed access data
/// (the binary stats a file `berth admin` replaces); checked on every cached read.
pub type ChangeSignal = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Entries per map before it is emptied (a crude bound: the working set of a registry is
/// a few tokens and packages).
const MAX_ENTRIES: usize = 10_000;

struct Cached<T> {
    value: T,
    generation: u64,
    at: Instant,
}

type Entries<K, T> = Mutex<HashMap<K, Cached<T>>>;

/// Targets by package, then by asking user (two levels, so a hit looks up borrowed keys).
type Targets = Mutex<HashMap<RepoName, HashMap<Option<AccountId>, Cached<Target>>>>;

/// Remembers resolved credentials and targets (see the module documentation for when they
/// are forgotten).
pub struct AccessCache {
    ttl: Duration,
    generation: AtomicU64,
    signal: Option<ChangeSignal>,
    signalled: AtomicU64,
    secrets: Entries<Vec<u8>, Principal>,
    credentials: Entries<CredentialId, Principal>,
    targets: Targets,
}

impl AccessCache {
    /// Remembers credential and target reads for at most `ttl` (zero: never), and forgets
    /// them whenever `signal` reads differently.
    pub fn new(ttl: Duration, signal: Option<ChangeSignal>) -> Self {
        let signalled = signal.as_ref().map_or(0, |read| read());
        AccessCache {
            ttl,
            generation: AtomicU64::new(0),
            signal,
            signalled: AtomicU64::new(signalled),
            secrets: Mutex::default(),
            credentials: Mutex::default(),
            targets: Mutex::default(),
        }
    }

    /// The current generation, after taking in a change another process signalled.
    fn current(&self) -> u64 {
        if let Some(read) = &self.signal {
            let now = read();
            if self.signalled.swap(now, Ordering::AcqRel) != now {
                self.generation.fetch_add(1, Ordering::AcqRel);
            }
        }
        self.generation.load(Ordering::Acquire)
    }

    /// The entry's value if it was read under `generation` (the current one) within the ttl.
    fn fresh<T: Clone>(&self, entry: Option<&Cached<T>>, generation: u64) -> Option<T> {
        entry
            .filter(|e| e.generation == generation && e.at.elapsed() < self.ttl)
            .map(|e| e.value.clone())
    }

    /// A credential resolution through `entries`: remembered if fresh, else `read` (only
    /// valid credentials are remembered).
    async fn resolve<Q, K>(
        &self,
        entries: &Entries<K, Principal>,
        key: &Q,
        now: Millis,
        read: impl Future<Output = StoreResult<Resolved>>,
    ) -> StoreResult<Resolved>
    where
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        K: Borrow<Q> + Hash + Eq,
    {
        if self.ttl.is_zero() {
            return read.await;
        }
        // Read before the lookup and kept for the insert: a write in between outdates it.
        let generation = self.current();
        if let Some(principal) = self.fresh(lock(entries).get(key), generation) {
            counted(HIT);
            return Ok(resolved_at(principal, now));
        }
        counted(MISS);
        let resolved = read.await?;
        if let Resolved::Valid(principal) = &resolved {
            let entry = Cached {
                value: principal.clone(),
                generation,
                at: Instant::now(),
            };
            remember(&mut lock(entries), key.to_owned(), entry);
        }
        Ok(resolved)
    }

    /// After a write: forgets everything read before it.
    pub fn forget(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// A cached principal as the store would resolve it at `now`: its credential may have
/// expired since it was cached.
fn resolved_at(principal: Principal, now: Millis) -> Resolved {
    match &principal {
        Principal::Token(credential) => match credential.expires_at {
            Some(at) if at <= now => Resolved::Expired(at),
            _ => Resolved::Valid(principal),
        },
        Principal::Anonymous => Resolved::Valid(principal),
    }
}

fn remember<K: Hash + Eq, T>(map: &mut HashMap<K, Cached<T>>, key: K, entry: Cached<T>) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(key, entry);
}

const HIT: &str = "hit";
const MISS: &str = "miss";

/// Counts a lookup in `berth_access_cache_lookups_total{result}` (hit or miss). The two
/// handles are registered once (the binary installs its recorder before any lookup).
fn counted(result: &'static str) {
    static COUNTERS: std::sync::OnceLock<[metrics::Counter; 2]> = std::sync::OnceLock::new();
    let [hits, misses] = COUNTERS.get_or_init(|| {
        [HIT, MISS].map(|r| metrics::counter!("berth_access_cache_lookups_total", "result" => r))
    });
    if result == HIT { hits } else { misses }.increment(1);
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl AccessCache {
    /// `store`'s resolution of a secret's hash at `now`, remembered while fresh.
    pub async fn resolve_secret(
        &self,
        store: &dyn CredentialStore,
        hash: &[u8],
        now: Millis,
    ) -> StoreResult<Resolved> {
        self.resolve(&self.secrets, hash, now, store.resolve_secret(hash, now))
            .await
    }

    /// `store`'s resolution of credential `id` at `now`, remembered while fresh.
    pub async fn resolve_credential(
        &self,
        store: &dyn CredentialStore,
        id: CredentialId,
        now: Millis,
    ) -> StoreResult<Resolved> {
        self.resolve(
            &self.credentials,
            &id,
            now,
            store.resolve_credential(id, now),
        )
        .await
    }

    /// `store`'s [`Target`] of package `name` for `user`, remembered while fresh.
    pub async fn target(
        &self,
        store: &dyn PackageStore,
        name: &RepoName,
        user: Option<AccountId>,
    ) -> StoreResult<Target> {
        if self.ttl.is_zero() {
            return store.target(name, user).await;
        }
        let generation = self.current();
        let hit = {
            let targets = lock(&self.targets);
            self.fresh(
                targets.get(name).and_then(|users| users.get(&user)),
                generation,
            )
        };
        if let Some(target) = hit {
            counted(HIT);
            return Ok(target);
        }
        counted(MISS);
        let target = store.target(name, user).await?;
        let mut targets = lock(&self.targets);
        if targets.len() >= MAX_ENTRIES {
            targets.clear();
        }
        let entry = Cached {
            value: target.clone(),
            generation,
            at: Instant::now(),
        };
        remember(targets.entry(name.clone()).or_default(), user, entry);
        Ok(target)
    }
}
