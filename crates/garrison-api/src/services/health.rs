//! A deployment's health (`deployments list_health`): its health items — what weakens its
//! protection, with the remedy, open or concluded (Alert Logic's unhealthy/concluded) — its
//! appliances judged from their heartbeats now, and the latest refused registrations.

use axum::Json;
use axum::extract::{Path, Query, State};
use garrison_model::FieldError;
use garrison_model::health::ItemStatus;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::deployments::not_found;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use garrison_engine::now_ms;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_health))
}

#[derive(Deserialize, utoipa::IntoParams)]
struct Filter {
    /// unhealthy | concluded (default: both)
    status: Option<String>,
}

/// The deployment's health items (newest change first), its appliances and refused registrations.
#[utoipa::path(get, path = "/deployments/v1/{account_id}/deployments/{deployment_id}/health", tag = "deployments", operation_id = "list_health",
    params(("account_id" = String, Path), ("deployment_id" = String, Path), Filter), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "{deployment_id, status, items, appliances, refusals}"), (status = 400, description = "bad status filter"), (status = 404, description = "no such deployment")))]
async fn list_health(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
    Query(f): Query<Filter>,
) -> ApiResult<Json<Value>> {
    s.authorize(&caller, &account_id).await?;
    let d = s.store.get_deployment(&account_id, &id).await?.ok_or_else(|| not_found(&id, &account_id))?;
    let want = match f.status.as_deref() {
        None => None,
        Some("unhealthy") => Some(ItemStatus::Unhealthy),
        Some("concluded") => Some(ItemStatus::Concluded),
        Some(other) => {
            return Err(ApiError::field(FieldError::new("status", "unhealthy or concluded", format!("{other:?}"))));
        }
    };
    let items = s.store.health_items(&d.id).await?;
    let unhealthy = items.values().any(|i| i.status == ItemStatus::Unhealthy);
    let mut items: Vec<_> = items.into_values().filter(|i| want.is_none_or(|w| i.status == w)).collect();
    items.sort_by(|a, b| b.updated_ms.cmp(&a.updated_ms).then_with(|| a.key.cmp(&b.key)));
    // The appliances as they are now (the watch stores items; this reads only).
    let channel = s.engine.as_ref().and_then(|e| e.appliances.clone());
    let appliances = match (&channel, s.store.get_report(&account_id, &id).await?) {
        (Some(ch), Some(report)) => garrison_engine::appliances::judge(&s.store, ch, &d, &report, now_ms()).await?.0,
        _ => vec![],
    };
    let refusals = s.store.refusals(&d.id, 20).await?;
    Ok(Json(json!({
        "deployment_id": d.id,
        "status": if unhealthy { "unhealthy" } else { "healthy" },
        "items": items,
        "appliances": appliances,
        "refusals": refusals,
    })))
}
