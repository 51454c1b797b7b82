//! Accounts (users and organizations), organization memberships, teams and source
//! repositories with their collaborators.

use async_trait::async_trait;
use berth_core::access::store::DirectoryStore;
use berth_core::access::store::{Account, Created, NewUser, RepoSet, SourceRepo, TeamId};
use berth_core::access::{AccountId, OrgRole, PackagePolicy, RepoId, Role, Visibility};
use berth_core::error::StoreError;
use berth_core::ports::Millis;
use berth_core::ports::StoreResult;
use tracing::instrument;

use crate::access::{
    created, org_role_text, parse_account_kind, parse_org_role, parse_visibilities,
    parse_visibility, rank, role_from_rank, role_text, visibilities_text, visibility_text,
};
use crate::store::{SqliteMetadataStore, failed};

/// The columns of an account, as `select_account!` reads them.
#[derive(sqlx::FromRow)]
struct AccountRow {
    id: i64,
    login: String,
    kind: String,
    name: Option<String>,
    email: Option<String>,
    site_admin: bool,
    requires_sso: bool,
    default_visibility: String,
    member_visibilities: String,
    created_at: i64,
}

/// The query reading an [`AccountRow`] under the given `WHERE` condition.
macro_rules! select_account {
    ($condition:literal) => {
        concat!(
            "SELECT id, login, kind, name, email, site_admin, requires_sso, \
             default_visibility, member_visibilities, created_at FROM accounts WHERE ",
            $condition
        )
    };
}

impl AccountRow {
    fn into_account(self) -> Result<Account, StoreError> {
        Ok(Account {
            id: AccountId(self.id),
            login: self.login,
            kind: parse_account_kind(&self.kind)?,
            name: self.name,
            email: self.email,
            site_admin: self.site_admin,
            requires_sso: self.requires_sso,
            policy: PackagePolicy {
                default_visibility: parse_visibility(&self.default_visibility)?,
                member_visibilities: parse_visibilities(&self.member_visibilities)?,
            },
            created_at: self.created_at,
        })
    }
}

/// A source repository row joined with its owner's login.
#[derive(sqlx::FromRow)]
struct RepoRow {
    id: i64,
    owner_id: i64,
    owner_login: String,
    name: String,
    visibility: String,
    created_at: i64,
}

impl RepoRow {
    fn into_repo(self) -> Result<SourceRepo, StoreError> {
        Ok(SourceRepo {
            id: RepoId(self.id),
            owner: AccountId(self.owner_id),
            owner_login: self.owner_login,
            name: self.name,
            visibility: parse_visibility(&self.visibility)?,
            created_at: self.created_at,
        })
    }
}

/// An account row with its membership role.
#[derive(sqlx::FromRow)]
struct MemberRow {
    #[sqlx(flatten)]
    account: AccountRow,
    role: String,
}

/// A repository row with a user's role on it, as a rank.
#[derive(sqlx::FromRow)]
struct RepoRoleRow {
    #[sqlx(flatten)]
    repo: RepoRow,
    role_rank: i64,
}

#[async_trait]
impl DirectoryStore for SqliteMetadataStore {
    #[instrument(level = "debug", skip(self))]
    async fn password_hash(&self, login: &str) -> StoreResult<Option<String>> {
        let hash: Option<Option<String>> =
            sqlx::query_scalar("SELECT password_hash FROM accounts WHERE login = ?1")
                .bind(login)
                .fetch_optional(&mut *self.reader.conn().await?)
                .await
                .map_err(failed(format!("reading the password of {login}")))?;
        Ok(hash.flatten())
    }

