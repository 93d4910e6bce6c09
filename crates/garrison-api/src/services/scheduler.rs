//! scan_scheduler v2: a deployment's scan schedules (scope, time zone, windows, frequency),
//! its default vulnerability schedule (always listed; changed, never deleted), stopping a
//! schedule or the scans of an asset, and expediting them. The planner reads them: scanners
//! run inside the windows of the schedules reaching their VPC (`plan::scans`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use garrison_model::FieldError;
use garrison_model::deployment::Deployment;
use garrison_model::schedule::{self, ScanControl, Schedule, Stamp};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::deployments::not_found;
use crate::AppState;
use crate::auth::Caller;
use crate::body;
use crate::error::{ApiError, ApiResult};
use garrison_engine::now_ms;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_timezones))
        .routes(routes!(list_schedules, create_schedule))
        .routes(routes!(get_schedule, update_schedule, delete_schedule))
        .routes(routes!(stop_scan_schedule))
        .routes(routes!(get_schedule_summary))
        .routes(routes!(expedite_scan))
        .routes(routes!(stop_scan_assets))
}

/// Schedules per deployment, bounded.
pub const MAX_SCHEDULES: usize = 50;

async fn deployment(s: &AppState, caller: &Caller, account_id: &str, id: &str) -> ApiResult<Deployment> {
    s.authorize(caller, account_id).await?;
    s.store.get_deployment(account_id, id).await?.ok_or_else(|| not_found(id, account_id))
}

/// The deployment's schedules: those stored, and the default one as it is until changed.
async fn schedules(s: &AppState, d: &Deployment) -> ApiResult<Vec<Schedule>> {
    let options = s.store.list_options(&d.account_id, Some("vulnerability_scan_frequency")).await?;
    Ok(garrison_engine::protect::schedules(&s.store, d, &options).await?)
}

async fn find(s: &AppState, d: &Deployment, id: &str) -> ApiResult<Schedule> {
    schedules(s, d).await?.into_iter().find(|x| x.id == id).ok_or_else(|| {
        ApiError::NotFound(format!("no scan schedule {id:?} in deployment {} of account {}", d.id, d.account_id))
    })
}

/// A change of schedules is planned at once: scanners start or stop as the windows now say.
async fn replan(s: &AppState, d: &Deployment) -> ApiResult<()> {
    s.store.make_due(std::slice::from_ref(&d.id)).await?;
    s.wake_engine();
    Ok(())
}

#[derive(Deserialize, utoipa::IntoParams)]
struct Fields {
    /// Only these fields of each schedule (comma separated; `id` always).
    return_fields: Option<String>,
}

fn only(v: Value, fields: &Option<String>) -> Value {
    let Some(f) = fields else { return v };
    let keep: Vec<&str> = f.split(',').map(str::trim).collect();
    match v {
        Value::Object(m) => {
            Value::Object(m.into_iter().filter(|(k, _)| k == "id" || keep.contains(&k.as_str())).collect())
        }
        other => other,
    }
}

fn shown(s: &Schedule) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.remove("stopped_at");
    }
    v
}

/// The time zones a schedule may name.
#[utoipa::path(get, path = "/scheduler/v2/timezones", tag = "scan_scheduler", operation_id = "list_timezones",
    security(("X-AIMS-Auth-Token" = [])), responses((status = 200, description = "[{tz_name, status}]")))]
async fn list_timezones(_caller: Caller) -> Json<Value> {
    Json(Value::Array(
        schedule::timezones().into_iter().map(|n| json!({"tz_name": n, "status": "Canonical"})).collect(),
    ))
}

/// The deployment's scan schedules, its default one first.
#[utoipa::path(get, path = "/scheduler/v2/{account_id}/{deployment_id}/schedules", tag = "scan_scheduler", operation_id = "list_schedules",
    params(("account_id" = String, Path), ("deployment_id" = String, Path), Fields), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = Vec<Schedule>), (status = 404, description = "no such deployment")))]
async fn list_schedules(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, deployment_id)): Path<(String, String)>,
    Query(q): Query<Fields>,
) -> ApiResult<Json<Value>> {
    let d = deployment(&s, &caller, &account_id, &deployment_id).await?;
    let all = schedules(&s, &d).await?;
    Ok(Json(Value::Array(all.iter().map(|x| only(shown(x), &q.return_fields)).collect())))
}

