//! Configuration: defaults, then `berth.toml`, then `BERTH_*` environment variables, then
//! command-line flags — each layer overriding the one before.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use berth_core::registry::UploadLimits;

use crate::stores::{BlobStoreUrl, DatabaseUrl};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};

/// Everything `berth serve` can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on (`BERTH_LISTEN`). Port 0 picks a free port; the chosen
    /// address is printed on stderr as `berth listening on http://<addr>`.
    pub listen: SocketAddr,
    /// Directory holding all state: `metadata.sqlite` and the blob store (`BERTH_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Where metadata lives (`BERTH_DATABASE_URL`): `sqlite:<path>`, or
    /// `postgres://user:password@host:port/database` for nodes sharing one PostgreSQL
    /// database. Default: `metadata.sqlite` in `data_dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_url: Option<DatabaseUrlSetting>,
    /// Connections a node keeps to PostgreSQL at most (`BERTH_DATABASE_POOL_SIZE`); ignored
    /// for SQLite.
    pub database_pool_size: u32,
    /// Where blobs live (`BERTH_BLOB_STORE`): `file:<directory>`, or `s3://<bucket>` (with
    /// an optional `/<key prefix>`) for an S3-compatible object store every node shares (see
    /// the `s3_*` settings). Default: `data_dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob_store: Option<String>,
    /// The S3 endpoint of an `s3://` blob store (`BERTH_S3_ENDPOINT`), e.g.
    /// `http://127.0.0.1:3900` for Garage. Unset: AWS S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_endpoint: Option<String>,
    /// The S3 region (`BERTH_S3_REGION`; Garage's is `garage`).
    pub s3_region: String,
    /// The S3 access key id (`BERTH_S3_ACCESS_KEY_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_access_key_id: Option<String>,
    /// The S3 secret access key (`BERTH_S3_SECRET_ACCESS_KEY`); never printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_secret_access_key: Option<Secret>,
    /// MiB of upload buffers a node on an S3 blob store holds at most, across every upload
    /// (`BERTH_S3_UPLOAD_MEMORY_MIB`; default 64, at least one 8 MiB part): the bytes of parts
    /// being filled or sent. A request waits for room, pushing back on its client, and
    /// answers 503 after 30 s without.
    pub s3_upload_memory_mib: u64,
    /// Blob GETs answer `307` to a presigned URL of the blob store instead of streaming the
    /// bytes through Berth (`BERTH_BLOB_REDIRECT`; S3 only; default off). Clients follow it;
    /// the URL expires after `blob_redirect_secs`.
    pub blob_redirect: bool,
    /// How long a redirect's presigned URL is valid (`BERTH_BLOB_REDIRECT_SECS`; default 5
    /// minutes).
    pub blob_redirect_secs: u64,
    /// Log filter in `tracing` syntax, e.g. `info` or `berth=debug` (`BERTH_LOG`).
    pub log: String,
    /// How log lines are written (`BERTH_LOG_FORMAT`): `text` for people, `json` for one JSON
    /// object a line.
    pub log_format: LogFormat,
    /// Record Prometheus metrics and serve them at `/metrics` (`BERTH_METRICS`; default on).
    /// Off: nothing is recorded and `/metrics` answers 404.
    pub metrics: bool,
    /// Bearer token `/metrics` requires (`BERTH_METRICS_TOKEN`). Unset: the metrics are
    /// served to anyone who reaches the listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_token: Option<Secret>,
    /// Time every metadata and blob store operation into
    /// `berth_store_operation_duration_seconds` (`BERTH_METRICS_STORE_TIMINGS`; default off:
    /// it creates a span per store call, measured at a few per cent of a manifest GET).
    pub metrics_store_timings: bool,
    /// How long a web UI sign-in lasts, in seconds (`BERTH_WEB_SESSION_SECS`; default two
    /// weeks, as GitHub's).
    pub web_session_secs: u64,
    /// Uploads started this many seconds ago are discarded, with upload files nobody has
    /// written to for as long (`BERTH_UPLOAD_TTL_SECS`; default 7 days, as Distribution).
    pub upload_ttl_secs: u64,
    /// Uploads that never received a byte are discarded this many seconds after they started
    /// (`BERTH_UPLOAD_EMPTY_TTL_SECS`; default one hour).
    pub upload_empty_ttl_secs: u64,
    /// Upload sessions one account's repositories may have open at once
    /// (`BERTH_MAX_UPLOADS_PER_ACCOUNT`); past it, starting one answers 429.
    pub max_uploads_per_account: u64,
    /// Bytes one account's open upload sessions may hold (`BERTH_MAX_UPLOAD_BYTES_PER_ACCOUNT`;
    /// default 64 GiB); a request that would go past it answers 403 `DENIED` and keeps
    /// nothing.
    pub max_upload_bytes_per_account: u64,
    /// How often, in seconds, stale uploads are looked for (`BERTH_UPLOAD_PURGE_INTERVAL_SECS`).
    pub upload_purge_interval_secs: u64,
    /// Garbage collection leaves a blob referenced by nothing, and a repository's link to a
    /// blob no manifest of the repository uses, this many seconds before removing it
    /// (`BERTH_GC_GRACE_SECS`; default one hour).
    pub gc_grace_secs: u64,
    /// How often, in seconds, a garbage-collection pass runs (`BERTH_GC_INTERVAL_SECS`;
    /// default 10 minutes; 0 turns the scheduled passes off, `berth gc` still runs one).
    pub gc_interval_secs: u64,
    /// How often, in seconds, retention policies run (`BERTH_RETENTION_INTERVAL_SECS`; 0:
    /// never). On several nodes one node at a time runs them.
    pub retention_interval_secs: u64,
    /// The URL clients reach Berth at, e.g. `https://registry.example.com`
    /// (`BERTH_EXTERNAL_URL`): the realm of authentication challenges. Unset: `http://` and
    /// the request's `Host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    /// Failed authentications allowed per client address per minute before it is answered
    /// 429 until the minute ends (`BERTH_AUTH_FAILURES_PER_MINUTE`).
    pub auth_failures_per_minute: u32,
    /// Lifetime in seconds of app installation tokens (`BERTH_APP_TOKEN_TTL_SECS`; default one
    /// hour, as GitHub's).
    pub app_token_ttl_secs: u64,
    /// Longest lifetime in seconds of a job token, and its default
    /// (`BERTH_JOB_TOKEN_TTL_SECS`; default one hour).
    pub job_token_ttl_secs: u64,
    /// Base URL of the forge whose repositories packages link to (`BERTH_FORGE_URL`): a pushed
    /// image whose `org.opencontainers.image.source` is `<forge_url>/<owner>/<repository>`
    /// links its package to that repository when `<owner>` owns the package too. E.g. a
    /// self-hosted forge at `https://git.example.com`.
    pub forge_url: String,
    /// How long one webhook delivery attempt may take, response included, in seconds
    /// (`BERTH_WEBHOOK_TIMEOUT_SECS`; default 10, as GitHub's).
    pub webhook_timeout_secs: u64,
    /// Wait before a failed webhook delivery is retried, in milliseconds
    /// (`BERTH_WEBHOOK_RETRY_BASE_MS`); each further retry waits twice as long, at most an
    /// hour.
    pub webhook_retry_base_ms: u64,
    /// Attempts before a webhook delivery is marked failed and the hook's next delivery goes
    /// ahead (`BERTH_WEBHOOK_MAX_ATTEMPTS`).
    pub webhook_max_attempts: u32,
    /// Networks webhooks may reach although they are loopback, private, link-local, reserved
    /// or this server's own, e.g. `["10.1.0.0/16"]` (`BERTH_WEBHOOK_ALLOWED_NETWORKS`, a list
    /// or comma-separated: `10.1.0.0/16,fd00::/8`; a bare address is a /32 or /128). Default
    /// none: hooks reach only public addresses, checked when a hook's URL is set and again
    /// against the addresses a delivery connects to.
    #[serde(deserialize_with = "networks")]
    pub webhook_allowed_networks: Vec<IpNet>,
    /// Webhook delivery attempts in flight at once (`BERTH_WEBHOOK_MAX_CONCURRENT_DELIVERIES`).
    /// Each hook's deliveries go one at a time, in order; a slow receiver holds back only its
    /// own hook.
    pub webhook_max_concurrent_deliveries: usize,
    /// Webhooks an account may have, its repositories' hooks included
    /// (`BERTH_WEBHOOK_MAX_HOOKS_PER_ACCOUNT`; default 20, as GitHub's limit per event).
    pub webhook_max_hooks_per_account: usize,
    /// Management API (`/api/v3`) requests a token may make per hour, counted from its first
    /// request, as GitHub's primary rate limit (`BERTH_API_RATE_LIMIT_PER_HOUR`).
    pub api_rate_limit_per_hour: u32,
    /// Management API requests per hour from one client address without a token, or with
    /// one that fails (`BERTH_API_RATE_LIMIT_ANONYMOUS_PER_HOUR`).
    pub api_rate_limit_anonymous_per_hour: u32,
    /// Management API requests one token or address may make in a minute before it is
    /// answered 429, as GitHub's secondary rate limit (`BERTH_API_RATE_LIMIT_PER_MINUTE`).
    pub api_rate_limit_per_minute: u32,
    /// How long a resolved token and a package's access facts are remembered, in
    /// milliseconds (`BERTH_ACCESS_CACHE_MS`; 0: not at all). Changes made through this
    /// server apply at once; this bounds how long changes made elsewhere (`berth admin`,
    /// other nodes) take.
    pub access_cache_ms: u64,
    /// Connections served at once (`BERTH_MAX_CONNECTIONS`); at most the process's file
    /// descriptor limit less a reserve for files and the database. A connection over it is
    /// answered 503 and closed.
    pub max_connections: usize,
    /// Connections served at once from one client address, an IPv6 address counted by its
    /// /64 (`BERTH_MAX_CONNECTIONS_PER_ADDRESS`); trusted proxies count only towards
    /// `max_connections`. A connection over it is answered 429 and closed.
    pub max_connections_per_address: usize,
    /// Seconds a client may take to send a request's headers, from connecting or from the
    /// first byte of its next request on a kept-alive connection
    /// (`BERTH_HEADER_READ_TIMEOUT_SECS`).
    pub header_read_timeout_secs: u64,
    /// Seconds a kept-alive connection may wait for its next request
    /// (`BERTH_IDLE_TIMEOUT_SECS`).
    pub idle_timeout_secs: u64,
    /// Seconds a request body may go without sending a byte before the request fails and
    /// its connection closes (`BERTH_BODY_READ_TIMEOUT_SECS`); an upload keeps what it made
    /// durable and can be resumed.
    pub body_read_timeout_secs: u64,
    /// Seconds a response may wait for the client to take more bytes
    /// (`BERTH_SEND_TIMEOUT_SECS`).
    pub send_timeout_secs: u64,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-*` headers are believed: addresses or
    /// networks, e.g. `["10.0.0.0/8"]` (`BERTH_TRUSTED_PROXIES`, comma-separated). The client
    /// address they report is used for limits and logs, and the scheme and host for URLs.
    #[serde(deserialize_with = "list_or_commas")]
    pub trusted_proxies: Vec<String>,
    /// Milliseconds between a shutdown signal and closing the listener
    /// (`BERTH_SHUTDOWN_DELAY_MS`; default 0): `/readyz` answers 503 at once while requests
    /// are still served, so a load balancer polling it stops sending before connections
    /// drain. Set it to the balancer's check interval times its failure threshold.
    pub shutdown_delay_ms: u64,
    /// Length in seconds of the rate limits' "hour" (`BERTH_API_RATE_LIMIT_WINDOW_SECS`).
    /// Only tests shorten it; not documented in the README.
    pub api_rate_limit_window_secs: u64,
    /// TLS certificate chain, PEM, the server's certificate first (`BERTH_TLS_CERT`,
    /// `--tls-cert`). With `tls_key`, `listen` serves HTTPS (HTTP/2 or HTTP/1.1 by ALPN) and
    /// URLs default to `https://`; the pair is reloaded when either file changes and on
    /// SIGHUP, without dropping connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key, PEM: PKCS#8, PKCS#1 or SEC1 (`BERTH_TLS_KEY`, `--tls-key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// A second address, plain HTTP, serving only the health and metrics routes, e.g.
    /// `127.0.0.1:9000` for a load balancer or Prometheus (`BERTH_PLAIN_LISTEN`). Unset: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain_listen: Option<SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            data_dir: PathBuf::from("./berth-data"),
            database_url: None,
            database_pool_size: crate::stores::DEFAULT_POOL_SIZE,
            blob_store: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_upload_memory_mib: berth_blob_s3::DEFAULT_UPLOAD_MEMORY >> 20,
            blob_redirect: false,
            blob_redirect_secs: 300,
            log: "info".into(),
            log_format: LogFormat::Text,
            metrics: true,
            metrics_token: None,
            metrics_store_timings: false,
            web_session_secs: 14 * 24 * 3600,
            upload_ttl_secs: 7 * 24 * 3600,
            upload_purge_interval_secs: 3600,
            gc_grace_secs: 3600,
            gc_interval_secs: 600,
            retention_interval_secs: 3600,
            upload_empty_ttl_secs: 3600,
            max_uploads_per_account: UploadLimits::default().sessions,
            max_upload_bytes_per_account: UploadLimits::default().bytes,
            external_url: None,
            auth_failures_per_minute: 30,
            app_token_ttl_secs: 3600,
            job_token_ttl_secs: 3600,
            forge_url: "https://github.com".into(),
            webhook_timeout_secs: 10,
            webhook_retry_base_ms: 10_000,
            webhook_max_attempts: 8,
            webhook_allowed_networks: Vec::new(),
            webhook_max_concurrent_deliveries: 128,
            webhook_max_hooks_per_account: 20,
            api_rate_limit_per_hour: 5000,
            api_rate_limit_anonymous_per_hour: 60,
            api_rate_limit_per_minute: 900,
            api_rate_limit_window_secs: 3600,
            access_cache_ms: 1000,
            max_connections: 4096,
            max_connections_per_address: 256,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            body_read_timeout_secs: 30,
            send_timeout_secs: 30,
            trusted_proxies: Vec::new(),
            tls_cert: None,
            tls_key: None,
            plain_listen: None,
            shutdown_delay_ms: 0,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The `database_url` setting as written; its `Debug` hides a password in it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrlSetting(pub String);

