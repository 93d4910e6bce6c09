//! deployments v1: create, read, update (optimistic concurrency on `version`), delete.

use std::collections::HashSet;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use garrison_model::deployment::{Deployment, DeploymentCredential, Refs, parse_request};
use garrison_store::{ListedDeployment, StoreError};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::body;
use crate::error::{ApiError, ApiResult};
use crate::listing::{self, ListQuery};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_deployment, list_deployments)).routes(routes!(
        get_deployment,
        update_deployment,
        delete_deployment
    ))
}

pub(crate) fn policy_ids() -> HashSet<String> {
    garrison_catalog::policies::all().into_iter().map(|p| p.id).collect()
}

/// The credential ids a deployment body names, and those of the deployment it updates: all
/// that validation looks up (never the account's whole list, which grows with it).
pub(crate) fn named_credentials(v: &serde_json::Value, current: &[DeploymentCredential]) -> Vec<String> {
    let named = v.get("credentials").and_then(|c| c.as_array()).into_iter().flatten();
    let named = named.filter_map(|c| c.get("id").and_then(|id| id.as_str()).map(str::to_string));
    named.chain(current.iter().map(|c| c.id.clone())).collect()
}

pub(crate) fn not_found(id: &str, account_id: &str) -> ApiError {
    ApiError::NotFound(format!("no deployment {id:?} in account {account_id}"))
}

/// Create a deployment.
#[utoipa::path(post, path = "/deployments/v1/{account_id}/deployments", tag = "deployments", operation_id = "create_deployment",
    params(("account_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 201, body = Deployment), (status = 400, description = "invalid field")))]
async fn create_deployment(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<Deployment>)> {
    s.authorize(&caller, &account_id).await?;
    let v = body::parse(&bytes)?;
    let creds = s.store.credential_accounts_of(&account_id, &named_credentials(&v, &[])).await?;
    let policies = policy_ids();
    let req = parse_request(&v, None, &Refs { policies: &policies, credentials: &creds })?;
    let d = s.store.create_deployment(&account_id, req.spec, &caller.user_id).await?;
    tracing::info!(account = %account_id, deployment = %d.id, "deployment created");
    s.wake_engine();
    Ok((StatusCode::CREATED, Json(d)))
}

/// List deployments, in id order: all of them (written as they are read), or a page of
/// `limit` with the next one in the `Link` header.
#[utoipa::path(get, path = "/deployments/v1/{account_id}/deployments", tag = "deployments", operation_id = "list_deployments",
    params(("account_id" = String, Path), ListQuery), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = Vec<Deployment>, headers(("link" = String, description = "<…?continue=…>; rel=\"next\" while more remain (pages only)"))),
        (status = 400, description = "invalid limit or continue")))]
async fn list_deployments(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    s.authorize(&caller, &account_id).await?;
    let path = format!("/deployments/v1/{account_id}/deployments");
    let (store, account) = (s.store.clone(), account_id.clone());
    let fetch = move |after: Option<String>, n| {
        let (store, account) = (store.clone(), account.clone());
        async move { store.deployments_after(&account, after.as_deref(), n).await }
    };
    listing::answer(&s, &q, &account_id, LIST_ROUTE, &path, |d: &ListedDeployment| d.id.clone(), fetch).await
}

const LIST_ROUTE: &str = "list_deployments";

/// Get a deployment.
#[utoipa::path(get, path = "/deployments/v1/{account_id}/deployments/{deployment_id}", tag = "deployments", operation_id = "get_deployment",
    params(("account_id" = String, Path), ("deployment_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = Deployment), (status = 404, description = "no such deployment")))]
async fn get_deployment(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    s.authorize(&caller, &account_id).await?;
    // The store's JSON of the deployment, sent as it is (from the read cache, unparsed).
    let json = s.store.get_deployment_json(&account_id, &id).await?.ok_or_else(|| not_found(&id, &account_id))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], json).into_response())
}

/// Update a deployment: the fields given replace the current ones, the others stay. With
/// `version`, the update applies only to that version (else 409); without, to the latest.
#[utoipa::path(put, path = "/deployments/v1/{account_id}/deployments/{deployment_id}", tag = "deployments", operation_id = "update_deployment",
    params(("account_id" = String, Path), ("deployment_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = Deployment), (status = 400, description = "invalid field"), (status = 404, description = "no such deployment"), (status = 409, description = "stale version")))]
async fn update_deployment(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<Json<Deployment>> {
    s.authorize(&caller, &account_id).await?;
    let v = body::parse(&bytes)?;
    let policies = policy_ids();
    // Without a client version a concurrent writer is not a conflict: re-read and re-apply.
    for _ in 0..8 {
        let current =
            s.store.get_deployment_fresh(&account_id, &id).await?.ok_or_else(|| not_found(&id, &account_id))?;
        let creds = s.store.credential_accounts_of(&account_id, &named_credentials(&v, &current.credentials)).await?;
        let req = parse_request(&v, Some(&current), &Refs { policies: &policies, credentials: &creds })?;
        if let Some(asked) = req.version
            && asked != current.version
        {
            return Err(ApiError::Conflict(format!(
                "version {asked} is stale: the deployment is at version {}; get it again and reapply your change",
                current.version
            )));
        }
        match s.store.update_deployment(&account_id, &id, current.version, req.spec, &caller.user_id).await {
            Ok(d) => {
                s.wake_engine();
                return Ok(Json(d));
            }
            Err(StoreError::Conflict(m)) if req.version.is_some() => {
                return Err(ApiError::Conflict(format!("version {} is stale: {m}", current.version)));
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict("the deployment kept changing; try again".into()))
}

/// Delete a deployment.
#[utoipa::path(delete, path = "/deployments/v1/{account_id}/deployments/{deployment_id}", tag = "deployments", operation_id = "delete_deployment",
    params(("account_id" = String, Path), ("deployment_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 204, description = "deleted"), (status = 404, description = "no such deployment")))]
async fn delete_deployment(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.authorize(&caller, &account_id).await?;
    // Resources garrison made are removed by the engine before the record goes; the
    // deployment leaves the API at once either way (see removals).
    let built = !s.store.owned(&id).await?.items.is_empty();
    let gone = if built && s.engine.is_some() {
        s.store.request_removal(&account_id, &id, &caller.user_id).await?
    } else {
        s.store.delete_deployment(&account_id, &id).await?
    };
    if gone {
        tracing::info!(account = %account_id, deployment = %id, uninstall = built, "deployment deleted");
        s.wake_engine();
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id, &account_id))
    }
}
