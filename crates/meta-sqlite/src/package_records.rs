//! Packages as the Packages API lists them, their deletion, restore and purge.

use berth_core::access::store::PackageRecord;
use berth_core::error::StoreError;
use berth_core::name::RepoName;
use berth_core::ports::Millis;

use crate::access::parse_visibility;
use crate::store::{SqliteMetadataStore, failed};

const COLUMNS: &str =
    "SELECT id, name, owner_id, visibility, linked_repo_id, created_at, deleted_at FROM packages";

type Row = (i64, String, i64, String, Option<i64>, i64, Option<i64>);

fn record(
    (id, name, owner, visibility, linked_repo, created_at, deleted_at): Row,
) -> Result<PackageRecord, StoreError> {
    Ok(PackageRecord {
        id,
        name: name
            .parse()
            .map_err(|e| StoreError::new(format!("reading package {id}"), e))?,
        owner,
        visibility: parse_visibility(&visibility)?,
        linked_repo,
        created_at,
        deleted_at,
    })
}

impl SqliteMetadataStore {
    /// Package `name`.
    pub(crate) async fn package_by_name(
        &self,
        name: &RepoName,
    ) -> Result<Option<PackageRecord>, StoreError> {
        let row: Option<Row> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{COLUMNS} WHERE name = ?1")))
                .bind(name.as_str())
                .fetch_optional(&self.reader)
                .await
                .map_err(failed(format!("reading package {name}")))?;
        row.map(record).transpose()
    }

    /// Marks package `name` deleted (or restores it).
    pub(crate) async fn put_package_deleted(
        &self,
        name: &RepoName,
        at: Option<Millis>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE packages SET deleted_at = ?2 WHERE name = ?1")
            .bind(name.as_str())
            .bind(at)
            .execute(&self.writer)
            .await
            .map_err(failed(format!("deleting package {name}")))?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes the packages deleted before `before` with everything of their repositories,
    /// in one transaction. Blob bytes stay for garbage collection.
    pub(crate) async fn purge_packages(&self, before: Millis) -> Result<u64, StoreError> {
        let doing = || "purging deleted packages".to_owned();
        let mut tx = self.begin_write().await?;
        let doomed_packages =
            "SELECT id FROM packages WHERE deleted_at IS NOT NULL AND deleted_at < ?1";
        let doomed_repos = "SELECT r.id FROM repositories r JOIN packages p ON p.name = r.name \
             WHERE p.deleted_at IS NOT NULL AND p.deleted_at < ?1";
        let statements = [
            format!("DELETE FROM package_user_roles WHERE package_id IN ({doomed_packages})"),
            format!("DELETE FROM package_team_roles WHERE package_id IN ({doomed_packages})"),
            format!("DELETE FROM package_job_access WHERE package_id IN ({doomed_packages})"),
            format!("DELETE FROM tags WHERE repository_id IN ({doomed_repos})"),
            format!("DELETE FROM deleted_tags WHERE repository_id IN ({doomed_repos})"),
            format!("DELETE FROM manifest_blobs WHERE repository_id IN ({doomed_repos})"),
            format!("DELETE FROM manifest_children WHERE repository_id IN ({doomed_repos})"),
            format!("DELETE FROM package_versions WHERE repository_id IN ({doomed_repos})"),
            format!("DELETE FROM manifests WHERE repository_id IN ({doomed_repos})"),
            format!("DELETE FROM repository_blobs WHERE repository_id IN ({doomed_repos})"),
            "DELETE FROM uploads WHERE repository IN (SELECT name FROM packages \
             WHERE deleted_at IS NOT NULL AND deleted_at < ?1)"
                .to_owned(),
            format!("DELETE FROM repositories WHERE id IN ({doomed_repos})"),
        ];
        for statement in statements {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .bind(before)
                .execute(&mut *tx)
                .await
                .map_err(failed(doing()))?;
        }
        let purged =
            sqlx::query("DELETE FROM packages WHERE deleted_at IS NOT NULL AND deleted_at < ?1")
                .bind(before)
                .execute(&mut *tx)
                .await
                .map_err(failed(doing()))?
                .rows_affected();
        tx.commit().await.map_err(failed(doing()))?;
        Ok(purged)
    }
}