impl std::ops::Deref for DatabaseUrlSetting {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrlSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", crate::config_check::redact_password(&self.0))
    }
}

/// A secret setting (the `/metrics` token, the S3 secret key); its `Debug` does not show it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A list given as a list (`berth.toml`) or as one comma-separated string (environment).
fn list_or_commas<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::List(list) => list,
        Either::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// `webhook_allowed_networks`: a list, or one comma-separated string (as an environment
/// variable gives it), of networks (`10.1.0.0/16`) or addresses (`10.1.2.3`).
fn networks<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    list_or_commas(deserializer)?
        .iter()
        .map(|item| item.trim().trim_matches('"'))
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "webhook_allowed_networks: `{item}` is not a network such as \
                         10.1.0.0/16 or an address"
                    ))
                })
        })
        .collect()
}

/// Flags given on the command line; `None` leaves the lower layers' value.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    /// `--listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// `--data-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--tls-cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
}

impl Config {
    /// The backends `database_url` and `blob_store` name (defaults: in `data_dir`); an
    /// unknown scheme or a backend this build lacks is an error naming the setting.
    pub fn store_urls(&self) -> anyhow::Result<(DatabaseUrl, BlobStoreUrl)> {
        let database = match &self.database_url {
            Some(url) => DatabaseUrl::parse(url)?.with_pool_size(self.database_pool_size),
            None => DatabaseUrl::default_in(&self.data_dir),
        };
        let blobs = match &self.blob_store {
            Some(url) => match BlobStoreUrl::parse(url)? {
                BlobStoreUrl::S3(mut s3) => {
                    s3.endpoint = self.s3_endpoint.clone();
                    s3.region = self.s3_region.clone();
                    s3.access_key_id = self.s3_access_key_id.clone().unwrap_or_default();
                    s3.secret_access_key = self
                        .s3_secret_access_key
                        .as_ref()
                        .map(|s| s.0.clone())
                        .unwrap_or_default();
                    s3.upload_memory = self.s3_upload_memory_mib.saturating_mul(1 << 20);
                    BlobStoreUrl::S3(s3)
                }
                file => file,
            },
            None => BlobStoreUrl::default_in(&self.data_dir),
        };
        Ok((database, blobs))
    }

