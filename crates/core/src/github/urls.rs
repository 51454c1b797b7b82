//! GitHub's URLs for Berth's objects. `base` is the URL clients reach Berth at (no trailing
//! `/`); the REST API lives under `<base>/api/v3`, the pages GitHub has under `<base>/…` at
//! GitHub's paths, and images under `<host>/<package>`.
//!
//! A package is named relative to its owner (`api/worker` for `acme/api/worker`) and, nested,
//! with `/` as `%2F` in every URL, API and page alike, as GitHub writes them
//! (`…/packages/container/package/api%2Fworker`).

use crate::access::AccountKind;
use crate::access::store::Account;
use crate::digest::Digest;
use crate::name::RepoName;

/// `<base>/api/v3`.
pub fn api(base: &str) -> String {
    format!("{base}/api/v3")
}

/// The path segment GitHub files an account's resources under: `users` or `orgs`.
pub fn owner_segment(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::User => "users",
        AccountKind::Organization => "orgs",
    }
}

/// A user's API resource: `<base>/api/v3/users/<login>` (GitHub's `simple-user` of an
/// organization names it there too).
pub fn user_api(base: &str, login: &str) -> String {
    format!("{base}/api/v3/users/{login}")
}

/// An organization's API resource: `<base>/api/v3/orgs/<login>`.
pub fn org_api(base: &str, login: &str) -> String {
    format!("{base}/api/v3/orgs/{login}")
}

/// An account's avatar: `<base>/avatars/u/<id>`, an identicon Berth draws from the id
/// (GitHub's `https://avatars.githubusercontent.com/u/<id>`).
pub fn avatar(base: &str, id: impl std::fmt::Display) -> String {
    format!("{base}/avatars/u/{id}")
}

/// An account's page: `<base>/<login>`.
pub fn account_page(base: &str, login: &str) -> String {
    format!("{base}/{login}")
}

/// A repository's API resource: `<base>/api/v3/repos/<owner>/<name>`.
pub fn repo_api(base: &str, full_name: &str) -> String {
    format!("{base}/api/v3/repos/{full_name}")
}

/// A repository's page: `<base>/<owner>/<name>`.
pub fn repo_page(base: &str, full_name: &str) -> String {
    format!("{base}/{full_name}")
}

/// A team's API resource: `<base>/api/v3/orgs/<org>/teams/<slug>`.
pub fn team_api(base: &str, org: &str, slug: &str) -> String {
    format!("{base}/api/v3/orgs/{org}/teams/{slug}")
}

/// A team's page: `<base>/orgs/<org>/teams/<slug>`.
pub fn team_page(base: &str, org: &str, slug: &str) -> String {
    format!("{base}/orgs/{org}/teams/{slug}")
}

/// A hook's API resource; `collection` is the API path of the hooks' owner (`repos/acme/app`,
/// `orgs/acme` or `user`).
pub fn hook_api(base: &str, collection: &str, id: impl std::fmt::Display) -> String {
    format!("{base}/api/v3/{collection}/hooks/{id}")
}

/// The package name relative to its owner: `acme/api/worker` → `api/worker`.
pub fn short_name(name: &RepoName) -> &str {
    let full = name.as_str();
    full.split_once('/').map_or(full, |(_, rest)| rest)
}

/// [`short_name`] as one URL segment, `/` as `%2F`: `api%2Fworker`.
pub fn package_segment(name: &RepoName) -> String {
    short_name(name).replace('/', "%2F")
}

/// The URLs of one container package and its versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageUrls {
    /// The API resource: `<base>/api/v3/<users|orgs>/<owner>/packages/container/<name>`.
    pub api: String,
    /// The package page: `<base>/<users|orgs>/<owner>/packages/container/package/<name>`.
    pub page: String,
    /// The prefix of its versions' pages: `<base>/<users|orgs>/<owner>/packages/container/<name>`.
    versions_page: String,
}

impl PackageUrls {
    /// The URLs of package `name` filed under `segment` (`users` or `orgs`, see
    /// [`owner_segment`]) and `owner` (a login).
    pub fn new(base: &str, segment: &str, owner: &str, name: &RepoName) -> Self {
        let name = package_segment(name);
        PackageUrls {
            api: format!("{base}/api/v3/{segment}/{owner}/packages/container/{name}"),
            page: format!("{base}/{segment}/{owner}/packages/container/package/{name}"),
            versions_page: format!("{base}/{segment}/{owner}/packages/container/{name}"),
        }
    }

    /// The URLs of package `name` of `owner`.
    pub fn of(base: &str, owner: &Account, name: &RepoName) -> Self {
        PackageUrls::new(base, owner_segment(owner.kind), &owner.login, name)
    }

    /// Version `id`'s API resource.
    pub fn version_api(&self, id: i64) -> String {
        format!("{}/versions/{id}", self.api)
    }

    /// Version `id`'s page.
    pub fn version_page(&self, id: i64) -> String {
        format!("{}/{id}", self.versions_page)
    }

    /// The all-versions page: `<base>/<users|orgs>/<owner>/packages/container/<name>/versions`.
    pub fn versions_list_page(&self) -> String {
        format!("{}/versions", self.versions_page)
    }

    /// The settings page: `<base>/<users|orgs>/<owner>/packages/container/<name>/settings`.
    pub fn settings_page(&self) -> String {
        format!("{}/settings", self.versions_page)
    }
}

/// `registry.example:5000` from `https://registry.example:5000`.
pub fn host_of(base: &str) -> &str {
    base.split_once("://").map_or(base, |(_, rest)| rest)
}

/// What `docker pull` takes: `<host>/<name>:<tag>`, or `<host>/<name>@<digest>` untagged.
pub fn image_reference(base: &str, name: &RepoName, tag: Option<&str>, digest: &Digest) -> String {
    let host = host_of(base);
    match tag {
        Some(tag) => format!("{host}/{name}:{tag}"),
        None => format!("{host}/{name}@{digest}"),
    }
}

/// A manifest's distribution-API URL: `<base>/v2/<name>/manifests/<digest>`.
pub fn manifest_url(base: &str, name: &RepoName, digest: &Digest) -> String {
    format!("{base}/v2/{name}/manifests/{digest}")
}
