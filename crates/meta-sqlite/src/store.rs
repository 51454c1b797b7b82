//! Opening the database, and the helpers every query module shares.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use berth_core::digest::Digest;
use berth_core::error::{StoreError, StoreErrorKind};
use berth_core::ports::BlobRef;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, ConnectOptions as _, Connection as _, SqliteConnection};

/// The schema, embedded at build time from `migrations/`.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a statement waits for SQLite's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read connections.
const READERS: usize = 4;

/// How long a read waits for a read connection to come free before failing (sqlx's pools
/// wait as long by default).
const READ_WAIT: Duration = Duration::from_secs(30);

/// Writes (commits and single statements) after which the background checkpointer copies the
/// WAL back into the database file: a few thousand pages (a small push's commit writes about
/// 7). Every 128 writes was slower for small pushes; 512 was as fast as no checkpoint at all
/// (BENCHMARKS.md, "Lean and steady, part 7").
const CHECKPOINT_EVERY_WRITES: u64 = 512;

/// WAL pages at which the writer checkpoints by itself, inside a commit, as SQLite does by
/// default at 1,000: only when the background checkpointer cannot keep up (a reader holding
/// an old snapshot for long). 40 MiB of 4 KiB pages.
const WRITER_CHECKPOINT_PAGES: u32 = 10_000;

/// Berth's metadata in one SQLite database file.
///
/// Cheap to clone: clones share the same connection pools.
#[derive(Debug, Clone)]
pub struct SqliteMetadataStore {
    /// One connection: every write and every write transaction, made durable in groups.
    pub(crate) writer: Writer,
    /// `query_only` connections for reads, which WAL lets run alongside the writer.
    pub(crate) reader: Readers,
    /// The database file, for the health probe and online backups.
    pub(crate) path: std::sync::Arc<Path>,
    /// The connection the background checkpointer runs on (see [`checkpoint_in_background`]).
    checkpointer: SqlitePool,
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
        // The writer's commits wait for no fsync of their own: `Writer::durable` syncs the WAL
        // once for every commit made before it. Its one connection is never closed for age or
        // idleness, so the WAL file it syncs is the one SQLite writes. Nor do its commits copy
        // the WAL back into the database (a checkpoint, which SQLite runs inside the commit
        // that crosses 1,000 pages, syncing the database file while the writer waits): a task
        // of its own does that beside the writer (`checkpoint_in_background`).
        let mut writer = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES.to_string())
            .connect()
            .await
            .map_err(|e| StoreError::new(context(), e))?;
        MIGRATOR.run(&mut writer).await.map_err(|e| {
            StoreError::new(format!("migrating metadata database {}", path.display()), e)
        })?;
        if void_leases {
            sqlx::query("UPDATE uploads SET lease_token = NULL, lease_until = NULL WHERE lease_token IS NOT NULL")
                .execute(&mut writer)
                .await
                .map_err(|e| StoreError::new("voiding stale upload leases", e))?;
            // Webhook deliveries claimed by the stopped process go out again at once.
            sqlx::query("UPDATE hook_deliveries SET lease_token = NULL, lease_until = NULL WHERE lease_token IS NOT NULL")
                .execute(&mut writer)
                .await
                .map_err(|e| StoreError::new("voiding stale webhook delivery leases", e))?;
        }
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(base.clone())
            .await
            .map_err(|e| StoreError::new(context(), e))?;
        let reader = Readers::open(&base.pragma("query_only", "ON"))
            .await
            .map_err(|e| StoreError::new(context(), e))?;
        let (due, wanted) = tokio::sync::mpsc::channel(1);
        tokio::spawn(checkpoint_in_background(checkpointer.clone(), wanted));
        tracing::debug!(path = %path.display(), "opened metadata database");
        Ok(SqliteMetadataStore {
            writer: Writer {
                conn: Arc::new(tokio::sync::Mutex::new(Some(writer))),
                wal: Arc::new(WalSync::new(path, due)),
            },
            reader,
            path: path.into(),
            checkpointer,
        })
    }

    /// Closes the pools, waiting for queries in flight; SQLite checkpoints the WAL as the
    /// last connection closes. Calls made afterwards fail.
    pub async fn close(&self) {
        self.checkpointer.close().await;
        self.reader.close().await;
        let writer = self.writer.conn.lock().await.take();
        if let Some(writer) = writer
            && let Err(err) = writer.close().await
        {
            tracing::warn!(error = %err, "closing the metadata database's writer failed");
        }
    }

    /// Starts a write transaction that holds SQLite's write lock from its first statement;
    /// its [`WriteTx::commit`] returns once the transaction is durable.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let mut tx = self.begin_write_with_first().await?;
        tx.begun = true;
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *tx)
            .await
            .map_err(failed("starting a write transaction"))?;
        Ok(tx)
    }

    /// Like [`SqliteMetadataStore::begin_write`], but the `BEGIN IMMEDIATE` goes to SQLite's
    /// thread with the transaction's first statements, as one command instead of two: their
    /// SQL must come from [`WriteTx::opening`]. For the transactions of a push, which run
    /// several times per image (BENCHMARKS.md, "Lean and steady, part 23").
    pub(crate) async fn begin_write_with_first(&self) -> Result<WriteTx, StoreError> {
        Ok(WriteTx {
            conn: Some(self.writer.conn().await?),
            wal: self.writer.wal.clone(),
            open: true,
            begun: false,
            commit_sent: false,
        })
    }
}

