//! Listings: tags and repositories, paginated in byte order.

use berth_core::error::StoreError;
use berth_core::name::RepoName;

use crate::store::{SqliteMetadataStore, failed, repository_id, sql_limit};

impl SqliteMetadataStore {
    /// Up to `limit` tags of `repo` after `last`; `None` when the repository does not exist.
    /// Both reads run in one transaction, so they see the same snapshot.
    pub(crate) async fn tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        limit: usize,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let doing = || format!("listing tags of {repo}");
        let mut tx = self.reader.begin().await.map_err(failed(doing()))?;
        let Some(repository_id) = repository_id(&mut tx, repo.as_str()).await? else {
            return Ok(None);
        };
        let tags = sqlx::query_scalar(
            "SELECT name FROM tags WHERE repository_id = ?1 AND name > ?2 ORDER BY name LIMIT ?3",
        )
        .bind(repository_id)
        .bind(last.unwrap_or(""))
        .bind(sql_limit(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(failed(doing()))?;
        tx.commit().await.map_err(failed(doing()))?;
        Ok(Some(tags))
    }

    /// Up to `limit` repository names after `last`.
    pub(crate) async fn repositories(
        &self,
        last: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT name FROM repositories WHERE name > ?1 ORDER BY name LIMIT ?2")
            .bind(last.unwrap_or(""))
            .bind(sql_limit(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(failed("listing repositories"))
    }

    /// Whether `repo` exists.
    pub(crate) async fn has_repository(&self, repo: &RepoName) -> Result<bool, StoreError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM repositories WHERE name = ?1)")
            .bind(repo.as_str())
            .fetch_one(&self.reader)
            .await
            .map_err(failed(format!("looking up repository {repo}")))
    }
}
