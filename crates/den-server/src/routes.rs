//! The router: every route, its OpenAPI description, and the layers around them.

mod auth;
mod branches;
mod budget;
mod changes;
mod credentials;
mod github_link;
mod key_test;
mod live;
mod models;
mod ops;
mod pull_request;
mod repositories;
mod sessions;
mod tokens;

use std::sync::OnceLock;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::response::IntoResponse;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::error::ApiError;
use crate::observability::record_request;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(OpenApi)]
#[openapi(
    info(title = "den", description = "den's HTTP API. Sign in with the session cookie (browser) or `Authorization: Bearer den_…`."),
    modifiers(&SecuritySchemes),
    // The streaming protocol's messages are not request or response bodies of a plain route,
    // so they are listed here to put them in the document (and in the web client's types).
    components(schemas(
        den_protocol::events::SequencedEvent,
        den_protocol::events::SessionEvent,
        den_protocol::events::ClientMessage,
        den_protocol::events::ServerMessage,
        den_protocol::events::SessionListUpdate,
    )),
    tags(
        (name = "auth", description = "Signing in and out"),
        (name = "tokens", description = "API tokens for scripts and the CLI"),
        (name = "sessions", description = "Coding sessions"),
        (name = "models", description = "Models, provider keys and personal model endpoints"),
        (name = "git", description = "Credentials for git hosts and the repositories a person can use"),
        (name = "ops", description = "Health, readiness, metrics and this document"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::SESSION_COOKIE))),
        );
    }
}

/// Every documented route. Routes are only ever added here, through `routes!`, which registers
/// the handler and its OpenAPI entry together.
fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(ops::router())
        .merge(auth::router())
        .merge(tokens::router())
        .merge(sessions::router())
        .merge(changes::router())
        .merge(credentials::router())
        .merge(pull_request::router())
        .merge(github_link::router())
        .merge(branches::router())
        .merge(repositories::router())
        .merge(live::router())
        .merge(models::router())
        .merge(budget::router())
        .merge(key_test::router())
}

/// The OpenAPI document of every route (built once).
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| api_router().into_openapi())
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config().body_limit_bytes;
    let (api, _) = api_router().split_for_parts();
    api.route_layer(axum::middleware::from_fn(record_request))
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::security_headers::add,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let request_id = request
                    .extensions()
                    .get::<RequestId>()
                    .and_then(|id| id.header_value().to_str().ok())
                    .unwrap_or_default();
                // Never the raw path: it can hold a secret (a one-time sign-in link's token).
                // The matched route pattern is recorded once routing has found it.
                tracing::info_span!("request", method = %request.method(), route = tracing::field::Empty, request_id)
            })
            // One line per request at info: status and latency, inside the request's span.
            .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        // Keeps credentials out of request logs.
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
            axum::http::header::COOKIE,
        ]))
        .with_state(state)
}

/// Unknown API paths get a JSON 404; every other path is the web client's (its files, or its
/// `index.html` for client-side routes such as `/s/<id>`).
async fn fallback(request: axum::extract::Request) -> axum::response::Response {
    if request.uri().path().starts_with("/api/") {
        return ApiError::NotFound.into_response();
    }
    den_web::serve(request).await
}
