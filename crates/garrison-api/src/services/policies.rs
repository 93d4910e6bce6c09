//! policies: the protection levels.

use axum::Json;
use axum::extract::{Path, State};
use garrison_model::policy::Policy;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_policies)).routes(routes!(get_policy))
}

/// List protection policies.
#[utoipa::path(get, path = "/policies/v1/{account_id}/policies", tag = "policies", operation_id = "list_policies",
    params(("account_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])), responses((status = 200, body = Vec<Policy>)))]
async fn list_policies(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
) -> ApiResult<Json<Vec<Policy>>> {
    s.authorize(&caller, &account_id).await?;
    Ok(Json(garrison_catalog::policies::all()))
}

/// Get a protection policy.
#[utoipa::path(get, path = "/policies/v1/{account_id}/policies/{policy_id}", tag = "policies", operation_id = "get_policy",
    params(("account_id" = String, Path), ("policy_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = Policy), (status = 404, description = "Policy can not be found")))]
async fn get_policy(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
) -> ApiResult<Json<Policy>> {
    s.authorize(&caller, &account_id).await?;
    garrison_catalog::policies::get(&id).map(Json).ok_or_else(|| {
        ApiError::NotFound(format!("Policy can not be found: {id:?}; list them with policies list_policies"))
    })
}
