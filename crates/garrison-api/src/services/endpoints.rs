//! endpoints: every service of every account is served by this server.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use garrison_model::FieldError;
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::body;
use crate::error::{ApiError, ApiResult};

pub const RESIDENCIES: [&str; 3] = ["default", "us", "emea"];

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_endpoint)).routes(routes!(get_endpoints))
}

/// The host (no scheme) clients should use, as the reference answers.
fn host(s: &AppState) -> String {
    let u = &s.config.public_url;
    u.split_once("://").map_or(u.as_str(), |(_, rest)| rest).trim_end_matches('/').to_string()
}

fn residency(r: &str) -> ApiResult<()> {
    if RESIDENCIES.contains(&r) {
        Ok(())
    } else {
        Err(ApiError::field(FieldError::new("residency", "one of [default, us, emea]", format!("{r:?}"))))
    }
}

/// The host serving a service for an account.
#[utoipa::path(get, path = "/endpoints/v1/{account_id}/residency/{residency}/services/{service_name}/endpoint", tag = "endpoints",
    operation_id = "get_endpoint",
    params(("account_id" = String, Path), ("residency" = String, Path), ("service_name" = String, Path)),
    security(("X-AIMS-Auth-Token" = [])), responses((status = 200, description = "{\"<service>\": \"<host>\"}")))]
async fn get_endpoint(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, res, service)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    s.authorize(&caller, &account_id).await?;
    residency(&res)?;
    let mut m = Map::new();
    m.insert(service, Value::String(host(&s)));
    Ok(Json(Value::Object(m)))
}

/// Hosts for several services at once.
#[utoipa::path(post, path = "/endpoints/v1/{account_id}/residency/{residency}/endpoints", tag = "endpoints", operation_id = "get_endpoints",
    params(("account_id" = String, Path), ("residency" = String, Path)),
    security(("X-AIMS-Auth-Token" = [])), responses((status = 200, description = "service → host")))]
async fn get_endpoints(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, res)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<Json<Value>> {
    s.authorize(&caller, &account_id).await?;
    residency(&res)?;
    let v = body::parse(&bytes)?;
    let Some(names) = v.as_array().filter(|a| a.iter().all(Value::is_string)) else {
        return Err(ApiError::field(FieldError::new(
            "body",
            "an array of service names, e.g. [\"deployments\"]",
            garrison_model::error::describe(&v),
        )));
    };
    let h = host(&s);
    Ok(Json(Value::Object(
        names.iter().map(|n| (n.as_str().unwrap_or_default().to_string(), Value::String(h.clone()))).collect(),
    )))
}
