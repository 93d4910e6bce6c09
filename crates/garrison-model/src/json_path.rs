//! A small reader over `serde_json::Value` that records precise field errors as it goes,
//! so one pass over a body reports every problem with its path.

use crate::error::{FieldError, ValidationError, describe};
use serde_json::{Map, Value};

pub struct Reader<'a> {
    pub errors: &'a mut ValidationError,
}

pub fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_string() } else { format!("{parent}.{key}") }
}

pub fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

impl Reader<'_> {
    pub fn fail(&mut self, e: FieldError) {
        self.errors.push(e);
    }

    pub fn object<'v>(&mut self, path: &str, v: &'v Value) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            other => {
                self.fail(FieldError::new(path, "a JSON object", describe(other)));
                None
            }
        }
    }

    pub fn string(&mut self, path: &str, v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            other => {
                self.fail(FieldError::new(path, "a string", describe(other)));
                None
            }
        }
    }

    pub fn boolean(&mut self, path: &str, v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            // alcli and form-ish clients sometimes send "true"/"false" strings.
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            other => {
                self.fail(FieldError::new(path, "a boolean (true or false)", describe(other)));
                None
            }
        }
    }

    pub fn array<'v>(&mut self, path: &str, v: &'v Value) -> Option<&'v Vec<Value>> {
        match v {
            Value::Array(a) => Some(a),
            other => {
                self.fail(FieldError::new(path, "a JSON array", describe(other)));
                None
            }
        }
    }

    /// Rejects keys outside `allowed`, naming the allowed ones.
    pub fn known_keys(&mut self, path: &str, m: &Map<String, Value>, allowed: &[&str]) {
        for k in m.keys() {
            if !allowed.contains(&k.as_str()) {
                let field = join(path, k);
                self.fail(
                    FieldError::new(
                        field,
                        format!("one of the fields [{}]", allowed.join(", ")),
                        format!("unknown field {k:?}"),
                    )
                    .hint("check the spelling; unknown fields are refused rather than ignored"),
                );
            }
        }
    }
}
