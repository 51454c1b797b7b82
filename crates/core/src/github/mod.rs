//! GitHub's JSON objects and URLs, built from values alone (pure): the one place that knows
//! GitHub's shapes, so the REST API under `/api/v3` (http's `api/`) and the webhook payloads
//! ([`crate::hooks::payload`]) render the same user, organization, repository, package,
//! version and hook alike.
//!
//! [`urls`] forms every URL (API and page, one encoding of nested package names); [`users`]
//! renders users and organizations (and memberships, teams), [`repos`] repositories,
//! [`packages`] packages and their versions (the REST API's and the webhooks' objects),
//! [`hooks`] hooks and their deliveries, [`credentials`] tokens and app installations in
//! GitHub's style, [`webhook`] the webhook payloads' objects in the shapes of GitHub's
//! webhook schemas. Times are [`time`]'s.
//!
//! Renderers take records as the stores return them and never read a secret: a hook's secret
//! shows as `********`, a token never shows its secret. This module calls no store and no
//! service; services and handlers call it.

pub mod credentials;
pub mod hooks;
pub mod packages;
pub mod repos;
pub mod urls;
pub mod users;
pub mod webhook;

use std::fmt::Display;

use serde_json::Value;

use crate::ports::Millis;

/// `2026-11-23T10:00:00Z`: GitHub's time format (RFC 3339 in UTC, whole seconds), from
/// milliseconds since the epoch (a time before the epoch is the epoch).
pub fn time(millis: Millis) -> String {
    let secs = millis.max(0) / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// An optional [`time`], `null` when absent.
pub fn maybe_time(millis: Option<Millis>) -> Value {
    millis.map_or(Value::Null, |m| Value::String(time(m)))
}

/// GitHub's legacy global node id: base64 of `0<length of Type>:<Type><id>`.
pub fn node_id(kind: &str, id: impl Display) -> String {
    use base64::Engine as _;
    let text = format!("0{}:{kind}{id}", kind.len());
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[cfg(test)]
pub(crate) mod tests;
