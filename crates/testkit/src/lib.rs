//! Berth's test kit (a dev-dependency only).
//!
//! The behaviour contracts of the storage ports live here, written once against the traits
//! of `berth-core`, so every backend runs the same clauses and a failure names the backend
//! and the clause. End-to-end tests look into a backend's storage only through the
//! inspectors here, never through its layout, so the same suites can run on any backend.

pub mod inspect;
