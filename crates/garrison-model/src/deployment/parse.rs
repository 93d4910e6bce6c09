//! A deployment request as the API takes it: every field checked, every bad one named at
//! once, unknown ones refused, read-only ones sent back from a GET accepted.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::scope_items::{check_policies, parse_scope, scope_key, scope_type};
use super::*;
use crate::error::{FieldError, ValidationError, describe};
use crate::json_path::{Reader, index, join};
use crate::scope::{ScopeType, is_region};

/// What validation needs to know about the account's other objects.
pub struct Refs<'a> {
    /// Protection policy ids that exist.
    pub policies: &'a HashSet<String>,
    /// The account's credentials: id → AWS account id of the role.
    pub credentials: &'a HashMap<String, String>,
}

/// A validated create or update request.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRequest {
    pub spec: DeploymentSpec,
    /// The version the client based its update on, when it sent one.
    pub version: Option<i64>,
}

const FIELDS: &[&str] = &[
    "name",
    "platform",
    "mode",
    "enabled",
    "discover",
    "scan",
    "scope",
    "features",
    "cloud_defender",
    "credentials",
    "version",
    "is_control_tower",
    "control_tower",
];
/// Response-only fields a client may send back unchanged in a PUT (GET, edit, PUT).
const READ_ONLY: &[&str] = &["id", "account_id", "status", "created", "modified", "event_feed"];
pub const MAX_NAME: usize = 256;

/// Validates a create (`existing == None`) or update body. An update replaces the
/// top-level fields it carries and keeps the others, so `alcli deployments
/// update_deployment --name X` renames without touching the scope.
pub fn parse_request(
    body: &Value,
    existing: Option<&Deployment>,
    refs: &Refs<'_>,
) -> Result<DeploymentRequest, ValidationError> {
    let mut errors = ValidationError::default();
    let mut r = Reader { errors: &mut errors };
    let Some(m) = r.object("body", body) else {
        return Err(errors);
    };
    let mut allowed: Vec<&str> = FIELDS.to_vec();
    if existing.is_some() {
        allowed.extend_from_slice(READ_ONLY);
    }
    r.known_keys("", m, &allowed);
    if let Some(d) = existing {
        for (k, want) in [("id", &d.id), ("account_id", &d.account_id)] {
            if let Some(v) = m.get(k)
                && v.as_str() != Some(want.as_str())
            {
                r.fail(FieldError::new(k, format!("{want:?} (it cannot be changed)"), describe(v)));
            }
        }
    }

    let name = match (m.get("name"), existing) {
        (Some(v), _) => r.string("name", v).and_then(|n| {
            if n.trim().is_empty() || n.len() > MAX_NAME {
                r.fail(FieldError::new("name", format!("1 to {MAX_NAME} characters"), describe(v)));
                None
            } else {
                Some(n)
            }
        }),
        (None, Some(d)) => Some(d.name.clone()),
        (None, None) => {
            r.fail(FieldError::new("name", "a deployment name (string)", "nothing").hint("--name \"My Deployment\""));
            None
        }
    };

    let mode = match m.get("mode") {
        Some(v) => parse_mode(&mut r, v),
        None => Some(existing.map_or(Mode::Automatic, |d| d.mode)),
    };

    let platform = match (m.get("platform"), existing) {
        (Some(v), ex) => parse_platform(&mut r, v, ex.map(|d| &d.platform)),
        (None, Some(d)) => Some(d.platform.clone()),
        (None, None) => {
            r.fail(
                FieldError::new(
                    "platform",
                    "an object {\"type\": \"aws\", \"id\": \"<12-digit AWS account id>\"}",
                    "nothing",
                )
                .hint("--platform '{\"type\": \"aws\", \"id\": \"123456789012\"}'"),
            );
            None
        }
    };

    let flag = |r: &mut Reader<'_>, k: &str, current: Option<bool>, default: bool| match m.get(k) {
        Some(v) => r.boolean(k, v),
        None => Some(current.unwrap_or(default)),
    };
    let enabled = flag(&mut r, "enabled", existing.map(|d| d.enabled), true);
    let discover = flag(&mut r, "discover", existing.map(|d| d.discover), true);
    let scan = flag(&mut r, "scan", existing.map(|d| d.scan), true);
    let is_control_tower = flag(&mut r, "is_control_tower", existing.map(|d| d.is_control_tower), false);

    let scope = match m.get("scope") {
        Some(v) => parse_scope(&mut r, v, mode.unwrap_or(Mode::Automatic), refs),
        None => {
            let s = existing.map(|d| d.scope.clone()).unwrap_or_default();
            // A mode change can make existing items lack a needed policy.
            if let Some(md) = mode {
                check_policies(&mut r, &s, md, refs);
            }
            Some(s)
        }
    };

    let credentials = match m.get("credentials") {
        Some(v) => parse_credentials(&mut r, v, refs),
        None => Some(existing.map(|d| d.credentials.clone()).unwrap_or_default()),
    };

    let features = match m.get("features") {
        Some(v) => parse_features(&mut r, v).map(Some),
        None => Some(existing.and_then(|d| d.features.clone())),
    };

    let cloud_defender = match m.get("cloud_defender") {
        Some(v) => parse_cloud_defender(&mut r, v),
        None => Some(existing.map(|d| d.cloud_defender.clone()).unwrap_or_default()),
    };

    let control_tower = match m.get("control_tower") {
        Some(v) => r.object("control_tower", v).map(|_| Some(v.clone())),
        None => Some(existing.and_then(|d| d.control_tower.clone())),
    };

    let version = match m.get("version") {
        None => None,
        Some(v) => match v.as_f64() {
            Some(f) if f.fract() == 0.0 && (0.0..1e15).contains(&f) => Some(f as i64),
            _ => {
                r.fail(FieldError::new("version", "a whole number (the version your change is based on)", describe(v)));
                None
            }
        },
    };

    // Cross-field rules, only once each part is sound.
    if let (Some(mode), Some(creds), Some(platform)) = (mode, &credentials, &platform) {
        check_credentials(&mut r, mode, creds, platform, refs);
    }

    match (
        name,
        platform,
        mode,
        enabled,
        discover,
        scan,
        scope,
        features,
        cloud_defender,
        credentials,
        is_control_tower,
        control_tower,
    ) {
        (
            Some(name),
            Some(platform),
            Some(mode),
            Some(enabled),
            Some(discover),
            Some(scan),
            Some(scope),
            Some(features),
            Some(cloud_defender),
            Some(credentials),
            Some(is_control_tower),
            Some(control_tower),
        ) if errors.is_empty() => Ok(DeploymentRequest {
            spec: DeploymentSpec {
                name,
                platform,
                mode,
                enabled,
                discover,
                scan,
                scope,
                features,
                cloud_defender,
                credentials,
                is_control_tower,
                control_tower,
                event_feed: existing.and_then(|d| d.event_feed.clone()),
            },
            version: if existing.is_some() { version } else { None },
        }),
        _ => Err(errors),
    }
}

