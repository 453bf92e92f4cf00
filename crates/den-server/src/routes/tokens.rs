//! API tokens: created and shown once, listed without the secret, revoked at once.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use den_protocol::auth::{ApiToken, CreateTokenRequest, CreatedToken};
use den_protocol::error::ErrorBody;
use den_store::NewApiToken;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Caller, secret_token};
use crate::error::ApiError;
use crate::extract::{ApiJson, IdPath};
use crate::validate;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(revoke))
}

/// Creates an API token. The response is the only time the token is shown.
#[utoipa::path(post, path = "/api/tokens", operation_id = "create_token", tag = "tokens", request_body = CreateTokenRequest,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let name = validate::label("name", &request.name, 100).map_err(ApiError::BadRequest)?;
    let token = format!(
        "{}{}",
        secret_token::API_TOKEN_PREFIX,
        secret_token::generate()?
    );
    let prefix: String = token
        .chars()
        .take(secret_token::API_TOKEN_PREFIX.len() + 4)
        .collect();
    let new = NewApiToken {
        user_id: caller.user.id,
        name: &name,
        prefix: &prefix,
        token_hash: &secret_token::hash(&token),
    };
    let info = state.store().create_api_token(new).await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token, info })))
}

/// The caller's API tokens, newest first (never the tokens themselves).
#[utoipa::path(get, path = "/api/tokens", operation_id = "list_tokens", tag = "tokens",
    responses((status = 200, body = Vec<ApiToken>), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ApiToken>>, ApiError> {
    Ok(Json(state.store().list_api_tokens(caller.user.id).await?))
}

/// Revokes one of the caller's tokens; it stops working at once.
#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "tokens",
    params(("id" = uuid::Uuid, Path, description = "the token's id")),
    responses((status = 204, description = "revoked"), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    state.store().delete_api_token(caller.user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
