//! Packages, their roles and links, and the [`Target`] of a registry request: everything the
//! permission function needs, gathered in one query.

use async_trait::async_trait;
use berth_core::access::store::PackageStore;
use berth_core::access::store::{Grantee, PackageFilter, PackageGrant, PackageRecord, TeamId};
use berth_core::access::{
    AccountId, LinkedRepo, Owner, Package, PackagePolicy, Readable, Relations, RepoId, Role,
    Target, Visibility,
};
use berth_core::error::StoreError;
use berth_core::ids::PackageId;
use berth_core::name::RepoName;
use berth_core::ports::Millis;
use berth_core::ports::StoreResult;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use tracing::instrument;

use crate::access::{
    parse_account_kind, parse_org_role, parse_role, parse_visibilities, parse_visibility, rank,
    role_from_rank, role_text, visibility_text,
};
use crate::store::{SqliteMetadataStore, failed};

/// The select list of [`TARGET`]: the owner (`o`), the package (`p`),
/// its linked repository (`r`) and the user's (`?3`) relations to them.
macro_rules! target_columns {
    () => {
        concat!(
            "SELECT o.id AS owner_id, o.login AS owner_login, o.kind AS owner_kind, \
         o.requires_sso, o.default_visibility, o.member_visibilities, \
         p.id AS package_id, p.visibility AS package_visibility, p.inherits, p.deleted_at, \
         r.id AS repo_id, r.visibility AS repo_visibility, \
         (SELECT group_concat(j.repo_id || ':' || j.role, ',' ORDER BY j.repo_id) \
            FROM package_job_access j WHERE j.package_id = p.id) AS job_access, \
         (SELECT m.role FROM org_members m \
            WHERE m.org_id = o.id AND m.user_id = ?3 AND o.kind = 'organization') AS org_role, \
         max(coalesce((SELECT ",
            rank!("u.role"),
            " FROM package_user_roles u WHERE u.package_id = p.id AND u.user_id = ?3), 0), \
             coalesce((SELECT max(",
            rank!("t.role"),
            ") FROM team_members tm \
                 JOIN package_team_roles t ON t.package_id = p.id AND t.team_id = tm.team_id \
                 WHERE tm.user_id = ?3), 0)) AS package_rank, \
         max(coalesce((SELECT ",
            rank!("c.role"),
            " FROM repo_collaborators c WHERE c.repo_id = r.id AND c.user_id = ?3), 0), \
             coalesce((SELECT max(",
            rank!("tr.role"),
            ") FROM team_members tm \
                 JOIN team_repos tr ON tr.team_id = tm.team_id AND tr.repo_id = r.id \
                 WHERE tm.user_id = ?3), 0), \
             CASE WHEN r.owner_id = ?3 OR EXISTS (SELECT 1 FROM org_members m \
                 WHERE m.org_id = r.owner_id AND m.user_id = ?3 AND m.role = 'owner') \
             THEN 3 ELSE 0 END) AS repo_rank"
        )
    };
}

/// The [`Target`] query. `?1` is the owner login (the name's first segment), `?2` the package
/// name, `?3` the asking user (NULL for none, which makes every relation empty).
///
/// A one-row anchor is left-joined to the owner account, the package and its linked
/// repository, so the row exists whatever is missing. Every lookup is a primary-key or unique
/// index probe: accounts by login, packages by name, source repositories by id, and the
/// user's roles by (package, user), (repo, user), (org, user) and, through the user's teams
/// (`team_members_by_user`), by (team, package) and (team, repo). Roles are compared as ranks
/// (see [`rank!`]); a relation of rank 0 is none.
const TARGET: &str = concat!(
    target_columns!(),
    " FROM (SELECT 1) AS anchor \
     LEFT JOIN accounts o ON o.login = ?1 \
     LEFT JOIN packages p ON p.name = ?2 \
     LEFT JOIN source_repos r ON r.id = p.linked_repo_id"
);

