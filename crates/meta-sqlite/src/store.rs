//! Opening the database, and the helpers every query module shares.

use std::path::Path;
use std::time::Duration;

use berth_core::digest::Digest;
use berth_core::error::{StoreError, StoreErrorKind};
use berth_core::ports::BlobRef;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection, Transaction};

/// The schema, embedded at build time from `migrations/`.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a statement waits for SQLite's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections in the read pool.
const READERS: u32 = 4;

/// Berth's metadata in one SQLite database file.
///
/// Cheap to clone: clones share the same connection pools.
#[derive(Debug, Clone)]
pub struct SqliteMetadataStore {
    /// One connection: every write and every write transaction.
    pub(crate) writer: SqlitePool,
    /// `query_only` connections for reads, which WAL lets run alongside the writer.
    pub(crate) reader: SqlitePool,
    /// The database file, for the health probe and online backups.
    pub(crate) path: std::sync::Arc<Path>,
}

impl SqliteMetadataStore {
    /// Opens the database at `path`, creating the file if missing, and brings its schema up to
    /// date. Leases left by a process that stopped without releasing them are voided: one
    /// process serves a database file, so no request can still hold them.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, true).await
    }

    /// Opens the database like [`SqliteMetadataStore::open`] but leaves upload leases alone:
    /// for `berth admin`, which may run while `berth serve` holds leases on the same file.
    pub async fn open_shared(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, false).await
    }

    async fn open_with(path: &Path, void_leases: bool) -> Result<Self, StoreError> {
        let context = || format!("opening metadata database {}", path.display());
        let base = SqliteConnectOptions::new()
            .filename(path)
            .foreign_keys(true)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal),
            )
            .await
            .map_err(|e| StoreError::new(context(), e))?;
        MIGRATOR.run(&writer).await.map_err(|e| {
            StoreError::new(format!("migrating metadata database {}", path.display()), e)
        })?;
        if void_leases {
            sqlx::query("UPDATE uploads SET lease_token = NULL, lease_until = NULL WHERE lease_token IS NOT NULL")
                .execute(&writer)
                .await
                .map_err(|e| StoreError::new("voiding stale upload leases", e))?;
            // Webhook deliveries claimed by the stopped process go out again at once.
            sqlx::query("UPDATE hook_deliveries SET lease_token = NULL, lease_until = NULL WHERE lease_token IS NOT NULL")
                .execute(&writer)
                .await
                .map_err(|e| StoreError::new("voiding stale webhook delivery leases", e))?;
        }
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .test_before_acquire(false)
            .connect_with(base.pragma("query_only", "ON"))
            .await
            .map_err(|e| StoreError::new(context(), e))?;
        tracing::debug!(path = %path.display(), "opened metadata database");
        Ok(SqliteMetadataStore {
            writer,
            reader,
            path: path.into(),
        })
    }

    /// Closes both pools, waiting for queries in flight; SQLite checkpoints the WAL as the
    /// last connection closes. Calls made afterwards fail.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Starts a write transaction that holds SQLite's write lock from its first statement.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(failed("starting a write transaction"))
    }

    /// The writer connection, switched to `synchronous = NORMAL`: its commits reach the WAL
    /// but wait for no fsync, so they survive a crash of the process but may be lost, whole,
    /// with the machine. For writes whose loss is harmless — upload leases (void after a
    /// restart anyway) and upload progress (a lost record only rewinds the offset to bytes
    /// already durable). Hand it back through [`SqliteMetadataStore::resync`].
    pub(crate) async fn unsynced(&self) -> Result<PoolConnection<Sqlite>, StoreError> {
        let mut conn = self
            .writer
            .acquire()
            .await
            .map_err(failed("acquiring the writer connection"))?;
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await
            .map_err(failed("relaxing synchronous for upload bookkeeping"))?;
        Ok(conn)
    }

    /// Restores `synchronous = FULL` on a connection from [`SqliteMetadataStore::unsynced`];
    /// if that fails the connection is closed rather than reused with weaker durability.
    pub(crate) async fn resync(&self, mut conn: PoolConnection<Sqlite>) -> Result<(), StoreError> {
        match sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => {
                let _ = conn.close().await;
                Err(StoreError::new("restoring synchronous = FULL", err))
            }
        }
    }
}

/// Wraps a database error with what was being done, and says in the port's words what kind
/// of failure it is.
pub(crate) fn failed(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |err| StoreError::of_kind(kind_of(&err), context, err)
}

/// The port's kind of a database error: a missing row, a unique or foreign-key collision, a
/// database that is busy or out of reach, or anything else.
fn kind_of(err: &sqlx::Error) -> StoreErrorKind {
    match err {
        sqlx::Error::RowNotFound => StoreErrorKind::NotFound,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreErrorKind::Unavailable
        }
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreErrorKind::Conflict,
        // SQLITE_BUSY and SQLITE_LOCKED (with their extended codes in the low byte).
        sqlx::Error::Database(db)
            if db
                .code()
                .and_then(|code| code.parse::<i32>().ok())
                .is_some_and(|code| matches!(code & 0xff, 5 | 6)) =>
        {
            StoreErrorKind::Unavailable
        }
        _ => StoreErrorKind::Other,
    }
}

pub(crate) use berth_core::ports::now_millis;

/// A byte count or offset as SQLite's 64-bit signed integer.
pub(crate) fn to_sql(n: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|e| StoreError::new(format!("storing {what} {n}"), e))
}

