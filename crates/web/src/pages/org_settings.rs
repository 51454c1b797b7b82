//! An organization's settings, for those who manage it (its owners and site
//! administrators, as core's use cases decide; anyone else gets the 404 page, as if there
//! were no such page): `/organizations/{org}/settings/packages` (the default visibility of
//! new packages and the visibilities members may create) and
//! `/organizations/{org}/settings/security` (require SSO-authorized tokens). Its webhooks are
//! [`super::hooks`].

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use berth_core::access::store::Account;
use berth_core::access::{ManageError, Visibility};

use super::error::PageError;
use super::settings::{Fields, Nav, back_with_error, respond};
use super::{check_csrf, see_other_with, signed_in};
use crate::Web;
use crate::session::Viewer;
use crate::view::{Layout, render};

/// A refusal of an organization's settings as a page: what the viewer may not manage is
/// not shown to exist.
pub fn hidden(err: ManageError) -> PageError {
    match err {
        ManageError::Forbidden(_) => PageError::NotFound,
        other => other.into(),
    }
}

/// A visibility as the form shows it.
pub struct Choice {
    value: &'static str,
    label: &'static str,
    help: &'static str,
    selected: bool,
}

const VISIBILITIES: [(Visibility, &str, &str); 3] = [
    (
        Visibility::Public,
        "Public",
        "Anyone may pull, signed in or not.",
    ),
    (
        Visibility::Internal,
        "Internal",
        "Every signed-in user of this Berth may pull.",
    ),
    (
        Visibility::Private,
        "Private",
        "Only those granted access may pull.",
    ),
];

#[derive(Template)]
#[template(path = "org_packages.html")]
struct PackagesPage {
    layout: Layout,
    nav: Nav,
    org: String,
    default: Vec<Choice>,
    members: Vec<Choice>,
}

/// `GET /organizations/{org}/settings/packages`.
pub async fn packages(
    viewer: Viewer,
    State(web): State<Web>,
    uri: Uri,
    Path(org): Path<String>,
) -> Response {
    let result = async {
        signed_in(&viewer, &uri)?;
        let org = managed(&viewer, &web, &org).await?;
        let policy = &org.policy;
        let choices = |selected: &dyn Fn(Visibility) -> bool| {
            VISIBILITIES
                .iter()
                .map(|(visibility, label, help)| Choice {
                    value: visibility.as_str(),
                    label,
                    help,
                    selected: selected(*visibility),
                })
                .collect::<Vec<_>>()
        };
        let page = PackagesPage {
            layout: Layout::new(&viewer, format!("{} · Packages settings", org.login)),
            nav: Nav::org(&org.login, "packages"),
            default: choices(&|v| v == policy.default_visibility),
            members: choices(&|v| policy.member_visibilities.contains(&v)),
            org: org.login.clone(),
        };
        Ok(render(&viewer, StatusCode::OK, &page))
    }
    .await;
    respond(&viewer, result)
}

async fn managed(viewer: &Viewer, web: &Web, org: &str) -> Result<Account, PageError> {
    web.services
        .access
        .org_managed_as(&viewer.principal, org)
        .await
        .map_err(hidden)
}

fn visibility(word: &str) -> Result<Visibility, PageError> {
    VISIBILITIES
        .iter()
        .map(|(v, _, _)| *v)
        .find(|v| v.as_str() == word)
        .ok_or_else(|| {
            PageError::Invalid(format!(
                "`{word}` is no visibility: choose public, internal or private"
            ))
        })
}

/// `POST /organizations/{org}/settings/packages`: `default_visibility` and the checkboxes
/// `member_visibilities` (none: members may not create packages).
pub async fn set_packages(
    viewer: Viewer,
    State(web): State<Web>,
    uri: Uri,
    Path(org): Path<String>,
    Form(form): Form<Fields>,
) -> Response {
    let back = format!("/organizations/{org}/settings/packages");
    let result = async {
        check_csrf(&viewer, form.csrf())?;
        signed_in(&viewer, &uri)?;
        let parsed = (|| {
            let default = visibility(form.get("default_visibility"))?;
            let members = form
                .all("member_visibilities")
                .map(visibility)
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, PageError>((default, members))
        })();
        let (default, members) = match parsed {
            Ok(parsed) => parsed,
            Err(err) => return back_with_error(&viewer, &back, err),
        };
        match web
            .services
            .access
            .set_package_policy_as(&viewer.principal, &org, Some(default), Some(members))
            .await
        {
            Ok(_) => Ok(see_other_with(
                &viewer,
                &back,
                "success",
                "Package settings saved.",
            )),
            Err(err @ ManageError::Forbidden(_)) => Err(hidden(err)),
            Err(err) => back_with_error(&viewer, &back, err.into()),
        }
    }
    .await;
    respond(&viewer, result)
}

#[derive(Template)]
#[template(path = "org_security.html")]
struct SecurityPage {
    layout: Layout,
    nav: Nav,
    org: String,
    requires_sso: bool,
}

/// `GET /organizations/{org}/settings/security`.
pub async fn security(
    viewer: Viewer,
    State(web): State<Web>,
    uri: Uri,
    Path(org): Path<String>,
) -> Response {
    let result = async {
        signed_in(&viewer, &uri)?;
        let org = managed(&viewer, &web, &org).await?;
        let page = SecurityPage {
            layout: Layout::new(&viewer, format!("{} · Authentication security", org.login)),
            nav: Nav::org(&org.login, "security"),
            requires_sso: org.requires_sso,
            org: org.login,
        };
        Ok(render(&viewer, StatusCode::OK, &page))
    }
    .await;
    respond(&viewer, result)
}

/// `POST /organizations/{org}/settings/security`: the checkbox `requires_sso`.
pub async fn set_security(
    viewer: Viewer,
    State(web): State<Web>,
    uri: Uri,
    Path(org): Path<String>,
    Form(form): Form<Fields>,
) -> Response {
    let back = format!("/organizations/{org}/settings/security");
    let result = async {
        check_csrf(&viewer, form.csrf())?;
        signed_in(&viewer, &uri)?;
        let required = form.checked("requires_sso");
        web.services
            .access
            .set_requires_sso_as(&viewer.principal, &org, required)
            .await
            .map_err(hidden)?;
        let text = if required {
            "Classic tokens must now be authorized for this organization's SSO."
        } else {
            "Tokens no longer need SSO authorization for this organization."
        };
        Ok(see_other_with(&viewer, &back, "success", text))
    }
    .await;
    respond(&viewer, result)
}