    #[instrument(level = "debug", skip(self, hash))]
    async fn set_password_hash(&self, user: AccountId, hash: &str) -> StoreResult<bool> {
        let doing = || format!("setting the password of account {user}");
        let mut tx = self.begin_write().await?;
        let changed =
            sqlx::query("UPDATE accounts SET password_hash = ?2 WHERE id = ?1 AND kind = 'user'")
                .bind(user.0)
                .bind(hash)
                .execute(&mut *tx)
                .await
                .map_err(failed(doing()))?
                .rows_affected();
        tx.commit().await.map_err(|e| StoreError::new(doing(), e))?;
        Ok(changed == 1)
    }

    /// Inserts a user; [`Created::Taken`] when the login collides (case-insensitively).
    #[instrument(level = "debug", skip_all, fields(login = %user.login))]
    async fn create_user(&self, user: &NewUser, now: Millis) -> StoreResult<Created<AccountId>> {
        let inserted = sqlx::query_scalar(
            "INSERT INTO accounts (login, kind, name, email, password_hash, site_admin, created_at) \
             VALUES (?1, 'user', ?2, ?3, ?4, ?5, ?6) RETURNING id",
        )
        .bind(&user.login)
        .bind(user.name.as_deref())
        .bind(user.email.as_deref())
        .bind(user.password_hash.as_deref())
        .bind(user.site_admin)
        .bind(now)
        .fetch_one(&mut *self.writer.conn().await?)
        .await;
        self.writer.durable().await?;
        created(inserted, || format!("creating user {}", user.login))
    }

    /// Inserts an organization and makes `owner` its owner, in one transaction.
    #[instrument(level = "debug", skip(self, name))]
    async fn create_org(
        &self,
        login: &str,
        name: Option<&str>,
        owner: AccountId,
        now: Millis,
    ) -> StoreResult<Created<AccountId>> {
        let doing = || format!("creating organization {login}");
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query_scalar(
            "INSERT INTO accounts (login, kind, name, created_at) \
             VALUES (?1, 'organization', ?2, ?3) RETURNING id",
        )
        .bind(login)
        .bind(name)
        .bind(now)
        .fetch_one(&mut *tx)
        .await;
        let org: AccountId = match created(inserted, doing)? {
            Created::New(id) => id,
            Created::Taken => {
                tx.rollback().await.map_err(failed(doing()))?;
                return Ok(Created::Taken);
            }
        };
        sqlx::query("INSERT INTO org_members (org_id, user_id, role) VALUES (?1, ?2, 'owner')")
            .bind(org.0)
            .bind(owner.0)
            .execute(&mut *tx)
            .await
            .map_err(failed(format!(
                "making account {owner} the owner of organization {login}"
            )))?;
        tx.commit().await.map_err(failed(doing()))?;
        Ok(Created::New(org))
    }

    /// The account with `login`, compared case-insensitively.
    #[instrument(level = "debug", skip(self))]
    async fn account(&self, login: &str) -> StoreResult<Option<Account>> {
        let row: Option<AccountRow> = sqlx::query_as(select_account!("login = ?1"))
            .bind(login)
            .fetch_optional(&mut *self.reader.conn().await?)
            .await
            .map_err(failed(format!("looking up account {login}")))?;
        row.map(AccountRow::into_account).transpose()
    }

    /// The account with id `id`.
    #[instrument(level = "debug", skip(self))]
    async fn account_by_id(&self, id: AccountId) -> StoreResult<Option<Account>> {
        let row: Option<AccountRow> = sqlx::query_as(select_account!("id = ?1"))
            .bind(id.0)
            .fetch_optional(&mut *self.reader.conn().await?)
            .await
            .map_err(failed(format!("looking up account {id}")))?;
        row.map(AccountRow::into_account).transpose()
    }

