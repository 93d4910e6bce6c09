//! Tuning options (the otis v3 service): named values scoped to the account, a deployment,
//! a region or a VPC. An option's id is derived from its name and scope (one value per
//! name and scope); a consumer resolves, for a target scope, the most specific value that
//! does not ask for a narrower scope than the target (`resolve`).

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{FieldError, ValidationError, describe};
use crate::scope::{AssetKey, is_region};

/// Where an option applies; no property: the whole account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OptionScope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_key: Option<String>,
}

impl OptionScope {
    fn props(&self) -> [(&'static str, Option<&String>); 3] {
        [
            ("deployment_id", self.deployment_id.as_ref()),
            ("region_key", self.region_key.as_ref()),
            ("vpc_key", self.vpc_key.as_ref()),
        ]
    }

    /// How well an option of this scope fits `target`: `None` when it names a property the
    /// target lacks or names differently (a narrower or another scope), else its rank —
    /// the number of properties it matches, a VPC beating a region at equal count.
    pub fn fit(&self, target: &OptionScope) -> Option<(usize, bool)> {
        let mut n = 0;
        for ((_, mine), (_, theirs)) in self.props().into_iter().zip(target.props()) {
            match (mine, theirs) {
                (None, _) => {}
                (Some(a), Some(b)) if a == b => n += 1,
                _ => return None,
            }
        }
        Some((n, self.vpc_key.is_some()))
    }
}

/// A stored option.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TuningOption {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub scope: OptionScope,
    #[schema(value_type = Object)]
    pub value: Value,
}

/// The id of `name` at `scope`: a UUID-shaped digest of both (the reference derives ids the
/// same way, so one name and scope has one value).
pub fn option_id(name: &str, scope: &OptionScope) -> String {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    for (k, v) in scope.props() {
        h.update([0]);
        h.update(k.as_bytes());
        h.update([1]);
        h.update(v.map_or("", |s| s.as_str()).as_bytes());
    }
    let d = h.finalize();
    let x: String = d.iter().take(16).map(|b| format!("{b:02X}")).collect();
    format!("{}-{}-{}-{}-{}", &x[0..8], &x[8..12], &x[12..16], &x[16..20], &x[20..32])
}

/// The value for `target` among `options` (all of one name): the best fit, if any.
pub fn resolve<'a>(
    options: impl IntoIterator<Item = &'a TuningOption>,
    target: &OptionScope,
) -> Option<&'a TuningOption> {
    options
        .into_iter()
        .filter_map(|o| o.scope.fit(target).map(|rank| (rank, o)))
        .max_by_key(|(rank, _)| *rank)
        .map(|(_, o)| o)
}

/// What garrison does with an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The planner reads it.
    Applied,
    /// Accepted and stored; the reason garrison does not act on it.
    NotApplied(&'static str),
}

/// Every option the reference lists, with what garrison does with it.
pub const OPTIONS: &[(&str, Effect)] = &[
    ("abs_follow_internal_scan_schedules", Effect::NotApplied("garrison runs no agents")),
    ("agent_assisted_decryption", Effect::NotApplied("garrison runs no agents")),
    ("cross_network_protection", Effect::Applied),
    ("custom_routing", Effect::NotApplied("garrison's appliances use the VPC's own routing")),
    (
        "discovery_scan_frequency",
        Effect::NotApplied("discovery is garrison's own (every resync and every event), not scanner jobs"),
    ),
    ("external_scan_frequency", Effect::NotApplied("garrison runs no external scans")),
    ("ids_appliance_instance_type", Effect::Applied),
    ("ids_appliance_instance_type_test", Effect::Applied),
    ("ids_appliances_placement", Effect::Applied),
    ("ids_appliances_scaling", Effect::Applied),
    ("ids_security_resource_tags", Effect::Applied),
    (
        "max_discovery_scan_jobs",
        Effect::NotApplied("scan jobs run inside the appliance, which garrison does not configure"),
    ),
    (
        "max_vulnerability_scan_jobs",
        Effect::NotApplied("scan jobs run inside the appliance, which garrison does not configure"),
    ),
    ("no_stats_interval_hours", Effect::NotApplied("garrison does not collect appliance statistics yet")),
    ("predefined_security_subnet", Effect::Applied),
    ("prohibit_cross_az_connection", Effect::NotApplied("garrison runs no agents")),
    ("scan_appliance_instance_type", Effect::Applied),
    ("scan_appliances_scaling", Effect::Applied),
    ("scan_security_resource_tags", Effect::Applied),
    ("scan_security_subnet_cidr_block", Effect::Applied),
    ("security_resource_tags", Effect::Applied),
    // AWS's span port is VPC Traffic Mirroring: the protected instances' interfaces are
    // mirrored to the IDS appliances (instead of agents forwarding their traffic).
    ("span_port_enabled", Effect::Applied),
    ("vulnerability_scan_frequency", Effect::Applied),
];

