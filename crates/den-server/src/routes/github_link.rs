//! A person's GitHub connection, from settings: its state (connected, which login, whether
//! GitHub refused to renew the token), "Connect GitHub" for a person signed in another way (or
//! to reconnect), and disconnecting (den forgets the token; the account link stays, so GitHub
//! sign-in still works).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum_extra::extract::CookieJar;
use den_protocol::credentials::{GithubConnect, GithubStatus};
use den_protocol::error::ErrorBody;
use den_store::StoreError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::github_token::{GITHUB_TOKEN_PURPOSE, stored_token};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status, disconnect))
        .routes(routes!(connect))
}

/// The caller's GitHub connection. Never carries the token.
#[utoipa::path(get, path = "/api/github", operation_id = "github_status", tag = "git",
    responses((status = 200, body = GithubStatus), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn status(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<GithubStatus>, ApiError> {
    let stored = stored_token(&state, caller.user.id).await?;
    Ok(Json(GithubStatus {
        available: state.config().github.is_some(),
        connected: stored.as_ref().is_some_and(|t| !t.needs_reconnect),
        login: caller.user.github_login.clone(),
        needs_reconnect: stored.as_ref().is_some_and(|t| t.needs_reconnect),
    }))
}

/// Starts connecting the caller's GitHub account: answers GitHub's authorization page (the
/// browser goes there) and sets the cookies that tie GitHub's return to this browser. The
/// callback links the account to the caller (409 there if it is another den user's) and stores
/// its token sealed.
#[utoipa::path(post, path = "/api/github/connect", operation_id = "connect_github", tag = "git",
    responses((status = 200, body = GithubConnect), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "this den has no GitHub settings")),
    security(("cookie" = []), ("bearer" = [])))]
async fn connect(
    State(state): State<AppState>,
    _caller: Caller,
    jar: CookieJar,
) -> Result<(CookieJar, Json<GithubConnect>), ApiError> {
    let (jar, url) = super::auth::begin_github(&state, jar, true).await?;
    Ok((jar, Json(GithubConnect { url })))
}

/// Forgets the caller's GitHub token (404 when den holds none).
#[utoipa::path(delete, path = "/api/github", operation_id = "disconnect_github", tag = "git",
    responses((status = 204, description = "forgotten"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn disconnect(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    match state
        .store()
        .delete_secret(caller.user.id, GITHUB_TOKEN_PURPOSE)
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::NotFound) => Err(ApiError::NotFound),
        Err(err) => Err(err.into()),
    }
}
