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

use crate::config_check::redact_password;

/// Where metadata lives, parsed from `database_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite:<path>`: the embedded SQLite database file.
    Sqlite(PathBuf),
    /// `postgres://…`: a PostgreSQL database every node shares.
    Postgres {
        /// The URL, password included (redacted in `Debug`).
        url: PostgresUrl,
        /// Connections this node keeps at most (`database_pool_size`).
        pool_size: u32,
    },
}

/// A `postgres://` URL; its `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(String);

impl PostgresUrl {
    /// The URL as given, password included: for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PostgresUrl({})", redact_password(&self.0))
    }
}

/// Connections a node keeps to PostgreSQL unless `database_pool_size` says otherwise.
pub const DEFAULT_POOL_SIZE: u32 = 16;

/// Where blobs live, parsed from `blob_store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobStoreUrl {
    /// `file:<path>`: a directory on this machine.
    File(PathBuf),
    /// `s3://<bucket>[/<prefix>]`: a bucket every node shares (endpoint, region and keys from
    /// the `s3_*` settings; the secret hidden from `Debug`).
    S3(berth_blob_s3::S3Settings),
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

    /// This URL with `database_pool_size` set (PostgreSQL only; SQLite has its own pools).
    pub fn with_pool_size(self, size: u32) -> Self {
        match self {
            DatabaseUrl::Postgres { url, .. } => DatabaseUrl::Postgres {
                url,
                pool_size: size,
            },
            sqlite => sqlite,
        }
    }

    /// Parses the `database_url` setting.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        match scheme(url) {
            Some(("sqlite", rest)) if !rest.is_empty() => Ok(DatabaseUrl::Sqlite(local_path(rest))),
            Some(("sqlite", _)) => anyhow::bail!(
                "the database_url setting `{url}` names no file; write sqlite:<path>, e.g. sqlite:/var/lib/berth/metadata.sqlite"
            ),
            Some(("postgres" | "postgresql", rest)) if rest.starts_with("//") && rest.len() > 2 => {
                Ok(DatabaseUrl::Postgres {
                    url: PostgresUrl(url.to_owned()),
                    pool_size: DEFAULT_POOL_SIZE,
                })
            }
            Some(("postgres" | "postgresql", _)) => anyhow::bail!(
                "the database_url setting `{}` names no server; write postgres://user:password@host:port/database",
                redact_password(url)
            ),
            Some((other, _)) => anyhow::bail!(
                "the database_url setting has the unknown scheme `{other}:`; use sqlite:<path> (the default: metadata.sqlite in data_dir) or postgres://user:password@host:port/database"
            ),
            None => anyhow::bail!(
                "the database_url setting `{url}` is not a URL; write sqlite:<path> (the default: metadata.sqlite in data_dir) or postgres://user:password@host:port/database"
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
            Some(("s3", rest)) => {
                let path = rest.strip_prefix("//").unwrap_or_default();
                let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
                if bucket.is_empty() {
                    anyhow::bail!(
                        "the blob_store setting `{url}` names no bucket; write s3://<bucket> or s3://<bucket>/<key prefix>"
                    );
                }
                Ok(BlobStoreUrl::S3(berth_blob_s3::S3Settings {
                    bucket: bucket.to_owned(),
                    prefix: prefix.trim_matches('/').to_owned(),
                    endpoint: None,
                    region: String::new(),
                    access_key_id: String::new(),
                    secret_access_key: String::new(),
                    upload_memory: berth_blob_s3::DEFAULT_UPLOAD_MEMORY,
                }))
            }
            Some((other, _)) => anyhow::bail!(
                "the blob_store setting has the unknown scheme `{other}:`; use file:<directory> (the default: data_dir) or s3://<bucket>"
            ),
            None => anyhow::bail!(
                "the blob_store setting `{url}` is not a URL; write file:<directory> (the default: data_dir) or s3://<bucket>"
            ),
        }
    }
}

