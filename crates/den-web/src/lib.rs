//! The web client, served by den at `/`.
//!
//! Every path that is not an API route is the client's: a file of the built app when one
//! matches, else `index.html`, so client-side routes such as `/s/<id>` survive a reload.
//! Hashed asset names (Vite's `assets/index-<hash>.js`) are cached for a year; HTML is always
//! revalidated so a new den release is picked up at once.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use memory_serve::CacheControl;
use tower::ServiceExt;

/// True when den was built with the real client (not the "how to build it" placeholder).
pub const BUILT: bool = cfg!(den_web_built);

fn router() -> &'static Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER.get_or_init(|| {
        if cfg!(all(debug_assertions, den_web_built)) {
            return disk_router();
        }
        memory_serve::load!()
            .index_file(Some("/index.html"))
            .fallback(Some("/index.html"))
            .fallback_status(StatusCode::OK)
            .html_cache_control(CacheControl::NoCache)
            .cache_control(CacheControl::Long)
            .into_router()
    })
}

/// Debug builds read `web/dist` at request time, whatever it holds now: a debug den keeps
/// working after `npm run build` renames the hashed bundles (memory-serve would fix the list of
/// files at compile time and answer the new names with index.html, a blank page).
fn disk_router() -> Router {
    let dist = concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/dist");
    let index = tower_http::services::ServeFile::new(format!("{dist}/index.html"));
    Router::new().fallback_service(tower_http::services::ServeDir::new(dist).fallback(index))
}

/// Serves one request for the web client. Use as (part of) the server's fallback, after the
/// API routes: it answers every path.
pub async fn serve(request: Request) -> Response {
    // A missing asset must not turn into the HTML page: a stale tab asking for an old bundle
    // would otherwise get HTML as JavaScript.
    let missing_asset = request.uri().path().starts_with("/assets/");
    match router().clone().oneshot(request).await {
        Ok(response) if missing_asset && is_html(&response) => {
            StatusCode::NOT_FOUND.into_response()
        }
        Ok(response) => response,
        Err(never) => match never {},
    }
}

fn is_html(response: &Response) -> bool {
    response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}
