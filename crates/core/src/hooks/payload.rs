//! Payloads and hook JSON in GitHub's shapes, built from values alone (pure): the `package`
//! and `registry_package` events (`published`, `updated`, and Berth's opt-in `deleted`), the
//! `ping` event, and the hook object the API answers and the ping carries.
//!
//! URLs are Berth's: `base` is the URL clients reach Berth at (no trailing `/`), the REST API
//! lives under `<base>/api/v3`, images under `<host>/<package>`.

use serde_json::{Value, json};

use super::model::Hook;
use crate::access::AccountKind;
use crate::access::Visibility;
use crate::access::store::{Account, SourceRepo};
use crate::digest::Digest;
use crate::labels::{Labels, SOURCE};
use crate::name::RepoName;
use crate::ports::Millis;

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

/// The package an event is about, with everything its payload names.
#[derive(Debug, Clone)]
pub struct PackageView<'a> {
    /// Row id.
    pub id: i64,
    /// Its full name (`acme/app`).
    pub name: &'a RepoName,
    /// The owning account.
    pub owner: &'a Account,
    /// Creation time.
    pub created_at: Millis,
    /// The linked source repository and its owner.
    pub repository: Option<(&'a SourceRepo, &'a Account)>,
}

/// The version an event is about.
#[derive(Debug, Clone)]
pub struct VersionView<'a> {
    /// Version id.
    pub id: i64,
    /// Manifest digest.
    pub digest: &'a Digest,
    /// The tag pushed, if the manifest was pushed by tag.
    pub tag: Option<&'a str>,
    /// The manifest's bytes, when known.
    pub manifest: Option<&'a [u8]>,
    /// The image's labels (annotations over config labels).
    pub labels: &'a Labels,
    /// Creation time.
    pub created_at: Millis,
    /// Time of the event.
    pub updated_at: Millis,
}

/// A `package` or `registry_package` payload (`event` names which: the package object is
/// under that key).
pub fn package_payload(
    event: &str,
    action: PackageAction,
    base: &str,
    package: &PackageView<'_>,
    version: &VersionView<'_>,
    sender: &Account,
) -> Value {
    let mut payload = json!({
        "action": action.as_str(),
        "sender": simple_user(base, sender),
    });
    payload[event] = package_object(base, package, version, sender);
    if let Some((repo, owner)) = package.repository {
        payload["repository"] = repository(base, repo, owner);
    }
    if package.owner.kind == AccountKind::Organization {
        payload["organization"] = organization(base, package.owner);
    }
    payload
}

fn package_object(
    base: &str,
    package: &PackageView<'_>,
    version: &VersionView<'_>,
    sender: &Account,
) -> Value {
    let owner = package.owner;
    let short = short_name(package.name);
    let kind = match owner.kind {
        AccountKind::Organization => "orgs",
        AccountKind::User => "users",
    };
    let html = format!(
        "{base}/{kind}/{}/packages/container/package/{short}",
        owner.login
    );
    let description = version
        .labels
        .get("org.opencontainers.image.description")
        .cloned();
    json!({
        "id": package.id,
        "name": short,
        "namespace": owner.login,
        "description": description,
        "ecosystem": "CONTAINER",
        "package_type": "CONTAINER",
        "html_url": html,
        "created_at": time(package.created_at),
        "updated_at": time(version.updated_at),
        "owner": simple_user(base, owner),
        "package_version": package_version(base, package, version, sender),
        "registry": {
            "about_url": format!("{base}/"),
            "name": "Berth container registry",
            "type": "CONTAINER",
            "url": format!("{base}/{}", owner.login),
            "vendor": "Berth",
        },
    })
}