    /// The TLS files, when both `tls_cert` and `tls_key` are set; one without the other is an
    /// error naming the missing one.
    pub fn tls_files(&self) -> anyhow::Result<Option<berth_http::tls::TlsFiles>> {
        match (&self.tls_cert, &self.tls_key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(berth_http::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            })),
            (Some(_), None) => anyhow::bail!("tls_cert is set but tls_key is not: TLS needs both"),
            (None, Some(_)) => anyhow::bail!("tls_key is set but tls_cert is not: TLS needs both"),
        }
    }

    /// Loads the layers. `file` is `--config`; without it, `./berth.toml` is read if present.
    /// A `BERTH_*` environment variable that names no setting is ignored with a warning on
    /// stderr; a setting that cannot be taken is an error naming it and where it came from.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> anyhow::Result<Config> {
        let figment = Config::layers(file, overrides)?;
        figment.extract().map_err(|err| {
            let problems = invalid_settings(&figment);
            if problems.is_empty() {
                anyhow::Error::new(err)
            } else {
                anyhow::anyhow!("{}", problems.join("\n"))
            }
        })
    }

    /// The layers, merged: defaults, the file, the known `BERTH_*` variables, the flags. The
    /// other `BERTH_*` variables are named in a warning on stderr.
    pub fn layers(file: Option<&Path>, overrides: Overrides) -> anyhow::Result<Figment> {
        for name in ignored_environment() {
            eprintln!(
                "warning: ignoring the environment variable {name}: Berth has no such setting"
            );
        }
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                anyhow::ensure!(
                    path.exists(),
                    "config file {} does not exist",
                    path.display()
                );
                figment = figment.merge(Toml::file(path));
            }
            None => figment = figment.merge(Toml::file("berth.toml")),
        }
        Ok(figment
            .merge(Env::prefixed("BERTH_").only(Config::keys()))
            .merge(Serialized::defaults(overrides)))
    }

    /// The name of every setting, as in `berth.toml` (the environment's are these upper-cased
    /// after `BERTH_`), read from the struct itself so the list cannot fall behind it.
    pub fn keys() -> &'static [&'static str] {
        static KEYS: std::sync::OnceLock<&'static [&'static str]> = std::sync::OnceLock::new();
        KEYS.get_or_init(|| {
            let mut fields: &'static [&'static str] = &[];
            let _ = Config::deserialize(FieldNames(&mut fields));
            fields
        })
    }
}

