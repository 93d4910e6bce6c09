//! otis v3: tuning options. Each is a named value at the account, a deployment, a region or
//! a VPC (its id derived from name and scope: one value per name and scope); every value is
//! checked for its option; each says whether garrison acts on it (`applied`, else
//! `not_applied_reason`). `cross_network_protection` options are also listed as the networks
//! they protect and the networks protecting them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use garrison_model::FieldError;
use garrison_model::otis::{TuningOption, parse, shown};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::body;
use crate::error::{ApiError, ApiResult};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_option, list_options))
        .routes(routes!(get_option, update_option, delete_option))
        .routes(routes!(list_cross_protected_networks))
        .routes(routes!(list_cross_protecting_networks))
}

/// Options per account: a value for each name and scope, bounded.
pub const MAX_OPTIONS: usize = 1000;
/// Deployments a dry run plans at most (each is discovered afresh).
pub const MAX_PREVIEWED: usize = 20;

#[derive(Deserialize, utoipa::IntoParams, Default)]
struct Preview {
    /// Plan every deployment the option reaches with it in place and answer what would
    /// change and cost; nothing is stored.
    dry_run: Option<bool>,
}

/// The plans of the deployments `o` reaches with `o` in place of the stored option of its
/// name and scope: actions, problems and the monthly cost before and after.
async fn preview(s: &AppState, account_id: &str, o: &TuningOption) -> ApiResult<Value> {
    let engine = s.engine.as_ref().ok_or_else(|| ApiError::Unavailable("this server runs without an engine".into()))?;
    let mut options = s.store.list_options(account_id, None).await?;
    options.retain(|x| x.id != o.id);
    options.push(o.clone());
    let deployments = match &o.scope.deployment_id {
        Some(id) => s.store.get_deployment(account_id, id).await?.into_iter().collect(),
        None => s.store.list_deployments(account_id).await?,
    };
    if deployments.len() > MAX_PREVIEWED {
        return Err(ApiError::field(FieldError::new(
            "scope.deployment_id",
            format!("a deployment to preview (a dry run plans at most {MAX_PREVIEWED} deployments)"),
            format!("an account-wide option reaching {} deployments", deployments.len()),
        )));
    }
    let mut out = vec![];
    for d in deployments {
        let p = garrison_engine::protect::preview(engine, &d, Some(options.clone()))
            .await
            .map_err(|st| ApiError::Upstream(st.message.unwrap_or_default()))?;
        out.push(json!({
            "deployment_id": d.id, "name": d.name, "counts": p.plan.counts(), "actions": p.plan.actions,
            "problems": p.plan.problems, "cost": p.cost,
        }));
    }
    Ok(json!({"dry_run": true, "option": shown(o), "deployments": out}))
}

fn not_found(id: &str, account_id: &str) -> ApiError {
    ApiError::NotFound(format!("no option {id:?} in account {account_id}"))
}

/// The deployments an option names (its scope's, and a protecting network's) are the
/// account's own.
async fn check_deployments(s: &AppState, account_id: &str, o: &TuningOption) -> ApiResult<()> {
    let mut named = vec![];
    if let Some(d) = &o.scope.deployment_id {
        named.push(("scope.deployment_id", d.clone()));
    }
    if o.name == "cross_network_protection"
        && let Some(d) = o.value.get("deployment_id").and_then(Value::as_str)
    {
        named.push(("value.deployment_id", d.to_string()));
    }
    let mut errors = garrison_model::ValidationError::default();
    for (field, id) in named {
        if s.store.get_deployment(account_id, &id).await?.is_none() {
            errors.push(FieldError::new(
                field,
                format!("the id of one of account {account_id}'s deployments"),
                format!("{id:?}"),
            ));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors.into()) }
}

/// The test IDS type takes any type name; one the built-in price table knows to be smaller
/// than an appliance needs is refused here (an unknown one is judged by the planner, which
/// says why it does not use it).
fn check_size(o: &TuningOption) -> ApiResult<()> {
    use garrison_catalog::prices::{IDS_TEST_MIN, PriceTable};
    let Some(ty) = o.value.as_str().filter(|_| o.name == garrison_engine::plan::tuning::IDS_TYPE_TEST) else {
        return Ok(());
    };
    let table = PriceTable::builtin();
    match table.unfit(ty, IDS_TEST_MIN) {
        Some(why) if table.specs.contains_key(ty) => Err(garrison_model::ValidationError::one(FieldError::new(
            "value",
            "an instance type of at least 2 vCPU and 4 GiB",
            why,
        ))
        .into()),
        _ => Ok(()),
    }
}

