//! Signing in and out: `GET`/`POST /login`, `POST /logout`.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use berth_core::access::sessions::SignInError;
use berth_core::access::store::SessionFacts;
use serde::Deserialize;

use super::error::PageError;
use super::{check_csrf, local_path, see_other};
use crate::Web;
use crate::session::{CSRF_COOKIE, SESSION_COOKIE, Viewer, append_cookie, cookie};
use crate::view::{Layout, render};

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    layout: Layout,
    login: String,
    return_to: String,
    error: Option<String>,
}

/// The query of `GET /login`.
#[derive(Debug, Deserialize)]
pub struct Back {
    return_to: Option<String>,
}

/// `GET /login`: the form (a signed-in viewer goes on).
pub async fn form(viewer: Viewer, Query(back): Query<Back>) -> Response {
    let return_to = local_path(back.return_to.as_deref().unwrap_or("/")).to_owned();
    if viewer.user.is_some() {
        return see_other(&return_to);
    }
    let page = SignInPage {
        layout: Layout::new(&viewer, "Sign in"),
        login: String::new(),
        return_to,
        error: None,
    };
    render(&viewer, StatusCode::OK, &page)
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct SignIn {
    login: String,
    password: String,
    #[serde(default)]
    return_to: String,
    #[serde(default)]
    authenticity_token: String,
}

/// `POST /login`: a session and its cookie, or the form again with why. Failures count
/// against the client's address as failed registry logins do; past the limit the form
/// answers 429 until the window ends.
pub async fn submit(
    viewer: Viewer,
    State(web): State<Web>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    if let Err(err) = check_csrf(&viewer, &form.authenticity_token) {
        return err.page(&viewer);
    }
    let return_to = local_path(&form.return_to).to_owned();
    let again = |status: StatusCode, error: String| {
        let page = SignInPage {
            layout: Layout::new(&viewer, "Sign in"),
            login: form.login.clone(),
            return_to: return_to.clone(),
            error: Some(error),
        };
        render(&viewer, status, &page)
    };
    if let Some(wait) = web.limiter.blocked(viewer.client) {
        return again(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many failed sign-ins from your address. Try again in {} seconds.",
                wait.as_secs().max(1)
            ),
        );
    }
    let facts = SessionFacts {
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|agent| agent.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        address: viewer.client.to_string(),
    };
    match web
        .services
        .access
        .sign_in(
            form.login.trim(),
            &form.password,
            facts,
            web.session_lifetime,
        )
        .await
    {
        Ok(signed_in) => {
            let mut response = see_other(&return_to);
            let age = u64::try_from(web.session_lifetime / 1000).unwrap_or(0);
            append_cookie(
                &mut response,
                &cookie(
                    SESSION_COOKIE,
                    signed_in.secret.expose(),
                    Some(age),
                    viewer.secure,
                ),
            );
            append_cookie(
                &mut response,
                &cookie(CSRF_COOKIE, "", Some(0), viewer.secure),
            );
            response
        }
        Err(SignInError::Refused) => {
            web.limiter.failed(viewer.client);
            again(StatusCode::UNAUTHORIZED, SignInError::Refused.to_string())
        }
        Err(SignInError::Store(err)) => PageError::from(err).page(&viewer),
    }
}

/// The sign-out form.
#[derive(Debug, Deserialize)]
pub struct SignOut {
    #[serde(default)]
    authenticity_token: String,
}

/// `POST /logout`: ends the session and clears its cookie.
pub async fn sign_out(
    viewer: Viewer,
    State(web): State<Web>,
    Form(form): Form<SignOut>,
) -> Response {
    if let Err(err) = check_csrf(&viewer, &form.authenticity_token) {
        return err.page(&viewer);
    }
    if let Some(session) = viewer.session
        && let Err(err) = web.services.access.sign_out(session).await
    {
        return PageError::from(err).page(&viewer);
    }
    let mut response = see_other("/login");
    append_cookie(
        &mut response,
        &cookie(SESSION_COOKIE, "", Some(0), viewer.secure),
    );
    response
}
