//! Manifests, tags and the subject → referrer links.

use async_trait::async_trait;
use berth_core::digest::Digest;
use berth_core::ids::VersionId;
use berth_core::name::{RepoName, Tag};
use berth_core::ports::ManifestStore;
use berth_core::ports::StoreResult;
use berth_core::ports::{
    DeleteOutcome, Millis, NewManifest, PutManifestOutcome, Referrer, StoredManifest,
};
use bytes::Bytes;
use sqlx::Row as _;
use tracing::instrument;

use crate::store::{
    SqliteMetadataStore, WriteTx, ensure_repository, failed, first_missing_manifest, from_sql,
    json_list, manifest_lookup, now_millis, parse_digest, repository_id, to_sql,
};

/// A referrer row: digest, media type, size, artifact type, annotations.
type ReferrerRow = (String, String, i64, Option<String>, Option<String>);

#[async_trait]
impl ManifestStore for SqliteMetadataStore {
    /// Stores `manifest` in `repo` with its references, and points `tag` at it, in one
    /// transaction; stores nothing when a child is not a manifest of `repo`.
    #[instrument(level = "debug", skip(self, manifest), fields(%repo, digest = %manifest.digest, ?tag))]
    async fn put_manifest(
        &self,
        repo: &RepoName,
        manifest: &NewManifest,
        tag: Option<&Tag>,
    ) -> StoreResult<PutManifestOutcome> {
        let digest = manifest.digest.as_str();
        let doing = || format!("storing manifest {digest} in {repo}");
        // The lookup opens the write transaction (one command to SQLite's thread for both), so
        // nothing can be unlinked or deleted between check and write.
        let mut tx = self.begin_write_with_first().await?;
        let lookup = manifest_lookup(&mut tx, repo.as_str(), &manifest.required_blobs).await?;
        if let Some((blob, stored)) = lookup.unmet {
            tx.rollback().await.map_err(failed(doing()))?;
            return Ok(match stored {
                None => PutManifestOutcome::MissingBlob(blob.digest.clone()),
                Some(stored) => PutManifestOutcome::BlobSizeMismatch {
                    digest: blob.digest.clone(),
                    declared: blob.size,
                    stored,
                },
            });
        }
        let missing = first_missing_manifest(&mut tx, repo.as_str(), &manifest.children).await?;
        if let Some(child) = missing {
            tx.rollback().await.map_err(failed(doing()))?;
            return Ok(PutManifestOutcome::MissingChild(child.clone()));
        }
        let repository_id = ensure_repository(&mut tx, repo.as_str(), lookup.repository_id).await?;
        let now = now_millis();
        // The manifest, its references and its tag go as one batch of statements, and its
        // version with what that batch did as a second: two round trips to SQLite's thread
        // instead of up to seven. Rows say which statement they come from; parameters are
        // positional (see `quotas::LINK`).
        //
        // A deleted manifest pushed again comes back to life as a new publish (`inserted`).
        // An existing manifest's references are already recorded (the same digest is the same
        // bytes), so for it these inserts change nothing. An image has no children, an index
        // no blobs: no statement for those.
        let references = [
            (&manifest.blobs, RECORD_BLOBS),
            (&manifest.children, RECORD_CHILDREN),
        ];
        let references = references.iter().filter(|(list, _)| !list.is_empty());
        // An immutable tag is created or left alone, never moved. DO NOTHING waits for a
        // concurrent push creating the same tag and then leaves its row, which the read that
        // follows sees: whichever push came first keeps the tag. A mutable tag's WHERE makes a
        // re-tag to the same manifest a no-op: a `moved` row says it moved.
        let tagging = tag.map(|tag| {
            let sql = if manifest.tag_immutable {
                CREATE_TAG
            } else {
                MOVE_TAG
            };
            (tag, sql)
        });
        let mut sql = String::from(STORE_MANIFEST);
        for (_, statement) in references.clone() {
            sql.push_str(statement);
        }
        if let Some((_, statement)) = tagging {
            sql.push_str(statement);
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(repository_id)
            .bind(digest)
            .bind(&manifest.media_type)
            .bind(to_sql(manifest.content.len() as u64, "manifest size")?)
            .bind(manifest.content.as_ref())
            .bind(manifest.artifact_type.as_deref())
            .bind(manifest.subject.as_ref().map(Digest::as_str))
            .bind(manifest.annotations.as_deref())
            .bind(now);
        for (list, _) in references {
            query = query.bind(repository_id).bind(digest).bind(json_list(list));
        }
        if let Some((tag, _)) = tagging {
            query = query
                .bind(repository_id)
                .bind(tag.as_str())
                .bind(digest)
                .bind(now);
            if manifest.tag_immutable {
                query = query.bind(repository_id).bind(tag.as_str());
            }
        }
        let rows = query.fetch_all(&mut *tx).await.map_err(failed(doing()))?;
        let (mut inserted, mut tag_moved, mut current) = (false, false, None);
        for row in &rows {
            let what: &str = row.try_get(0).map_err(failed(doing()))?;
            match what {
                "inserted" => inserted = true,
                "moved" => tag_moved = true,
                _ => current = Some(row.try_get::<String, _>(1).map_err(failed(doing()))?),
            }
        }
        if let Some(current) = current
            && !tag_moved
            && current != digest
        {
            return Ok(PutManifestOutcome::TagImmutable(parse_digest(&current)?));
        }
        let first_publish = lookup.untagged;
        // The version's statements end with the transaction's `COMMIT`: one command to SQLite's
        // thread for both.
        let version_id = record_version(&mut tx, repository_id, manifest, now, inserted, tag_moved)
            .await
            .map_err(failed(format!("recording version {digest} of {repo}")))?;
        tx.committed().await.map_err(failed(doing()))?;
        Ok(PutManifestOutcome::Stored {
            created: inserted,
            tag_moved,
            version_id: VersionId(version_id),
            first_publish,
        })
    }

    /// The manifest `tag` points to (tags point at live manifests only): one query over repository, tag and manifest.
    #[instrument(level = "debug", skip(self), fields(%repo, %tag))]
    async fn manifest_by_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
    ) -> StoreResult<Option<StoredManifest>> {
        let row: Option<(String, String, Vec<u8>)> = sqlx::query_as(
            "SELECT m.digest, m.media_type, m.content FROM repositories r \
             JOIN tags t ON t.repository_id = r.id \
             JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest \
             WHERE r.name = ?1 AND t.name = ?2",
        )
        .bind(repo.as_str())
        .bind(tag.as_str())
        .fetch_optional(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(format!("reading manifest {repo}:{tag}")))?;
        row.map(|(digest, media_type, content)| {
            Ok(StoredManifest {
                digest: parse_digest(&digest)?,
                media_type,
                content: Bytes::from(content),
            })
        })
        .transpose()
    }