/// The one writer connection, in WAL mode with `synchronous = NORMAL`, and the group commit
/// that makes its commits durable: a commit appends to the WAL without an fsync of its own,
/// then waits in [`Writer::durable`] for one `fdatasync` of the WAL that began after it. Those
/// waiting together share one, so concurrent requests (4 clients pushing small images: 5
/// commits each) pay for one sync instead of queueing behind one each. A 201 still means
/// the commit is on disk.
///
/// The connection is held by the store itself rather than by a one-connection pool: sqlx
/// pings a pooled connection each time it goes back to its pool, one more round trip to
/// SQLite's thread for every statement and transaction (BENCHMARKS.md, "Lean and steady,
/// part 15"). Statements queue for it on a lock; their commands reach SQLite's thread in
/// that order, so a statement whose request was dropped mid-way finishes before the next.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    /// `None` once the store is closed.
    conn: Arc<tokio::sync::Mutex<Option<SqliteConnection>>>,
    wal: Arc<WalSync>,
}

impl Writer {
    /// The connection, for a single statement; call [`Writer::durable`] after it.
    pub(crate) async fn conn(&self) -> Result<WriterConn, StoreError> {
        let held = Arc::clone(&self.conn).lock_owned().await;
        if held.is_none() {
            return Err(StoreError::new(
                "writing to the metadata database",
                "the store is closed",
            ));
        }
        Ok(WriterConn(held))
    }

    /// The connection, for writes whose loss with the machine is harmless and which therefore
    /// do not wait for [`Writer::durable`] — new upload sessions (a lost one answers
    /// `BLOB_UPLOAD_UNKNOWN`, and its client starts again: it holds no bytes yet), upload
    /// leases (void after a restart anyway), upload progress (a lost record only rewinds the
    /// offset to bytes already durable) and credentials' last use: their commits reach the
    /// WAL and survive a crash of the process, and the next durable commit makes them
    /// durable too.
    pub(crate) async fn unsynced(&self) -> Result<WriterConn, StoreError> {
        let conn = self.conn().await?;
        self.wal.wrote();
        Ok(conn)
    }

    /// Returns once every commit made before the call is on disk.
    pub(crate) async fn durable(&self) -> Result<(), StoreError> {
        self.wal
            .after_commit()
            .await
            .map_err(|e| StoreError::io("syncing the metadata database's write-ahead log", e))
    }
}