/// Create a scan schedule.
#[utoipa::path(post, path = "/scheduler/v2/{account_id}/{deployment_id}/schedules", tag = "scan_scheduler", operation_id = "create_schedule",
    params(("account_id" = String, Path), ("deployment_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 201, body = Schedule), (status = 400, description = "invalid field"), (status = 404, description = "no such deployment")))]
async fn create_schedule(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, deployment_id)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let d = deployment(&s, &caller, &account_id, &deployment_id).await?;
    let mut sched = schedule::parse(&body::parse(&bytes)?, &garrison_store::new_id(), false)?;
    if s.store.list_schedules(&account_id, &d.id).await?.len() >= MAX_SCHEDULES {
        return Err(ApiError::Conflict(format!(
            "deployment {} has {MAX_SCHEDULES} scan schedules, the most it may have",
            d.id
        )));
    }
    let stamp = Stamp { at: now_ms() / 1000, by: caller.user_id.clone() };
    sched.created = Some(stamp.clone());
    sched.modified = Some(stamp);
    s.store.put_schedule(&account_id, &d.id, &sched).await?;
    tracing::info!(account = %account_id, deployment = %d.id, schedule = %sched.id, "scan schedule created");
    replan(&s, &d).await?;
    Ok((StatusCode::CREATED, Json(shown(&sched))))
}

/// One scan schedule.
#[utoipa::path(get, path = "/scheduler/v2/{account_id}/{deployment_id}/schedules/{id}", tag = "scan_scheduler", operation_id = "get_schedule",
    params(("account_id" = String, Path), ("deployment_id" = String, Path), ("id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = Schedule), (status = 404, description = "no such schedule")))]
async fn get_schedule(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, deployment_id, id)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let d = deployment(&s, &caller, &account_id, &deployment_id).await?;
    Ok(Json(shown(&find(&s, &d, &id).await?)))
}

/// Replace a scan schedule's settings (the default one too: it stays the default, of all
/// assets' vulnerability scans).
#[utoipa::path(put, path = "/scheduler/v2/{account_id}/{deployment_id}/schedules/{id}", tag = "scan_scheduler", operation_id = "update_schedule",
    params(("account_id" = String, Path), ("deployment_id" = String, Path), ("id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = Schedule), (status = 400, description = "invalid field"), (status = 404, description = "no such schedule")))]
async fn update_schedule(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, deployment_id, id)): Path<(String, String, String)>,
    bytes: Bytes,
) -> ApiResult<Json<Value>> {
    let d = deployment(&s, &caller, &account_id, &deployment_id).await?;
    let current = find(&s, &d, &id).await?;
    // What the body leaves out stays as it is.
    let mut merged = serde_json::to_value(&current).unwrap_or_default();
    if let (Some(m), Value::Object(given)) = (merged.as_object_mut(), body::parse(&bytes)?) {
        for k in ["stopped_at", "created", "modified", "id", "default"] {
            m.remove(k);
        }
        m.extend(given);
    }
    let mut next = schedule::parse(&merged, &current.id, current.default)?;
    if current.default && next.type_of_scan != "vulnerability" {
        return Err(ApiError::field(FieldError::new(
            "type_of_scan",
            "vulnerability (the default schedule's)",
            format!("{:?}", next.type_of_scan),
        )));
    }
    next.stopped_at = current.stopped_at;
    next.created = current.created.clone();
    next.modified = Some(Stamp { at: now_ms() / 1000, by: caller.user_id.clone() });
    s.store.put_schedule(&account_id, &d.id, &next).await?;
    replan(&s, &d).await?;
    Ok(Json(shown(&next)))
}

/// Delete a scan schedule (not the default one: disable it instead).
#[utoipa::path(delete, path = "/scheduler/v2/{account_id}/{deployment_id}/schedules/{id}", tag = "scan_scheduler", operation_id = "delete_schedule",
    params(("account_id" = String, Path), ("deployment_id" = String, Path), ("id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 204, description = "deleted"), (status = 400, description = "the default schedule"), (status = 404, description = "no such schedule")))]
async fn delete_schedule(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, deployment_id, id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let d = deployment(&s, &caller, &account_id, &deployment_id).await?;
    let current = find(&s, &d, &id).await?;
    if current.default {
        return Err(ApiError::field(FieldError::new(
            "id",
            "a schedule that is not the default one (the default can be disabled: enabled=false)",
            format!("{id:?}, the default schedule"),
        )));
    }
    s.store.delete_schedule(&account_id, &d.id, &id).await?;
    replan(&s, &d).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stop the scans of a schedule: its window open now stays shut until it closes.
#[utoipa::path(put, path = "/scheduler/v2/{account_id}/{deployment_id}/schedules/{id}/stop", tag = "scan_scheduler", operation_id = "stop_scan_schedule",
    params(("account_id" = String, Path), ("deployment_id" = String, Path), ("id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "stopped"), (status = 404, description = "no such schedule")))]
async fn stop_scan_schedule(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, deployment_id, id)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let d = deployment(&s, &caller, &account_id, &deployment_id).await?;
    let mut current = find(&s, &d, &id).await?;
    current.stopped_at = Some(now_ms());
    s.store.put_schedule(&account_id, &d.id, &current).await?;
    replan(&s, &d).await?;
    Ok(Json(json!({"id": id, "status": "stopped"})))
}

/// A schedule's state now: disabled, stopped, in_progress (a window open) or idle, and
/// when its next window opens (within 35 days).
#[utoipa::path(get, path = "/scheduler/v2/{account_id}/{deployment_id}/schedules/{id}/summary", tag = "scan_scheduler", operation_id = "get_schedule_summary",
    params(("account_id" = String, Path), ("deployment_id" = String, Path), ("id" = String, Path), Fields), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "ScheduleSummary"), (status = 404, description = "no such schedule")))]
async fn get_schedule_summary(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, deployment_id, id)): Path<(String, String, String)>,
    Query(q): Query<Fields>,
) -> ApiResult<Json<Value>> {
    let d = deployment(&s, &caller, &account_id, &deployment_id).await?;
    let sched = find(&s, &d, &id).await?;
    let now = now_ms();
    let status = if !sched.enabled {
        "disabled"
    } else if sched.open_at(now) {
        "in_progress"
    } else if sched.window_open(now) {
        "stopped"
    } else {
        "idle"
    };
    // Hosts in scope: the running instances of the VPCs the schedule reaches, as last read.
    let mut assets = 0;
    if let Some(snap) = s.store.get_snapshot(&account_id, &d.id).await? {
        for (region, rs) in &snap.regions {
            for v in &rs.vpcs {
                let place = schedule::VpcPlace::of(region, rs, v);
                if sched.covers(&place) {
                    assets += place.hosts.len();
                }
            }
        }
    }
    let next = sched.next_open(now, 35 * 86_400_000).map(schedule::rfc3339);
    let v = json!({"id": sched.id, "status": status, "assets_number": assets, "next_scan_date": next});
    Ok(Json(only(v, &q.return_fields)))
}

