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

/// The test Garage cluster's S3 API, as `scripts/services start garage` announces it: one
/// bucket shared by every test (each test keeps to a key prefix of its own).
#[derive(Debug, Clone)]
pub struct S3Service {
    /// `http://127.0.0.1:PORT` of the first node's S3 API.
    pub endpoint: String,
    /// The S3 region (`garage`).
    pub region: String,
    /// The bucket.
    pub bucket: String,
    /// The access key id.
    pub key_id: String,
    /// The secret key.
    pub secret: String,
    /// The nodes' configuration files, for tests that stop one.
    pub garage_configs: Vec<String>,
}

/// The test Garage cluster. Panics, saying how to start the services, when the test command
/// did not start it.
pub fn s3_service() -> S3Service {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: this test needs the test Garage cluster. Run the tests \
                 with scripts/test, or start the services first: \
                 eval \"$(scripts/services start postgres garage)\" (and scripts/services \
                 stop afterwards)"
            )
        })
    };
    S3Service {
        endpoint: var("TEST_S3_ENDPOINT"),
        region: var("TEST_S3_REGION"),
        bucket: var("TEST_S3_BUCKET"),
        key_id: var("TEST_S3_KEY_ID"),
        secret: var("TEST_S3_SECRET"),
        garage_configs: var("TEST_GARAGE_CONFIGS")
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    }
}