/// The row of [`TARGET`].
#[derive(sqlx::FromRow)]
struct TargetRow {
    owner_id: Option<i64>,
    owner_login: Option<String>,
    owner_kind: Option<String>,
    requires_sso: Option<bool>,
    default_visibility: Option<String>,
    member_visibilities: Option<String>,
    package_id: Option<i64>,
    package_visibility: Option<String>,
    inherits: Option<bool>,
    deleted_at: Option<i64>,
    repo_id: Option<i64>,
    repo_visibility: Option<String>,
    job_access: Option<String>,
    org_role: Option<String>,
    package_rank: Option<i64>,
    repo_rank: Option<i64>,
}

impl TargetRow {
    fn into_target(self, name: &RepoName) -> Result<Target, StoreError> {
        let owner = match (self.owner_id, self.owner_login, self.owner_kind) {
            (Some(id), Some(login), Some(kind)) => Some(Owner {
                id: AccountId(id),
                login,
                kind: parse_account_kind(&kind)?,
                requires_sso: self.requires_sso.unwrap_or(false),
                policy: PackagePolicy {
                    default_visibility: parse_visibility(
                        self.default_visibility.as_deref().unwrap_or_default(),
                    )?,
                    member_visibilities: parse_visibilities(
                        self.member_visibilities.as_deref().unwrap_or_default(),
                    )?,
                },
            }),
            _ => None,
        };
        let package = match (self.package_id, self.package_visibility) {
            (Some(_), Some(visibility)) => Some(Package {
                visibility: parse_visibility(&visibility)?,
                linked: match (self.repo_id, self.repo_visibility) {
                    (Some(id), Some(visibility)) => Some(LinkedRepo {
                        id: RepoId(id),
                        visibility: parse_visibility(&visibility)?,
                    }),
                    _ => None,
                },
                inherits: self.inherits.unwrap_or(false),
                job_access: parse_job_access(self.job_access.as_deref().unwrap_or_default())?,
                deleted_at: self.deleted_at,
            }),
            _ => None,
        };
        Ok(Target {
            name: name.as_str().to_owned(),
            owner,
            package,
            relations: Relations {
                org_role: self.org_role.as_deref().map(parse_org_role).transpose()?,
                package_role: role_from_rank(self.package_rank)?,
                repo_role: role_from_rank(self.repo_rank)?,
            },
        })
    }
}

/// `repo_id:role` pairs joined by commas, as [`TARGET`] aggregates them.
fn parse_job_access(text: &str) -> Result<Vec<(RepoId, Role)>, StoreError> {
    text.split(',')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (repo, role) = pair.split_once(':').ok_or_else(|| {
                StoreError::new("reading job access", format!("malformed entry `{pair}`"))
            })?;
            let repo = repo
                .parse()
                .map_err(|e| StoreError::new("reading job access", e))?;
            Ok((repo, parse_role(role)?))
        })
        .collect()
}

/// The id of package `name`, inside the caller's transaction.
async fn package_id(
    conn: &mut SqliteConnection,
    name: &RepoName,
) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar("SELECT id FROM packages WHERE name = ?1")
        .bind(name.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(failed(format!("looking up package {name}")))
}

#[async_trait]
impl PackageStore for SqliteMetadataStore {
    /// Everything the permission function needs about `name` for `user`: one query.
    #[instrument(level = "debug", skip(self), fields(%name))]
    async fn target(&self, name: &RepoName, user: Option<AccountId>) -> StoreResult<Target> {
        let row: TargetRow = sqlx::query_as(TARGET)
            .bind(name.owner())
            .bind(name.as_str())
            .bind(user.map(|id| id.0))
            .fetch_one(&mut *self.reader.conn().await?)
            .await
            .map_err(failed(format!("reading the access target {name}")))?;
        row.into_target(name)
    }

