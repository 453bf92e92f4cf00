//! "Test key": the caller's saved key (or endpoint) tried with one tiny request, so they learn
//! at once whether the provider accepts it. The key goes out only to its provider, through the
//! same rules as the gateway's requests (`gateway::probe`), and never comes back.

use axum::Json;
use axum::extract::{Path, State};
use den_protocol::error::ErrorBody;
use den_protocol::models::KeyTestResult;
use den_session::ProviderKind;
use den_store::StoreError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zeroize::Zeroizing;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::gateway::{endpoint, probe};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(test_provider_key))
        .routes(routes!(test_endpoint))
}

fn text(key: Zeroizing<Vec<u8>>) -> Zeroizing<String> {
    Zeroizing::new(String::from_utf8_lossy(&key).into_owned())
}

/// Tries the caller's key for a provider with one tiny request to its cheapest model (it may
/// cost a fraction of a cent) and says whether the provider accepted it, or what it answered.
#[utoipa::path(post, path = "/api/provider-keys/{provider}/test", operation_id = "test_provider_key", tag = "models",
    params(("provider" = String, Path, description = "`anthropic`, `openai` or `opencode`")),
    responses((status = 200, body = KeyTestResult), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn test_provider_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(provider): Path<String>,
) -> Result<Json<KeyTestResult>, ApiError> {
    let config = super::models::keyed_provider(&state, &provider)?;
    let Some(key) = state
        .store()
        .provider_key(caller.user.id, &config.name)
        .await?
        .map(text)
    else {
        return Err(ApiError::NotFound);
    };
    // The cheapest model that needs a key: a free one would answer without looking at it.
    let model = config
        .models
        .iter()
        .filter(|model| !model.is_free())
        .min_by(|a, b| {
            let input = |m: &den_session::catalog::ModelSpec| m.price.map_or(0.0, |p| p.input);
            input(a).total_cmp(&input(b))
        })
        .or(config.models.first())
        .ok_or_else(|| {
            ApiError::BadRequest(format!("{} offers no model here", config.display_name))
        })?;
    let result = probe::run(
        state.http(),
        probe::Probe {
            kind: config.kind,
            display_name: &config.display_name,
            base_url: &config.base_url,
            model: &model.id,
            key: Some(key.as_str()),
        },
    )
    .await;
    Ok(Json(result))
}

/// Tries one of the caller's endpoints with one tiny chat-completions request to its first
/// model, with its key if it has one, and says what it answered.
#[utoipa::path(post, path = "/api/model-endpoints/{name}/test", operation_id = "test_model_endpoint", tag = "models",
    params(("name" = String, Path, description = "the endpoint's name")),
    responses((status = 200, body = KeyTestResult), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn test_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<KeyTestResult>, ApiError> {
    let store = state.store();
    let record = match store.model_endpoint(caller.user.id, &name).await {
        Ok(record) => record,
        Err(StoreError::NotFound) => return Err(ApiError::NotFound),
        Err(err) => return Err(err.into()),
    };
    let refused = |message: String| {
        Json(KeyTestResult {
            ok: false,
            status: None,
            message,
        })
    };
    // Checked again now, and reached only where the check pinned it, as the gateway does.
    let checked =
        match endpoint::check(&record.base_url, state.config().allow_private_endpoints).await {
            Ok(checked) => checked,
            Err(reason) => return Ok(refused(format!("den cannot use {name}: {reason}"))),
        };
    let http = match checked.client() {
        Ok(http) => http,
        Err(reason) => return Ok(refused(reason)),
    };
    let key = store.endpoint_key(caller.user.id, &name).await?.map(text);
    let Some(model) = record.models.first() else {
        return Ok(refused(format!("{name} lists no model")));
    };
    let base_url = checked.base_url();
    let result = probe::run(
        &http,
        probe::Probe {
            kind: ProviderKind::OpenAiCompatible,
            display_name: &name,
            base_url: &base_url,
            model,
            key: key.as_ref().map(|key| key.as_str()),
        },
    )
    .await;
    Ok(Json(result))
}
