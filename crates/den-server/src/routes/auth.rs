//! Signing in and out: passwords, one-time links, GitHub.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use chrono::Duration;
use den_protocol::auth::{AuthOptions, LoginRequest, SetPasswordRequest, User};
use den_protocol::error::ErrorBody;
use den_store::{NewUser, StoreError, UserRecord};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{
    AuthMethod, Caller, check_same_site, github, password, removal_cookie, secret_token,
    session_cookie,
};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};

/// The cookie that ties a GitHub callback to the browser that started it.
const OAUTH_STATE_COOKIE: OauthCookie = OauthCookie {
    http: "den_oauth_state",
    https: "__Secure-den_oauth_state",
};
/// Set when the flow links GitHub to the signed-in person rather than signing in.
const OAUTH_CONNECT_COOKIE: OauthCookie = OauthCookie {
    http: "den_oauth_connect",
    https: "__Secure-den_oauth_connect",
};

/// A sign-in flow cookie's two names. Over https the `__Secure-` prefix makes the browser refuse
/// the cookie unless it is `Secure`; these cookies are scoped to the GitHub routes' path, so the
/// stricter `__Host-` prefix (which requires `Path=/`) does not apply.
struct OauthCookie {
    http: &'static str,
    https: &'static str,
}

impl OauthCookie {
    fn name(&self, state: &AppState) -> &'static str {
        if state.serves_https() {
            self.https
        } else {
            self.http
        }
    }

    /// The `Set-Cookie` that removes it; a prefixed cookie is only replaced by a `Secure` one.
    fn removal(&self, state: &AppState) -> Cookie<'static> {
        Cookie::build(self.name(state))
            .path("/api/auth/github")
            .secure(state.serves_https())
            .build()
    }
}
pub(crate) use crate::github_token::GITHUB_TOKEN_PURPOSE;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(options))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(set_password))
        .routes(routes!(link))
        .routes(routes!(github_start))
        .routes(routes!(github_callback))
}

/// What the sign-in screen offers.
#[utoipa::path(get, path = "/api/auth/options", tag = "auth", responses((status = 200, body = AuthOptions)))]
async fn options(State(state): State<AppState>) -> Json<AuthOptions> {
    Json(AuthOptions {
        github: state.config().github.is_some(),
    })
}

/// Signs in with a username and password and sets the session cookie.
///
/// Failures are throttled per username and per client address; the error never says whether
/// the name or the password was wrong. Browsers must send the `X-Den-Csrf` header.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest, responses(
    (status = 200, body = User, description = "signed in; `Set-Cookie: den_session`"),
    (status = 401, body = ErrorBody, description = "wrong username or password"),
    (status = 429, body = ErrorBody, description = "too many failed attempts"),
))]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<(CookieJar, Json<User>), ApiError> {
    // Sign-in is a cookie-setting request: refuse it cross-site like any cookie mutation.
    check_same_site(&headers, &state)?;
    if request.username.len() > 64 || request.password.len() > 1024 {
        return Err(wrong_credentials());
    }
    let address = peer.ip();
    state
        .throttle()
        .check(&request.username, address)
        .map_err(|retry_after_secs| ApiError::TooManyRequests { retry_after_secs })?;
    let user = match state.store().user_by_name(&request.username).await {
        Ok(user) => Some(user),
        Err(StoreError::NotFound) => None,
        Err(err) => return Err(err.into()),
    };
    let phc = user.as_ref().and_then(|user| user.password_hash.clone());
    let verified = password::verify(request.password, phc).await?;
    let Some(user) = user.filter(|_| verified) else {
        state.throttle().record_failure(&request.username, address);
        return Err(wrong_credentials());
    };
    state.throttle().record_success(&request.username);
    let jar = jar.add(start_web_session(&state, &user).await?);
    Ok((jar, Json(user.to_protocol())))
}

fn wrong_credentials() -> ApiError {
    ApiError::BadCredentials
}

