//! The person in the loop: answering the agent's permission asks and questions, and choosing
//! whether file edits and shell commands wait for an answer (the session's approval mode).
//! Both go through the session's actor, so each is in the session's history.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use den_protocol::asks::{ApprovalModeRequest, AskReply};
use den_protocol::error::ErrorBody;
use den_protocol::sessions::Session;
use den_session::SessionCommand;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::live::session_of;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, IdPath};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(answer))
        .routes(routes!(set_approval_mode))
}

/// The longest ask id accepted (OpenCode's are about 30 characters).
const MAX_ASK_ID: usize = 128;

/// Answers a pending permission ask (`once`, `always`, `reject` with an optional message) or
/// question (`answer` with one list of labels or typed text per question, or `reject` to
/// dismiss it). The answer is recorded with who gave it, then sent to the agent.
#[utoipa::path(post, path = "/api/sessions/{id}/asks/{ask}", tag = "sessions", request_body = AskReply,
    params(("id" = uuid::Uuid, Path, description = "the session's id"), ("ask" = String, Path, description = "the ask's id (`askId` of its event)")),
    responses((status = 204, description = "answered"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn answer(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path((id, ask)): axum::extract::Path<(String, String)>,
    ApiJson(reply): ApiJson<AskReply>,
) -> Result<StatusCode, ApiError> {
    let id = id
        .parse()
        .map_err(|_| ApiError::bad_request("id must be a UUID"))?;
    let session = session_of(&state, &caller, id).await?;
    if ask.is_empty() || ask.len() > MAX_ASK_ID {
        return Err(ApiError::Missing(
            "no pending ask or question has that id".to_owned(),
        ));
    }
    session
        .dispatch(SessionCommand::Answer {
            ask_id: ask,
            reply,
            by: caller.user.username.clone(),
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets whether the agent's file edits and shell commands run at once (`auto`) or wait for
/// the person (`ask`); it applies to the next ask.
#[utoipa::path(put, path = "/api/sessions/{id}/approval-mode", tag = "sessions", request_body = ApprovalModeRequest,
    params(("id" = uuid::Uuid, Path, description = "the session's id")),
    responses((status = 200, body = Session), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn set_approval_mode(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiJson(request): ApiJson<ApprovalModeRequest>,
) -> Result<Json<Session>, ApiError> {
    session_of(&state, &caller, id)
        .await?
        .dispatch(SessionCommand::SetApprovalMode {
            mode: request.mode,
            by: caller.user.username.clone(),
        })
        .await?;
    Ok(Json(
        state
            .store()
            .session_of(caller.user.id, id)
            .await?
            .to_protocol()?,
    ))
}
