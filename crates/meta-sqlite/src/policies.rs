//! Storage policies of accounts and packages, and what a retention pass reads.

use async_trait::async_trait;
use berth_core::digest::Digest;
use berth_core::error::{StoreError, StoreErrorKind};
use berth_core::ids::VersionId;
use berth_core::name::RepoName;
use berth_core::policies::{PackagePolicies, Policies, PolicyScope, VersionFacts};
use berth_core::ports::{Millis, PolicyStore, StoreResult};
use tracing::instrument;

use crate::store::{SqliteMetadataStore, failed, parse_digest};

/// Policies read back from their JSON.
fn decode(text: Option<String>, whose: &str) -> Result<Option<Policies>, StoreError> {
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| StoreError::new(format!("reading the storage policies of {whose}"), e))
    })
    .transpose()
}

fn encode(policies: &Policies) -> Result<String, StoreError> {
    serde_json::to_string(policies).map_err(|e| StoreError::new("writing storage policies", e))
}

type FactsRow = (
    i64,
    String,
    String,
    i64,
    Option<i64>,
    String,
    Option<String>,
);

#[async_trait]
impl PolicyStore for SqliteMetadataStore {
    #[instrument(level = "debug", skip(self))]
    async fn policies(&self, scope: PolicyScope<'_>) -> StoreResult<Option<Policies>> {
        let (sql, key, whose) = match scope {
            PolicyScope::Account(id) => (
                "SELECT policies FROM account_policies WHERE account_id = ?1",
                Key::Id(id.0),
                format!("account {id}"),
            ),
            PolicyScope::Package(name) => (
                "SELECT pp.policies FROM package_policies pp JOIN packages p \
                 ON p.id = pp.package_id WHERE p.name = ?1",
                Key::Name(name.as_str()),
                format!("package {name}"),
            ),
        };
        let query = sqlx::query_scalar(sql);
        let query = match key {
            Key::Id(id) => query.bind(id),
            Key::Name(name) => query.bind(name),
        };
        let text: Option<String> = query
            .fetch_optional(&mut *self.reader.conn().await?)
            .await
            .map_err(failed(format!("reading the storage policies of {whose}")))?;
        decode(text, &whose)
    }