    /// Sets `user`'s role in `org`; `None` removes the membership and, in the same
    /// transaction, the user's memberships in the organization's teams.
    #[instrument(level = "debug", skip(self))]
    async fn set_membership(
        &self,
        org: AccountId,
        user: AccountId,
        role: Option<OrgRole>,
    ) -> StoreResult<()> {
        let doing = || format!("setting the membership of account {user} in organization {org}");
        let Some(role) = role else {
            let mut tx = self.begin_write().await?;
            sqlx::query("DELETE FROM org_members WHERE org_id = ?1 AND user_id = ?2")
                .bind(org.0)
                .bind(user.0)
                .execute(&mut *tx)
                .await
                .map_err(failed(doing()))?;
            sqlx::query(
                "DELETE FROM team_members WHERE user_id = ?2 \
                 AND team_id IN (SELECT id FROM teams WHERE org_id = ?1)",
            )
            .bind(org.0)
            .bind(user.0)
            .execute(&mut *tx)
            .await
            .map_err(failed(doing()))?;
            return tx.commit().await.map_err(failed(doing()));
        };
        sqlx::query(
            "INSERT INTO org_members (org_id, user_id, role) VALUES (?1, ?2, ?3) \
             ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(org.0)
        .bind(user.0)
        .bind(org_role_text(role))
        .execute(&mut *self.writer.conn().await?)
        .await
        .map_err(failed(doing()))?;
        self.writer.durable().await?;
        Ok(())
    }

    /// `user`'s role in `org`.
    #[instrument(level = "debug", skip(self))]
    async fn membership(&self, org: AccountId, user: AccountId) -> StoreResult<Option<OrgRole>> {
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM org_members WHERE org_id = ?1 AND user_id = ?2")
                .bind(org.0)
                .bind(user.0)
                .fetch_optional(&mut *self.reader.conn().await?)
                .await
                .map_err(failed(format!(
                    "looking up the membership of account {user} in organization {org}"
                )))?;
        role.as_deref().map(parse_org_role).transpose()
    }

    /// Sets the `requires_sso` flag of an account.
    #[instrument(level = "debug", skip(self))]
    async fn set_requires_sso(&self, org: AccountId, required: bool) -> StoreResult<()> {
        sqlx::query("UPDATE accounts SET requires_sso = ?2 WHERE id = ?1")
            .bind(org.0)
            .bind(required)
            .execute(&mut *self.writer.conn().await?)
            .await
            .map_err(failed(format!("setting SSO enforcement of account {org}")))?;
        self.writer.durable().await?;
        Ok(())
    }

    /// Sets the package creation policy of an account.
    #[instrument(level = "debug", skip(self))]
    async fn set_package_policy(
        &self,
        account: AccountId,
        policy: &PackagePolicy,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE accounts SET default_visibility = ?2, member_visibilities = ?3 WHERE id = ?1",
        )
        .bind(account.0)
        .bind(visibility_text(policy.default_visibility))
        .bind(visibilities_text(&policy.member_visibilities))
        .execute(&mut *self.writer.conn().await?)
        .await
        .map_err(failed(format!(
            "setting the package policy of account {account}"
        )))?;
        self.writer.durable().await?;
        Ok(())
    }

    /// Inserts team `slug` in `org`; [`Created::Taken`] when the org has one by that slug.
    #[instrument(level = "debug", skip(self))]
    async fn create_team(
        &self,
        org: AccountId,
        slug: &str,
        name: &str,
    ) -> StoreResult<Created<TeamId>> {
        let inserted = sqlx::query_scalar(
            "INSERT INTO teams (org_id, slug, name) VALUES (?1, ?2, ?3) RETURNING id",
        )
        .bind(org.0)
        .bind(slug)
        .bind(name)
        .fetch_one(&mut *self.writer.conn().await?)
        .await;
        self.writer.durable().await?;
        created(inserted, || {
            format!("creating team {slug} in organization {org}")
        })
    }

    /// The id of team `slug` of `org`.
    #[instrument(level = "debug", skip(self))]
    async fn team(&self, org: AccountId, slug: &str) -> StoreResult<Option<TeamId>> {
        sqlx::query_scalar::<_, i64>("SELECT id FROM teams WHERE org_id = ?1 AND slug = ?2")
            .bind(org.0)
            .bind(slug)
            .fetch_optional(&mut *self.reader.conn().await?)
            .await
            .map(|team| team.map(TeamId))
            .map_err(failed(format!(
                "looking up team {slug} of organization {org}"
            )))
    }

