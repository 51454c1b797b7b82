//! A package's pages at GitHub's paths, `/{users|orgs}/{owner}/packages/container/…`: the
//! package page (`package/{name}`), all versions (`{name}/versions`, filtered by
//! `filters[version_type]=tagged|untagged`, or the deleted ones with `state=deleted`), and the
//! per-version delete and restore forms (`{name}/versions/{id}/delete|restore`). Names are
//! nested (`api/worker`) and arrive `%2F`-encoded or raw, so the tail is parsed from its end.
//! The settings live in [`super::package_settings`].

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use berth_core::access::AccountKind;
use berth_core::github::urls::{PackageUrls, image_reference, repo_page, short_name};
use berth_core::ids::VersionId;
use berth_core::name::RepoName;
use berth_core::packages::{PageRequest, VersionListing};
use berth_core::ports::{Referrer, VersionRecord, VersionState};
use serde::Deserialize;

use super::error::{PageError, PageResult};
use super::{check_csrf, see_other_with};
use crate::Web;
use crate::session::Viewer;
use crate::view::{Layout, ago, count, render, size, timestamp};

/// Versions per page of the versions page.
pub const PER_PAGE: u64 = 20;

/// What the tail of a package path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `package/{name}`.
    Page(String),
    /// `{name}/versions`.
    Versions(String),
    /// `{name}/{version_id}`: one version (shown on the versions page).
    Version(String, i64),
    /// `{name}/settings`.
    Settings(String),
    /// `{name}/versions/{id}/{delete|restore}` (POST).
    VersionAction(String, i64, String),
    /// `{name}/settings/{action}` (POST).
    SettingsAction(String, String),
}

/// Parses the tail after `…/packages/container/`, from its end (names contain `/`).
pub fn route(rest: &str) -> Option<Route> {
    let rest = rest.trim_matches('/');
    if let Some(name) = rest.strip_prefix("package/") {
        return Some(Route::Page(name.to_owned()));
    }
    let (head, last) = rest.rsplit_once('/')?;
    match last {
        "versions" => return Some(Route::Versions(head.to_owned())),
        "settings" => return Some(Route::Settings(head.to_owned())),
        _ => {}
    }
    if let Ok(id) = last.parse::<i64>() {
        return Some(Route::Version(head.to_owned(), id));
    }
    if let Some((name, action)) = head
        .strip_suffix("/settings")
        .map(|name| (name, last))
        .filter(|(name, _)| !name.is_empty())
    {
        return Some(Route::SettingsAction(name.to_owned(), action.to_owned()));
    }
    let (before, id) = head.rsplit_once('/')?;
    let name = before.strip_suffix("/versions")?;
    let id = id.parse().ok()?;
    (!name.is_empty()).then(|| Route::VersionAction(name.to_owned(), id, last.to_owned()))
}

/// The account kind a path's first segment files packages under.
fn kind_of(uri: &Uri) -> AccountKind {
    if uri.path().starts_with("/orgs/") {
        AccountKind::Organization
    } else {
        AccountKind::User
    }
}

/// The page URLs of package `name` as the request's path files it (`users` or `orgs`).
pub fn urls_of(uri: &Uri, name: &RepoName) -> PackageUrls {
    let segment = berth_core::github::urls::owner_segment(kind_of(uri));
    PackageUrls::new("", segment, name.owner(), name)
}

/// The package a path names, its owner filed under the right segment; else the 404 page.
pub async fn package_name(
    web: &Web,
    uri: &Uri,
    owner: &str,
    name: &str,
) -> Result<RepoName, PageError> {
    web.services
        .access
        .account(owner, Some(kind_of(uri)))
        .await
        .map_err(|_| PageError::NotFound)?;
    format!("{}/{name}", owner.to_ascii_lowercase())
        .parse()
        .map_err(|_| PageError::NotFound)
}

/// The query of the pages: `filters[version_type]`, `state`, `page`.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    #[serde(rename = "filters[version_type]", default)]
    version_type: String,
    #[serde(default)]
    state: String,
    page: Option<u64>,
}

/// `GET …/packages/container/{*rest}`.
pub async fn get(
    viewer: Viewer,
    State(web): State<Web>,
    uri: Uri,
    Path((owner, rest)): Path<(String, String)>,
    Query(query): Query<PageQuery>,
) -> Response {
    let result = match route(&rest) {
        Some(Route::Page(name)) => package_page(&viewer, &web, &uri, &owner, &name).await,
        Some(Route::Versions(name)) => {
            versions_page(&viewer, &web, &uri, &owner, &name, query, None).await
        }
        Some(Route::Version(name, id)) => {
            versions_page(&viewer, &web, &uri, &owner, &name, query, Some(id)).await
        }
        Some(Route::Settings(name)) => {
            super::package_settings::page(&viewer, &web, &uri, &owner, &name).await
        }
        _ => Err(PageError::NotFound),
    };
    result.unwrap_or_else(|err| err.page(&viewer))
}

