//! Package versions: listing, restoring deleted manifests, download counts, purging.

use async_trait::async_trait;
use berth_core::access::AccountId;
use berth_core::digest::Digest;
use berth_core::error::StoreError;
use berth_core::ids::VersionId;
use berth_core::name::RepoName;
use berth_core::ports::StoreResult;
use berth_core::ports::VersionStore;
use berth_core::ports::{Millis, RestoreOutcome, VersionRecord, VersionState};
use tracing::instrument;

use sqlx::AssertSqlSafe;

use crate::store::{SqliteMetadataStore, failed, from_sql, parse_digest, repository_id, sql_limit};

/// The columns of a version, in the order [`record`] reads them. Tags come from `tags` for a
/// live version and from `deleted_tags` for a deleted one.
const VERSION_COLUMNS: &str = "v.id, v.digest, m.media_type, \
     CASE WHEN m.deleted_at IS NULL \
         THEN (SELECT json_group_array(name) FROM (SELECT name FROM tags t \
               WHERE t.repository_id = v.repository_id AND t.digest = v.digest ORDER BY name)) \
         ELSE (SELECT json_group_array(name) FROM (SELECT name FROM deleted_tags d \
               WHERE d.repository_id = v.repository_id AND d.digest = v.digest ORDER BY name)) \
     END, \
     v.created_at, v.updated_at, m.deleted_at, v.pushed_by, \
     (SELECT login FROM accounts a WHERE a.id = v.pushed_by), v.total_size, v.platforms, \
     v.labels, v.downloads";

type VersionRow = (
    i64,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    i64,
    Option<String>,
    Option<String>,
    i64,
);

fn json<T: serde::de::DeserializeOwned>(id: i64, what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::new(format!("reading the {what} of version {id}"), e))
}

fn record(row: VersionRow) -> Result<VersionRecord, StoreError> {
    let (id, digest, media_type, tags, created_at, updated_at, deleted_at, pushed_by, login, ..) =
        row;
    let (size, platforms, labels, downloads) = (row.9, row.10, row.11, row.12);
    Ok(VersionRecord {
        id: VersionId(id),
        digest: parse_digest(&digest)?,
        media_type,
        tags: json(id, "tags", &tags)?,
        created_at,
        updated_at,
        deleted_at,
        pushed_by: pushed_by.map(AccountId).zip(login),
        total_size: from_sql(size, "version size")?,
        platforms: platforms
            .map(|p| json(id, "platforms", &p))
            .transpose()?
            .unwrap_or_default(),
        labels: labels
            .map(|l| json(id, "labels", &l))
            .transpose()?
            .unwrap_or_default(),
        downloads: from_sql(downloads, "download count")?,
    })
}

