//! JSON bodies parsed by hand so a syntax error is reported with its line and column
//! instead of a bare 400/422.

use axum::body::Bytes;
use garrison_model::FieldError;
use serde_json::Value;

use crate::error::ApiError;

pub fn parse(bytes: &Bytes) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::field(FieldError::new("body", "a JSON body", "an empty body")));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::field(
            FieldError::new(
                "body",
                "valid JSON",
                format!("{} at line {} column {}", e.classify_word(), e.line(), e.column()),
            )
            .hint(e.to_string()),
        )
    })
}

/// Like `parse`, but an empty body counts as `{}` (for calls whose body is optional).
pub fn parse_optional(bytes: &Bytes) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) { Ok(Value::Object(Default::default())) } else { parse(bytes) }
}

trait Classify {
    fn classify_word(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_word(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Syntax => "a syntax error",
            serde_json::error::Category::Eof => "the body ending early",
            serde_json::error::Category::Data => "an unexpected value",
            serde_json::error::Category::Io => "an unreadable body",
        }
    }
}
