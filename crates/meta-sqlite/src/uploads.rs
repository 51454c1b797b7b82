//! Upload sessions and their leases.
//!
//! A lease is a token and an expiry in the upload's row. It is taken by one conditional
//! `UPDATE`, so two requests can never both hold it, and every later write of the session
//! names the token, so a request whose lease expired and was taken over cannot overwrite the
//! new holder's progress.

use async_trait::async_trait;
use berth_core::digest::Digest;
use berth_core::error::StoreError;
use berth_core::name::RepoName;
use berth_core::ports::StoreResult;
use berth_core::ports::UploadStore;
use berth_core::ports::{
    CountedLease, Lease, Linked, Millis, OwnerUploads, Started, UploadSession,
};
use tracing::instrument;

use crate::blobs::finish;
use crate::quotas::{link_counted, usage, usage_columns};
use crate::store::{SqliteMetadataStore, failed, from_sql, to_sql};

/// An upload row as read back: offset, hash state, start time, verified digest and size.
type SessionRow = (i64, Vec<u8>, Vec<u8>, i64, Option<String>, Option<i64>);

/// The columns of a [`SessionRow`], as a literal for `concat!`.
macro_rules! session_columns {
    () => {
        "byte_offset, hash_state, blob_state, started_at, verified_digest, verified_size"
    };
}

fn session(
    id: &str,
    repo: &RepoName,
    (offset, hash_state, blob_state, started_at, verified_digest, verified_size): SessionRow,
) -> Result<UploadSession, StoreError> {
    let verified = match (verified_digest, verified_size) {
        (Some(digest), Some(size)) => Some((
            digest
                .parse::<Digest>()
                .map_err(|e| StoreError::new(format!("reading upload {id}"), e))?,
            from_sql(size, "verified upload size")?,
        )),
        _ => None,
    };
    Ok(UploadSession {
        id: id.to_owned(),
        repo: repo.clone(),
        offset: from_sql(offset, "upload offset")?,
        hash_state,
        blob_state,
        started_at,
        verified,
    })
}

/// A listed session: id, repository, then a [`SessionRow`]'s columns.
type ListedRow = (
    String,
    String,
    i64,
    Vec<u8>,
    Vec<u8>,
    i64,
    Option<String>,
    Option<i64>,
);

/// Sessions as `(id, repository, row)` rows into [`UploadSession`]s.
fn sessions(rows: Vec<ListedRow>, doing: &str) -> Result<Vec<UploadSession>, StoreError> {
    rows.into_iter()
        .map(
            |(id, repo, offset, hash_state, blob_state, started_at, digest, size)| {
                let repo: RepoName = repo.parse().map_err(|e| StoreError::new(doing, e))?;
                session(
                    &id,
                    &repo,
                    (offset, hash_state, blob_state, started_at, digest, size),
                )
            },
        )
        .collect()
}

/// Open sessions and their bytes for `owner` (`owner/` up to, not including, `owner0`), with
/// the account's usage and quota.
macro_rules! owner_uploads {
    ($owner:literal) => {
        concat!(
            "SELECT COUNT(*), COALESCE(SUM(byte_offset), 0), ",
            usage_columns!($owner),
            " FROM uploads WHERE repository >= ",
            $owner,
            " || '/' AND repository < ",
            $owner,
            " || '0'"
        )
    };
}
const OWNER_UPLOADS: &str = owner_uploads!("?1");

/// [`UploadStore::create_upload_within`]'s insert: session `?1`…`?6` (see [`bind_session`])
/// when the owner `?7` has fewer than `?8` uploads open and its quota, if any, has room left
/// past its usage and their bytes, as `OwnerUploads::admits_new_upload` decides. One statement
/// on the one writer, so no upload starts between the count and the insert.
const CREATE_WITHIN: &str = concat!(
    "WITH mine (open, held, used, quota) AS (",
    owner_uploads!("?7"),
    ") INSERT INTO uploads (id, repository, byte_offset, hash_state, blob_state, started_at) \
     SELECT ?1, ?2, ?3, ?4, ?5, ?6 FROM mine \
     WHERE open < ?8 AND (quota IS NULL OR quota > COALESCE(used, 0) + held)"
);

/// `query` with a new session's columns bound as its parameters 1 to 6: id, repository,
/// offset, hash state, blob state, start.
fn bind_session<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    s: &'q UploadSession,
) -> StoreResult<sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>> {
    Ok(query
        .bind(&s.id)
        .bind(s.repo.as_str())
        .bind(to_sql(s.offset, "upload offset")?)
        .bind(&s.hash_state)
        .bind(&s.blob_state)
        .bind(s.started_at))
}