/// The read connections, `query_only`, held by the store like the writer's (see [`Writer`])
/// rather than by a sqlx pool, which pings each connection on its way back: a second round
/// trip to SQLite's thread, on a task spawned for it, for every read. A read dropped mid-way
/// gives its connection back at once; its commands reach SQLite's thread before the next
/// holder's, and a transaction dropped open queues its `ROLLBACK` first (sqlx does that as it
/// drops).
#[derive(Debug, Clone)]
pub(crate) struct Readers(deadpool::unmanaged::Pool<SqliteConnection>);

impl Readers {
    /// Opens [`READERS`] connections with `options`.
    async fn open(options: &SqliteConnectOptions) -> Result<Self, sqlx::Error> {
        let mut conns = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            conns.push(options.connect().await?);
        }
        Ok(Readers(deadpool::unmanaged::Pool::from(conns)))
    }

    /// A read connection, once one is free (at most [`READ_WAIT`]).
    pub(crate) async fn conn(&self) -> Result<ReadConn, StoreError> {
        let doing = "reading the metadata database";
        match tokio::time::timeout(READ_WAIT, self.0.get()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(err)) => Err(StoreError::of_kind(StoreErrorKind::Unavailable, doing, err)),
            Err(_) => Err(StoreError::of_kind(
                StoreErrorKind::Unavailable,
                doing,
                format!("no read connection came free within {READ_WAIT:?}"),
            )),
        }
    }

    /// Closes every connection once its read is done; reads asked for afterwards fail.
    async fn close(&self) {
        for _ in 0..READERS {
            let Ok(conn) = self.0.remove().await else {
                break;
            };
            if let Err(err) = conn.close().await {
                tracing::warn!(error = %err, "closing a metadata database reader failed");
            }
        }
        self.0.close();
    }
}

/// A read connection, back to [`Readers`] when dropped.
pub(crate) type ReadConn = deadpool::unmanaged::Object<SqliteConnection>;

/// The writer's connection, held until dropped.
pub(crate) struct WriterConn(tokio::sync::OwnedMutexGuard<Option<SqliteConnection>>);

impl std::ops::Deref for WriterConn {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        self.0.as_ref().expect("checked when taken")
    }
}

impl std::ops::DerefMut for WriterConn {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.0.as_mut().expect("checked when taken")
    }
}

/// A write transaction on the writer connection (see [`Writer`]), holding it until committed
/// or rolled back. Dropped open (its request was dropped, or a statement failed), it rolls
/// back on a task of its own that keeps the connection until then.
pub(crate) struct WriteTx {
    /// `None` once committed or rolled back.
    conn: Option<WriterConn>,
    wal: Arc<WalSync>,
    /// Whether `BEGIN` may have run without its `COMMIT` or `ROLLBACK`.
    open: bool,
    /// Whether a statement with the `BEGIN` was made ([`WriteTx::opening`]); no other
    /// statement may run before it.
    begun: bool,
    /// Whether the `COMMIT` was sent ([`WriteTx::commit`], or with the statements of
    /// [`WriteTx::closing`]).
    commit_sent: bool,
}

