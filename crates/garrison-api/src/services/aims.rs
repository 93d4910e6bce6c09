//! aims: authentication, tokens, accounts with managed children, users and access keys.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use garrison_model::FieldError;
use garrison_model::account::{AccessKey, Account, User};
use garrison_store::{UserChange, Verdict};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::body;
use crate::error::{ApiError, ApiResult};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(authenticate))
        .routes(routes!(get_token_info))
        .routes(routes!(get_account_details))
        .routes(routes!(list_accounts_by_relationship))
        .routes(routes!(create_managed_account))
        .routes(routes!(create_user, list_users))
        .routes(routes!(get_user_details, update_user_details, delete_user))
        .routes(routes!(create_access_key, list_access_keys))
        .routes(routes!(get_access_key, delete_access_key))
        .merge(super::aims_roles::routes())
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// Exchange an access key for a token (HTTP Basic `access_key_id:secret_key`).
#[utoipa::path(post, path = "/aims/v1/authenticate", tag = "aims", operation_id = "authenticate",
    security(("BasicAuth" = [])),
    responses((status = 200, description = "token and profile"), (status = 401, description = "bad credentials")))]
async fn authenticate(State(s): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let denied = || ApiError::Unauthorized("access key id or secret key not recognised".into());
    let (key_id, secret) = basic_credentials(&headers).ok_or_else(denied)?;
    let Some(rec) = s.store.find_key(&key_id).await? else {
        // The same slow hash as for a known key, so that timing does not tell which ids exist.
        let _ = tokio::task::spawn_blocking(move || DUMMY_KEY.verify(&secret)).await;
        return Err(denied());
    };
    let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    let remembered = s
        .verified_keys
        .lock()
        .expect("lock")
        .get(&key_id)
        .is_some_and(|(hash, d)| hash == rec.stored_hash() && *d == digest);
    if !remembered {
        let (checked, verdict) = {
            let rec = rec.clone();
            let secret = secret.clone();
            tokio::task::spawn_blocking(move || {
                let v = rec.verify(&secret);
                (rec, v)
            })
            .await
            .map_err(|_| ApiError::Internal("internal error; see the server log".into()))?
        };
        match verdict {
            Verdict::NoMatch => return Err(denied()),
            Verdict::MatchLegacy => s.store.upgrade_key_hash(&key_id, &secret).await?,
            Verdict::Match => {
                let mut seen = s.verified_keys.lock().expect("lock");
                if seen.len() >= 10_000 {
                    seen.clear();
                }
                seen.insert(key_id.clone(), (checked.stored_hash().to_string(), digest));
            }
        }
    }
    // Disabled users are refused like a bad secret (and only after it was checked).
    if !rec.active {
        return Err(denied());
    }
    let account = s.store.get_account(&rec.account_id).await?.ok_or_else(denied)?;
    let user = s.store.get_user(&rec.account_id, &rec.user_id).await?.ok_or_else(denied)?;
    let (token, exp) = s.tokens.mint(&account.id, &user.id, &rec.access_key_id);
    tracing::info!(account = %account.id, access_key = %rec.access_key_id, "authenticated");
    Ok(Json(json!({"authentication": {"user": user, "account": account, "token": token, "token_expiration": exp}})))
}

/// A key record that matches no secret, verified when the presented key id is unknown.
static DUMMY_KEY: std::sync::LazyLock<garrison_store::KeyRecord> =
    std::sync::LazyLock::new(garrison_store::KeyRecord::dummy);

/// Describe the caller's token.
#[utoipa::path(get, path = "/aims/v1/token_info", tag = "aims", operation_id = "get_token_info",
    security(("X-AIMS-Auth-Token" = [])), responses((status = 200, description = "token information")))]
async fn get_token_info(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let account = s.store.get_account(&caller.account_id).await?;
    let user = s.store.get_user(&caller.account_id, &caller.user_id).await?;
    Ok(Json(json!({
        "account": account, "entity_id": caller.user_id, "entity_type": "user",
        "requester_id": format!("{}:user:{}", caller.account_id, caller.user_id),
        "roles": super::aims_roles::held(&s, &caller.account_id, &caller.role_id).await?,
        "token_expiration": caller.expires, "user": user,
    })))
}

