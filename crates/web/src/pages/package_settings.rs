//! A package's settings page, `…/packages/container/{name}/settings`, for its admins (who may
//! not see the package gets the 404 page, who sees it but is no admin the 403 page), and its
//! form actions `…/settings/{action}`: `visibility` (public asks for the typed name, and is
//! final, as core keeps it), `access` (a user's or team's role, `none` removes it),
//! `inherit` (access from the linked repository), `link` (an empty repository unlinks),
//! `job-access`, `delete` (typed name) and `restore`.

use askama::Template;
use axum::http::{StatusCode, Uri};
use berth_core::access::store::Grantee;
use berth_core::access::{GranteeName, ManageError, PackageSettings, Role, Visibility};
use berth_core::github::urls::short_name;

use super::error::{PageError, PageResult};
use super::package::{ActionForm, package_name, urls_of};
use super::see_other_with;
use crate::Web;
use crate::session::Viewer;
use crate::view::{Layout, ago, render};

/// A role given on the package, as the page lists it.
pub struct GrantRow {
    /// `user` or `team`.
    pub kind: &'static str,
    /// Login or slug.
    pub name: String,
    /// `read`, `write`, `admin`.
    pub role: &'static str,
}

#[derive(Template)]
#[template(path = "package_settings.html")]
struct SettingsPage {
    layout: Layout,
    owner: String,
    name: String,
    package_url: String,
    here: String,
    visibility: &'static str,
    grants: Vec<GrantRow>,
    /// Whether teams may be granted roles (an organization's package).
    teams: bool,
    linked: Option<String>,
    inherits: bool,
    job_access: Vec<(String, &'static str)>,
    deleted_ago: Option<String>,
}

impl SettingsPage {
    fn action(&self, action: &str) -> String {
        format!("{}/{action}", self.here)
    }
}

/// `GET …/{name}/settings`.
pub async fn page(viewer: &Viewer, web: &Web, uri: &Uri, owner: &str, name: &str) -> PageResult {
    let name = package_name(web, uri, owner, name).await?;
    let settings: PackageSettings = web
        .services
        .access
        .package_settings_as(&viewer.principal, &name)
        .await?;
    let urls = urls_of(uri, &name);
    let view = SettingsPage {
        layout: Layout::new(viewer, format!("Settings of {}", short_name(&name))),
        owner: name.owner().to_owned(),
        name: short_name(&name).to_owned(),
        package_url: urls.page.clone(),
        here: urls.settings_page(),
        // The path was checked against the owner's kind: `/orgs/…` is an organization's.
        teams: uri.path().starts_with("/orgs/"),
        visibility: settings.visibility.as_str(),
        grants: settings
            .grants
            .iter()
            .map(|grant| GrantRow {
                kind: match grant.grantee {
                    Grantee::User(_) => "user",
                    Grantee::Team(_) => "team",
                },
                name: grant.name.clone(),
                role: grant.role.as_str(),
            })
            .collect(),
        linked: settings.linked.clone(),
        inherits: settings.inherits,
        job_access: settings
            .job_access
            .iter()
            .map(|(repo, role)| (repo.clone(), role.as_str()))
            .collect(),
        deleted_ago: settings.deleted_at.map(ago),
    };
    Ok(render(viewer, StatusCode::OK, &view))
}

/// `read`, `write`, `admin`; `none` (or empty) removes.
fn role(word: &str) -> Result<Option<Role>, PageError> {
    match word {
        "" | "none" => Ok(None),
        "read" => Ok(Some(Role::Read)),
        "write" => Ok(Some(Role::Write)),
        "admin" => Ok(Some(Role::Admin)),
        other => Err(PageError::Invalid(format!(
            "`{other}` is no role: choose read, write or admin"
        ))),
    }
}

fn visibility(word: &str) -> Result<Visibility, PageError> {
    match word {
        "public" => Ok(Visibility::Public),
        "internal" => Ok(Visibility::Internal),
        "private" => Ok(Visibility::Private),
        other => Err(PageError::Invalid(format!(
            "`{other}` is no visibility: choose public, internal or private"
        ))),
    }
}

/// `POST …/{name}/settings/{action}` (the CSRF token is checked before this is called).
pub async fn action(
    viewer: &Viewer,
    web: &Web,
    uri: &Uri,
    owner: &str,
    name: &str,
    action: &str,
    form: ActionForm,
) -> PageResult {
    let name = package_name(web, uri, owner, name).await?;
    let back = urls_of(uri, &name).settings_page();
    let short = short_name(&name).to_owned();
    let typed = |what: &str| -> Result<(), String> {
        if form.confirm_name.trim() == short {
            Ok(())
        } else {
            Err(format!(
                "Type the package's name, {short}, to confirm that you want to {what}."
            ))
        }
    };
    let access = &web.services.access;
    let principal = &viewer.principal;
    let done: Result<String, ManageError> = match action {
        "visibility" => {
            let wanted = visibility(form.visibility.trim())?;
            if wanted == Visibility::Public
                && let Err(why) = typed("make it public")
            {
                return Ok(see_other_with(viewer, &back, "error", &why));
            }
            access
                .set_package_visibility_as(principal, &name, wanted)
                .await
                .map(|()| format!("{short} is {} now.", wanted.as_str()))
        }
        "access" => {
            let role = role(form.role.trim())?;
            let grantee_name = form.grantee.trim();
            let grantee = match form.grantee_kind.as_str() {
                "team" => GranteeName::Team(grantee_name),
                _ => GranteeName::User(grantee_name),
            };
            access
                .set_package_role_as(principal, &name, grantee, role)
                .await
                .map(|()| match role {
                    Some(role) => format!("{grantee_name} has the {} role now.", role.as_str()),
                    None => format!("{grantee_name} has no role on {short} now."),
                })
        }
        "inherit" => {
            let inherit = form.inherit == "on";
            let repository = form.repository.trim();
            if repository.is_empty() {
                return Ok(see_other_with(
                    viewer,
                    &back,
                    "error",
                    "Link a repository first: access is inherited from the linked repository.",
                ));
            }
            access
                .link_package_as(principal, &name, Some(repository), Some(inherit))
                .await
                .map(|()| {
                    if inherit {
                        format!("{short} inherits access from {repository} now.")
                    } else {
                        format!("{short} no longer inherits access from {repository}.")
                    }
                })
        }
        "link" => {
            let repository = form.repository.trim();
            let repo = (!repository.is_empty()).then_some(repository);
            access
                .link_package_as(principal, &name, repo, None)
                .await
                .map(|()| match repo {
                    Some(repo) => format!("{short} is linked to {repo} now."),
                    None => format!("{short} is linked to no repository now."),
                })
        }
        "job-access" => {
            let role = role(form.role.trim())?;
            let repository = form.repository.trim();
            access
                .set_package_job_access_as(principal, &name, repository, role)
                .await
                .map(|()| match role {
                    Some(role) => format!(
                        "Workflows of {repository} may use {short} with the {} role.",
                        role.as_str()
                    ),
                    None => format!("Workflows of {repository} may no longer use {short}."),
                })
        }
        "delete" => {
            if let Err(why) = typed("delete it") {
                return Ok(see_other_with(viewer, &back, "error", &why));
            }
            web.services
                .packages
                .delete_as(principal, &name)
                .await
                .map(|()| format!("{short} was deleted. Its admins can restore it for 30 days."))
        }
        "restore" => web
            .services
            .packages
            .restore_as(principal, &name)
            .await
            .map(|()| format!("{short} was restored.")),
        _ => return Err(PageError::NotFound),
    };
    match done {
        Ok(message) => Ok(see_other_with(viewer, &back, "success", &message)),
        // What the form asked does not fit the package: said on the page, as GitHub does.
        Err(ManageError::Invalid { message, .. } | ManageError::Conflict(message)) => {
            Ok(see_other_with(viewer, &back, "error", &message))
        }
        Err(other) => Err(other.into()),
    }
}
