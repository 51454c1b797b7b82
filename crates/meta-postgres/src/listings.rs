//! Listings: tags and repositories, paginated in byte order (the columns are `COLLATE "C"`).

use async_trait::async_trait;
use berth_core::name::RepoName;
use berth_core::ports::ListingStore;
use berth_core::ports::StoreResult;
use tracing::instrument;

use crate::store::{PgMetadataStore, failed, sql_limit};

#[async_trait]
impl ListingStore for PgMetadataStore {
    /// Up to `limit` tags of `repo` after `last`; `None` when the repository does not exist.
    /// One statement, so the repository's existence and its tags come from one snapshot.
    #[instrument(level = "debug", skip(self), fields(%repo))]
    async fn list_tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        limit: usize,
    ) -> StoreResult<Option<Vec<String>>> {
        let tags: Option<Vec<String>> = sqlx::query_scalar(
            "SELECT ARRAY(SELECT t.name FROM tags t \
                 WHERE t.repository_id = r.id AND t.name > $2 ORDER BY t.name LIMIT $3) \
             FROM repositories r WHERE r.name = $1",
        )
        .bind(repo.as_str())
        .bind(last.unwrap_or(""))
        .bind(sql_limit(limit))
        .fetch_optional(&self.pool)
        .await
        .map_err(failed(format!("listing tags of {repo}")))?;
        Ok(tags)
    }

    /// Up to `limit` repository names after `last`.
    #[instrument(level = "debug", skip(self))]
    async fn list_repositories(
        &self,
        last: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        sqlx::query_scalar("SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2")
            .bind(last.unwrap_or(""))
            .bind(sql_limit(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(failed("listing repositories"))
    }

    /// Whether `repo` exists.
    #[instrument(level = "debug", skip(self), fields(%repo))]
    async fn repository_exists(&self, repo: &RepoName) -> StoreResult<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM repositories WHERE name = $1)")
            .bind(repo.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(failed(format!("looking up repository {repo}")))
    }
}
