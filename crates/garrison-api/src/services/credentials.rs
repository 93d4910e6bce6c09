//! credentials v2: IAM roles garrison assumes; the ARN is sealed at rest.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use garrison_model::credential::{Credential, NewCredential};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::body;
use crate::error::{ApiError, ApiResult};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_credential, list_credentials))
        .routes(routes!(get_credential, delete_credential))
}

/// Store an IAM role; the response carries the tenant's external id.
#[utoipa::path(post, path = "/credentials/v2/{account_id}/credentials", tag = "credentials", operation_id = "create_credential",
    params(("account_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = Credential), (status = 400, description = "invalid field")))]
async fn create_credential(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<Credential>> {
    s.authorize(&caller, &account_id).await?;
    let c = NewCredential::from_json(&body::parse(&bytes)?)?;
    let created = s.store.create_credential(&account_id, &c, &caller.user_id).await?;
    tracing::info!(account = %account_id, credential = %created.id, "credential created");
    Ok(Json(created))
}

/// List credentials.
#[utoipa::path(get, path = "/credentials/v2/{account_id}/credentials", tag = "credentials", operation_id = "list_credentials",
    params(("account_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])), responses((status = 200, body = Vec<Credential>)))]
async fn list_credentials(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
) -> ApiResult<Json<Vec<Credential>>> {
    s.authorize(&caller, &account_id).await?;
    Ok(Json(s.store.list_credentials(&account_id).await?))
}

/// Get a credential.
#[utoipa::path(get, path = "/credentials/v2/{account_id}/credentials/{credential_id}", tag = "credentials", operation_id = "get_credential",
    params(("account_id" = String, Path), ("credential_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = Credential), (status = 404, description = "no such credential")))]
async fn get_credential(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
) -> ApiResult<Json<Credential>> {
    s.authorize(&caller, &account_id).await?;
    s.store
        .get_credential(&account_id, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no credential {id:?} in account {account_id}")))
}

/// Delete a credential; refused (409) while a deployment uses it.
#[utoipa::path(delete, path = "/credentials/v2/{account_id}/credentials/{credential_id}", tag = "credentials", operation_id = "delete_credential",
    params(("account_id" = String, Path), ("credential_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 204, description = "deleted"), (status = 404, description = "no such credential"), (status = 409, description = "in use")))]
async fn delete_credential(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.authorize(&caller, &account_id).await?;
    if s.store.delete_credential(&account_id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no credential {id:?} in account {account_id}")))
    }
}