/// Get an account.
#[utoipa::path(get, path = "/aims/v1/{account_id}/account", tag = "aims", operation_id = "get_account_details",
    params(("account_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = Account), (status = 403, description = "not accessible")))]
async fn get_account_details(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
) -> ApiResult<Json<Account>> {
    s.authorize(&caller, &account_id).await?;
    Ok(Json(s.store.get_account(&account_id).await?.ok_or_else(|| ApiError::NotFound("no such account".into()))?))
}

/// List managed (child) or managing (parent) accounts.
#[utoipa::path(get, path = "/aims/v1/{account_id}/accounts/{relationship}", tag = "aims", operation_id = "list_accounts_by_relationship",
    params(("account_id" = String, Path), ("relationship" = String, Path, description = "managed | managing")),
    security(("X-AIMS-Auth-Token" = [])), responses((status = 200, description = "{accounts: [...]}")))]
async fn list_accounts_by_relationship(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, relationship)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    s.authorize(&caller, &account_id).await?;
    let accounts = match relationship.as_str() {
        "managed" => s.store.list_children(&account_id).await?,
        "managing" => {
            // Only parents the caller may see: never above the caller's own account.
            let mut out = vec![];
            if account_id != caller.account_id
                && let Some(Some(parent)) = s.store.account_parent(&account_id).await?
                && let Some(a) = s.store.get_account(&parent).await?
            {
                out.push(a);
            }
            out
        }
        other => {
            return Err(ApiError::field(FieldError::new(
                "relationship",
                "one of [managed, managing]",
                format!("{other:?}"),
            )));
        }
    };
    Ok(Json(json!({"accounts": accounts})))
}

