//! The servers the test command starts once per run (`scripts/services start`, called by
//! `scripts/test`) and every test process shares: each test takes a fresh database of its own
//! on them, so tests never see each other's rows.
//!
//! A run makes hundreds of databases, about 8 MiB each, and a full disk fails a run. No test
//! drops its own (tests end by panicking as well as by returning, and servers restart on the
//! same database), so a database's name carries the id of the process that made it, and
//! making one drops those whose process has ended ([`postgres_database`]).

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

/// Creates a new, empty database on the test cluster and returns its URL. First drops the
/// databases of test processes that have ended.
pub async fn postgres_database() -> String {
    let admin = postgres_url();
    let name = format!(
        "berth_{}_{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test PostgreSQL at {admin}: {e}"));
    drop_ended(&mut conn).await;
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

/// Drops the test databases whose maker has ended. A process id the system reuses only keeps
/// a database longer: a database is dropped only when no process has its maker's id.
async fn drop_ended(conn: &mut sqlx::PgConnection) {
    let names: Vec<String> =
        match sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'berth\\_%'")
            .fetch_all(&mut *conn)
            .await
        {
            Ok(names) => names,
            Err(_) => return,
        };
    for name in names {
        let Some(pid) = maker(&name) else { continue };
        if process_runs(pid) {
            continue;
        }
        // Another test may be dropping it at the same moment: its error is not this test's.
        // The name matched `maker`'s pattern: digits, underscores and hex only.
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut *conn)
        .await;
    }
}

/// The id of the process that made the test database `name` (`berth_<pid>_<32 hex>`), or
/// `None` when the name is not one [`postgres_database`] makes.
fn maker(name: &str) -> Option<u32> {
    let (pid, id) = name.strip_prefix("berth_")?.split_once('_')?;
    let hex = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let digits = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    if hex && digits {
        pid.parse().ok()
    } else {
        None
    }
}

/// Whether a process with this id exists. Where that cannot be told (no `/proc`), every
/// process is taken to run, and nothing is dropped.
fn process_runs(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maker_reads_only_the_names_postgres_database_makes() {
        let id = uuid::Uuid::new_v4().simple().to_string();
        assert_eq!(maker(&format!("berth_4242_{id}")), Some(4242));
        assert_eq!(maker(&format!("berth__{id}")), None);
        assert_eq!(maker(&format!("berth_42x_{id}")), None);
        assert_eq!(maker("berth_4242_short"), None);
        assert_eq!(maker(&format!("bench_4242_{id}")), None);
        // What the previous harness made (`berth_<32 hex>`): not swept.
        assert_eq!(maker(&format!("berth_{id}")), None);
    }

    /// The id of a process that has ended (and been reaped).
    fn ended_process() -> u32 {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        child.wait().expect("wait for true");
        child.id()
    }

    #[test]
    fn a_running_process_is_seen_and_an_ended_one_is_not() {
        assert!(process_runs(std::process::id()));
        assert!(!process_runs(ended_process()));
    }

    #[tokio::test]
    async fn making_a_database_drops_those_of_ended_processes_only() {
        let admin = postgres_url();
        let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect");
        let id = || uuid::Uuid::new_v4().simple().to_string();
        let ended = format!("berth_{}_{}", ended_process(), id());
        let running = format!("berth_{}_{}", std::process::id(), id());
        for name in [&ended, &running] {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create");
        }
        let mine = postgres_database().await;
        let exists = |name: String| {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            )
            .bind(name)
        };
        assert!(
            !exists(ended.clone()).fetch_one(&mut conn).await.unwrap(),
            "{ended} stays"
        );
        assert!(exists(running.clone()).fetch_one(&mut conn).await.unwrap());
        let made = mine.rsplit_once('/').unwrap().1.to_owned();
        assert!(exists(made).fetch_one(&mut conn).await.unwrap());
    }
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