    /// A page of `owner`'s live packages that `readable` admits, and their count: two
    /// queries over `packages_by_owner`, in name order, cut by `LIMIT`/`OFFSET`.
    #[instrument(level = "debug", skip(self, readable))]
    async fn list_packages(
        &self,
        owner: AccountId,
        readable: &Readable,
        filter: &PackageFilter,
        offset: u64,
        limit: u64,
    ) -> StoreResult<(u64, Vec<PackageRecord>)> {
        let doing = || format!("listing the packages of account {owner}");
        let mut count = QueryBuilder::<Sqlite>::new("SELECT count(*)");
        push_listing(&mut count, owner, readable, filter);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&mut *self.reader.conn().await?)
            .await
            .map_err(failed(doing()))?;
        let mut page = QueryBuilder::<Sqlite>::new(
            "SELECT p.id, p.name, p.owner_id, p.visibility, p.linked_repo_id, p.created_at, \
             p.deleted_at",
        );
        push_listing(&mut page, owner, readable, filter);
        page.push(" ORDER BY p.name LIMIT ")
            .push_bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .push(" OFFSET ")
            .push_bind(i64::try_from(offset).unwrap_or(i64::MAX));
        let rows: Vec<Row> = page
            .build_query_as()
            .fetch_all(&mut *self.reader.conn().await?)
            .await
            .map_err(failed(doing()))?;
        let records = rows.into_iter().map(record).collect::<Result<_, _>>()?;
        Ok((u64::try_from(total).unwrap_or_default(), records))
    }

    /// Inserts package `name` unless it exists, with `admin` as its admin, in one
    /// transaction; a linked package inherits its repository's access, and one linked and
    /// created by no user (a job token of the repository) grants the repository write.
    #[instrument(level = "debug", skip(self), fields(%name))]
    async fn create_package(
        &self,
        name: &RepoName,
        owner: AccountId,
        visibility: Visibility,
        link: Option<RepoId>,
        admin: Option<AccountId>,
        now: Millis,
    ) -> StoreResult<()> {
        let doing = || format!("creating package {name}");
        let mut tx = self.begin_write().await?;
        let created: Option<i64> = sqlx::query_scalar(
            "INSERT INTO packages (name, owner_id, visibility, linked_repo_id, inherits, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?4 IS NOT NULL, ?5) ON CONFLICT (name) DO NOTHING \
             RETURNING id",
        )
        .bind(name.as_str())
        .bind(owner.0)
        .bind(visibility_text(visibility))
        .bind(link.map(|id| id.0))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed(doing()))?;
        // Only the creator becomes admin: a concurrent creator that lost gets nothing.
        if let (Some(package), Some(admin)) = (created, admin) {
            sqlx::query(
                "INSERT INTO package_user_roles (package_id, user_id, role) VALUES (?1, ?2, 'admin')",
            )
            .bind(package)
            .bind(admin.0)
            .execute(&mut *tx)
            .await
            .map_err(failed(doing()))?;
        }
        // Likewise only the creating job's repository gets write for its jobs.
        if let (Some(package), Some(repo), None) = (created, link, admin) {
            sqlx::query(
                "INSERT INTO package_job_access (package_id, repo_id, role) VALUES (?1, ?2, 'write')",
            )
            .bind(package)
            .bind(repo.0)
            .execute(&mut *tx)
            .await
            .map_err(failed(doing()))?;
        }
        tx.commit().await.map_err(failed(doing()))
    }

    /// Sets the visibility of package `name`; false when there is none.
    #[instrument(level = "debug", skip(self), fields(%name))]
    async fn set_package_visibility(
        &self,
        name: &RepoName,
        visibility: Visibility,
    ) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE packages SET visibility = ?2 WHERE name = ?1")
            .bind(name.as_str())
            .bind(visibility_text(visibility))
            .execute(&mut *self.writer.conn().await?)
            .await
            .map_err(failed(format!("setting the visibility of package {name}")))?;
        self.writer.durable().await?;
        Ok(done.rows_affected() > 0)
    }

    /// The users' and teams' roles on package `name`, users first.
    #[instrument(level = "debug", skip(self), fields(%name))]
    async fn package_grants(&self, name: &RepoName) -> StoreResult<Vec<PackageGrant>> {
        let rows: Vec<(bool, i64, String, String)> = sqlx::query_as(
            "SELECT true, u.user_id, a.login, u.role FROM package_user_roles u \
             JOIN packages p ON p.id = u.package_id JOIN accounts a ON a.id = u.user_id \
             WHERE p.name = ?1 \
             UNION ALL \
             SELECT false, t.team_id, tm.slug, t.role FROM package_team_roles t \
             JOIN packages p ON p.id = t.package_id JOIN teams tm ON tm.id = t.team_id \
             WHERE p.name = ?1 \
             ORDER BY 1 DESC, 3",
        )
        .bind(name.as_str())
        .fetch_all(&mut *self.reader.conn().await?)
        .await
        .map_err(failed(format!("listing the roles on package {name}")))?;
        rows.into_iter()
            .map(|(user, id, grantee_name, role)| {
                Ok(PackageGrant {
                    grantee: if user {
                        Grantee::User(AccountId(id))
                    } else {
                        Grantee::Team(TeamId(id))
                    },
                    name: grantee_name,
                    role: parse_role(&role)?,
                })
            })
            .collect()
    }

    /// Sets or removes a user's or team's role on package `name`; false when there is none.
    #[instrument(level = "debug", skip(self), fields(%name))]
    async fn set_package_role(
        &self,
        name: &RepoName,
        grantee: Grantee,
        role: Option<Role>,
    ) -> StoreResult<bool> {
        let doing = || format!("setting a role on package {name}");
        let mut tx = self.begin_write().await?;
        let Some(package) = package_id(&mut tx, name).await? else {
            tx.rollback().await.map_err(failed(doing()))?;
            return Ok(false);
        };
        let (sql, who) = match (grantee, role) {
            (Grantee::User(user), Some(_)) => (
                "INSERT INTO package_user_roles (package_id, user_id, role) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (package_id, user_id) DO UPDATE SET role = excluded.role",
                user.0,
            ),
            (Grantee::User(user), None) => (
                "DELETE FROM package_user_roles WHERE package_id = ?1 AND user_id = ?2",
                user.0,
            ),
            (Grantee::Team(team), Some(_)) => (
                "INSERT INTO package_team_roles (package_id, team_id, role) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (package_id, team_id) DO UPDATE SET role = excluded.role",
                team.0,
            ),
            (Grantee::Team(team), None) => (
                "DELETE FROM package_team_roles WHERE package_id = ?1 AND team_id = ?2",
                team.0,
            ),
        };
        let mut query = sqlx::query(sql).bind(package).bind(who);
        if let Some(role) = role {
            query = query.bind(role_text(role));
        }
        query.execute(&mut *tx).await.map_err(failed(doing()))?;
        tx.commit().await.map_err(failed(doing()))?;
        Ok(true)
    }

    /// Sets or removes the role job tokens of `repo` hold on package `name`; false when there
    /// is no such package.
    #[instrument(level = "debug", skip(self), fields(%name))]
    async fn set_package_job_access(
        &self,
        name: &RepoName,
        repo: RepoId,
        role: Option<Role>,
    ) -> StoreResult<bool> {
        let doing = || format!("setting job access of repository {repo} to package {name}");
        let mut tx = self.begin_write().await?;
        let Some(package) = package_id(&mut tx, name).await? else {
            tx.rollback().await.map_err(failed(doing()))?;
            return Ok(false);
        };
        let query = match role {
            Some(role) => sqlx::query(
                "INSERT INTO package_job_access (package_id, repo_id, role) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (package_id, repo_id) DO UPDATE SET role = excluded.role",
            )
            .bind(package)
            .bind(repo.0)
            .bind(role_text(role)),
            None => {
                sqlx::query("DELETE FROM package_job_access WHERE package_id = ?1 AND repo_id = ?2")
                    .bind(package)
                    .bind(repo.0)
            }
        };
        query.execute(&mut *tx).await.map_err(failed(doing()))?;
        tx.commit().await.map_err(failed(doing()))?;
        Ok(true)
    }
    /// Package `name`.
    #[instrument(level = "debug", skip(self), fields(%name))]
    async fn package_record(&self, name: &RepoName) -> StoreResult<Option<PackageRecord>> {
        let row: Option<Row> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{COLUMNS} WHERE name = ?1")))
                .bind(name.as_str())
                .fetch_optional(&mut *self.reader.conn().await?)
                .await
                .map_err(failed(format!("reading package {name}")))?;
        row.map(record).transpose()
    }

    /// Marks package `name` deleted (or restores it).
    #[instrument(level = "debug", skip(self), fields(%name))]
    async fn set_package_deleted(&self, name: &RepoName, at: Option<Millis>) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE packages SET deleted_at = ?2 WHERE name = ?1")
            .bind(name.as_str())
            .bind(at)
            .execute(&mut *self.writer.conn().await?)
            .await
            .map_err(failed(format!("deleting package {name}")))?;
        self.writer.durable().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes the packages deleted before `before` with everything of their repositories,
    /// in one transaction. Blob bytes stay for garbage collection.
    #[instrument(level = "debug", skip(self))]
    async fn purge_deleted_packages(&self, before: Millis) -> StoreResult<u64> {
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
            format!("DELETE FROM package_policies WHERE package_id IN ({doomed_packages})"),
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

    #[instrument(level = "debug", skip(self), fields(%name))]
    async fn link_unlinked_package(
        &self,
        name: &RepoName,
        repo: RepoId,
        inherits: bool,
    ) -> StoreResult<bool> {
        self.put_package_link(name, Some(repo), inherits, true)
            .await
    }

    #[instrument(level = "debug", skip(self), fields(%name))]
    async fn link_package(
        &self,
        name: &RepoName,
        repo: Option<RepoId>,
        inherits: bool,
    ) -> StoreResult<bool> {
        self.put_package_link(name, repo, inherits, false).await
    }
}