/// The lease's `UPDATE`: session `?1` of repository `?2` to token `?3` until `?4`, when its
/// lease is free at `?5`, returning a [`SessionRow`].
macro_rules! lease_update {
    () => {
        concat!(
            "UPDATE uploads SET lease_token = ?3, lease_until = ?4 \
             WHERE id = ?1 AND repository = ?2 AND (lease_token IS NULL OR lease_until < ?5) \
             RETURNING ",
            session_columns!()
        )
    };
}

/// [`lease_update!`] returning, beside the session, what
/// [`OWNER_UPLOADS`] reads for the repository's owner (`?6`): one statement, so one round trip
/// to SQLite's thread for each chunk of an upload instead of two.
const LEASE_COUNTING: &str = concat!(
    lease_update!(),
    ", (SELECT COUNT(*) FROM uploads WHERE repository >= ?6 || '/' AND repository < ?6 || '0')\
     , (SELECT COALESCE(SUM(byte_offset), 0) FROM uploads \
        WHERE repository >= ?6 || '/' AND repository < ?6 || '0'), ",
    usage_columns!("?6")
);

/// A [`SessionRow`] followed by the owner's open uploads, their bytes, its usage and quota.
type CountedRow = (
    i64,
    Vec<u8>,
    Vec<u8>,
    i64,
    Option<String>,
    Option<i64>,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
);

impl SqliteMetadataStore {
    /// Whether upload `id` of `repo`, which was not leased, is there (another request holds
    /// its lease) or not.
    async fn upload_exists(&self, repo: &RepoName, id: &str) -> StoreResult<bool> {
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM uploads WHERE id = ?1 AND repository = ?2)",
        )
        .bind(id)
        .bind(repo.as_str())
        .fetch_one(&mut *self.writer.conn().await?)
        .await
        .map_err(failed(format!("looking up upload {id} of {repo}")))?;
        self.writer.durable().await?;
        Ok(exists)
    }
}