/// The form every action posts: its CSRF token and any fields the action reads.
#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    /// The CSRF token.
    #[serde(default)]
    pub authenticity_token: String,
    /// A login or team slug (access), a repository (link, job access).
    #[serde(default)]
    pub grantee: String,
    /// `user` or `team`.
    #[serde(default)]
    pub grantee_kind: String,
    /// `read`, `write`, `admin` or `none`.
    #[serde(default)]
    pub role: String,
    /// `public`, `internal`, `private`.
    #[serde(default)]
    pub visibility: String,
    /// A repository name.
    #[serde(default)]
    pub repository: String,
    /// `on` when a checkbox is ticked.
    #[serde(default)]
    pub inherit: String,
    /// The typed package name of a dangerous action.
    #[serde(default)]
    pub confirm_name: String,
}

/// `POST …/packages/container/{*rest}`: the form actions.
pub async fn post(
    viewer: Viewer,
    State(web): State<Web>,
    uri: Uri,
    Path((owner, rest)): Path<(String, String)>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Response {
    if let Err(err) = check_csrf(&viewer, &form.authenticity_token) {
        return err.page(&viewer);
    }
    let result = match route(&rest) {
        Some(Route::VersionAction(name, id, action)) => {
            version_action(&viewer, &web, &uri, &owner, &name, id, &action).await
        }
        Some(Route::SettingsAction(name, action)) => {
            super::package_settings::action(&viewer, &web, &uri, &owner, &name, &action, form).await
        }
        _ => Err(PageError::NotFound),
    };
    result.unwrap_or_else(|err| err.page(&viewer))
}

/// A version as a row shows it.
pub struct VersionRow {
    /// Its id.
    pub id: i64,
    /// Its tags.
    pub tags: Vec<String>,
    /// `sha256:0123456789ab`.
    pub short_digest: String,
    /// The whole digest.
    pub digest: String,
    /// "1.2 MiB".
    pub size: String,
    /// "3 days ago".
    pub created_ago: String,
    /// RFC 3339.
    pub created_at: String,
    /// Platforms of an index (`attestation` for attestation manifests).
    pub platforms: Vec<String>,
    /// Referrers by kind: ("Signatures", short digests).
    pub referrers: Vec<(String, Vec<String>)>,
    /// "5".
    pub downloads: String,
    /// When deleted: "2 days ago".
    pub deleted_ago: Option<String>,
    /// `docker pull` for it.
    pub pull: String,
}

/// `sha256:` and the first 12 hex digits.
pub fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) => format!("{algorithm}:{}", &hex[..hex.len().min(12)]),
        None => digest.to_owned(),
    }
}

/// What kind of artifact a referrer is, as a heading groups them.
fn referrer_kind(referrer: &Referrer) -> String {
    let kind = referrer
        .artifact_type
        .clone()
        .unwrap_or_else(|| referrer.media_type.clone());
    let lower = kind.to_ascii_lowercase();
    if lower.contains("signature") || lower.contains("sigstore") || lower.contains("cosign") {
        "Signatures".into()
    } else if lower.contains("spdx") || lower.contains("cyclonedx") || lower.contains("sbom") {
        "SBOMs".into()
    } else if lower.contains("in-toto") || lower.contains("attestation") || lower.contains("dsse") {
        "Attestations".into()
    } else {
        kind
    }
}

/// The row of `version` of `name`.
pub fn version_row(
    base: &str,
    name: &RepoName,
    version: &VersionRecord,
    referrers: &[Referrer],
) -> VersionRow {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for referrer in referrers {
        let kind = referrer_kind(referrer);
        let digest = short_digest(referrer.digest.as_str());
        match groups.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, digests)) => digests.push(digest),
            None => groups.push((kind, vec![digest])),
        }
    }
    VersionRow {
        id: version.id.0,
        tags: version.tags.clone(),
        short_digest: short_digest(version.digest.as_str()),
        digest: version.digest.as_str().to_owned(),
        size: size(version.total_size),
        created_ago: ago(version.created_at),
        created_at: timestamp(version.created_at),
        platforms: version.platforms.clone(),
        referrers: groups,
        downloads: count(version.downloads),
        deleted_ago: version.deleted_at.map(ago),
        pull: image_reference(
            base,
            name,
            version.tags.first().map(String::as_str),
            &version.digest,
        ),
    }
}

