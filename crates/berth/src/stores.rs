//! The one place backends are chosen: a [`Stores`] bundle opened from the `database_url` and
//! `blob_store` settings by their URL scheme, for `berth serve` and `berth admin` alike.
//!
//! The rule: one backend implements every metadata port (registry, access, hooks) over one
//! database, so a bundle's three metadata handles are the same store; blobs may live
//! elsewhere.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use berth_core::access::store::AccessStore;
use berth_core::hooks::HookStore;
use berth_core::ports::{BlobStore, MetadataStore};

/// Where metadata lives, parsed from `database_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite:<path>`: the embedded SQLite database file.
    Sqlite(PathBuf),
}

/// Where blobs live, parsed from `blob_store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobStoreUrl {
    /// `file:<path>`: a directory on this machine.
    File(PathBuf),
}

/// The part of a URL before its first `:`, and the rest.
fn scheme(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once(':')?;
    let valid = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

/// A `file:`/`sqlite:` URL's path: `scheme:relative`, `scheme:/absolute` or
/// `scheme:///absolute`.
fn local_path(rest: &str) -> PathBuf {
    PathBuf::from(rest.strip_prefix("//").unwrap_or(rest))
}

impl DatabaseUrl {
    /// The embedded default: `metadata.sqlite` in the data directory.
    pub fn default_in(data_dir: &Path) -> Self {
        DatabaseUrl::Sqlite(data_dir.join("metadata.sqlite"))
    }

    /// Parses the `database_url` setting.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        match scheme(url) {
            Some(("sqlite", rest)) if !rest.is_empty() => Ok(DatabaseUrl::Sqlite(local_path(rest))),
            Some(("sqlite", _)) => anyhow::bail!(
                "the database_url setting `{url}` names no file; write sqlite:<path>, e.g. sqlite:/var/lib/berth/metadata.sqlite"
            ),
            Some(("postgres" | "postgresql", _)) => anyhow::bail!(
                "the database_url setting names a PostgreSQL database, and this build of Berth has no PostgreSQL backend; use sqlite:<path> (the default: metadata.sqlite in data_dir)"
            ),
            Some((other, _)) => anyhow::bail!(
                "the database_url setting has the unknown scheme `{other}:`; use sqlite:<path> (the default: metadata.sqlite in data_dir)"
            ),
            None => anyhow::bail!(
                "the database_url setting `{url}` is not a URL; write sqlite:<path> (the default: metadata.sqlite in data_dir)"
            ),
        }
    }
}

impl BlobStoreUrl {
    /// The embedded default: the data directory itself.
    pub fn default_in(data_dir: &Path) -> Self {
        BlobStoreUrl::File(data_dir.to_owned())
    }

    /// Parses the `blob_store` setting.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        match scheme(url) {
            Some(("file", rest)) if !rest.is_empty() => Ok(BlobStoreUrl::File(local_path(rest))),
            Some(("file", _)) => anyhow::bail!(
                "the blob_store setting `{url}` names no directory; write file:<path>, e.g. file:/var/lib/berth"
            ),
            Some(("s3", _)) => anyhow::bail!(
                "the blob_store setting names an S3 bucket, and this build of Berth has no S3 backend; use file:<directory> (the default: data_dir)"
            ),
            Some((other, _)) => anyhow::bail!(
                "the blob_store setting has the unknown scheme `{other}:`; use file:<directory> (the default: data_dir)"
            ),
            None => anyhow::bail!(
                "the blob_store setting `{url}` is not a URL; write file:<directory> (the default: data_dir)"
            ),
        }
    }
}

/// Who opens the stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opener {
    /// `berth serve`: the one process serving the data; leases a stopped process left are
    /// voided.
    Server,
    /// `berth admin`: may run beside a server, so leases are left alone.
    Admin,
}

/// Every storage port the services need, opened from configuration.
#[derive(Clone)]
pub struct Stores {
    /// Registry metadata (blob links, uploads, manifests, versions, listings).
    pub metadata: Arc<dyn MetadataStore>,
    /// Accounts, packages and credentials.
    pub access: Arc<dyn AccessStore>,
    /// Webhooks and their delivery queue.
    pub hooks: Arc<dyn HookStore>,
    /// Blob bytes and upload files.
    pub blobs: Arc<dyn BlobStore>,
}

impl Stores {
    /// Opens the backends `database` and `blobs` name.
    pub async fn open(
        database: &DatabaseUrl,
        blobs: &BlobStoreUrl,
        opener: Opener,
    ) -> anyhow::Result<Self> {
        let meta =
            match database {
                DatabaseUrl::Sqlite(path) => {
                    let opened = match opener {
                        Opener::Server => berth_meta_sqlite::SqliteMetadataStore::open(path).await,
                        Opener::Admin => {
                            berth_meta_sqlite::SqliteMetadataStore::open_shared(path).await
                        }
                    };
                    Arc::new(opened.with_context(|| {
                        format!("opening the metadata database {}", path.display())
                    })?)
                }
            };
        let blobs: Arc<dyn BlobStore> = match blobs {
            BlobStoreUrl::File(dir) => Arc::new(
                berth_blob::FsBlobStore::open(dir)
                    .with_context(|| format!("opening the blob store in {}", dir.display()))?,
            ),
        };
        Ok(Stores {
            metadata: meta.clone(),
            access: meta.clone(),
            hooks: meta,
            blobs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_by_scheme() {
        assert_eq!(
            DatabaseUrl::parse("sqlite:/var/lib/berth/m.db").unwrap(),
            DatabaseUrl::Sqlite("/var/lib/berth/m.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///abs/m.db").unwrap(),
            DatabaseUrl::Sqlite("/abs/m.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:rel/m.db").unwrap(),
            DatabaseUrl::Sqlite("rel/m.db".into())
        );
        let missing = DatabaseUrl::parse("postgres://db/berth")
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("database_url") && missing.contains("PostgreSQL"),
            "{missing}"
        );
        let unknown = DatabaseUrl::parse("mysql://db").unwrap_err().to_string();
        assert!(
            unknown.contains("database_url") && unknown.contains("`mysql:`"),
            "{unknown}"
        );
        assert!(DatabaseUrl::parse("sqlite:").is_err());
        assert!(DatabaseUrl::parse("/just/a/path").is_err());
    }

    #[test]
    fn blob_store_urls_by_scheme() {
        assert_eq!(
            BlobStoreUrl::parse("file:/srv/blobs").unwrap(),
            BlobStoreUrl::File("/srv/blobs".into())
        );
        let missing = BlobStoreUrl::parse("s3://bucket").unwrap_err().to_string();
        assert!(
            missing.contains("blob_store") && missing.contains("S3"),
            "{missing}"
        );
        let unknown = BlobStoreUrl::parse("gcs://bucket").unwrap_err().to_string();
        assert!(
            unknown.contains("blob_store") && unknown.contains("`gcs:`"),
            "{unknown}"
        );
        assert!(BlobStoreUrl::parse("file:").is_err());
    }
}
