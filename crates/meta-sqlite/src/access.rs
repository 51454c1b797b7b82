//! What the access model's tables share: the text each enumeration is stored as, the
//! detection of a taken name, and the constant-time comparison of secret hashes.
//!
//! The tables themselves are in `migrations/0002_access.sql`; their queries are in
//! `accounts` (accounts, organizations, teams, source repositories), `packages` (packages
//! and the per-request [`Target`](berth_core::access::Target)), `credentials` (tokens) and
//! `apps` (apps and their installations). `access_port` maps the
//! [`AccessStore`](berth_core::access::store::AccessStore) trait onto them.

use berth_core::access::store::Created;
use berth_core::access::{AccountKind, OrgRole, Role, Visibility};
use berth_core::error::StoreError;
use subtle::ConstantTimeEq as _;

/// SQL for a role column's rank: 1 read, 2 write, 3 admin (and NULL for no row), so roles can
/// be compared with `max` in a query. See [`role_from_rank`].
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

/// The outcome of an insert that may collide with a taken name: SQLite's own UNIQUE
/// constraint decides, so two concurrent creators cannot both win.
pub(crate) fn created<T: From<i64>>(
    result: Result<i64, sqlx::Error>,
    doing: impl FnOnce() -> String,
) -> Result<Created<T>, StoreError> {
    match result {
        Ok(id) => Ok(Created::New(T::from(id))),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(Created::Taken),
        Err(err) => Err(StoreError::new(doing(), err)),
    }
}

/// Inserts one `(parent, value)` row per value with `sql` (an `INSERT OR IGNORE … VALUES
/// (?1, ?2)`): the list tables of credentials and app installations.
pub(crate) async fn insert_list<T>(
    conn: &mut sqlx::SqliteConnection,
    sql: &'static str,
    parent: i64,
    values: impl IntoIterator<Item = T>,
    doing: &str,
) -> Result<(), StoreError>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + Send,
{
    for value in values {
        sqlx::query(sql)
            .bind(parent)
            .bind(value)
            .execute(&mut *conn)
            .await
            .map_err(|e| StoreError::new(doing.to_owned(), e))?;
    }
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

/// The steps of `sql`'s query plan that scan a table rather than probe an index (the
/// one-row anchor of a query aside), on a fresh database.
#[cfg(test)]
pub(crate) async fn full_scans(sql: &str) -> Vec<String> {
    query_plan(sql)
        .await
        .into_iter()
        .filter(|d| d.starts_with("SCAN ") && d != "SCAN CONSTANT ROW" && d != "SCAN anchor")
        .collect()
}

/// The steps of `sql`'s query plan on a fresh database (parameters unbound).
#[cfg(test)]
pub(crate) async fn query_plan(sql: &str) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = crate::SqliteMetadataStore::open(&dir.path().join("plan.db"))
        .await
        .expect("open");
    let steps: Vec<(i64, i64, i64, String)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
            .fetch_all(&mut *store.reader.conn().await.unwrap())
            .await
            .expect("query plan");
    steps.into_iter().map(|(_, _, _, detail)| detail).collect()
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

    #[tokio::test]
    async fn full_scans_are_noticed() {
        let scans = full_scans("SELECT id FROM credentials WHERE note = ?1").await;
        assert_eq!(scans.len(), 1, "{scans:?}");
    }

    #[test]
    fn hashes_compare_by_content_and_length() {
        assert!(same_hash(b"abc", b"abc"));
        assert!(!same_hash(b"abc", b"abd"));
        assert!(!same_hash(b"abc", b"ab"));
    }
}
