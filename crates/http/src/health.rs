//! Health endpoints for load balancers and orchestrators, outside authentication and the
//! API's rate limits:
//!
//! - `GET /healthz`: 200 `ok` while the process serves requests at all.
//! - `GET /readyz`: 200 when the metadata store and the blob store each answer their probe
//!   within [`PROBE_DEADLINE`], with a small JSON object naming each part `ok`; otherwise
//!   503 naming the failing part and why. From the moment a shutdown begins it answers 503
//!   `shutting down`, so balancers stop sending before connections drain.
//!
//! Calls the stores only through their ports' `probe`; knows nothing of SQL or files.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::ports::{BlobStore, MetadataStore, StoreResult};
use serde_json::json;

/// How long each store's probe may take before the store counts as not ready.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(2);

/// What the readiness check asks, and whether the server is shutting down. Cheap to clone.
#[derive(Clone)]
pub struct Health {
    metadata: Arc<dyn MetadataStore>,
    blobs: Arc<dyn BlobStore>,
    shutting_down: Arc<AtomicBool>,
}

impl Health {
    /// The readiness of `metadata` and `blobs` (the same handles the services use).
    pub fn new(metadata: Arc<dyn MetadataStore>, blobs: Arc<dyn BlobStore>) -> Self {
        Health {
            metadata,
            blobs,
            shutting_down: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Marks the server as shutting down: `/readyz` answers 503 from now on.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }
}

/// The health routes over `health`, for the main router or a listener of their own.
pub fn router<S: Clone + Send + Sync + 'static>(health: Health) -> Router<S> {
    Router::new()
        .route("/healthz", axum::routing::get(healthz))
        .route("/readyz", axum::routing::get(readyz))
        .with_state(health)
}

async fn healthz() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        "ok\n",
    )
        .into_response()
}

async fn readyz(State(health): State<Health>) -> Response {
    if health.shutting_down.load(Ordering::SeqCst) {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "shutting down" }),
        );
    }
    let (metadata, blobs) = tokio::join!(
        within_deadline(health.metadata.probe()),
        within_deadline(health.blobs.probe()),
    );
    let ready = metadata.is_none() && blobs.is_none();
    let part = |failure: Option<String>| failure.unwrap_or_else(|| "ok".to_owned());
    let body = json!({
        "status": if ready { "ok" } else { "unavailable" },
        "metadata": part(metadata),
        "blobs": part(blobs),
    });
    if ready {
        reply(StatusCode::OK, body)
    } else {
        tracing::warn!(%body, "not ready");
        reply(StatusCode::SERVICE_UNAVAILABLE, body)
    }
}

/// `None` when `probe` succeeded in time, else what went wrong.
async fn within_deadline(probe: impl Future<Output = StoreResult<()>>) -> Option<String> {
    match tokio::time::timeout(PROBE_DEADLINE, probe).await {
        Ok(Ok(())) => None,
        Ok(Err(err)) => Some(format!("failing: {err}")),
        Err(_) => Some(format!(
            "failing: no answer within {} s",
            PROBE_DEADLINE.as_secs()
        )),
    }
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