#[async_trait]
impl VersionStore for SqliteMetadataStore {
    /// Versions of `repo` in `state`, newest first, and how many there are.
    #[instrument(level = "debug", skip(self), fields(%repo))]
    async fn list_versions(
        &self,
        repo: &RepoName,
        state: VersionState,
        tagged: Option<bool>,
        deleted_after: Millis,
        offset: u64,
        limit: usize,
    ) -> StoreResult<(u64, Vec<VersionRecord>)> {
        let deleted = state == VersionState::Deleted;
        let doing = || format!("listing the versions of {repo}");
        let total: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM repositories r JOIN manifests m ON m.repository_id = r.id \
             WHERE r.name = ?1 AND (m.deleted_at IS NOT NULL) = ?2 \
                 AND (m.deleted_at IS NULL OR m.deleted_at > ?3) \
                 AND (?4 IS NULL OR (CASE WHEN m.deleted_at IS NULL \
                     THEN EXISTS (SELECT 1 FROM tags t \
                         WHERE t.repository_id = m.repository_id AND t.digest = m.digest) \
                     ELSE EXISTS (SELECT 1 FROM deleted_tags d \
                         WHERE d.repository_id = m.repository_id AND d.digest = m.digest) \
                     END) = ?4)",
        )
        .bind(repo.as_str())
        .bind(deleted)
        .bind(deleted_after)
        .bind(tagged)
        .fetch_one(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(doing()))?;
        let rows: Vec<VersionRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {VERSION_COLUMNS} FROM repositories r \
             JOIN package_versions v ON v.repository_id = r.id \
             JOIN manifests m ON m.repository_id = v.repository_id AND m.digest = v.digest \
             WHERE r.name = ?1 AND (m.deleted_at IS NOT NULL) = ?2 \
                 AND (m.deleted_at IS NULL OR m.deleted_at > ?5) \
                 AND (?6 IS NULL OR (CASE WHEN m.deleted_at IS NULL \
                     THEN EXISTS (SELECT 1 FROM tags t \
                         WHERE t.repository_id = m.repository_id AND t.digest = m.digest) \
                     ELSE EXISTS (SELECT 1 FROM deleted_tags d \
                         WHERE d.repository_id = m.repository_id AND d.digest = m.digest) \
                     END) = ?6) \
             ORDER BY v.created_at DESC, v.id DESC LIMIT ?3 OFFSET ?4"
        )))
        .bind(repo.as_str())
        .bind(deleted)
        .bind(sql_limit(limit))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .bind(deleted_after)
        .bind(tagged)
        .fetch_all(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(doing()))?;
        let versions = rows.into_iter().map(record).collect::<Result<_, _>>()?;
        Ok((from_sql(total, "version count")?, versions))
    }

    /// Version `id` of `repo`.
    #[instrument(level = "debug", skip(self), fields(%repo))]
    async fn version(&self, repo: &RepoName, id: VersionId) -> StoreResult<Option<VersionRecord>> {
        let row: Option<VersionRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {VERSION_COLUMNS} FROM repositories r \
             JOIN package_versions v ON v.repository_id = r.id \
             JOIN manifests m ON m.repository_id = v.repository_id AND m.digest = v.digest \
             WHERE r.name = ?1 AND v.id = ?2"
        )))
        .bind(repo.as_str())
        .bind(id.0)
        .fetch_optional(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(format!("reading version {id} of {repo}")))?;
        row.map(record).transpose()
    }

    /// Restores deleted manifest `digest`, the deleted children it references, and the tags
    /// they had that are still free.
    #[instrument(level = "debug", skip(self), fields(%repo, %digest))]
    async fn restore_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> StoreResult<RestoreOutcome> {
        let doing = || format!("restoring manifest {repo}@{digest}");
        let mut tx = self.begin_write().await?;
        let Some(repository_id) = repository_id(&mut tx, repo.as_str()).await? else {
            return Ok(RestoreOutcome::Missing);
        };
        let deleted: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT deleted_at FROM manifests WHERE repository_id = ?1 AND digest = ?2",
        )
        .bind(repository_id)
        .bind(digest.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed(doing()))?;
        match deleted {
            None => return Ok(RestoreOutcome::Missing),
            Some(None) => return Ok(RestoreOutcome::NotDeleted),
            Some(Some(_)) => {}
        }
        // The manifest and the deleted children of an index: restoring an index without its
        // platforms would give back an image that cannot be pulled.
        let revived = "SELECT ?2 UNION SELECT c.child_digest FROM manifest_children c \
             JOIN manifests m ON m.repository_id = c.repository_id AND m.digest = c.child_digest \
             WHERE c.repository_id = ?1 AND c.parent_digest = ?2 AND m.deleted_at IS NOT NULL";
        let taken: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT d.name FROM deleted_tags d JOIN tags t \
                 ON t.repository_id = d.repository_id AND t.name = d.name \
             WHERE d.repository_id = ?1 AND d.digest IN ({revived}) ORDER BY d.name"
        )))
        .bind(repository_id)
        .bind(digest.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(failed(doing()))?;
        let tags: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM deleted_tags WHERE repository_id = ?1 AND digest = ?2 \
             AND name NOT IN (SELECT name FROM tags WHERE repository_id = ?1) ORDER BY name",
        )
        .bind(repository_id)
        .bind(digest.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(failed(doing()))?;
        for statement in [
            format!(
                "INSERT OR IGNORE INTO tags (repository_id, name, digest, updated_at) \
                 SELECT repository_id, name, digest, ?3 FROM deleted_tags \
                 WHERE repository_id = ?1 AND digest IN ({revived})"
            ),
            format!("DELETE FROM deleted_tags WHERE repository_id = ?1 AND digest IN ({revived})"),
            format!(
                "UPDATE manifests SET deleted_at = NULL \
                 WHERE repository_id = ?1 AND digest IN ({revived})"
            ),
        ] {
            sqlx::query(AssertSqlSafe(statement))
                .bind(repository_id)
                .bind(digest.as_str())
                .bind(berth_core::ports::now_millis())
                .execute(&mut *tx)
                .await
                .map_err(failed(doing()))?;
        }
        tx.commit().await.map_err(failed(doing()))?;
        Ok(RestoreOutcome::Restored { tags, taken })
    }

    /// The live versions' downloads added up.
    #[instrument(level = "debug", skip(self), fields(%repo))]
    async fn downloads(&self, repo: &RepoName) -> StoreResult<u64> {
        let total: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(v.downloads), 0) FROM repositories r \
             JOIN package_versions v ON v.repository_id = r.id \
             JOIN manifests m ON m.repository_id = v.repository_id AND m.digest = v.digest \
             WHERE r.name = ?1 AND m.deleted_at IS NULL",
        )
        .bind(repo.as_str())
        .fetch_one(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(format!("adding up the downloads of {repo}")))?;
        Ok(u64::try_from(total).unwrap_or_default())
    }

    /// Adds download counts.
    #[instrument(level = "debug", skip_all, fields(n = counts.len()))]
    async fn add_downloads(
        &self,
        counts: &[(RepoName, Digest, u64)],
        at: Millis,
    ) -> StoreResult<()> {
        let doing = || "recording downloads".to_owned();
        let mut tx = self.begin_write().await?;
        for (repo, digest, count) in counts {
            sqlx::query(
                "UPDATE package_versions SET downloads = downloads + ?3, \
                     last_pulled_at = max(coalesce(last_pulled_at, ?4), ?4) \
                 WHERE repository_id = (SELECT id FROM repositories WHERE name = ?1) \
                 AND digest = ?2",
            )
            .bind(repo.as_str())
            .bind(digest.as_str())
            .bind(i64::try_from(*count).unwrap_or(i64::MAX))
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(failed(doing()))?;
        }
        tx.commit().await.map_err(failed(doing()))
    }

    /// Removes for good the manifests deleted before `before`.
    #[instrument(level = "debug", skip(self))]
    async fn purge_deleted_manifests(&self, before: Millis) -> StoreResult<u64> {
        /// Referrers of referrers followed at most (a signature of an SBOM of an image: 2).
        const REFERRER_DEPTH: usize = 8;
        let doing = || "purging deleted manifests".to_owned();
        let mut tx = self.begin_write().await?;
        // Referrers (signatures, SBOMs, attestations) go with their subject, and theirs
        // with them.
        for _ in 0..REFERRER_DEPTH {
            let more = sqlx::query(
                "UPDATE manifests SET deleted_at = ?1 - 1 \
                 WHERE (deleted_at IS NULL OR deleted_at >= ?1) AND subject IS NOT NULL \
                   AND (repository_id, subject) IN (SELECT repository_id, digest FROM manifests \
                       WHERE deleted_at IS NOT NULL AND deleted_at < ?1)",
            )
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(failed(doing()))?
            .rows_affected();
            if more == 0 {
                break;
            }
        }
        let doomed = "SELECT repository_id, digest FROM manifests \
             WHERE deleted_at IS NOT NULL AND deleted_at < ?1";
        for (table, digest) in [
            ("tags", "digest"),
            ("deleted_tags", "digest"),
            ("manifest_blobs", "manifest_digest"),
            ("manifest_children", "parent_digest"),
            ("package_versions", "digest"),
        ] {
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE (repository_id, {digest}) IN ({doomed})"
            )))
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(failed(doing()))?;
        }
        let purged =
            sqlx::query("DELETE FROM manifests WHERE deleted_at IS NOT NULL AND deleted_at < ?1")
                .bind(before)
                .execute(&mut *tx)
                .await
                .map_err(failed(doing()))?
                .rows_affected();
        tx.commit().await.map_err(failed(doing()))?;
        Ok(purged)
    }
}
