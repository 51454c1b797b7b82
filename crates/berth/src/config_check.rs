//! `berth config check`: the effective configuration, printed as TOML with secrets redacted,
//! and every setting that would stop `berth serve` named, with where it came from.

use std::path::PathBuf;

use anyhow::Context as _;
use berth_core::access::Forge;
use berth_http::origin::TrustedProxies;
use clap::Subcommand;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, Overrides, invalid_settings};
use crate::stores::{BlobStoreUrl, DatabaseUrl};

/// What `berth config` does.
#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (secrets redacted); exit non-zero naming each
    /// invalid setting.
    Check {
        /// Configuration file (default: ./berth.toml when present).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// Settings whose values are secrets: printed as `"<redacted>"`.
const SECRETS: &[&str] = &["metrics_token", "s3_secret_access_key"];

/// Settings that are URLs which may carry a password (`scheme://user:password@host`): the
/// password is redacted.
const URLS: &[&str] = &["database_url", "blob_store", "external_url"];

/// Runs `command`.
pub fn run(command: ConfigCommand) -> anyhow::Result<()> {
    let ConfigCommand::Check { config } = command;
    let figment = Config::layers(config.as_deref(), Overrides::default())?;
    let config: Config = match figment.extract() {
        Ok(config) => config,
        Err(err) => {
            let mut problems = invalid_settings(&figment);
            if problems.is_empty() {
                problems.push(err.to_string());
            }
            return Err(report(&problems));
        }
    };
    println!("{}", render(&config)?);
    let problems = semantic_problems(&config);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(report(&problems))
    }
}

/// Values that parse but that `berth serve` would refuse.
fn semantic_problems(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(url) = &config.database_url
        && let Err(err) = DatabaseUrl::parse(url)
    {
        problems.push(err.to_string());
    }
    if let Some(url) = &config.blob_store
        && let Err(err) = BlobStoreUrl::parse(url)
    {
        problems.push(err.to_string());
    }
    if let Err(err) = TrustedProxies::parse(&config.trusted_proxies) {
        problems.push(format!("invalid `trusted_proxies`: {err}"));
    }
    if let Err(err) = config.forge_url.parse::<Forge>() {
        problems.push(format!("invalid `forge_url`: {err}"));
    }
    if let Err(err) = EnvFilter::try_new(&config.log) {
        problems.push(format!("invalid `log` filter `{}`: {err}", config.log));
    }
    problems
}

fn report(problems: &[String]) -> anyhow::Error {
    anyhow::anyhow!(
        "{} invalid setting{}:\n  {}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        problems.join("\n  ")
    )
}

/// `config` as TOML, secrets redacted.
fn render(config: &Config) -> anyhow::Result<String> {
    let mut table = toml::Table::try_from(config).context("rendering the configuration")?;
    for (key, value) in table.iter_mut() {
        if SECRETS.contains(&key.as_str()) {
            *value = toml::Value::String("<redacted>".into());
        } else if URLS.contains(&key.as_str())
            && let toml::Value::String(url) = value
        {
            *url = redact_password(url);
        }
    }
    toml::to_string(&table).context("rendering the configuration")
}

/// `url` with the password of its `user:password@` part, if any, replaced.
pub(crate) fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:<redacted>{}", &rest[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            redact_password("postgres://berth:hunter2@db:5432/berth"),
            "postgres://berth:<redacted>@db:5432/berth"
        );
        assert_eq!(redact_password("sqlite:/var/m.db"), "sqlite:/var/m.db");
        assert_eq!(
            redact_password("https://host/a@b"),
            "https://host/a@b",
            "an @ in the path is not a password"
        );
    }

    #[test]
    fn the_defaults_render_and_pass() {
        let config = Config::default();
        let text = render(&config).unwrap();
        assert!(text.contains("listen = \"127.0.0.1:5000\""), "{text}");
        assert!(semantic_problems(&config).is_empty());
    }
}
