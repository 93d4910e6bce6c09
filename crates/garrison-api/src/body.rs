//! JSON bodies parsed by hand so a syntax error is reported with its line and column
//! instead of a bare 400/422, and a key given twice in one object is refused (with
//! "last wins" a reviewer of a request could read one value and garrison apply another).

use axum::body::Bytes;
use garrison_model::FieldError;
use serde_json::Value;

use crate::error::ApiError;

pub fn parse(bytes: &Bytes) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::field(FieldError::new("body", "a JSON body", "an empty body")));
    }
    serde_json::from_slice::<Strict>(bytes).map(|s| s.0).map_err(|e| {
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

/// A JSON value whose objects have no key twice.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("the key {key:?} given twice in one object")));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_key_twice_is_refused_and_named() {
        let Err(ApiError::Invalid(e)) = parse(&Bytes::from_static(br#"{"name": "a", "scope": {"x": 1, "x": 2}}"#))
        else {
            panic!("a repeated key was accepted")
        };
        assert_eq!(e.errors[0].field, "body");
        let why = e.errors[0].hint.clone().unwrap_or_default();
        assert!(why.contains("given twice") && why.contains(r#""x""#), "{why}");
        assert!(parse(&Bytes::from_static(br#"{"a": {"x": 1}, "b": {"x": 2}}"#)).is_ok());
    }

    proptest! {
        // Whatever serde_json reads as a value without repeated keys reads the same here.
        #[test]
        fn strict_reads_what_serde_json_reads(v in any_json()) {
            let bytes = serde_json::to_vec(&v).unwrap();
            prop_assert_eq!(parse(&Bytes::from(bytes)).unwrap(), v);
        }
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[ -~]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