#[derive(Deserialize, utoipa::IntoParams)]
struct Force {
    /// Scan excluded targets too (garrison's scanners scan what the deployment's scope
    /// includes: accepted, no effect).
    #[allow(dead_code)]
    force: Option<bool>,
}

async fn control(
    s: &AppState,
    caller: &Caller,
    account_id: &str,
    deployment_id: &str,
    bytes: &Bytes,
    expedite: bool,
) -> ApiResult<Json<Value>> {
    let d = deployment(s, caller, account_id, deployment_id).await?;
    let (asset_type, key) = schedule::control_item(&body::parse(bytes)?)?;
    let now = now_ms();
    let c = ScanControl {
        key: key.clone(),
        asset_type,
        expedite_until: expedite.then_some(now + schedule::EXPEDITE_MS),
        stopped_at: (!expedite).then_some(now),
    };
    s.store.put_scan_control(&d.id, &c).await?;
    replan(s, &d).await?;
    Ok(Json(json!({"key": key, "status": if expedite { "expedited" } else { "stopped" }})))
}

/// Scan now: the scanners reaching the asset run at once, whatever the windows, for
/// four hours.
#[utoipa::path(put, path = "/scheduler/v2/{account_id}/{deployment_id}/scan", tag = "scan_scheduler", operation_id = "expedite_scan",
    params(("account_id" = String, Path), ("deployment_id" = String, Path), Force), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "expedited"), (status = 400, description = "invalid field"), (status = 404, description = "no such deployment")))]
async fn expedite_scan(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, deployment_id)): Path<(String, String)>,
    Query(_q): Query<Force>,
    bytes: Bytes,
) -> ApiResult<Json<Value>> {
    control(&s, &caller, &account_id, &deployment_id, &bytes, true).await
}

/// Stop the scans of an asset: the scanners reaching it stop until their window open now
/// has closed (without windows: for one SLA period).
#[utoipa::path(put, path = "/scheduler/v2/{account_id}/{deployment_id}/stop", tag = "scan_scheduler", operation_id = "stop_scan_assets",
    params(("account_id" = String, Path), ("deployment_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "stopped"), (status = 400, description = "invalid field"), (status = 404, description = "no such deployment")))]
async fn stop_scan_assets(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, deployment_id)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<Json<Value>> {
    control(&s, &caller, &account_id, &deployment_id, &bytes, false).await
}