/// Creates a browser session for `user` and returns its cookie.
async fn start_web_session(
    state: &AppState,
    user: &UserRecord,
) -> Result<Cookie<'static>, ApiError> {
    let token = secret_token::generate()?;
    let ttl = Duration::from_std(state.config().web_session_ttl).unwrap_or(Duration::days(30));
    state
        .store()
        .create_web_session(&secret_token::hash(&token), user.id, den_store::now() + ttl)
        .await?;
    Ok(session_cookie(token, state))
}

/// Signs out: ends this browser session and clears the cookie.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", responses((status = 204, description = "signed out")),
    security(("cookie" = []), ("bearer" = [])))]
async fn logout(
    State(state): State<AppState>,
    caller: Caller,
    jar: CookieJar,
) -> Result<(CookieJar, StatusCode), ApiError> {
    if let AuthMethod::Cookie { token_hash } = &caller.via {
        state.store().delete_web_session(token_hash).await?;
    }
    Ok((jar.add(removal_cookie(&state)), StatusCode::NO_CONTENT))
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", responses((status = 200, body = User), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn me(caller: Caller) -> Json<User> {
    Json(caller.user.to_protocol())
}

/// Sets or changes the caller's password.
///
/// When the caller has a password, `current` must be it; wrong guesses are throttled like
/// sign-in. Every other browser session of the caller is signed out; the browser that made
/// the change stays signed in (a change made with an API token signs out every browser).
#[utoipa::path(put, path = "/api/auth/password", tag = "auth", request_body = SetPasswordRequest, responses(
    (status = 204, description = "password set; other browsers signed out"),
    (status = 400, body = ErrorBody, description = "the new password breaks the rules, or `current` is missing"),
    (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody, description = "`current` is wrong"),
    (status = 429, body = ErrorBody, description = "too many wrong current passwords")),
    security(("cookie" = []), ("bearer" = [])))]
async fn set_password(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    caller: Caller,
    ApiJson(request): ApiJson<SetPasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let user = &caller.user;
    if let Some(phc) = user.password_hash.clone() {
        let Some(current) = request.current else {
            return Err(ApiError::bad_request(
                "give your current password to change it",
            ));
        };
        let address = peer.ip();
        state
            .throttle()
            .check(&user.username, address)
            .map_err(|retry_after_secs| ApiError::TooManyRequests { retry_after_secs })?;
        if current.len() > 1024 || !password::verify(current, Some(phc)).await? {
            state.throttle().record_failure(&user.username, address);
            return Err(ApiError::Forbidden(
                "the current password is wrong".to_owned(),
            ));
        }
        state.throttle().record_success(&user.username);
    }
    let keep = match &caller.via {
        AuthMethod::Cookie { token_hash } => Some(token_hash.as_str()),
        AuthMethod::Token => None,
    };
    crate::accounts::change_password(state.store(), user.id, request.new, keep).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where a used or expired link sends the browser: the sign-in page, which reads the query
/// and says what happened and what to do. A person opens links in a browser, so they get a
/// page, not a JSON error.
pub(crate) const LINK_FAILED_REDIRECT: &str = "/?signin_error=link_invalid";

/// Opens a one-time sign-in link (printed by `den serve` on first run, `den user add` or
/// `den user link`): signs the browser in and sends it to the app. A used or expired link
/// sends it to the sign-in page, which explains.
#[utoipa::path(get, path = "/api/auth/link/{token}", tag = "auth",
    params(("token" = String, Path, description = "the link's secret")),
    responses((status = 303, description = "signed in and sent to `/`; or, when the link was used or has expired, \
        sent to `/?signin_error=link_invalid` (not signed in)")))]
