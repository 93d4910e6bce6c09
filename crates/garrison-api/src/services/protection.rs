//! garrison extensions under deployments v1: plan preview (also as CloudFormation for
//! manual mode), the latest protection report, the audit log of AWS writes, the input the
//! collector set aside, and the deployments whose removal is still in progress.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use garrison_engine::protect::preview;
use garrison_model::FieldError;
use garrison_model::protection::{TAG_DEPLOYMENT, TAG_OWNER, TAG_TENANT};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::deployments::not_found;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(plan_deployment))
        .routes(routes!(get_protection))
        .routes(routes!(get_coverage))
        .routes(routes!(list_audit_log))
        .routes(routes!(list_dead_letters))
        .routes(routes!(list_removals))
}

#[derive(Deserialize, utoipa::IntoParams)]
struct PlanQuery {
    /// json (default) | cloudformation
    format: Option<String>,
}

/// What protection would create, change or remove now, from a fresh discovery, and the
/// monthly appliance cost before and after (`cost`, in all and per VPC); nothing is written. `format=cloudformation` gives the creates as one template per region.
#[utoipa::path(get, path = "/deployments/v1/{account_id}/deployments/{deployment_id}/plan", tag = "deployments", operation_id = "plan_deployment",
    params(("account_id" = String, Path), ("deployment_id" = String, Path), PlanQuery), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "{actions, counts, problems, cost} or {templates}"), (status = 404, description = "no such deployment"), (status = 502, description = "the AWS account could not be read")))]
async fn plan_deployment(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
    Query(q): Query<PlanQuery>,
) -> ApiResult<Json<Value>> {
    s.authorize(&caller, &account_id).await?;
    let cfn = match q.format.as_deref() {
        None | Some("json") => false,
        Some("cloudformation") => true,
        Some(other) => {
            return Err(ApiError::field(FieldError::new(
                "format",
                "one of [json, cloudformation]",
                format!("{other:?}"),
            )));
        }
    };
    let d = s.store.get_deployment(&account_id, &id).await?.ok_or_else(|| not_found(&id, &account_id))?;
    let engine = s.engine.as_ref().ok_or_else(|| ApiError::Unavailable("this server runs without an engine".into()))?;
    let garrison_engine::protect::Preview { plan, seen, cost } =
        preview(engine, &d, None).await.map_err(|st| ApiError::Upstream(st.message.unwrap_or_default()))?;
    if cfn {
        let owned = s.store.owned(&id).await?;
        let existing: BTreeMap<String, String> = owned.items.values().map(|o| (o.key.clone(), o.id.clone())).collect();
        let tags = vec![
            (TAG_OWNER.0.to_string(), TAG_OWNER.1.to_string()),
            (TAG_TENANT.to_string(), account_id.clone()),
            (TAG_DEPLOYMENT.to_string(), id.clone()),
        ];
        let templates = garrison_catalog::plan_cft::render(&plan, &seen.snapshot.aws_account, &tags, &existing);
        return Ok(Json(json!({"deployment_id": id, "templates": templates})));
    }
    Ok(Json(json!({
        "deployment_id": id,
        "mode": d.mode,
        "discovery": seen.summary(),
        "counts": plan.counts(),
        "actions": plan.actions,
        "problems": plan.problems,
        "cost": cost,
    })))
}

/// The latest protection report: plan, outcomes, appliances per VPC, audit source, cost.
#[utoipa::path(get, path = "/deployments/v1/{account_id}/deployments/{deployment_id}/protection", tag = "deployments", operation_id = "get_protection",
    params(("account_id" = String, Path), ("deployment_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "protection report", body = garrison_model::report::Report), (status = 404, description = "no such deployment or not reconciled yet")))]
async fn get_protection(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
) -> ApiResult<Json<garrison_model::report::Report>> {
    s.authorize(&caller, &account_id).await?;
    known(&s, &account_id, &id).await?;
    let mut report = s.store.get_report(&account_id, &id).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "no protection report for deployment {id:?} in account {account_id} (not reconciled yet)"
        ))
    })?;
    let seen = s.store.feed_seen(&account_id, &id).await?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    report.freshness =
        Some(garrison_model::report::Freshness::of(&report.audit_source, seen.events_ms, seen.trail_files_ms, now));
    Ok(Json(report))
}

