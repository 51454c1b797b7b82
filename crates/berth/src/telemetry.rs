//! Logs and metrics of `berth serve`: the log subscriber (text or JSON, filtered by the `log`
//! setting), the Prometheus recorder behind `/metrics`, and a tracing layer that times the
//! stores' port methods.
//!
//! The store timing reads the `#[instrument]` spans the metadata and blob stores already
//! have, through its own per-layer filter: it times them whatever the log filter says, and
//! the log filter never makes them printed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use berth_http::observe::Exposition;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use std::io::{BufWriter, Write as _};
use std::sync::{Mutex, MutexGuard, PoisonError};
use tracing::span;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{Config, LogFormat};

/// A store port method's duration, by `store` and `operation` (the method's name).
const STORE_DURATION: &str = "berth_store_operation_duration_seconds";

/// Installs the log subscriber for `config` (`log` filter, `log_format`). Lines are written
/// into one buffer in memory that goes to stderr when it fills and at least every
/// [`FLUSH_EVERY`]: the request log writes a line per request, and a `write` per line, or a
/// hand-off to a writer thread woken per line (tracing-appender), cost manifest GETs 5–20 %
/// of their rate. Keep the returned guard until exit: dropping it writes what is buffered.
pub fn init_logs(config: &Config) -> anyhow::Result<LogGuard> {
    let filter = EnvFilter::try_new(&config.log).context("invalid log filter")?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let writer = BufferedStderr::start(config.log_format);
    let guard = LogGuard(writer.clone());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi && config.log_format == LogFormat::Text);
    let logs = match config.log_format {
        LogFormat::Text => fmt.with_filter(filter).boxed(),
        LogFormat::Json => fmt.json().with_filter(filter).boxed(),
    };
    let stores = Targets::new()
        .with_target("berth_meta_sqlite", tracing::Level::TRACE)
        .with_target("berth_blob", tracing::Level::TRACE);
    let timings = config
        .metrics_store_timings
        .then(|| StoreTimings.with_filter(stores));
    tracing_subscriber::registry()
        .with(logs)
        .with(timings)
        .try_init()
        .context("installing the log subscriber")?;
    Ok(guard)
}

/// The longest a log line waits in the buffer before it is written.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Bytes of log lines buffered at most; a line that does not fit makes its writer write the
/// buffer out first (so a stalled stderr slows logging, and no line is lost).
const LOG_BUFFER: usize = 256 * 1024;

/// Log lines on their way to stderr: a buffer shared by every thread, each line appended
/// under a lock held for a copy, written out when full and by a thread every
/// [`FLUSH_EVERY`]. A line written from a request's task gets the request's id (see
/// [`berth_http::observe::with_request_id`]).
#[derive(Clone)]
struct BufferedStderr {
    buffer: Arc<Mutex<BufWriter<std::io::Stderr>>>,
    format: LogFormat,
}

impl BufferedStderr {
    fn start(format: LogFormat) -> Self {
        let writer = BufferedStderr {
            buffer: Arc::new(Mutex::new(BufWriter::with_capacity(
                LOG_BUFFER,
                std::io::stderr(),
            ))),
            format,
        };
        let flusher = Arc::downgrade(&writer.buffer);
        std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(move || {
                while let Some(buffer) = flusher.upgrade() {
                    drop(buffer);
                    std::thread::sleep(FLUSH_EVERY);
                    if let Some(buffer) = flusher.upgrade() {
                        let _ = lock(&buffer).flush();
                    }
                }
            })
            .ok();
        writer
    }
}

fn lock(buffer: &Mutex<BufWriter<std::io::Stderr>>) -> MutexGuard<'_, BufWriter<std::io::Stderr>> {
    buffer.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<'a> MakeWriter<'a> for BufferedStderr {
    type Writer = Locked<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Locked {
            buffer: lock(&self.buffer),
            format: self.format,
        }
    }
}

/// The log buffer, locked while one line is appended.
struct Locked<'a> {
    buffer: MutexGuard<'a, BufWriter<std::io::Stderr>>,
    format: LogFormat,
}

impl std::io::Write for Locked<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.write_all(bytes)?;
        Ok(bytes.len())
    }

    /// Appends one formatted line (the fmt layer writes each in one call), with the id of the
    /// request being handled added as a field.
    fn write_all(&mut self, line: &[u8]) -> std::io::Result<()> {
        let format = self.format;
        let buffer = &mut *self.buffer;
        berth_http::observe::with_request_id(|id| write_with_request_id(buffer, format, line, id))
            .unwrap_or_else(|| buffer.write_all(line))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // Lines are written by the buffer's own schedule, not one by one.
        Ok(())
    }
}

/// Writes `line` with `request_id` added: in JSON as the first of its `fields` (or of the
/// object), in text as the last field.
fn write_with_request_id(
    out: &mut impl std::io::Write,
    format: LogFormat,
    line: &[u8],
    id: &[u8],
) -> std::io::Result<()> {
    match format {
        LogFormat::Json => {
            const FIELDS: &[u8] = b"\"fields\":{";
            let at = line
                .windows(FIELDS.len())
                .position(|w| w == FIELDS)
                .map(|at| at + FIELDS.len())
                .or_else(|| line.first().is_some_and(|b| *b == b'{').then_some(1));
            let Some(at) = at else {
                return out.write_all(line);
            };
            let rest = &line[at..];
            let separator: &[u8] = if rest.first() == Some(&b'}') {
                b""
            } else {
                b","
            };
            out.write_all(&line[..at])?;
            out.write_all(b"\"request_id\":\"")?;
            // Sane ids only ([A-Za-z0-9._-]): nothing to escape.
            out.write_all(id)?;
            out.write_all(b"\"")?;
            out.write_all(separator)?;
            out.write_all(rest)
        }
        LogFormat::Text => {
            let body = line.strip_suffix(b"\n").unwrap_or(line);
            out.write_all(body)?;
            out.write_all(b" request_id=")?;
            out.write_all(id)?;
            out.write_all(b"\n")
        }
    }
}