/// A byte count or offset read back from SQLite.
pub(crate) fn from_sql(n: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(n)
        .map_err(|e| StoreError::new(format!("reading {what} {n} from the database"), e))
}

/// A listing limit for SQL's `LIMIT`, where `usize::MAX` means no limit.
pub(crate) fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// `digests` as a JSON array, to pass a list in one bound parameter and expand it with
/// `json_each`. Digests are `algorithm:lowercase-hex`, so they need no escaping.
pub(crate) fn json_list(digests: &[Digest]) -> String {
    let mut json = String::with_capacity(2 + digests.len() * 76);
    json.push('[');
    for (i, digest) in digests.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push('"');
        json.push_str(digest.as_str());
        json.push('"');
    }
    json.push(']');
    json
}

/// A digest read back from the database.
pub(crate) fn parse_digest(text: &str) -> Result<Digest, StoreError> {
    text.parse()
        .map_err(|e| StoreError::new("reading a digest from the database", e))
}

/// The id of repository `name`, creating the repository if new. Run inside a write
/// transaction.
/// The id of repository `name`, if it exists.
pub(crate) async fn repository_id(
    conn: &mut SqliteConnection,
    name: &str,
) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar("SELECT id FROM repositories WHERE name = ?1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(failed(format!("looking up repository {name}")))
}

/// The first of `digests` (in the order given) that is not a live manifest of repository
/// `repo`: one query, run on `conn` so it can share a write transaction.
pub(crate) async fn first_missing_manifest<'d>(
    conn: &mut SqliteConnection,
    repo: &str,
    digests: &'d [Digest],
) -> Result<Option<&'d Digest>, StoreError> {
    if digests.is_empty() {
        return Ok(None);
    }
    let position: Option<i64> = sqlx::query_scalar(
        "SELECT wanted.key FROM json_each(?2) AS wanted WHERE NOT EXISTS ( \
             SELECT 1 FROM manifests m JOIN repositories r ON r.id = m.repository_id \
             WHERE r.name = ?1 AND m.digest = wanted.value AND m.deleted_at IS NULL) \
         ORDER BY wanted.key LIMIT 1",
    )
    .bind(repo)
    .bind(json_list(digests))
    .fetch_optional(&mut *conn)
    .await
    .map_err(failed(format!("checking which manifests {repo} holds")))?;
    Ok(position
        .and_then(|i| usize::try_from(i).ok())
        .and_then(|i| digests.get(i)))
}

/// The first of `wanted` (in the order given) that repository `repo` does not hold with the
/// size its descriptor states, with the size it holds (`None`: not linked at all). One query,
/// the same lookup as the presence check it replaces, run on `conn` so it can share a write
/// transaction.
pub(crate) async fn first_unmet_blob<'d>(
    conn: &mut SqliteConnection,
    repo: &str,
    wanted: &'d [BlobRef],
) -> Result<Option<(&'d BlobRef, Option<u64>)>, StoreError> {
    if wanted.is_empty() {
        return Ok(None);
    }
    let mut json = String::with_capacity(2 + wanted.len() * 100);
    json.push('[');
    for (i, blob) in wanted.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!(
            "{{\"d\":\"{}\",\"s\":{}}}",
            blob.digest.as_str(),
            blob.size
        ));
    }
    json.push(']');
    let row: Option<(i64, Option<i64>)> = sqlx::query_as(
        "SELECT key, stored FROM ( \
             SELECT wanted.key AS key, json_extract(wanted.value, '$.s') AS declared, \
                 (SELECT b.size FROM repository_blobs rb \
                      JOIN repositories r ON r.id = rb.repository_id \
                      JOIN blobs b ON b.digest = rb.digest \
                  WHERE r.name = ?1 AND rb.digest = json_extract(wanted.value, '$.d')) AS stored \
             FROM json_each(?2) AS wanted) \
         WHERE stored IS NULL OR stored <> declared \
         ORDER BY key LIMIT 1",
    )
    .bind(repo)
    .bind(json)
    .fetch_optional(&mut *conn)
    .await
    .map_err(failed(format!("checking which blobs {repo} holds")))?;
    let Some((position, stored)) = row else {
        return Ok(None);
    };
    let blob = usize::try_from(position)
        .ok()
        .and_then(|i| wanted.get(i))
        .ok_or_else(|| {
            StoreError::new(
                format!("checking which blobs {repo} holds"),
                "position out of range",
            )
        })?;
    Ok(Some((blob, stored.map(|s| s.unsigned_abs()))))
}

pub(crate) async fn ensure_repository(
    conn: &mut SqliteConnection,
    name: &str,
) -> Result<i64, StoreError> {
    sqlx::query(
        "INSERT INTO repositories (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(now_millis())
    .execute(&mut *conn)
    .await
    .map_err(failed(format!("creating repository {name}")))?;
    repository_id(conn, name).await?.ok_or_else(|| {
        StoreError::new(
            format!("looking up repository {name}"),
            "repository vanished inside its own transaction",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_list_quotes_each_digest() {
        let a = Digest::sha256(b"a");
        let b = Digest::sha256(b"b");
        assert_eq!(json_list(&[]), "[]");
        assert_eq!(
            json_list(&[a.clone(), b.clone()]),
            format!("[\"{a}\",\"{b}\"]")
        );
    }

    #[test]
    fn limits_clamp_to_sql_range() {
        assert_eq!(sql_limit(usize::MAX), i64::MAX);
        assert_eq!(sql_limit(5), 5);
        assert!(to_sql(u64::MAX, "size").is_err());
        assert!(from_sql(-1, "size").is_err());
    }
}
