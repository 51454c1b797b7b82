//! Berth's web UI: GitHub-shaped pages — sign-in, an account's Packages tab, package pages,
//! package settings, and the user's and organizations' settings — rendered on the server
//! from askama templates, styled with GitHub's Primer CSS (vendored, embedded in the binary).
//!
//! A front like the others: each handler reads the [`session::Viewer`], parses the request
//! into domain values, makes one call into the core [`Services`] (which decide with the same
//! rules as the API) and renders. Every form carries a CSRF token; every page the viewer may
//! not see answers the one 404 page. Pages read without JavaScript; `berth.js` adds copy
//! buttons and confirmations.

pub mod assets;
pub mod octicons;
pub mod pages;
pub mod session;
pub mod view;

use axum::Router;
use axum::routing::{get, post};
use berth_core::services::Services;
use berth_http::auth::FailureLimiter;
use std::sync::Arc;

/// What the web UI's handlers share.
#[derive(Clone)]
pub struct Web {
    /// The core services, built once by the binary.
    pub services: Services,
    /// Failed sign-ins per client address: the limiter failed registry logins use.
    pub limiter: Arc<FailureLimiter>,
    /// How long a session lasts, in milliseconds.
    pub session_lifetime: i64,
}

/// The web UI's router: the pages, their form actions and the assets; its fallback is the
/// 404 page, so it is meant to be the server's fallback.
pub fn router(web: Web) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/assets/{file}", get(assets::serve))
        .route(
            "/login",
            get(pages::signin::form).post(pages::signin::submit),
        )
        .route("/logout", post(pages::signin::sign_out))
        .route("/{login}", get(pages::account::profile))
        .route("/orgs/{org}/packages", get(pages::account::org_packages))
        .route(
            "/orgs/{owner}/packages/container/{*rest}",
            get(pages::package::get).post(pages::package::post),
        )
        .route(
            "/users/{owner}/packages/container/{*rest}",
            get(pages::package::get).post(pages::package::post),
        )
        .fallback(pages::not_found)
        .with_state(web)
}
