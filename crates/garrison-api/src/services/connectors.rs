//! connectors v1: webhook connections (create with a signing secret shown once, test with
//! a dry run, update, delete) and the notifications' dead letters (list, re-enqueue,
//! drop). The dead-letter routes carry no account in their path; garrison answers for the
//! caller's own account.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use garrison_model::FieldError;
use garrison_model::notify::{Connection, parse_connection, sample};
use garrison_notify::Outcome;
use garrison_store::ConnectionSecrets;
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
        .routes(routes!(create_connection, list_connections))
        .routes(routes!(get_connection, update_connection, delete_connection))
        .routes(routes!(list_dlq_messages))
        .routes(routes!(reenqueue_dlq))
        .routes(routes!(delete_dlq_message))
}

const MAX_DEAD: usize = 1000;
/// Connections per account: each is a target every matching notice is sent to.
pub const MAX_CONNECTIONS: usize = 100;

fn not_found(id: &str, account_id: &str) -> ApiError {
    ApiError::NotFound(format!("no connection {id:?} in account {account_id}"))
}

#[derive(Deserialize, utoipa::IntoParams, Default)]
struct DryRun {
    /// Send a test notification and return what the target answered; nothing is stored.
    dry_run: Option<bool>,
}

/// A test notification over `c`: connectors' ActualRequest when the target took it, else a
/// 400 naming `target_url` with what it answered.
async fn dry_run(s: &AppState, c: &Connection, secrets: &ConnectionSecrets) -> ApiResult<Response> {
    match s.sender.send(c, secrets, &sample(&c.account_id), 1).await {
        Outcome::Sent(actual) => Ok((StatusCode::OK, Json(actual)).into_response()),
        Outcome::Failed(why) | Outcome::Refused(why) => Err(ApiError::field(FieldError::new(
            "target_url",
            "a target that accepts the test notification (HTTP 2xx)",
            why,
        ))),
    }
}

/// The connection a dry run would be, without storing it, signed with a throwaway secret
/// (the receiver can check the header's form).
fn unsaved(
    account_id: &str,
    spec: &garrison_model::notify::ConnectionSpec,
    by: &str,
) -> (Connection, ConnectionSecrets) {
    let stamp = garrison_model::Stamp { at: 0, by: by.into() };
    let auth = spec.auth_header.as_deref().is_some_and(|a| !a.is_empty());
    let c = spec.clone().into_connection("dry-run", account_id, auth, stamp.clone(), stamp);
    let secrets = ConnectionSecrets { signing_secret: "gsec_dry_run".into(), auth_header: spec.auth_header.clone() };
    (c, secrets)
}

/// Create a webhook connection. The answer carries `signing_secret` this once: every
/// request garrison sends over the connection is signed with it (`X-Garrison-Signature`).
/// With `dry_run=true`, a test notification is sent and the target's answer returned.
#[utoipa::path(post, path = "/v1/{account_id}/connections", tag = "connectors", operation_id = "create_connection",
    params(("account_id" = String, Path), DryRun), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 201, body = Connection, description = "the connection, with signing_secret shown once"),
        (status = 200, description = "dry run: {request, response}"), (status = 400, description = "invalid field")))]
