//! What the access model's tables share: the text each enumeration is stored as, the
//! outcome of an insert that may find its name taken, list inserts from one array parameter,
//! and the constant-time comparison of secret hashes.
//!
//! The tables themselves are in `migrations/0001_access.sql`; their queries are in
//! `accounts` (accounts, organizations, teams, source repositories), `packages` (packages
//! and the per-request [`Target`](berth_core::access::Target)), `credentials` (tokens) and
//! `apps` (apps and their installations), each implementing its trait of
//! [`AccessStore`](berth_core::access::store::AccessStore).

use berth_core::access::store::Created;
use berth_core::access::{AccountKind, OrgRole, Role, Visibility};
use berth_core::error::StoreError;
use sqlx::{PgConnection, Postgres};
use subtle::ConstantTimeEq as _;

use crate::store::failed;

/// SQL for a role column's rank: 1 read, 2 write, 3 admin (and NULL for no row), so roles can
/// be compared with `max` and `GREATEST` in a query. See [`role_from_rank`].
macro_rules! rank {
    ($column:literal) => {
        concat!(
            "CASE ",
            $column,
            " WHEN 'read' THEN 1 WHEN 'write' THEN 2 WHEN 'admin' THEN 3 END"
        )
    };
}
pub(crate) use rank;

/// The text a role is stored as.
pub(crate) fn role_text(role: Role) -> &'static str {
    match role {
        Role::Read => "read",
        Role::Write => "write",
        Role::Admin => "admin",
    }
}

/// A role read back from the database.
pub(crate) fn parse_role(text: &str) -> Result<Role, StoreError> {
    match text {
        "read" => Ok(Role::Read),
        "write" => Ok(Role::Write),
        "admin" => Ok(Role::Admin),
        other => Err(unexpected("role", other)),
    }
}

/// The role of a [`rank!`] computed in a query; 0 or NULL is no role.
pub(crate) fn role_from_rank(rank: Option<i64>) -> Result<Option<Role>, StoreError> {
    match rank.unwrap_or(0) {
        0 => Ok(None),
        1 => Ok(Some(Role::Read)),
        2 => Ok(Some(Role::Write)),
        3 => Ok(Some(Role::Admin)),
        other => Err(unexpected("role rank", &other.to_string())),
    }
}

/// The text of a token's or installation's permission: read or write, never admin (the
/// schema's CHECK constraints refuse it; this says so in words first).
pub(crate) fn permission_text(role: Role) -> Result<&'static str, StoreError> {
    match role {
        Role::Read | Role::Write => Ok(role_text(role)),
        Role::Admin => Err(StoreError::new(
            "storing a token permission",
            "tokens and app installations grant at most the write role on packages",
        )),
    }
}

/// The text a visibility is stored as.
pub(crate) fn visibility_text(visibility: Visibility) -> &'static str {
    match visibility {
        Visibility::Private => "private",
        Visibility::Internal => "internal",
        Visibility::Public => "public",
    }
}

/// A visibility read back from the database.
pub(crate) fn parse_visibility(text: &str) -> Result<Visibility, StoreError> {
    match text {
        "private" => Ok(Visibility::Private),
        "internal" => Ok(Visibility::Internal),
        "public" => Ok(Visibility::Public),
        other => Err(unexpected("visibility", other)),
    }
}

/// Visibilities as a comma-separated list (`''` for none).
pub(crate) fn visibilities_text(visibilities: &[Visibility]) -> String {
    visibilities
        .iter()
        .map(|v| visibility_text(*v))
        .collect::<Vec<_>>()
        .join(",")
}

/// A comma-separated list of visibilities read back from the database.
pub(crate) fn parse_visibilities(text: &str) -> Result<Vec<Visibility>, StoreError> {
    text.split(',')
        .filter(|v| !v.is_empty())
        .map(parse_visibility)
        .collect()
}

/// The text an organization role is stored as.
pub(crate) fn org_role_text(role: OrgRole) -> &'static str {
    match role {
        OrgRole::Member => "member",
        OrgRole::Owner => "owner",
    }
}

/// An organization role read back from the database.
pub(crate) fn parse_org_role(text: &str) -> Result<OrgRole, StoreError> {
    match text {
        "member" => Ok(OrgRole::Member),
        "owner" => Ok(OrgRole::Owner),
        other => Err(unexpected("organization role", other)),
    }
}

/// An account kind read back from the database.
pub(crate) fn parse_account_kind(text: &str) -> Result<AccountKind, StoreError> {
    match text {
        "user" => Ok(AccountKind::User),
        "organization" => Ok(AccountKind::Organization),
        other => Err(unexpected("account kind", other)),
    }
}

/// The outcome of an `INSERT … ON CONFLICT (unique key) DO NOTHING RETURNING id`: no row
/// means the name was taken. The unique index decides, so of two nodes creating one name at
/// once exactly one wins (the other waits for its commit, then finds the conflict); a unique
/// violation that still gets through (another constraint) is reported as taken too.
pub(crate) fn created<T: From<i64>>(
    result: Result<Option<i64>, sqlx::Error>,
    doing: impl FnOnce() -> String,
) -> Result<Created<T>, StoreError> {
    match result {
        Ok(Some(id)) => Ok(Created::New(T::from(id))),
        Ok(None) => Ok(Created::Taken),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(Created::Taken),
        Err(err) => Err(failed(doing())(err)),
    }
}

