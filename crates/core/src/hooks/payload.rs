//! The webhook payloads, built from values alone (pure): the `package` and `registry_package`
//! events (`published`, `updated`, and Berth's opt-in `deleted`) and the `ping` event. Every
//! object in them (sender, package, version, repository, organization) is rendered by
//! [`crate::github::webhook`] in the shapes of GitHub's webhook schemas, the hook by
//! [`crate::github::hooks`] as the REST API renders it; this module only assembles the events.
//!
//! URLs are Berth's: `base` is the URL clients reach Berth at (no trailing `/`), see
//! [`crate::github::urls`].

use serde_json::{Value, json};

use super::model::Hook;
use crate::access::AccountKind;
use crate::access::store::{Account, SourceRepo};
use crate::github::node_id;
use crate::github::packages::{EventPackage, EventVersion};
use crate::github::repos::{full_name, repository};
use crate::github::users::{organization_simple as organization, simple_user as user};
use crate::github::webhook::package as webhook_package;
use crate::ids::InstallationId;

/// What happened to a package version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageAction {
    /// A new version was pushed.
    Published,
    /// A tag moved to an existing version.
    Updated,
    /// A version was deleted (Berth's; hooks opt in with `deleted_events`).
    Deleted,
}

impl PackageAction {
    /// The payload's `action`.
    pub fn as_str(self) -> &'static str {
        match self {
            PackageAction::Published => "published",
            PackageAction::Updated => "updated",
            PackageAction::Deleted => "deleted",
        }
    }
}

/// A `package` or `registry_package` payload (`event` names which: the package object is
/// under that key).
pub fn package_payload(
    event: &str,
    action: PackageAction,
    base: &str,
    package: &EventPackage<'_>,
    version: &EventVersion<'_>,
    sender: &Account,
) -> Value {
    let mut payload = json!({
        "action": action.as_str(),
        "sender": user(base, sender),
    });
    let updated = action == PackageAction::Updated;
    payload[event] = webhook_package(base, updated, package, version, sender);
    if let Some((repo, owner)) = package.repository {
        payload["repository"] = repository(base, repo, owner);
    }
    if package.owner.kind == AccountKind::Organization {
        payload["organization"] = organization(base, package.owner);
    }
    payload
}

/// `payload` as an app's webhook receives it: with the `installation` it came through
/// (GitHub's `simple-installation`).
pub fn with_installation(mut payload: Value, installation: InstallationId) -> Value {
    payload["installation"] = json!({
        "id": installation,
        "node_id": node_id("Installation", installation),
    });
    payload
}

/// The `ping` payload GitHub sends when a hook is created (or pinged).
pub fn ping_payload(
    hook: &Hook,
    hook_json: Value,
    base: &str,
    target: &PingTarget<'_>,
    sender: &Account,
) -> Value {
    let mut payload = json!({
        "zen": zen(hook.id.0),
        "hook_id": hook.id,
        "hook": hook_json,
        "sender": user(base, sender),
    });
    match target {
        PingTarget::Repository(repo, owner) => {
            payload["repository"] = repository(base, repo, owner);
            if owner.kind == AccountKind::Organization {
                payload["organization"] = organization(base, owner);
            }
        }
        PingTarget::Organization(org) => payload["organization"] = organization(base, org),
        PingTarget::User(_) => {}
    }
    payload
}

/// What a hook is attached to, with the records its JSON names.
#[derive(Debug, Clone, Copy)]
pub enum PingTarget<'a> {
    /// A repository and its owner.
    Repository(&'a SourceRepo, &'a Account),
    /// An organization.
    Organization(&'a Account),
    /// A user.
    User(&'a Account),
}

impl PingTarget<'_> {
    /// The API path of the hook collection: `repos/acme/app`, `orgs/acme` or `user`.
    pub fn path(&self) -> String {
        match self {
            PingTarget::Repository(repo, _) => format!("repos/{}", full_name(repo)),
            PingTarget::Organization(org) => format!("orgs/{}", org.login),
            PingTarget::User(_) => "user".into(),
        }
    }
}

/// One of GitHub's zen sayings, chosen by `seed`.
fn zen(seed: i64) -> &'static str {
    const SAYINGS: [&str; 6] = [
        "Keep it logically awesome.",
        "Design for failure.",
        "Speak like a human.",
        "Practicality beats purity.",
        "Approachable is better than simple.",
        "Non-blocking is better than blocking.",
    ];
    SAYINGS[seed.unsigned_abs() as usize % SAYINGS.len()]
}

#[cfg(test)]
mod tests;