/// Who opens the stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opener {
    /// `berth serve`: the one process serving its data directory; leases a stopped process
    /// left are voided — with SQLite all of them, with PostgreSQL those held under this
    /// node's name (`node`, kept in the data directory), since other nodes hold theirs.
    Server {
        /// This node's name among the nodes sharing a database.
        node: String,
    },
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
    /// The PostgreSQL store, when metadata is there: what the nodes sharing it coordinate
    /// through it (signing key, access changes, housekeeping turns). `None`: the embedded
    /// setup, one process per data directory, which keeps those in the data directory.
    pub postgres: Option<Arc<berth_meta_postgres::PgMetadataStore>>,
}

impl Stores {
    /// Opens the backends `database` and `blobs` name.
    pub async fn open(
        database: &DatabaseUrl,
        blobs: &BlobStoreUrl,
        opener: Opener,
    ) -> anyhow::Result<Self> {
        let mut postgres = None;
        let (metadata, access, hooks): (
            Arc<dyn MetadataStore>,
            Arc<dyn AccessStore>,
            Arc<dyn HookStore>,
        ) = match database {
            DatabaseUrl::Sqlite(path) => {
                let opened = match opener {
                    Opener::Server { .. } => {
                        berth_meta_sqlite::SqliteMetadataStore::open(path).await
                    }
                    Opener::Admin => {
                        berth_meta_sqlite::SqliteMetadataStore::open_shared(path).await
                    }
                };
                let store = Arc::new(opened.with_context(|| {
                    format!("opening the metadata database {}", path.display())
                })?);
                (store.clone(), store.clone(), store)
            }
            DatabaseUrl::Postgres { url, pool_size } => {
                let options = berth_meta_postgres::PgOptions {
                    node: match &opener {
                        Opener::Server { node } => Some(node.clone()),
                        Opener::Admin => None,
                    },
                    max_connections: *pool_size,
                    ..berth_meta_postgres::PgOptions::default()
                };
                let store = Arc::new(
                    berth_meta_postgres::PgMetadataStore::open(url.expose(), options)
                        .await
                        .with_context(|| {
                            format!(
                                "opening the PostgreSQL database of the database_url setting ({})",
                                redact_password(url.expose())
                            )
                        })?,
                );
                if let Opener::Server { .. } = opener {
                    let (uploads, deliveries) = store
                        .release_leases_of_this_node()
                        .await
                        .context("releasing the leases this node held before it stopped")?;
                    if uploads + deliveries > 0 {
                        tracing::info!(
                            uploads,
                            deliveries,
                            "released the leases this node held when it stopped"
                        );
                    }
                }
                postgres = Some(store.clone());
                (store.clone(), store.clone(), store)
            }
        };
        let blobs: Arc<dyn BlobStore> = match blobs {
            BlobStoreUrl::File(dir) => Arc::new(
                berth_blob::FsBlobStore::open(dir)
                    .with_context(|| format!("opening the blob store in {}", dir.display()))?,
            ),
            BlobStoreUrl::S3(settings) => Arc::new(
                berth_blob_s3::S3BlobStore::open(settings)
                    .await
                    .with_context(|| {
                        format!(
                            "opening the S3 blob store of the blob_store setting (s3://{})",
                            settings.bucket
                        )
                    })?,
            ),
        };
        Ok(Stores {
            metadata,
            access,
            hooks,
            blobs,
            postgres,
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
        let postgres = DatabaseUrl::parse("postgres://berth:hunter2@db:5432/berth")
            .unwrap()
            .with_pool_size(4);
        let DatabaseUrl::Postgres { url, pool_size } = &postgres else {
            panic!("{postgres:?}")
        };
        assert_eq!(
            (url.expose(), *pool_size),
            ("postgres://berth:hunter2@db:5432/berth", 4)
        );
        assert!(
            !format!("{postgres:?}").contains("hunter2"),
            "Debug hides the password"
        );
        let missing = DatabaseUrl::parse("postgres:").unwrap_err().to_string();
        assert!(
            missing.contains("database_url") && missing.contains("names no server"),
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
        let BlobStoreUrl::S3(s3) = BlobStoreUrl::parse("s3://bucket/some/prefix/").unwrap() else {
            panic!("an s3 URL")
        };
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str()),
            ("bucket", "some/prefix")
        );
        let missing = BlobStoreUrl::parse("s3://").unwrap_err().to_string();
        assert!(
            missing.contains("blob_store") && missing.contains("no bucket"),
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
