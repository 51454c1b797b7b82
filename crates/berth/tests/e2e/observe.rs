//! Observability: `/metrics` parsed as Prometheus text, its bearer token, `X-Request-Id`, and
//! the JSON request log.

use std::time::Duration;

use prometheus_parse::{Sample, Scrape, Value};

use crate::common::{
    Server, anonymous_client, client, digest, fs_only, header, location_url, push_blob, push_image,
    server_log, start_upload,
};

const REPO: &str = "acme/observed";

/// `/metrics` of `server`, parsed (fetched with `http`).
async fn scrape_with(server: &Server, http: &reqwest::Client) -> Vec<Sample> {
    let response = http
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("metrics text");
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("the exposition parses")
        .samples
}

async fn scrape(server: &Server) -> Vec<Sample> {
    scrape_with(server, &anonymous_client()).await
}

/// `berth_http_requests_total` for `endpoint`, `method` and status class `2xx` (0 if absent).
fn requests(samples: &[Sample], endpoint: &str, method: &str) -> f64 {
    samples
        .iter()
        .filter(|s| s.metric == "berth_http_requests_total")
        .filter(|s| {
            s.labels.get("endpoint") == Some(endpoint)
                && s.labels.get("method") == Some(method)
                && s.labels.get("status") == Some("2xx")
        })
        .map(|s| match s.value {
            Value::Counter(v) | Value::Untyped(v) => v,
            _ => panic!("{} is not a counter", s.metric),
        })
        .sum()
}

