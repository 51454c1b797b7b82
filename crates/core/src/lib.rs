//! Berth's domain layer.
//!
//! Direction of calls: the HTTP layer calls [`registry::Registry`]; the registry services call
//! the storage ports in [`ports`]; ports never call services. This crate does not depend on axum,
//! hyper or sqlx: it holds only parsed domain values ([`RepoName`], [`Digest`], [`Tag`],
//! [`Reference`]), the manifest rules and the error vocabulary of the OCI distribution spec.

pub mod access;
pub mod digest;
pub mod error;
pub mod github;
pub mod hashing;
pub mod hooks;
pub mod ids;
pub mod labels;
pub mod manifest;
pub mod name;
pub mod packages;
pub mod policies;
pub mod ports;
pub mod quotas;
pub mod registry;
pub mod services;
pub mod uri;

pub use digest::{Algorithm, Digest};
pub use error::{RegistryError, StoreError, StoreErrorKind};
pub use name::{Reference, RepoName, Tag};
