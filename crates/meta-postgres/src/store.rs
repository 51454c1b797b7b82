//! Opening the pool, and the helpers every query module shares.

use std::str::FromStr as _;
use std::time::Duration;

use berth_core::digest::Digest;
use berth_core::error::{StoreError, StoreErrorKind};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The schema, embedded at build time from `migrations/`.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How to reach the database, beyond its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// This node's name among the nodes sharing the database, kept across its restarts (the
    /// binary keeps it in the data directory): the holder of its leases. `None`: a name of
    /// its own for this process only (tools, tests).
    pub node: Option<String>,
    /// Connections this node keeps at most (`database_pool_size`).
    pub max_connections: u32,
    /// How long a request waits for a connection (or for a new one to be made) before it
    /// fails as unavailable: a database that is down answers 503 after this, not never.
    pub acquire_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            node: None,
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Berth's metadata in one PostgreSQL database, shared by every node.
///
/// Cheap to clone: clones share the same connection pool.
#[derive(Debug, Clone)]
pub struct PgMetadataStore {
    pub(crate) pool: PgPool,
    /// How the pool connects, for connections of their own (the change listener).
    pub(crate) connect: PgConnectOptions,
    /// This process's name among the nodes (holder of housekeeping tasks).
    pub(crate) node: std::sync::Arc<str>,
    /// The connection listening for other nodes' changes, once something asked for them.
    pub(crate) heard: std::sync::Arc<tokio::sync::OnceCell<std::sync::Arc<crate::cluster::Heard>>>,
}

impl PgMetadataStore {
    /// Connects to the database `url` names (`postgres://user:password@host:port/database`)
    /// and brings its schema up to date. Several nodes opening one database at once migrate it
    /// once: the migrator holds PostgreSQL's advisory lock while it runs.
    pub async fn open(url: &str, options: PgOptions) -> Result<Self, StoreError> {
        let connect = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::new(
                "reading the database_url setting as a PostgreSQL URL",
                // The parser's message may quote the URL, password included.
                redacted_parse_error(&e),
            )
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(failed("connecting to the PostgreSQL database"))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::new("migrating the PostgreSQL database", e))?;
        tracing::debug!(
            max_connections = options.max_connections,
            "opened PostgreSQL metadata database"
        );
        let node = options
            .node
            .clone()
            .unwrap_or_else(|| format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()));
        Ok(PgMetadataStore {
            pool,
            connect,
            node: node.into(),
            heard: Default::default(),
        })
    }

    /// Closes the pool, waiting for queries in flight. Calls made afterwards fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// What a URL parse error says, without the URL (which may carry a password).
fn redacted_parse_error(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Configuration(source) => {
            format!(
                "not a valid PostgreSQL URL ({})",
                source.to_string().split(':').next().unwrap_or("invalid")
            )
        }
        _ => "not a valid PostgreSQL URL".to_owned(),
    }
}

/// Wraps a database error with what was being done, and says in the port's words what kind
/// of failure it is.
pub(crate) fn failed(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |err| StoreError::of_kind(kind_of(&err), context, err)
}

/// The port's kind of a database error: a missing row, a unique collision, a database that is
/// out of reach or asks for the transaction to be tried again, or anything else.
pub(crate) fn kind_of(err: &sqlx::Error) -> StoreErrorKind {
    match err {
        sqlx::Error::RowNotFound => StoreErrorKind::NotFound,
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => StoreErrorKind::Unavailable,
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreErrorKind::Conflict,
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // serialization_failure, deadlock_detected: the transaction may simply be retried.
            Some("40001" | "40P01") => StoreErrorKind::Unavailable,
            // too_many_connections, the server shutting down or starting up, out of disk.
            Some("53300" | "57P01" | "57P02" | "57P03" | "53100") => StoreErrorKind::Unavailable,
            // connection_exception and its subclasses.
            Some(code) if code.starts_with("08") => StoreErrorKind::Unavailable,
            _ => StoreErrorKind::Other,
        },
        _ => StoreErrorKind::Other,
    }
}

pub(crate) use berth_core::ports::now_millis;

/// A byte count or offset as PostgreSQL's BIGINT.
pub(crate) fn to_sql(n: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|e| StoreError::new(format!("storing {what} {n}"), e))
}

/// A byte count or offset read back from PostgreSQL.
pub(crate) fn from_sql(n: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(n)
        .map_err(|e| StoreError::new(format!("reading {what} {n} from the database"), e))
}

/// A listing limit for SQL's `LIMIT`, where `usize::MAX` means no limit.
pub(crate) fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A digest read back from the database.
pub(crate) fn parse_digest(text: &str) -> Result<Digest, StoreError> {
    text.parse()
        .map_err(|e| StoreError::new("reading a digest from the database", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_clamp_to_sql_range() {
        assert_eq!(sql_limit(usize::MAX), i64::MAX);
        assert_eq!(sql_limit(5), 5);
        assert!(to_sql(u64::MAX, "size").is_err());
        assert!(from_sql(-1, "size").is_err());
    }

    #[test]
    fn a_bad_url_is_reported_without_its_password() {
        let err = PgConnectOptions::from_str("postgres://u:s3cret@host:notaport/db").unwrap_err();
        assert!(!redacted_parse_error(&err).contains("s3cret"));
    }
}
