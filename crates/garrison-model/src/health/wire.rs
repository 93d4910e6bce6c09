//! The appliance channel's messages: what `garrison appliance run` sends (registration,
//! heartbeats) and what it is told (its credential once, its configuration). Parsed strictly:
//! an appliance is a machine in a customer's account, and what it says is input like any other.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Work;
use crate::error::{FieldError, ValidationError};

/// The longest string field an appliance may send (instance ids, versions, tokens).
const MAX_TEXT: usize = 256;

/// First boot: the bootstrap token from the user data. After a restart: no token, the
/// credential it was given in `Authorization` instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Register {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// What EC2 calls the instance (its metadata service says it).
    pub instance_id: String,
    /// `ids` or `scan`.
    pub role: String,
    pub version: String,
}

/// The answer to a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Registered {
    pub appliance_id: String,
    /// Only on the first registration: the appliance keeps it (its state directory, 0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    pub config: Config,
}

/// What an appliance is told to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Config {
    pub appliance_id: String,
    pub deployment_id: String,
    /// The appliance's key in the protection plan, e.g. `us-east-1/vpc-1/ids`.
    pub key: String,
    pub role: String,
    pub heartbeat_interval_s: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Heartbeat {
    pub version: String,
    pub uptime_s: u64,
    /// For IDS the sensor's packet and alert counters; for scan the last scan.
    #[schema(value_type = Object)]
    pub work: Work,
}

fn text(body: &Value, field: &str, required: bool, errors: &mut ValidationError) -> Option<String> {
    match body.get(field) {
        None | Some(Value::Null) if !required => None,
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_TEXT && !s.chars().any(char::is_control) => {
            Some(s.clone())
        }
        other => {
            errors.push(FieldError::new(
                field,
                format!("a string of 1 to {MAX_TEXT} printable characters"),
                found(other),
            ));
            None
        }
    }
}

fn found(v: Option<&Value>) -> String {
    match v {
        None => "nothing".into(),
        Some(Value::String(s)) if s.len() > MAX_TEXT => format!("a string of {} characters", s.len()),
        Some(v) => {
            let s = v.to_string();
            if s.len() > 60 { format!("{}…", &s[..s.floor_char_boundary(60)]) } else { s }
        }
    }
}

/// Whether `body` (at `at`: "" for the body itself) is an object of `allowed` keys only.
fn only(body: &Value, at: &str, allowed: &[&str], errors: &mut ValidationError) -> bool {
    let Some(map) = body.as_object() else {
        errors.push(FieldError::new(if at.is_empty() { "body" } else { at }, "a JSON object", found(Some(body))));
        return false;
    };
    for k in map.keys().filter(|k| !allowed.contains(&k.as_str())) {
        let field = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
        errors.push(FieldError::new(field, format!("one of {}", allowed.join(", ")), "an unknown field"));
    }
    true
}

pub fn parse_register(body: &Value) -> Result<Register, ValidationError> {
    let mut errors = ValidationError::default();
    if !only(body, "", &["token", "instance_id", "role", "version"], &mut errors) {
        return Err(errors);
    }
    let token = text(body, "token", false, &mut errors);
    let instance_id = text(body, "instance_id", true, &mut errors);
    if let Some(id) = &instance_id
        && !(id.starts_with("i-") && id.len() > 2 && id[2..].chars().all(|c| c.is_ascii_hexdigit()))
    {
        errors.push(FieldError::new(
            "instance_id",
            "an EC2 instance id (i- and hex digits)",
            found(Some(&body["instance_id"])),
        ));
    }
    let role = text(body, "role", true, &mut errors);
    if let Some(r) = &role
        && r != "ids"
        && r != "scan"
    {
        errors.push(FieldError::new("role", "ids or scan", found(Some(&body["role"]))));
    }
    let version = text(body, "version", true, &mut errors);
    match (instance_id, role, version) {
        (Some(instance_id), Some(role), Some(version)) if errors.is_empty() => {
            Ok(Register { token, instance_id, role, version })
        }
        _ => Err(errors),
    }
}

fn count(v: &Value, field: &str, errors: &mut ValidationError) -> Option<u64> {
    match v.as_u64() {
        Some(n) => Some(n),
        None => {
            errors.push(FieldError::new(field, "a whole number ≥ 0", found(Some(v))));
            None
        }
    }
}