pub fn effect(name: &str) -> Option<Effect> {
    OPTIONS.iter().find(|(n, _)| *n == name).map(|(_, e)| *e)
}

/// The option as the API shows it: what is stored, and whether garrison acts on it.
pub fn shown(o: &TuningOption) -> Value {
    let mut v = serde_json::to_value(o).unwrap_or_default();
    match effect(&o.name) {
        Some(Effect::Applied) => v["applied"] = Value::Bool(true),
        Some(Effect::NotApplied(why)) => {
            v["applied"] = Value::Bool(false);
            v["not_applied_reason"] = Value::String(why.into());
        }
        None => {}
    }
    v
}

const IDS_TYPES: &[&str] = &[
    "t3.medium",
    "t3.large",
    "t3.xlarge",
    "t3.2xlarge",
    "m4.large",
    "m4.xlarge",
    "m4.2xlarge",
    "m4.4xlarge",
    "m4.10xlarge",
    "m4.16xlarge",
    "m5.large",
    "m5.xlarge",
    "m5.2xlarge",
    "m5.4xlarge",
    "m5.12xlarge",
    "m5.24xlarge",
    "c4.large",
    "c4.xlarge",
    "c4.2xlarge",
    "c4.4xlarge",
    "c4.8xlarge",
    "c5.large",
    "c5.xlarge",
    "c5.2xlarge",
    "c5.4xlarge",
    "c5.9xlarge",
    "c5.18xlarge",
];
const SCAN_TYPES: &[&str] = &[
    "m3.medium",
    "t3.medium",
    "t3.large",
    "c4.large",
    "c5.large",
    "c5.xlarge",
    "c6a.large",
    "c6i.large",
    "c6i.xlarge",
];
const FREQUENCIES: &[&str] = &["automatic", "daily", "weekly", "monthly"];
const MAX_TAGS: usize = 30;

static ZONE_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^/aws/([a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2})/zone/([a-z0-9-]{1,32})$").unwrap()
});
static INSTANCE_TYPE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9-]{0,15}\.[a-z0-9]{1,16}$").unwrap());

const FIELDS: [&str; 3] = ["name", "scope", "value"];

