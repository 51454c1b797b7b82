//! Berth's test kit (a dev-dependency only).
//!
//! The behaviour contracts of the storage ports live here, written once against the traits
//! of `berth-core`, so every backend runs the same clauses and a failure names the backend
//! and the clause. End-to-end tests look into a backend's storage only through the
//! inspectors here, never through its layout, so the same suites can run on any backend.
//!
//! Each suite is a module of clauses, one `pub async fn` each, taking a fresh, empty store
//! and panicking when the store breaks the rule; and a macro that stamps one named test per
//! clause into a backend's test crate:
//!
//! ```ignore
//! async fn open() -> (tempfile::TempDir, SqliteMetadataStore) { /* a fresh store */ }
//! berth_testkit::metadata_contract!(sqlite, open);
//! // → `sqlite::leases_exclude_and_expire`, `sqlite::tags_paginate_in_byte_order`, …
//! ```
//!
//! `open` is anything callable with no argument that returns a future of `(keep, store)`:
//! `keep` (a temporary directory, a server handle) lives until the clause has finished.
//! The suites: [`meta`] (`metadata_contract!`), [`access`] (`access_contract!`), [`cache`]
//! (`access_cache_contract!`), [`hooks`] (`hooks_contract!`), [`blobs`] (`blob_contract!`),
//! [`policies`] (`policies_contract!`).
//!
//! This crate calls `berth-core` only; it never names a backend. [`services`] reaches the
//! servers the test command starts (PostgreSQL), for the backends' own tests to open.

pub mod access;
pub mod blobs;
pub mod cache;
pub mod hooks;
pub mod inspect;
pub mod meta;
pub mod policies;
pub mod services;

/// An id no store has handed out (clauses that ask for a missing account, credential,
/// installation…). Every literal id of the suites is written through here or [`id`], so a
/// change of the id types is a change of these two functions.
pub fn missing<T: From<i64>>() -> T {
    T::from(1 << 40)
}

/// The id `n`, for a literal id in a clause (a version id a test event names, a zeroed id).
pub fn id<T: From<i64>>(n: i64) -> T {
    T::from(n)
}

/// Stamps one `#[tokio::test]` per clause of suite `$suite` into `mod $backend`; used by
/// the suites' macros, not directly.
#[doc(hidden)]
#[macro_export]
macro_rules! __stamp {
    ($backend:ident, $open:expr, $suite:ident, [$attr:meta], [$($clause:ident),* $(,)?]) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[$attr]
                async fn $clause() {
                    let (_keep, store) = ($open)().await;
                    $crate::$suite::$clause(store).await;
                }
            )*
        }
    };
}