fn parse_mode(r: &mut Reader<'_>, v: &Value) -> Option<Mode> {
    let names: Vec<&str> = Mode::ALL.iter().map(|m| m.as_str()).collect();
    match v.as_str().and_then(|s| Mode::ALL.into_iter().find(|m| m.as_str() == s)) {
        Some(m) => Some(m),
        None => {
            r.fail(FieldError::new("mode", format!("one of [{}]", names.join(", ")), describe(v)));
            None
        }
    }
}

fn parse_platform(r: &mut Reader<'_>, v: &Value, existing: Option<&Platform>) -> Option<Platform> {
    let m = r.object("platform", v)?;
    r.known_keys("platform", m, &["type", "id", "monitor"]);
    let kind = match m.get("type") {
        Some(Value::String(t)) if t == "aws" => Some("aws".to_string()),
        Some(Value::String(t)) if t == "azure" || t == "datacenter" => {
            r.fail(
                FieldError::new("platform.type", "\"aws\"", format!("{t:?}"))
                    .hint("garrison protects AWS accounts; azure and datacenter deployments are not supported"),
            );
            None
        }
        Some(other) => {
            r.fail(FieldError::new("platform.type", "\"aws\"", describe(other)));
            None
        }
        None => {
            r.fail(FieldError::new("platform.type", "\"aws\"", "nothing"));
            None
        }
    };
    let id = match m.get("id") {
        Some(Value::String(s)) if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) => Some(s.clone()),
        Some(other) => {
            r.fail(
                FieldError::new("platform.id", "a 12-digit AWS account id as a string", describe(other))
                    .hint("quote it so leading zeros survive: \"id\": \"012345678901\""),
            );
            None
        }
        None => {
            r.fail(FieldError::new("platform.id", "a 12-digit AWS account id", "nothing"));
            None
        }
    };
    if let (Some(old), Some(new)) = (existing, &id)
        && &old.id != new
    {
        r.fail(
            FieldError::new(
                "platform.id",
                format!("{:?} (the AWS account of a deployment cannot change)", old.id),
                format!("{new:?}"),
            )
            .hint("create a new deployment for another AWS account"),
        );
    }
    let monitor = match m.get("monitor") {
        None => Some(existing.map(|p| p.monitor.clone()).unwrap_or(Monitor {
            enabled: true,
            ct_install_region: Some(DEFAULT_CT_REGION.into()),
            preferred_ct_arn: None,
        })),
        Some(v) => parse_monitor(r, v),
    };
    Some(Platform { kind: kind?, id: id?, monitor: monitor? })
}

