//! Turning a CLI flag's text into a JSON value of the kind the operation expects, with
//! errors that say where the text goes wrong and how to fix it. `file://` values are read first.

use crate::ops::{Kind, Param};
use serde_json::{Map, Value};

#[derive(Debug, PartialEq)]
pub struct ArgError(pub String);

impl std::fmt::Display for ArgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads `file://relative` or `file:///absolute` values; others pass through.
pub fn load(param: &str, raw: &str) -> Result<String, ArgError> {
    match raw.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path)
            .map(|s| s.trim_end_matches('\n').to_string())
            .map_err(|e| ArgError(format!("--{param}: cannot read {path:?}: {e}"))),
        None => Ok(raw.to_string()),
    }
}

fn pointer(text: &str, line: usize, column: usize) -> String {
    let l = text.lines().nth(line.saturating_sub(1)).unwrap_or("");
    let start = column.saturating_sub(40);
    let shown: String = l.chars().skip(start).take(80).collect();
    let caret = " ".repeat(column.saturating_sub(start).saturating_sub(1));
    format!("    {shown}\n    {caret}^ here")
}

fn json_error(param: &str, expected: &str, text: &str, e: &serde_json::Error, hint: &str) -> ArgError {
    ArgError(format!(
        "--{param}: expected {expected}; found invalid JSON: {e}\n{}\n  hint: {hint}",
        pointer(text, e.line(), e.column())
    ))
}

fn kind_word(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `k1=v1,k2=v2` shorthand for objects, as alcli accepts.
fn shorthand(text: &str) -> Option<Value> {
    if text.contains(['{', '[', '"']) || !text.contains('=') {
        return None;
    }
    let mut m = Map::new();
    for pair in text.split(',') {
        let (k, v) = pair.split_once('=')?;
        if k.trim().is_empty() {
            return None;
        }
        m.insert(k.trim().to_string(), Value::String(v.trim().to_string()));
    }
    Some(Value::Object(m))
}

pub fn convert(p: &Param, raw: &str) -> Result<Value, ArgError> {
    let text = load(p.name, raw)?;
    let name = p.name;
    match p.kind {
        Kind::String => Ok(Value::String(text)),
        Kind::Integer => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| ArgError(format!("--{name}: expected a whole number, found {text:?}"))),
        Kind::Boolean => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "n" | "0" => Ok(Value::Bool(false)),
            _ => Err(ArgError(format!("--{name}: expected true or false, found {text:?}"))),
        },
        Kind::Object => {
            if let Some(v) = shorthand(&text) {
                return Ok(v);
            }
            let v: Value = serde_json::from_str(&text).map_err(|e| {
                json_error(name, "a JSON object", &text, &e, "quote keys and strings with double quotes, and wrap the whole value in single quotes for the shell")
            })?;
            if v.is_object() {
                Ok(v)
            } else {
                Err(ArgError(format!("--{name}: expected a JSON object {{…}}, found {}", kind_word(&v))))
            }
        }
        Kind::Array => {
            let v: Value = serde_json::from_str(&text).map_err(|e| {
                json_error(name, "a JSON array", &text, &e, "an array looks like '[{\"key\": \"value\"}]'")
            })?;
            match v {
                Value::Array(_) => Ok(v),
                Value::Object(_) => Err(ArgError(format!(
                    "--{name}: expected a JSON array […], found a single object\n  hint: wrap it in brackets: --{name} '[{}]'",
                    text.trim()
                ))),
                other => Err(ArgError(format!("--{name}: expected a JSON array […], found {}", kind_word(&other)))),
            }
        }
        Kind::Json => serde_json::from_str(&text).map_err(|e| json_error(name, "JSON", &text, &e, "check quoting")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::In;

    fn param(name: &'static str, kind: Kind) -> Param {
        Param { name, kind, location: In::Body, required: false, help: "" }
    }

    #[test]
    fn reference_scope_sample_error_points_at_the_problem() {
        // The reference sample's --scope is not valid JSON (unquoted key).
        let e =
            convert(&param("scope", Kind::Object), "{\"include\": [{\"type\": \"region\", key: \"/aws/us-east-1\"}]}")
                .unwrap_err();
        assert!(
            e.0.starts_with(
                "--scope: expected a JSON object; found invalid JSON: key must be a string at line 1 column"
            ),
            "{}",
            e.0
        );
        assert!(e.0.contains("^ here") && e.0.contains("hint:"));
    }

    #[test]
    fn credentials_object_instead_of_array() {
        let e = convert(&param("credentials", Kind::Array), "{\"id\": \"X\", \"purpose\": \"discover\"}").unwrap_err();
        assert!(e.0.contains("found a single object"));
        assert!(e.0.contains("--credentials '[{\"id\": \"X\", \"purpose\": \"discover\"}]'"));
    }

    #[test]
    fn scalars_and_shorthand() {
        assert_eq!(convert(&param("v", Kind::Integer), "3").unwrap(), Value::from(3));
        assert!(convert(&param("v", Kind::Integer), "three").is_err());
        assert_eq!(convert(&param("b", Kind::Boolean), "Yes").unwrap(), Value::Bool(true));
        assert!(convert(&param("b", Kind::Boolean), "maybe").is_err());
        assert_eq!(
            convert(&param("platform", Kind::Object), "type=aws,id=123412341234").unwrap(),
            serde_json::json!({"type": "aws", "id": "123412341234"})
        );
    }

    #[test]
    fn file_values() {
        let dir = std::env::temp_dir().join(format!("garrison-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("scope.json");
        std::fs::write(&f, "{\"include\": []}\n").unwrap();
        let v = convert(&param("scope", Kind::Object), &format!("file://{}", f.display())).unwrap();
        assert_eq!(v, serde_json::json!({"include": []}));
        assert!(
            convert(&param("scope", Kind::Object), "file:///nonexistent/x.json").unwrap_err().0.contains("cannot read")
        );
    }
}
