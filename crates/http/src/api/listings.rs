//! The listings GitHub's tools call often: `GET /orgs/{org}/members`, `/orgs/{org}/teams`,
//! `/orgs/{org}/repos`, `/user/orgs`, `/user/repos`, `/users/{username}/repos`. Each asks one
//! [`berth_core::access::Access`] listing (which leaves out what the caller may not see),
//! pages the answer as GitHub does (`page`, `per_page` up to 100, the `Link` header) and
//! renders GitHub's objects from [`berth_core::github`].

use axum::extract::{OriginalUri, Path, Query, State};
use berth_core::access::{Affiliation, MyRepos, OrgRole, RepoVisibility};
use berth_core::github::{repos, users};
use berth_core::packages::PageRequest;
use serde::Deserialize;
use serde_json::Value;

use super::{ApiResult, GitHubError, Who};
use crate::AppState;

/// `page` and `per_page` of a listing.
#[derive(Debug, Deserialize, Default)]
pub struct Paging {
    page: Option<String>,
    per_page: Option<String>,
}

impl Paging {
    /// `page` (from 1) and `per_page` (default 30, at most 100), as GitHub reads them; a
    /// value that is no number is 422 naming the field of `resource`.
    pub(super) fn request(&self, resource: &str) -> ApiResult<PageRequest> {
        let number = |field: &'static str, text: &Option<String>, default: u64| match text {
            None => Ok(default),
            Some(text) => text.parse::<u64>().map_err(|_| {
                GitHubError::invalid(
                    resource,
                    field,
                    "invalid",
                    format!("`{text}` is not a number"),
                )
            }),
        };
        Ok(PageRequest {
            page: number("page", &self.page, 1)?.max(1),
            per_page: number("per_page", &self.per_page, 30)?.clamp(1, 100),
        })
    }
}

/// One page of `items`, rendered by `render`, with GitHub's `Link` header.
fn page<T>(
    who: &Who,
    uri: &OriginalUri,
    paging: &Paging,
    items: Vec<T>,
    render: impl Fn(&T) -> Value,
) -> ApiResult {
    let request = paging.request("Listing")?;
    let total = items.len() as u64;
    let skip =
        usize::try_from((request.page - 1).saturating_mul(request.per_page)).unwrap_or(usize::MAX);
    let shown = items
        .iter()
        .skip(skip)
        .take(request.per_page as usize)
        .map(render)
        .collect();
    Ok(super::packages::paged(
        &who.base, uri, request, total, shown,
    ))
}

/// The `role` filter of `GET /orgs/{org}/members`.
#[derive(Debug, Deserialize, Default)]
pub struct MembersQuery {
    role: Option<String>,
}

/// `GET /orgs/{org}/members` (`role=all|admin|member`, `admin` being the owners).
pub async fn org_members(
    State(state): State<AppState>,
    who: Who,
    uri: OriginalUri,
    Path(org): Path<String>,
    Query(paging): Query<Paging>,
    Query(query): Query<MembersQuery>,
) -> ApiResult {
    let wanted = match query.role.as_deref() {
        None | Some("all") => None,
        Some("admin") => Some(OrgRole::Owner),
        Some("member") => Some(OrgRole::Member),
        Some(other) => {
            return Err(GitHubError::invalid(
                "Membership",
                "role",
                "invalid",
                format!("`{other}` is not a role filter; use all, admin or member"),
            ));
        }
    };
    let mut members = state
        .auth
        .access
        .org_members_as(&who.principal, &org)
        .await?;
    members.retain(|(_, role)| wanted.is_none_or(|wanted| *role == wanted));
    page(&who, &uri, &paging, members, |(member, _)| {
        users::simple_user(&who.base, member)
    })
}

/// `GET /orgs/{org}/teams`.
pub async fn org_teams(
    State(state): State<AppState>,
    who: Who,
    uri: OriginalUri,
    Path(org): Path<String>,
    Query(paging): Query<Paging>,
) -> ApiResult {
    let teams = state.auth.access.teams_as(&who.principal, &org).await?;
    page(&who, &uri, &paging, teams, |team| {
        users::team(&who.base, team)
    })
}