impl WriteTx {
    /// `sql`, the transaction's next statements, opened by a `BEGIN IMMEDIATE` when they are
    /// its first: one command to SQLite's thread for both.
    pub(crate) fn opening(&mut self, sql: &'static str) -> AssertSqlSafe<Cow<'static, str>> {
        if std::mem::replace(&mut self.begun, true) {
            AssertSqlSafe(Cow::Borrowed(sql))
        } else {
            AssertSqlSafe(Cow::Owned(format!("BEGIN IMMEDIATE; {sql}")))
        }
    }

    /// `sql`, the transaction's last statements, followed by its `COMMIT`: one command to
    /// SQLite's thread for both. Once they have run, [`WriteTx::committed`] waits for the
    /// commit to be durable; should one fail, the `COMMIT` does not run and the transaction
    /// is rolled back like any other.
    pub(crate) fn closing(&mut self, sql: &'static str) -> AssertSqlSafe<Cow<'static, str>> {
        assert!(self.begun, "{UNBEGUN}");
        self.commit_sent = true;
        AssertSqlSafe(Cow::Owned(format!("{sql}; COMMIT")))
    }

    /// Commits, and returns once the commit is on disk. The connection goes to the next
    /// writer before the wait, so commits waiting together share one sync.
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        sqlx::query("COMMIT").execute(&mut *self).await?;
        self.commit_sent = true;
        self.committed().await
    }

    /// Returns once the `COMMIT` that the statements of [`WriteTx::closing`] ended with is on
    /// disk (see [`WriteTx::commit`]).
    pub(crate) async fn committed(mut self) -> Result<(), sqlx::Error> {
        assert!(
            self.commit_sent,
            "only statements from `WriteTx::closing` commit"
        );
        self.open = false;
        self.conn = None;
        self.wal.after_commit().await.map_err(sqlx::Error::Io)
    }

    /// Undoes the transaction (nothing to wait for).
    pub(crate) async fn rollback(mut self) -> Result<(), sqlx::Error> {
        sqlx::query("ROLLBACK").execute(&mut *self).await?;
        self.open = false;
        Ok(())
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let (Some(mut conn), Ok(runtime)) =
            (self.conn.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        runtime.spawn(async move {
            // Fails harmlessly when `BEGIN` itself never ran.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        });
    }
}

impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        assert!(self.begun, "{UNBEGUN}");
        self.conn
            .as_deref()
            .expect("open until committed or rolled back")
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        assert!(self.begun, "{UNBEGUN}");
        self.conn
            .as_deref_mut()
            .expect("open until committed or rolled back")
    }
}

/// A statement about to run outside the transaction it was written for: a bug, so a panic
/// rather than writes that are not atomic.
const UNBEGUN: &str = "a write transaction's first statement must open it (`WriteTx::opening`)";

/// Copies the WAL back into the database file whenever [`WalSync::wrote`] says enough was
/// written, with a `PASSIVE` checkpoint: on a connection of its own, so the writer and the
/// readers go on meanwhile (it waits for neither, and copies what no reader still needs).
/// Once every frame is copied, the writer's next transaction starts the WAL over. Ends when
/// the store is dropped or closed.
async fn checkpoint_in_background(pool: SqlitePool, mut wanted: tokio::sync::mpsc::Receiver<()>) {
    while wanted.recv().await.is_some() {
        let done: Result<(i64, i64, i64), sqlx::Error> =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&pool)
                .await;
        match done {
            Ok((_, frames, copied)) => {
                tracing::trace!(frames, copied, "checkpointed the metadata database's WAL");
            }
            Err(sqlx::Error::PoolClosed) => break,
            // The writer checkpoints by itself past `WRITER_CHECKPOINT_PAGES`; the next
            // attempt comes with the next writes.
            Err(err) => tracing::warn!(error = %err, "checkpointing the metadata database failed"),
        }
    }
    pool.close().await;
}

/// The group commit: tickets taken after commits, and the ticket the last sync covered.
#[derive(Debug)]
struct WalSync {
    /// `<database>-wal`.
    wal: PathBuf,
    /// The database file, synced instead when the WAL is gone (checkpointed into it).
    database: PathBuf,
    /// Tickets handed out: one per commit, taken once the commit has returned.
    taken: AtomicU64,
    /// Every ticket up to this one is on disk.
    synced: AtomicU64,
    /// Syncs made.
    syncs: AtomicU64,
    /// The WAL file held open, and whose turn it is to sync.
    file: tokio::sync::Mutex<Option<(std::fs::File, u64)>>,
    /// Writes since the store opened, to tell the checkpointer when to run.
    writes: AtomicU64,
    /// Wakes the checkpointer (a full channel means it is due already).
    checkpoint_due: tokio::sync::mpsc::Sender<()>,
}

impl WalSync {
    fn new(database: &Path, checkpoint_due: tokio::sync::mpsc::Sender<()>) -> Self {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        WalSync {
            wal: PathBuf::from(wal),
            database: database.to_owned(),
            taken: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            file: tokio::sync::Mutex::new(None),
            writes: AtomicU64::new(0),
            checkpoint_due,
        }
    }