async fn link(
    State(state): State<AppState>,
    axum::extract::Path(token): axum::extract::Path<String>,
    jar: CookieJar,
) -> Result<Response, ApiError> {
    let user_id = match state
        .store()
        .consume_login_link(&secret_token::hash(&token))
        .await
    {
        Ok(user_id) => user_id,
        Err(StoreError::NotFound) => return Ok(Redirect::to(LINK_FAILED_REDIRECT).into_response()),
        Err(err) => return Err(err.into()),
    };
    let user = state.store().user_by_id(user_id).await?;
    let jar = jar.add(start_web_session(&state, &user).await?);
    Ok((jar, Redirect::to("/")).into_response())
}

/// Starts "Sign in with GitHub": redirects to GitHub.
#[utoipa::path(get, path = "/api/auth/github/start", tag = "auth", responses(
    (status = 303, description = "redirect to GitHub"),
    (status = 404, body = ErrorBody, description = "GitHub sign-in is not configured")))]
async fn github_start(State(state): State<AppState>, jar: CookieJar) -> Result<Response, ApiError> {
    let (jar, url) = begin_github(&state, jar, false).await?;
    Ok((jar, Redirect::to(&url)).into_response())
}

/// Starts GitHub's authorization: stores the state with its PKCE verifier and ties it to this
/// browser by a cookie. `connect`: the callback links the GitHub account to the person signed
/// in (settings' "Connect GitHub") instead of signing in as it. Returns GitHub's URL.
pub(super) async fn begin_github(
    state: &AppState,
    jar: CookieJar,
    connect: bool,
) -> Result<(CookieJar, String), ApiError> {
    let config = state.config().github.as_ref().ok_or(ApiError::NotFound)?;
    let authorization = github::authorize(config, &github_redirect_url(state))?;
    let expires = den_store::now() + Duration::minutes(10);
    state
        .store()
        .create_oauth_state(&authorization.state, &authorization.pkce_verifier, expires)
        .await?;
    let cookie = |name: &'static str, value: String| {
        Cookie::build((name, value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(state.serves_https())
            .path("/api/auth/github")
            .max_age(cookie::time::Duration::minutes(10))
            .build()
    };
    let jar = jar.add(cookie(OAUTH_STATE_COOKIE.name(state), authorization.state));
    let jar = if connect {
        jar.add(cookie(OAUTH_CONNECT_COOKIE.name(state), "1".to_owned()))
    } else {
        jar.remove(OAUTH_CONNECT_COOKIE.removal(state))
    };
    Ok((jar, authorization.url))
}

#[derive(Debug, Deserialize, IntoParams)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// GitHub sends the browser back here; den signs it in.
#[utoipa::path(get, path = "/api/auth/github/callback", tag = "auth", params(CallbackQuery), responses(
    (status = 303, description = "signed in; redirect to /"),
    (status = 400, body = ErrorBody, description = "state mismatch, expired or refused"),
    (status = 403, body = ErrorBody, description = "this GitHub user may not sign up")))]
