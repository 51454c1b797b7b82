//! S3 refusing or out of reach at startup: `berth serve` stops, naming the setting to fix and
//! never the secret. (A Garage node stopped under running nodes: `cluster.rs`.)

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_testkit::services::s3_service;

/// `berth serve` over a fresh data directory with `env`, which must exit within a minute; its
/// success and stderr.
fn serve_exits(env: &[(&str, &str)]) -> (bool, String) {
    let data = tempfile::tempdir().unwrap();
    let stderr = data.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path().join("data"))
        .env("BERTH_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("start berth");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "berth serve with {env:?} was still running after a minute: {}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.success(), std::fs::read_to_string(&stderr).unwrap())
}

#[test]
fn wrong_s3_credentials_or_an_unreachable_endpoint_stop_the_start_naming_the_setting() {
    let s3 = s3_service();
    let store = format!(
        "s3://{}/startup-{}",
        s3.bucket,
        uuid::Uuid::new_v4().simple()
    );
    let wrong = "not-the-secret-0123456789";
    // A port nothing listens on.
    let away = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port())
    };
    for (endpoint, key, secret, setting) in [
        (
            s3.endpoint.as_str(),
            s3.key_id.as_str(),
            wrong,
            "s3_secret_access_key",
        ),
        (
            s3.endpoint.as_str(),
            "GK000000000000000000000000",
            s3.secret.as_str(),
            "s3_access_key_id",
        ),
        (
            away.as_str(),
            s3.key_id.as_str(),
            s3.secret.as_str(),
            "s3_endpoint",
        ),
    ] {
        let (ok, stderr) = serve_exits(&[
            ("BERTH_BLOB_STORE", store.as_str()),
            ("BERTH_S3_ENDPOINT", endpoint),
            ("BERTH_S3_REGION", s3.region.as_str()),
            ("BERTH_S3_ACCESS_KEY_ID", key),
            ("BERTH_S3_SECRET_ACCESS_KEY", secret),
        ]);
        assert!(!ok, "{setting}: berth serve must not start");
        assert!(stderr.contains(setting), "names {setting}: {stderr}");
        assert!(
            !stderr.contains(secret),
            "{setting}: the secret stays out of the error: {stderr}"
        );
    }
    // Upload memory under one part (8 MiB) would leave every upload waiting.
    let (ok, stderr) = serve_exits(&[
        ("BERTH_BLOB_STORE", store.as_str()),
        ("BERTH_S3_ENDPOINT", s3.endpoint.as_str()),
        ("BERTH_S3_REGION", s3.region.as_str()),
        ("BERTH_S3_ACCESS_KEY_ID", s3.key_id.as_str()),
        ("BERTH_S3_SECRET_ACCESS_KEY", s3.secret.as_str()),
        ("BERTH_S3_UPLOAD_MEMORY_MIB", "4"),
    ]);
    assert!(
        !ok,
        "berth serve must not start with 4 MiB of upload memory"
    );
    assert!(stderr.contains("s3_upload_memory_mib"), "{stderr}");
}