impl SqliteMetadataStore {
    /// Links package `name` to `repo` (or unlinks it) and sets `inherits`; with
    /// `only_if_unlinked`, only a package not linked yet (checked and written in one
    /// statement). False when nothing changed: no such package, or linked already.
    pub(crate) async fn put_package_link(
        &self,
        name: &RepoName,
        repo: Option<RepoId>,
        inherits: bool,
        only_if_unlinked: bool,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE packages SET linked_repo_id = ?2, inherits = ?3 \
             WHERE name = ?1 AND (NOT ?4 OR linked_repo_id IS NULL)",
        )
        .bind(name.as_str())
        .bind(repo.map(|id| id.0))
        .bind(inherits)
        .bind(only_if_unlinked)
        .execute(&mut *self.writer.conn().await?)
        .await
        .map_err(failed(format!("linking package {name}")))?;
        self.writer.durable().await?;
        Ok(done.rows_affected() > 0)
    }
}

/// The columns of a [`PackageRecord`].
const COLUMNS: &str =
    "SELECT id, name, owner_id, visibility, linked_repo_id, created_at, deleted_at FROM packages";

type Row = (i64, String, i64, String, Option<i64>, i64, Option<i64>);

fn record(
    (id, name, owner, visibility, linked_repo, created_at, deleted_at): Row,
) -> Result<PackageRecord, StoreError> {
    Ok(PackageRecord {
        id: PackageId(id),
        name: name
            .parse()
            .map_err(|e| StoreError::new(format!("reading package {id}"), e))?,
        owner: AccountId(owner),
        visibility: parse_visibility(&visibility)?,
        linked_repo: linked_repo.map(RepoId),
        created_at,
        deleted_at,
    })
}

