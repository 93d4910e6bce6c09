use serde::Serialize;

/// One precise complaint about one input field: where, what was expected, what was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Path of the offending value, e.g. `scope.include[0].key`.
    pub field: String,
    pub expected: String,
    pub found: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, expected: impl Into<String>, found: impl Into<String>) -> Self {
        Self { field: field.into(), expected: expected.into(), found: found.into(), hint: None }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: expected {}, found {}", self.field, self.expected, self.found)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

/// All the field errors of one input, in the order they were found.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
pub struct ValidationError {
    pub errors: Vec<FieldError>,
}

impl std::fmt::Display for ValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.errors.iter().map(|e| e.to_string()).collect();
        f.write_str(&parts.join("; "))
    }
}

impl ValidationError {
    pub fn one(e: FieldError) -> Self {
        Self { errors: vec![e] }
    }

    pub fn push(&mut self, e: FieldError) {
        self.errors.push(e);
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn into_result<T>(self, ok: T) -> Result<T, ValidationError> {
        if self.errors.is_empty() { Ok(ok) } else { Err(self) }
    }
}

/// A short description of a JSON value for "found …" messages; never echoes long input whole.
pub fn describe(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {}", clip(&serde_json::to_string(s).unwrap_or_default(), 80)),
        Value::Array(a) => format!("an array of {} item(s)", a.len()),
        Value::Object(o) => {
            let keys: Vec<&str> = o.keys().map(|k| k.as_str()).take(6).collect();
            format!("an object with keys [{}]", keys.join(", "))
        }
    }
}

/// `s` cut to at most `max` characters (ending in "..." when cut), for echoing input or
/// foreign messages back without letting them grow an answer or a status.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() > max {
        let head: String = s.chars().take(max.saturating_sub(3)).collect();
        format!("{head}...")
    } else {
        s.to_string()
    }
}