async fn create_connection(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
    Query(q): Query<DryRun>,
    bytes: Bytes,
) -> ApiResult<Response> {
    s.authorize(&caller, &account_id).await?;
    let spec = parse_connection(&body::parse(&bytes)?, s.config.allow_private_webhooks)?;
    if q.dry_run == Some(true) {
        let (c, secrets) = unsaved(&account_id, &spec, &caller.user_id);
        return dry_run(&s, &c, &secrets).await;
    }
    if s.store.list_connections(&account_id).await?.len() >= MAX_CONNECTIONS {
        return Err(ApiError::Conflict(format!(
            "account {account_id} has {MAX_CONNECTIONS} connections, the most it may have; delete one first"
        )));
    }
    let (c, secret) = s.store.create_connection(&account_id, spec, &caller.user_id).await?;
    tracing::info!(account = %account_id, connection = %c.id, "connection created");
    let mut v = serde_json::to_value(&c).map_err(|e| ApiError::Internal(e.to_string()))?;
    v["signing_secret"] = json!(secret);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// The account's connections.
#[utoipa::path(get, path = "/v1/{account_id}/connections", tag = "connectors", operation_id = "list_connections",
    params(("account_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])), responses((status = 200, body = Vec<Connection>)))]
async fn list_connections(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
) -> ApiResult<Json<Vec<Connection>>> {
    s.authorize(&caller, &account_id).await?;
    Ok(Json(s.store.list_connections(&account_id).await?))
}

/// One connection (its secrets are never shown).
#[utoipa::path(get, path = "/v1/{account_id}/connections/{id}", tag = "connectors", operation_id = "get_connection",
    params(("account_id" = String, Path), ("id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = Connection), (status = 404, description = "no such connection")))]
async fn get_connection(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
) -> ApiResult<Json<Connection>> {
    s.authorize(&caller, &account_id).await?;
    s.store.get_connection(&account_id, &id).await?.map(Json).ok_or_else(|| not_found(&id, &account_id))
}

/// Replace a connection's settings: its signing secret stays, and its Authorization header
/// unless `auth_header` is given (`""` removes it). With `dry_run=true` the new settings
/// are tested (with the stored secrets) and nothing changes.
#[utoipa::path(put, path = "/v1/{account_id}/connections/{id}", tag = "connectors", operation_id = "update_connection",
    params(("account_id" = String, Path), ("id" = String, Path), DryRun), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 201, description = "{id, modified}"), (status = 200, description = "dry run: {request, response}"),
        (status = 400, description = "invalid field"), (status = 404, description = "no such connection")))]
async fn update_connection(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
    Query(q): Query<DryRun>,
    bytes: Bytes,
) -> ApiResult<Response> {
    s.authorize(&caller, &account_id).await?;
    let (_, stored) = s.store.connection_row(&account_id, &id).await?.ok_or_else(|| not_found(&id, &account_id))?;
    let spec = parse_connection(&body::parse(&bytes)?, s.config.allow_private_webhooks)?;
    if q.dry_run == Some(true) {
        let (mut c, mut secrets) = unsaved(&account_id, &spec, &caller.user_id);
        c.id = id;
        secrets.signing_secret = stored.signing_secret;
        if spec.auth_header.is_none() {
            secrets.auth_header = stored.auth_header;
        }
        return dry_run(&s, &c, &secrets).await;
    }
    let c = s
        .store
        .update_connection(&account_id, &id, spec, &caller.user_id)
        .await?
        .ok_or_else(|| not_found(&id, &account_id))?;
    Ok((StatusCode::CREATED, Json(json!({"id": c.id, "modified": c.modified}))).into_response())
}

/// Delete a connection; what it was still owed (dead letters included) goes with it.
#[utoipa::path(delete, path = "/v1/{account_id}/connections/{id}", tag = "connectors", operation_id = "delete_connection",
    params(("account_id" = String, Path), ("id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 204, description = "deleted"), (status = 404, description = "no such connection")))]
async fn delete_connection(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.authorize(&caller, &account_id).await?;
    if s.store.delete_connection(&account_id, &id).await? {
        tracing::info!(account = %account_id, connection = %id, "connection deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id, &account_id))
    }
}

fn dlq_key(key: Option<&Value>) -> ApiResult<()> {
    match key {
        Some(Value::String(k)) if k == "notifications" => Ok(()),
        other => Err(ApiError::field(FieldError::new(
            "key",
            "notifications (garrison keeps no audit_messages queue)",
            other.map_or("nothing".into(), garrison_model::error::describe),
        ))),
    }
}

#[derive(Deserialize, utoipa::IntoParams, Default)]
struct DlqQuery {
    /// The most to return, 1 to 1000 (default 100).
    max: Option<String>,
}

/// The caller's account's dead letters: notifications a connection refused for good or
/// that kept failing, each with its last error and attempts; `receipt_handle` drops it.
#[utoipa::path(get, path = "/v1/connections/management/dlq_messages/{key}", tag = "connectors", operation_id = "list_dlq_messages",
    params(("key" = String, Path), DlqQuery), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "{messages: [...]}"), (status = 400, description = "invalid parameter")))]
