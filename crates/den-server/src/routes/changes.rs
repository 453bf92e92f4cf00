//! What a session changed: its diff against the base commit.

use axum::Json;
use axum::extract::State;
use den_protocol::changes::SessionDiff;
use den_protocol::error::ErrorBody;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::IdPath;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(diff))
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
