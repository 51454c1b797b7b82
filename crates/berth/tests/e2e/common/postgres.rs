//! A PostgreSQL server of a test's own, for the tests that stop and start it (the run's
//! shared server, `TEST_POSTGRES`, must stay up for every other test). Made like
//! `scripts/services` makes the shared one: `initdb` into a temporary directory, run as the
//! unprivileged `postgres` user when the tests run as root, on a free loopback port.

use std::path::PathBuf;
use std::process::Command;

/// A private PostgreSQL cluster, stopped and removed on drop.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    port: u16,
}

/// Where Debian's PostgreSQL 15 programs are (`TEST_PG_BIN` overrides).
fn bin(program: &str) -> PathBuf {
    let dir =
        std::env::var("TEST_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".to_owned());
    PathBuf::from(dir).join(program)
}

/// `program args…` as the cluster's owner; panics with its output when it fails.
fn as_owner(program: &str, args: &[&str]) {
    let root = running_as_root();
    let mut command = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin(program));
        c
    } else {
        Command::new(bin(program))
    };
    let output = command
        .args(args)
        .output()
        .expect("run a PostgreSQL program");
    assert!(
        output.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Whether this process runs as root (`id -u`).
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PrivatePostgres {
    /// A new cluster, started.
    pub fn start() -> PrivatePostgres {
        let dir = tempfile::tempdir().expect("temp dir");
        let _ = Command::new("chmod").arg("755").arg(dir.path()).status();
        if running_as_root() {
            let _ = Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status();
        }
        let data = dir.path().join("data");
        as_owner(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let cluster = PrivatePostgres { dir, port };
        cluster.start_again();
        cluster
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_str().unwrap().to_owned()
    }

    /// Stops it at once (`immediate`: as a crash would, connections cut).
    pub fn stop(&self) {
        as_owner(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    /// Starts it (again) on the same port.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        as_owner(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{} {} -D {} -m immediate stop >/dev/null 2>&1",
                if running_as_root() {
                    "runuser -u postgres --"
                } else {
                    ""
                },
                bin("pg_ctl").display(),
                self.data()
            ))
            .status();
    }
}
