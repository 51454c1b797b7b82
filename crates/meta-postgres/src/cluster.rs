//! What the nodes sharing one database coordinate through it beyond the ports: the secrets
//! they must hold alike (the registry-token signing key), hearing each other's access
//! changes (`LISTEN`/`NOTIFY`, fed by the triggers of `migrations/0004_cluster.sql`), and
//! housekeeping passes one node runs at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use berth_core::access::cache::ChangeSignal;
use berth_core::error::StoreError;
use sqlx::postgres::{PgListener, PgPoolOptions};

use crate::store::{PgMetadataStore, failed, now_millis};

/// The channel the access triggers notify.
const ACCESS_CHANNEL: &str = "berth_access_changed";
/// The channel the manifest and tag triggers notify.
const REGISTRY_CHANNEL: &str = "berth_registry_changed";

impl PgMetadataStore {
    /// The secret `name` every node shares: the one stored, or `candidate` stored now when
    /// there is none yet (the first node to ask decides; every other gets the same bytes).
    pub async fn shared_secret(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
        sqlx::query(
            "INSERT INTO cluster_secrets (name, value, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .bind(now_millis())
        .execute(&self.pool)
        .await
        .map_err(failed(format!("storing the shared secret {name}")))?;
        sqlx::query_scalar("SELECT value FROM cluster_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(failed(format!("reading the shared secret {name}")))
    }

    /// Whether this node runs housekeeping pass `task` now: true for one node at a time,
    /// which holds the task for `hold` (asking again before then extends it). A node that
    /// stopped holding it is replaced once its time has passed.
    pub async fn lead(&self, task: &str, hold: Duration) -> Result<bool, StoreError> {
        let now = now_millis();
        let until = now.saturating_add(i64::try_from(hold.as_millis()).unwrap_or(i64::MAX));
        let held: Option<String> = sqlx::query_scalar(
            "INSERT INTO task_leases (name, holder, held_until) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, \
                 held_until = EXCLUDED.held_until \
             WHERE task_leases.held_until < $4 OR task_leases.holder = EXCLUDED.holder \
             RETURNING holder",
        )
        .bind(task)
        .bind(&*self.node)
        .bind(until)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(failed(format!("taking the housekeeping task {task}")))?;
        Ok(held.is_some())
    }

    /// Gives back every lease this node's name holds (uploads, webhook deliveries): for a
    /// node starting again after it stopped without releasing them (a kill, a crash), whose
    /// requests and deliveries of before are gone. Returns how many of each it released.
    pub async fn release_leases_of_this_node(&self) -> Result<(u64, u64), StoreError> {
        let uploads = sqlx::query(
            "UPDATE uploads SET lease_token = NULL, lease_until = NULL, lease_holder = NULL \
             WHERE lease_holder = $1",
        )
        .bind(&*self.node)
        .execute(&self.pool)
        .await
        .map_err(failed("releasing this node's upload leases"))?
        .rows_affected();
        let deliveries = sqlx::query(
            "UPDATE hook_deliveries SET lease_token = NULL, lease_until = NULL, \
                 lease_holder = NULL WHERE lease_holder = $1",
        )
        .bind(&*self.node)
        .execute(&self.pool)
        .await
        .map_err(failed("releasing this node's webhook delivery leases"))?
        .rows_affected();
        Ok((uploads, deliveries))
    }

    /// A reading that changes whenever access data changed anywhere: every node's writes,
    /// `berth admin`, or SQL by hand (the triggers notify on commit). For the access cache
    /// ([`berth_core::access::AccessCache`]), which forgets what it read when the reading
    /// changes. The node listens on one connection of its own for both channels,
    /// reconnecting when it drops; while it is not listening (notifications may be lost)
    /// every reading differs, so the cache serves nothing it cannot vouch for.
    pub async fn access_changes(&self) -> Result<ChangeSignal, StoreError> {
        let heard = self.heard().await?;
        Ok(signal(heard, |h| &h.access))
    }

    /// A reading that changes whenever any node moved a tag or deleted, restored or purged a
    /// manifest: for the manifest cache ([`berth_core::registry::ManifestCache`]), as
    /// [`PgMetadataStore::access_changes`] is for the access cache.
    pub async fn registry_changes(&self) -> Result<ChangeSignal, StoreError> {
        let heard = self.heard().await?;
        Ok(signal(heard, |h| &h.registry))
    }

    /// The node's one listening connection, started by the first caller.
    async fn heard(&self) -> Result<Arc<Heard>, StoreError> {
        self.heard
            .get_or_try_init(|| async {
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .max_lifetime(None)
                    .idle_timeout(None)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_lazy_with(self.connect.clone());
                let mut listener = PgListener::connect_with(&pool)
                    .await
                    .map_err(failed("connecting to listen for other nodes' changes"))?;
                listener
                    .listen_all([ACCESS_CHANNEL, REGISTRY_CHANNEL])
                    .await
                    .map_err(failed("listening for other nodes' changes"))?;
                let heard = Arc::new(Heard {
                    access: AtomicU64::new(0),
                    registry: AtomicU64::new(0),
                    listening: AtomicBool::new(true),
                });
                tokio::spawn(listen(listener, heard.clone()));
                Ok(heard)
            })
            .await
            .cloned()
    }
}

/// What the listening connection heard: a count per channel, and whether it is listening.
#[derive(Debug)]
pub(crate) struct Heard {
    access: AtomicU64,
    registry: AtomicU64,
    listening: AtomicBool,
}

impl Heard {
    /// Anything may have changed (the connection dropped or came back): every count moves.
    fn all_changed(&self) {
        self.access.fetch_add(1, Ordering::AcqRel);
        self.registry.fetch_add(1, Ordering::AcqRel);
    }
}

/// A reading of one channel's count that differs on every read while not listening.
fn signal(heard: Arc<Heard>, count: fn(&Heard) -> &AtomicU64) -> ChangeSignal {
    Arc::new(move || {
        let changes = count(&heard);
        if heard.listening.load(Ordering::Acquire) {
            changes.load(Ordering::Acquire)
        } else {
            changes.fetch_add(1, Ordering::AcqRel) + 1
        }
    })
}

/// Counts notifications into `heard` until the process ends; marks it not listening while
/// the connection is down (and counts its loss and its return: anything may have changed in
/// between).
async fn listen(mut listener: PgListener, heard: Arc<Heard>) {
    loop {
        if !heard.listening.load(Ordering::Acquire) {
            // Reconnects and listens again if needed.
            if sqlx::query("SELECT 1")
                .execute(&mut listener)
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            heard.listening.store(true, Ordering::Release);
            heard.all_changed();
            tracing::info!("listening for other nodes' changes again");
        }
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                let count = if notification.channel() == ACCESS_CHANNEL {
                    &heard.access
                } else {
                    &heard.registry
                };
                count.fetch_add(1, Ordering::AcqRel);
            }
            Ok(None) => {
                heard.listening.store(false, Ordering::Release);
                heard.all_changed();
                tracing::warn!(
                    "lost the database connection that hears other nodes' changes; reconnecting"
                );
            }
            Err(err) => {
                heard.listening.store(false, Ordering::Release);
                heard.all_changed();
                tracing::warn!(error = %err, "listening for other nodes' changes failed; retrying");
            }
        }
    }
}
