//! The static assets, embedded in the binary: Primer CSS (vendored by
//! `scripts/vendor-web-assets`), Berth's few additions and its script. Pages link them with
//! a version query (`?v=<hash of the content>`), so they are cached for a year and a new
//! build's assets are fetched anew.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::Digest as _;

/// An embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: [Asset; 3] = [
    Asset {
        name: "primer.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/primer.css"),
    },
    Asset {
        name: "berth.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/berth.css"),
    },
    Asset {
        name: "berth.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/berth.js"),
    },
];

/// Each asset's version: the first 12 hex digits of its SHA-256.
static VERSIONS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| hex::encode(&sha2::Sha256::digest(asset.body)[..6]))
        .collect()
});

/// The URL of asset `name` with its version, for a page's `<link>` or `<script>`.
pub fn url(name: &str) -> String {
    let index = ASSETS
        .iter()
        .position(|asset| asset.name == name)
        .expect("pages link embedded assets only");
    format!("/assets/{name}?v={}", VERSIONS[index])
}

/// `GET /assets/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|asset| asset.name == file) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        asset.body,
    )
        .into_response()
}