#[async_trait]
impl UploadStore for SqliteMetadataStore {
    /// Persists a new session, unleased, without waiting for the disk (see
    /// [`crate::store::Writer::unsynced`]).
    #[instrument(level = "debug", skip_all, fields(repo = %session.repo, id = %session.id))]
    async fn create_upload(&self, session: &UploadSession) -> StoreResult<()> {
        let s = session;
        let insert = sqlx::query(
            "INSERT INTO uploads (id, repository, byte_offset, hash_state, blob_state, started_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        );
        bind_session(insert, s)?
            .execute(&mut *self.writer.unsynced().await?)
            .await
            .map_err(failed(format!("creating upload {} in {}", s.id, s.repo)))?;
        Ok(())
    }

    /// Persists a new session within its owner's limits in one statement ([`CREATE_WITHIN`]),
    /// without waiting for the disk (as [`UploadStore::create_upload`]); refused, reads what
    /// the owner holds.
    #[instrument(level = "debug", skip_all, fields(repo = %session.repo, id = %session.id))]
    async fn create_upload_within(
        &self,
        session: &UploadSession,
        max_open: u64,
    ) -> StoreResult<Started> {
        let s = session;
        let owner = s.repo.owner();
        let done = bind_session(sqlx::query(CREATE_WITHIN), s)?
            .bind(owner)
            // Past SQLite's integers, no count reaches it anyway.
            .bind(i64::try_from(max_open).unwrap_or(i64::MAX))
            .execute(&mut *self.writer.unsynced().await?)
            .await
            .map_err(failed(format!("creating upload {} in {}", s.id, s.repo)))?;
        if done.rows_affected() == 1 {
            Ok(Started::Created)
        } else {
            Ok(Started::Refused(self.owner_uploads(owner).await?))
        }
    }

    /// Reads session `id` of `repo`, leased or not.
    #[instrument(level = "debug", skip(self), fields(%repo))]
    async fn get_upload(&self, repo: &RepoName, id: &str) -> StoreResult<Option<UploadSession>> {
        let row: Option<SessionRow> = sqlx::query_as(concat!(
            "SELECT ",
            session_columns!(),
            " FROM uploads WHERE id = ?1 AND repository = ?2"
        ))
        .bind(id)
        .bind(repo.as_str())
        .fetch_optional(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(format!("reading upload {id} of {repo}")))?;
        row.map(|row| session(id, repo, row)).transpose()
    }

    /// Takes the lease of session `id` when free or expired; otherwise tells busy from missing.
    #[instrument(level = "debug", skip(self, token), fields(%repo))]
    async fn lease_upload(
        &self,
        repo: &RepoName,
        id: &str,
        token: &str,
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<Lease> {
        let row: Result<Option<SessionRow>, sqlx::Error> = sqlx::query_as(lease_update!())
            .bind(id)
            .bind(repo.as_str())
            .bind(token)
            .bind(lease_until)
            .bind(now)
            .fetch_optional(&mut *self.writer.unsynced().await?)
            .await;
        let row = row.map_err(failed(format!("leasing upload {id} of {repo}")))?;
        if let Some(row) = row {
            return Ok(Lease::Granted(session(id, repo, row)?));
        }
        let exists = self.upload_exists(repo, id).await?;
        Ok(if exists { Lease::Busy } else { Lease::Missing })
    }

    /// The lease and the owner's open uploads in one statement ([`LEASE_COUNTING`]).
    #[instrument(level = "debug", skip(self, token), fields(%repo))]
    async fn lease_upload_counting(
        &self,
        repo: &RepoName,
        id: &str,
        token: &str,
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<CountedLease> {
        let row: Result<Option<CountedRow>, sqlx::Error> = sqlx::query_as(LEASE_COUNTING)
            .bind(id)
            .bind(repo.as_str())
            .bind(token)
            .bind(lease_until)
            .bind(now)
            .bind(repo.owner())
            .fetch_optional(&mut *self.writer.unsynced().await?)
            .await;
        let row = row.map_err(failed(format!("leasing upload {id} of {repo}")))?;
        let Some((
            offset,
            hash_state,
            blob_state,
            started_at,
            digest,
            size,
            open,
            held,
            used,
            limit,
        )) = row
        else {
            let exists = self.upload_exists(repo, id).await?;
            return Ok(if exists {
                CountedLease::Busy
            } else {
                CountedLease::Missing
            });
        };
        let session = session(
            id,
            repo,
            (offset, hash_state, blob_state, started_at, digest, size),
        )?;
        let uploads = OwnerUploads {
            open: from_sql(open, "upload count")?,
            held: from_sql(held, "upload bytes")?,
            usage: usage((used, limit))?,
        };
        Ok(CountedLease::Granted(session, uploads))
    }

    /// Moves the expiry of a lease held under `token`.
    #[instrument(level = "debug", skip(self, token))]
    async fn renew_upload_lease(
        &self,
        id: &str,
        token: &str,
        lease_until: Millis,
    ) -> StoreResult<()> {
        let done =
            sqlx::query("UPDATE uploads SET lease_until = ?3 WHERE id = ?1 AND lease_token = ?2")
                .bind(id)
                .bind(token)
                .bind(lease_until)
                .execute(&mut *self.writer.unsynced().await?)
                .await;
        let done = done.map_err(failed(format!("renewing the lease of upload {id}")))?;
        lease_held(done.rows_affected(), id)
    }

    /// Records progress under `token` and releases the lease.
    #[instrument(level = "debug", skip(self, token, hash_state, blob_state))]
    async fn advance_upload(
        &self,
        id: &str,
        token: &str,
        offset: u64,
        hash_state: &[u8],
        blob_state: &[u8],
    ) -> StoreResult<()> {
        let offset = to_sql(offset, "upload offset")?;
        let done = sqlx::query(
            "UPDATE uploads SET byte_offset = ?3, hash_state = ?4, blob_state = ?5, lease_token = NULL, lease_until = NULL \
             WHERE id = ?1 AND lease_token = ?2",
        )
        .bind(id)
        .bind(token)
        .bind(offset)
        .bind(hash_state)
        .bind(blob_state)
        .execute(&mut *self.writer.unsynced().await?)
        .await;
        let done = done.map_err(failed(format!("recording progress of upload {id}")))?;
        lease_held(done.rows_affected(), id)
    }

    /// Releases the lease if still held under `token`; a lease already lost is left alone.
    #[instrument(level = "debug", skip(self, token))]
    async fn release_upload(&self, id: &str, token: &str) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE uploads SET lease_token = NULL, lease_until = NULL WHERE id = ?1 AND lease_token = ?2",
        )
        .bind(id)
        .bind(token)
        .execute(&mut *self.writer.unsynced().await?)
        .await;
        done.map_err(failed(format!("releasing the lease of upload {id}")))?;
        Ok(())
    }

    /// Sessions whose lease is free at `now`, started before `started_before` or, without a
    /// byte received, before `empty_started_before`; oldest first.
    #[instrument(level = "debug", skip(self))]
    async fn stale_uploads(
        &self,
        started_before: Millis,
        empty_started_before: Millis,
        now: Millis,
        limit: usize,
    ) -> StoreResult<Vec<UploadSession>> {
        let rows = sqlx::query_as(concat!(
            "SELECT id, repository, ",
            session_columns!(),
            " FROM uploads \
             WHERE (started_at < ?1 OR (byte_offset = 0 AND verified_digest IS NULL AND started_at < ?4)) \
             AND (lease_token IS NULL OR lease_until < ?2) \
             ORDER BY started_at LIMIT ?3"
        ))
        .bind(started_before)
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(empty_started_before)
        .fetch_all(&mut *self.reader.conn().await?)
        .await
        .map_err(failed("listing stale uploads"))?;
        sessions(rows, "reading a stale upload")
    }

    /// Sessions whose lease is free at `now` that were marked verified or received bytes.
    #[instrument(level = "debug", skip(self))]
    async fn uploads_to_check(&self, now: Millis, limit: usize) -> StoreResult<Vec<UploadSession>> {
        let rows = sqlx::query_as(concat!(
            "SELECT id, repository, ",
            session_columns!(),
            " FROM uploads \
             WHERE (byte_offset > 0 OR verified_digest IS NOT NULL) \
             AND (lease_token IS NULL OR lease_until < ?1) LIMIT ?2"
        ))
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *self.reader.conn().await?)
        .await
        .map_err(failed("listing uploads to check"))?;
        sessions(rows, "reading an upload to check")
    }