/// Parses a create or update body into an option (id derived); every bad field named.
pub fn parse(body: &Value) -> Result<TuningOption, ValidationError> {
    let mut errors = ValidationError::default();
    let Some(o) = body.as_object() else {
        return Err(ValidationError::one(FieldError::new(
            "body",
            "a JSON object {name, scope, value}",
            describe(body),
        )));
    };
    for k in o.keys() {
        if !FIELDS.contains(&k.as_str()) && k != "id" {
            errors.push(FieldError::new(k.clone(), "one of the fields name, scope, value", "an unknown field"));
        }
    }
    let name = match o.get("name") {
        Some(Value::String(n)) if effect(n).is_some() => Some(n.clone()),
        other => {
            let names: Vec<&str> = OPTIONS.iter().map(|(n, _)| *n).collect();
            errors.push(FieldError::new(
                "name",
                format!("one of the options [{}]", names.join(", ")),
                other.map_or("nothing".into(), describe),
            ));
            None
        }
    };
    let scope = scope(o.get("scope"), &mut errors);
    let value = match o.get("value") {
        None => {
            errors.push(FieldError::new("value", "the option's value", "nothing"));
            None
        }
        Some(v) => Some(v.clone()),
    };
    if let (Some(name), Some(scope), Some(value)) = (&name, &scope, &value) {
        for e in check_value(name, scope, value) {
            errors.push(e);
        }
    }
    match (name, scope, value) {
        (Some(name), Some(scope), Some(value)) if errors.is_empty() => {
            Ok(TuningOption { id: option_id(&name, &scope), name, scope, value })
        }
        _ => Err(errors),
    }
}

fn scope(v: Option<&Value>, errors: &mut ValidationError) -> Option<OptionScope> {
    let m = match v {
        None | Some(Value::Null) => return Some(OptionScope::default()),
        Some(Value::Object(m)) => m,
        Some(other) => {
            errors.push(FieldError::new("scope", "an object {deployment_id?, region_key?, vpc_key?}", describe(other)));
            return None;
        }
    };
    let before = errors.errors.len();
    for k in m.keys() {
        if !["deployment_id", "region_key", "vpc_key"].contains(&k.as_str()) {
            errors.push(FieldError::new(
                format!("scope.{k}"),
                "one of deployment_id, region_key, vpc_key",
                "an unknown property",
            ));
        }
    }
    let text = |errors: &mut ValidationError, k: &str, what: &str, ok: &dyn Fn(&str) -> bool| match m.get(k) {
        None => None,
        Some(Value::String(s)) if ok(s) => Some(s.clone()),
        Some(other) => {
            errors.push(FieldError::new(format!("scope.{k}"), what, describe(other)));
            None
        }
    };
    let s = OptionScope {
        deployment_id: text(errors, "deployment_id", "a deployment id", &|s| !s.is_empty() && s.len() <= 64),
        region_key: text(errors, "region_key", "/aws/<region>, e.g. /aws/us-east-1", &|s| {
            s.strip_prefix("/aws/").is_some_and(is_region)
        }),
        vpc_key: text(errors, "vpc_key", "/aws/<region>/vpc/<vpc-id>, e.g. /aws/us-east-1/vpc/vpc-0a1b2c3d", &|s| {
            matches!(AssetKey::parse(s), Some(AssetKey::Vpc { .. }))
        }),
    };
    if (s.region_key.is_some() || s.vpc_key.is_some()) && s.deployment_id.is_none() && errors.errors.len() == before {
        errors.push(FieldError::new(
            "scope.deployment_id",
            "a deployment id (a region or VPC is a deployment's)",
            "nothing",
        ));
    }
    if let (Some(r), Some(v)) = (&s.region_key, &s.vpc_key)
        && !v.starts_with(&format!("{r}/"))
    {
        errors.push(FieldError::new(
            "scope.vpc_key",
            format!("a VPC of {r} (the scope's region_key)"),
            format!("{v:?}"),
        ));
    }
    (errors.errors.len() == before).then_some(s)
}

fn bad(field: &str, expected: impl Into<String>, v: &Value) -> FieldError {
    FieldError::new(field, expected, describe(v))
}

fn object_of<'a>(v: &'a Value, out: &mut Vec<FieldError>, what: &str) -> Option<&'a Map<String, Value>> {
    match v.as_object() {
        Some(m) => Some(m),
        None => {
            out.push(bad("value", what, v));
            None
        }
    }
}

