//! aims roles: the global roles, an account's own roles, and the role each user holds.
//!
//! A user holds one role at a time (the console's rule: "all users are assigned a single
//! role"), so granting one replaces the one held — the reference's rule for Administrator,
//! applied to every grant — and revoking it leaves the user only what every user may do on
//! their own user. Nobody grants, or defines, a role that would open an operation they cannot
//! use themselves (`permission::escalation`), nor grants or revokes their own role. An account's
//! roles are its own: a parent's roles are not seen in, nor granted to users of, its children.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use garrison_model::account::{GlobalRole, RoleView};
use garrison_model::permission::{Permissions, escalation};
use garrison_model::{FieldError, ValidationError};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::aims::{only_keys, required_string, user_in};
use crate::AppState;
use crate::auth::Caller;
use crate::body;
use crate::error::{ApiError, ApiResult};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_global_roles))
        .routes(routes!(get_global_role_details))
        .routes(routes!(create_role, list_roles))
        .routes(routes!(get_role_details, update_role_details, delete_role))
        .routes(routes!(get_assigned_roles))
        .routes(routes!(get_assigned_role_ids))
        .routes(routes!(get_user_permissions))
        .routes(routes!(grant_user_role, revoke_user_role))
}

/// A role of `account_id`: a global one or the account's own.
async fn role_of(s: &AppState, account_id: &str, role_id: &str) -> ApiResult<Option<RoleView>> {
    if let Some(g) = GlobalRole::from_id(role_id) {
        return Ok(Some(RoleView::global(g)));
    }
    Ok(s.store.get_role(account_id, role_id).await?)
}

/// The roles a user holds, as aims lists them (none or one).
pub(crate) async fn held(s: &AppState, account_id: &str, role_id: &str) -> ApiResult<Vec<RoleView>> {
    if role_id.is_empty() {
        return Ok(vec![]);
    }
    Ok(role_of(s, account_id, role_id).await?.into_iter().collect())
}

fn permissions_of(role: &RoleView) -> Permissions {
    Permissions::parse(&role.permissions, "permissions").unwrap_or_default()
}

/// Refuses (403) permissions that would open operations the caller cannot use itself in
/// `account_id`, naming a few of them.
fn no_escalation(caller: &Caller, account_id: &str, perms: &Permissions, what: &str) -> ApiResult<()> {
    let in_managed = caller.scope_of(account_id) == garrison_model::permission::Scope::Managed;
    let missing = escalation(&caller.permissions, perms, in_managed);
    if missing.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
    Err(ApiError::Forbidden(format!(
        "{what} would allow what this user may not do itself: {}{}",
        shown.join(", "),
        if missing.len() > shown.len() { format!(" and {} more", missing.len() - shown.len()) } else { String::new() }
    )))
}

/// The role `role_id` as one the caller may hand to a user of `account_id`: it exists there
/// (400 `invalid_role_id` otherwise) and holds nothing beyond the caller's own permissions.
pub(crate) async fn grantable(s: &AppState, caller: &Caller, account_id: &str, role_id: &str) -> ApiResult<RoleView> {
    let Some(role) = role_of(s, account_id, role_id).await? else {
        return Err(ApiError::InvalidTyped(
            "invalid_role_id",
            ValidationError::one(
                FieldError::new(
                    "role_id",
                    format!(
                        "one of this account's roles or a global role: {}",
                        GlobalRole::ALL.map(|g| format!("{} ({})", g.id(), g.name())).join(", ")
                    ),
                    format!("{role_id:?}"),
                )
                .hint("aims list_roles lists them"),
            ),
        ));
    };
    no_escalation(caller, account_id, &permissions_of(&role), &format!("the role {:?}", role.name))?;
    Ok(role)
}

/// List the global roles.
#[utoipa::path(get, path = "/aims/v1/roles", tag = "aims", operation_id = "list_global_roles",
    security(("X-AIMS-Auth-Token" = [])), responses((status = 200, description = "{roles: [Role]}")))]
