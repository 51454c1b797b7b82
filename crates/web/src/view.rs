//! What every page shares: the layout's values, the response headers, and small formatting
//! helpers (times, sizes, icons).

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::ports::{Millis, now_millis};

use crate::assets;
use crate::session::{Flash, Viewer};

/// The values of `base.html`: title, the signed-in user, the CSRF token of its forms, the
/// flash message.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The page's title (before " · Berth").
    pub title: String,
    /// The signed-in user's login.
    pub login: Option<String>,
    /// The signed-in user's avatar URL.
    pub avatar: Option<String>,
    /// The token every form carries.
    pub csrf: String,
    /// The message the previous form left.
    pub flash: Option<Flash>,
    /// Primer's stylesheet URL.
    pub primer_css: String,
    /// Berth's stylesheet URL.
    pub berth_css: String,
    /// Berth's script URL.
    pub berth_js: String,
}

impl Layout {
    /// The layout of a page titled `title` for `viewer`.
    pub fn new(viewer: &Viewer, title: impl Into<String>) -> Layout {
        Layout {
            title: title.into(),
            login: viewer.login().map(str::to_owned),
            avatar: viewer
                .user
                .as_ref()
                .map(|user| berth_core::github::urls::avatar("", user.id)),
            csrf: viewer.csrf.clone(),
            flash: viewer.flash.clone(),
            primer_css: assets::url("primer.css"),
            berth_css: assets::url("berth.css"),
            berth_js: assets::url("berth.js"),
        }
    }
}

/// Renders `page` with `status` and the headers every page has: HTML, no caching (pages
/// show what one viewer may see), a content security policy that admits only Berth's own
/// assets, no framing.
pub fn render(viewer: &Viewer, status: StatusCode, page: &impl Template) -> Response {
    let body = match page.render() {
        Ok(body) => body,
        Err(err) => {
            tracing::error!(error = %err, "rendering a page failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "rendering the page failed",
            )
                .into_response();
        }
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    viewer.finish(response)
}

/// "3 days ago", "just now", "in 5 hours" for a time `at`.
pub fn ago(at: Millis) -> String {
    let now = now_millis();
    let (seconds, future) = if at > now {
        ((at - now) / 1000, true)
    } else {
        ((now - at) / 1000, false)
    };
    let (count, unit) = match seconds {
        0..=59 => return "just now".to_owned(),
        60..=3599 => (seconds / 60, "minute"),
        3600..=86_399 => (seconds / 3600, "hour"),
        86_400..=2_591_999 => (seconds / 86_400, "day"),
        2_592_000..=31_535_999 => (seconds / 2_592_000, "month"),
        _ => (seconds / 31_536_000, "year"),
    };
    let plural = if count == 1 { "" } else { "s" };
    if future {
        format!("in {count} {unit}{plural}")
    } else {
        format!("{count} {unit}{plural} ago")
    }
}

/// An RFC 3339 time (UTC), for `<time datetime>` and titles.
pub fn timestamp(at: Millis) -> String {
    berth_core::github::time(at)
}

/// A size in bytes for people: "12.3 MiB".
pub fn size(bytes: u64) -> String {
    bytesize::ByteSize(bytes).display().iec().to_string()
}

/// An octicon's SVG, hidden from assistive technology (the text beside it says what it
/// means).
pub fn icon(paths: &str) -> String {
    format!(
        r#"<svg class="berth-octicon" width="16" height="16" viewBox="0 0 16 16" aria-hidden="true" focusable="false">{paths}</svg>"#
    )
}

/// A count with thousands separators: 12,345.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn times_read_as_people_say_them() {
        let now = now_millis();
        assert_eq!(ago(now), "just now");
        assert_eq!(ago(now - 61_000), "1 minute ago");
        assert_eq!(ago(now - 3 * 86_400_000 - 1000), "3 days ago");
        assert_eq!(ago(now + 2 * 3_600_000 + 5000), "in 2 hours");
    }
}
