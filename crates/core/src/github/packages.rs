//! Container packages and their versions: the REST API's `package` and `package-version`
//! objects, and the webhooks' `package` object (the `package` / `registry_package` events')
//! with its `package_version`. Both take their URLs from [`PackageUrls`], so a package's
//! pages read the same in the API and in a payload.

use serde_json::{Value, json};

use super::repos::minimal_repository;
use super::time;
use super::urls::{PackageUrls, short_name};
use super::users::simple_user;
use crate::access::store::{Account, SourceRepo};
use crate::digest::Digest;
use crate::labels::Labels;
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
        "description": view.description(),
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