async fn list_global_roles(_caller: Caller) -> Json<Value> {
    Json(json!({"roles": GlobalRole::ALL.map(RoleView::global)}))
}

/// Get a global role.
#[utoipa::path(get, path = "/aims/v1/roles/{role_id}", tag = "aims", operation_id = "get_global_role_details",
    params(("role_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = RoleView), (status = 404, description = "no such global role")))]
async fn get_global_role_details(_caller: Caller, Path(role_id): Path<String>) -> ApiResult<Json<RoleView>> {
    GlobalRole::from_id(&role_id)
        .map(|g| Json(RoleView::global(g)))
        .ok_or_else(|| ApiError::NotFound(format!("no global role {role_id:?}")))
}

/// A role body's `name` and `permissions` (as sent, and read).
struct RoleBody {
    name: Option<String>,
    permissions: Option<(Value, Permissions)>,
}

/// Reads `name` and `permissions` of a role body (each optional when `partial`).
fn role_body(v: &Value, partial: bool) -> ApiResult<RoleBody> {
    only_keys(v, &["name", "permissions"])?;
    let name = match (v.get("name"), partial) {
        (None, true) => None,
        _ => Some(required_string(v, "name", 64)?),
    };
    let permissions = match (v.get("permissions"), partial) {
        (None, true) => None,
        (None, false) => return Err(ApiError::field(FieldError::new("permissions", "an object", "nothing"))),
        (Some(p), _) => Some((p.clone(), Permissions::parse(p, "permissions")?)),
    };
    Ok(RoleBody { name, permissions })
}

/// Create a role of the account.
#[utoipa::path(post, path = "/aims/v1/{account_id}/roles", tag = "aims", operation_id = "create_role",
    params(("account_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 201, body = RoleView), (status = 400, description = "bad name or permissions"),
        (status = 403, description = "more than the caller holds"), (status = 409, description = "name taken")))]
async fn create_role(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<RoleView>)> {
    s.authorize(&caller, &account_id).await?;
    let v = body::parse(&bytes)?;
    let RoleBody { name: Some(name), permissions: Some((raw, perms)) } = role_body(&v, false)? else {
        unreachable!("role_body requires both when not partial")
    };
    if GlobalRole::ALL.iter().any(|g| g.name().eq_ignore_ascii_case(&name)) {
        return Err(ApiError::Conflict(format!("{name:?} is a global role's name")));
    }
    no_escalation(&caller, &account_id, &perms, "this role")?;
    let role = s.store.create_role(&account_id, &name, &raw, &caller.user_id).await?;
    tracing::info!(account = %account_id, role = %role.id, by = %caller.user_id, "role created");
    Ok((StatusCode::CREATED, Json(role)))
}

/// List the account's roles, global ones included.
#[utoipa::path(get, path = "/aims/v1/{account_id}/roles", tag = "aims", operation_id = "list_roles",
    params(("account_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "{roles: [Role]}")))]
async fn list_roles(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
) -> ApiResult<Json<Value>> {
    s.authorize(&caller, &account_id).await?;
    let mut roles: Vec<RoleView> = GlobalRole::ALL.map(RoleView::global).into();
    roles.extend(s.store.list_roles(&account_id).await?);
    Ok(Json(json!({"roles": roles})))
}

fn no_role(role_id: &str) -> ApiError {
    ApiError::NotFound(format!("no role {role_id:?} in this account"))
}

/// Get a role of the account, or a global one.
#[utoipa::path(get, path = "/aims/v1/{account_id}/roles/{role_id}", tag = "aims", operation_id = "get_role_details",
    params(("account_id" = String, Path), ("role_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = RoleView), (status = 404, description = "no such role")))]
async fn get_role_details(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, role_id)): Path<(String, String)>,
) -> ApiResult<Json<RoleView>> {
    s.authorize(&caller, &account_id).await?;
    role_of(&s, &account_id, &role_id).await?.map(Json).ok_or_else(|| no_role(&role_id))
}

fn global_is_fixed(role_id: &str) -> ApiResult<()> {
    match GlobalRole::from_id(role_id) {
        Some(g) => Err(ApiError::Forbidden(format!("{} is a global role: it cannot be changed or deleted", g.name()))),
        None => Ok(()),
    }
}

/// Change a role's name or permissions (the permissions are replaced whole); the users that
/// hold it have the new ones within the revocation period.
#[utoipa::path(post, path = "/aims/v1/{account_id}/roles/{role_id}", tag = "aims", operation_id = "update_role_details",
    params(("account_id" = String, Path), ("role_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = RoleView), (status = 400, description = "bad name or permissions"),
        (status = 403, description = "a global role, or more than the caller holds"), (status = 404, description = "no such role")))]
async fn update_role_details(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, role_id)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<Json<RoleView>> {
    s.authorize(&caller, &account_id).await?;
    global_is_fixed(&role_id)?;
    let v = body::parse(&bytes)?;
    let RoleBody { name, permissions: perms } = role_body(&v, true)?;
    if let Some(n) = &name
        && GlobalRole::ALL.iter().any(|g| g.name().eq_ignore_ascii_case(n))
    {
        return Err(ApiError::Conflict(format!("{n:?} is a global role's name")));
    }
    if let Some((_, p)) = &perms {
        no_escalation(&caller, &account_id, p, "these permissions")?;
    }
    let role = s
        .store
        .update_role(&account_id, &role_id, name.as_deref(), perms.as_ref().map(|(raw, _)| raw), &caller.user_id)
        .await
        .map_err(|e| match e {
            garrison_store::StoreError::NotFound => no_role(&role_id),
            other => other.into(),
        })?;
    s.key_states.forget_all();
    Ok(Json(role))
}

/// Delete a role of the account; refused while a user holds it.
#[utoipa::path(delete, path = "/aims/v1/{account_id}/roles/{role_id}", tag = "aims", operation_id = "delete_role",
    params(("account_id" = String, Path), ("role_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 204, description = "deleted"), (status = 403, description = "a global role"),
        (status = 404, description = "no such role"), (status = 409, description = "held by users")))]
async fn delete_role(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, role_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.authorize(&caller, &account_id).await?;
    global_is_fixed(&role_id)?;
    if !s.store.delete_role(&account_id, &role_id).await? {
        return Err(no_role(&role_id));
    }
    tracing::info!(account = %account_id, role = %role_id, by = %caller.user_id, "role deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// The role a user holds (its id, or none).
async fn user_role(s: &AppState, caller: &Caller, account_id: &str, user_id: &str) -> ApiResult<String> {
    Ok(user_in(s, caller, account_id, user_id).await?.role_ids.into_iter().next().unwrap_or_default())
}

/// The roles granted to a user.
#[utoipa::path(get, path = "/aims/v1/{account_id}/users/{user_id}/roles", tag = "aims", operation_id = "get_assigned_roles",
    params(("account_id" = String, Path), ("user_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "{roles: [Role]}"), (status = 404, description = "no such user")))]
async fn get_assigned_roles(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, user_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let role_id = user_role(&s, &caller, &account_id, &user_id).await?;
    Ok(Json(json!({"roles": held(&s, &account_id, &role_id).await?})))
}

/// The ids of the roles granted to a user.
#[utoipa::path(get, path = "/aims/v1/{account_id}/users/{user_id}/role_ids", tag = "aims", operation_id = "get_assigned_role_ids",
    params(("account_id" = String, Path), ("user_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "{role_ids: [id]}"), (status = 404, description = "no such user")))]
async fn get_assigned_role_ids(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, user_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let role_id = user_role(&s, &caller, &account_id, &user_id).await?;
    let ids: Vec<String> = held(&s, &account_id, &role_id).await?.into_iter().map(|r| r.id).collect();
    Ok(Json(json!({"role_ids": ids})))
}

/// A user's permissions, in the reference's shape: a list of one-entry objects.
#[utoipa::path(get, path = "/aims/v1/{account_id}/users/{user_id}/permissions", tag = "aims", operation_id = "get_user_permissions",
    params(("account_id" = String, Path), ("user_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "{permissions: [{pattern: allowed|denied}]}"), (status = 404, description = "no such user")))]
async fn get_user_permissions(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, user_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let role_id = user_role(&s, &caller, &account_id, &user_id).await?;
    let perms = held(&s, &account_id, &role_id).await?.first().map(permissions_of).unwrap_or_default();
    let list: Vec<Value> = perms.patterns().map(|(k, e)| json!({k: e.as_str()})).collect();
    Ok(Json(json!({"permissions": list})))
}

fn not_oneself(
    caller: &Caller,
    account_id: &str,
    user_id: &str,
    error_type: &'static str,
    what: &str,
) -> ApiResult<()> {
    if caller.account_id == account_id && caller.user_id == user_id {
        return Err(ApiError::InvalidTyped(
            error_type,
            ValidationError::one(
                FieldError::new("user_id", "another user than the caller", "the caller's own user id")
                    .hint(format!("users cannot {what} themselves")),
            ),
        ));
    }
    Ok(())
}

/// Grant a role to a user: it replaces the role held. The role must be a global one or the
/// account's, and allow nothing the caller may not do itself.
#[utoipa::path(put, path = "/aims/v1/{account_id}/users/{user_id}/roles/{role_id}", tag = "aims", operation_id = "grant_user_role",
    params(("account_id" = String, Path), ("user_id" = String, Path), ("role_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 204, description = "granted"), (status = 400, description = "self_grant_error or invalid_role_id"),
        (status = 403, description = "more than the caller holds"), (status = 404, description = "no such user"),
        (status = 409, description = "the account's last Administrator")))]
async fn grant_user_role(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, user_id, role_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    user_in(&s, &caller, &account_id, &user_id).await?;
    not_oneself(&caller, &account_id, &user_id, "self_grant_error", "grant roles to")?;
    let role = grantable(&s, &caller, &account_id, &role_id).await?;
    let change = garrison_store::UserChange { role: Some(role.id.clone()), ..Default::default() };
    s.store.update_user(&account_id, &user_id, &change, &caller.user_id).await?;
    s.key_states.forget_all();
    tracing::info!(account = %account_id, user = %user_id, role = %role.id, by = %caller.user_id, "role granted");
    Ok(StatusCode::NO_CONTENT)
}

/// Revoke a user's role (one the caller could grant): the user keeps only what every user
/// may do on their own user.
#[utoipa::path(delete, path = "/aims/v1/{account_id}/users/{user_id}/roles/{role_id}", tag = "aims", operation_id = "revoke_user_role",
    params(("account_id" = String, Path), ("user_id" = String, Path), ("role_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 204, description = "revoked"), (status = 400, description = "self_revoke_error"),
        (status = 404, description = "no such user, or the user does not hold the role"),
        (status = 409, description = "the account's last Administrator")))]
async fn revoke_user_role(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, user_id, role_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let held = user_role(&s, &caller, &account_id, &user_id).await?;
    not_oneself(&caller, &account_id, &user_id, "self_revoke_error", "revoke roles of")?;
    if held.is_empty() || !held.eq_ignore_ascii_case(&role_id) {
        return Err(ApiError::NotFound(format!("user {user_id:?} does not hold role {role_id:?}")));
    }
    // Taking away a role is as much a use of it as handing it out.
    grantable(&s, &caller, &account_id, &held).await?;
    let change = garrison_store::UserChange { role: Some(String::new()), ..Default::default() };
    s.store.update_user(&account_id, &user_id, &change, &caller.user_id).await?;
    s.key_states.forget_all();
    tracing::info!(account = %account_id, user = %user_id, role = %held, by = %caller.user_id, "role revoked");
    Ok(StatusCode::NO_CONTENT)
}
