//! Configuration: defaults, then `berth.toml`, then `BERTH_*` environment variables, then
//! command-line flags — each layer overriding the one before.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

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
    /// Log filter in `tracing` syntax, e.g. `info` or `berth=debug` (`BERTH_LOG`).
    pub log: String,
    /// Uploads started this many seconds ago are discarded, with upload files nobody has
    /// written to for as long (`BERTH_UPLOAD_TTL_SECS`; default 7 days, as Distribution).
    pub upload_ttl_secs: u64,
    /// How often, in seconds, stale uploads are looked for (`BERTH_UPLOAD_PURGE_INTERVAL_SECS`).
    pub upload_purge_interval_secs: u64,
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
    /// Length in seconds of the rate limits' "hour" (`BERTH_API_RATE_LIMIT_WINDOW_SECS`).
    /// Only tests shorten it; not documented in the README.
    pub api_rate_limit_window_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            data_dir: PathBuf::from("./berth-data"),
            log: "info".into(),
            upload_ttl_secs: 7 * 24 * 3600,
            upload_purge_interval_secs: 3600,
            external_url: None,
            auth_failures_per_minute: 30,
            app_token_ttl_secs: 3600,
            job_token_ttl_secs: 3600,
            forge_url: "https://github.com".into(),
            webhook_timeout_secs: 10,
            webhook_retry_base_ms: 10_000,
            webhook_max_attempts: 8,
            webhook_allowed_networks: Vec::new(),
            webhook_max_concurrent_deliveries: 32,
            webhook_max_hooks_per_account: 20,
            api_rate_limit_per_hour: 5000,
            api_rate_limit_anonymous_per_hour: 60,
            api_rate_limit_per_minute: 900,
            api_rate_limit_window_secs: 3600,
            access_cache_ms: 1000,
        }
    }
}

/// `webhook_allowed_networks`: a list, or one comma-separated string (as an environment
/// variable gives it), of networks (`10.1.0.0/16`) or addresses (`10.1.2.3`).
fn networks<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        List(Vec<String>),
        Text(String),
    }
    let items = match Given::deserialize(deserializer)? {
        Given::List(list) => list,
        Given::Text(text) => text.split(',').map(str::to_owned).collect(),
    };
    items
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
}

impl Config {
    /// Loads the layers. `file` is `--config`; without it, `./berth.toml` is read if present.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> anyhow::Result<Config> {
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
        let config = figment
            .merge(Env::prefixed("BERTH_"))
            .merge(Serialized::defaults(overrides))
            .extract()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    #[allow(clippy::result_large_err)] // figment::Jail's closure signature, not ours
    fn allowed_networks_come_as_a_list_or_comma_separated() {
        figment::Jail::expect_with(|jail| {
            let config = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert!(
                config.webhook_allowed_networks.is_empty(),
                "none by default"
            );
            assert_eq!(config.webhook_max_concurrent_deliveries, 32);
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
}
