//! deployments v1: what the user asks garrison to protect, and how.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Stamp;
use crate::error::{FieldError, ValidationError, describe};
use crate::json_path::{Reader, index, join};
use crate::scope::{ScopeType, is_region, key_matches};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Manual,
    Readonly,
    Automatic,
    Guided,
    None,
}

impl Mode {
    pub const ALL: [Mode; 5] = [Mode::Manual, Mode::Readonly, Mode::Automatic, Mode::Guided, Mode::None];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Manual => "manual",
            Mode::Readonly => "readonly",
            Mode::Automatic => "automatic",
            Mode::Guided => "guided",
            Mode::None => "none",
        }
    }

    /// Modes that install protection (by garrison or by the customer) need a policy per scope item.
    pub fn needs_policy(self) -> bool {
        matches!(self, Mode::Automatic | Mode::Manual | Mode::Guided)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Platform {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub monitor: Monitor,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Monitor {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ct_install_region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_ct_arn: Option<String>,
}

/// Where the audit source goes when the request does not say.
pub const DEFAULT_CT_REGION: &str = "us-east-1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicyRef {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IncludeItem {
    #[serde(rename = "type")]
    pub kind: ScopeType,
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExcludeItem {
    #[serde(rename = "type")]
    pub kind: ScopeType,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Scope {
    pub include: Vec<IncludeItem>,
    pub exclude: Vec<ExcludeItem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Purpose {
    #[serde(rename = "discover")]
    Discover,
    #[serde(rename = "x-account-monitor")]
    XAccountMonitor,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeploymentCredential {
    pub id: String,
    pub purpose: Purpose,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CloudDefender {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_id: Option<String>,
}

/// The user-settable part of a deployment, after validation and defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentSpec {
    pub name: String,
    pub platform: Platform,
    pub mode: Mode,
    pub enabled: bool,
    pub discover: bool,
    pub scan: bool,
    pub scope: Scope,
    pub features: Option<Value>,
    pub cloud_defender: CloudDefender,
    pub credentials: Vec<DeploymentCredential>,
    pub is_control_tower: bool,
    pub control_tower: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatusKind {
    New,
    Ok,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Status {
    pub status: StatusKind,
    pub updated: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A deployment as the API returns it (field order follows the reference schema).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Deployment {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub platform: Platform,
    pub mode: Mode,
    pub enabled: bool,
    pub discover: bool,
    pub scan: bool,
    pub scope: Scope,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub features: Option<Value>,
    pub cloud_defender: CloudDefender,
    pub credentials: Vec<DeploymentCredential>,
    pub status: Status,
    pub created: Stamp,
    pub modified: Stamp,
    pub version: i64,
    pub is_control_tower: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub control_tower: Option<Value>,
}

impl Deployment {
    pub fn spec(&self) -> DeploymentSpec {
        DeploymentSpec {
            name: self.name.clone(),
            platform: self.platform.clone(),
            mode: self.mode,
            enabled: self.enabled,
            discover: self.discover,
            scan: self.scan,
            scope: self.scope.clone(),
            features: self.features.clone(),
            cloud_defender: self.cloud_defender.clone(),
            credentials: self.credentials.clone(),
            is_control_tower: self.is_control_tower,
            control_tower: self.control_tower.clone(),
        }
    }

    pub fn apply(&mut self, spec: DeploymentSpec) {
        self.name = spec.name;
        self.platform = spec.platform;
        self.mode = spec.mode;
        self.enabled = spec.enabled;
        self.discover = spec.discover;
        self.scan = spec.scan;
        self.scope = spec.scope;
        self.features = spec.features;
        self.cloud_defender = spec.cloud_defender;
        self.credentials = spec.credentials;
        self.is_control_tower = spec.is_control_tower;
        self.control_tower = spec.control_tower;
    }
}

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
const READ_ONLY: &[&str] = &["id", "account_id", "status", "created", "modified"];
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

fn scope_type(r: &mut Reader<'_>, path: &str, m: &Map<String, Value>, allowed: &[ScopeType]) -> Option<ScopeType> {
    let names: Vec<&str> = allowed.iter().map(|t| t.as_str()).collect();
    let field = join(path, "type");
    match m.get("type") {
        None => {
            r.fail(FieldError::new(field, format!("one of [{}]", names.join(", ")), "nothing"));
            None
        }
        Some(v) => match v.as_str().and_then(ScopeType::parse).filter(|t| allowed.contains(t)) {
            Some(t) => Some(t),
            None => {
                r.fail(FieldError::new(field, format!("one of [{}]", names.join(", ")), describe(v)));
                None
            }
        },
    }
}

fn scope_key(r: &mut Reader<'_>, path: &str, m: &Map<String, Value>, t: ScopeType) -> Option<String> {
    let field = join(path, "key");
    match m.get("key") {
        // The whole-deployment item needs no key.
        None if t == ScopeType::Deployment => Some("/aws".into()),
        Some(Value::String(k))
            if key_matches(t, k)
                && crate::scope::AssetKey::parse(k).is_some_and(|a| !crate::scope::is_known_region(a.region())) =>
        {
            let region = crate::scope::AssetKey::parse(k).map(|a| a.region().to_string()).unwrap_or_default();
            r.fail(
                FieldError::new(field, "a key in a region of the aws partition", format!("{k:?} (region {region:?})"))
                    .hint(format!("known regions: {}", crate::scope::AWS_REGIONS.join(", "))),
            );
            None
        }
        Some(Value::String(k)) if key_matches(t, k) => Some(k.clone()),
        other => {
            let found = other.map_or("nothing".to_string(), describe);
            let mut e = FieldError::new(field, format!("a {} key: {}", t.as_str(), t.key_shape()), found);
            if let Some(Value::String(k)) = other
                && let Some(actual) = crate::scope::AssetKey::parse(k)
            {
                e = e.hint(format!(
                    "that is a {} key; set \"type\": \"{}\"",
                    actual.scope_type().as_str(),
                    actual.scope_type().as_str()
                ));
            }
            r.fail(e);
            None
        }
    }
}

fn parse_scope(r: &mut Reader<'_>, v: &Value, mode: Mode, refs: &Refs<'_>) -> Option<Scope> {
    let m = r.object("scope", v)?;
    r.known_keys("scope", m, &["include", "exclude"]);
    let mut scope = Scope::default();
    let mut ok = true;
    let mut seen = HashSet::new();
    if let Some(inc) = m.get("include") {
        if let Some(items) = r.array("scope.include", inc) {
            for (i, it) in items.iter().enumerate() {
                let path = index("scope.include", i);
                let Some(im) = r.object(&path, it) else {
                    ok = false;
                    continue;
                };
                r.known_keys(&path, im, &["type", "key", "policy"]);
                let t = scope_type(r, &path, im, &ScopeType::INCLUDE);
                let key = t.and_then(|t| scope_key(r, &path, im, t));
                let policy = match im.get("policy") {
                    None => None,
                    Some(pv) => parse_policy_ref(r, &join(&path, "policy"), pv, refs),
                };
                match (t, key) {
                    (Some(t), Some(key)) => {
                        if !seen.insert(key.clone()) {
                            r.fail(FieldError::new(
                                join(&path, "key"),
                                "each key at most once in scope.include",
                                format!("{key:?} again"),
                            ));
                        }
                        scope.include.push(IncludeItem { kind: t, key, policy });
                    }
                    _ => ok = false,
                }
            }
        } else {
            ok = false;
        }
    }
    let mut seen_ex = HashSet::new();
    if let Some(exc) = m.get("exclude") {
        if let Some(items) = r.array("scope.exclude", exc) {
            for (i, it) in items.iter().enumerate() {
                let path = index("scope.exclude", i);
                let Some(em) = r.object(&path, it) else {
                    ok = false;
                    continue;
                };
                r.known_keys(&path, em, &["type", "key"]);
                let t = scope_type(r, &path, em, &ScopeType::EXCLUDE);
                let key = t.and_then(|t| scope_key(r, &path, em, t));
                match (t, key) {
                    (Some(t), Some(key)) => {
                        if seen.contains(&key) {
                            r.fail(FieldError::new(
                                join(&path, "key"),
                                "a key that is not also in scope.include",
                                format!("{key:?}"),
                            ));
                        } else if !seen_ex.insert(key.clone()) {
                            r.fail(FieldError::new(
                                join(&path, "key"),
                                "each key at most once in scope.exclude",
                                format!("{key:?} again"),
                            ));
                        }
                        scope.exclude.push(ExcludeItem { kind: t, key });
                    }
                    _ => ok = false,
                }
            }
        } else {
            ok = false;
        }
    }
    if ok {
        check_policies(r, &scope, mode, refs);
        Some(scope)
    } else {
        None
    }
}

fn parse_policy_ref(r: &mut Reader<'_>, path: &str, v: &Value, refs: &Refs<'_>) -> Option<PolicyRef> {
    let m = r.object(path, v)?;
    r.known_keys(path, m, &["id"]);
    let field = join(path, "id");
    match m.get("id") {
        Some(Value::String(id)) if refs.policies.contains(id) => Some(PolicyRef { id: id.clone() }),
        // Policy ids are UUIDs; accept any case as clients copy them around.
        Some(Value::String(id)) if refs.policies.contains(&id.to_ascii_uppercase()) => {
            Some(PolicyRef { id: id.to_ascii_uppercase() })
        }
        other => {
            let mut ids: Vec<&String> = refs.policies.iter().collect();
            ids.sort();
            let ids: Vec<&str> = ids.iter().map(|s| s.as_str()).collect();
            r.fail(
                FieldError::new(
                    field,
                    format!("the id of an existing policy, one of [{}]", ids.join(", ")),
                    other.map_or("nothing".into(), describe),
                )
                .hint("list them with: garrison policies list_policies --account_id <account>"),
            );
            None
        }
    }
}

fn check_policies(r: &mut Reader<'_>, scope: &Scope, mode: Mode, _refs: &Refs<'_>) {
    if !mode.needs_policy() {
        return;
    }
    for (i, it) in scope.include.iter().enumerate() {
        if it.policy.is_none() {
            r.fail(
                FieldError::new(join(&index("scope.include", i), "policy"), format!("a policy {{\"id\": …}} (mode {} installs protection)", mode.as_str()), "nothing")
                    .hint("Essentials is A8E8B104-8F45-411D-A240-A30EA5FE25B0, Professional D12D5E67-166C-474F-87AA-6F86FC9FB9BC"),
            );
        }
    }
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

#[cfg(test)]
mod tests;