/// Writes the buffered log lines when dropped (at exit).
pub struct LogGuard(BufferedStderr);

impl Drop for LogGuard {
    fn drop(&mut self) {
        let _ = lock(&self.0.buffer).flush();
    }
}

/// Installs the Prometheus recorder and returns what `/metrics` serves. Histograms get
/// buckets from 0.5 ms to 60 s; a task drains their samples every few seconds so memory
/// stays bounded between scrapes.
pub fn install_metrics(config: &Config) -> anyhow::Result<Arc<Exposition>> {
    const BUCKETS: &[f64] = &[
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        60.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)?
        .install_recorder()
        .context("installing the metrics recorder")?;
    describe();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(5));
        loop {
            ticks.tick().await;
            upkeep.run_upkeep();
        }
    });
    let token = config.metrics_token.as_ref().map(|t| t.0.as_str());
    Ok(Arc::new(Exposition::new(
        Box::new(move || handle.render()),
        token,
    )))
}

/// The help text of every metric (series appear once first recorded).
fn describe() {
    use berth_http::observe::{DURATION, RECEIVED, REFUSALS, REQUESTS, SENT};
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        REQUESTS,
        "Requests answered, by endpoint name, method and status class."
    );
    describe_histogram!(
        DURATION,
        Unit::Seconds,
        "Time from a request's arrival to the end of its response body."
    );
    describe_counter!(RECEIVED, Unit::Bytes, "Request body bytes received.");
    describe_counter!(SENT, Unit::Bytes, "Response body bytes sent.");
    describe_counter!(REFUSALS, "Requests refused by a rate limit, by limit.");
    describe_gauge!(
        "berth_uploads_in_progress",
        "Request bodies being streamed into uploads right now."
    );
    describe_gauge!(
        "berth_webhook_queue_depth",
        "Webhook deliveries waiting to be delivered (counted every few seconds)."
    );
    describe_counter!(
        "berth_store_errors_total",
        "Metadata and blob store operations that failed, by kind (not_found, conflict, lease_lost, unavailable, collecting, other)."
    );
    describe_gauge!(
        "berth_webhook_deliveries_in_flight",
        "Webhook delivery attempts claimed and not yet finished."
    );
    describe_counter!(
        "berth_webhook_attempts_total",
        "Webhook delivery attempts, by outcome (delivered, retry, failed)."
    );
    describe_counter!(
        "berth_access_cache_lookups_total",
        "Access cache lookups (credentials and package targets), by result (hit, miss)."
    );
    describe_counter!(
        "berth_gc_passes_total",
        "Garbage-collection passes completed."
    );
    describe_counter!(
        "berth_gc_links_removed_total",
        "Repository links to blobs no manifest of the repository used, removed by garbage collection."
    );
    describe_counter!(
        "berth_gc_blobs_deleted_total",
        "Blobs whose bytes garbage collection deleted."
    );
    describe_counter!(
        "berth_gc_bytes_reclaimed_total",
        Unit::Bytes,
        "Bytes of the blobs garbage collection deleted."
    );
    describe_histogram!(
        "berth_gc_pass_duration_seconds",
        Unit::Seconds,
        "Duration of each garbage-collection pass."
    );
    describe_gauge!(
        "berth_gc_unreferenced_bytes",
        Unit::Bytes,
        "Bytes of the blobs referenced by nothing after the last pass (waiting out the grace period)."
    );
    describe_histogram!(
        STORE_DURATION,
        Unit::Seconds,
        "Duration of metadata and blob store port methods, by store and operation."
    );
}

/// Times spans (see the module documentation) from creation to close.
struct StoreTimings;

/// When a timed span was created.
struct Started(Instant);

impl<S> Layer<S> for StoreTimings
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, _: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Started(Instant::now()));
        }
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(started) = span.extensions().get::<Started>().map(|s| s.0) else {
            return;
        };
        let store = if span.metadata().target().starts_with("berth_blob") {
            "blob"
        } else {
            "metadata"
        };
        metrics::histogram!(STORE_DURATION, "store" => store, "operation" => span.name())
            .record(started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spliced(format: LogFormat, line: &str) -> String {
        let mut out = Vec::new();
        write_with_request_id(&mut out, format, line.as_bytes(), b"req-1").unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_request_id_joins_each_lines_fields() {
        assert_eq!(
            spliced(
                LogFormat::Json,
                "{\"level\":\"INFO\",\"fields\":{\"message\":\"hi\"},\"target\":\"t\"}\n"
            ),
            "{\"level\":\"INFO\",\"fields\":{\"request_id\":\"req-1\",\"message\":\"hi\"},\"target\":\"t\"}\n"
        );
        assert_eq!(
            spliced(LogFormat::Json, "{\"fields\":{}}\n"),
            "{\"fields\":{\"request_id\":\"req-1\"}}\n"
        );
        assert_eq!(
            spliced(LogFormat::Text, "2026 INFO t: hi a=1\n"),
            "2026 INFO t: hi a=1 request_id=req-1\n"
        );
        for line in [
            "{\"level\":\"INFO\",\"fields\":{\"message\":\"hi\"}}\n",
            "{\"fields\":{}}\n",
        ] {
            let value: serde_json::Value =
                serde_json::from_str(&spliced(LogFormat::Json, line)).unwrap();
            assert_eq!(value["fields"]["request_id"], "req-1");
        }
    }
}