    /// Adds `user` to `team` or removes them; both idempotent.
    #[instrument(level = "debug", skip(self))]
    async fn set_team_member(
        &self,
        team: TeamId,
        user: AccountId,
        member: bool,
    ) -> StoreResult<()> {
        let sql = if member {
            "INSERT INTO team_members (team_id, user_id) VALUES (?1, ?2) \
             ON CONFLICT (team_id, user_id) DO NOTHING"
        } else {
            "DELETE FROM team_members WHERE team_id = ?1 AND user_id = ?2"
        };
        sqlx::query(sql)
            .bind(team.0)
            .bind(user.0)
            .execute(&mut *self.writer.conn().await?)
            .await
            .map_err(failed(format!(
                "setting the membership of account {user} in team {team}"
            )))?;
        self.writer.durable().await?;
        Ok(())
    }

    /// Inserts source repository `name` of `owner`; [`Created::Taken`] when the owner has
    /// one by that name (case-insensitively).
    #[instrument(level = "debug", skip(self))]
    async fn create_repo(
        &self,
        owner: AccountId,
        name: &str,
        visibility: Visibility,
        now: Millis,
    ) -> StoreResult<Created<RepoId>> {
        let inserted = sqlx::query_scalar(
            "INSERT INTO source_repos (owner_id, name, visibility, created_at) \
             VALUES (?1, ?2, ?3, ?4) RETURNING id",
        )
        .bind(owner.0)
        .bind(name)
        .bind(visibility_text(visibility))
        .bind(now)
        .fetch_one(&mut *self.writer.conn().await?)
        .await;
        self.writer.durable().await?;
        created(inserted, || {
            format!("creating repository {name} of account {owner}")
        })
    }

    /// Source repository `owner_login/name`, both compared case-insensitively.
    #[instrument(level = "debug", skip(self))]
    async fn repo(&self, owner_login: &str, name: &str) -> StoreResult<Option<SourceRepo>> {
        let row: Option<RepoRow> = sqlx::query_as(
            "SELECT r.id, r.owner_id, a.login AS owner_login, r.name, r.visibility, r.created_at \
             FROM accounts a JOIN source_repos r ON r.owner_id = a.id \
             WHERE a.login = ?1 AND r.name = ?2",
        )
        .bind(owner_login)
        .bind(name)
        .fetch_optional(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(format!(
            "looking up repository {owner_login}/{name}"
        )))?;
        row.map(RepoRow::into_repo).transpose()
    }

    /// Source repository `id`.
    #[instrument(level = "debug", skip(self))]
    async fn repo_by_id(&self, id: RepoId) -> StoreResult<Option<SourceRepo>> {
        let row: Option<RepoRow> = sqlx::query_as(
            "SELECT r.id, r.owner_id, a.login AS owner_login, r.name, r.visibility, r.created_at \
             FROM source_repos r JOIN accounts a ON a.id = r.owner_id WHERE r.id = ?1",
        )
        .bind(id.0)
        .fetch_optional(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(format!("looking up repository {id}")))?;
        row.map(RepoRow::into_repo).transpose()
    }

    /// Sets or removes `user`'s collaborator role on `repo`.
    #[instrument(level = "debug", skip(self))]
    async fn set_collaborator(
        &self,
        repo: RepoId,
        user: AccountId,
        role: Option<Role>,
    ) -> StoreResult<()> {
        let query = match role {
            Some(role) => sqlx::query(
                "INSERT INTO repo_collaborators (repo_id, user_id, role) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (repo_id, user_id) DO UPDATE SET role = excluded.role",
            )
            .bind(repo.0)
            .bind(user.0)
            .bind(role_text(role)),
            None => {
                sqlx::query("DELETE FROM repo_collaborators WHERE repo_id = ?1 AND user_id = ?2")
                    .bind(repo.0)
                    .bind(user.0)
            }
        };
        query
            .execute(&mut *self.writer.conn().await?)
            .await
            .map_err(failed(format!(
                "setting the role of account {user} on repository {repo}"
            )))?;
        self.writer.durable().await?;
        Ok(())
    }

