//! credentials v2: IAM roles garrison assumes; the ARN is sealed at rest.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use garrison_model::credential::{Credential, NewCredential};
use garrison_store::credential_position;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::body;
use crate::error::{ApiError, ApiResult};
use crate::listing::{self, ListQuery};

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

/// List credentials, oldest first: all of them (written as they are read), or a page of
/// `limit` with the next one in the `Link` header.
#[utoipa::path(get, path = "/credentials/v2/{account_id}/credentials", tag = "credentials", operation_id = "list_credentials",
    params(("account_id" = String, Path), ListQuery), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = Vec<Credential>, headers(("link" = String, description = "<…?continue=…>; rel=\"next\" while more remain (pages only)"))),
        (status = 400, description = "invalid limit or continue")))]
async fn list_credentials(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    s.authorize(&caller, &account_id).await?;
    let path = format!("/credentials/v2/{account_id}/credentials");
    let (store, account) = (s.store.clone(), account_id.clone());
    let fetch = move |after: Option<String>, n| {
        let (store, account) = (store.clone(), account.clone());
        async move { store.credentials_after(&account, after.as_deref(), n).await }
    };
    listing::answer(&s, &q, &account_id, "list_credentials", &path, credential_position, fetch).await
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