/// The `FROM … WHERE` of a listing: the live packages (`p`) of `owner`, of `visibility` if
/// given, that `readable` admits; their linked repository is `r`.
fn push_listing(
    q: &mut QueryBuilder<Sqlite>,
    owner: AccountId,
    readable: &Readable,
    filter: &PackageFilter,
) {
    q.push(
        " FROM packages p LEFT JOIN source_repos r ON r.id = p.linked_repo_id \
         WHERE p.owner_id = ",
    )
    .push_bind(owner.0)
    .push(" AND p.deleted_at IS NULL");
    if let Some(visibility) = filter.visibility {
        q.push(" AND p.visibility = ")
            .push_bind(visibility_text(visibility));
    }
    if let Some(pattern) = filter.like_pattern() {
        q.push(" AND substr(p.name, instr(p.name, '/') + 1) LIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\'");
    }
    q.push(" AND ");
    push_readable(q, readable);
}

/// `readable` as an SQL condition on a package `p` and its linked repository `r` (NULL when
/// it has none). Each condition asks what [`TARGET`]'s columns say of the package: its
/// visibility, link and job access, and the user's roles, through the same tables and
/// indexes, as `EXISTS` probes instead of ranks (any role reads). None is ever NULL, so
/// conditions combine as they read.
fn push_readable(q: &mut QueryBuilder<Sqlite>, readable: &Readable) {
    match readable {
        Readable::Everything => {
            q.push("1");
        }
        Readable::Nothing => {
            q.push("0");
        }
        Readable::Visibility(visibility) => {
            q.push("p.visibility = ")
                .push_bind(visibility_text(*visibility));
        }
        Readable::Named(names) => push_in(q, "p.name", names.iter().cloned()),
        Readable::LinkedTo(repos) => {
            q.push("(r.id IS NOT NULL AND ");
            push_in(q, "r.id", repos.iter().map(|repo| repo.0));
            q.push(")");
        }
        Readable::JobAccess(repo) => {
            q.push(
                "EXISTS (SELECT 1 FROM package_job_access j \
                 WHERE j.package_id = p.id AND j.repo_id = ",
            )
            .push_bind(repo.0)
            .push(")");
        }
        Readable::InheritsFrom(visibilities) => push_inherits(q, visibilities),
        Readable::RepoRole {
            user,
            repo_visibilities,
        } => {
            q.push("(");
            push_inherits(q, repo_visibilities);
            q.push(
                " AND (EXISTS (SELECT 1 FROM repo_collaborators c \
                 WHERE c.repo_id = r.id AND c.user_id = ",
            )
            .push_bind(user.0)
            .push(
                ") OR EXISTS (SELECT 1 FROM team_members tm \
                 JOIN team_repos tr ON tr.team_id = tm.team_id AND tr.repo_id = r.id \
                 WHERE tm.user_id = ",
            )
            .push_bind(user.0)
            .push(") OR r.owner_id = ")
            .push_bind(user.0)
            .push(
                " OR EXISTS (SELECT 1 FROM org_members m \
                 WHERE m.org_id = r.owner_id AND m.role = 'owner' AND m.user_id = ",
            )
            .push_bind(user.0)
            .push(")))");
        }
        Readable::PackageRole(user) => {
            q.push(
                "(NOT (p.inherits AND r.id IS NOT NULL) AND (EXISTS (SELECT 1 \
                 FROM package_user_roles u WHERE u.package_id = p.id AND u.user_id = ",
            )
            .push_bind(user.0)
            .push(
                ") OR EXISTS (SELECT 1 FROM team_members tm \
                 JOIN package_team_roles t ON t.package_id = p.id AND t.team_id = tm.team_id \
                 WHERE tm.user_id = ",
            )
            .push_bind(user.0)
            .push(")))");
        }
        Readable::AnyOf(conditions) => push_joined(q, conditions, " OR "),
        Readable::AllOf(conditions) => push_joined(q, conditions, " AND "),
    }
}

