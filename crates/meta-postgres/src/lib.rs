//! Berth's metadata ports on PostgreSQL: [`MetadataStore`](berth_core::ports::MetadataStore)
//! (the registry), [`AccessStore`](berth_core::access::store::AccessStore) and
//! [`HookStore`](berth_core::hooks::HookStore), and the limiters'
//! [`SharedCounters`](berth_core::ports::SharedCounters), for nodes that share one database.
//!
//! Direction of calls: the services in `berth-core` call this crate through the ports; this
//! crate calls only PostgreSQL (through sqlx) and never the services. Its SQL lives here, with
//! the schema in `migrations/`, embedded and applied on open under PostgreSQL's advisory lock,
//! so nodes starting together migrate once.
//!
//! What SQLite got from its single writer is explicit here: row locks (`SELECT … FOR
//! UPDATE`) where a check and a write must see the same rows, `FOR UPDATE SKIP LOCKED` for the
//! webhook queue, conditional updates for leases, and unique constraints (`ON CONFLICT`) for
//! races such as two pushes creating one package. Leases are never voided at startup: other
//! nodes may hold them; they expire by time.
//!
//! Modules: `store` opens the pool and holds what every query module shares; `ops` the health
//! probe and the records `berth fsck` reads; `registry_sql` what the registry's modules share
//! (repositories by name, a push's locking checks), and `blobs`, `uploads`, `manifests`,
//! `versions` and `listings` the registry's ports, `quotas` storage usage and quotas. The access port: `access` holds what its
//! tables share, `accounts`, `packages`, `credentials` and `apps` implement its traits.
//! `hooks` implements the webhook port and its delivery queue. `cluster` is what nodes
//! coordinate through the database beyond the ports (shared secrets, access-change
//! notifications, housekeeping turns); `counters` the limiters' counts the nodes add into.

mod access;
mod accounts;
mod apps;
mod blobs;
mod cluster;
mod counters;
mod credentials;
mod gc;
mod hooks;
mod listings;
mod manifests;
mod ops;
mod packages;
mod policies;
mod quotas;
mod registry_sql;
mod store;
mod uploads;
mod versions;

pub use store::{PgMetadataStore, PgOptions};
