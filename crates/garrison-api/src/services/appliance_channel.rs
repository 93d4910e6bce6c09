//! The appliance channel: what `garrison appliance run` on a scan or IDS appliance talks to.
//! Not a tenant API and not in the OpenAPI document: an appliance registers once with the
//! one-time bootstrap token from its user data (bound to its instance and deployment), gets
//! its own credential, and with it can only send heartbeats and read its configuration. A
//! tenant token is no use here, and an appliance credential is no use anywhere else (it is
//! not an aims token: `Caller` refuses it).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use garrison_model::health::wire::{self, Config, Registered};
use garrison_store::{Appliance, Refused};

use crate::AppState;
use crate::body;
use crate::error::{ApiError, ApiResult};
use garrison_engine::now_ms;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/appliances/v1/register", post(register))
        .route("/appliances/v1/heartbeat", post(heartbeat))
        .route("/appliances/v1/config", get(config))
}

fn refused(r: Refused) -> ApiError {
    metrics::counter!("garrison_appliance_refusals_total", "reason" => r.as_str()).increment(1);
    ApiError::Unauthorized(match r {
        Refused::Unknown => "unknown appliance token or credential".into(),
        Refused::Replayed => "this bootstrap token was used already".into(),
        Refused::Expired => "this bootstrap token expired".into(),
        Refused::ForeignInstance => "this bootstrap token belongs to another instance".into(),
        Refused::Revoked => "this appliance was removed or replaced".into(),
    })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| t.starts_with("gap_"))
}

async fn appliance(s: &AppState, headers: &HeaderMap) -> ApiResult<Appliance> {
    let credential = bearer(headers).ok_or_else(|| {
        ApiError::Unauthorized("an appliance credential (Authorization: Bearer gap_…) is required".into())
    })?;
    s.store.appliance_by_credential(credential).await?.map_err(refused)
}

fn config_of(s: &AppState, a: &Appliance) -> Config {
    Config {
        appliance_id: a.id.clone(),
        deployment_id: a.deployment_id.clone(),
        key: a.key.clone(),
        role: a.role.clone(),
        heartbeat_interval_s: s.config.heartbeat_s,
    }
}

/// First boot (a token) or a restart (the credential it was given): its configuration back.
async fn register(State(s): State<AppState>, headers: HeaderMap, bytes: Bytes) -> ApiResult<Json<Registered>> {
    let r = wire::parse_register(&body::parse(&bytes)?)?;
    let now = now_ms();
    let (a, credential) = match (&r.token, bearer(&headers)) {
        (Some(token), _) => {
            let (a, credential) =
                s.store.register_appliance(token, &r.instance_id, &r.version, now).await?.map_err(|e| {
                    tracing::warn!(instance = %r.instance_id, reason = e.as_str(), "appliance registration refused");
                    refused(e)
                })?;
            tracing::info!(deployment = %a.deployment_id, key = %a.key, instance = %a.instance_id, "appliance registered");
            metrics::counter!("garrison_appliance_registrations_total", "kind" => "first").increment(1);
            (a, Some(credential))
        }
        (None, Some(_)) => {
            let a = appliance(&s, &headers).await?;
            if a.instance_id != r.instance_id {
                s.store
                    .record_refusal(&a.account_id, &a.deployment_id, &r.instance_id, Refused::ForeignInstance, now)
                    .await?;
                return Err(refused(Refused::ForeignInstance));
            }
            metrics::counter!("garrison_appliance_registrations_total", "kind" => "restart").increment(1);
            (a, None)
        }
        (None, None) => {
            return Err(ApiError::field(garrison_model::FieldError::new(
                "token",
                "the bootstrap token from the user data, or an appliance credential in Authorization",
                "neither",
            )));
        }
    };
    Ok(Json(Registered { appliance_id: a.id.clone(), credential, config: config_of(&s, &a) }))
}

async fn heartbeat(State(s): State<AppState>, headers: HeaderMap, bytes: Bytes) -> ApiResult<Json<Config>> {
    let a = appliance(&s, &headers).await?;
    let h = wire::parse_heartbeat(&body::parse(&bytes)?)?;
    let role = h.work.role();
    if role != a.role {
        return Err(ApiError::field(garrison_model::FieldError::new("work.role", a.role.clone(), role)));
    }
    let written = s.store.heartbeat(&a, &h.version, h.uptime_s, &h.work, now_ms()).await?;
    metrics::counter!("garrison_appliance_heartbeats_total", "written" => if written { "yes" } else { "too_soon" })
        .increment(1);
    Ok(Json(config_of(&s, &a)))
}

async fn config(State(s): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Config>> {
    let a = appliance(&s, &headers).await?;
    Ok(Json(config_of(&s, &a)))
}
