//! Berth's [`MetadataStore`](berth_core::ports::MetadataStore) on SQLite.
//!
//! Direction of calls: the registry services in `berth-core` call this crate through the
//! port; this crate calls only SQLite (through sqlx) and never the services. All of Berth's
//! SQL lives here, with the schema in `migrations/`, embedded and applied on open.
//!
//! The database runs in WAL mode with `synchronous = FULL`. Writes go through one connection
//! the store holds (`store::Writer`), so they never contend for SQLite's single write lock;
//! reads use `query_only` connections of their own (`store::Readers`) and never queue behind
//! a write. Every write that must happen
//! together happens in one `BEGIN IMMEDIATE` transaction.
//! A task of its own copies the WAL back into the database file (a `PASSIVE` checkpoint) as
//! writes accumulate, so the writer's commits do not.
//!
//! Modules: `store` opens the database; `blobs`, `uploads`, `manifests` and `listings` hold
//! the queries of each area (`quotas`: storage usage and quotas); `port` maps the trait onto them.
//!
//! `hooks` implements [`HookStore`](berth_core::hooks::HookStore): webhooks and their
//! delivery queue.
//!
//! The same type implements [`AccessStore`](berth_core::access::store::AccessStore):
//! `access` holds what its tables share, `accounts`, `packages`, `credentials` and `apps`
//! their queries, and `access_port` maps that trait onto them.

mod access;
mod accounts;
mod apps;
mod blobs;
mod credentials;
mod gc;
mod hooks;
mod listings;
mod manifests;
mod ops;
mod packages;
mod policies;
mod quotas;
mod store;
mod uploads;
mod versions;

pub use store::SqliteMetadataStore;
