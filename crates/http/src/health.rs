//! Health routes: `GET /healthz` answers `200 ok` while the process serves. The binary
//! serves them on the plain-HTTP side listener (`plain_listen`).

use axum::Router;
use axum::routing::get;

/// The health routes, stateless.
pub fn router() -> Router {
    Router::new().route("/healthz", get(|| async { "ok" }))
}