    /// Records the verified digest and size of session `id` under the lease `token`. Like
    /// the other upload bookkeeping it waits for no fsync: it survives a crash of the process,
    /// and should the machine lose it, the session is settled as one whose bytes are gone.
    #[instrument(level = "debug", skip(self, token, blob_state), fields(%digest))]
    async fn mark_upload_verified(
        &self,
        id: &str,
        token: &str,
        digest: &Digest,
        size: u64,
        blob_state: &[u8],
    ) -> StoreResult<()> {
        let size = to_sql(size, "upload size")?;
        let done = sqlx::query(
            "UPDATE uploads SET verified_digest = ?3, verified_size = ?4, blob_state = ?5 \
             WHERE id = ?1 AND lease_token = ?2",
        )
        .bind(id)
        .bind(token)
        .bind(digest.to_string())
        .bind(size)
        .bind(blob_state)
        .execute(&mut *self.writer.unsynced().await?)
        .await;
        let done = done.map_err(failed(format!("marking upload {id} verified")))?;
        lease_held(done.rows_affected(), id)
    }

    /// How many sessions the repositories of `owner` have open, the bytes they hold, and the
    /// account's storage usage: one statement.
    #[instrument(level = "debug", skip(self))]
    async fn owner_uploads(&self, owner: &str) -> StoreResult<OwnerUploads> {
        // `owner/` up to (not including) `owner0`: '0' follows '/' in every collation here.
        let (open, held, used, limit): (i64, i64, Option<i64>, Option<i64>) =
            sqlx::query_as(OWNER_UPLOADS)
                .bind(owner)
                .fetch_one(&mut *self.reader.conn().await?)
                .await
                .map_err(failed(format!("counting the open uploads of {owner}")))?;
        Ok(OwnerUploads {
            open: from_sql(open, "upload count")?,
            held: from_sql(held, "upload bytes")?,
            usage: usage((used, limit))?,
        })
    }

    /// Deletes session `id`; false when it did not exist.
    #[instrument(level = "debug", skip(self))]
    async fn delete_upload(&self, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM uploads WHERE id = ?1")
            .bind(id)
            .execute(&mut *self.writer.conn().await?)
            .await
            .map_err(failed(format!("deleting upload {id}")))?;
        self.writer.durable().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes session `id` (when given) and links the finished blob, in one transaction,
    /// unless the link goes over the account's quota (then nothing changes).
    #[instrument(level = "debug", skip(self), fields(%repo, %digest))]
    async fn complete_upload(
        &self,
        id: Option<&str>,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
    ) -> StoreResult<Linked> {
        let mut tx = self.begin_write_with_first().await?;
        let linked = link_counted(&mut tx, repo.as_str(), digest, size, id).await?;
        finish(tx, linked, || {
            format!("completing upload of {digest} to {repo}")
        })
        .await
    }
}

/// Ok when a statement guarded by a lease token changed the row; a lost lease otherwise.
fn lease_held(rows_affected: u64, id: &str) -> Result<(), StoreError> {
    if rows_affected > 0 {
        Ok(())
    } else {
        Err(StoreError::lease_lost(format!("upload `{id}`")))
    }
}
