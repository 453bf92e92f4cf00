//! Monthly model budgets: the caller's (what applies, what they spent, their own lower cap) and,
//! for admins, everyone's, with the cap the admin sets per person (also `den user budget`; see
//! `crate::budget`).

use axum::Json;
use axum::extract::Path;
use axum::extract::State;
use den_protocol::error::ErrorBody;
use den_protocol::models::{Budget, BudgetOverview, PersonBudget, SetBudgetRequest};
use den_store::{StoreError, UserRecord};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::budget::{Caps, check_amount, month_start};
use crate::error::ApiError;
use crate::extract::ApiJson;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_budget, set_budget))
        .routes(routes!(list_budgets))
        .routes(routes!(set_person_budget))
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

fn admin_only(caller: &Caller) -> Result<(), ApiError> {
    if caller.user.is_admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only an admin may see or set other people's budgets".to_owned(),
        ))
    }
}

async fn person_budget(state: &AppState, user: &UserRecord) -> Result<PersonBudget, ApiError> {
    let record = state.store().budget(user.id).await?;
    let own = budget(state, user.id).await?;
    Ok(PersonBudget {
        username: user.username.clone(),
        admin_cap_usd: record.admin_cap_usd,
        own_cap_usd: own.own_cap_usd,
        cap_usd: own.cap_usd,
        spent_usd: own.spent_usd,
    })
}

/// Every person's monthly budget and spending this month, and den's default cap. Admins only.
#[utoipa::path(get, path = "/api/admin/budgets", operation_id = "list_budgets", tag = "models",
    responses((status = 200, body = BudgetOverview), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn list_budgets(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<BudgetOverview>, ApiError> {
    admin_only(&caller)?;
    let mut people = Vec::new();
    for user in state.store().list_users().await? {
        people.push(person_budget(&state, &user).await?);
    }
    Ok(Json(BudgetOverview {
        default_cap_usd: state.config().monthly_budget_usd,
        people,
    }))
}

/// Sets the admin's monthly cap for one person (`null`: den's default again). It may be higher
/// or lower than the default; the person's own cap still applies when it is lower. Admins only.
#[utoipa::path(put, path = "/api/admin/budgets/{username}", operation_id = "set_person_budget", tag = "models",
    params(("username" = String, Path, description = "the person's username")),
    request_body = SetBudgetRequest,
    responses((status = 200, body = PersonBudget), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn set_person_budget(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
    ApiJson(request): ApiJson<SetBudgetRequest>,
) -> Result<Json<PersonBudget>, ApiError> {
    admin_only(&caller)?;
    let Some(monthly_usd) = request.monthly_usd else {
        return Err(ApiError::bad_request(
            "monthlyUsd is required: US dollars a month, or null for den's default",
        ));
    };
    if let Some(usd) = monthly_usd {
        check_amount(usd).map_err(ApiError::BadRequest)?;
    }
    let user = match state.store().user_by_name(&username).await {
        Ok(user) => user,
        Err(StoreError::NotFound) => return Err(ApiError::NotFound),
        Err(err) => return Err(err.into()),
    };
    state.store().set_admin_budget(user.id, monthly_usd).await?;
    Ok(Json(person_budget(&state, &user).await?))
}