/// Create a child account managed by this one (garrison extension: the reference has no such
/// call). Needs `aims:…:create:account` (Administrator, Owner).
#[utoipa::path(post, path = "/aims/v1/{account_id}/managed_accounts", tag = "aims", operation_id = "create_managed_account",
    params(("account_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 201, body = Account), (status = 400, description = "invalid name")))]
async fn create_managed_account(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<Account>)> {
    s.authorize(&caller, &account_id).await?;
    let v = body::parse(&bytes)?;
    let name = required_string(&v, "name", 256)?;
    only_keys(&v, &["name"])?;
    let a = s.store.create_child_account(&account_id, &name, &caller.user_id).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

pub(crate) fn required_string(v: &Value, field: &str, max: usize) -> ApiResult<String> {
    match v.get(field) {
        Some(Value::String(x)) if !x.trim().is_empty() && x.len() <= max => Ok(x.clone()),
        Some(other) => Err(ApiError::field(FieldError::new(
            field,
            format!("a string of 1 to {max} characters"),
            garrison_model::error::describe(other),
        ))),
        None => Err(ApiError::field(FieldError::new(field, "a string", "nothing"))),
    }
}

pub(crate) fn only_keys(v: &Value, allowed: &[&str]) -> ApiResult<()> {
    let Some(m) = v.as_object() else {
        return Err(ApiError::field(FieldError::new("body", "a JSON object", garrison_model::error::describe(v))));
    };
    let mut errors = garrison_model::ValidationError::default();
    garrison_model::json_path::Reader { errors: &mut errors }.known_keys("", m, allowed);
    if errors.is_empty() { Ok(()) } else { Err(errors.into()) }
}

/// Create a user in an account (`aims:…:create:user`). The account's first user is its
/// Administrator; `role_id` picks another user's role (Power User by default), a global one or
/// one of the account's, never more than the caller holds.
#[utoipa::path(post, path = "/aims/v1/{account_id}/users", tag = "aims", operation_id = "create_user",
    params(("account_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 201, body = User), (status = 403, description = "not an Administrator"), (status = 409, description = "user exists")))]
async fn create_user(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<User>)> {
    s.authorize(&caller, &account_id).await?;
    let v = body::parse(&bytes)?;
    only_keys(&v, &["name", "email", "role_id", "active", "notifications_only"])?;
    let name = required_string(&v, "name", 256)?;
    let email = email_field(&v)?;
    // The reference's notifications-only user (alcli sends `false` by default) may not use
    // the product: it holds no role.
    let notifications_only = bool_field(&v, "notifications_only")? == Some(true);
    let role = match v.get("role_id") {
        None if notifications_only => Some(String::new()),
        None => None,
        Some(_) if notifications_only => {
            return Err(ApiError::field(
                FieldError::new("role_id", "no role for a notifications-only user", "a role id")
                    .hint("drop role_id or notifications_only"),
            ));
        }
        Some(Value::String(id)) => {
            let role = super::aims_roles::grantable(&s, &caller, &account_id, id).await?;
            Some(role.id)
        }
        Some(other) => {
            return Err(ApiError::field(FieldError::new(
                "role_id",
                "a role id (aims list_roles)",
                garrison_model::error::describe(other),
            )));
        }
    };
    let active = bool_field(&v, "active")?;
    let user = s.store.create_user(&account_id, &name, &email, role.as_deref(), &caller.user_id).await?;
    let user = if active == Some(false) {
        let change = UserChange { active: Some(false), ..Default::default() };
        s.store.update_user(&account_id, &user.id, &change, &caller.user_id).await?
    } else {
        user
    };
    tracing::info!(account = %account_id, user = %user.id, by = %caller.user_id, "user created");
    Ok((StatusCode::CREATED, Json(user)))
}

fn email_field(v: &Value) -> ApiResult<String> {
    let email = required_string(v, "email", 256)?;
    if !email.contains('@') || email.chars().any(char::is_control) {
        return Err(ApiError::field(FieldError::new("email", "an email address", format!("{email:?}"))));
    }
    Ok(email)
}

fn bool_field(v: &Value, field: &str) -> ApiResult<Option<bool>> {
    match v.get(field) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => {
            Err(ApiError::field(FieldError::new(field, "true or false", garrison_model::error::describe(other))))
        }
    }
}

/// List an account's users.
#[utoipa::path(get, path = "/aims/v1/{account_id}/users", tag = "aims", operation_id = "list_users",
    params(("account_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])), responses((status = 200, description = "{users: [...]}")))]
async fn list_users(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
) -> ApiResult<Json<Value>> {
    s.authorize(&caller, &account_id).await?;
    Ok(Json(json!({"users": s.store.list_users(&account_id).await?})))
}

/// The user, in an account the caller may act on (the route's permission, or the caller's
/// own user, was checked by `Caller`).
pub(crate) async fn user_in(s: &AppState, caller: &Caller, account_id: &str, user_id: &str) -> ApiResult<User> {
    s.authorize(caller, account_id).await?;
    s.store
        .get_user(account_id, user_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user {user_id:?} in account {account_id}")))
}

/// Get a user (any user of the account may read its users).
#[utoipa::path(get, path = "/aims/v1/{account_id}/users/{user_id}", tag = "aims", operation_id = "get_user_details",
    params(("account_id" = String, Path), ("user_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = User), (status = 404, description = "no such user")))]
async fn get_user_details(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, user_id)): Path<(String, String)>,
) -> ApiResult<Json<User>> {
    s.authorize(&caller, &account_id).await?;
    s.store
        .get_user(&account_id, &user_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no user {user_id:?} in account {account_id}")))
}

/// Update a user: `name`, `email`, `active` (`aims:…:update:user`; a user may change their
/// own name and email, never their own `active`). A disabled user's tokens stop at once.
#[utoipa::path(post, path = "/aims/v1/{account_id}/users/{user_id}", tag = "aims", operation_id = "update_user_details",
    params(("account_id" = String, Path), ("user_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = User), (status = 403, description = "not allowed"), (status = 409, description = "last Administrator or email taken")))]
async fn update_user_details(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, user_id)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<Json<User>> {
    user_in(&s, &caller, &account_id, &user_id).await?;
    let v = body::parse(&bytes)?;
    only_keys(&v, &["name", "email", "active"])?;
    let change = UserChange {
        name: match v.get("name") {
            None => None,
            Some(_) => Some(required_string(&v, "name", 256)?),
        },
        email: match v.get("email") {
            None => None,
            Some(_) => Some(email_field(&v)?),
        },
        active: bool_field(&v, "active")?,
        role: None,
    };
    let own = caller.account_id == account_id && caller.user_id == user_id;
    if own && change.active.is_some() {
        return Err(ApiError::Forbidden("users cannot enable or disable themselves (field active)".into()));
    }
    let user = s.store.update_user(&account_id, &user_id, &change, &caller.user_id).await?;
    s.key_states.forget_all();
    Ok(Json(user))
}

/// Delete a user with their access keys (`aims:…:delete:user`; not oneself; not the account's
/// last Administrator). Their tokens stop at once.
#[utoipa::path(delete, path = "/aims/v1/{account_id}/users/{user_id}", tag = "aims", operation_id = "delete_user",
    params(("account_id" = String, Path), ("user_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 204, description = "deleted"), (status = 400, description = "self delete"), (status = 404, description = "no such user")))]
async fn delete_user(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.authorize(&caller, &account_id).await?;
    if caller.account_id == account_id && caller.user_id == user_id {
        return Err(ApiError::field(
            FieldError::new("user_id", "another user than the caller", "the caller's own user id")
                .hint("users cannot delete themselves"),
        ));
    }
    if !s.store.delete_user(&account_id, &user_id).await? {
        return Err(ApiError::NotFound(format!("no user {user_id:?} in account {account_id}")));
    }
    s.key_states.forget_all();
    tracing::info!(account = %account_id, user = %user_id, by = %caller.user_id, "user deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Create an access key; the secret is in this response only.
#[utoipa::path(post, path = "/aims/v1/{account_id}/users/{user_id}/access_keys", tag = "aims", operation_id = "create_access_key",
    params(("account_id" = String, Path), ("user_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 201, body = AccessKey), (status = 409, description = "limit of 5 keys")))]
async fn create_access_key(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, user_id)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<AccessKey>)> {
    user_in(&s, &caller, &account_id, &user_id).await?;
    let v = body::parse_optional(&bytes)?;
    only_keys(&v, &["label"])?;
    let label = match v.get("label") {
        None => None,
        Some(_) => Some(required_string(&v, "label", 256)?),
    };
    let key = s.store.create_access_key(&account_id, &user_id, label.as_deref(), &caller.user_id).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

#[derive(Deserialize, utoipa::IntoParams)]
struct OutQuery {
    out: Option<String>,
}

/// List a user's access keys (ids only unless `out=full`).
#[utoipa::path(get, path = "/aims/v1/{account_id}/users/{user_id}/access_keys", tag = "aims", operation_id = "list_access_keys",
    params(("account_id" = String, Path), ("user_id" = String, Path), OutQuery), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "{access_keys: [...]}")))]
async fn list_access_keys(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, user_id)): Path<(String, String)>,
    Query(q): Query<OutQuery>,
) -> ApiResult<Json<Value>> {
    user_in(&s, &caller, &account_id, &user_id).await?;
    let keys = s.store.list_access_keys(&account_id, &user_id).await?;
    match q.out.as_deref() {
        None | Some("ids_only") => {
            Ok(Json(json!({"access_keys": keys.iter().map(|k| &k.access_key_id).collect::<Vec<_>>()})))
        }
        Some("full") => Ok(Json(json!({"access_keys": keys}))),
        Some(other) => Err(ApiError::field(FieldError::new("out", "one of [ids_only, full]", format!("{other:?}")))),
    }
}

/// Get one access key (never its secret).
#[utoipa::path(get, path = "/aims/v1/{account_id}/users/{user_id}/access_keys/{access_key_id}", tag = "aims", operation_id = "get_access_key",
    params(("account_id" = String, Path), ("user_id" = String, Path), ("access_key_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = AccessKey), (status = 404, description = "no such key")))]
async fn get_access_key(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, user_id, key_id)): Path<(String, String, String)>,
) -> ApiResult<Json<AccessKey>> {
    user_in(&s, &caller, &account_id, &user_id).await?;
    s.store
        .get_access_key(&account_id, &user_id, &key_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no access key {key_id:?} for this user")))
}

/// Delete an access key; every token issued through it stops at once.
#[utoipa::path(delete, path = "/aims/v1/{account_id}/users/{user_id}/access_keys/{access_key_id}", tag = "aims", operation_id = "delete_access_key",
    params(("account_id" = String, Path), ("user_id" = String, Path), ("access_key_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 204, description = "deleted"), (status = 404, description = "no such key")))]
async fn delete_access_key(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, user_id, key_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    user_in(&s, &caller, &account_id, &user_id).await?;
    if s.store.delete_access_key(&account_id, &user_id, &key_id).await? {
        s.key_states.forget(&key_id);
        s.verified_keys.lock().expect("lock").remove(&key_id);
        tracing::info!(account = %account_id, user = %user_id, access_key = %key_id, by = %caller.user_id, "access key deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no access key {key_id:?} for this user")))
    }
}
