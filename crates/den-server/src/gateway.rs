//! The model gateway: how OpenCode inside a sandbox reaches a model provider.
//!
//! A sandbox cannot reach the host's addresses, so den serves this gateway on a host unix socket
//! that the sandbox sees as `127.0.0.1:GATEWAY_PORT`. OpenCode's provider entries point at
//! `/v1/<provider>` with the session's gateway token as their "API key"; the gateway checks the
//! token, forwards the request to the provider's configured upstream and adds the real key
//! there, so no provider key ever enters a sandbox.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use den_session::{ProviderConfig, ProviderKind};
use den_store::{Store, StoreError};
use futures::Stream;
use tokio::net::UnixListener;

use crate::auth::secret_token;
use crate::error::ApiError;

/// The largest request body forwarded (conversations with big tool outputs are large).
const MAX_BODY: usize = 32 * 1024 * 1024;
/// Request headers passed upstream; everything else (cookies, the gateway token) stays here.
const FORWARDED_HEADERS: &[&str] = &[
    "content-type",
    "accept",
    "anthropic-version",
    "anthropic-beta",
    "user-agent",
];

#[derive(Clone)]
struct Gateway {
    store: Store,
    providers: Arc<Vec<ProviderConfig>>,
    http: reqwest::Client,
}

/// Serves the gateway on `listener` until `shutdown` completes.
pub async fn serve_gateway(
    listener: UnixListener,
    store: Store,
    providers: Vec<ProviderConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(std::io::Error::other)?;
    let gateway = Gateway {
        store,
        providers: Arc::new(providers),
        http,
    };
    let app = Router::new()
        .route("/v1/{provider}/{*rest}", axum::routing::any(forward))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(gateway);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn forward(
    State(gateway): State<Gateway>,
    Path((provider, rest)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let token = gateway_token(&headers).ok_or(ApiError::Unauthorized)?;
    match gateway
        .store
        .session_by_gateway_token(&secret_token::hash(token))
        .await
    {
        Ok(_) => {}
        Err(StoreError::NotFound) => return Err(ApiError::Unauthorized),
        Err(err) => return Err(err.into()),
    }
    let provider = gateway
        .providers
        .iter()
        .find(|p| p.name == provider)
        .ok_or(ApiError::NotFound)?;
    let mut url = format!("{}/{rest}", provider.base_url.trim_end_matches('/'));
    if let Some(query) = uri.query() {
        url = format!("{url}?{query}");
    }
    let mut request = gateway.http.request(method, url).body(body);
    for name in FORWARDED_HEADERS {
        if let Some(value) = headers.get(*name) {
            request = request.header(*name, value);
        }
    }
    if let Some(key) = &provider.api_key {
        request = match provider.kind {
            ProviderKind::OpenAiCompatible => request.bearer_auth(key),
            ProviderKind::Anthropic => request.header("x-api-key", key),
        };
    }
    let upstream = request.send().await.map_err(|err| {
        ApiError::Unavailable(format!(
            "the provider {} did not answer: {err}",
            provider.name
        ))
    })?;
    Ok(relay(upstream))
}

/// The upstream response, streamed through as it arrives.
fn relay(upstream: reqwest::Response) -> Response {
    let status =
        StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = upstream.headers().get("content-type").cloned();
    let body: std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>> =
        Box::pin(upstream.bytes_stream());
    let mut response = (status, Body::from_stream(body)).into_response();
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(HeaderName::from_static("content-type"), content_type);
    }
    response
}

/// The token OpenCode sends: `Authorization: Bearer` (OpenAI format) or `x-api-key` (Anthropic).
fn gateway_token(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    bearer
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}
