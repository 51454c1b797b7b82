//! Berth's HTTP edge.
//!
//! Path of a request: axum routes every `/v2` path to [`oci::dispatch`], which parses it into
//! an [`endpoint::Endpoint`] (pure), then calls one thin handler per endpoint group; handlers
//! call [`berth_core::registry::Registry`] and map the result. Errors become HTTP in exactly
//! one place, [`error`]. This crate never touches SQL or files. [`observe`] wraps every route:
//! metrics, the request log line and the request id.

pub mod api;
pub mod auth;
pub mod avatar;
pub mod connections;
pub mod endpoint;
pub mod error;
pub mod health;
pub mod observe;
pub mod oci;
pub mod origin;
pub mod ranges;
pub mod shared_counts;
pub mod tls;

use std::future::Future;

use axum::Router;
use axum::http::HeaderValue;
use axum::response::Response;
use berth_core::services::Services;
use tokio::net::TcpListener;

use auth::Auth;

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The services (registry, access, packages, hooks), built once by the binary.
    pub services: Services,
    /// Authentication: resolving credentials, signing registry tokens, the failure limiter.
    pub auth: Auth,
    /// The management API's rate limits.
    pub api_limits: std::sync::Arc<api::limits::RateLimiter>,
    /// Readiness: the stores' probes and the shutdown flag (`/healthz`, `/readyz`).
    pub health: health::Health,
    /// `/metrics`, when the binary installed a recorder (else the path is not served).
    pub metrics: Option<std::sync::Arc<observe::Exposition>>,
}

/// The application router over `state`. `pages` (the web UI) answers every path no other
/// route serves; without it, such paths answer the registry's JSON 404.
pub fn router(state: AppState, pages: Option<Router>) -> Router {
    let routes = Router::new()
        .route(
            "/token",
            axum::routing::get(auth::token).post(auth::oauth_token),
        )
        .nest(
            "/api/v3",
            api::router()
                .layer(axum::middleware::from_fn(api::etag::conditional))
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    api::limits::enforce,
                )),
        )
        .route("/avatars/u/{id}", axum::routing::get(avatar::identicon))
        // GitHub Enterprise Server's GraphQL path: the few queries GitHub's clients send to
        // learn who they are, under the REST API's rate limits.
        .merge(
            api::graphql::router().layer(axum::middleware::from_fn_with_state(
                state.clone(),
                api::limits::enforce,
            )),
        )
        .merge(
            api::root_router()
                .layer(axum::middleware::from_fn(api::etag::conditional))
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    api::limits::enforce,
                )),
        )
        .merge(health::router(state.health.clone()))
        .route("/v2", axum::routing::any(oci::dispatch))
        .route("/v2/", axum::routing::any(oci::dispatch))
        .route("/v2/{*rest}", axum::routing::any(oci::dispatch))
        .merge(observe::router(state.metrics.clone()));
    let routes = match pages {
        Some(pages) => routes.fallback_service(pages),
        None => routes.fallback(oci::not_found),
    };
    routes
        .layer(axum::middleware::map_response(api_version_header))
        // Outermost: sees every route (and the fallback) with its matched template.
        .layer(axum::middleware::from_fn(observe::observe))
        .with_state(state)
}

async fn api_version_header(mut response: Response) -> Response {
    response.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    response
}

/// Serves `state` on `listener` under `limits` until `shutdown` completes; requests in flight
/// finish. With `tls`, connections are TLS (HTTP/2 or HTTP/1.1 by ALPN). `pages`: see
/// [`router`].
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: AppState,
    pages: Option<Router>,
    limits: connections::ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    connections::serve(listener, tls, router(state, pages), limits, shutdown).await
}