    /// Counts a write to the WAL; every [`CHECKPOINT_EVERY_WRITES`] it wakes the checkpointer.
    fn wrote(&self) {
        if (self.writes.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(CHECKPOINT_EVERY_WRITES)
        {
            // Full: a checkpoint is due already, and it will copy these frames too.
            let _ = self.checkpoint_due.try_send(());
        }
    }

    /// Waits until a sync that began after this call's commit has finished.
    async fn after_commit(&self) -> std::io::Result<()> {
        self.wrote();
        let ticket = self.taken.fetch_add(1, Ordering::SeqCst) + 1;
        let mut file = self.file.lock().await;
        if self.synced.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        // Every ticket taken so far belongs to a commit already written to the WAL.
        let covers = self.taken.load(Ordering::SeqCst);
        let (wal, database) = (self.wal.clone(), self.database.clone());
        let held = file.take();
        let (result, held) = tokio::task::spawn_blocking(move || sync_wal(&wal, &database, held))
            .await
            .map_err(std::io::Error::other)?;
        *file = held;
        result?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.synced.fetch_max(covers, Ordering::SeqCst);
        Ok(())
    }
}

/// `fdatasync`s the WAL at `wal` through `held` (reopened when the file at `wal` is another
/// one), or the database file when no WAL exists (its contents were checkpointed into it).
#[allow(clippy::type_complexity)]
fn sync_wal(
    wal: &Path,
    database: &Path,
    held: Option<(std::fs::File, u64)>,
) -> (std::io::Result<()>, Option<(std::fs::File, u64)>) {
    use std::os::unix::fs::MetadataExt as _;
    let inode = match std::fs::metadata(wal) {
        Ok(meta) => meta.ino(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let synced = std::fs::File::open(database).and_then(|f| f.sync_data());
            return (synced, None);
        }
        Err(err) => return (Err(err), held),
    };
    let held = match held {
        Some((file, held_inode)) if held_inode == inode => (file, inode),
        _ => match std::fs::File::open(wal) {
            Ok(file) => (file, inode),
            Err(err) => return (Err(err), None),
        },
    };
    (held.0.sync_data(), Some(held))
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

/// What a manifest's transaction looks up first, in one statement (each statement is a round
/// trip to SQLite's thread while the writer is held): the id of repository `repo` (`None`:
/// new), whether it has no tag yet, and the first of `wanted` (in the order given) that it
/// does not hold with the size its descriptor states, with the size it holds (`None`: not
/// linked at all).
pub(crate) struct ManifestLookup<'d> {
    pub(crate) repository_id: Option<i64>,
    pub(crate) untagged: bool,
    pub(crate) unmet: Option<(&'d BlobRef, Option<u64>)>,
}

/// [`ManifestLookup`] of `repo` for `wanted`, run in the write transaction `tx` (its first
/// statement when `tx` has run none yet).
pub(crate) async fn manifest_lookup<'d>(
    tx: &mut WriteTx,
    repo: &str,
    wanted: &'d [BlobRef],
) -> Result<ManifestLookup<'d>, StoreError> {
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
    let (repository_id, untagged, position, stored): (
        Option<i64>,
        bool,
        Option<i64>,
        Option<i64>,
    ) = sqlx::query_as(tx.opening(
        "SELECT r.id, r.id IS NULL OR NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = r.id), \
             u.key, u.stored \
         FROM (SELECT 1) AS one \
         LEFT JOIN repositories r ON r.name = ?1 \
         LEFT JOIN ( \
             SELECT key, stored FROM ( \
                 SELECT wanted.key AS key, json_extract(wanted.value, '$.s') AS declared, \
                     (SELECT b.size FROM repository_blobs rb \
                          JOIN repositories r ON r.id = rb.repository_id \
                          JOIN blobs b ON b.digest = rb.digest \
                      WHERE r.name = ?1 AND rb.digest = json_extract(wanted.value, '$.d')) AS stored \
                 FROM json_each(?2) AS wanted) \
             WHERE stored IS NULL OR stored <> declared \
             ORDER BY key LIMIT 1) AS u ON 1",
    ))
    .bind(repo)
    .bind(json)
    .fetch_one(&mut **tx)
    .await
    .map_err(failed(format!("checking which blobs {repo} holds")))?;
    let unmet = position
        .map(|position| BlobRef::unmet(wanted, position, stored, repo))
        .transpose()?;
    Ok(ManifestLookup {
        repository_id,
        untagged,
        unmet,
    })
}

/// The id of repository `name`: `found`, the id the caller's own lookup read, or else the
/// repository is created inside the caller's write transaction. Pushes to an existing
/// repository (nearly every one) cost no statement here.
pub(crate) async fn ensure_repository(
    conn: &mut SqliteConnection,
    name: &str,
    found: Option<i64>,
) -> Result<i64, StoreError> {
    if let Some(id) = found {
        return Ok(id);
    }
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
    /// A store on a new database in a temporary directory (kept as long as the store is used).
    async fn temp_store() -> (tempfile::TempDir, SqliteMetadataStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteMetadataStore::open(&dir.path().join("metadata.sqlite"))
            .await
            .unwrap();
        (dir, store)
    }

    /// A write transaction dropped without its commit (its request was dropped, a statement
    /// failed) leaves nothing behind: the writer's next statement runs after its rollback,
    /// outside any transaction, while a committed one is there for the readers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_transaction_dropped_open_is_rolled_back() {
        let (_dir, store) = temp_store().await;
        let insert = |id: &'static str| {
            sqlx::query(
                "INSERT INTO uploads (id, repository, byte_offset, hash_state, blob_state, \
                 started_at) VALUES (?1, 'acme/app', 0, x'', x'', 1)",
            )
            .bind(id)
        };
        let mut tx = store.begin_write().await.unwrap();
        insert("dropped").execute(&mut *tx).await.unwrap();
        drop(tx);
        let count = "SELECT COUNT(*) FROM uploads";
        let mut writer = store.writer.conn().await.unwrap();
        let rows: i64 = sqlx::query_scalar(count)
            .fetch_one(&mut *writer)
            .await
            .unwrap();
        assert_eq!(rows, 0, "the dropped transaction's row is gone");
        insert("alone").execute(&mut *writer).await.unwrap();
        drop(writer);
        let rows: i64 = sqlx::query_scalar(count)
            .fetch_one(&mut *store.reader.conn().await.unwrap())
            .await
            .unwrap();
        assert_eq!(rows, 1, "a statement after it commits on its own");
        let mut tx = store.begin_write().await.unwrap();
        insert("committed").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        let rows: i64 = sqlx::query_scalar(count)
            .fetch_one(&mut *store.reader.conn().await.unwrap())
            .await
            .unwrap();
        assert_eq!(rows, 2);
        store.close().await;
        assert!(
            store.writer.conn().await.is_err(),
            "a closed store writes nothing"
        );
    }

    /// A transaction opened by its first statement ([`WriteTx::opening`]) is one: its writes
    /// are undone when it is dropped open, kept when it commits, and its later statements
    /// are sent without a second `BEGIN` (SQLite refuses one inside a transaction). Closed by
    /// its last statements ([`WriteTx::closing`]), it commits with them, or not at all when
    /// one of them fails.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_opened_and_closed_by_its_statements_is_atomic() {
        let (_dir, store) = temp_store().await;
        const INSERT: &str = "INSERT INTO uploads (id, repository, byte_offset, hash_state, \
                              blob_state, started_at) VALUES (?, 'acme/app', 0, x'', x'', 1)";
        let count = || async {
            let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM uploads")
                .fetch_one(&mut *store.reader.conn().await.unwrap())
                .await
                .unwrap();
            rows
        };
        let mut tx = store.begin_write_with_first().await.unwrap();
        let first = tx.opening(INSERT);
        assert!(first.0.starts_with("BEGIN IMMEDIATE; "));
        sqlx::query(first)
            .bind("one")
            .execute(&mut *tx)
            .await
            .unwrap();
        let second = tx.opening(INSERT);
        assert_eq!(second.0, INSERT, "the transaction is open already");
        sqlx::query(second)
            .bind("two")
            .execute(&mut *tx)
            .await
            .unwrap();
        drop(tx);
        // The rollback of a dropped transaction runs on a task of its own, before the next
        // holder of the writer; taking the writer waits for it.
        drop(store.writer.conn().await.unwrap());
        assert_eq!(
            count().await,
            0,
            "both rows of the dropped transaction are gone"
        );
        let mut tx = store.begin_write_with_first().await.unwrap();
        sqlx::query(tx.opening(INSERT))
            .bind("three")
            .execute(&mut *tx)
            .await
            .unwrap();
        assert_eq!(count().await, 0, "nothing is seen before the commit");
        tx.commit().await.unwrap();
        assert_eq!(count().await, 1);
        // Closed by its last statements: their `COMMIT` goes with them.
        let mut tx = store.begin_write_with_first().await.unwrap();
        sqlx::query(tx.opening(INSERT))
            .bind("four")
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(tx.closing(INSERT))
            .bind("five")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.committed().await.unwrap();
        assert_eq!(
            count().await,
            3,
            "the closing statements committed both rows"
        );
        // When a closing statement fails (an id taken), its `COMMIT` does not run, and the
        // transaction is rolled back when dropped: the next one begins as usual.
        let mut tx = store.begin_write_with_first().await.unwrap();
        sqlx::query(tx.opening(INSERT))
            .bind("six")
            .execute(&mut *tx)
            .await
            .unwrap();
        let taken = sqlx::query(tx.closing(INSERT))
            .bind("three")
            .execute(&mut *tx)
            .await;
        assert!(taken.is_err(), "the id is taken");
        drop(tx);
        let mut tx = store.begin_write().await.unwrap();
        sqlx::query(INSERT)
            .bind("seven")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM uploads ORDER BY id")
            .fetch_all(&mut *store.reader.conn().await.unwrap())
            .await
            .unwrap();
        assert_eq!(ids, ["five", "four", "seven", "three"]);
        store.close().await;
    }

    /// A statement run through a transaction that nothing opened would run outside it, so it
    /// is refused.
    #[tokio::test]
    #[should_panic(expected = "must open it")]
    async fn a_statement_before_the_opening_one_is_refused() {
        let (_dir, store) = temp_store().await;
        let mut tx = store.begin_write_with_first().await.unwrap();
        let _ = sqlx::query("SELECT 1").execute(&mut *tx).await;
    }

    /// A read dropped mid-way, or with its transaction open, gives its connection back ready
    /// for the next read: every connection can be held again at once, a transaction can
    /// begin on the one the open transaction was dropped on (SQLite refuses a `BEGIN` inside
    /// one), and a closed store reads nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_dropped_mid_way_leaves_its_connection_ready() {
        let (_dir, store) = temp_store().await;
        // A read that runs for about a second, dropped after a few milliseconds: its statement
        // runs to its end on SQLite's thread, and the connection's next holder waits for that.
        let long = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
                    WHERE i < 2000000) SELECT COUNT(*) FROM n";
        let reading = async {
            let mut conn = store.reader.conn().await.unwrap();
            sqlx::query_scalar::<_, i64>(long)
                .fetch_one(&mut *conn)
                .await
        };
        let cut = tokio::time::timeout(Duration::from_millis(20), reading).await;
        assert!(cut.is_err(), "the long read was dropped before it finished");
        {
            let mut conn = store.reader.conn().await.unwrap();
            let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
            let one: i64 = sqlx::query_scalar("SELECT 1")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            assert_eq!(one, 1);
            // Dropped open, with its connection.
        }
        // The connection given back last is the next one out.
        let mut conn = store.reader.conn().await.unwrap();
        let tx = sqlx::Connection::begin(&mut *conn)
            .await
            .expect("the dropped transaction was rolled back first");
        tx.rollback().await.unwrap();
        drop(conn);
        let mut held = Vec::new();
        for _ in 0..READERS {
            held.push(
                tokio::time::timeout(Duration::from_secs(10), store.reader.conn())
                    .await
                    .expect("every connection came back")
                    .unwrap(),
            );
        }
        for conn in &mut held {
            let one: i64 = sqlx::query_scalar("SELECT 1")
                .fetch_one(&mut **conn)
                .await
                .unwrap();
            assert_eq!(one, 1);
        }
        drop(held);
        store.close().await;
        let closed = store
            .reader
            .conn()
            .await
            .expect_err("a closed store reads nothing");
        assert_eq!(closed.kind(), StoreErrorKind::Unavailable);
    }

    /// The writer leaves checkpoints to the background task: after enough writes, their pages
    /// are in the database file though the WAL is far below the writer's own threshold.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_is_copied_into_the_database_beside_the_writer() {
        use berth_core::ports::{UploadSession, UploadStore as _};
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("metadata.sqlite");
        let store = SqliteMetadataStore::open(&database).await.unwrap();
        let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(&mut *store.writer.conn().await.unwrap())
            .await
            .unwrap();
        assert_eq!(pages, i64::from(WRITER_CHECKPOINT_PAGES));
        let empty = std::fs::metadata(&database).unwrap().len();
        // 2 × 512 writes of 2 KiB each: about 2 MiB, some 600 pages, against the writer's 10,000.
        let writes = 2 * CHECKPOINT_EVERY_WRITES;
        for i in 0..writes {
            let session = UploadSession {
                id: format!("upload-{i}"),
                repo: "acme/app".parse().unwrap(),
                offset: 0,
                hash_state: vec![7; 2048],
                blob_state: Vec::new(),
                started_at: 0,
                verified: None,
            };
            store.create_upload(&session).await.unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let size = std::fs::metadata(&database).unwrap().len();
            if size >= empty + 2 * 1024 * 1024 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the database file stayed at {size} bytes (from {empty}) after {writes} writes: \
                 nothing copied the WAL into it"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_waiting_together_share_one_sync_and_all_are_covered() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("metadata.sqlite");
        std::fs::write(&database, b"db").unwrap();
        std::fs::write(dir.path().join("metadata.sqlite-wal"), b"wal").unwrap();
        let (due, _wanted) = tokio::sync::mpsc::channel(1);
        let wal = Arc::new(WalSync::new(&database, due));
        let mut commits = tokio::task::JoinSet::new();
        for _ in 0..64 {
            let wal = wal.clone();
            commits.spawn(async move { wal.after_commit().await });
        }
        while let Some(done) = commits.join_next().await {
            done.unwrap().unwrap();
        }
        let syncs = wal.syncs.load(Ordering::Relaxed);
        assert!(syncs >= 1);
        assert!(syncs < 64, "64 commits waiting together made {syncs} syncs");
        assert_eq!(
            wal.synced.load(Ordering::SeqCst),
            64,
            "every ticket is covered"
        );
        // Without a WAL (checkpointed away), the database file is synced instead.
        std::fs::remove_file(dir.path().join("metadata.sqlite-wal")).unwrap();
        wal.after_commit().await.unwrap();
        assert_eq!(wal.synced.load(Ordering::SeqCst), 65);
    }

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