#[derive(Template)]
#[template(path = "package.html")]
struct PackagePage {
    layout: Layout,
    owner: String,
    owner_url: String,
    name: String,
    visibility: &'static str,
    description: Option<String>,
    licenses: Option<String>,
    /// (URL, full name) of the linked repository, else the source label.
    repository: Option<(String, String)>,
    pull: Option<String>,
    recent: Vec<VersionRow>,
    tagged_count: String,
    version_count: String,
    downloads: String,
    package_url: String,
    versions_url: String,
    settings_url: Option<String>,
}

async fn package_page(
    viewer: &Viewer,
    web: &Web,
    uri: &Uri,
    owner: &str,
    name: &str,
) -> PageResult {
    let name = package_name(web, uri, owner, name).await?;
    let overview = web
        .services
        .packages
        .overview_readable(&viewer.principal, &name)
        .await?;
    let summary = &overview.summary;
    let urls = PackageUrls::of("", &summary.owner, &name);
    let newest_tag = overview.recent_tagged.first().and_then(|v| {
        v.tags
            .iter()
            .find(|t| *t == "latest")
            .or_else(|| v.tags.first())
            .map(|t| (t.clone(), v.digest.clone()))
    });
    let repository = match &summary.repository {
        Some((repo, repo_owner)) => {
            let full = format!("{}/{}", repo_owner.login, repo.name);
            Some((repo_page("", &full), full))
        }
        None => overview
            .source_label
            .as_ref()
            .filter(|url| url.starts_with("https://") || url.starts_with("http://"))
            .map(|url| (url.clone(), url.clone())),
    };
    let page = PackagePage {
        layout: Layout::new(viewer, format!("Package {}", short_name(&name))),
        owner: summary.owner.login.clone(),
        owner_url: format!("/{}", summary.owner.login),
        name: short_name(&name).to_owned(),
        visibility: summary.record.visibility.as_str(),
        description: summary.description().map(str::to_owned),
        licenses: overview.licenses.clone(),
        repository,
        pull: newest_tag.map(|(tag, digest)| {
            format!(
                "docker pull {}",
                image_reference(&viewer.base, &name, Some(&tag), &digest)
            )
        }),
        recent: overview
            .recent_tagged
            .iter()
            .map(|v| version_row(&viewer.base, &name, v, &[]))
            .collect(),
        tagged_count: count(overview.tagged_count),
        version_count: count(summary.version_count),
        downloads: count(overview.downloads),
        package_url: urls.page.clone(),
        versions_url: urls.versions_list_page(),
        settings_url: overview.may_manage.then(|| urls.settings_page()),
    };
    Ok(render(viewer, StatusCode::OK, &page))
}

#[derive(Template)]
#[template(path = "package_versions.html")]
struct VersionsPage {
    layout: Layout,
    owner: String,
    name: String,
    package_url: String,
    here: String,
    filter: String,
    deleted: bool,
    rows: Vec<VersionRow>,
    total: u64,
    page: u64,
    pages: u64,
    may_delete: bool,
    may_restore: bool,
    /// The one version a version's page asked for.
    only: Option<i64>,
}

impl VersionsPage {
    fn link(&self, filter: &str, deleted: bool, page: u64) -> String {
        let mut query = Vec::new();
        if !filter.is_empty() {
            query.push(format!("filters%5Bversion_type%5D={filter}"));
        }
        if deleted {
            query.push("state=deleted".to_owned());
        }
        if page > 1 {
            query.push(format!("page={page}"));
        }
        if query.is_empty() {
            self.here.clone()
        } else {
            format!("{}?{}", self.here, query.join("&"))
        }
    }

    fn filter_link(&self, filter: &str) -> String {
        self.link(filter, self.deleted, 1)
    }

    fn state_link(&self) -> String {
        self.link(&self.filter, !self.deleted, 1)
    }

    fn page_link(&self, page: u64) -> String {
        self.link(&self.filter, self.deleted, page)
    }

    fn action(&self, id: &i64, action: &str) -> String {
        format!("{}/{id}/{action}", self.here)
    }

    /// A version's own page (the API's `html_url` of the version).
    fn version_link(&self, id: &i64) -> String {
        let versions = self.here.strip_suffix("/versions").unwrap_or(&self.here);
        format!("{versions}/{id}")
    }
}