fn known_keys(m: &Map<String, Value>, allowed: &[&str], out: &mut Vec<FieldError>) {
    for k in m.keys() {
        if !allowed.contains(&k.as_str()) {
            out.push(FieldError::new(
                format!("value.{k}"),
                format!("one of [{}]", allowed.join(", ")),
                "an unknown property",
            ));
        }
    }
}

fn count(
    m: &Map<String, Value>,
    k: &str,
    range: std::ops::RangeInclusive<u64>,
    out: &mut Vec<FieldError>,
) -> Option<u64> {
    let v = m.get(k)?;
    match v.as_u64().filter(|n| range.contains(n)) {
        Some(n) => Some(n),
        None => {
            out.push(bad(&format!("value.{k}"), format!("an integer from {} to {}", range.start(), range.end()), v));
            None
        }
    }
}

fn zone_keys(m: &Map<String, Value>, required: bool, out: &mut Vec<FieldError>) {
    match m.get("zone_keys") {
        None if !required => {}
        Some(Value::Array(a)) if !a.is_empty() && a.len() <= 32 => {
            for (i, z) in a.iter().enumerate() {
                if !z.as_str().is_some_and(|s| ZONE_KEY.is_match(s)) {
                    out.push(bad(
                        &format!("value.zone_keys[{i}]"),
                        "/aws/<region>/zone/<zone>, e.g. /aws/us-east-1/zone/us-east-1a",
                        z,
                    ));
                }
            }
        }
        other => out.push(FieldError::new(
            "value.zone_keys",
            "an array of 1 to 32 zone keys (/aws/<region>/zone/<zone>)",
            other.map_or("nothing".into(), describe),
        )),
    }
}

fn policy<'a>(m: &'a Map<String, Value>, out: &mut Vec<FieldError>) -> Option<&'a str> {
    match m.get("policy").and_then(Value::as_str) {
        Some(p @ ("automatic" | "constant")) => Some(p),
        _ => {
            out.push(FieldError::new(
                "value.policy",
                "automatic or constant",
                m.get("policy").map_or("nothing".into(), describe),
            ));
            None
        }
    }
}

fn tags(v: &Value, out: &mut Vec<FieldError>) {
    let Some(a) = v.as_array().filter(|a| a.len() <= MAX_TAGS) else {
        out.push(bad("value", "an array of at most 30 {key, value} tags", v));
        return;
    };
    let mut seen = std::collections::HashSet::new();
    for (i, t) in a.iter().enumerate() {
        let key = t.get("key").and_then(Value::as_str);
        let value = t.get("value").and_then(Value::as_str);
        let keys_ok = t.as_object().is_some_and(|m| m.keys().all(|k| k == "key" || k == "value"));
        match (key, value) {
            (Some(k), Some(val))
                if keys_ok && !k.is_empty() && k.chars().count() <= 128 && val.chars().count() <= 256 =>
            {
                let lower = k.to_ascii_lowercase();
                if lower.starts_with("alertlogic") || lower.starts_with("garrison") || lower.starts_with("aws:") {
                    out.push(FieldError::new(
                        format!("value[{i}].key"),
                        "a key not starting with AlertLogic, garrison or aws: (reserved)",
                        format!("{k:?}"),
                    ));
                } else if !seen.insert(k.to_string()) {
                    out.push(FieldError::new(
                        format!("value[{i}].key"),
                        "keys that are unique",
                        format!("{k:?} again"),
                    ));
                }
            }
            _ => out.push(bad(&format!("value[{i}]"), "{\"key\": 1 to 128 characters, \"value\": at most 256}", t)),
        }
    }
}

