//! What a session changed: its diff against the base commit.

use axum::Json;
use axum::extract::State;
use den_protocol::changes::{PushRequest, PushResult, SessionDiff};
use den_protocol::error::ErrorBody;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, IdPath};

/// The longest commit message accepted, in bytes.
const MAX_MESSAGE: usize = 10_000;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(diff))
        .routes(routes!(push))
}

/// Every file the session changed against its base commit, committed or not, with its patch.
/// Computed by git inside the running sandbox; a session without one (paused, stopped) answers
/// with the diff saved when its last turn ended (`source: last_turn`), and a session that never
/// ran with an empty one (`source: unchanged`).
#[utoipa::path(get, path = "/api/sessions/{id}/diff", operation_id = "session_diff", tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "the session's id")),
    responses((status = 200, body = SessionDiff), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn diff(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<Json<SessionDiff>, ApiError> {
    let Some(manager) = state.session_manager() else {
        // A den without sandboxes never ran a session: it exists (or is 404) and is unchanged.
        state.store().session_of(caller.user.id, id).await?;
        return Ok(Json(SessionDiff::unchanged(chrono::Utc::now())));
    };
    let handle = manager.session(caller.user.id, id).await?;
    Ok(Json(handle.diff().await?))
}

/// Commits the session's uncommitted work (author: the caller; message: the one given, or the
/// session's title) and pushes its branch through den's git gateway with the caller's
/// credential for the host. Runs inside the session's sandbox: a paused session must be
/// resumed first (409), and a running turn must finish (409). A push the remote refuses is a
/// 409 carrying git's explanation.
#[utoipa::path(post, path = "/api/sessions/{id}/push", operation_id = "push_session", tag = "sessions",
    request_body = PushRequest,
    params(("id" = uuid::Uuid, Path, description = "the session's id")),
    responses((status = 200, body = PushResult), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn push(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiJson(request): ApiJson<PushRequest>,
) -> Result<Json<PushResult>, ApiError> {
    if let Some(message) = &request.message
        && (message.trim().is_empty() || message.len() > MAX_MESSAGE || message.contains('\0'))
    {
        return Err(ApiError::BadRequest(format!(
            "message must be 1 to {MAX_MESSAGE} bytes, not only spaces"
        )));
    }
    // A missing (or another person's) session is a 404 even on a den without sandboxes.
    state.store().session_of(caller.user.id, id).await?;
    let handle = state.sessions()?.session(caller.user.id, id).await?;
    let user = &caller.user;
    // GitHub credits the person for its no-reply address; others get one of den's.
    let author = match (user.github_id, &user.github_login) {
        (Some(github_id), Some(login)) => den_session::Author {
            name: login.clone(),
            email: format!("{github_id}+{login}@users.noreply.github.com"),
        },
        _ => den_session::Author {
            name: user.username.clone(),
            email: format!("{}@users.noreply.den.invalid", user.username),
        },
    };
    Ok(Json(handle.push(author, request.message).await?))
}