fn parse_monitor(r: &mut Reader<'_>, v: &Value) -> Option<Monitor> {
    let m = r.object("platform.monitor", v)?;
    r.known_keys("platform.monitor", m, &["enabled", "ct_install_region", "preferred_ct_arn"]);
    let enabled = match m.get("enabled") {
        Some(v) => r.boolean("platform.monitor.enabled", v)?,
        None => false,
    };
    let region = match m.get("ct_install_region") {
        None if enabled => {
            r.fail(FieldError::new(
                "platform.monitor.ct_install_region",
                "an AWS region such as \"us-east-1\" (required when monitor.enabled is true)",
                "nothing",
            ));
            return None;
        }
        None => None,
        Some(v) => match v.as_str() {
            Some(s) if is_region(s) && !crate::scope::is_known_region(s) => {
                r.fail(
                    FieldError::new(
                        "platform.monitor.ct_install_region",
                        "a region of the aws partition",
                        format!("{s:?}"),
                    )
                    .hint(format!("known regions: {}", crate::scope::AWS_REGIONS.join(", "))),
                );
                return None;
            }
            Some(s) if is_region(s) && enabled => Some(s.to_string()),
            Some(s) if is_region(s) => {
                r.fail(
                    FieldError::new(
                        "platform.monitor.ct_install_region",
                        "no value while monitor.enabled is false",
                        format!("{s:?}"),
                    )
                    .hint("set \"enabled\": true to install the audit source in that region"),
                );
                return None;
            }
            _ => {
                r.fail(FieldError::new(
                    "platform.monitor.ct_install_region",
                    "an AWS region such as \"us-east-1\"",
                    describe(v),
                ));
                return None;
            }
        },
    };
    let arn = match m.get("preferred_ct_arn") {
        None => None,
        Some(v) => match v.as_str() {
            Some(s) if s.starts_with("arn:aws") && s.contains(":cloudtrail:") && s.contains(":trail/") => {
                Some(s.to_string())
            }
            _ => {
                r.fail(FieldError::new(
                    "platform.monitor.preferred_ct_arn",
                    "a CloudTrail trail ARN, arn:aws:cloudtrail:<region>:<account>:trail/<name>",
                    describe(v),
                ));
                return None;
            }
        },
    };
    Some(Monitor { enabled, ct_install_region: region, preferred_ct_arn: arn })
}