async fn github_callback(
    State(state): State<AppState>,
    jar: CookieJar,
    ApiQuery(query): ApiQuery<CallbackQuery>,
) -> Result<Response, ApiError> {
    let config = state.config().github.clone().ok_or(ApiError::NotFound)?;
    if let Some(error) = query.error {
        return Err(ApiError::BadRequest(format!(
            "GitHub refused the sign-in: {error}"
        )));
    }
    let (Some(code), Some(returned_state)) = (query.code, query.state) else {
        return Err(ApiError::bad_request("the callback needs code and state"));
    };
    let cookie_state = jar
        .get(OAUTH_STATE_COOKIE.name(&state))
        .map(|c| c.value().to_owned());
    if cookie_state.as_deref() != Some(returned_state.as_str()) {
        return Err(ApiError::bad_request(
            "sign-in state does not match this browser; start again",
        ));
    }
    let verifier = match state.store().take_oauth_state(&returned_state).await {
        Ok(verifier) => verifier,
        Err(StoreError::NotFound) => {
            return Err(ApiError::bad_request(
                "sign-in with GitHub expired; start again",
            ));
        }
        Err(err) => return Err(err.into()),
    };
    let redirect = github_redirect_url(&state);
    let (github_user, access_token) = github::finish(
        config.clone(),
        state.http().clone(),
        &redirect,
        code,
        verifier,
    )
    .await?;
    let connecting = jar.get(OAUTH_CONNECT_COOKIE.name(&state)).is_some();
    let jar = jar
        .remove(OAUTH_STATE_COOKIE.removal(&state))
        .remove(OAUTH_CONNECT_COOKIE.removal(&state));
    if connecting {
        // Settings' "Connect GitHub": the account goes to whoever this browser is signed in as.
        let Some(user) = signed_in_user(&state, &jar).await? else {
            return Err(ApiError::bad_request(
                "sign in to den first, then connect GitHub from settings",
            ));
        };
        match state.store().user_by_github_id(github_user.id).await {
            Ok(other) if other.id != user.id => {
                return Err(ApiError::Conflict(format!(
                    "GitHub user {} is linked to another den account",
                    github_user.login
                )));
            }
            Ok(_) | Err(StoreError::NotFound) => {}
            Err(err) => return Err(err.into()),
        }
        state
            .store()
            .link_github(user.id, github_user.id, &github_user.login)
            .await?;
        state
            .store()
            .put_secret(user.id, GITHUB_TOKEN_PURPOSE, &access_token.sealable())
            .await?;
        return Ok((jar, Redirect::to("/settings#github")).into_response());
    }
    let user = github_account(&state, &config, &github_user).await?;
    state
        .store()
        .put_secret(user.id, GITHUB_TOKEN_PURPOSE, &access_token.sealable())
        .await?;
    let jar = jar.add(start_web_session(&state, &user).await?);
    Ok((jar, Redirect::to("/")).into_response())
}

/// The person this browser is signed in as (its session cookie), if any.
async fn signed_in_user(state: &AppState, jar: &CookieJar) -> Result<Option<UserRecord>, ApiError> {
    let Some(cookie) = jar.get(crate::auth::session_cookie_name(state)) else {
        return Ok(None);
    };
    let token_hash = secret_token::hash(cookie.value());
    match state.store().web_session_user(&token_hash).await {
        Ok(user_id) => Ok(Some(state.store().user_by_id(user_id).await?)),
        Err(StoreError::NotFound) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// The den user linked to a GitHub account, created on first sign-in when allowed.
async fn github_account(
    state: &AppState,
    config: &github::GithubConfig,
    github_user: &github::GithubUser,
) -> Result<UserRecord, ApiError> {
    match state.store().user_by_github_id(github_user.id).await {
        Ok(user) => {
            if user.github_login.as_deref() != Some(github_user.login.as_str()) {
                state
                    .store()
                    .set_github_login(user.id, &github_user.login)
                    .await?;
            }
            return Ok(user);
        }
        Err(StoreError::NotFound) => {}
        Err(err) => return Err(err.into()),
    }
    if !config.may_sign_up(&github_user.login) {
        return Err(ApiError::Forbidden(format!(
            "GitHub user {} has no den account; an admin must allow it",
            github_user.login
        )));
    }
    let github = Some((github_user.id, github_user.login.as_str()));
    let new = NewUser {
        username: &github_user.login,
        password_hash: None,
        is_admin: false,
        github,
    };
    match state.store().create_user(new).await {
        Ok(user) => Ok(user),
        // The name is taken by a local account: keep both, under a distinct name.
        Err(StoreError::Conflict(_)) => {
            let username = format!("{}-github-{}", github_user.login, github_user.id);
            let new = NewUser {
                username: &username,
                password_hash: None,
                is_admin: false,
                github,
            };
            Ok(state.store().create_user(new).await?)
        }
        Err(err) => Err(err.into()),
    }
}

fn github_redirect_url(state: &AppState) -> String {
    format!("{}/api/auth/github/callback", state.config().public_url)
}