    /// `user`'s role on `repo` (see [`AccessStore::repo_role`]), as the [`rank!`]s of its
    /// sources in one query.
    ///
    /// [`AccessStore::repo_role`]: berth_core::access::store::AccessStore::repo_role
    #[instrument(level = "debug", skip(self))]
    async fn repo_role(&self, repo: RepoId, user: AccountId) -> StoreResult<Option<Role>> {
        let rank: Option<i64> = sqlx::query_scalar(concat!(
            "SELECT max(coalesce((SELECT ",
            rank!("c.role"),
            " FROM repo_collaborators c WHERE c.repo_id = r.id AND c.user_id = ?2), 0), \
                 coalesce((SELECT max(",
            rank!("tr.role"),
            ") FROM team_members tm \
                     JOIN team_repos tr ON tr.team_id = tm.team_id AND tr.repo_id = r.id \
                     WHERE tm.user_id = ?2), 0), \
                 CASE WHEN r.owner_id = ?2 OR EXISTS (SELECT 1 FROM org_members m \
                     WHERE m.org_id = r.owner_id AND m.user_id = ?2 AND m.role = 'owner') \
                 THEN 3 ELSE 0 END) \
             FROM source_repos r WHERE r.id = ?1"
        ))
        .bind(repo.0)
        .bind(user.0)
        .fetch_optional(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(format!(
            "reading the role of account {user} on repository {repo}"
        )))?;
        role_from_rank(rank)
    }

    /// Sets or removes `team`'s role on `repo`.
    #[instrument(level = "debug", skip(self))]
    async fn set_team_repo(
        &self,
        team: TeamId,
        repo: RepoId,
        role: Option<Role>,
    ) -> StoreResult<()> {
        let query = match role {
            Some(role) => sqlx::query(
                "INSERT INTO team_repos (team_id, repo_id, role) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (team_id, repo_id) DO UPDATE SET role = excluded.role",
            )
            .bind(team.0)
            .bind(repo.0)
            .bind(role_text(role)),
            None => sqlx::query("DELETE FROM team_repos WHERE team_id = ?1 AND repo_id = ?2")
                .bind(team.0)
                .bind(repo.0),
        };
        query
            .execute(&mut *self.writer.conn().await?)
            .await
            .map_err(failed(format!(
                "setting the role of team {team} on repository {repo}"
            )))?;
        self.writer.durable().await?;
        Ok(())
    }
    /// The members of `org` with their roles, by account id.
    #[instrument(level = "debug", skip(self))]
    async fn org_members(&self, org: AccountId) -> StoreResult<Vec<(Account, OrgRole)>> {
        let rows: Vec<MemberRow> = sqlx::query_as(
            "SELECT a.id, a.login, a.kind, a.name, a.email, a.site_admin, a.requires_sso, a.default_visibility, a.member_visibilities, a.created_at, m.role \
             FROM org_members m JOIN accounts a ON a.id = m.user_id \
             WHERE m.org_id = ?1 ORDER BY a.id",
        )
        .bind(org.0)
        .fetch_all(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(format!("listing the members of organization {org}")))?;
        rows.into_iter()
            .map(|row| Ok((row.account.into_account()?, parse_org_role(&row.role)?)))
            .collect()
    }