/// Inserts one `(parent, value)` row per element of `values` with `sql`, which takes the
/// parent as `$1` and the whole list as one array `$2` (`INSERT … SELECT $1, v FROM
/// unnest($2::…[]) … ON CONFLICT DO NOTHING`): the list tables of credentials and app
/// installations, in one statement whatever the list's length. Nothing to do for an empty
/// list.
pub(crate) async fn insert_list<T>(
    conn: &mut PgConnection,
    sql: &'static str,
    parent: i64,
    values: Vec<T>,
    doing: &str,
) -> Result<(), StoreError>
where
    Vec<T>: for<'q> sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + Send,
{
    if values.is_empty() {
        return Ok(());
    }
    sqlx::query(sql)
        .bind(parent)
        .bind(values)
        .execute(&mut *conn)
        .await
        .map_err(failed(doing.to_owned()))?;
    Ok(())
}

/// Whether a stored hash and a presented one are equal, in time that does not depend on
/// where they differ.
pub(crate) fn same_hash(stored: &[u8], presented: &[u8]) -> bool {
    stored.ct_eq(presented).into()
}

/// The error for a value the schema's CHECK constraints should have kept out.
pub(crate) fn unexpected(what: &str, text: &str) -> StoreError {
    StoreError::new(
        format!("reading a {what} from the database"),
        format!("unexpected {what} `{text}`"),
    )
}

/// A connection to a fresh, migrated database with sequential scans discouraged: what a
/// plan test asks for, so a plan that still scans a table shows no index can serve it.
#[cfg(test)]
pub(crate) async fn planning_connection() -> sqlx::PgConnection {
    use sqlx::Connection as _;
    let url = berth_testkit::services::postgres_database().await;
    let store = crate::PgMetadataStore::open(&url, crate::PgOptions::default())
        .await
        .expect("open");
    store.close().await;
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut conn)
        .await
        .expect("set");
    conn
}

/// The plan lines of `sql` (run with `binds` on a fresh database, sequential scans
/// discouraged) that scan a whole table rather than probe an index: none for a query every
/// lookup of which an index serves, however small the tables.
#[cfg(test)]
pub(crate) async fn seq_scans(
    sql: &str,
    bind: impl FnOnce(
        sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
) -> Vec<String> {
    use sqlx::Row as _;
    let mut conn = planning_connection().await;
    let explain = format!("EXPLAIN {sql}");
    let rows = bind(sqlx::query(sqlx::AssertSqlSafe(explain)))
        .fetch_all(&mut conn)
        .await
        .expect("plan");
    rows.iter()
        .map(|row| row.get::<String, _>(0))
        .filter(|line| line.contains("Seq Scan"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enumerations_round_trip_through_their_text() {
        for role in [Role::Read, Role::Write, Role::Admin] {
            assert_eq!(parse_role(role_text(role)).unwrap(), role);
        }
        for v in [
            Visibility::Private,
            Visibility::Internal,
            Visibility::Public,
        ] {
            assert_eq!(parse_visibility(visibility_text(v)).unwrap(), v);
        }
        for role in [OrgRole::Member, OrgRole::Owner] {
            assert_eq!(parse_org_role(org_role_text(role)).unwrap(), role);
        }
        assert!(parse_role("owner").is_err());
        assert!(permission_text(Role::Admin).is_err());
    }

    #[test]
    fn visibility_lists_allow_the_empty_list() {
        assert_eq!(visibilities_text(&[]), "");
        assert_eq!(parse_visibilities("").unwrap(), Vec::new());
        let both = [Visibility::Public, Visibility::Private];
        assert_eq!(visibilities_text(&both), "public,private");
        assert_eq!(parse_visibilities("public,private").unwrap(), both);
    }

    #[test]
    fn ranks_map_back_to_roles() {
        assert_eq!(role_from_rank(None).unwrap(), None);
        assert_eq!(role_from_rank(Some(0)).unwrap(), None);
        assert_eq!(role_from_rank(Some(2)).unwrap(), Some(Role::Write));
        assert_eq!(role_from_rank(Some(3)).unwrap(), Some(Role::Admin));
        assert!(role_from_rank(Some(4)).is_err());
        assert_eq!(
            rank!("x"),
            "CASE x WHEN 'read' THEN 1 WHEN 'write' THEN 2 WHEN 'admin' THEN 3 END"
        );
    }

    #[test]
    fn absent_rows_are_taken_names() {
        let new: Created<i64> = created(Ok(Some(7)), String::new).unwrap();
        assert_eq!(new, Created::New(7));
        let taken: Created<i64> = created(Ok(None), String::new).unwrap();
        assert_eq!(taken, Created::Taken);
        assert!(created::<i64>(Err(sqlx::Error::PoolClosed), String::new).is_err());
    }

    #[tokio::test]
    async fn seq_scans_are_noticed() {
        let sql = "SELECT id FROM credentials WHERE note = $1";
        let scans = seq_scans(sql, |q| q.bind("x")).await;
        assert_eq!(scans.len(), 1, "{scans:?}");
    }

    #[test]
    fn hashes_compare_by_content_and_length() {
        assert!(same_hash(b"abc", b"abc"));
        assert!(!same_hash(b"abc", b"abd"));
        assert!(!same_hash(b"abc", b"ab"));
    }
}