    #[instrument(level = "debug", skip(self, policies))]
    async fn set_policies(
        &self,
        scope: PolicyScope<'_>,
        policies: Option<&Policies>,
        at: Millis,
    ) -> StoreResult<()> {
        let doing = || format!("setting storage policies ({scope:?})");
        let mut tx = self.begin_write().await?;
        let (table, column, id) = match scope {
            PolicyScope::Account(id) => ("account_policies", "account_id", id.0),
            PolicyScope::Package(name) => {
                let id: Option<i64> = sqlx::query_scalar("SELECT id FROM packages WHERE name = ?1")
                    .bind(name.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(failed(doing()))?;
                let id = id.ok_or_else(|| {
                    StoreError::of_kind(
                        StoreErrorKind::NotFound,
                        doing(),
                        format!("there is no package `{name}`"),
                    )
                })?;
                ("package_policies", "package_id", id)
            }
        };
        match policies {
            Some(policies) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO {table} ({column}, policies, updated_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT ({column}) DO UPDATE SET policies = excluded.policies, \
                         updated_at = excluded.updated_at"
                )))
                .bind(id)
                .bind(encode(policies)?)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(failed(doing()))?;
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE {column} = ?1"
                )))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(failed(doing()))?;
            }
        }
        tx.commit().await.map_err(failed(doing()))
    }

    #[instrument(level = "debug", skip(self), fields(%repo))]
    async fn package_policies(&self, repo: &RepoName) -> StoreResult<PackagePolicies> {
        let doing = || format!("reading the storage policies of {repo}");
        let (account, own): (Option<String>, Option<String>) = sqlx::query_as(
            "SELECT (SELECT ap.policies FROM account_policies ap JOIN accounts a \
                     ON a.id = ap.account_id WHERE a.login = ?1), \
                    (SELECT pp.policies FROM package_policies pp JOIN packages p \
                     ON p.id = pp.package_id WHERE p.name = ?2)",
        )
        .bind(repo.owner())
        .bind(repo.as_str())
        .fetch_one(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(doing()))?;
        Ok(PackagePolicies {
            owner: repo.owner().to_owned(),
            package: repo.to_string(),
            account: decode(account, &format!("the owner of {repo}"))?,
            own: decode(own, &format!("package {repo}"))?,
        })
    }

    #[instrument(level = "debug", skip(self))]
    async fn retained_packages(&self) -> StoreResult<Vec<RepoName>> {
        let doing = "listing the packages a retention policy applies to";
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT p.name FROM packages p \
             LEFT JOIN package_policies pp ON pp.package_id = p.id \
             LEFT JOIN account_policies ap ON ap.account_id = p.owner_id \
             WHERE p.deleted_at IS NULL \
               AND (json_extract(pp.policies, '$.retention') IS NOT NULL \
                    OR json_extract(ap.policies, '$.retention') IS NOT NULL) \
             ORDER BY p.name",
        )
        .fetch_all(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(doing))?;
        names
            .into_iter()
            .map(|n| n.parse().map_err(|e| StoreError::new(doing, e)))
            .collect()
    }

    #[instrument(level = "debug", skip(self), fields(%repo))]
    async fn retention_facts(&self, repo: &RepoName) -> StoreResult<Vec<VersionFacts>> {
        let doing = || format!("reading the versions of {repo} for retention");
        let rows: Vec<FactsRow> = sqlx::query_as(
            "SELECT v.id, v.digest, \
                 (SELECT json_group_array(name) FROM (SELECT name FROM tags t \
                  WHERE t.repository_id = m.repository_id AND t.digest = m.digest ORDER BY name)), \
                 v.updated_at, v.last_pulled_at, \
                 (SELECT json_group_array(child_digest) FROM manifest_children c \
                  WHERE c.repository_id = m.repository_id AND c.parent_digest = m.digest), \
                 m.subject \
             FROM repositories r \
             JOIN manifests m ON m.repository_id = r.id AND m.deleted_at IS NULL \
             JOIN package_versions v ON v.repository_id = m.repository_id AND v.digest = m.digest \
             WHERE r.name = ?1 ORDER BY v.id",
        )
        .bind(repo.as_str())
        .fetch_all(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(doing()))?;
        rows.into_iter()
            .map(
                |(id, digest, tags, updated_at, last_pulled_at, children, subject)| {
                    let children: Vec<String> =
                        serde_json::from_str(&children).map_err(|e| StoreError::new(doing(), e))?;
                    Ok(VersionFacts {
                        id: VersionId(id),
                        digest: parse_digest(&digest)?,
                        tags: serde_json::from_str(&tags)
                            .map_err(|e| StoreError::new(doing(), e))?,
                        updated_at,
                        last_pulled_at,
                        children: children
                            .iter()
                            .map(|c| parse_digest(c))
                            .collect::<Result<_, _>>()?,
                        subject: subject.as_deref().map(parse_digest).transpose()?,
                    })
                },
            )
            .collect()
    }

    #[instrument(level = "debug", skip(self), fields(%repo, %digest))]
    async fn manifest_tags(&self, repo: &RepoName, digest: &Digest) -> StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT t.name FROM repositories r JOIN tags t ON t.repository_id = r.id \
             WHERE r.name = ?1 AND t.digest = ?2 ORDER BY t.name",
        )
        .bind(repo.as_str())
        .bind(digest.as_str())
        .fetch_all(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(format!("reading the tags of {repo}@{digest}")))
    }
}

/// How a scope's row is found.
enum Key<'a> {
    Id(i64),
    Name(&'a str),
}
