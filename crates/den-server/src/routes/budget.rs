//! The caller's monthly model budget: what applies, what they spent, and their own lower cap.
//! The admin's cap for a person is set with `den user budget` (see `crate::budget`).

use axum::Json;
use axum::extract::State;
use den_protocol::error::ErrorBody;
use den_protocol::models::{Budget, SetBudgetRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::budget::{Caps, check_amount, month_start};
use crate::error::ApiError;
use crate::extract::ApiJson;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_budget, set_budget))
}

async fn budget(state: &AppState, user_id: uuid::Uuid) -> Result<Budget, ApiError> {
    let caps = Caps::of(state.store(), user_id, state.config().monthly_budget_usd).await?;
    let spent = state.store().usage_since(user_id, month_start()).await?;
    Ok(Budget {
        admin_cap_usd: caps.admin,
        own_cap_usd: caps.own,
        cap_usd: caps.applying().map(|(cap, _)| cap),
        spent_usd: spent.cost_usd,
    })
}

/// The caller's monthly model budget (calendar month, UTC): the admin's cap, their own, the one
/// that applies, and what they spent so far.
#[utoipa::path(get, path = "/api/budget", operation_id = "get_budget", tag = "models",
    responses((status = 200, body = Budget), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn get_budget(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Budget>, ApiError> {
    Ok(Json(budget(&state, caller.user.id).await?))
}

/// Sets (or with `null` removes) the caller's own monthly cap. It may only be lower than the
/// admin's cap (or equal); a higher one is refused. Takes effect at the next model request.
#[utoipa::path(put, path = "/api/budget", operation_id = "set_budget", tag = "models",
    request_body = SetBudgetRequest,
    responses((status = 200, body = Budget), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn set_budget(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<SetBudgetRequest>,
) -> Result<Json<Budget>, ApiError> {
    let store = state.store();
    let Some(monthly_usd) = request.monthly_usd else {
        return Err(ApiError::bad_request(
            "monthlyUsd is required: US dollars a month, or null to remove your cap",
        ));
    };
    if let Some(usd) = monthly_usd {
        check_amount(usd).map_err(ApiError::BadRequest)?;
        let caps = Caps::of(store, caller.user.id, state.config().monthly_budget_usd).await?;
        if let Some(admin) = caps.admin
            && usd > admin
        {
            return Err(ApiError::BadRequest(format!(
                "your own budget can only be lower than the admin's cap for you (${admin:.2} a month); ask an admin to raise that"
            )));
        }
    }
    store.set_own_budget(caller.user.id, monthly_usd).await?;
    Ok(Json(budget(&state, caller.user.id).await?))
}
