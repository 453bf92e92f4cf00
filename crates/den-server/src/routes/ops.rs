//! Health, readiness, metrics and the OpenAPI document. None needs sign-in.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "alive", body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// Ready for new requests: the database answers and den is not stopping (a load balancer
/// takes a stopping node out of rotation while its sessions drain).
#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, description = "ready", body = String),
    (status = 503, description = "the database does not answer, or den is stopping", body = den_protocol::error::ErrorBody),
))]
async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    if state
        .sessions()
        .is_ok_and(den_session::SessionManager::is_stopping)
    {
        return Err(ApiError::Unavailable("den is stopping".to_owned()));
    }
    state
        .store()
        .ping()
        .await
        .map_err(|_| ApiError::Unavailable("the database does not answer".to_owned()))?;
    Ok("ready")
}

/// Prometheus metrics: requests by route and status, and their latency.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus text format", body = String)))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics().render(),
    )
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "ops", responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
async fn openapi_json() -> impl IntoResponse {
    Json(super::openapi())
}