    /// Manifest `digest` of `repo`: one query.
    #[instrument(level = "debug", skip(self), fields(%repo, %digest))]
    async fn manifest_by_digest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> StoreResult<Option<StoredManifest>> {
        let row: Option<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT m.media_type, m.content FROM repositories r \
             JOIN manifests m ON m.repository_id = r.id \
             WHERE r.name = ?1 AND m.digest = ?2 AND m.deleted_at IS NULL",
        )
        .bind(repo.as_str())
        .bind(digest.as_str())
        .fetch_optional(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(format!("reading manifest {repo}@{digest}")))?;
        Ok(row.map(|(media_type, content)| StoredManifest {
            digest: digest.clone(),
            media_type,
            content: Bytes::from(content),
        }))
    }

    /// Marks manifest `digest` deleted and sets its tags aside (restorable until purged);
    /// refused while an index with a tag references it.
    #[instrument(level = "debug", skip(self), fields(%repo, %digest))]
    async fn delete_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        now: Millis,
    ) -> StoreResult<DeleteOutcome> {
        let doing = || format!("deleting manifest {repo}@{digest}");
        let mut tx = self.begin_write().await?;
        let Some(repository_id) = repository_id(&mut tx, repo.as_str()).await? else {
            return Ok(DeleteOutcome::Missing);
        };
        let parent: Option<(String, String)> = sqlx::query_as(
            "SELECT c.parent_digest, group_concat(t.name, ', ') FROM manifest_children c \
             JOIN tags t ON t.repository_id = c.repository_id AND t.digest = c.parent_digest \
             WHERE c.repository_id = ?1 AND c.child_digest = ?2 \
             GROUP BY c.parent_digest ORDER BY c.parent_digest LIMIT 1",
        )
        .bind(repository_id)
        .bind(digest.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed(doing()))?;
        let live: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM manifests WHERE repository_id = ?1 AND digest = ?2 AND deleted_at IS NULL",
        )
        .bind(repository_id)
        .bind(digest.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed(doing()))?;
        if live.is_none() {
            return Ok(DeleteOutcome::Missing);
        }
        if let Some((index, tags)) = parent {
            return Ok(DeleteOutcome::ReferencedBy {
                index: parse_digest(&index)?,
                tags: tags.split(", ").map(str::to_owned).collect(),
            });
        }
        for statement in [
            "INSERT OR IGNORE INTO deleted_tags (repository_id, name, digest) \
             SELECT repository_id, name, digest FROM tags WHERE repository_id = ?1 AND digest = ?2",
            "DELETE FROM tags WHERE repository_id = ?1 AND digest = ?2",
        ] {
            sqlx::query(statement)
                .bind(repository_id)
                .bind(digest.as_str())
                .execute(&mut *tx)
                .await
                .map_err(failed(doing()))?;
        }
        sqlx::query(
            "UPDATE manifests SET deleted_at = ?3 WHERE repository_id = ?1 AND digest = ?2",
        )
        .bind(repository_id)
        .bind(digest.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(failed(doing()))?;
        tx.commit().await.map_err(failed(doing()))?;
        Ok(DeleteOutcome::Deleted)
    }

    /// Deletes `tag` of `repo`; false when absent.
    #[instrument(level = "debug", skip(self), fields(%repo, %tag))]
    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM tags WHERE repository_id = (SELECT id FROM repositories WHERE name = ?1) AND name = ?2",
        )
        .bind(repo.as_str())
        .bind(tag.as_str())
        .execute(&mut *self.writer.conn().await?)
        .await
        .map_err(failed(format!("deleting tag {repo}:{tag}")))?;
        self.writer.durable().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Manifests of `repo` whose subject is `subject` (optionally of one artifact type), by
    /// digest.
    #[instrument(level = "debug", skip(self), fields(%repo, %subject))]
    async fn list_referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> StoreResult<Vec<Referrer>> {
        let rows: Vec<ReferrerRow> = sqlx::query_as(
            "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations \
             FROM repositories r JOIN manifests m ON m.repository_id = r.id \
             WHERE r.name = ?1 AND m.subject = ?2 AND (?3 IS NULL OR m.artifact_type = ?3) \
                 AND m.deleted_at IS NULL \
             ORDER BY m.digest",
        )
        .bind(repo.as_str())
        .bind(subject.as_str())
        .bind(artifact_type)
        .fetch_all(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(format!("listing referrers of {repo}@{subject}")))?;
        rows.into_iter()
            .map(|(digest, media_type, size, artifact_type, annotations)| {
                Ok(Referrer {
                    digest: parse_digest(&digest)?,
                    media_type,
                    size: from_sql(size, "manifest size")?,
                    artifact_type,
                    annotations,
                })
            })
            .collect()
    }
}

