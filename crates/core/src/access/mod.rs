//! Who may do what: the access model of accounts, packages and tokens.
//!
//! [`model`] holds the values (principals, targets, roles, grants), [`decide`] the one pure
//! permission function, [`token`] the shape of token secrets. Nothing here does I/O: the
//! metadata store gathers a [`model::Target`] for a request, the HTTP layer turns a
//! [`decide::Decision`] into a status.

pub mod decide;
pub mod manage;
pub mod model;
pub mod service;
pub mod store;
pub mod token;

pub use decide::{Decision, decide};
pub use manage::{GranteeName, ManageError, ManageResult, NewToken, Team, TokenRequest};
pub use model::{
    AccountId, AccountKind, Action, Credential, CredentialId, Grant, LinkedRepo, OrgRole, Owner,
    Package, PackagePolicy, Principal, Relations, RepoId, Role, Scopes, Target, Visibility,
};
pub use service::{Access, Presented, TokenLifetimes};

#[cfg(test)]
mod tests;