fn package_version(
    base: &str,
    package: &PackageView<'_>,
    version: &VersionView<'_>,
    sender: &Account,
) -> Value {
    let owner = package.owner;
    let host = host_of(base);
    let kind = match owner.kind {
        AccountKind::Organization => "orgs",
        AccountKind::User => "users",
    };
    let digest = version.digest.as_str();
    let reference = match version.tag {
        Some(tag) => format!("{host}/{}:{tag}", package.name),
        None => format!("{host}/{}@{digest}", package.name),
    };
    let label = |key: &str| {
        version
            .labels
            .get(&format!("org.opencontainers.image.{key}"))
            .cloned()
            .unwrap_or_default()
    };
    json!({
        "id": version.id,
        "version": digest,
        "name": digest,
        "description": label("description"),
        "summary": label("description"),
        "body": "",
        "manifest": "",
        "html_url": format!(
            "{base}/{kind}/{}/packages/container/{}/{}",
            owner.login,
            short_name(package.name),
            version.id
        ),
        "target_commitish": "",
        "target_oid": label("revision"),
        "created_at": time(version.created_at),
        "updated_at": time(version.updated_at),
        "metadata": [],
        "container_metadata": {
            "tag": { "name": version.tag.unwrap_or(""), "digest": digest },
            "labels": {
                "description": label("description"),
                "source": version.labels.get(SOURCE).cloned().unwrap_or_default(),
                "revision": label("revision"),
                "image_url": label("url"),
                "licenses": label("licenses"),
                "all_labels": version.labels,
            },
            "manifest": manifest(base, package.name, version),
        },
        "package_files": [],
        "installation_command": format!("docker pull {reference}"),
        "package_url": reference,
        "author": simple_user(base, sender),
    })
}

/// `container_metadata.manifest`: digest, media type, URL, size, config and layers.
fn manifest(base: &str, name: &RepoName, version: &VersionView<'_>) -> Value {
    let digest = version.digest.as_str();
    let uri = format!("{base}/v2/{name}/manifests/{digest}");
    let Some(bytes) = version.manifest else {
        return json!({
            "digest": digest, "media_type": null, "uri": uri, "size": null,
            "config": null, "layers": [],
        });
    };
    let doc: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let descriptor = |d: &Value| {
        json!({
            "digest": d.get("digest").cloned().unwrap_or(Value::Null),
            "media_type": d.get("mediaType").cloned().unwrap_or(Value::Null),
            "size": d.get("size").cloned().unwrap_or(Value::Null),
        })
    };
    let media_type = doc
        .get("mediaType")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            if doc.get("manifests").is_some() {
                "application/vnd.oci.image.index.v1+json".into()
            } else {
                "application/vnd.oci.image.manifest.v1+json".into()
            }
        });
    let layers: Vec<Value> = doc
        .get("layers")
        .and_then(Value::as_array)
        .map(|layers| layers.iter().map(descriptor).collect())
        .unwrap_or_default();
    json!({
        "digest": digest,
        "media_type": media_type,
        "uri": uri,
        "size": bytes.len(),
        "config": doc.get("config").map(descriptor),
        "layers": layers,
    })
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
        "sender": simple_user(base, sender),
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
            PingTarget::Repository(repo, _) => {
                format!("repos/{}/{}", repo.owner_login, repo.name)
            }
            PingTarget::Organization(org) => format!("orgs/{}", org.login),
            PingTarget::User(_) => "user".into(),
        }
    }
}