/// Records the package version of `manifest` (its row is touched, `updated_at`, when the
/// manifest was `inserted` or its tag moved), and returns its id. A manifest inserted anew
/// also loses the tags a deleted version of it had: pushing it again does not give them back.
/// One round trip to SQLite's thread for both statements and the `COMMIT` of `tx` that ends
/// them ([`WriteTx::closing`]); the caller waits for it with [`WriteTx::committed`].
async fn record_version(
    tx: &mut WriteTx,
    repository_id: i64,
    manifest: &NewManifest,
    now: Millis,
    inserted: bool,
    tag_moved: bool,
) -> Result<i64, sqlx::Error> {
    let platforms = (!manifest.platforms.is_empty())
        .then(|| serde_json::to_string(&manifest.platforms).expect("strings serialize"));
    let labels = (!manifest.labels.is_empty())
        .then(|| serde_json::to_string(&manifest.labels).expect("strings serialize"));
    let digest = manifest.digest.as_str();
    let mut query = sqlx::query(tx.closing(if inserted {
        RECORD_VERSION_FORGETTING_TAGS
    } else {
        RECORD_VERSION
    }))
    .bind(repository_id)
    .bind(digest)
    .bind(manifest.pushed_by.map(|id| id.0))
    .bind(i64::try_from(manifest.total_size).unwrap_or(i64::MAX))
    .bind(platforms)
    .bind(labels)
    .bind(now)
    .bind(now)
    .bind(inserted || tag_moved);
    if inserted {
        query = query.bind(repository_id).bind(digest);
    }
    let rows = query.fetch_all(&mut **tx).await?;
    let row = rows.first().ok_or(sqlx::Error::RowNotFound)?;
    row.try_get(0)
}