/// The first JSON line of the servers' logs that `matches`, waiting up to 2 s for it (log
/// lines are written at least every 100 ms).
async fn json_log_line(matches: impl Fn(&serde_json::Value) -> bool) -> Option<serde_json::Value> {
    for _ in 0..40 {
        let found = server_log()
            .into_iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
            .find(|v| matches(v));
        if found.is_some() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// A chunked upload of `bytes` (POST, PATCH, PUT), returning the digest.
async fn chunked_upload(server: &Server, bytes: &[u8]) -> String {
    let location = start_upload(server, REPO).await;
    let patched = client()
        .patch(&location)
        .header("content-type", "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), 202);
    let d = digest(bytes);
    let url = location_url(
        server,
        &header(&patched, "location"),
        Some(&format!("digest={d}")),
    );
    let put = client().put(url).send().await.expect("put");
    assert_eq!(put.status(), 201);
    d
}

#[tokio::test]
async fn a_push_and_a_pull_move_the_counters_of_their_endpoints_exactly() {
    let server = Server::start_with(&[("BERTH_METRICS_STORE_TIMINGS", "true")]);
    let before = scrape(&server).await;
    // Push: two monolithic blob POSTs and a manifest PUT, then one chunked upload.
    let (manifest, _) = push_image(&server, REPO, "v1", b"a layer").await;
    let blob = chunked_upload(&server, b"chunked bytes").await;
    // Pull: a manifest GET and a blob GET.
    let http = client();
    let got = http
        .get(server.url(&format!("/v2/{REPO}/manifests/v1")))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .expect("manifest get");
    assert_eq!(got.status(), 200);
    assert_eq!(digest(&got.bytes().await.expect("manifest")), manifest);
    let got = http
        .get(server.url(&format!("/v2/{REPO}/blobs/{blob}")))
        .send()
        .await
        .expect("blob get");
    assert_eq!(got.status(), 200);
    assert_eq!(&got.bytes().await.expect("blob")[..], b"chunked bytes");

    let expected = [
        ("upload_start", "POST", 3.0),
        ("upload_patch", "PATCH", 1.0),
        ("upload_put", "PUT", 1.0),
        ("manifest_put", "PUT", 1.0),
        ("manifest_get", "GET", 1.0),
        ("blob_get", "GET", 1.0),
    ];
    // A response is counted as its last bytes leave; give a slow server a moment.
    let mut after = scrape(&server).await;
    for _ in 0..20 {
        if expected
            .iter()
            .all(|(e, m, n)| requests(&after, e, m) - requests(&before, e, m) >= *n)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = scrape(&server).await;
    }
    for (endpoint, method, n) in expected {
        assert_eq!(
            requests(&after, endpoint, method) - requests(&before, endpoint, method),
            n,
            "{method} {endpoint}"
        );
    }

    // The latency histogram has buckets, and counted the blob GET.
    let histogram = after
        .iter()
        .find(|s| {
            s.metric == "berth_http_request_duration_seconds"
                && s.labels.get("endpoint") == Some("blob_get")
        })
        .expect("a latency histogram for blob_get");
    match &histogram.value {
        Value::Histogram(buckets) => {
            assert!(buckets.len() >= 10, "buckets: {buckets:?}");
            assert!(
                buckets
                    .iter()
                    .any(|b| b.less_than.is_infinite() && b.count >= 1.0)
            );
        }
        other => panic!("not a histogram: {other:?}"),
    }
    // Body bytes: the blob GET sent its 13 bytes, the PATCH received them.
    let bytes = |metric: &str, endpoint: &str| {
        after
            .iter()
            .find(|s| s.metric == metric && s.labels.get("endpoint") == Some(endpoint))
            .map(|s| match s.value {
                Value::Counter(v) | Value::Untyped(v) => v,
                _ => 0.0,
            })
            .unwrap_or(0.0)
    };
    assert!(bytes("berth_http_sent_bytes_total", "blob_get") >= 13.0);
    assert!(bytes("berth_http_received_bytes_total", "upload_patch") >= 13.0);
    // The stores are timed (when asked to).
    assert!(
        after
            .iter()
            .any(|s| s.metric == "berth_store_operation_duration_seconds"),
        "no store timings"
    );

    // No label carries the repository, a path of it, or the admin's token.
    for sample in &after {
        for (name, value) in sample.labels.iter() {
            assert!(
                !value.contains("observed") && !value.contains(&server.admin_token),
                "{}{{{name}={value}}}",
                sample.metric
            );
        }
    }
}

#[tokio::test]
async fn the_metrics_token_guards_the_metrics() {
    let token = "metrics-s3cret-token";
    let server = Server::start_with(&[("BERTH_METRICS_TOKEN", token)]);
    let anonymous = anonymous_client()
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(anonymous.status(), 401);
    let wrong = anonymous_client()
        .get(server.url("/metrics"))
        .bearer_auth("not-it")
        .send()
        .await
        .expect("metrics");
    assert_eq!(wrong.status(), 401);
    // The admin's registry credential is no metrics token either.
    let admin = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(admin.status(), 401);
    let samples = scrape_with(
        &server,
        &reqwest::Client::builder()
            .default_headers(
                [(
                    reqwest::header::AUTHORIZATION,
                    format!("Bearer {token}").parse().expect("header"),
                )]
                .into_iter()
                .collect(),
            )
            .build()
            .expect("client"),
    )
    .await;
    assert!(
        samples
            .iter()
            .any(|s| s.metric == "berth_http_requests_total")
    );
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let server = Server::start();
    let http = client();
    let sent = http
        .get(server.url("/v2/"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .expect("ping");
    assert_eq!(header(&sent, "x-request-id"), "abc-123");
    let generated = http.get(server.url("/v2/")).send().await.expect("ping");
    let id = header(&generated, "x-request-id");
    assert_eq!(id.len(), 32, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    // An insane one is replaced, not echoed.
    let insane = http
        .get(server.url("/v2/"))
        .header("x-request-id", "a/b c")
        .send()
        .await
        .expect("ping");
    assert_ne!(header(&insane, "x-request-id"), "a/b c");
    // Paths outside every route carry one too.
    let lost = http.get(server.url("/nowhere")).send().await.expect("404");
    assert_eq!(lost.status(), 404);
    assert_eq!(header(&lost, "x-request-id").len(), 32);
}

#[tokio::test]
async fn json_request_logs_have_one_line_per_request_and_no_secret() {
    let server = Server::start_with(&[
        ("BERTH_LOG_FORMAT", "json"),
        ("BERTH_LOG", "warn,berth::request=info"),
    ]);
    let http = client();
    let (_, _) = push_image(&server, REPO, "v1", b"logged layer").await;
    let got = http
        .get(server.url(&format!("/v2/{REPO}/manifests/v1")))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .header("x-request-id", "pull-42")
        .send()
        .await
        .expect("manifest get");
    assert_eq!(got.status(), 200);
    got.bytes().await.expect("manifest");

    let line = json_log_line(|v| v["fields"]["request_id"] == "pull-42")
        .await
        .expect("a JSON log line for the request");
    assert_eq!(line["target"], "berth::request");
    assert_eq!(line["level"], "INFO");
    let fields = &line["fields"];
    assert_eq!(fields["method"], "GET");
    assert_eq!(fields["endpoint"], "manifest_get");
    assert_eq!(fields["repository"], REPO);
    assert_eq!(fields["status"], 200);
    assert_eq!(fields["principal_kind"], "classic_token");
    assert!(fields["principal_id"].is_i64(), "{fields}");
    assert!(fields["duration_ms"].is_f64(), "{fields}");
    assert!(
        fields["bytes_out"].as_u64().is_some_and(|n| n > 0),
        "{fields}"
    );
    assert_eq!(fields["bytes_in"], 0);
    assert!(
        fields["client"]
            .as_str()
            .is_some_and(|c| c.starts_with("127.0.0.1:"))
    );

    // One line per request: the push was 3 requests, the pull 1.
    let log = server_log();
    let requests: Vec<serde_json::Value> = log
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "berth::request")
        .collect();
    assert_eq!(requests.len(), 4, "{requests:#?}");
    let mut ids: Vec<&str> = requests
        .iter()
        .filter_map(|v| v["fields"]["request_id"].as_str())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 4, "each request has its own id");
    // Every line of the log is JSON, and none carries the token.
    for line in &log {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line}"
        );
        assert!(
            !line.contains(&server.admin_token),
            "the token leaked: {line}"
        );
    }
}

#[tokio::test]
async fn every_log_line_of_a_request_carries_its_id() {
    let server = Server::start_with(&[
        ("BERTH_LOG_FORMAT", "json"),
        ("BERTH_LOG", "warn,berth::request=info,berth_core=debug"),
    ]);
    let repo = "acme/traced";
    let config = push_blob(&server, repo, b"{}".to_vec()).await;
    // A source label naming no repository Berth knows: the push logs that it ignored it.
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": [],
        "annotations": {"org.opencontainers.image.source": "https://github.com/nobody/nowhere"}
    });
    let put = client()
        .put(server.url(&format!("/v2/{repo}/manifests/v1")))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .header("x-request-id", "push-7")
        .body(manifest.to_string())
        .send()
        .await
        .expect("manifest put");
    assert_eq!(put.status(), 201);

    let inner = json_log_line(|v| v["fields"]["message"] == "source label ignored")
        .await
        .expect("the handler's own log line");
    assert_eq!(
        inner["fields"]["request_id"], "push-7",
        "the line names its request: {inner}"
    );
}

