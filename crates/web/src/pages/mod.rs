//! The pages, one module per area; what they share: redirects, the signed-in requirement,
//! the CSRF check of every form action.

pub mod account;
pub mod error;
pub mod hooks;
pub mod org_settings;
pub mod package;
pub mod package_settings;
pub mod settings;
pub mod signin;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use berth_core::access::store::Account;

use crate::Web;
use crate::session::{Viewer, append_cookie, flash_cookie};
use error::PageError;

/// `GET /`: the signed-in user's packages, else sign-in.
pub async fn home(viewer: Viewer, State(_web): State<Web>) -> Response {
    match viewer.login() {
        Some(login) => see_other(&format!("/{login}?tab=packages")),
        None => see_other("/login"),
    }
}

/// Every path no page serves: the 404 page.
pub async fn not_found(viewer: Viewer) -> Response {
    PageError::NotFound.page(&viewer)
}

/// A `303 See Other` to `to` (after a form, the browser GETs it).
pub fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A redirect to `to` that leaves a flash message for the page there.
pub fn see_other_with(viewer: &Viewer, to: &str, kind: &'static str, text: &str) -> Response {
    let mut response = see_other(to);
    append_cookie(&mut response, &flash_cookie(kind, text, viewer.secure));
    response
}

/// The signed-in user, or [`PageError::SignIn`] (the redirect to sign in, and back to `uri`
/// after).
pub fn signed_in<'a>(viewer: &'a Viewer, uri: &Uri) -> Result<&'a Account, PageError> {
    viewer.user.as_ref().ok_or_else(|| {
        PageError::SignIn(uri.path_and_query().map_or("/", |p| p.as_str()).to_owned())
    })
}

/// Refuses a form action whose CSRF token is not the viewer's: 403 (and nothing done).
pub fn check_csrf(viewer: &Viewer, presented: &str) -> Result<(), PageError> {
    if viewer.csrf_ok(presented) {
        Ok(())
    } else {
        Err(PageError::Forbidden(
            "The form was stale or did not come from this site (its security token did not match). Reload the page and try again.".into(),
        ))
    }
}

/// A path the sign-in form may send the browser back to: a local path only (never
/// `//host` or a scheme), else `/`.
pub fn local_path(path: &str) -> &str {
    let local = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.contains(['\r', '\n']);
    if local { path } else { "/" }
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(local_path("/acme?tab=packages"), "/acme?tab=packages");
        assert_eq!(local_path("//evil.example/"), "/");
        assert_eq!(local_path("https://evil.example/"), "/");
        assert_eq!(local_path("/\\evil.example"), "/");
        assert_eq!(local_path(""), "/");
    }
}