pub fn parse_heartbeat(body: &Value) -> Result<Heartbeat, ValidationError> {
    let mut errors = ValidationError::default();
    if !only(body, "", &["version", "uptime_s", "work"], &mut errors) {
        return Err(errors);
    }
    let version = text(body, "version", true, &mut errors);
    let uptime = count(body.get("uptime_s").unwrap_or(&Value::Null), "uptime_s", &mut errors);
    let work = match body.get("work") {
        Some(w) if w.get("role") == Some(&Value::from("ids")) => {
            let mut ok = only(w, "work", &["role", "packets", "alerts"], &mut errors);
            let packets = count(w.get("packets").unwrap_or(&Value::Null), "work.packets", &mut errors);
            let alerts = count(w.get("alerts").unwrap_or(&Value::Null), "work.alerts", &mut errors);
            ok &= packets.is_some() && alerts.is_some();
            ok.then(|| Work::Ids { packets: packets.unwrap_or(0), alerts: alerts.unwrap_or(0) })
        }
        Some(w) if w.get("role") == Some(&Value::from("scan")) => {
            only(w, "work", &["role", "last_scan_ms"], &mut errors);
            match w.get("last_scan_ms") {
                None | Some(Value::Null) => Some(Work::Scan { last_scan_ms: None }),
                Some(v) => match v.as_i64().filter(|n| *n >= 0) {
                    Some(n) => Some(Work::Scan { last_scan_ms: Some(n) }),
                    None => {
                        errors.push(FieldError::new(
                            "work.last_scan_ms",
                            "milliseconds since 1970, or null",
                            found(Some(v)),
                        ));
                        None
                    }
                },
            }
        }
        other => {
            errors.push(FieldError::new(
                "work.role",
                "ids (with packets and alerts) or scan (with last_scan_ms)",
                found(other.map(|w| w.get("role").unwrap_or(&Value::Null))),
            ));
            None
        }
    };
    match (version, uptime, work) {
        (Some(version), Some(uptime_s), Some(work)) if errors.is_empty() => Ok(Heartbeat { version, uptime_s, work }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_registration_and_a_heartbeat_are_read_and_bad_fields_named() {
        let r = parse_register(&json!({"token": "gbt_x", "instance_id": "i-0abc", "role": "ids", "version": "0.1.0"}))
            .unwrap();
        assert_eq!((r.token.as_deref(), r.role.as_str()), (Some("gbt_x"), "ids"));
        let r = parse_register(&json!({"instance_id": "i-0abc", "role": "scan", "version": "0.1.0"})).unwrap();
        assert_eq!(r.token, None, "a restart registers without a token");
        let e = parse_register(&json!({"instance_id": "x", "role": "web", "extra": 1})).unwrap_err();
        let fields: Vec<&str> = e.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["extra", "instance_id", "role", "version"], "{e}");
        let h = parse_heartbeat(
            &json!({"version": "1", "uptime_s": 5, "work": {"role": "ids", "packets": 3, "alerts": 0}}),
        )
        .unwrap();
        assert_eq!(h.work, Work::Ids { packets: 3, alerts: 0 });
        let h =
            parse_heartbeat(&json!({"version": "1", "uptime_s": 5, "work": {"role": "scan", "last_scan_ms": null}}))
                .unwrap();
        assert_eq!(h.work, Work::Scan { last_scan_ms: None });
        let e = parse_heartbeat(&json!({"version": "1", "uptime_s": -1, "work": {"role": "ids", "packets": "many"}}))
            .unwrap_err();
        let fields: Vec<&str> = e.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["uptime_s", "work.packets", "work.alerts"], "{e}");
        let e = parse_heartbeat(&json!({"version": "1", "uptime_s": 1, "work": {"role": "dns"}})).unwrap_err();
        assert_eq!(e.errors[0].field, "work.role");
        let e = parse_heartbeat(&json!({"version": "1", "uptime_s": 1, "work": {"role": "scan", "packets": 1}}))
            .unwrap_err();
        assert_eq!(e.errors[0].field, "work.packets", "a nested field is named by its path");
        assert!(parse_register(&json!([1])).is_err());
        let long = "i-".to_string() + &"a".repeat(300);
        let e = parse_register(&json!({"instance_id": long, "role": "ids", "version": "1"})).unwrap_err();
        assert_eq!(e.errors[0].found, "a string of 302 characters");
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-z0-9_\\-]{0,12}".prop_map(Value::from),
            Just(Value::from("ids")),
            Just(Value::from("scan")),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("token".to_string()),
                        Just("instance_id".to_string()),
                        Just("role".to_string()),
                        Just("version".to_string()),
                        Just("uptime_s".to_string()),
                        Just("work".to_string()),
                        Just("packets".to_string()),
                        Just("alerts".to_string()),
                        Just("last_scan_ms".to_string()),
                        "[a-z]{1,6}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any body is answered: parsed, or refused with at least one named field.
        #[test]
        fn any_body_is_read_or_refused_with_a_field(v in any_json()) {
            if let Err(e) = parse_register(&v) { prop_assert!(!e.errors.is_empty()); }
            if let Err(e) = parse_heartbeat(&v) { prop_assert!(!e.errors.is_empty()); }
        }
    }
}