#[tokio::test]
async fn metrics_off_serve_no_metrics_and_requests_still_work() {
    let server = Server::start_with(&[("BERTH_METRICS", "false")]);
    let metrics = anonymous_client()
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), 404);
    let ping = client().get(server.url("/v2/")).send().await.expect("ping");
    assert_eq!(ping.status(), 200);
    assert_eq!(header(&ping, "x-request-id").len(), 32);
}

#[tokio::test(flavor = "multi_thread")]
async fn store_failures_and_the_webhook_queue_are_in_the_metrics() {
    fs_only!(
        "an S3 store's blob area is the bucket every test shares: no test can break it for one server"
    );
    let server = Server::start();
    let errors = |samples: &[Sample]| -> f64 {
        samples
            .iter()
            .filter(|s| s.metric == "berth_store_errors_total")
            .map(|s| match s.value {
                Value::Counter(v) | Value::Untyped(v) => v,
                _ => panic!("{} is not a counter", s.metric),
            })
            .sum()
    };
    let queue_empty = |samples: &[Sample]| {
        samples.iter().any(|s| {
            s.metric == "berth_webhook_queue_depth"
                && matches!(s.value, Value::Gauge(v) if v == 0.0)
        })
    };
    let mut before = scrape(&server).await;
    for _ in 0..40 {
        if queue_empty(&before) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        before = scrape(&server).await;
    }
    assert!(
        queue_empty(&before),
        "the queue's depth is a gauge, empty at start"
    );
    let failed_before = errors(&before);
    server.blobs().break_blob_area().await;
    let ready = anonymous_client()
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 503);
    server.blobs().mend_blob_area().await;
    let after = scrape(&server).await;
    assert!(
        errors(&after) > failed_before,
        "the failed blob store probe is counted"
    );
}
