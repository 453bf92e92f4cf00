//! The browser-facing defences every response carries, API and web client alike.
//!
//! The policy allows only den's own scripts: the client is one bundle served from den's own
//! origin, with no inline script, so an injected `<script>` (say, through markdown an agent
//! wrote) never runs. Styles may be inline because React and the highlighter set style
//! attributes; a style cannot run code. Images are den's own or `data:` (the favicon), so a
//! transcript cannot make the browser fetch a tracking pixel from elsewhere. No page may be
//! framed (clickjacking), and no URL leaks in a `Referer` (share and sign-in links carry tokens).

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// The Content-Security-Policy of every response.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The headers every response carries.
const HEADERS: [(HeaderName, &str); 5] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    // For browsers that predate `frame-ancestors`.
    (header::X_FRAME_OPTIONS, "DENY"),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    ),
];

/// One year, the usual HSTS lifetime; only sent when den is served over https.
const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// Middleware adding the headers. A handler that sets one of them itself keeps its own.
pub(crate) async fn add(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in HEADERS {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    if state.serves_https() {
        headers
            .entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(HeaderValue::from_static(STRICT_TRANSPORT_SECURITY));
    }
    response
}