/// The first statement of a manifest's batch (see [`ManifestStore::put_manifest`]): the
/// manifest, inserted or brought back from deletion (then it returns an `inserted` row).
const STORE_MANIFEST: &str = "INSERT INTO manifests (repository_id, digest, media_type, size, \
         content, artifact_type, subject, annotations, created_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
     ON CONFLICT (repository_id, digest) DO UPDATE SET deleted_at = NULL \
     WHERE manifests.deleted_at IS NOT NULL \
     RETURNING 'inserted'; ";

/// The blobs a manifest references (a JSON list).
const RECORD_BLOBS: &str = "INSERT OR IGNORE INTO manifest_blobs \
         (repository_id, manifest_digest, blob_digest) \
     SELECT ?, ?, value FROM json_each(?); ";

/// The manifests an index references (a JSON list).
const RECORD_CHILDREN: &str = "INSERT OR IGNORE INTO manifest_children \
         (repository_id, parent_digest, child_digest) \
     SELECT ?, ?, value FROM json_each(?); ";

/// A mutable tag, pointed at the manifest; a `moved` row when it moved.
const MOVE_TAG: &str = "INSERT INTO tags (repository_id, name, digest, updated_at) \
     VALUES (?, ?, ?, ?) \
     ON CONFLICT (repository_id, name) \
     DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at \
     WHERE tags.digest <> excluded.digest \
     RETURNING 'moved'; ";

/// An immutable tag, created (a `moved` row) or left alone; then the manifest it names
/// (a `current` row).
const CREATE_TAG: &str = "INSERT INTO tags (repository_id, name, digest, updated_at) \
     VALUES (?, ?, ?, ?) ON CONFLICT (repository_id, name) DO NOTHING \
     RETURNING 'moved'; \
     SELECT 'current', digest FROM tags WHERE repository_id = ? AND name = ?; ";

/// A manifest's package version, returning its id; `updated_at` moves only when the last
/// parameter says so.
macro_rules! record_version_sql {
    () => {
        "INSERT INTO package_versions (repository_id, digest, pushed_by, total_size, platforms, \
             labels, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (repository_id, digest) DO UPDATE SET \
             updated_at = CASE WHEN ? THEN excluded.updated_at ELSE package_versions.updated_at END \
         RETURNING id"
    };
}

/// [`record_version_sql`] alone.
const RECORD_VERSION: &str = record_version_sql!();

/// [`record_version_sql`], then the tags a deleted version of the manifest had are forgotten.
const RECORD_VERSION_FORGETTING_TAGS: &str = concat!(
    record_version_sql!(),
    "; DELETE FROM deleted_tags WHERE repository_id = ? AND digest = ?"
);
