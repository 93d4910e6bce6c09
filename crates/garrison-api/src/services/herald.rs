//! herald v2: which notices go to whom. A subscription names one notification type
//! (findings/opened, findings/resolved, deployments/status), optionally a minimum severity
//! and a deployment, and its subscribers: connections (sent a webhook request) and users
//! (kept for herald compatibility; garrison sends no email).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use garrison_model::FieldError;
use garrison_model::notify::{
    NOTICE_TYPES, Subscriber, SubscriberType, Subscription, parse_subscriber, parse_subscription,
};
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
        .routes(routes!(get_notification_types))
        .routes(routes!(create_subscription, get_account_subscriptions))
        .routes(routes!(get_account_subscription, update_subscription))
        .routes(routes!(batch_delete_subscriptions))
        .routes(routes!(get_account_subscription_subscribers, add_subscriber))
        .routes(routes!(remove_subscriber))
}

/// At most this many subscribers per subscription.
const MAX_SUBSCRIBERS: usize = 100;
/// Subscriptions per account.
pub const MAX_SUBSCRIPTIONS: usize = 200;

fn not_found(id: &str, account_id: &str) -> ApiError {
    ApiError::NotFound(format!("no subscription {id:?} in account {account_id}"))
}

/// Every subscriber names a connection or user of the account (`field` says where).
async fn check_subscribers(s: &AppState, account_id: &str, subs: &[Subscriber], field: &str) -> ApiResult<()> {
    if subs.len() > MAX_SUBSCRIBERS {
        return Err(ApiError::field(FieldError::new(field, "at most 100 subscribers", format!("{}", subs.len()))));
    }
    let mut errors = garrison_model::ValidationError::default();
    for (i, sub) in subs.iter().enumerate() {
        let known = match sub.subscriber_type {
            SubscriberType::Connection => s.store.get_connection(account_id, &sub.subscriber).await?.is_some(),
            SubscriberType::User => s.store.get_user(account_id, &sub.subscriber).await?.is_some(),
        };
        if !known {
            let what = match sub.subscriber_type {
                SubscriberType::Connection => "the id of one of the account's connections",
                SubscriberType::User => "the id of one of the account's users",
            };
            let at = if field == "subscribers" { format!("subscribers[{i}].subscriber") } else { field.to_string() };
            errors.push(FieldError::new(at, what, format!("{:?}", sub.subscriber)));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors.into()) }
}

fn shown(sub: &Subscription, with_subscribers: bool) -> Value {
    let mut v = serde_json::to_value(sub).unwrap_or_default();
    v["subscriber_count"] = json!(sub.subscribers.len());
    if !with_subscribers && let Some(o) = v.as_object_mut() {
        o.remove("subscribers");
    }
    v
}

/// The notification types garrison sends.
#[utoipa::path(get, path = "/herald/v2/notification_types", tag = "herald", operation_id = "get_notification_types",
    security(("X-AIMS-Auth-Token" = [])), responses((status = 200, description = "{notification_types: [...]}")))]
async fn get_notification_types(_caller: Caller) -> Json<Value> {
    Json(json!({"notification_types": NOTICE_TYPES.iter().map(|t| t.describe()).collect::<Vec<_>>()}))
}

/// Subscribe connections (and users) to a notification type.
#[utoipa::path(post, path = "/herald/v2/{account_id}/subscriptions", tag = "herald", operation_id = "create_subscription",
    params(("account_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 201, body = Subscription), (status = 400, description = "invalid field")))]
async fn create_subscription(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    s.authorize(&caller, &account_id).await?;
    let spec = parse_subscription(&body::parse(&bytes)?, None)?;
    check_subscribers(&s, &account_id, spec.subscribers.as_deref().unwrap_or_default(), "subscribers").await?;
    if s.store.list_subscriptions(&account_id, None).await?.len() >= MAX_SUBSCRIPTIONS {
        return Err(ApiError::Conflict(format!(
            "account {account_id} has {MAX_SUBSCRIPTIONS} subscriptions, the most it may have; delete one first"
        )));
    }
    let sub = s.store.create_subscription(&account_id, spec, &caller.user_id).await?;
    tracing::info!(account = %account_id, subscription = %sub.id, kind = %sub.notification_type, "subscription created");
    Ok((StatusCode::CREATED, Json(shown(&sub, true))))
}

#[derive(Deserialize, utoipa::IntoParams, Default)]
struct ListQuery {
    /// Only this type's subscriptions.
    notification_type: Option<String>,
    /// With their subscribers (true | false).
    include_subscribers: Option<bool>,
}

/// The account's subscriptions.
#[utoipa::path(get, path = "/herald/v2/{account_id}/subscriptions", tag = "herald", operation_id = "get_account_subscriptions",
    params(("account_id" = String, Path), ListQuery), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "{subscriptions: [Subscription]}")))]
