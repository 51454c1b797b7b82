//! An account's page with its Packages tab: `GET /{login}?tab=packages` (users; an
//! organization's login answers its packages too) and `GET /orgs/{org}/packages`. Lists the
//! packages the viewer may see — exactly what `Packages::list_readable` admits, which is the
//! Packages API's listing — with search by name, a visibility filter and pages of 30.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_core::access::store::{Account, PackageFilter};
use berth_core::access::{AccountKind, Visibility};
use berth_core::github::urls::{PackageUrls, short_name};
use berth_core::packages::{PackageSummary, PageRequest};
use serde::Deserialize;

use super::error::{PageError, PageResult};
use crate::Web;
use crate::session::Viewer;
use crate::view::{Layout, ago, count, render, timestamp};

/// Packages per page of the tab.
pub const PER_PAGE: u64 = 30;

/// The tab's query: `q` (name contains), `visibility` (`public`, `internal`, `private`),
/// `page` (from 1).
#[derive(Debug, Default, Deserialize)]
pub struct TabQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    visibility: String,
    page: Option<u64>,
}

/// One row of the list.
pub struct Row {
    /// Name relative to the owner (`api/worker`).
    pub name: String,
    /// Its page.
    pub url: String,
    /// `public`, `internal` or `private`.
    pub visibility: &'static str,
    /// The description label.
    pub description: Option<String>,
    /// "3 days ago".
    pub updated_ago: String,
    /// RFC 3339.
    pub updated_at: String,
    /// Live versions.
    pub versions: String,
    /// Downloads of the live versions.
    pub downloads: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    account: Account,
    is_org: bool,
    avatar: String,
    rows: Vec<Row>,
    total: u64,
    q: String,
    visibility: String,
    page: u64,
    pages: u64,
    /// The tab's own URL (a form's action and the pages' links).
    here: String,
}

impl AccountPage {
    fn page_link(&self, page: u64) -> String {
        let mut link = format!("{}page={page}", self.query_prefix());
        if link.ends_with('&') {
            link.pop();
        }
        link
    }

    fn query_prefix(&self) -> String {
        let mut query = self.here.clone();
        query.push(if query.contains('?') { '&' } else { '?' });
        if !self.q.is_empty() {
            query.push_str(&format!("q={}&", encode(&self.q)));
        }
        if !self.visibility.is_empty() {
            query.push_str(&format!("visibility={}&", encode(&self.visibility)));
        }
        query
    }
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// `visibility`'s word as a filter; an unknown word is a 422.
fn visibility_filter(word: &str) -> Result<Option<Visibility>, PageError> {
    match word {
        "" | "all" => Ok(None),
        "public" => Ok(Some(Visibility::Public)),
        "internal" => Ok(Some(Visibility::Internal)),
        "private" => Ok(Some(Visibility::Private)),
        other => Err(PageError::Invalid(format!(
            "`{other}` is no visibility: choose public, internal or private"
        ))),
    }
}

/// The word GitHub shows for a visibility.
pub fn visibility_word(visibility: Visibility) -> &'static str {
    match visibility {
        Visibility::Public => "public",
        Visibility::Internal => "internal",
        Visibility::Private => "private",
    }
}

/// A package's row.
pub fn row(base: &str, summary: &PackageSummary) -> Row {
    let urls = PackageUrls::of("", &summary.owner, &summary.record.name);
    let _ = base;
    Row {
        name: short_name(&summary.record.name).to_owned(),
        url: urls.page,
        visibility: visibility_word(summary.record.visibility),
        description: summary.description().map(str::to_owned),
        updated_ago: ago(summary.updated_at),
        updated_at: timestamp(summary.updated_at),
        versions: count(summary.version_count),
        downloads: count(summary.downloads),
    }
}

/// `GET /{login}`: the account's Packages tab.
pub async fn profile(
    viewer: Viewer,
    State(web): State<Web>,
    Path(login): Path<String>,
    Query(query): Query<TabQuery>,
) -> Response {
    match packages_tab(&viewer, &web, &login, None, query).await {
        Ok(response) => response,
        Err(err) => err.page(&viewer),
    }
}

/// `GET /orgs/{org}/packages`: an organization's packages.
pub async fn org_packages(
    viewer: Viewer,
    State(web): State<Web>,
    Path(org): Path<String>,
    Query(query): Query<TabQuery>,
) -> Response {
    match packages_tab(&viewer, &web, &org, Some(AccountKind::Organization), query).await {
        Ok(response) => response,
        Err(err) => err.page(&viewer),
    }
}

async fn packages_tab(
    viewer: &Viewer,
    web: &Web,
    login: &str,
    kind: Option<AccountKind>,
    query: TabQuery,
) -> PageResult {
    let account = web.services.access.account(login, kind).await?;
    let visibility = visibility_filter(&query.visibility)?;
    let page = query.page.unwrap_or(1).max(1);
    let (total, packages) = web
        .services
        .packages
        .list_readable(
            &viewer.principal,
            &account,
            &PackageFilter {
                visibility,
                name_contains: Some(query.q.trim().to_owned()).filter(|q| !q.is_empty()),
            },
            PageRequest {
                page,
                per_page: PER_PAGE,
            },
        )
        .await?;
    let needle = query.q.trim().to_lowercase();
    let rows: Vec<Row> = packages
        .iter()
        .filter(|summary| {
            needle.is_empty()
                || short_name(&summary.record.name)
                    .to_lowercase()
                    .contains(&needle)
        })
        .map(|summary| row(&viewer.base, summary))
        .collect();
    let is_org = account.kind == AccountKind::Organization;
    let here = if is_org {
        format!("/orgs/{}/packages", account.login)
    } else {
        format!("/{}?tab=packages", account.login)
    };
    let page_view = AccountPage {
        layout: Layout::new(viewer, format!("{} · Packages", account.login)),
        avatar: berth_core::github::urls::avatar("", account.id),
        is_org,
        rows,
        total,
        q: query.q.trim().to_owned(),
        visibility: query.visibility,
        page,
        pages: total.div_ceil(PER_PAGE).max(1),
        here,
        account,
    };
    Ok(render(viewer, StatusCode::OK, &page_view))
}
