//! Apps and their installations. An app's secret (stored as its SHA-256) is exchanged for
//! installation tokens, which are ordinary credentials of kind `app`.

use async_trait::async_trait;
use berth_core::access::store::AppStore;
use berth_core::access::store::{App, AppId, AppInstallation, Created, InstallationId};
use berth_core::access::{AccountId, RepoId, Role};
use berth_core::ports::Millis;
use berth_core::ports::StoreResult;
use tracing::instrument;

use crate::access::{created, insert_list, parse_role, permission_text, same_hash};
use crate::store::{SqliteMetadataStore, failed};

#[async_trait]
impl AppStore for SqliteMetadataStore {
    /// Inserts app `slug`; [`Created::Taken`] when the slug is taken (case-insensitively).
    #[instrument(level = "debug", skip(self, secret_hash))]
    async fn create_app(
        &self,
        owner: AccountId,
        slug: &str,
        secret_hash: &[u8],
        now: Millis,
    ) -> StoreResult<Created<AppId>> {
        let inserted = sqlx::query_scalar(
            "INSERT INTO apps (owner_id, slug, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4) \
             RETURNING id",
        )
        .bind(owner.0)
        .bind(slug)
        .bind(secret_hash)
        .bind(now)
        .fetch_one(&mut *self.writer.conn().await?)
        .await;
        self.writer.durable().await?;
        created(inserted, || format!("creating app {slug}"))
    }

    /// App `slug`, compared case-insensitively.
    #[instrument(level = "debug", skip(self))]
    async fn app(&self, slug: &str) -> StoreResult<Option<App>> {
        let row: Option<(i64, String, i64)> =
            sqlx::query_as("SELECT id, slug, owner_id FROM apps WHERE slug = ?1")
                .bind(slug)
                .fetch_optional(&mut *self.reader.conn().await?)
                .await
                .map_err(failed(format!("looking up app {slug}")))?;
        Ok(row.map(|(id, slug, owner)| App {
            id: AppId(id),
            slug,
            owner: AccountId(owner),
        }))
    }

    /// Installs `app` on `account`, or replaces the settings of its installation there (which
    /// keeps its id), in one transaction.
    #[instrument(level = "debug", skip(self))]
    async fn install_app(
        &self,
        app: AppId,
        account: AccountId,
        repositories: Option<&[RepoId]>,
        permission: Role,
        now: Millis,
    ) -> StoreResult<InstallationId> {
        let permission = permission_text(permission)?;
        let doing = || format!("installing app {app} on account {account}");
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO app_installations (app_id, account_id, all_repositories, permission, \
                 created_at) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (app_id, account_id) DO UPDATE SET \
                 all_repositories = excluded.all_repositories, permission = excluded.permission \
             RETURNING id",
        )
        .bind(app.0)
        .bind(account.0)
        .bind(repositories.is_none())
        .bind(permission)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(failed(doing()))?;
        sqlx::query("DELETE FROM app_installation_repos WHERE installation_id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(failed(doing()))?;
        insert_list(
            &mut tx,
            "INSERT OR IGNORE INTO app_installation_repos (installation_id, repo_id) \
             VALUES (?1, ?2)",
            id,
            repositories
                .unwrap_or_default()
                .iter()
                .map(|repo| repo.0)
                .collect::<Vec<_>>(),
            &doing(),
        )
        .await?;
        tx.commit().await.map_err(failed(doing()))?;
        Ok(InstallationId(id))
    }

    /// Installation `id` when `secret_hash` equals its app's (compared in constant time).
    #[instrument(level = "debug", skip(self, secret_hash))]
    async fn installation_for_secret(
        &self,
        id: InstallationId,
        secret_hash: &[u8],
    ) -> StoreResult<Option<AppInstallation>> {
        let doing = || format!("reading app installation {id}");
        let mut conn = self.reader.conn().await?;
        let row: Option<(i64, String, Vec<u8>, i64, bool, String)> = sqlx::query_as(
            "SELECT a.id, a.slug, a.secret_hash, i.account_id, i.all_repositories, i.permission \
             FROM app_installations i JOIN apps a ON a.id = i.app_id WHERE i.id = ?1",
        )
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(failed(doing()))?;
        let Some((app, app_slug, stored, account, all_repositories, permission)) = row else {
            return Ok(None);
        };
        if !same_hash(&stored, secret_hash) {
            return Ok(None);
        }
        let repositories = if all_repositories {
            None
        } else {
            let repos: Vec<i64> = sqlx::query_scalar(
                "SELECT repo_id FROM app_installation_repos WHERE installation_id = ?1 \
                 ORDER BY repo_id",
            )
            .bind(id.0)
            .fetch_all(&mut *conn)
            .await
            .map_err(failed(doing()))?;
            Some(repos.into_iter().map(RepoId).collect())
        };
        Ok(Some(AppInstallation {
            id,
            app: AppId(app),
            app_slug,
            account: AccountId(account),
            repositories,
            permission: parse_role(&permission)?,
        }))
    }
}