async fn get_account_subscriptions(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    s.authorize(&caller, &account_id).await?;
    let subs = s.store.list_subscriptions(&account_id, q.notification_type.as_deref()).await?;
    let with = q.include_subscribers.unwrap_or(false);
    Ok(Json(json!({"subscriptions": subs.iter().map(|x| shown(x, with)).collect::<Vec<_>>()})))
}

#[derive(Deserialize, utoipa::IntoParams, Default)]
struct OneQuery {
    /// With its subscribers (true | false).
    include_subscribers: Option<bool>,
}

/// One subscription.
#[utoipa::path(get, path = "/herald/v2/{account_id}/subscriptions/{subscription_id}", tag = "herald", operation_id = "get_account_subscription",
    params(("account_id" = String, Path), ("subscription_id" = String, Path), OneQuery), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "the Subscription with subscriber_count (its subscribers with include_subscribers=true)"), (status = 404, description = "no such subscription")))]
async fn get_account_subscription(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
    Query(q): Query<OneQuery>,
) -> ApiResult<Json<Value>> {
    s.authorize(&caller, &account_id).await?;
    let sub = s.store.get_subscription(&account_id, &id).await?.ok_or_else(|| not_found(&id, &account_id))?;
    Ok(Json(shown(&sub, q.include_subscribers.unwrap_or(false))))
}

/// Change a subscription: the fields given replace the current ones.
#[utoipa::path(post, path = "/herald/v2/{account_id}/subscriptions/{subscription_id}", tag = "herald", operation_id = "update_subscription",
    params(("account_id" = String, Path), ("subscription_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = Subscription), (status = 400, description = "invalid field"), (status = 404, description = "no such subscription")))]
async fn update_subscription(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<Json<Value>> {
    s.authorize(&caller, &account_id).await?;
    let v = body::parse(&bytes)?;
    let mut sub = s.store.get_subscription(&account_id, &id).await?.ok_or_else(|| not_found(&id, &account_id))?;
    let spec = parse_subscription(&v, Some(&sub))?;
    if let Some(subs) = &spec.subscribers {
        check_subscribers(&s, &account_id, subs, "subscribers").await?;
    }
    sub.name = spec.name;
    sub.class = spec.class;
    sub.notification_type = spec.notification_type;
    sub.active = spec.active;
    sub.options = spec.options;
    sub.filters = spec.filters;
    if let Some(subs) = spec.subscribers {
        sub.subscribers = subs;
    }
    sub.modified = garrison_model::Stamp {
        at: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64),
        by: caller.user_id.clone(),
    };
    if !s.store.put_subscription(&sub).await? {
        return Err(not_found(&id, &account_id));
    }
    Ok(Json(shown(&sub, true)))
}

/// Delete subscriptions: all of them, or none when one is not the account's.
#[utoipa::path(post, path = "/herald/v2/{account_id}/subscriptions/batch/delete", tag = "herald", operation_id = "batch_delete_subscriptions",
    params(("account_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 204, description = "deleted"), (status = 400, description = "invalid field or unknown ids (nothing deleted)")))]
async fn batch_delete_subscriptions(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
    bytes: Bytes,
) -> ApiResult<StatusCode> {
    s.authorize(&caller, &account_id).await?;
    let v = body::parse(&bytes)?;
    let ids: Option<Vec<String>> = v
        .get("ids")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty() && a.len() <= 100)
        .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_string)).collect());
    let Some(ids) = ids else {
        return Err(ApiError::field(FieldError::new(
            "ids",
            "an array of 1 to 100 subscription ids",
            v.get("ids").map_or("nothing".into(), garrison_model::error::describe),
        )));
    };
    let missing = s.store.delete_subscriptions(&account_id, &ids).await?;
    if missing.is_empty() {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::field(FieldError::new(
            "ids",
            "ids of the account's subscriptions (nothing was deleted)",
            format!("unknown {missing:?}"),
        )))
    }
}

