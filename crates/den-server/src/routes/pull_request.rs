//! The session's pull request on GitHub: opened once from its pushed branch, then read live
//! (so its state, open, merged or closed, is always GitHub's own).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use den_protocol::changes::{PullRequest, PullRequestRequest};
use den_protocol::error::ErrorBody;
use den_store::SessionRecord;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zeroize::Zeroizing;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, IdPath};
use crate::github_api::{GithubRepo, github_repo_of};
use crate::github_token::github_token;
use crate::validate;

const MAX_BODY: usize = 65_536;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get, open))
}

/// Where the session's repository is on GitHub, and the caller's token for it: their
/// credential for the host if they stored one, else their GitHub sign-in token.
async fn github_for(
    state: &AppState,
    caller: &Caller,
    record: &SessionRecord,
) -> Result<(String, String, String, Zeroizing<String>), ApiError> {
    let Some(github) = state.config().github.as_ref() else {
        return Err(ApiError::Conflict(
            "this den is not connected to GitHub (no [github] settings)".to_owned(),
        ));
    };
    let Some((owner, name)) = github_repo_of(&record.repository, &github.api_url) else {
        return Err(ApiError::Conflict(
            "this session's repository is not on GitHub".to_owned(),
        ));
    };
    let host = record
        .repository
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let user = caller.user.id;
    let token = match state.store().git_credential(user, &host).await? {
        Some(credential) => credential.token,
        None => match github_token(state, user).await? {
            Some(token) => token,
            None => {
                return Err(ApiError::Conflict(format!(
                    "connect GitHub (Settings → GitHub) or add a credential for {host} first"
                )));
            }
        },
    };
    Ok((github.api_url.clone(), owner, name, token))
}

/// The session's pull request as GitHub has it now (404 while there is none).
#[utoipa::path(get, path = "/api/sessions/{id}/pull-request", operation_id = "get_pull_request", tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "the session's id")),
    responses((status = 200, body = PullRequest), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn get(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<Json<PullRequest>, ApiError> {
    let record = state.store().session_of(caller.user.id, id).await?;
    let (api_url, owner, name, token) = github_for(&state, &caller, &record).await?;
    let repo = GithubRepo {
        api_url: &api_url,
        owner,
        name,
        token: &token,
    };
    repo.pull_for(&record.work_branch)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// Opens a pull request from the session's branch (push it first) into its base branch (or
/// the repository's default branch); answers the open one if it exists (`created: false`).
#[utoipa::path(post, path = "/api/sessions/{id}/pull-request", operation_id = "open_pull_request", tag = "sessions",
    request_body = PullRequestRequest,
    params(("id" = uuid::Uuid, Path, description = "the session's id")),
    responses((status = 201, body = PullRequest), (status = 200, body = PullRequest), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn open(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiJson(request): ApiJson<PullRequestRequest>,
) -> Result<(StatusCode, Json<PullRequest>), ApiError> {
    let title = match &request.title {
        Some(title) => Some(validate::label("title", title, 256).map_err(ApiError::BadRequest)?),
        None => None,
    };
    if request.body.as_ref().is_some_and(|b| b.len() > MAX_BODY) {
        return Err(ApiError::BadRequest(format!(
            "body must be at most {MAX_BODY} bytes"
        )));
    }
    let record = state.store().session_of(caller.user.id, id).await?;
    let (api_url, owner, name, token) = github_for(&state, &caller, &record).await?;
    let repo = GithubRepo {
        api_url: &api_url,
        owner,
        name,
        token: &token,
    };
    if let Some(existing) = repo.pull_for(&record.work_branch).await?
        && existing.state == den_protocol::changes::PullRequestState::Open
    {
        return Ok((StatusCode::OK, Json(existing)));
    }
    let base = match &record.base_branch {
        Some(base) => base.clone(),
        None => repo.default_branch().await?,
    };
    let title = title.unwrap_or_else(|| record.title.clone());
    let body = request
        .body
        .unwrap_or_else(|| format!("Opened by den from the session \"{}\".", record.title));
    let pull = repo
        .open_pull(&record.work_branch, &base, &title, &body, request.draft)
        .await?;
    Ok((StatusCode::CREATED, Json(pull)))
}