/// The `BERTH_*` environment variables that name no setting.
fn ignored_environment() -> Vec<String> {
    let mut names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| {
            name.strip_prefix("BERTH_")
                .is_some_and(|key| !Config::keys().contains(&key.to_ascii_lowercase().as_str()))
        })
        .collect();
    names.sort();
    names
}

/// Each setting of `figment` that `Config` cannot take, alone over the defaults: unknown
/// names and invalid values, each named with the file or variable it came from.
pub fn invalid_settings(figment: &Figment) -> Vec<String> {
    let Ok(settings) = figment.extract::<figment::value::Dict>() else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    for (key, value) in settings {
        let from = figment
            .find_metadata(&key)
            .map(|md| match &md.source {
                Some(source) => format!(" (in {} {source})", md.name),
                None => format!(" (in {})", md.name),
            })
            .unwrap_or_default();
        if !Config::keys().contains(&key.as_str()) {
            problems.push(format!("unknown setting `{key}`{from}"));
            continue;
        }
        let alone = Figment::from(Serialized::defaults(Config::default()))
            .merge(Serialized::default(&key, value));
        if let Err(err) = alone.extract::<Config>() {
            problems.push(format!("invalid `{key}`{from}: {}", err.kind));
        }
    }
    problems
}

/// A deserializer that only notes the field names a struct asks for: how [`Config::keys`]
/// reads them from the derived `Deserialize`.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("only field names are read"))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(serde::de::Error::custom("only field names are read"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Provider as _;

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure signature, not ours
    fn layers_override_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "berth.toml",
                "listen = \"127.0.0.1:6000\"\ndata_dir = \"/from-file\"",
            )?;
            jail.set_env("BERTH_DATA_DIR", "/from-env");
            let config = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(config.listen.port(), 6000);
            assert_eq!(config.data_dir, PathBuf::from("/from-env"));
            assert_eq!(config.forge_url, "https://github.com");
            jail.set_env("BERTH_FORGE_URL", "https://git.example.com");
            let config = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(config.forge_url, "https://git.example.com");
            assert_eq!(config.webhook_retry_base_ms, 10_000);
            jail.set_env("BERTH_WEBHOOK_RETRY_BASE_MS", "50");
            let config = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(config.webhook_retry_base_ms, 50);
            assert_eq!(config.api_rate_limit_per_hour, 5000);
            jail.set_env("BERTH_API_RATE_LIMIT_PER_HOUR", "12");
            jail.set_env("BERTH_API_RATE_LIMIT_WINDOW_SECS", "2");
            let config = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(config.api_rate_limit_per_hour, 12);
            assert_eq!(config.api_rate_limit_window_secs, 2);
            assert_eq!(config.api_rate_limit_anonymous_per_hour, 60);
            assert!(config.trusted_proxies.is_empty());
            jail.set_env("BERTH_TRUSTED_PROXIES", "10.0.0.1, 192.168.0.0/16");
            let config = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(config.trusted_proxies, ["10.0.0.1", "192.168.0.0/16"]);
            let flags = Overrides {
                data_dir: Some("/from-flag".into()),
                ..Default::default()
            };
            let config = Config::load(None, flags).map_err(|e| e.to_string())?;
            assert_eq!(config.data_dir, PathBuf::from("/from-flag"));
            Ok(())
        });
    }

    #[test]
    fn keys_are_the_fields() {
        let keys = Config::keys();
        assert!(keys.contains(&"listen") && keys.contains(&"shutdown_delay_ms"));
        assert!(keys.contains(&"external_url"), "optional ones too");
        assert_eq!(keys.len(), toml_keys_of_a_full_config(), "{keys:?}");
    }

    /// How many settings a config with every optional one set serializes.
    fn toml_keys_of_a_full_config() -> usize {
        let config = Config {
            database_url: Some(DatabaseUrlSetting("sqlite:x".into())),
            blob_store: Some("file:x".into()),
            s3_endpoint: Some("http://s3".into()),
            s3_access_key_id: Some("k".into()),
            s3_secret_access_key: Some(Secret("s".into())),
            external_url: Some("https://x".into()),
            tls_cert: Some("cert.pem".into()),
            tls_key: Some("key.pem".into()),
            plain_listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9000))),
            metrics_token: Some(Secret("t".into())),
            ..Config::default()
        };
        match Serialized::defaults(config).data() {
            Ok(data) => data.values().map(|dict| dict.len()).sum(),
            Err(_) => 0,
        }
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure signature, not ours
    fn unknown_variables_are_ignored_and_unknown_keys_named() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("BERTH_UNRELATED", "1");
            jail.set_env("BERTH_LISTEN", "127.0.0.1:7000");
            let config = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(config.listen.port(), 7000);
            assert_eq!(ignored_environment(), ["BERTH_UNRELATED"]);
            jail.create_file("berth.toml", "listn = \"127.0.0.1:1\"\nlog = \"info\"")?;
            let error = Config::load(None, Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("`listn`") && error.contains("berth.toml"),
                "{error}"
            );
            jail.create_file("berth.toml", "max_connections = \"many\"")?;
            let error = Config::load(None, Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("`max_connections`") && error.contains("berth.toml"),
                "{error}"
            );
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure signature, not ours
    fn tls_needs_both_files_from_any_layer() {
        figment::Jail::expect_with(|jail| {
            let config = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert!(config.tls_files().unwrap().is_none());
            jail.create_file(
                "berth.toml",
                "tls_cert = \"/etc/berth/cert.pem\"\nplain_listen = \"127.0.0.1:9000\"",
            )?;
            let config = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(
                config.plain_listen,
                Some(SocketAddr::from(([127, 0, 0, 1], 9000)))
            );
            let error = config.tls_files().unwrap_err().to_string();
            assert!(error.contains("tls_key"), "{error}");
            jail.set_env("BERTH_TLS_KEY", "/etc/berth/key.pem");
            let flags = Overrides {
                tls_cert: Some("/flag/cert.pem".into()),
                ..Default::default()
            };
            let config = Config::load(None, flags).map_err(|e| e.to_string())?;
            let files = config.tls_files().unwrap().unwrap();
            assert_eq!(files.cert, PathBuf::from("/flag/cert.pem"));
            assert_eq!(files.key, PathBuf::from("/etc/berth/key.pem"));
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure signature, not ours
    fn allowed_networks_come_as_a_list_or_comma_separated() {
        figment::Jail::expect_with(|jail| {
            let config = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert!(
                config.webhook_allowed_networks.is_empty(),
                "none by default"
            );
            assert_eq!(config.webhook_max_concurrent_deliveries, 128);
            assert_eq!(config.webhook_max_hooks_per_account, 20);
            jail.create_file(
                "berth.toml",
                "webhook_allowed_networks = [\"127.0.0.0/8\", \"10.1.0.0/16\"]",
            )?;
            let config = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            let nets: Vec<String> = config
                .webhook_allowed_networks
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(nets, ["127.0.0.0/8", "10.1.0.0/16"]);
            for given in [
                "10.1.0.0/16,::1",
                "10.1.0.0/16, ::1/128",
                "[\"10.1.0.0/16\", \"::1\"]",
            ] {
                jail.set_env("BERTH_WEBHOOK_ALLOWED_NETWORKS", given);
                let config = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
                let nets: Vec<String> = config
                    .webhook_allowed_networks
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                assert_eq!(nets, ["10.1.0.0/16", "::1/128"], "{given}");
            }
            jail.set_env("BERTH_WEBHOOK_ALLOWED_NETWORKS", "10.1.0.0/33");
            let error = Config::load(None, Overrides::default()).unwrap_err();
            assert!(error.to_string().contains("10.1.0.0/33"), "{error}");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure signature, not ours
    fn log_format_and_metrics_token_and_their_defaults() {
        figment::Jail::expect_with(|jail| {
            let config = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(config.log_format, LogFormat::Text);
            assert!(config.metrics_token.is_none());
            jail.create_file("berth.toml", "log_format = \"json\"")?;
            jail.set_env("BERTH_METRICS_TOKEN", "scrape-me");
            let config = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(config.log_format, LogFormat::Json);
            let token = config.metrics_token.as_ref().map(|t| t.0.as_str());
            assert_eq!(token, Some("scrape-me"));
            assert!(
                !format!("{config:?}").contains("scrape-me"),
                "Debug redacts it"
            );
            jail.set_env("BERTH_LOG_FORMAT", "yaml");
            assert!(Config::load(None, Overrides::default()).is_err());
            Ok(())
        });
    }
}
