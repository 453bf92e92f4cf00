//! The model catalog as the caller sees it, their provider keys and their own endpoints.
//! Keys go in and never come out: answers say whether a key is set, when, and its last four
//! characters at most.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use den_protocol::error::ErrorBody;
use den_protocol::models::{
    ModelCatalog, ModelEndpoint, ModelInfo, ModelPrice, ProviderKeyStatus, PutModelEndpointRequest,
    SessionUsage, SetProviderKeyRequest, UsageReport, UsageTotals,
};
use den_protocol::sessions::DEFAULT_MODEL;
use den_session::catalog::{ENDPOINT_PREFIX, KeySource, Price};
use den_session::{Catalog, ProviderConfig};
use den_store::{KeyInfo, ModelEndpointRecord, NewModelEndpoint, StoreError};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::validate;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_models))
        .routes(routes!(list_keys))
        .routes(routes!(set_key, delete_key))
        .routes(routes!(list_endpoints))
        .routes(routes!(put_endpoint, delete_endpoint))
        .routes(routes!(usage))
}

fn totals(row: den_store::UsageTotals) -> UsageTotals {
    UsageTotals {
        requests: row.requests,
        input_tokens: row.input_tokens,
        output_tokens: row.output_tokens,
        reasoning_tokens: row.reasoning_tokens,
        cache_read_tokens: row.cache_read_tokens,
        cache_write_tokens: row.cache_write_tokens,
        cost_usd: row.cost_usd,
    }
}

/// The caller's model usage, metered by den's gateway from the providers' own streams: today,
/// this month (UTC), and per session this month.
#[utoipa::path(get, path = "/api/usage", operation_id = "get_usage", tag = "models",
    responses((status = 200, body = UsageReport), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn usage(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<UsageReport>, ApiError> {
    use chrono::{Datelike, TimeZone, Utc};
    let day = Utc::now().date_naive();
    let start = |date: chrono::NaiveDate| {
        Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default())
    };
    let today = start(day);
    let month = start(day.with_day(1).unwrap_or(day));
    let store = state.store();
    let owner = caller.user.id;
    Ok(Json(UsageReport {
        today: totals(store.usage_since(owner, today).await?),
        month: totals(store.usage_since(owner, month).await?),
        sessions: store
            .usage_by_session(owner, month)
            .await?
            .into_iter()
            .map(|(session_id, row)| SessionUsage {
                session_id,
                totals: totals(row),
            })
            .collect(),
    }))
}

fn price(price: Option<Price>) -> Option<ModelPrice> {
    price.map(|p| ModelPrice {
        input: p.input,
        output: p.output,
        cache_read: p.cache_read,
        cache_write: p.cache_write,
    })
}

fn source_name(source: KeySource) -> &'static str {
    match source {
        KeySource::Personal => "personal",
        KeySource::Shared => "shared",
        KeySource::Public => "free",
        KeySource::NotNeeded => "none",
    }
}