/// `GET /orgs/{org}/repos`.
pub async fn org_repos(
    State(state): State<AppState>,
    who: Who,
    uri: OriginalUri,
    Path(org): Path<String>,
    Query(paging): Query<Paging>,
) -> ApiResult {
    let found = state.auth.access.org_repos_as(&who.principal, &org).await?;
    page(&who, &uri, &paging, found, |(repo, owner)| {
        repos::minimal_repository(&who.base, repo, owner)
    })
}

/// `GET /user/orgs`.
pub async fn my_orgs(
    State(state): State<AppState>,
    who: Who,
    uri: OriginalUri,
    Query(paging): Query<Paging>,
) -> ApiResult {
    let orgs = state.auth.access.my_orgs_as(&who.principal).await?;
    page(&who, &uri, &paging, orgs, |org| {
        users::organization_simple(&who.base, org)
    })
}

/// `visibility`, `affiliation` and `type` of `GET /user/repos`.
#[derive(Debug, Deserialize, Default)]
pub struct MyReposQuery {
    visibility: Option<String>,
    affiliation: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

impl MyReposQuery {
    /// The filter they ask for, as GitHub reads them: `type` (`all`, `owner`, `public`,
    /// `private`, `member`) is the older form of the other two and may not be combined with
    /// them (422, as on GitHub); an unknown value is 422 naming the field.
    fn filter(&self) -> ApiResult<MyRepos> {
        let invalid = |field: &str, value: &str, allowed: &str| {
            GitHubError::invalid(
                "Repository",
                field,
                "invalid",
                format!("`{value}` is not one of {allowed}"),
            )
        };
        let mut filter = MyRepos::default();
        if let Some(kind) = &self.kind {
            if self.visibility.is_some() || self.affiliation.is_some() {
                return Err(GitHubError::invalid(
                    "Repository",
                    "type",
                    "invalid",
                    "`type` may not be used with `visibility` or `affiliation`".into(),
                ));
            }
            match kind.as_str() {
                "all" => {}
                "owner" => filter.affiliations = vec![Affiliation::Owner],
                "public" => filter.visibility = RepoVisibility::Public,
                "private" => filter.visibility = RepoVisibility::Private,
                "member" => {
                    filter.affiliations =
                        vec![Affiliation::Collaborator, Affiliation::OrganizationMember]
                }
                other => {
                    return Err(invalid(
                        "type",
                        other,
                        "all, owner, public, private, member",
                    ));
                }
            }
            return Ok(filter);
        }
        if let Some(visibility) = &self.visibility {
            filter.visibility = match visibility.as_str() {
                "all" => RepoVisibility::All,
                "public" => RepoVisibility::Public,
                "private" => RepoVisibility::Private,
                other => return Err(invalid("visibility", other, "all, public, private")),
            };
        }
        if let Some(affiliation) = &self.affiliation {
            filter.affiliations = affiliation
                .split(',')
                .map(|one| match one.trim() {
                    "owner" => Ok(Affiliation::Owner),
                    "collaborator" => Ok(Affiliation::Collaborator),
                    "organization_member" => Ok(Affiliation::OrganizationMember),
                    other => Err(invalid(
                        "affiliation",
                        other,
                        "owner, collaborator, organization_member",
                    )),
                })
                .collect::<ApiResult<_>>()?;
        }
        Ok(filter)
    }
}

/// `GET /user/repos` (`visibility`, `affiliation`, `type` as GitHub takes them).
pub async fn my_repos(
    State(state): State<AppState>,
    who: Who,
    uri: OriginalUri,
    Query(paging): Query<Paging>,
    Query(wanted): Query<MyReposQuery>,
) -> ApiResult {
    let filter = wanted.filter()?;
    let found = state
        .auth
        .access
        .my_repos_as(&who.principal, filter)
        .await?;
    page(&who, &uri, &paging, found, |(repo, owner)| {
        repos::repository(&who.base, repo, owner)
    })
}

/// `GET /users/{username}/repos`.
pub async fn user_repos(
    State(state): State<AppState>,
    who: Who,
    uri: OriginalUri,
    Path(login): Path<String>,
    Query(paging): Query<Paging>,
) -> ApiResult {
    let (_, found) = state.auth.access.user_repos_as(&login).await?;
    page(&who, &uri, &paging, found, |(repo, owner)| {
        repos::minimal_repository(&who.base, repo, owner)
    })
}