/// A subscription's subscribers.
#[utoipa::path(get, path = "/herald/v2/{account_id}/subscriptions/{subscription_id}/subscribers", tag = "herald", operation_id = "get_account_subscription_subscribers",
    params(("account_id" = String, Path), ("subscription_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "{subscribers: [Subscriber]}"), (status = 404, description = "no such subscription")))]
async fn get_account_subscription_subscribers(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    s.authorize(&caller, &account_id).await?;
    let sub = s.store.get_subscription(&account_id, &id).await?.ok_or_else(|| not_found(&id, &account_id))?;
    let subs: Vec<Value> = sub
        .subscribers
        .iter()
        .map(|x| json!({"subscriber": x.subscriber, "subscriber_type": x.subscriber_type, "subscription_id": sub.id}))
        .collect();
    Ok(Json(json!({"subscribers": subs})))
}

/// Add a subscriber (a connection or a user of the account).
#[utoipa::path(post, path = "/herald/v2/{account_id}/subscriptions/{subscription_id}/subscribers", tag = "herald", operation_id = "add_subscriber",
    params(("account_id" = String, Path), ("subscription_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 201, body = Subscriber), (status = 400, description = "invalid field"), (status = 404, description = "no such subscription"), (status = 409, description = "already subscribed")))]
async fn add_subscriber(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    s.authorize(&caller, &account_id).await?;
    let mut sub = s.store.get_subscription(&account_id, &id).await?.ok_or_else(|| not_found(&id, &account_id))?;
    let v = body::parse(&bytes)?;
    let new = parse_subscriber(&v).map_err(ApiError::field)?;
    // herald's body repeats the account and subscription: they must be these.
    for (k, want) in [("account_id", &account_id), ("subscription_id", &id)] {
        if let Some(got) = v.get(k)
            && got.as_str() != Some(want.as_str())
            && got.as_u64().map(|n| n.to_string()).as_deref() != Some(want.as_str())
        {
            return Err(ApiError::field(FieldError::new(
                k,
                format!("{want:?} (the path's)"),
                garrison_model::error::describe(got),
            )));
        }
    }
    if sub.subscribers.contains(&new) {
        return Err(ApiError::Conflict(format!("{} is already a subscriber", new.subscriber)));
    }
    check_subscribers(&s, &account_id, std::slice::from_ref(&new), "subscriber").await?;
    sub.subscribers.push(new.clone());
    if sub.subscribers.len() > MAX_SUBSCRIBERS {
        return Err(ApiError::field(FieldError::new(
            "subscriber",
            "room in a subscription of at most 100 subscribers",
            "a full subscription",
        )));
    }
    s.store.put_subscription(&sub).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"subscriber": new.subscriber, "subscriber_type": new.subscriber_type, "subscription_id": sub.id})),
    ))
}

/// Remove a subscriber.
#[utoipa::path(delete, path = "/herald/v2/{account_id}/subscriptions/{subscription_id}/subscribers/{subscriber_type}/{subscriber}", tag = "herald", operation_id = "remove_subscriber",
    params(("account_id" = String, Path), ("subscription_id" = String, Path), ("subscriber_type" = String, Path), ("subscriber" = String, Path)),
    security(("X-AIMS-Auth-Token" = [])),
    responses((status = 204, description = "removed"), (status = 404, description = "no such subscription or subscriber")))]
async fn remove_subscriber(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id, kind, who)): Path<(String, String, String, String)>,
) -> ApiResult<StatusCode> {
    s.authorize(&caller, &account_id).await?;
    let target = parse_subscriber(&json!({"subscriber": who, "subscriber_type": kind})).map_err(ApiError::field)?;
    let mut sub = s.store.get_subscription(&account_id, &id).await?.ok_or_else(|| not_found(&id, &account_id))?;
    let before = sub.subscribers.len();
    sub.subscribers.retain(|x| *x != target);
    if sub.subscribers.len() == before {
        return Err(ApiError::NotFound(format!("{who:?} is not a subscriber of {id:?}")));
    }
    s.store.put_subscription(&sub).await?;
    Ok(StatusCode::NO_CONTENT)
}