async fn list_dlq_messages(
    State(s): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Query(q): Query<DlqQuery>,
) -> ApiResult<Json<Value>> {
    dlq_key(Some(&Value::String(key)))?;
    let max =
        match q.max.as_deref() {
            None => 100,
            Some(m) => m.parse::<usize>().ok().filter(|n| (1..=MAX_DEAD).contains(n)).ok_or_else(|| {
                ApiError::field(FieldError::new("max", "an integer from 1 to 1000", format!("{m:?}")))
            })?,
        };
    let dead = s.store.deliveries(&caller.account_id, "dead", max).await?;
    let messages: Vec<Value> = dead
        .into_iter()
        .map(|d| {
            json!({"receipt_handle": d.id, "message_id": d.id, "notification_id": d.notification_id,
                "connection_id": d.connection_id, "notification_type": d.notification_type,
                "attempts": d.attempts, "last_error": d.last_error, "created": d.created_ms / 1000, "body": d.body})
        })
        .collect();
    Ok(Json(json!({"messages": messages, "count": messages.len()})))
}

/// Send the caller's account's dead letters again (oldest first, at most `max_messages`).
#[utoipa::path(post, path = "/v1/connections/management/reenqueue", tag = "connectors", operation_id = "reenqueue_dlq",
    security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "{reenqueued_num}"), (status = 400, description = "invalid field")))]
async fn reenqueue_dlq(State(s): State<AppState>, caller: Caller, bytes: Bytes) -> ApiResult<Json<Value>> {
    let v = body::parse(&bytes)?;
    dlq_key(v.get("key"))?;
    let max = match v.get("max_messages") {
        None => MAX_DEAD,
        Some(m) => m.as_u64().filter(|n| (1..=MAX_DEAD as u64).contains(n)).map(|n| n as usize).ok_or_else(|| {
            ApiError::field(FieldError::new(
                "max_messages",
                "an integer from 1 to 1000",
                garrison_model::error::describe(m),
            ))
        })?,
    };
    let n = s.store.reenqueue_dead(&caller.account_id, max).await?;
    tracing::info!(account = %caller.account_id, reenqueued = n, "dead letters sent again");
    Ok(Json(json!({"reenqueued_num": n})))
}

/// Drop dead letters by receipt handle.
#[utoipa::path(delete, path = "/v1/connections/management/delete_message", tag = "connectors", operation_id = "delete_dlq_message",
    security(("X-AIMS-Auth-Token" = [])),
    responses((status = 204, description = "dropped"), (status = 400, description = "invalid field")))]
async fn delete_dlq_message(State(s): State<AppState>, caller: Caller, bytes: Bytes) -> ApiResult<StatusCode> {
    let v = body::parse(&bytes)?;
    dlq_key(v.get("key"))?;
    let handles: Option<Vec<String>> = v
        .get("receipt_handles")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty() && a.len() <= MAX_DEAD)
        .and_then(|a| a.iter().map(|h| h.as_str().map(str::to_string)).collect());
    let Some(handles) = handles else {
        return Err(ApiError::field(FieldError::new(
            "receipt_handles",
            "an array of 1 to 1000 receipt handles (strings)",
            v.get("receipt_handles").map_or("nothing".into(), garrison_model::error::describe),
        )));
    };
    s.store.delete_dead(&caller.account_id, &handles).await?;
    Ok(StatusCode::NO_CONTENT)
}