/// Every model the caller may see, available or locked (and why), with context and prices
/// where known: den's own, the admin's and the caller's endpoints'.
#[utoipa::path(get, path = "/api/models", operation_id = "list_models", tag = "models",
    responses((status = 200, body = ModelCatalog), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn list_models(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ModelCatalog>, ApiError> {
    let catalog = &state.config().catalog;
    let personal: HashMap<String, KeyInfo> = state
        .store()
        .provider_keys(caller.user.id)
        .await?
        .into_iter()
        .collect();
    let mut models = Vec::new();
    for provider in catalog.providers() {
        for model in &provider.models {
            let source = Catalog::key_source(
                provider,
                &model.id,
                personal.contains_key(&provider.name),
                caller.user.is_admin,
            );
            models.push(ModelInfo {
                id: format!("{}/{}", provider.name, model.id),
                provider: provider.name.clone(),
                provider_name: provider.display_name.clone(),
                name: model.name.clone(),
                available: source.is_some(),
                locked_reason: source.is_none().then(|| locked_reason(provider)),
                key_provider: provider.personal_keys.then(|| provider.name.clone()),
                key_source: source.map(|s| source_name(s).to_owned()),
                context: model.context,
                price: price(model.price),
            });
        }
    }
    for endpoint in state.store().model_endpoints(caller.user.id).await? {
        let provider = format!("{ENDPOINT_PREFIX}{}", endpoint.name);
        for model in &endpoint.models {
            models.push(ModelInfo {
                id: format!("{provider}/{model}"),
                provider: provider.clone(),
                provider_name: endpoint.name.clone(),
                name: model.clone(),
                available: true,
                locked_reason: None,
                key_provider: None,
                key_source: Some("endpoint".to_owned()),
                context: None,
                price: None,
            });
        }
    }
    Ok(Json(ModelCatalog {
        models,
        default_model: DEFAULT_MODEL.to_owned(),
    }))
}

fn locked_reason(provider: &ProviderConfig) -> String {
    if provider.personal_keys {
        format!(
            "needs your {} key (Settings → Providers)",
            provider.display_name
        )
    } else {
        format!(
            "the admin has not shared a key for {}",
            provider.display_name
        )
    }
}

/// The provider a personal key is for: one of den's built-in providers, else a clear 400.
pub(super) fn keyed_provider<'a>(
    state: &'a AppState,
    name: &str,
) -> Result<&'a ProviderConfig, ApiError> {
    state
        .config()
        .catalog
        .provider(name)
        .filter(|provider| provider.personal_keys)
        .ok_or_else(|| {
            let known: Vec<&str> = state
                .config()
                .catalog
                .providers()
                .iter()
                .filter(|p| p.personal_keys)
                .map(|p| p.name.as_str())
                .collect();
            ApiError::BadRequest(format!(
                "unknown provider {name:?}: keys can be set for {}",
                known.join(", ")
            ))
        })
}

fn key_status(
    provider: &ProviderConfig,
    info: Option<&KeyInfo>,
    is_admin: bool,
) -> ProviderKeyStatus {
    ProviderKeyStatus {
        provider: provider.name.clone(),
        name: provider.display_name.clone(),
        set: info.is_some(),
        updated_at: info.map(|i| i.updated_at),
        fingerprint: info.and_then(|i| i.fingerprint.clone()),
        shared_key: provider.api_key.is_some() && (provider.shared || is_admin),
    }
}