fn parse_credentials(r: &mut Reader<'_>, v: &Value, refs: &Refs<'_>) -> Option<Vec<DeploymentCredential>> {
    let items = match v {
        Value::Array(a) => a,
        Value::Object(_) => {
            r.fail(FieldError::new("credentials", "an array of credential objects", "a single object").hint(
                "wrap it in brackets: --credentials '[{\"id\": \"<credential id>\", \"purpose\": \"discover\"}]'",
            ));
            return None;
        }
        other => {
            r.fail(FieldError::new("credentials", "an array of credential objects", describe(other)));
            return None;
        }
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, it) in items.iter().enumerate() {
        let path = index("credentials", i);
        let Some(m) = r.object(&path, it) else {
            ok = false;
            continue;
        };
        r.known_keys(&path, m, &["id", "purpose", "version"]);
        let id = match m.get("id") {
            Some(Value::String(id)) if refs.credentials.contains_key(id) => Some(id.clone()),
            Some(Value::String(id)) => {
                r.fail(
                    FieldError::new(
                        join(&path, "id"),
                        "the id of a credential of this account",
                        format!("{id:?}, which is not one"),
                    )
                    .hint(
                        "create one with: garrison credentials create_credential, or list them with list_credentials",
                    ),
                );
                None
            }
            other => {
                r.fail(FieldError::new(
                    join(&path, "id"),
                    "a credential id (string)",
                    other.map_or("nothing".into(), describe),
                ));
                None
            }
        };
        let purpose = match m.get("purpose") {
            Some(Value::String(p)) if p == "discover" => Some(Purpose::Discover),
            Some(Value::String(p)) if p == "x-account-monitor" => Some(Purpose::XAccountMonitor),
            other => {
                r.fail(FieldError::new(
                    join(&path, "purpose"),
                    "one of [discover, x-account-monitor]",
                    other.map_or("nothing".into(), describe),
                ));
                None
            }
        };
        let version = match m.get("version") {
            None => None,
            Some(Value::String(s)) if is_date(s) => Some(s.clone()),
            Some(other) => {
                r.fail(FieldError::new(join(&path, "version"), "a role version date YYYY-MM-DD", describe(other)));
                ok = false;
                None
            }
        };
        match (id, purpose) {
            (Some(id), Some(purpose)) => out.push(DeploymentCredential { id, purpose, version }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn check_credentials(
    r: &mut Reader<'_>,
    mode: Mode,
    creds: &[DeploymentCredential],
    platform: &Platform,
    refs: &Refs<'_>,
) {
    let discover: Vec<(usize, &DeploymentCredential)> =
        creds.iter().enumerate().filter(|(_, c)| c.purpose == Purpose::Discover).collect();
    if discover.len() > 1 {
        r.fail(FieldError::new(
            format!("credentials[{}].purpose", discover[1].0),
            "at most one credential with purpose discover",
            format!("{} of them", discover.len()),
        ));
    }
    if mode != Mode::None && discover.is_empty() {
        r.fail(
            FieldError::new(
                "credentials",
                format!("a credential with purpose \"discover\" (mode {} reads the AWS account)", mode.as_str()),
                if creds.is_empty() { "none".into() } else { format!("{} without purpose discover", creds.len()) },
            )
            .hint("--credentials '[{\"id\": \"<credential id>\", \"purpose\": \"discover\"}]'"),
        );
    }
    for (i, c) in discover {
        if let Some(acct) = refs.credentials.get(&c.id)
            && acct != &platform.id
        {
            r.fail(
                FieldError::new(
                    format!("credentials[{i}].id"),
                    format!("a role in the deployment's AWS account {}", platform.id),
                    format!("a role in AWS account {acct}"),
                )
                .hint("the discover credential must be a role in the protected account"),
            );
        }
    }
}

fn parse_features(r: &mut Reader<'_>, v: &Value) -> Option<Value> {
    let m = r.object("features", v)?;
    r.known_keys("features", m, &["abs", "scan", "fim"]);
    let mut ok = true;
    for (name, fv) in m {
        let path = join("features", name);
        let Some(items) = r.array(&path, fv) else {
            ok = false;
            continue;
        };
        for (i, it) in items.iter().enumerate() {
            let ipath = index(&path, i);
            let Some(im) = r.object(&ipath, it) else {
                ok = false;
                continue;
            };
            r.known_keys(&ipath, im, &["scope"]);
            let Some(scope) = im.get("scope").and_then(|s| r.array(&join(&ipath, "scope"), s)) else {
                ok = false;
                continue;
            };
            for (j, s) in scope.iter().enumerate() {
                let spath = index(&join(&ipath, "scope"), j);
                let Some(sm) = r.object(&spath, s) else {
                    ok = false;
                    continue;
                };
                r.known_keys(&spath, sm, &["type", "key"]);
                let all =
                    [ScopeType::Deployment, ScopeType::Region, ScopeType::Vpc, ScopeType::Subnet, ScopeType::Host];
                if scope_type(r, &spath, sm, &all).and_then(|t| scope_key(r, &spath, sm, t)).is_none() {
                    ok = false;
                }
            }
        }
    }
    ok.then(|| v.clone())
}

fn parse_cloud_defender(r: &mut Reader<'_>, v: &Value) -> Option<CloudDefender> {
    let m = r.object("cloud_defender", v)?;
    r.known_keys("cloud_defender", m, &["enabled", "location_id", "location"]);
    let enabled = match m.get("enabled") {
        None => false,
        Some(v) => r.boolean("cloud_defender.enabled", v)?,
    };
    if enabled {
        r.fail(FieldError::new(
            "cloud_defender.enabled",
            "false (the Cloud Defender integration is not offered)",
            "true",
        ));
        return None;
    }
    let location_id = match m.get("location_id").or_else(|| m.get("location")) {
        None => None,
        Some(v) => Some(r.string("cloud_defender.location_id", v)?),
    };
    Some(CloudDefender { enabled, location_id })
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}
