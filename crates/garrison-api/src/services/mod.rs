pub mod aims;
pub mod aims_roles;
pub mod appliance_channel;
pub mod assets_query;
pub mod connectors;
pub mod credentials;
pub mod deployments;
pub mod endpoints;
pub mod findings;
pub mod health;
pub mod herald;
pub mod organizations;
pub mod otis;
pub mod policies;
pub mod protection;
pub mod scheduler;
pub mod themis;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::AppState;

/// 200 once the store answers.
pub async fn health(State(s): State<AppState>) -> impl IntoResponse {
    match s.store.ping().await {
        Ok(()) => (StatusCode::OK, axum::Json(serde_json::json!({"status": "ok"}))),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({"status": "store unavailable"}))),
    }
}