/// The caller's keys for den's providers: whether each is set, when, and its fingerprint.
#[utoipa::path(get, path = "/api/provider-keys", operation_id = "list_provider_keys", tag = "models",
    responses((status = 200, body = Vec<ProviderKeyStatus>), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ProviderKeyStatus>>, ApiError> {
    let personal: HashMap<String, KeyInfo> = state
        .store()
        .provider_keys(caller.user.id)
        .await?
        .into_iter()
        .collect();
    let statuses = state
        .config()
        .catalog
        .providers()
        .iter()
        .filter(|p| p.personal_keys)
        .map(|p| key_status(p, personal.get(&p.name), caller.user.is_admin))
        .collect();
    Ok(Json(statuses))
}

/// Sets or replaces the caller's key for a provider. Running sessions use it from their next
/// model request.
#[utoipa::path(put, path = "/api/provider-keys/{provider}", operation_id = "set_provider_key", tag = "models",
    params(("provider" = String, Path, description = "`anthropic`, `openai` or `opencode`")),
    request_body = SetProviderKeyRequest,
    responses((status = 200, body = ProviderKeyStatus), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn set_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(provider): Path<String>,
    ApiJson(request): ApiJson<SetProviderKeyRequest>,
) -> Result<Json<ProviderKeyStatus>, ApiError> {
    let config = keyed_provider(&state, &provider)?;
    validate::provider_key(&request.key).map_err(ApiError::BadRequest)?;
    let store = state.store();
    store
        .set_provider_key(caller.user.id, &config.name, request.key.as_bytes())
        .await?;
    let keys = store.provider_keys(caller.user.id).await?;
    let info = keys.iter().find(|(p, _)| *p == config.name).map(|(_, i)| i);
    Ok(Json(key_status(config, info, caller.user.is_admin)))
}

/// Deletes the caller's key for a provider. Running sessions stop using it at their next model
/// request.
#[utoipa::path(delete, path = "/api/provider-keys/{provider}", operation_id = "delete_provider_key", tag = "models",
    params(("provider" = String, Path, description = "`anthropic`, `openai` or `opencode`")),
    responses((status = 204, description = "deleted"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn delete_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(provider): Path<String>,
) -> Result<StatusCode, ApiError> {
    let config = keyed_provider(&state, &provider)?;
    state
        .store()
        .delete_provider_key(caller.user.id, &config.name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn endpoint(record: ModelEndpointRecord) -> ModelEndpoint {
    ModelEndpoint {
        provider: format!("{ENDPOINT_PREFIX}{}", record.name),
        name: record.name,
        base_url: record.base_url,
        models: record.models,
        key_set: record.key.is_some(),
        key_fingerprint: record.key.and_then(|key| key.fingerprint),
        updated_at: record.updated_at,
    }
}

/// The caller's own OpenAI-compatible endpoints.
#[utoipa::path(get, path = "/api/model-endpoints", operation_id = "list_model_endpoints", tag = "models",
    responses((status = 200, body = Vec<ModelEndpoint>), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn list_endpoints(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ModelEndpoint>>, ApiError> {
    let records = state.store().model_endpoints(caller.user.id).await?;
    Ok(Json(records.into_iter().map(endpoint).collect()))
}

/// Adds or replaces one of the caller's OpenAI-compatible endpoints (chat completions). Its
/// models appear as `my-<name>/<model>`; sessions started afterwards can use them.
#[utoipa::path(put, path = "/api/model-endpoints/{name}", operation_id = "put_model_endpoint", tag = "models",
    params(("name" = String, Path, description = "1 to 32 lowercase letters, digits or '-'")),
    request_body = PutModelEndpointRequest,
    responses((status = 200, body = ModelEndpoint), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn put_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<PutModelEndpointRequest>,
) -> Result<Json<ModelEndpoint>, ApiError> {
    validate::endpoint_name(&name).map_err(ApiError::BadRequest)?;
    validate::endpoint_models(&request.models).map_err(ApiError::BadRequest)?;
    if let Some(key) = &request.key {
        validate::provider_key(key).map_err(ApiError::BadRequest)?;
    }
    let base_url =
        validate::endpoint_url(&request.base_url, state.config().allow_private_endpoints)
            .await
            .map_err(ApiError::BadRequest)?;
    let record = state
        .store()
        .put_model_endpoint(NewModelEndpoint {
            owner_id: caller.user.id,
            name: &name,
            base_url: &base_url,
            models: &request.models,
            api_key: request.key.as_deref().map(str::as_bytes),
        })
        .await?;
    Ok(Json(endpoint(record)))
}

/// Deletes one of the caller's endpoints and its key.
#[utoipa::path(delete, path = "/api/model-endpoints/{name}", operation_id = "delete_model_endpoint", tag = "models",
    params(("name" = String, Path, description = "the endpoint's name")),
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn delete_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    match state
        .store()
        .delete_model_endpoint(caller.user.id, &name)
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::NotFound) => Err(ApiError::NotFound),
        Err(err) => Err(err.into()),
    }
}

/// Refuses, clearly and before anything changes, a model the caller cannot use: 400 for a model
/// den does not know, 403 for a locked one (with what would unlock it).
pub(super) async fn ensure_usable(
    state: &AppState,
    user: &den_store::UserRecord,
    model: &str,
) -> Result<(), ApiError> {
    let unknown =
        || ApiError::BadRequest(format!("unknown model {model}: GET /api/models lists them"));
    let (provider, id) = model.split_once('/').ok_or_else(unknown)?;
    if let Some(name) = provider.strip_prefix(ENDPOINT_PREFIX) {
        return match state.store().model_endpoint(user.id, name).await {
            Ok(endpoint) if endpoint.models.iter().any(|m| m == id) => Ok(()),
            Ok(_) | Err(StoreError::NotFound) => Err(unknown()),
            Err(err) => Err(err.into()),
        };
    }
    let config = state
        .config()
        .catalog
        .provider(provider)
        .ok_or_else(unknown)?;
    let spec = config.model(id).ok_or_else(unknown)?;
    let personal = config.personal_keys
        && state
            .store()
            .provider_key(user.id, provider)
            .await?
            .is_some();
    match Catalog::key_source(config, id, personal, user.is_admin) {
        Some(_) => Ok(()),
        None => Err(ApiError::Forbidden(format!(
            "{} is locked: {}",
            spec.name,
            locked_reason(config)
        ))),
    }
}
