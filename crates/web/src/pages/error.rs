//! Failures as pages: one 404 page for what is missing and what the viewer may not see, a
//! 403 page naming what is missing for what they see but may not do, 422 for a form's bad
//! input, 503/500 when a store fails.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_core::access::ManageError;
use berth_core::error::{StoreError, StoreErrorKind};

use crate::session::Viewer;
use crate::view::{Layout, render};

/// Why a page or form action failed.
#[derive(Debug)]
pub enum PageError {
    /// The page needs a signed-in user: the redirect to sign in, and back to this path.
    SignIn(String),
    /// Missing, or not the viewer's to see.
    NotFound,
    /// Seen, but not the viewer's to do; the text says what is missing.
    Forbidden(String),
    /// A form's input is wrong; the text says how.
    Invalid(String),
    /// Conflicts with the state of the thing; the text says what to do.
    Conflict(String),
    /// A store is unavailable: try again.
    Unavailable(String),
    /// Anything else.
    Internal(String),
}

impl From<ManageError> for PageError {
    fn from(err: ManageError) -> Self {
        match err {
            ManageError::NotFound(_) => PageError::NotFound,
            // Signed out: the pages that need a user send to sign-in before asking core;
            // one that gets here reads as missing.
            ManageError::Unauthenticated(_) => PageError::NotFound,
            ManageError::Forbidden(why) => PageError::Forbidden(why),
            ManageError::Conflict(why) => PageError::Conflict(why),
            ManageError::Invalid { message, .. } => PageError::Invalid(message),
            ManageError::Store(err) => err.into(),
        }
    }
}

impl From<StoreError> for PageError {
    fn from(err: StoreError) -> Self {
        match err.kind() {
            StoreErrorKind::NotFound => PageError::NotFound,
            StoreErrorKind::Unavailable => PageError::Unavailable(err.to_string()),
            _ => PageError::Internal(err.to_string()),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    heading: String,
    detail: String,
}

impl PageError {
    /// The status and what the page says.
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            PageError::SignIn(_) => (
                StatusCode::UNAUTHORIZED,
                "Sign in",
                "Sign in to see this page.".into(),
            ),
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "Page not found",
                "This is not the page you are looking for: it does not exist, or you may not see it. If it is yours, sign in.".into(),
            ),
            PageError::Forbidden(why) => (StatusCode::FORBIDDEN, "Not allowed", why.clone()),
            PageError::Invalid(why) => (StatusCode::UNPROCESSABLE_ENTITY, "That did not work", why.clone()),
            PageError::Conflict(why) => (StatusCode::CONFLICT, "That did not work", why.clone()),
            PageError::Unavailable(why) => {
                tracing::warn!(error = %why, "a page's store is unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Try again in a moment",
                    "Berth cannot reach its storage right now.".into(),
                )
            }
            PageError::Internal(why) => {
                tracing::error!(error = %why, "a page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Berth could not show this page; the server's log says why.".into(),
                )
            }
        }
    }

    /// The error page for `viewer`.
    pub fn page(self, viewer: &Viewer) -> Response {
        if let PageError::SignIn(back) = &self {
            let back =
                percent_encoding::utf8_percent_encode(back, percent_encoding::NON_ALPHANUMERIC);
            return super::see_other(&format!("/login?return_to={back}"));
        }
        let (status, heading, detail) = self.parts();
        let page = ErrorPage {
            layout: Layout::new(viewer, heading),
            heading: heading.to_owned(),
            detail,
        };
        render(viewer, status, &page)
    }
}

/// Without a viewer (the viewer itself could not be read): a plain answer.
impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, detail) = self.parts();
        (status, format!("{heading}: {detail}")).into_response()
    }
}

/// A page handler's result: the page, or the error page.
pub type PageResult = Result<Response, PageError>;