    /// The organizations `user` belongs to, by account id.
    #[instrument(level = "debug", skip(self))]
    async fn orgs_of(&self, user: AccountId) -> StoreResult<Vec<Account>> {
        let rows: Vec<AccountRow> = sqlx::query_as(
            "SELECT a.id, a.login, a.kind, a.name, a.email, a.site_admin, a.requires_sso, a.default_visibility, a.member_visibilities, a.created_at \
             FROM org_members m JOIN accounts a ON a.id = m.org_id \
             WHERE m.user_id = ?1 ORDER BY a.id",
        )
        .bind(user.0)
        .fetch_all(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(format!("listing the organizations of account {user}")))?;
        rows.into_iter().map(AccountRow::into_account).collect()
    }

    /// The teams of `org`, by slug.
    #[instrument(level = "debug", skip(self))]
    async fn teams(&self, org: AccountId) -> StoreResult<Vec<(TeamId, String, String)>> {
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, slug, name FROM teams WHERE org_id = ?1 ORDER BY slug")
                .bind(org.0)
                .fetch_all(&mut *self.reader.conn().await?)
                .await
                .map_err(failed(format!("listing the teams of organization {org}")))?;
        Ok(rows
            .into_iter()
            .map(|(id, slug, name)| (TeamId(id), slug, name))
            .collect())
    }

    /// The repositories of `set` with `user`'s role on each, computed as
    /// [`DirectoryStore::repo_role`] computes it, in one query.
    #[instrument(level = "debug", skip(self))]
    async fn repos(
        &self,
        set: RepoSet,
        user: Option<AccountId>,
    ) -> StoreResult<Vec<(SourceRepo, Option<Role>)>> {
        macro_rules! select_repos {
            ($condition:literal) => {
                concat!(
                    "SELECT r.id, r.owner_id, a.login AS owner_login, r.name, r.visibility, \
                     r.created_at, ",
                    "max(coalesce((SELECT ",
            rank!("c.role"),
            " FROM repo_collaborators c WHERE c.repo_id = r.id AND c.user_id = ?1), 0), \
                 coalesce((SELECT max(",
            rank!("tr.role"),
            ") FROM team_members tm \
                     JOIN team_repos tr ON tr.team_id = tm.team_id AND tr.repo_id = r.id \
                     WHERE tm.user_id = ?1), 0), \
                 CASE WHEN r.owner_id = ?1 OR EXISTS (SELECT 1 FROM org_members m \
                     WHERE m.org_id = r.owner_id AND m.user_id = ?1 AND m.role = 'owner') \
                 THEN 3 ELSE 0 END) AS role_rank \
                     FROM source_repos r JOIN accounts a ON a.id = r.owner_id WHERE ",
                    $condition,
                    " ORDER BY a.login COLLATE NOCASE, r.name COLLATE NOCASE"
                )
            };
        }
        // No account has id -1: without a user every role is none.
        let viewer = user.map_or(-1, |u| u.0);
        let query = match set {
            RepoSet::OwnedBy(owner) => sqlx::query_as(select_repos!("r.owner_id = ?2"))
                .bind(viewer)
                .bind(owner.0),
            RepoSet::AffiliatedWith(member) => sqlx::query_as(select_repos!(
                "(r.owner_id = ?2 \
                 OR r.owner_id IN (SELECT org_id FROM org_members WHERE user_id = ?2) \
                 OR r.id IN (SELECT repo_id FROM repo_collaborators WHERE user_id = ?2) \
                 OR r.id IN (SELECT tr.repo_id FROM team_repos tr \
                     JOIN team_members tm ON tm.team_id = tr.team_id WHERE tm.user_id = ?2))"
            ))
            .bind(viewer)
            .bind(member.0),
        };
        let rows: Vec<RepoRoleRow> = query
            .fetch_all(&mut *self.reader.conn().await?)
            .await
            .map_err(failed(format!("listing the repositories of {set:?}")))?;
        rows.into_iter()
            .map(|row| {
                let role = role_from_rank(Some(row.role_rank))?;
                Ok((row.repo.into_repo()?, role))
            })
            .collect()
    }
}