/// A changed option is planned at once: the deployments it may apply to are made due (its
/// scope's deployment, or all of the account's) and the engine woken.
async fn replan(s: &AppState, account_id: &str, o: &TuningOption) -> ApiResult<()> {
    let ids: Vec<String> = match &o.scope.deployment_id {
        Some(d) => vec![d.clone()],
        None => s.store.list_deployments(account_id).await?.into_iter().map(|d| d.id).collect(),
    };
    s.store.make_due(&ids).await?;
    s.wake_engine();
    Ok(())
}

/// Create an option (one per name and scope: an existing one is a 409; update it instead).
/// With `dry_run=true` nothing is stored: the answer is the plan and cost of every
/// deployment the option reaches, as they would be with it.
#[utoipa::path(post, path = "/otis/v3/{account_id}/options", tag = "otis", operation_id = "create_option",
    params(("account_id" = String, Path), Preview), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 201, body = TuningOption), (status = 200, description = "dry run: {dry_run, option, deployments: [{deployment_id, counts, actions, problems, cost}]}"),
        (status = 400, description = "invalid field"), (status = 409, description = "the option exists")))]
async fn create_option(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
    Query(q): Query<Preview>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    s.authorize(&caller, &account_id).await?;
    let o = parse(&body::parse(&bytes)?)?;
    check_size(&o)?;
    check_deployments(&s, &account_id, &o).await?;
    if q.dry_run == Some(true) {
        if s.store.get_option(&account_id, &o.id).await?.is_some() {
            return Err(ApiError::Conflict(format!("option {} ({} at this scope) exists", o.id, o.name)));
        }
        return Ok((StatusCode::OK, Json(preview(&s, &account_id, &o).await?)));
    }
    if s.store.list_options(&account_id, None).await?.len() >= MAX_OPTIONS {
        return Err(ApiError::Conflict(format!(
            "account {account_id} has {MAX_OPTIONS} options, the most it may have"
        )));
    }
    if !s.store.create_option(&account_id, &o).await? {
        return Err(ApiError::Conflict(format!(
            "option {} ({} at this scope) exists; update it with PUT …/options/{}",
            o.id, o.name, o.id
        )));
    }
    tracing::info!(account = %account_id, option = %o.id, name = %o.name, "option created");
    replan(&s, &account_id, &o).await?;
    Ok((StatusCode::CREATED, Json(shown(&o))))
}

/// The account's options.
#[utoipa::path(get, path = "/otis/v3/{account_id}/options", tag = "otis", operation_id = "list_options",
    params(("account_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])), responses((status = 200, body = Vec<TuningOption>)))]
async fn list_options(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    s.authorize(&caller, &account_id).await?;
    Ok(Json(s.store.list_options(&account_id, None).await?.iter().map(shown).collect()))
}

/// One option.
#[utoipa::path(get, path = "/otis/v3/{account_id}/options/{option_id}", tag = "otis", operation_id = "get_option",
    params(("account_id" = String, Path), ("option_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = TuningOption), (status = 404, description = "no such option")))]
async fn get_option(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    s.authorize(&caller, &account_id).await?;
    let o = s.store.get_option(&account_id, &id).await?.ok_or_else(|| not_found(&id, &account_id))?;
    Ok(Json(shown(&o)))
}

/// Change an option's value (its name and scope are its id: to move it, delete and create).
/// With `dry_run=true` nothing is stored: the answer is the plan and cost of every
/// deployment the option reaches, as they would be with the new value.
#[utoipa::path(put, path = "/otis/v3/{account_id}/options/{option_id}", tag = "otis", operation_id = "update_option",
    params(("account_id" = String, Path), ("option_id" = String, Path), Preview), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = TuningOption), (status = 400, description = "invalid field"), (status = 404, description = "no such option")))]