/// Packages inheriting their access from a linked repository of one of `visibilities`.
fn push_inherits(q: &mut QueryBuilder<Sqlite>, visibilities: &[Visibility]) {
    q.push("(p.inherits AND r.id IS NOT NULL AND ");
    push_in(
        q,
        "r.visibility",
        visibilities.iter().map(|v| visibility_text(*v)),
    );
    q.push(")");
}

/// `column IN (…values)`; false for no value.
fn push_in<T>(q: &mut QueryBuilder<Sqlite>, column: &str, values: impl IntoIterator<Item = T>)
where
    T: for<'t> sqlx::Encode<'t, Sqlite> + sqlx::Type<Sqlite>,
{
    let mut values = values.into_iter().peekable();
    if values.peek().is_none() {
        q.push("0");
        return;
    }
    q.push(column).push(" IN (");
    let mut list = q.separated(", ");
    for value in values {
        list.push_bind(value);
    }
    q.push(")");
}

/// `conditions` joined by `operator`, in parentheses.
fn push_joined(q: &mut QueryBuilder<Sqlite>, conditions: &[Readable], operator: &str) {
    q.push("(");
    for (i, condition) in conditions.iter().enumerate() {
        if i > 0 {
            q.push(operator);
        }
        push_readable(q, condition);
    }
    q.push(")");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_access_parses_pairs() {
        assert_eq!(parse_job_access("").unwrap(), Vec::new());
        assert_eq!(
            parse_job_access("3:read,12:admin").unwrap(),
            vec![(RepoId(3), Role::Read), (RepoId(12), Role::Admin)]
        );
        assert!(parse_job_access("3").is_err());
        assert!(parse_job_access("x:read").is_err());
    }

    /// What a listing's queries look like for an owner (everything) and for an organization
    /// member with a classic token (every kind of condition a classic token makes).
    fn listings() -> Vec<String> {
        let member = Readable::any_of(vec![
            Readable::Visibility(Visibility::Public),
            Readable::Visibility(Visibility::Internal),
            Readable::InheritsFrom(vec![Visibility::Public, Visibility::Internal]),
            Readable::RepoRole {
                user: AccountId(2),
                repo_visibilities: vec![Visibility::Public],
            },
            Readable::PackageRole(AccountId(2)),
            Readable::all_of(vec![
                Readable::Named(vec!["acme/app".into()]),
                Readable::LinkedTo(vec![RepoId(3)]),
                Readable::JobAccess(RepoId(3)),
            ]),
        ]);
        let mut sqls = Vec::new();
        for readable in [Readable::Everything, member] {
            let filters = [
                PackageFilter::default(),
                PackageFilter {
                    visibility: Some(Visibility::Private),
                    name_contains: None,
                },
                PackageFilter {
                    visibility: None,
                    name_contains: Some("app".into()),
                },
            ];
            for filter in &filters {
                let mut count = QueryBuilder::<Sqlite>::new("SELECT count(*)");
                push_listing(&mut count, AccountId(1), &readable, filter);
                sqls.push(count.into_string());
                let mut page = QueryBuilder::<Sqlite>::new("SELECT p.id, p.name");
                push_listing(&mut page, AccountId(1), &readable, filter);
                page.push(" ORDER BY p.name LIMIT 100 OFFSET 4900");
                sqls.push(page.into_string());
            }
        }
        sqls
    }

    #[tokio::test]
    async fn listings_walk_the_owners_packages_in_name_order() {
        for sql in listings() {
            let plan = crate::access::query_plan(&sql).await;
            assert!(
                plan.iter()
                    .any(|step| step.contains("USING INDEX packages_by_owner (owner_id=?)")),
                "{sql}: {plan:?}"
            );
            assert!(
                !plan.iter().any(|step| step.contains("TEMP B-TREE")),
                "no sort: {sql}: {plan:?}"
            );
            assert_eq!(
                crate::access::full_scans(&sql).await,
                Vec::<String>::new(),
                "{sql}"
            );
        }
    }

    #[tokio::test]
    async fn the_target_queries_only_probe_indexes() {
        assert_eq!(
            crate::access::full_scans(TARGET).await,
            Vec::<String>::new(),
            "{TARGET}"
        );
    }
}
