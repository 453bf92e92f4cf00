//! Node-to-node routes: a command another den node received for a session this node owns.
//! Only a node holding the cluster's secret (derived from the shared master key) may call them;
//! people's tokens and cookies are refused like no credential at all.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use den_protocol::cluster::{ForwardedCommand, ForwardedOutcome};
use den_protocol::error::ErrorBody;
use den_protocol::events::ClientMessage;
use den_session::{CommandOutcome, SessionCommand};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::IdPath;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(forwarded_command))
}

/// Runs a command forwarded by another den node for a session this node owns. Answers what
/// the command answered; never forwards it again (503 when this node no longer owns it).
#[utoipa::path(post, path = "/api/internal/sessions/{id}/command", tag = "cluster",
    request_body = ForwardedCommand,
    params(("id" = uuid::Uuid, Path, description = "the session's id")),
    responses((status = 200, body = ForwardedOutcome), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("node" = [])))]
async fn forwarded_command(
    State(state): State<AppState>,
    headers: HeaderMap,
    IdPath(id): IdPath,
    body: Bytes,
) -> Result<Json<ForwardedOutcome>, ApiError> {
    // The secret first: nothing about the request is looked at before.
    if !state.is_node(&headers) {
        return Err(ApiError::Unauthorized);
    }
    let forwarded: ForwardedCommand = serde_json::from_slice(&body)
        .map_err(|err| ApiError::BadRequest(format!("invalid forwarded command: {err}")))?;
    // A forwarded answer names who gave it; other commands need no name.
    let by = match (&forwarded.command, forwarded.by) {
        (ClientMessage::Answer { .. }, None) => {
            return Err(ApiError::bad_request(
                "a forwarded answer names who gave it",
            ));
        }
        (_, by) => by.unwrap_or_default(),
    };
    let command = SessionCommand::from_client(forwarded.command, &by)
        .ok_or_else(|| ApiError::bad_request("ping is not a command"))?;
    let session = state.sessions()?.session(forwarded.owner_id, id).await?;
    let accepted = match session.dispatch_here(command).await? {
        CommandOutcome::Prompt(accepted) => Some(accepted),
        CommandOutcome::Done => None,
    };
    Ok(Json(ForwardedOutcome { accepted }))
}
