//! Who may do what: the access model of accounts, packages and tokens.
//!
//! [`model`] holds the values (principals, targets, roles, grants), [`decide`] the one pure
//! permission function, [`rules`] the pure "may this caller manage X" rules of the management
//! operations ([`manage`]), [`token`] the shape of token secrets, [`forge`] which repository a
//! source URL names. Nothing here does I/O but the services ([`service`], [`linking`]) over the
//! [`store::AccessStore`] port: the metadata store gathers a [`model::Target`] for a request,
//! the HTTP layer turns a [`decide::Decision`] into a status.

pub mod cache;
pub mod decide;
pub mod forge;
pub mod linking;
pub mod manage;
pub mod model;
pub mod operator;
pub mod rules;
pub mod service;
pub mod sessions;
pub mod store;
pub mod token;

pub use cache::AccessCache;
pub use decide::{Decision, decide, readable};
pub use forge::{Forge, SourceRef};
pub use linking::Linking;
pub use manage::{
    Affiliation, GranteeName, ManageError, ManageResult, MyRepos, NewToken, ORG_READ_SCOPES,
    PackageSettings, REPO_HOOK_SCOPES, RepoVisibility, Team, TokenRequest,
};
pub use model::{
    AccountId, AccountKind, Action, Credential, CredentialId, Grant, LinkedRepo, OrgRole, Owner,
    Package, PackagePolicy, Principal, Readable, Relations, RepoId, Role, Scopes, Target,
    Visibility,
};
pub use service::{Access, Presented, TokenLifetimes};

#[cfg(test)]
mod tests;
