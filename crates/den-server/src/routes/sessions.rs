//! Coding sessions: create, list, read, rename, delete. Only the owner ever sees a session;
//! another user's session answers 404, exactly like a missing one.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use den_protocol::asks::ApprovalMode;
use den_protocol::error::ErrorBody;
use den_protocol::sessions::{
    CreateSessionRequest, DEFAULT_MODEL, Session, SessionPage, UpdateSessionRequest,
};
use den_session::title::{self, TITLE_MAX};
use den_store::{NewSession, SessionCursor, SessionRecord};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, IdPath};
use crate::validate;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get, rename, delete))
}

/// Creates a session in `idle`. The work branch is `den/<8 hex digits>`.
#[utoipa::path(post, path = "/api/sessions", operation_id = "create_session", tag = "sessions", request_body = CreateSessionRequest,
    responses((status = 201, body = Session), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateSessionRequest>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    let config = state.config();
    let repository = validate::repository(
        &request.repository,
        &config.local_repo_roots,
        &config.repository_egress,
    )
    .map_err(ApiError::BadRequest)?;
    let title = match &request.title {
        Some(title) => validate::label("title", title, TITLE_MAX).map_err(ApiError::BadRequest)?,
        None => match request.prompt.as_deref().and_then(title::from_prompt) {
            Some(title) => title,
            None => title::for_repository(&repository),
        },
    };
    let model = request.model.as_deref().unwrap_or(DEFAULT_MODEL);
    validate::model(model).map_err(ApiError::BadRequest)?;
    super::models::ensure_usable(&state, &caller.user, model).await?;
    if let Some(branch) = &request.base_branch {
        validate::branch(branch).map_err(ApiError::BadRequest)?;
    }
    if config.check_repository_reachable {
        ensure_reachable(
            &state,
            caller.user.id,
            &repository,
            request.base_branch.as_deref(),
        )
        .await?;
    }
    if let Some(prompt) = &request.prompt {
        // Checked before anything is created, so a refused prompt changes nothing.
        let max = state.sessions()?.config().max_prompt_bytes;
        if prompt.trim().is_empty() || prompt.len() > max {
            return Err(ApiError::BadRequest(format!(
                "prompt must be 1 to {max} bytes"
            )));
        }
    }
    let id = Uuid::now_v7();
    let work_branch = work_branch(id);
    let new = NewSession {
        id,
        owner_id: caller.user.id,
        title: &title,
        repository: &repository,
        base_branch: request.base_branch.as_deref(),
        work_branch: &work_branch,
        model,
    };
    let mut record = state.store().create_session(new).await?;
    let mode = request.approval_mode.unwrap_or_default();
    if mode != ApprovalMode::default() {
        record = state
            .store()
            .set_session_approval_mode(caller.user.id, id, mode)
            .await?;
    }
    let mut session = record.to_protocol()?;
    if let Some(manager) = state.session_manager() {
        manager.announce(&record);
    }
    if let Some(prompt) = request.prompt {
        // The session exists either way; a refused first prompt is reported, and the session
        // stays idle for the next one.
        let handle = state.sessions()?.session(caller.user.id, id).await?;
        handle.prompt(prompt).await?;
        session = state
            .store()
            .session_of(caller.user.id, id)
            .await?
            .to_protocol()?;
    }
    Ok((StatusCode::CREATED, Json(session)))
}

/// Refuses a repository den cannot reach (a URL that answers nothing or not as git, a folder
/// that is no git repository, a remote refusing the person's credential) or a base branch it
/// does not have, before anything is created: such a session could only ever fail to start,
/// and its URL would then be offered again as a recent repository.
async fn ensure_reachable(
    state: &AppState,
    user_id: Uuid,
    repository: &str,
    base_branch: Option<&str>,
) -> Result<(), ApiError> {
    let via = super::branches::Via::Git;
    let listed = super::branches::list_branches(state, user_id, repository, via, |err| {
        ApiError::BadRequest(format!(
            "den cannot reach the repository {repository}: {err}"
        ))
    })
    .await?;
    match base_branch {
        Some(branch) if !listed.branches.iter().any(|b| b == branch) => Err(ApiError::BadRequest(
            format!("the repository {repository} has no branch {branch}"),
        )),
        _ => Ok(()),
    }
}

/// `den/` and the last 8 hex digits of the id (the random part of a UUIDv7).
pub(super) fn work_branch(id: Uuid) -> String {
    let hex = id.simple().to_string();
    format!("den/{}", &hex[hex.len() - 8..])
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// The `nextCursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 100 (default 50).
    limit: Option<u32>,
}

/// The caller's sessions, newest activity first.
#[utoipa::path(get, path = "/api/sessions", operation_id = "list_sessions", tag = "sessions", params(ListQuery),
    responses((status = 200, body = SessionPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<SessionPage>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 100"));
    }
    let cursor = match &query.cursor {
        Some(text) => Some(
            SessionCursor::decode(text)
                .ok_or_else(|| ApiError::bad_request("cursor is not valid"))?,
        ),
        None => None,
    };
    // One extra row tells whether another page follows.
    let mut rows = state
        .store()
        .list_sessions(caller.user.id, cursor, limit + 1)
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = rows.last().filter(|_| more).map(|row| {
        SessionCursor {
            last_activity_at: row.last_activity_at,
            id: row.id,
        }
        .encode()
    });
    let sessions = rows
        .iter()
        .map(SessionRecord::to_protocol)
        .collect::<Result<_, _>>()?;
    Ok(Json(SessionPage {
        sessions,
        next_cursor,
    }))
}

/// One of the caller's sessions.
#[utoipa::path(get, path = "/api/sessions/{id}", operation_id = "get_session", tag = "sessions",
    params(("id" = Uuid, Path, description = "the session's id")),
    responses((status = 200, body = Session), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn get(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<Json<Session>, ApiError> {
    Ok(Json(
        state
            .store()
            .session_of(caller.user.id, id)
            .await?
            .to_protocol()?,
    ))
}

/// Renames one of the caller's sessions.
#[utoipa::path(patch, path = "/api/sessions/{id}", operation_id = "rename_session", tag = "sessions", request_body = UpdateSessionRequest,
    params(("id" = Uuid, Path, description = "the session's id")),
    responses((status = 200, body = Session), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn rename(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiJson(request): ApiJson<UpdateSessionRequest>,
) -> Result<Json<Session>, ApiError> {
    let title =
        validate::label("title", &request.title, TITLE_MAX).map_err(ApiError::BadRequest)?;
    match state.session_manager() {
        // Through the session, so the rename is in its history and every open list hears it.
        Some(manager) => {
            manager
                .session(caller.user.id, id)
                .await?
                .rename(title)
                .await?
        }
        None => {
            state
                .store()
                .rename_session(caller.user.id, id, &title)
                .await?;
        }
    }
    Ok(Json(
        state
            .store()
            .session_of(caller.user.id, id)
            .await?
            .to_protocol()?,
    ))
}

/// Deletes one of the caller's sessions and its history.
#[utoipa::path(delete, path = "/api/sessions/{id}", operation_id = "delete_session", tag = "sessions",
    params(("id" = Uuid, Path, description = "the session's id")),
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    match state.session_manager() {
        // Through the session: its sandbox, snapshots and checkout go too.
        Some(manager) => manager.delete(caller.user.id, id).await?,
        None => state.store().delete_session(caller.user.id, id).await?,
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_branches_are_named_after_the_session() {
        let id: Uuid = "0190c7a1-0000-7000-8000-0000deadbeef".parse().unwrap();
        assert_eq!(work_branch(id), "den/deadbeef");
    }
}
