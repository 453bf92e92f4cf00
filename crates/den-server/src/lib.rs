//! den's HTTP server: the REST API, sign-in, and operational endpoints.
//!
//! This is the only crate that knows HTTP. Handlers are thin: they extract, check who is
//! calling, call the store (or, later, a session handle), and map the result to a response.
//! Every route is registered through utoipa's router, so the OpenAPI document served at
//! `/api/openapi.json` lists exactly the routes that exist.
//!
//! Layout:
//! - [`routes`]: the router and one module per resource.
//! - `auth`: who is calling (cookies, tokens, CSRF), passwords, throttling, GitHub OAuth.
//! - `error`, `extract`: JSON errors and extractors that produce them.
//! - `observability`: request ids, request logs, Prometheus metrics.
//! - [`accounts`]: account operations shared with the CLI (`den user …`).
//! - [`budget`]: which monthly model spending cap applies to a person.

pub mod accounts;
mod auth;
pub mod budget;
mod error;
mod extract;
mod gateway;
mod git_gateway;
mod github_api;
mod github_token;
mod observability;
pub mod routes;
mod security_headers;
mod state;
mod validate;

pub use auth::github::GithubConfig;
pub use auth::throttle::ThrottleLimits;
pub use auth::{CSRF_HEADER, SESSION_COOKIE, SESSION_COOKIE_HTTPS};
pub use error::ApiError;
pub use gateway::{GatewayPolicy, serve_gateway};
pub use git_gateway::serve_git_gateway;
pub use github_token::GithubCredentials;
pub use observability::install_metrics_recorder;
pub use state::{AppState, ServerConfig};

/// WebSocket close code for "too slow; reconnect with `after=<seq>`" (private 4000–4999 range).
pub const CLOSE_RESUMABLE: u16 = 4008;
/// WebSocket close code for "den is restarting; reconnect with `after=<seq>`" (the standard
/// "service restart" code).
pub const CLOSE_RESTARTING: u16 = 1012;

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;

/// Serves `state` on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let app = routes::router(state);
    // Live events are small writes: without TCP_NODELAY, Nagle's algorithm holds each one
    // back until the client acknowledges the previous one.
    let listener = listener.tap_io(|stream| {
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
