//! Request ids, request logs and Prometheus metrics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Installs the process-wide metrics recorder once and returns its handle (later calls return
/// the same handle, so tests can start several servers in one process).
pub fn install_metrics_recorder() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only when another recorder is installed; den installs none, so ignoring the
            // error just means metrics go to that recorder instead.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Counts requests by route and status and records their latency. The route label is the
/// matched route pattern (`/api/sessions/{id}`), never the raw path, so the label set stays small
/// and no secret in a path (a sign-in link's token) reaches a metric or the request log.
pub(crate) async fn record_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    // The request's log span (made before routing) learns the route here.
    tracing::Span::current().record("route", route.as_str());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("den_http_requests_total", &labels).increment(1);
    metrics::histogram!("den_http_request_duration_seconds", &labels[..2])
        .record(started.elapsed().as_secs_f64());
    response
}
