//! The servers the test command starts once per run (`scripts/services start`, called by
//! `scripts/test`) and every test process shares: each test takes a fresh database of its own
//! on them, so tests never see each other's rows and need no cleanup (the cluster goes when
//! the run ends).

use sqlx::Connection as _;

/// The variable `scripts/services start` sets to the URL of the test cluster's `postgres`
/// database.
pub const POSTGRES_VAR: &str = "TEST_POSTGRES";

/// The URL of the test PostgreSQL cluster's maintenance database. Panics, saying how to start
/// the services, when the test command did not start them.
pub fn postgres_url() -> String {
    std::env::var(POSTGRES_VAR).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_VAR} is not set: this test needs the test PostgreSQL server. Run the \
             tests with scripts/test, or start the services first: \
             eval \"$(scripts/services start)\" (and scripts/services stop afterwards)"
        )
    })
}

/// Creates a new, empty database on the test cluster and returns its URL.
pub async fn postgres_database() -> String {
    let admin = postgres_url();
    let name = format!("berth_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test PostgreSQL at {admin}: {e}"));
    // The name is made here from a UUID: nothing outside reaches this statement.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
    let _ = conn.close().await;
    let (base, _) = admin
        .rsplit_once('/')
        .expect("the test PostgreSQL URL names a database");
    format!("{base}/{name}")
}
