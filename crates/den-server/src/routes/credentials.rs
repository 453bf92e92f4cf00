//! A person's credentials for https git hosts (username + token), sealed in the store
//! (`Store::put_git_credential`). The token is accepted, never returned; den adds it to the git
//! traffic it forwards for the person's sessions on the host, so it never enters a sandbox.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use den_protocol::credentials::{GitCredential, GitCredentialRequest};
use den_protocol::error::ErrorBody;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::validate;

/// A token longer than this is not a token (GitHub's longest formats are far shorter).
const MAX_TOKEN: usize = 4096;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(put, delete))
}

fn host_path(host: &str) -> Result<String, ApiError> {
    validate::git_host(host).map_err(ApiError::BadRequest)
}

/// Stores (or replaces) the caller's credential for an https git host.
#[utoipa::path(put, path = "/api/git-credentials/{host}", operation_id = "put_git_credential", tag = "git",
    request_body = GitCredentialRequest,
    params(("host" = String, Path, description = "the git host, e.g. git.example.com")),
    responses((status = 204, description = "stored"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(host): Path<String>,
    ApiJson(request): ApiJson<GitCredentialRequest>,
) -> Result<StatusCode, ApiError> {
    let host = host_path(&host)?;
    let username =
        validate::label("username", &request.username, 200).map_err(ApiError::BadRequest)?;
    if username.contains(':') {
        return Err(ApiError::bad_request("username must not contain ':'"));
    }
    let token = request.token.trim();
    if token.is_empty() || token.len() > MAX_TOKEN || !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::BadRequest(format!(
            "token must be 1 to {MAX_TOKEN} printable characters without spaces"
        )));
    }
    state
        .store()
        .put_git_credential(caller.user.id, &host, &username, token)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's git host credentials, without their tokens.
#[utoipa::path(get, path = "/api/git-credentials", operation_id = "list_git_credentials", tag = "git",
    responses((status = 200, body = Vec<GitCredential>), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<GitCredential>>, ApiError> {
    let credentials = state.store().git_credentials(caller.user.id).await?;
    Ok(Json(
        credentials
            .into_iter()
            .map(|(host, username, updated_at)| GitCredential {
                host,
                username,
                updated_at,
            })
            .collect(),
    ))
}

/// Removes the caller's credential for a host.
#[utoipa::path(delete, path = "/api/git-credentials/{host}", operation_id = "delete_git_credential", tag = "git",
    params(("host" = String, Path, description = "the git host")),
    responses((status = 204, description = "removed"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(host): Path<String>,
) -> Result<StatusCode, ApiError> {
    let host = host_path(&host)?;
    state
        .store()
        .delete_git_credential(caller.user.id, &host)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
