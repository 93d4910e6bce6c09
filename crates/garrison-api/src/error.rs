//! Every error the API returns: a status and a JSON body naming what went wrong.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use garrison_model::{FieldError, ValidationError};
use garrison_store::StoreError;
use serde_json::json;

#[derive(Debug)]
pub enum ApiError {
    /// 400 with every field error.
    Invalid(ValidationError),
    /// 400 that also carries the reference's `error_type` (assets_query's 400s do).
    InvalidTyped(&'static str, ValidationError),
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    /// 502: the customer's AWS account could not be read.
    Upstream(String),
    /// 503: this server has no engine.
    Unavailable(String),
    Internal(String),
}

impl ApiError {
    pub fn field(e: FieldError) -> ApiError {
        ApiError::Invalid(ValidationError::one(e))
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::Invalid(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("not found".into()),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            other => {
                // Store errors carry no secrets (sealed values never reach messages).
                tracing::error!(error = %other, "store error");
                ApiError::Internal("internal error; see the server log".into())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::Invalid(v) => (StatusCode::BAD_REQUEST, invalid_body(v)),
            ApiError::InvalidTyped(error_type, v) => {
                let mut body = invalid_body(v);
                body["error_type"] = json!(error_type);
                (StatusCode::BAD_REQUEST, body)
            }
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, json!({"error": "unauthorized", "message": m})),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, json!({"error": "forbidden", "message": m})),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, json!({"error": "not_found", "message": m})),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, json!({"error": "conflict", "message": m})),
            ApiError::Upstream(m) => (StatusCode::BAD_GATEWAY, json!({"error": "aws_unreachable", "message": m})),
            ApiError::Unavailable(m) => {
                (StatusCode::SERVICE_UNAVAILABLE, json!({"error": "unavailable", "message": m}))
            }
            ApiError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, json!({"error": "internal", "message": m})),
        };
        (status, axum::Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

fn invalid_body(v: ValidationError) -> serde_json::Value {
    let first = v.errors.first().cloned().unwrap_or_else(|| FieldError::new("body", "valid input", "invalid input"));
    let mut body = json!({
        "error": "invalid_request",
        "message": v.to_string(),
        "field": first.field,
        "expected": first.expected,
        "found": first.found,
        "errors": v.errors,
    });
    if let Some(h) = first.hint {
        body["hint"] = json!(h);
    }
    body
}
