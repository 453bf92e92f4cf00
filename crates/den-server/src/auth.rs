//! Who is calling: session cookies, API tokens, and the cross-site request checks.
//!
//! A request is authenticated by `Authorization: Bearer den_…` (scripts, the CLI) or by the
//! `den_session` cookie (the browser). Cookie-authenticated requests that change something must
//! also carry the `X-Den-Csrf` header and, when the browser sent an `Origin`, come from den's own
//! origin: a cross-site page can make the browser send the cookie, but not a custom header.

pub(crate) mod github;
pub(crate) mod password;
pub(crate) mod secret_token;
pub(crate) mod throttle;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use den_store::{StoreError, UserRecord};

use crate::AppState;
use crate::error::ApiError;

/// The name of the browser session cookie when den is served over plain http.
pub const SESSION_COOKIE: &str = "den_session";
/// Its name over https. The `__Host-` prefix makes the browser refuse the cookie unless it is
/// `Secure`, has `Path=/` and no `Domain`, so a sibling subdomain can neither plant nor shadow it.
pub const SESSION_COOKIE_HTTPS: &str = "__Host-den_session";

/// The session cookie's name for how den is served.
pub(crate) fn session_cookie_name(state: &AppState) -> &'static str {
    if state.serves_https() {
        SESSION_COOKIE_HTTPS
    } else {
        SESSION_COOKIE
    }
}
/// The header the web client sends on every request that changes something.
pub const CSRF_HEADER: &str = "x-den-csrf";

/// The signed-in user of a request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) user: UserRecord,
    pub(crate) via: AuthMethod,
}

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub(crate) enum AuthMethod {
    /// The browser cookie; holds the SHA-256 of the cookie value.
    Cookie { token_hash: String },
    /// An API token.
    Token,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(bearer) = bearer_token(&parts.headers)? {
            let owner = state
                .store()
                .use_api_token(&secret_token::hash(bearer))
                .await;
            let owner = owner.map_err(unauthorized_if_missing)?;
            let user = state.store().user_by_id(owner.user_id).await;
            return Ok(Self {
                user: user.map_err(unauthorized_if_missing)?,
                via: AuthMethod::Token,
            });
        }
        let jar = CookieJar::from_headers(&parts.headers);
        let cookie = jar
            .get(session_cookie_name(state))
            .ok_or(ApiError::Unauthorized)?;
        let token_hash = secret_token::hash(cookie.value());
        let user_id = state.store().web_session_user(&token_hash).await;
        let user = state
            .store()
            .user_by_id(user_id.map_err(unauthorized_if_missing)?)
            .await;
        let user = user.map_err(unauthorized_if_missing)?;
        if !is_safe_method(&parts.method) {
            check_same_site(&parts.headers, state)?;
        }
        Ok(Self {
            user,
            via: AuthMethod::Cookie { token_hash },
        })
    }
}

fn unauthorized_if_missing(err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound => ApiError::Unauthorized,
        other => ApiError::from(other),
    }
}

/// The bearer token, if the request has an `Authorization` header; a malformed one is refused
/// rather than silently falling back to the cookie.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| ApiError::Unauthorized)?;
    match text.strip_prefix("Bearer ") {
        Some(token) if !token.trim().is_empty() => Ok(Some(token.trim())),
        _ => Err(ApiError::Unauthorized),
    }
}

fn is_safe_method(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Refuses a request the browser may have sent on behalf of another site.
pub(crate) fn check_same_site(headers: &HeaderMap, state: &AppState) -> Result<(), ApiError> {
    if headers.get(CSRF_HEADER).is_none() {
        return Err(ApiError::Forbidden(format!(
            "requests signed in by cookie must send the {CSRF_HEADER} header"
        )));
    }
    check_origin(headers, state)
}

/// When the browser names an `Origin`, it must be den's own.
pub(crate) fn check_origin(headers: &HeaderMap, state: &AppState) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    if state.is_own_origin(
        origin,
        headers.get(header::HOST).and_then(|h| h.to_str().ok()),
    ) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("cross-site request refused".to_owned()))
    }
}

/// The `Set-Cookie` for a new browser session.
pub(crate) fn session_cookie(value: String, state: &AppState) -> Cookie<'static> {
    Cookie::build((session_cookie_name(state), value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.serves_https())
        .path("/")
        .max_age(time_duration(state.config().web_session_ttl))
        .build()
}

/// The `Set-Cookie` that removes the browser session cookie.
pub(crate) fn removal_cookie(state: &AppState) -> Cookie<'static> {
    Cookie::build((session_cookie_name(state), ""))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.serves_https())
        .path("/")
        .max_age(time_duration(std::time::Duration::ZERO))
        .build()
}

fn time_duration(duration: std::time::Duration) -> cookie::time::Duration {
    let seconds = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
    cookie::time::Duration::seconds(seconds)
}
