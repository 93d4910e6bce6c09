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
            StoreError::Invalid(m) => ApiError::field(FieldError::new("body", "valid input", m)),
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

/// Field errors listed in one answer at most; the rest are counted (`errors_omitted`), so
/// that a body with 10,000 bad items gets a small answer.
pub const MAX_LISTED_ERRORS: usize = 20;

/// The longest `found` text echoed back (it quotes the client's input).
const MAX_ECHO: usize = 200;
/// The longest `hint` (garrison's text, which may quote a parser's view of the input).
const MAX_HINT: usize = 1000;

fn clip(s: String, max: usize) -> String {
    if s.chars().count() <= max { s } else { format!("{} ({} bytes)", garrison_model::error::clip(&s, max), s.len()) }
}

fn invalid_body(v: ValidationError) -> serde_json::Value {
    let omitted = v.errors.len().saturating_sub(MAX_LISTED_ERRORS);
    let listed: Vec<FieldError> = v
        .errors
        .into_iter()
        .take(MAX_LISTED_ERRORS)
        .map(|mut e| {
            e.found = clip(e.found, MAX_ECHO);
            e.hint = e.hint.map(|h| clip(h, MAX_HINT));
            e
        })
        .collect();
    let first = listed.first().cloned().unwrap_or_else(|| FieldError::new("body", "valid input", "invalid input"));
    let mut message = ValidationError { errors: listed.clone() }.to_string();
    if omitted > 0 {
        message.push_str(&format!("; and {omitted} more"));
    }
    let mut body = json!({
        "error": "invalid_request",
        "message": message,
        "field": first.field,
        "expected": first.expected,
        "found": first.found,
        "errors": listed,
    });
    if omitted > 0 {
        body["errors_omitted"] = json!(omitted);
    }
    if let Some(h) = first.hint {
        body["hint"] = json!(h);
    }
    body
}
