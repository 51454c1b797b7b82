//! Container packages and their versions: the REST API's `package` and `package-version`
//! objects, and the webhooks' `package` object (the `package` / `registry_package` events')
//! with its `package_version`. Both take their URLs from [`PackageUrls`], so a package's
//! pages read the same in the API and in a payload.

use serde_json::{Value, json};

use super::repos::minimal_repository;
use super::time;
use super::urls::{PackageUrls, account_page, image_reference, manifest_url, short_name};
use super::users::simple_user;
use crate::access::store::{Account, SourceRepo};
use crate::digest::Digest;
use crate::labels::{Labels, SOURCE};
use crate::name::RepoName;
use crate::packages::PackageSummary;
use crate::ports::{Millis, VersionRecord};

/// A package as the REST API shows it (GitHub's `package`, plus `description`: the newest
/// version's), its owner as GitHub's `simple-user` and its linked repository as GitHub's
/// `minimal-repository`.
pub fn package(base: &str, view: &PackageSummary) -> Value {
    let urls = PackageUrls::of(base, &view.owner, &view.record.name);
    let mut value = json!({
        "id": view.record.id,
        "name": short_name(&view.record.name),
        "package_type": "container",
        "owner": simple_user(base, &view.owner),
        "version_count": view.version_count,
        "visibility": view.record.visibility.as_str(),
        "url": urls.api,
        "created_at": time(view.record.created_at),
        "updated_at": time(view.updated_at),
        "html_url": urls.page,
        "description": view.description,
    });
    if let Some((repo, owner)) = &view.repository {
        value["repository"] = minimal_repository(base, repo, owner);
    }
    value
}

/// A version as the REST API shows it (GitHub's `package-version` for a container, plus
/// Berth's facts under `berth`), within the package at `urls`.
pub fn version(urls: &PackageUrls, version: &VersionRecord) -> Value {
    let mut value = json!({
        "id": version.id,
        "name": version.digest.as_str(),
        "url": urls.version_api(version.id.0),
        "package_html_url": urls.page,
        "created_at": time(version.created_at),
        "updated_at": time(version.updated_at),
        "html_url": urls.version_page(version.id.0),
        "metadata": {
            "package_type": "container",
            "container": { "tags": version.tags },
        },
    });
    if let Some(at) = version.deleted_at {
        value["deleted_at"] = Value::String(time(at));
    }
    // What Berth records beyond GitHub's fields, in one key GitHub clients ignore.
    value["berth"] = json!({
        "size": version.total_size,
        "media_type": version.media_type,
        "platforms": version.platforms,
        "pushed_by": version.pushed_by.as_ref().map(|(id, login)| json!({"id": id, "login": login})),
        "download_count": version.downloads,
        "labels": version.labels,
    });
    value
}

/// The package a webhook event is about, with everything its object names.
#[derive(Debug, Clone)]
pub struct EventPackage<'a> {
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

/// The version a webhook event is about.
#[derive(Debug, Clone)]
pub struct EventVersion<'a> {
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

/// The package object of a `package` or `registry_package` payload, with its
/// `package_version`; `sender` is who pushed (the version's `author`).
pub fn webhook_package(
    base: &str,
    package: &EventPackage<'_>,
    version: &EventVersion<'_>,
    sender: &Account,
) -> Value {
    let owner = package.owner;
    let urls = PackageUrls::of(base, owner, package.name);
    let description = version
        .labels
        .get("org.opencontainers.image.description")
        .cloned();
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
        "package_version": webhook_version(base, &urls, package, version, sender),
        "registry": {
            "about_url": format!("{base}/"),
            "name": "Berth container registry",
            "type": "CONTAINER",
            "url": account_page(base, &owner.login),
            "vendor": "Berth",
        },
    })
}

fn webhook_version(
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