/// What is wrong with `value` (and `scope`) for option `name`.
pub fn check_value(name: &str, scope: &OptionScope, v: &Value) -> Vec<FieldError> {
    let mut out = vec![];
    let needs_vpc = |out: &mut Vec<FieldError>| {
        if scope.vpc_key.is_none() {
            out.push(FieldError::new("scope.vpc_key", format!("a VPC: {name} applies to one VPC"), "nothing"));
        }
    };
    // Options whose value is one check.
    let simple: Option<(bool, String)> = match name {
        "abs_follow_internal_scan_schedules"
        | "agent_assisted_decryption"
        | "custom_routing"
        | "prohibit_cross_az_connection"
        | "span_port_enabled" => Some((v.is_boolean(), "true or false".into())),
        "discovery_scan_frequency" => Some((
            v.as_str() == Some("automatic")
                || v.as_u64().is_some_and(|n| (1..=4).contains(&n))
                || v.as_str().is_some_and(|s| ["1", "2", "3", "4"].contains(&s)),
            "automatic or 1 to 4 (scans a day)".into(),
        )),
        "external_scan_frequency" | "vulnerability_scan_frequency" => Some((
            v.as_str().is_some_and(|s| FREQUENCIES.contains(&s)),
            "one of automatic, daily, weekly, monthly".into(),
        )),
        "ids_appliance_instance_type" => Some((
            v.as_str().is_some_and(|s| IDS_TYPES.contains(&s)),
            format!("one of the IDS appliance types [{}]", IDS_TYPES.join(", ")),
        )),
        "scan_appliance_instance_type" => Some((
            v.as_str().is_some_and(|s| SCAN_TYPES.contains(&s)),
            format!("one of the scan appliance types [{}]", SCAN_TYPES.join(", ")),
        )),
        "ids_appliance_instance_type_test" => Some((
            v.as_str().is_some_and(|s| INSTANCE_TYPE.is_match(s)),
            "an EC2 instance type, e.g. c6a.xlarge".into(),
        )),
        "max_discovery_scan_jobs" | "max_vulnerability_scan_jobs" => {
            Some((v.as_u64().is_some_and(|n| (1..=100).contains(&n)), "an integer from 1 to 100".into()))
        }
        "no_stats_interval_hours" => {
            Some((v.as_u64().is_some_and(|n| (1..=24).contains(&n)), "an integer from 1 to 24 (hours)".into()))
        }
        _ => None,
    };
    if let Some((false, expected)) = simple {
        out.push(bad("value", expected, v));
    }
    match name {
        "ids_appliances_placement" => {
            if let Some(m) = object_of(v, &mut out, "{policy: automatic, max_zones?} or {policy, zone_keys}") {
                known_keys(m, &["policy", "max_zones", "zone_keys"], &mut out);
                match policy(m, &mut out) {
                    Some("automatic") => {
                        count(m, "max_zones", 1..=32, &mut out);
                        if m.contains_key("max_zones") && m.contains_key("zone_keys") {
                            out.push(FieldError::new("value.zone_keys", "max_zones or zone_keys, not both", "both"));
                        }
                        zone_keys(m, false, &mut out);
                    }
                    Some(_) => {
                        if m.contains_key("max_zones") {
                            out.push(FieldError::new(
                                "value.max_zones",
                                "nothing: a constant placement names its zones",
                                "max_zones",
                            ));
                        }
                        zone_keys(m, true, &mut out);
                    }
                    None => {}
                }
            }
        }
        "ids_appliances_scaling" => {
            if let Some(m) = object_of(
                v,
                &mut out,
                "{policy: automatic, min_instances?, max_instances?} or {policy: constant, num_instances}",
            ) {
                match policy(m, &mut out) {
                    Some("automatic") => {
                        known_keys(m, &["policy", "min_instances", "max_instances"], &mut out);
                        let min = count(m, "min_instances", 0..=8, &mut out);
                        let max = count(m, "max_instances", 1..=8, &mut out);
                        if let (Some(a), Some(b)) = (min, max)
                            && a > b
                        {
                            out.push(FieldError::new(
                                "value.min_instances",
                                format!("at most max_instances ({b})"),
                                a.to_string(),
                            ));
                        }
                    }
                    Some(_) => {
                        known_keys(m, &["policy", "num_instances"], &mut out);
                        if count(m, "num_instances", 1..=8, &mut out).is_none() && !m.contains_key("num_instances") {
                            out.push(FieldError::new("value.num_instances", "an integer from 1 to 8", "nothing"));
                        }
                    }
                    None => {}
                }
            }
        }
        "scan_appliances_scaling" => {
            if let Some(m) = object_of(v, &mut out, "{policy: automatic} or {policy: constant, num_instances}") {
                match policy(m, &mut out) {
                    Some("automatic") => known_keys(m, &["policy"], &mut out),
                    Some(_) => {
                        known_keys(m, &["policy", "num_instances"], &mut out);
                        if count(m, "num_instances", 0..=8, &mut out).is_none() && !m.contains_key("num_instances") {
                            out.push(FieldError::new("value.num_instances", "an integer from 0 to 8", "nothing"));
                        }
                    }
                    None => {}
                }
            }
        }
        "ids_security_resource_tags" | "scan_security_resource_tags" | "security_resource_tags" => tags(v, &mut out),
        "predefined_security_subnet" => {
            needs_vpc(&mut out);
            match v.as_str().and_then(AssetKey::parse) {
                Some(AssetKey::Subnet { region, .. })
                    if scope.vpc_key.as_deref().is_none_or(|k| k.starts_with(&format!("/aws/{region}/"))) => {}
                _ => out.push(bad(
                    "value",
                    "a subnet key of the scope's region, e.g. /aws/us-east-1/subnet/subnet-0a1b2c3d",
                    v,
                )),
            }
        }
        "scan_security_subnet_cidr_block" => {
            needs_vpc(&mut out);
            let ok = v
                .as_str()
                .and_then(|s| s.parse::<crate::cidr::Ipv4Net>().ok().map(|n| (n, s)))
                .is_some_and(|(n, s)| (16..=28).contains(&n.prefix) && n.to_string() == s);
            if !ok {
                out.push(bad("value", "an IPv4 CIDR block with a /16 to /28 netmask, e.g. 10.0.1.0/28", v));
            }
        }
        "cross_network_protection" => {
            if scope.vpc_key.is_none() && scope.region_key.is_none() {
                out.push(FieldError::new(
                    "scope",
                    "a VPC or a region (the protected network)",
                    "the whole account or deployment",
                ));
            }
            if let Some(m) = object_of(v, &mut out, "{deployment_id, vpc_key}: the protecting network") {
                known_keys(m, &["deployment_id", "vpc_key"], &mut out);
                if m.get("deployment_id").and_then(Value::as_str).is_none_or(str::is_empty) {
                    out.push(FieldError::new(
                        "value.deployment_id",
                        "the protecting network's deployment id",
                        m.get("deployment_id").map_or("nothing".into(), describe),
                    ));
                }
                match m.get("vpc_key").and_then(Value::as_str).and_then(AssetKey::parse) {
                    Some(AssetKey::Vpc { .. }) => {
                        if m.get("vpc_key").and_then(Value::as_str) == scope.vpc_key.as_deref() {
                            out.push(FieldError::new(
                                "value.vpc_key",
                                "another VPC than the protected one",
                                "the scope's own VPC",
                            ));
                        }
                    }
                    _ => out.push(FieldError::new(
                        "value.vpc_key",
                        "the protecting VPC's key, /aws/<region>/vpc/<vpc-id>",
                        m.get("vpc_key").map_or("nothing".into(), describe),
                    )),
                }
            }
        }
        _ => {}
    }
    if name == "abs_follow_internal_scan_schedules"
        && (scope.region_key.is_some() || scope.vpc_key.is_some() || scope.deployment_id.is_none())
    {
        out.push(FieldError::new("scope", "{deployment_id} only (the option is a deployment's)", "another scope"));
    }
    out
}

#[cfg(test)]
mod tests;