/// A hook as GitHub's API shows it, the secret masked. `path` is the collection's API path
/// (see [`PingTarget::path`]).
pub fn hook_json(base: &str, path: &str, hook: &Hook) -> Value {
    let url = format!("{base}/api/v3/{path}/hooks/{}", hook.id);
    let mut config = json!({
        "url": hook.config.url,
        "content_type": hook.config.content_type.as_str(),
        "insecure_ssl": if hook.config.insecure_ssl { "1" } else { "0" },
    });
    if hook.config.secret.is_some() {
        config["secret"] = json!("********");
    }
    let mut value = json!({
        "type": hook.scope.type_name(),
        "id": hook.id,
        "name": "web",
        "active": hook.active,
        "events": hook.events,
        "config": config,
        "deleted_events": hook.deleted_events,
        "updated_at": time(hook.updated_at),
        "created_at": time(hook.created_at),
        "url": url,
        "ping_url": format!("{url}/pings"),
        "deliveries_url": format!("{url}/deliveries"),
        "last_response": {
            "code": hook.last_response.code,
            "status": hook.last_response.status,
            "message": hook.last_response.message,
        },
    });
    if matches!(hook.scope, super::model::HookScope::Repository(_)) {
        value["test_url"] = json!(format!("{url}/tests"));
    }
    value
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

/// An account in GitHub's `simple-user` shape (also used for organizations as owners).
pub fn simple_user(base: &str, account: &Account) -> Value {
    let api = format!("{base}/api/v3");
    let login = &account.login;
    let (kind, path) = match account.kind {
        AccountKind::User => ("User", "users"),
        AccountKind::Organization => ("Organization", "users"),
    };
    json!({
        "login": login,
        "id": account.id,
        "node_id": node_id(kind, account.id.0),
        "avatar_url": "",
        "gravatar_id": "",
        "url": format!("{api}/{path}/{login}"),
        "html_url": format!("{base}/{login}"),
        "followers_url": format!("{api}/users/{login}/followers"),
        "following_url": format!("{api}/users/{login}/following{{/other_user}}"),
        "gists_url": format!("{api}/users/{login}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/users/{login}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/users/{login}/subscriptions"),
        "organizations_url": format!("{api}/users/{login}/orgs"),
        "repos_url": format!("{api}/users/{login}/repos"),
        "events_url": format!("{api}/users/{login}/events{{/privacy}}"),
        "received_events_url": format!("{api}/users/{login}/received_events"),
        "type": kind,
        "user_view_type": "public",
        "site_admin": account.site_admin,
    })
}

/// An organization in GitHub's `organization-simple` shape.
pub fn organization(base: &str, org: &Account) -> Value {
    let api = format!("{base}/api/v3/orgs/{}", org.login);
    json!({
        "login": org.login,
        "id": org.id,
        "node_id": node_id("Organization", org.id.0),
        "url": api,
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events"),
        "hooks_url": format!("{api}/hooks"),
        "issues_url": format!("{api}/issues"),
        "members_url": format!("{api}/members{{/member}}"),
        "public_members_url": format!("{api}/public_members{{/member}}"),
        "avatar_url": "",
        "description": org.name.clone().unwrap_or_default(),
    })
}

/// A repository in GitHub's webhook `repository` shape (the fields Berth has).
pub fn repository(base: &str, repo: &SourceRepo, owner: &Account) -> Value {
    let full_name = format!("{}/{}", repo.owner_login, repo.name);
    let api = format!("{base}/api/v3/repos/{full_name}");
    json!({
        "id": repo.id,
        "node_id": node_id("Repository", repo.id.0),
        "name": repo.name,
        "full_name": full_name,
        "private": repo.visibility != Visibility::Public,
        "owner": simple_user(base, owner),
        "html_url": format!("{base}/{full_name}"),
        "description": null,
        "fork": false,
        "url": api,
        "hooks_url": format!("{api}/hooks"),
        "collaborators_url": format!("{api}/collaborators{{/collaborator}}"),
        "created_at": time(repo.created_at),
        "updated_at": time(repo.created_at),
        "pushed_at": null,
        "homepage": null,
        "archived": false,
        "disabled": false,
        "visibility": repo.visibility.as_str(),
        "default_branch": "main",
    })
}

/// GitHub's legacy global node id: base64 of `0<length of Type>:<Type><id>`.
fn node_id(kind: &str, id: i64) -> String {
    use base64::Engine as _;
    let text = format!("0{}:{kind}{id}", kind.len());
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The package's name without its owner: `acme/api/worker` → `api/worker`.
fn short_name(name: &RepoName) -> &str {
    let full = name.as_str();
    full.split_once('/').map_or(full, |(_, rest)| rest)
}

/// `registry.example:5000` from `https://registry.example:5000`.
fn host_of(base: &str) -> &str {
    base.split_once("://").map_or(base, |(_, rest)| rest)
}

/// `2026-11-23T10:00:00Z`, GitHub's time format, from milliseconds since the epoch.
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

#[cfg(test)]
mod tests;
