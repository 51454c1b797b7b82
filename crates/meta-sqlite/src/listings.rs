//! Listings: tags and repositories, paginated in byte order.

use async_trait::async_trait;
use berth_core::name::RepoName;
use berth_core::ports::ListingStore;
use berth_core::ports::StoreResult;
use tracing::instrument;

use crate::store::{SqliteMetadataStore, failed, repository_id, sql_limit};

#[async_trait]
impl ListingStore for SqliteMetadataStore {
    /// Up to `limit` tags of `repo` after `last`; `None` when the repository does not exist.
    /// Both reads run in one transaction, so they see the same snapshot.
    #[instrument(level = "debug", skip(self), fields(%repo))]
    async fn list_tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        limit: usize,
    ) -> StoreResult<Option<Vec<String>>> {
        let doing = || format!("listing tags of {repo}");
        let mut conn = self.reader.conn().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn)
            .await
            .map_err(failed(doing()))?;
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
    #[instrument(level = "debug", skip(self))]
    async fn list_repositories(
        &self,
        last: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        sqlx::query_scalar("SELECT name FROM repositories WHERE name > ?1 ORDER BY name LIMIT ?2")
            .bind(last.unwrap_or(""))
            .bind(sql_limit(limit))
            .fetch_all(&mut *self.reader.conn().await?)
            .await
            .map_err(failed("listing repositories"))
    }

    /// Whether `repo` exists.
    #[instrument(level = "debug", skip(self), fields(%repo))]
    async fn repository_exists(&self, repo: &RepoName) -> StoreResult<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM repositories WHERE name = ?1)")
            .bind(repo.as_str())
            .fetch_one(&mut *self.reader.conn().await?)
            .await
            .map_err(failed(format!("looking up repository {repo}")))
    }
}
