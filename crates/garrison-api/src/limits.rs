//! Cross-cutting answers for every route: bodies read whole within the body timeout and
//! the size limit (408/413 as JSON), any non-JSON 4xx from the framework (no route, wrong
//! method, a query string or path that does not parse) turned into the API's JSON error
//! shape, and `X-Content-Type-Options: nosniff` on every answer.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use garrison_model::FieldError;
use serde_json::json;

use crate::MAX_BODY;
use crate::error::ApiError;

/// Reads the body whole, within `timeout` and `MAX_BODY` (408 and 413 as JSON), before the
/// routes see the request. Installed by `server::serve` with its limits.
pub async fn read_body(timeout: std::time::Duration, req: Request, next: Next) -> Response {
    let too_large = || {
        let mut r = ApiError::field(FieldError::new("body", format!("at most {MAX_BODY} bytes"), "a larger body"))
            .into_response();
        *r.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        r
    };
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return nosniff(too_large());
    }
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            let over = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            return nosniff(if over {
                too_large()
            } else {
                ApiError::field(FieldError::new("body", "a complete request body", "a body that could not be read"))
                    .into_response()
            });
        }
        Err(_) => {
            let mut r = (
                StatusCode::REQUEST_TIMEOUT,
                axum::Json(json!({"error": "request_timeout", "message": format!(
                    "the request body did not arrive within {} ms", timeout.as_millis()
                )})),
            )
                .into_response();
            r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            return nosniff(r);
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// Every answer of the routes: framework rejections as JSON, and nosniff.
pub async fn finish(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    nosniff(json_errors(res).await)
}

fn nosniff(mut r: Response) -> Response {
    r.headers_mut().insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    r
}

/// A 4xx whose body is not JSON (the framework's own rejections) gets the API's shape; the
/// framework's text says which parameter failed, and it is named as `field` when it does.
async fn json_errors(res: Response) -> Response {
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !status.is_client_error() || is_json {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let body = match status {
        StatusCode::NOT_FOUND => json!({"error": "not_found", "message": "no such route"}),
        StatusCode::METHOD_NOT_ALLOWED => {
            json!({"error": "method_not_allowed", "message": "this route does not take this method"})
        }
        _ => {
            let (field, found) = rejection_field(&text);
            json!({
                "error": "invalid_request",
                "message": text,
                "field": field,
                "expected": "a valid value",
                "found": found,
            })
        }
    };
    let mut out = (status, axum::Json(body)).into_response();
    for (k, v) in parts.headers.iter() {
        if k == header::ALLOW {
            out.headers_mut().insert(k, v.clone());
        }
    }
    out
}

/// The parameter an axum rejection names: "Failed to deserialize query string: limit:
/// invalid digit found in string" → ("limit", "invalid digit found in string").
pub fn rejection_field(text: &str) -> (String, String) {
    let rest = text
        .split_once("query string: ")
        .or_else(|| text.split_once("path parameters: "))
        .map(|(_, r)| r)
        .unwrap_or(text);
    match rest.split_once(": ") {
        Some((field, why)) if !field.is_empty() && field.len() <= 64 && !field.contains(' ') => {
            (field.to_string(), why.to_string())
        }
        _ => ("query".to_string(), rest.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failing_parameter_is_named() {
        assert_eq!(
            rejection_field("Failed to deserialize query string: limit: invalid digit found in string"),
            ("limit".into(), "invalid digit found in string".into())
        );
        assert_eq!(rejection_field("something else").0, "query");
    }
}
