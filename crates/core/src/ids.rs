//! Row ids as types of their own, so an account's id cannot be passed where a repository's is
//! expected. Each wraps the backend's 64-bit integer, prints and serializes as that integer
//! (the API's `id` fields), and parses from it (path segments).

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize,
            serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                $name(id)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                text.parse().map($name)
            }
        }
    };
}

id!(
    /// An account (user or organization).
    AccountId
);
id!(
    /// A source repository.
    RepoId
);
id!(
    /// A credential (token).
    CredentialId
);
id!(
    /// A team of an organization.
    TeamId
);
id!(
    /// An app.
    AppId
);
id!(
    /// An app's installation on an account.
    InstallationId
);
id!(
    /// A webhook.
    HookId
);
id!(
    /// A queued webhook delivery.
    DeliveryId
);
id!(
    /// A package (the Packages API's package id).
    PackageId
);
id!(
    /// A package version (the Packages API's version id), stable across tag moves, deletion
    /// and restore.
    VersionId
);