async fn update_option(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
    Query(q): Query<Preview>,
    bytes: Bytes,
) -> ApiResult<Json<Value>> {
    s.authorize(&caller, &account_id).await?;
    let current = s.store.get_option(&account_id, &id).await?.ok_or_else(|| not_found(&id, &account_id))?;
    let mut v = body::parse(&bytes)?;
    // The name and scope may be left out: they are the option's.
    if let Some(m) = v.as_object_mut() {
        m.entry("name").or_insert_with(|| json!(current.name));
        m.entry("scope").or_insert_with(|| json!(current.scope));
    }
    let o = parse(&v)?;
    if o.id != current.id {
        return Err(ApiError::field(FieldError::new(
            "name",
            format!("{} at the option's own scope (to move an option, delete it and create another)", current.name),
            format!("{} at another scope", o.name),
        )));
    }
    check_size(&o)?;
    check_deployments(&s, &account_id, &o).await?;
    if q.dry_run == Some(true) {
        return Ok(Json(preview(&s, &account_id, &o).await?));
    }
    if !s.store.update_option(&account_id, &o).await? {
        return Err(not_found(&id, &account_id));
    }
    replan(&s, &account_id, &o).await?;
    Ok(Json(shown(&o)))
}

/// Delete an option.
#[utoipa::path(delete, path = "/otis/v3/{account_id}/options/{option_id}", tag = "otis", operation_id = "delete_option",
    params(("account_id" = String, Path), ("option_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 204, description = "deleted"), (status = 404, description = "no such option")))]
async fn delete_option(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.authorize(&caller, &account_id).await?;
    let o = s.store.get_option(&account_id, &id).await?.ok_or_else(|| not_found(&id, &account_id))?;
    if s.store.delete_option(&account_id, &id).await? {
        replan(&s, &account_id, &o).await?;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id, &account_id))
    }
}

#[derive(Deserialize, utoipa::IntoParams, Default)]
struct NetworkQuery {
    /// Only this deployment's networks.
    deployment_id: Option<String>,
    /// Only this option's.
    option_id: Option<String>,
    /// Only this VPC.
    vpc_key: Option<String>,
}

/// Each cross_network_protection option as one network seen from the other: the protected
/// network with its `protecting_network` (`protecting == false`), or the reverse.
async fn networks(s: &AppState, account_id: &str, q: &NetworkQuery, protecting: bool) -> ApiResult<Vec<Value>> {
    let (other_field, options) = (
        if protecting { "protected_network" } else { "protecting_network" },
        s.store.list_options(account_id, Some("cross_network_protection")).await?,
    );
    Ok(options
        .into_iter()
        .filter_map(|o| {
            let key = o.scope.vpc_key.clone().or(o.scope.region_key.clone());
            let protected = json!({"account_id": account_id, "deployment_id": o.scope.deployment_id, "vpc_key": key});
            let protector = json!({"account_id": account_id, "deployment_id": o.value["deployment_id"], "vpc_key": o.value["vpc_key"]});
            let (mut this, other) = if protecting { (protector, protected) } else { (protected, protector) };
            let wanted = q.deployment_id.as_deref().is_none_or(|d| this["deployment_id"].as_str() == Some(d))
                && q.vpc_key.as_deref().is_none_or(|v| this["vpc_key"].as_str() == Some(v))
                && q.option_id.as_deref().is_none_or(|id| id == o.id);
            wanted.then(|| {
                this["option_id"] = json!(o.id);
                this[other_field] = other;
                this
            })
        })
        .collect())
}

/// Networks protected by appliances of another network, each with the network that protects it.
#[utoipa::path(get, path = "/otis/v3/{account_id}/cross_protected_networks", tag = "otis", operation_id = "list_cross_protected_networks",
    params(("account_id" = String, Path), NetworkQuery), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "[{account_id, deployment_id, vpc_key, option_id, protecting_network}]")))]
async fn list_cross_protected_networks(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
    Query(q): Query<NetworkQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    s.authorize(&caller, &account_id).await?;
    Ok(Json(networks(&s, &account_id, &q, false).await?))
}

/// Networks whose appliances protect other networks, each with a network it protects.
#[utoipa::path(get, path = "/otis/v3/{account_id}/cross_protecting_networks", tag = "otis", operation_id = "list_cross_protecting_networks",
    params(("account_id" = String, Path), NetworkQuery), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "[{account_id, deployment_id, vpc_key, option_id, protected_network}]")))]
async fn list_cross_protecting_networks(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
    Query(q): Query<NetworkQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    s.authorize(&caller, &account_id).await?;
    Ok(Json(networks(&s, &account_id, &q, true).await?))
}