async fn versions_page(
    viewer: &Viewer,
    web: &Web,
    uri: &Uri,
    owner: &str,
    name: &str,
    query: PageQuery,
    only: Option<i64>,
) -> PageResult {
    let name = package_name(web, uri, owner, name).await?;
    let tagged = match query.version_type.as_str() {
        "" | "all" => None,
        "tagged" => Some(true),
        "untagged" => Some(false),
        other => {
            return Err(PageError::Invalid(format!(
                "`{other}` is no version type: choose tagged or untagged"
            )));
        }
    };
    let deleted = query.state == "deleted";
    let state = if deleted {
        VersionState::Deleted
    } else {
        VersionState::Active
    };
    let page = query.page.unwrap_or(1).max(1);
    let (listing, rows) = match only {
        None => {
            let listing: VersionListing = web
                .services
                .packages
                .version_listing_readable(
                    &viewer.principal,
                    &name,
                    state,
                    tagged,
                    PageRequest {
                        page,
                        per_page: PER_PAGE,
                    },
                )
                .await?;
            let rows = listing
                .versions
                .iter()
                .map(|(v, refs)| version_row(&viewer.base, &name, v, refs))
                .collect();
            (listing, rows)
        }
        Some(id) => {
            let listing = web
                .services
                .packages
                .version_page_readable(&viewer.principal, &name, VersionId(id))
                .await?;
            let rows = listing
                .versions
                .iter()
                .map(|(v, refs)| version_row(&viewer.base, &name, v, refs))
                .collect();
            (listing, rows)
        }
    };
    let urls = PackageUrls::of("", &listing.summary.owner, &name);
    let view = VersionsPage {
        layout: Layout::new(viewer, format!("Versions of {}", short_name(&name))),
        owner: listing.summary.owner.login.clone(),
        name: short_name(&name).to_owned(),
        package_url: urls.page.clone(),
        here: urls.versions_list_page(),
        filter: tagged
            .map_or("", |t| if t { "tagged" } else { "untagged" })
            .to_owned(),
        deleted,
        rows,
        total: listing.total,
        page,
        pages: listing.total.div_ceil(PER_PAGE).max(1),
        may_delete: listing.may_delete,
        may_restore: listing.may_restore,
        only,
    };
    Ok(render(viewer, StatusCode::OK, &view))
}

async fn version_action(
    viewer: &Viewer,
    web: &Web,
    uri: &Uri,
    owner: &str,
    name: &str,
    id: i64,
    action: &str,
) -> PageResult {
    let name = package_name(web, uri, owner, name).await?;
    let back = urls_of(uri, &name).versions_list_page();
    match action {
        "delete" => {
            web.services
                .packages
                .delete_version_as(&viewer.principal, &name, VersionId(id), &viewer.base)
                .await?;
            Ok(see_other_with(
                viewer,
                &back,
                "success",
                &format!("Version {id} was deleted. You can restore it for 30 days."),
            ))
        }
        "restore" => {
            let restored = web
                .services
                .packages
                .restore_version_as(&viewer.principal, &name, VersionId(id))
                .await?;
            let mut message = format!("Version {id} was restored");
            if !restored.tags.is_empty() {
                message.push_str(&format!(" with tags {}", restored.tags.join(", ")));
            }
            if !restored.taken.is_empty() {
                message.push_str(&format!(
                    "; tags {} point to other versions now and stayed there",
                    restored.taken.join(", ")
                ));
            }
            message.push('.');
            Ok(see_other_with(
                viewer,
                &format!("{back}?state=deleted"),
                "success",
                &message,
            ))
        }
        _ => Err(PageError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_parse_from_their_end() {
        assert_eq!(
            route("package/api/worker"),
            Some(Route::Page("api/worker".into()))
        );
        assert_eq!(
            route("api/worker/versions"),
            Some(Route::Versions("api/worker".into()))
        );
        assert_eq!(
            route("api/worker/settings"),
            Some(Route::Settings("api/worker".into()))
        );
        assert_eq!(route("app/42"), Some(Route::Version("app".into(), 42)));
        assert_eq!(
            route("api/worker/versions/7/delete"),
            Some(Route::VersionAction(
                "api/worker".into(),
                7,
                "delete".into()
            ))
        );
        assert_eq!(
            route("api/worker/settings/visibility"),
            Some(Route::SettingsAction(
                "api/worker".into(),
                "visibility".into()
            ))
        );
        assert_eq!(route("app"), None);
        assert_eq!(route("versions/x/delete"), None);
    }

    #[test]
    fn digests_shorten_to_twelve_digits() {
        assert_eq!(
            short_digest("sha256:0123456789abcdef"),
            "sha256:0123456789ab"
        );
    }
}
