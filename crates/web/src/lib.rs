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

/// The user's and organizations' settings pages and their form actions.
fn settings_routes() -> Router<Web> {
    use pages::{hooks, org_settings, settings};
    let org = "/organizations/{org}/settings";
    let mut router = Router::new()
        .route(
            "/settings",
            get(|| async { pages::see_other("/settings/tokens") }),
        )
        .route(
            "/settings/tokens",
            get(settings::tokens).post(settings::create_classic),
        )
        .route("/settings/tokens/new", get(settings::new_classic))
        .route("/settings/tokens/{id}/revoke", post(settings::revoke_token))
        .route(
            "/settings/personal-access-tokens",
            post(settings::create_fine_grained),
        )
        .route(
            "/settings/personal-access-tokens/new",
            get(settings::new_fine_grained),
        )
        .route("/settings/sessions", get(settings::sessions))
        .route(
            "/settings/sessions/{id}/revoke",
            post(settings::revoke_session),
        )
        .route("/settings/security", get(settings::security))
        .route(
            "/settings/security/password",
            post(settings::change_password),
        )
        .route(
            &format!("{org}/packages"),
            get(org_settings::packages).post(org_settings::set_packages),
        )
        .route(
            &format!("{org}/security"),
            get(org_settings::security).post(org_settings::set_security),
        );
    // The same hook pages serve the user's and an organization's hooks.
    for base in ["/settings/hooks".to_owned(), format!("{org}/hooks")] {
        router = router
            .route(&base, get(hooks::list).post(hooks::create))
            .route(&format!("{base}/new"), get(hooks::new))
            .route(
                &format!("{base}/{{id}}"),
                get(hooks::show).post(hooks::update),
            )
            .route(&format!("{base}/{{id}}/delete"), post(hooks::delete))
            .route(&format!("{base}/{{id}}/pings"), post(hooks::ping))
            .route(
                &format!("{base}/{{id}}/deliveries/{{delivery}}/redeliver"),
                post(hooks::redeliver),
            );
    }
    router
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
        .merge(settings_routes())
        .fallback(pages::not_found)
        .with_state(web)
}
