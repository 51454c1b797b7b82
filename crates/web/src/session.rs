//! Who is looking at a page: the session cookie, the CSRF token every form carries, the
//! flash message a form's redirect leaves for the next page.
//!
//! The cookie `berth_session` holds a session secret (`berthw_…`), HttpOnly, SameSite=Lax,
//! Secure when the page was served over TLS. A signed-in viewer's CSRF token is derived from
//! that secret (HMAC-SHA256 keyed by it), so nothing is stored for it and a page of another
//! site cannot know it; before signing in, the sign-in form's token is the double-submit
//! kind: a random `berth_csrf` cookie the form must repeat.

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use berth_core::access::store::Account;
use berth_core::access::token::{Secret, TokenKind};
use berth_core::access::{CredentialId, Principal};
use berth_http::origin::{Origin, OverTls};
use hmac::{KeyInit as _, Mac as _};
use subtle::ConstantTimeEq as _;

use crate::Web;
use crate::pages::error::PageError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "berth_session";
/// The sign-in form's double-submit cookie.
pub const CSRF_COOKIE: &str = "berth_csrf";
/// The flash message's cookie.
pub const FLASH_COOKIE: &str = "berth_flash";

/// The viewer of a page: signed in or not.
#[derive(Clone)]
pub struct Viewer {
    /// Their principal: anonymous, or the session's (the user's whole access).
    pub principal: Principal,
    /// The signed-in user.
    pub user: Option<Account>,
    /// The session, when signed in.
    pub session: Option<CredentialId>,
    /// The token every form of the page carries.
    pub csrf: String,
    /// Whether the request came over TLS (cookies get `Secure`).
    pub secure: bool,
    /// The URL clients reach Berth at.
    pub base: String,
    /// A message the previous form left.
    pub flash: Option<Flash>,
    /// The client's address (the sign-in limiter's key).
    pub client: std::net::IpAddr,
    /// A double-submit cookie to set (anonymous viewers without one).
    new_csrf_cookie: Option<String>,
}

/// A message shown once, on the page a form redirects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// `success` or `error`.
    pub kind: &'static str,
    /// The text.
    pub text: String,
}

impl Viewer {
    /// The signed-in user's login.
    pub fn login(&self) -> Option<&str> {
        self.user.as_ref().map(|user| user.login.as_str())
    }

    /// Whether `presented` is this page's CSRF token (constant-time).
    pub fn csrf_ok(&self, presented: &str) -> bool {
        !self.csrf.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }

    /// Adds the cookies this viewer needs set (the double-submit token, clearing a shown
    /// flash) to `response`.
    pub fn finish(&self, mut response: Response) -> Response {
        if let Some(token) = &self.new_csrf_cookie {
            let cookie = cookie(CSRF_COOKIE, token, None, self.secure);
            append_cookie(&mut response, &cookie);
        }
        if self.flash.is_some() {
            append_cookie(
                &mut response,
                &cookie(FLASH_COOKIE, "", Some(0), self.secure),
            );
        }
        response
    }
}

/// The CSRF token of the session whose secret is `secret`.
fn session_csrf(secret: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(b"berth web csrf");
    hex::encode(mac.finalize().into_bytes())
}

/// The value of cookie `name` in `headers`.
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, Secure over TLS; `max_age` in
/// seconds (`Some(0)` clears it; `None`: a browser-session cookie).
pub fn cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> String {
    let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        text.push_str("; Secure");
    }
    text
}

/// Appends a `Set-Cookie` header.
pub fn append_cookie(response: &mut Response, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

/// A flash message as its cookie's value (percent-encoded `kind:text`).
pub fn flash_cookie(kind: &'static str, text: &str, secure: bool) -> String {
    let value = percent_encoding::utf8_percent_encode(
        &format!("{kind}:{text}"),
        percent_encoding::NON_ALPHANUMERIC,
    )
    .to_string();
    cookie(FLASH_COOKIE, &value, Some(60), secure)
}

fn read_flash(headers: &HeaderMap) -> Option<Flash> {
    let raw = read_cookie(headers, FLASH_COOKIE)?;
    let text = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()?
        .into_owned();
    let (kind, text) = text.split_once(':')?;
    let kind = match kind {
        "success" => "success",
        _ => "error",
    };
    (!text.is_empty()).then(|| Flash {
        kind,
        text: text.chars().take(500).collect(),
    })
}

impl FromRequestParts<Web> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, Self::Rejection> {
        let origin = parts
            .extensions
            .get::<Origin>()
            .cloned()
            .ok_or_else(|| PageError::Internal("no request origin".into()).into_response())?;
        let secure =
            parts.extensions.get::<OverTls>().is_some() || origin.base_url.starts_with("https://");
        let flash = read_flash(&parts.headers);
        let mut viewer = Viewer {
            principal: Principal::Anonymous,
            user: None,
            session: None,
            csrf: String::new(),
            secure,
            base: origin.base_url.to_string(),
            flash,
            client: origin.client.ip(),
            new_csrf_cookie: None,
        };
        if let Some(secret) = read_cookie(&parts.headers, SESSION_COOKIE) {
            let resolved = web
                .services
                .access
                .session(secret)
                .await
                .map_err(|e| PageError::from(e).into_response())?;
            if let Some((id, principal)) = resolved {
                let user = web
                    .services
                    .access
                    .current_user(&principal)
                    .await
                    .map_err(|e| PageError::from(e).into_response())?;
                viewer.csrf = session_csrf(secret);
                viewer.principal = principal;
                viewer.user = Some(user);
                viewer.session = Some(id);
                return Ok(viewer);
            }
        }
        match read_cookie(&parts.headers, CSRF_COOKIE) {
            Some(token) if token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()) => {
                viewer.csrf = token.to_owned();
            }
            _ => {
                let token = hex::encode(Secret::generate(TokenKind::Session).hash());
                viewer.csrf = token.clone();
                viewer.new_csrf_cookie = Some(token);
            }
        }
        Ok(viewer)
    }
}
