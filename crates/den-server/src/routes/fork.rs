//! `POST /api/sessions/{id}/fork`: "Fork" and "Try N variants". Only the owner forks; another
//! user's session answers 404 like a missing one.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use den_protocol::error::ErrorBody;
use den_protocol::sharing::{ForkRequest, ForkResponse, MAX_FORKS};
use den_session::ForkTarget;
use den_session::title::TITLE_MAX;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, IdPath};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(fork))
}

/// New sessions from the source's last snapshot: its files, its conversation up to its last
/// finished turn, each on a branch of its own. With `prompt`, the same prompt goes to every
/// fork. A session with no snapshot yet (no finished turn) answers 409. The source is unchanged.
#[utoipa::path(post, path = "/api/sessions/{id}/fork", operation_id = "fork_session", tag = "sessions", request_body = ForkRequest,
    params(("id" = Uuid, Path, description = "the session to fork")),
    responses((status = 201, body = ForkResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn fork(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiJson(request): ApiJson<ForkRequest>,
) -> Result<(StatusCode, Json<ForkResponse>), ApiError> {
    let count = request.count.unwrap_or(1);
    if !(1..=MAX_FORKS).contains(&count) {
        return Err(ApiError::bad_request(format!(
            "count must be between 1 and {MAX_FORKS}"
        )));
    }
    // Checked before anything is made, so a refused request changes nothing.
    let source = state.store().session_of(caller.user.id, id).await?;
    let manager = state.sessions()?;
    if let Some(prompt) = &request.prompt {
        let max = manager.config().max_prompt_bytes;
        if prompt.trim().is_empty() || prompt.len() > max {
            return Err(ApiError::BadRequest(format!(
                "prompt must be 1 to {max} bytes"
            )));
        }
        super::models::ensure_usable(&state, &caller.user, &source.model).await?;
    }
    let mut forks = Vec::new();
    for n in 1..=count {
        let fork_id = Uuid::now_v7();
        let title = fork_title(&source.title, n, count);
        let branch = super::sessions::work_branch(fork_id);
        let target = ForkTarget {
            id: fork_id,
            title: &title,
            work_branch: &branch,
        };
        match manager.fork(caller.user.id, id, target).await {
            Ok(record) => forks.push(record),
            Err(err) => {
                // All or none: the forks already made go too.
                for made in &forks {
                    if let Err(err) = manager.delete(caller.user.id, made.id).await {
                        tracing::warn!(error = %err, "cannot remove a fork after a failed one");
                    }
                }
                return Err(err.into());
            }
        }
    }
    let mut sessions = Vec::new();
    for record in forks {
        if let Some(prompt) = &request.prompt {
            // Each fork exists either way; a refused prompt is reported, and the fork stays
            // paused for the next one.
            manager
                .session(caller.user.id, record.id)
                .await?
                .prompt(prompt.clone())
                .await?;
        }
        sessions.push(
            state
                .store()
                .session_of(caller.user.id, record.id)
                .await?
                .to_protocol()?,
        );
    }
    Ok((StatusCode::CREATED, Json(ForkResponse { sessions })))
}

/// "<source> (fork)", or "<source> (variant n/N)" when several are made, within the title limit.
fn fork_title(source: &str, n: u32, count: u32) -> String {
    let suffix = if count == 1 {
        " (fork)".to_owned()
    } else {
        format!(" (variant {n}/{count})")
    };
    let room = TITLE_MAX.saturating_sub(suffix.chars().count());
    let base: String = source.chars().take(room).collect();
    format!("{base}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fork_titles_name_the_source_and_stay_within_the_limit() {
        assert_eq!(fork_title("Fix the bug", 1, 1), "Fix the bug (fork)");
        assert_eq!(fork_title("Fix the bug", 2, 3), "Fix the bug (variant 2/3)");
        let long = "x".repeat(TITLE_MAX);
        assert_eq!(fork_title(&long, 1, 1).chars().count(), TITLE_MAX);
    }
}
