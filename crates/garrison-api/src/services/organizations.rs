//! deployments v1 extension: organization enrollments. Which units of an AWS organization
//! a tenant protects through which management-account credential, and the deployment each
//! enrolled account gets; the engine keeps the organization's accounts in step with it and
//! writes the status (per account: enrolled, pending, leaving, failed; and who is left out).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use garrison_model::enrollment::{Enrollment, parse};
use garrison_store::StoreError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::deployments::policy_ids;
use crate::AppState;
use crate::auth::Caller;
use crate::body;
use crate::error::{ApiError, ApiResult};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_organization, list_organizations))
        .routes(routes!(get_organization, update_organization, delete_organization))
        .routes(routes!(list_organization_audit_log))
}

fn not_found(id: &str, account_id: &str) -> ApiError {
    ApiError::NotFound(format!("no organization enrollment {id:?} in account {account_id}"))
}

/// Enroll units of an AWS organization: their accounts get garrison's role (a StackSet) and
/// a deployment from the template, as they come and go.
#[utoipa::path(post, path = "/deployments/v1/{account_id}/organizations", tag = "deployments", operation_id = "create_organization",
    params(("account_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 201, body = Enrollment), (status = 400, description = "invalid field")))]
async fn create_organization(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<Enrollment>)> {
    s.authorize(&caller, &account_id).await?;
    let v = body::parse(&bytes)?;
    let creds = s.store.credential_accounts_of(&account_id, &named_credential(&v, None)).await?;
    let (spec, _) = parse(&v, None, &policy_ids(), &creds)?;
    let e = s.store.create_enrollment(&account_id, spec, &caller.user_id).await?;
    tracing::info!(account = %account_id, enrollment = %e.id, "organization enrolled");
    s.wake_enrollments();
    Ok((StatusCode::CREATED, Json(e)))
}

/// The credential an enrollment body names, and the one of the enrollment it updates: all
/// that validation looks up.
fn named_credential(v: &serde_json::Value, current: Option<&str>) -> Vec<String> {
    let named = v.get("credential_id").and_then(|c| c.as_str()).map(str::to_string);
    named.into_iter().chain(current.map(str::to_string)).collect()
}

/// List organization enrollments.
#[utoipa::path(get, path = "/deployments/v1/{account_id}/organizations", tag = "deployments", operation_id = "list_organizations",
    params(("account_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])), responses((status = 200, body = Vec<Enrollment>)))]
async fn list_organizations(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
) -> ApiResult<Json<Vec<Enrollment>>> {
    s.authorize(&caller, &account_id).await?;
    Ok(Json(s.store.list_enrollments(&account_id).await?))
}

/// Get an organization enrollment with its status.
#[utoipa::path(get, path = "/deployments/v1/{account_id}/organizations/{organization_id}", tag = "deployments", operation_id = "get_organization",
    params(("account_id" = String, Path), ("organization_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = Enrollment), (status = 404, description = "no such enrollment")))]
async fn get_organization(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
) -> ApiResult<Json<Enrollment>> {
    s.authorize(&caller, &account_id).await?;
    s.store.get_enrollment(&account_id, &id).await?.map(Json).ok_or_else(|| not_found(&id, &account_id))
}

/// Update an organization enrollment: the fields given replace the current ones. With
/// `version`, only that version is updated (else 409).
#[utoipa::path(put, path = "/deployments/v1/{account_id}/organizations/{organization_id}", tag = "deployments", operation_id = "update_organization",
    params(("account_id" = String, Path), ("organization_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = Enrollment), (status = 400, description = "invalid field"), (status = 404, description = "no such enrollment"), (status = 409, description = "stale version")))]
async fn update_organization(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<Json<Enrollment>> {
    s.authorize(&caller, &account_id).await?;
    let v = body::parse(&bytes)?;
    for _ in 0..8 {
        let current = s.store.get_enrollment(&account_id, &id).await?.ok_or_else(|| not_found(&id, &account_id))?;
        let named = named_credential(&v, Some(&current.credential_id));
        let creds = s.store.credential_accounts_of(&account_id, &named).await?;
        let (spec, asked) = parse(&v, Some(&current), &policy_ids(), &creds)?;
        if let Some(asked) = asked
            && asked != current.version
        {
            return Err(ApiError::Conflict(format!(
                "version {asked} is stale: the enrollment is at version {}; get it again and reapply your change",
                current.version
            )));
        }
        match s.store.update_enrollment(&account_id, &id, current.version, spec, &caller.user_id).await {
            Ok(e) => {
                s.wake_enrollments();
                return Ok(Json(e));
            }
            Err(StoreError::Conflict(m)) if asked.is_some() => return Err(ApiError::Conflict(m)),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict("the enrollment kept changing; try again".into()))
}

/// Stop enrolling: the deployments the enrollment made stay, as ordinary deployments (delete
/// them to remove what garrison built in those accounts).
#[utoipa::path(delete, path = "/deployments/v1/{account_id}/organizations/{organization_id}", tag = "deployments", operation_id = "delete_organization",
    params(("account_id" = String, Path), ("organization_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 204, description = "deleted"), (status = 404, description = "no such enrollment")))]
async fn delete_organization(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.authorize(&caller, &account_id).await?;
    if s.store.delete_enrollment(&account_id, &id).await? {
        tracing::info!(account = %account_id, enrollment = %id, "organization enrollment deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id, &account_id))
    }
}

/// Every AWS write garrison made for the enrollment itself (its StackSet and stack
/// instances in the management account), newest first, paged like a deployment's; the
/// writes in each enrolled account are in that account's deployment's log.
#[utoipa::path(get, path = "/deployments/v1/{account_id}/organizations/{organization_id}/audit", tag = "deployments", operation_id = "list_organization_audit_log",
    params(("account_id" = String, Path), ("organization_id" = String, Path), super::protection::AuditQuery), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "a page of the audit log, newest first", body = garrison_model::audit::AuditPage), (status = 404, description = "no such enrollment")))]
async fn list_organization_audit_log(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
    Query(q): Query<super::protection::AuditQuery>,
) -> ApiResult<Json<garrison_model::audit::AuditPage>> {
    s.authorize(&caller, &account_id).await?;
    let route = format!("list_organization_audit_log/{id}");
    let exists = async {
        match s.store.get_enrollment(&account_id, &id).await? {
            Some(_) => Ok(()),
            None => Err(not_found(&id, &account_id)),
        }
    };
    Ok(Json(super::protection::audit_page(&s, &account_id, &id, &route, &q, exists).await?))
}