/// The coverage picture from the latest snapshot: regions → VPCs → zones, each protected,
/// unprotected, excluded or idle, with the appliances there.
#[utoipa::path(get, path = "/deployments/v1/{account_id}/deployments/{deployment_id}/coverage", tag = "deployments", operation_id = "get_coverage",
    params(("account_id" = String, Path), ("deployment_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "{counts, regions: [{region, scope, vpcs: [{vpc_id, status, zones, appliances}]}]}"), (status = 404, description = "no such deployment or not discovered yet")))]
async fn get_coverage(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    s.authorize(&caller, &account_id).await?;
    let d = s.store.get_deployment(&account_id, &id).await?.ok_or_else(|| not_found(&id, &account_id))?;
    let snap = s.store.get_snapshot(&account_id, &id).await?.ok_or_else(|| {
        ApiError::NotFound(format!("deployment {id:?} in account {account_id} has not been discovered yet"))
    })?;
    let vpcs = s.store.get_report(&account_id, &id).await?.map(|r| r.vpcs).unwrap_or_default();
    let options = s.store.list_options(&account_id, None).await?;
    Ok(Json(garrison_engine::coverage::picture(&d, &snap, &vpcs, &options)))
}

/// 404 for a deployment id the account never had (sub-routes answer for live deployments,
/// those being removed, and removed ones whose audit log is kept).
async fn known(s: &AppState, account_id: &str, id: &str) -> ApiResult<()> {
    if s.store.deployment_known(account_id, id).await? { Ok(()) } else { Err(not_found(id, account_id)) }
}

#[derive(Deserialize, utoipa::IntoParams)]
pub(crate) struct AuditQuery {
    /// At most this many entries (default 1000 for the audit log, 100 for dead letters; at most 100000).
    limit: Option<i64>,
    /// The continue token of the previous page (audit log).
    #[serde(rename = "continue")]
    cont: Option<String>,
}

fn limit(q: &AuditQuery, default: i64) -> ApiResult<i64> {
    let limit = q.limit.unwrap_or(default);
    if !(1..=100_000).contains(&limit) {
        return Err(ApiError::field(FieldError::new("limit", "an integer from 1 to 100000", limit.to_string())));
    }
    Ok(limit)
}

/// Every AWS write garrison made for a deployment (kept after removal), newest first, a
/// page of `limit` at a time; `continue` is in the answer while older entries remain.
#[utoipa::path(get, path = "/deployments/v1/{account_id}/deployments/{deployment_id}/audit", tag = "deployments", operation_id = "list_audit_log",
    params(("account_id" = String, Path), ("deployment_id" = String, Path), AuditQuery), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "a page of the audit log, newest first", body = garrison_model::audit::AuditPage)))]
async fn list_audit_log(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<garrison_model::audit::AuditPage>> {
    s.authorize(&caller, &account_id).await?;
    let route = format!("list_audit_log/{id}");
    let page = audit_page(&s, &account_id, &id, &route, &q, known(&s, &account_id, &id)).await?;
    Ok(Json(page))
}

/// A page of the audit log of `id` (a deployment, or an organization enrollment's own
/// writes), newest first. `exists` says whether `id` is there to be read, checked after
/// the cursor (so a bad cursor is refused before anything about `id` is said).
pub(crate) async fn audit_page(
    s: &AppState,
    account_id: &str,
    id: &str,
    route: &str,
    q: &AuditQuery,
    exists: impl std::future::Future<Output = ApiResult<()>>,
) -> ApiResult<garrison_model::audit::AuditPage> {
    // The cursor carries the page size and where the previous page ended (time, entry id).
    let (size, before) = match &q.cont {
        Some(token) => {
            let opened = s.open_cursor(account_id, route, token)?;
            if q.limit.is_some_and(|l| l != opened.page.size as i64) {
                return Err(crate::paging::mismatched_query());
            }
            let (at, entry) = opened.query.split_once('|').ok_or_else(crate::paging::mismatched_query)?;
            let at: i64 = at.parse().map_err(|_| crate::paging::mismatched_query())?;
            (opened.page.size as i64, Some((at, entry.to_string())))
        }
        None => (limit(q, 1000)?, None),
    };
    exists.await?;
    let mut page = s.store.audit_page(account_id, id, before.as_ref().map(|(a, e)| (*a, e.as_str())), size + 1).await?;
    let more = page.len() as i64 > size;
    page.truncate(size as usize);
    let next = match page.last() {
        Some((entry, last)) if more => {
            let position = format!("{}|{entry}", last.at_ms);
            let binding = crate::paging::Binding { account_id, route, query: &position };
            Some(s.cursor(&binding, crate::paging::Page { offset: 0, size: size as usize }))
        }
        _ => None,
    };
    let entries = page.into_iter().map(|(_, e)| e).collect();
    Ok(garrison_model::audit::AuditPage { deployment_id: id.to_string(), entries, next })
}

/// Audit-queue input the collector could not use (malformed messages, unreadable log
/// objects, records of unknown shape), newest first, each with the reason.
#[utoipa::path(get, path = "/deployments/v1/{account_id}/deployments/{deployment_id}/dead_letters", tag = "deployments", operation_id = "list_dead_letters",
    params(("account_id" = String, Path), ("deployment_id" = String, Path), AuditQuery), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "{dead_letters: [...]}")))]
async fn list_dead_letters(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Value>> {
    s.authorize(&caller, &account_id).await?;
    let limit = limit(&q, 100)?;
    if q.cont.is_some() {
        return Err(ApiError::field(FieldError::new(
            "continue",
            "no continue token: dead letters come in one page of at most limit, newest first",
            "a continue token",
        )));
    }
    known(&s, &account_id, &id).await?;
    let letters = s.store.dead_letters(&account_id, &id, limit).await?;
    Ok(Json(json!({"deployment_id": id, "dead_letters": letters})))
}

/// Deleted deployments whose resources are still being removed.
#[utoipa::path(get, path = "/deployments/v1/{account_id}/removals", tag = "deployments", operation_id = "list_removals",
    params(("account_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "{removals: [...]}")))]
async fn list_removals(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
) -> ApiResult<Json<Value>> {
    s.authorize(&caller, &account_id).await?;
    let mut out = vec![];
    for d in s.store.pending_removals(&account_id).await? {
        let left = s.store.owned(&d.id).await?.items.len();
        out.push(json!({"id": d.id, "name": d.name, "resources_left": left}));
    }
    Ok(Json(json!({"removals": out})))
}
