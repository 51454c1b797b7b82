//! The objects of the webhook payloads, in the shapes GitHub's webhook schemas
//! (`@octokit/openapi-webhooks`) give them: `simple-user` (sender, owner, author),
//! `organization-simple-webhooks`, `repository-webhooks` (GitHub's full repository object,
//! which differs from the REST API's) and the `package` / `registry_package` objects of the
//! `published` and `updated` actions.
//!
//! Every field GitHub's schemas require is present. What Berth has no notion of (forks,
//! stars, issues, a repository's git URLs) takes GitHub's neutral value: `null`, `0`, `false`,
//! an empty list; URL templates are formed under the repository's API URL as GitHub forms
//! them. The users, organizations and repositories are the REST API's renderers'
//! (`users::simple_user`, `users::organization_simple`, `repos::repository`), whose shapes
//! satisfy both descriptions. Berth's own fields (`container_metadata.labels.all_labels`, the hook's
//! `deleted_events`) are additions, never replacements.

use serde_json::{Value, json};

use super::packages::{EventPackage, EventVersion};
use super::time;
use super::urls::{PackageUrls, account_page, image_reference, manifest_url, short_name};
use super::users::simple_user;
use crate::access::store::Account;
use crate::labels::SOURCE;
use crate::name::RepoName;

/// The package object of a `package` or `registry_package` payload, with its
/// `package_version`; `sender` is who pushed (the version's `author`). `updated` events carry
/// no package description, as GitHub's `updated` schemas have it.
pub fn package(
    base: &str,
    updated: bool,
    package: &EventPackage<'_>,
    version: &EventVersion<'_>,
    sender: &Account,
) -> Value {
    let owner = package.owner;
    let urls = PackageUrls::of(base, owner, package.name);
    let description = if updated {
        None
    } else {
        version
            .labels
            .get("org.opencontainers.image.description")
            .cloned()
    };
    json!({
        "id": package.id,
        "name": short_name(package.name),
        "namespace": owner.login,
        "description": description,
        "ecosystem": "CONTAINER",
        "package_type": "CONTAINER",
        "html_url": urls.page,
        "created_at": time(package.created_at),
        "updated_at": time(version.updated_at),
        "owner": simple_user(base, owner),
        "package_version": package_version(base, &urls, package, version, sender),
        "registry": {
            "about_url": format!("{base}/"),
            "name": "Berth container registry",
            "type": "CONTAINER",
            "url": account_page(base, &owner.login),
            "vendor": "Berth",
        },
    })
}

fn package_version(
    base: &str,
    urls: &PackageUrls,
    package: &EventPackage<'_>,
    version: &EventVersion<'_>,
    sender: &Account,
) -> Value {
    let digest = version.digest.as_str();
    let reference = image_reference(base, package.name, version.tag, version.digest);
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
        "body_html": "",
        "manifest": "",
        "html_url": urls.version_page(version.id),
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
fn manifest(base: &str, name: &RepoName, version: &EventVersion<'_>) -> Value {
    let digest = version.digest.as_str();
    let uri = manifest_url(base, name, version.digest);
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
