//! Notifications: webhook connections (the connectors service), subscriptions of
//! connections and users to notification types (herald), and the notice each event
//! becomes. The generic JSON body is herald's `Notification` shape; Slack and Teams
//! connections get the same facts in their own message shape.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::Stamp;
use crate::deployment::StatusKind;
use crate::error::{FieldError, ValidationError, describe};
use crate::finding::{Finding, Severity};

/// What garrison tells subscribers about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NoticeType {
    #[serde(rename = "findings/opened")]
    FindingOpened,
    #[serde(rename = "findings/resolved")]
    FindingResolved,
    #[serde(rename = "deployments/status")]
    DeploymentStatus,
    #[serde(rename = "health/opened")]
    HealthOpened,
    #[serde(rename = "health/concluded")]
    HealthConcluded,
}

pub const NOTICE_TYPES: [NoticeType; 5] = [
    NoticeType::FindingOpened,
    NoticeType::FindingResolved,
    NoticeType::DeploymentStatus,
    NoticeType::HealthOpened,
    NoticeType::HealthConcluded,
];

impl NoticeType {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeType::FindingOpened => "findings/opened",
            NoticeType::FindingResolved => "findings/resolved",
            NoticeType::DeploymentStatus => "deployments/status",
            NoticeType::HealthOpened => "health/opened",
            NoticeType::HealthConcluded => "health/concluded",
        }
    }

    pub fn parse(s: &str) -> Option<NoticeType> {
        NOTICE_TYPES.into_iter().find(|t| t.as_str() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            NoticeType::FindingOpened => "Security finding opened (GuardDuty, Inspector)",
            NoticeType::FindingResolved => "Security finding resolved",
            NoticeType::DeploymentStatus => "Deployment status changed",
            NoticeType::HealthOpened => "Protection weakened: a health item opened, with its remedy",
            NoticeType::HealthConcluded => "Health item concluded: its cause is gone",
        }
    }

    /// herald's `Notification-Type` entry.
    pub fn describe(self) -> Value {
        json!({"notification_type": self.as_str(), "name": self.name(),
               "default_template": "observation_template", "templates": ["observation_template"],
               "default_email_subject": self.name()})
    }
}

/// The message shape a connection sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionKind {
    /// The generic JSON body (herald's Notification): the contract.
    Webhook,
    /// `{"text": …}` for a Slack incoming webhook.
    Slack,
    /// A MessageCard for a Teams incoming webhook.
    Msteams,
}

impl ConnectionKind {
    fn parse(s: &str) -> Option<ConnectionKind> {
        match s {
            "webhook" => Some(ConnectionKind::Webhook),
            "slack" => Some(ConnectionKind::Slack),
            "msteams" => Some(ConnectionKind::Msteams),
            _ => None,
        }
    }
}

/// A webhook connection as the API shows it: its secrets (the signing secret and any
/// `auth_header`) are sealed in the store and never shown again after create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Connection {
    pub id: String,
    pub account_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ConnectionKind,
    pub target_url: String,
    pub method: String,
    /// Extra headers, `Name: value, Name2: value` as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<String>,
    pub payload_type: String,
    pub payload_conversion_type: String,
    pub payload_template: String,
    /// Whether an Authorization header is sent (its value is sealed, never shown).
    pub auth_header_set: bool,
    pub created: Stamp,
    pub modified: Stamp,
}

/// What a create or update request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSpec {
    pub name: String,
    pub kind: ConnectionKind,
    pub target_url: String,
    pub method: String,
    pub headers: Option<String>,
    pub payload_type: String,
    pub payload_conversion_type: String,
    pub payload_template: String,
    /// `None`: not given (an update keeps the one it had); `Some("")` removes it.
    pub auth_header: Option<String>,
}

const CONNECTION_FIELDS: [&str; 9] = [
    "name",
    "type",
    "target_url",
    "method",
    "headers",
    "payload_type",
    "payload_conversion_type",
    "payload_template",
    "auth_header",
];
/// Read-only fields a client may send back from a GET (ignored).
const CONNECTION_ECHOED: [&str; 7] =
    ["id", "account_id", "created", "modified", "auth_header_set", "sample_payload", "signing_secret"];
const PAYLOAD_TYPES: [&str; 4] = ["incident", "observation", "scheduled_report", "health"];
/// Headers garrison sets itself; a connection cannot replace them.
const RESERVED_HEADERS: [&str; 6] =
    ["content-type", "content-length", "host", "authorization", "transfer-encoding", "connection"];

/// Parses a connection body. `allow_private`: targets on loopback or private addresses
/// are allowed (a test or a demo); link-local ones (the instance metadata service) never.
pub fn parse_connection(body: &Value, allow_private: bool) -> Result<ConnectionSpec, ValidationError> {
    let mut errors = ValidationError::default();
    let Some(o) = body.as_object() else {
        return Err(ValidationError::one(FieldError::new("body", "a JSON object", describe(body))));
    };
    for k in o.keys() {
        if !CONNECTION_FIELDS.contains(&k.as_str()) && !CONNECTION_ECHOED.contains(&k.as_str()) {
            errors.push(FieldError::new(
                k.clone(),
                format!("one of the fields {}", CONNECTION_FIELDS.join(", ")),
                "an unknown field",
            ));
        }
    }
    let mut string = |k: &str, required: bool, max: usize| -> Option<String> {
        match o.get(k) {
            None | Some(Value::Null) if !required => None,
            Some(Value::String(s)) if s.chars().count() <= max && (!required || !s.trim().is_empty()) => {
                Some(s.clone())
            }
            v => {
                let found = v.map_or("nothing".to_string(), describe);
                errors.push(FieldError::new(
                    k,
                    format!("a string of {} to {max} characters", u8::from(required)),
                    found,
                ));
                None
            }
        }
    };
    let name = string("name", true, 256);
    let kind = string("type", true, 32);
    let target_url = string("target_url", true, 2048);
    let method = string("method", false, 8);
    let headers = string("headers", false, 4096);
    let payload_type = string("payload_type", false, 32);
    let conversion = string("payload_conversion_type", false, 16);
    let template = string("payload_template", false, 16_384);
    let auth_header = string("auth_header", false, 4096);
    let kind = kind.and_then(|k| {
        let parsed = ConnectionKind::parse(&k);
        if parsed.is_none() {
            errors.push(
                FieldError::new("type", "one of [webhook, slack, msteams]", format!("{k:?}"))
                    .hint("garrison delivers to HTTP(S) webhooks; email, Jira, ServiceNow and PagerDuty connections are not offered"),
            );
        }
        parsed
    });
    if let Some(u) = &target_url
        && let Err(e) = check_target(u, allow_private)
    {
        errors.push(e);
    }
    let method = method.unwrap_or_else(|| "POST".into());
    if !matches!(method.as_str(), "POST" | "PUT") {
        errors.push(FieldError::new("method", "POST or PUT (a notification is a request body)", format!("{method:?}")));
    }
    if let Some(h) = &headers
        && let Err(e) = parse_headers(h)
    {
        errors.push(e);
    }
    let payload_type = payload_type.unwrap_or_else(|| "observation".into());
    if !PAYLOAD_TYPES.contains(&payload_type.as_str()) {
        errors.push(FieldError::new(
            "payload_type",
            format!("one of [{}]", PAYLOAD_TYPES.join(", ")),
            format!("{payload_type:?}"),
        ));
    }
    let conversion = conversion.unwrap_or_else(|| "default".into());
    if conversion != "default" {
        errors.push(
            FieldError::new("payload_conversion_type", "default", format!("{conversion:?}"))
                .hint("garrison sends its documented JSON body (or the Slack/Teams shape for those types); json and jq templates are not supported"),
        );
    }
    if let Some(a) = &auth_header
        && a.contains(['\r', '\n'])
    {
        errors.push(FieldError::new("auth_header", "one header value without line breaks", "a line break"));
    }
    match (name, kind, target_url) {
        (Some(name), Some(kind), Some(target_url)) if errors.is_empty() => Ok(ConnectionSpec {
            name,
            kind,
            target_url,
            method,
            headers: headers.filter(|h| !h.trim().is_empty()),
            payload_type,
            payload_conversion_type: conversion,
            payload_template: template.unwrap_or_default(),
            auth_header,
        }),
        _ => Err(errors),
    }
}

impl ConnectionSpec {
    /// The connection `id` of `account_id` this spec describes; `auth_header_set` says
    /// whether its (sealed) Authorization header is set.
    pub fn into_connection(
        self,
        id: &str,
        account_id: &str,
        auth_header_set: bool,
        created: Stamp,
        modified: Stamp,
    ) -> Connection {
        Connection {
            id: id.into(),
            account_id: account_id.into(),
            name: self.name,
            kind: self.kind,
            target_url: self.target_url,
            method: self.method,
            headers: self.headers,
            payload_type: self.payload_type,
            payload_conversion_type: self.payload_conversion_type,
            payload_template: self.payload_template,
            auth_header_set,
            created,
            modified,
        }
    }
}

/// `Name: value, Name2: value` into pairs (the connectors spec's `headers` format).
pub fn parse_headers(h: &str) -> Result<Vec<(String, String)>, FieldError> {
    let mut out = vec![];
    for part in h.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || {
            FieldError::new(
                "headers",
                "Name: value pairs separated by commas (e.g. \"X-Team: sec, X-Env: prod\")",
                format!("{part:?}"),
            )
        };
        let (n, v) = part.split_once(':').ok_or_else(bad)?;
        let (n, v) = (n.trim(), v.trim());
        if n.is_empty()
            || v.is_empty()
            || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            || v.chars().any(|c| c.is_control())
        {
            return Err(bad());
        }
        let lower = n.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("x-garrison-") {
            return Err(FieldError::new(
                "headers",
                "headers other than those garrison sets (Content-Type, Authorization: use auth_header, X-Garrison-*)",
                format!("{n:?}"),
            ));
        }
        out.push((n.to_string(), v.to_string()));
    }
    Ok(out)
}

/// A target URL garrison may post to: http(s), a host, and not the instance metadata
/// service or (unless allowed) this machine's or a private network. The host is judged as
/// an HTTP client will read it (WHATWG parsing: `http://2130706433/`, `http://0x7f.1/` and
/// `http://127.1/` are all 127.0.0.1).
pub fn check_target(u: &str, allow_private: bool) -> Result<(), FieldError> {
    let bad = |why: &str| FieldError::new("target_url", why, format!("{:?}", crate::error::clip(u, 120)));
    if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("an http(s) URL with a host"));
    }
    let parsed = url::Url::parse(u).map_err(|_| bad("an http:// or https:// URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("an http:// or https:// URL"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("a URL without user information (use auth_header)"));
    }
    let (ip, name) = match parsed.host() {
        Some(url::Host::Ipv4(v4)) => (Some(IpAddr::V4(v4)), String::new()),
        Some(url::Host::Ipv6(v6)) => (Some(IpAddr::V6(v6)), String::new()),
        Some(url::Host::Domain(d)) if !d.is_empty() => (None, d.trim_end_matches('.').to_ascii_lowercase()),
        _ => return Err(bad("an http(s) URL with a host")),
    };
    if ip.is_some_and(never_a_target) || name == "metadata.google.internal" {
        return Err(bad("a URL outside link-local addresses (the instance metadata service is never a target)"));
    }
    let private = name == "localhost" || name.ends_with(".localhost") || ip.is_some_and(is_private);
    if private && !allow_private {
        return Err(bad("a URL on a public address").hint(
            "targets on loopback or private networks are refused unless the server runs with allow_private_webhooks",
        ));
    }
    Ok(())
}

/// Link-local (the metadata service), unspecified and broadcast addresses.
fn never_a_target(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => never_a_target(IpAddr::V4(v4)),
            None => (v6.segments()[0] & 0xffc0) == 0xfe80 || v6.is_unspecified(),
        },
    }
}

/// Loopback, private (RFC 1918), shared (100.64/10) and unique-local addresses.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.octets()[0] == 100 && v4.octets()[1] & 0xc0 == 64,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private(IpAddr::V4(v4)),
            None => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
        },
    }
}

/// Whether garrison may connect to `ip` for a webhook: checked again on every address a
/// target's name resolves to, so a name cannot lead where a literal address may not.
pub fn address_allowed(ip: IpAddr, allow_private: bool) -> bool {
    !never_a_target(ip) && (allow_private || !is_private(ip))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriberType {
    User,
    Connection,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Subscriber {
    pub subscriber: String,
    pub subscriber_type: SubscriberType,
}

/// A subscription of connections (and users) to one notification type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Subscription {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub class: String,
    pub notification_type: String,
    pub active: bool,
    /// `min_severity` (finding types): only findings of this severity and above.
    #[schema(value_type = Object)]
    pub options: Map<String, Value>,
    /// `deployment_id`: only this deployment's notices.
    #[schema(value_type = Object)]
    pub filters: Map<String, Value>,
    pub created: Stamp,
    pub modified: Stamp,
    pub subscribers: Vec<Subscriber>,
}

impl Subscription {
    pub fn min_severity(&self) -> Option<Severity> {
        self.options.get("min_severity").and_then(Value::as_str).and_then(Severity::parse)
    }

    /// Whether a notice goes to this subscription's subscribers.
    pub fn wants(&self, n: &Notice) -> bool {
        self.active
            && self.notification_type == n.kind.as_str()
            && self.min_severity().is_none_or(|min| n.severity.is_none_or(|s| s >= min))
            && self.filters.get("deployment_id").and_then(Value::as_str).is_none_or(|d| d == n.deployment_id)
    }

    /// The connections it sends to.
    pub fn connections(&self) -> impl Iterator<Item = &str> {
        self.subscribers
            .iter()
            .filter(|s| s.subscriber_type == SubscriberType::Connection)
            .map(|s| s.subscriber.as_str())
    }
}

/// What a create (every field) or update (`base`: the stored one) asks for; subscribers
/// are checked against the account's connections and users by the caller.
pub struct SubscriptionSpec {
    pub name: String,
    pub class: String,
    pub notification_type: String,
    pub active: bool,
    pub options: Map<String, Value>,
    pub filters: Map<String, Value>,
    pub subscribers: Option<Vec<Subscriber>>,
}

impl SubscriptionSpec {
    /// The new subscription `id` of `account_id`, made at `stamp`.
    pub fn into_subscription(self, id: String, account_id: &str, stamp: Stamp) -> Subscription {
        Subscription {
            id,
            account_id: account_id.into(),
            name: self.name,
            class: self.class,
            notification_type: self.notification_type,
            active: self.active,
            options: self.options,
            filters: self.filters,
            created: stamp.clone(),
            modified: stamp,
            subscribers: self.subscribers.unwrap_or_default(),
        }
    }
}

const SUBSCRIPTION_FIELDS: [&str; 9] =
    ["name", "class", "notification_type", "external_id", "subscribers", "active", "options", "filters", "template"];
const SUBSCRIPTION_ECHOED: [&str; 6] =
    ["id", "account_id", "created", "modified", "subscriber_count", "suppression_interval"];

pub fn parse_subscription(body: &Value, base: Option<&Subscription>) -> Result<SubscriptionSpec, ValidationError> {
    let mut errors = ValidationError::default();
    let Some(o) = body.as_object() else {
        return Err(ValidationError::one(FieldError::new("body", "a JSON object", describe(body))));
    };
    for k in o.keys() {
        if !SUBSCRIPTION_FIELDS.contains(&k.as_str()) && !SUBSCRIPTION_ECHOED.contains(&k.as_str()) {
            errors.push(FieldError::new(
                k.clone(),
                format!("one of the fields {}", SUBSCRIPTION_FIELDS.join(", ")),
                "an unknown field",
            ));
        }
    }
    let mut text = |k: &str, had: Option<&String>| -> Option<String> {
        match (o.get(k), had) {
            (None, Some(h)) => Some(h.clone()),
            (Some(Value::String(s)), _) if !s.trim().is_empty() && s.chars().count() <= 256 => Some(s.clone()),
            (v, _) => {
                errors.push(FieldError::new(
                    k,
                    "a string of 1 to 256 characters",
                    v.map_or("nothing".into(), describe),
                ));
                None
            }
        }
    };
    let name = text("name", base.map(|b| &b.name));
    let class = text("class", base.map(|b| &b.class));
    let notification_type = text("notification_type", base.map(|b| &b.notification_type));
    if let Some(t) = &notification_type
        && NoticeType::parse(t).is_none()
    {
        let all: Vec<&str> = NOTICE_TYPES.iter().map(|t| t.as_str()).collect();
        errors.push(FieldError::new("notification_type", format!("one of [{}]", all.join(", ")), format!("{t:?}")));
    }
    if let Some(c) = &class
        && c != "event"
    {
        errors.push(FieldError::new("class", "event (garrison's notifications are events)", format!("{c:?}")));
    }
    let active = match o.get("active") {
        None => base.is_none_or(|b| b.active),
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            errors.push(FieldError::new("active", "a boolean", describe(v)));
            true
        }
    };
    let object = |errors: &mut ValidationError, k: &str, had: Option<&Map<String, Value>>| match o.get(k) {
        None => had.cloned().unwrap_or_default(),
        Some(Value::Object(m)) => m.clone(),
        Some(v) => {
            errors.push(FieldError::new(k, "a JSON object", describe(v)));
            Map::new()
        }
    };
    let options = object(&mut errors, "options", base.map(|b| &b.options));
    if let Some(v) = options.get("min_severity")
        && v.as_str().and_then(Severity::parse).is_none()
    {
        errors.push(FieldError::new(
            "options.min_severity",
            "one of informational, low, medium, high, critical",
            describe(v),
        ));
    }
    let filters = object(&mut errors, "filters", base.map(|b| &b.filters));
    for (k, v) in &filters {
        if k != "deployment_id" {
            errors.push(FieldError::new(
                format!("filters.{k}"),
                "the filter deployment_id (the only one garrison applies)",
                "an unknown filter",
            ));
        } else if !v.is_string() {
            errors.push(FieldError::new("filters.deployment_id", "a deployment id", describe(v)));
        }
    }
    let subscribers = match o.get("subscribers") {
        None => None,
        Some(Value::Array(items)) => {
            let mut out = vec![];
            for (i, it) in items.iter().enumerate() {
                match parse_subscriber(it) {
                    Ok(s) => out.push(s),
                    Err(mut e) => {
                        e.field = format!("subscribers[{i}].{}", e.field);
                        errors.push(e);
                    }
                }
            }
            Some(out)
        }
        Some(v) => {
            errors.push(FieldError::new("subscribers", "an array of {subscriber, subscriber_type}", describe(v)));
            None
        }
    };
    match (name, class, notification_type) {
        (Some(name), Some(class), Some(notification_type)) if errors.is_empty() => {
            Ok(SubscriptionSpec { name, class, notification_type, active, options, filters, subscribers })
        }
        _ => Err(errors),
    }
}

/// One `{subscriber, subscriber_type}`; other keys (herald's `account_id`,
/// `subscription_id`) are checked by the caller.
pub fn parse_subscriber(v: &Value) -> Result<Subscriber, FieldError> {
    let sub = v.get("subscriber").and_then(Value::as_str).filter(|s| !s.is_empty() && s.len() <= 128);
    let Some(sub) = sub else {
        return Err(FieldError::new(
            "subscriber",
            "a user or connection id",
            v.get("subscriber").map_or("nothing".into(), describe),
        ));
    };
    let subscriber_type = match v.get("subscriber_type").and_then(Value::as_str) {
        Some("user") => SubscriberType::User,
        Some("connection") => SubscriberType::Connection,
        _ => {
            return Err(FieldError::new(
                "subscriber_type",
                "user or connection",
                v.get("subscriber_type").map_or("nothing".into(), describe),
            ));
        }
    };
    Ok(Subscriber { subscriber: sub.to_string(), subscriber_type })
}

/// One event to tell subscribers about.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub id: String,
    pub kind: NoticeType,
    pub account_id: String,
    pub deployment_id: String,
    /// Findings only: what a subscription's `min_severity` is compared with.
    pub severity: Option<Severity>,
    /// herald's Notification.
    pub body: Value,
}

/// herald's Notification around what each notice says.
fn herald(
    id: &str,
    account_id: &str,
    kind: NoticeType,
    data: Value,
    asset: Value,
    payload: Value,
    at_ms: i64,
) -> Value {
    json!({
        "id": id, "account_id": account_id, "type": kind.as_str(),
        "notification_data": data, "asset_data": asset, "payload": payload,
        "status": "created",
        "created": {"at": at_ms / 1000, "by": "garrison"},
    })
}

/// A finding opened (first seen, or active again) or resolved.
pub fn finding_notice(id: &str, account_id: &str, f: &Finding, opened: bool, at_ms: i64) -> Notice {
    let kind = if opened { NoticeType::FindingOpened } else { NoticeType::FindingResolved };
    let target = f.resource.as_ref().map(|r| r.asset_key.clone().unwrap_or_else(|| r.id.clone()));
    let body = herald(
        id,
        account_id,
        kind,
        json!({
            "class": f.kind, "threat_level": f.severity.as_str(), "status": f.status.as_str(),
            "detection_source": f.source.as_str(), "targets": target.into_iter().collect::<Vec<_>>(),
            "subject": format!("[{}] {} finding {}: {}", f.severity.as_str(), source_name(f),
                if opened { "opened" } else { "resolved" }, f.title),
        }),
        json!({"deployment_id": f.deployment_id, "aws_account": f.aws_account, "region": f.region}),
        json!({"finding": f}),
        at_ms,
    );
    Notice {
        id: id.into(),
        kind,
        account_id: account_id.into(),
        deployment_id: f.deployment_id.clone(),
        severity: Some(f.severity),
        body,
    }
}

fn source_name(f: &Finding) -> &'static str {
    match f.source {
        crate::finding::Source::Guardduty => "GuardDuty",
        crate::finding::Source::Inspector2 => "Inspector",
    }
}

/// A deployment's status changed from `previous` to `d.status`.
pub fn status_notice(id: &str, d: &crate::deployment::Deployment, previous: StatusKind, at_ms: i64) -> Notice {
    let kind = NoticeType::DeploymentStatus;
    let now = d.status.status.as_str();
    let body = herald(
        id,
        &d.account_id,
        kind,
        json!({
            "class": "deployment_status", "status": now, "previous_status": previous.as_str(),
            "reason": d.status.reason.map(|r| r.as_str()),
            "subject": format!("deployment {} is {now} (was {})", d.name, previous.as_str()),
        }),
        json!({"deployment_id": d.id, "aws_account": d.platform.id}),
        json!({"deployment": {"id": d.id, "name": d.name, "status": d.status}}),
        at_ms,
    );
    Notice { id: id.into(), kind, account_id: d.account_id.clone(), deployment_id: d.id.clone(), severity: None, body }
}

/// A health item opened (or opened again) or concluded.
pub fn health_notice(
    id: &str,
    account_id: &str,
    deployment_id: &str,
    item: &crate::health::Item,
    opened: bool,
    at_ms: i64,
) -> Notice {
    let kind = if opened { NoticeType::HealthOpened } else { NoticeType::HealthConcluded };
    let cause = serde_json::to_value(&item.cause).unwrap_or_default();
    let class = cause["cause"].as_str().unwrap_or("health").to_string();
    let body = herald(
        id,
        account_id,
        kind,
        json!({
            "class": class, "status": if opened { "unhealthy" } else { "concluded" },
            "targets": [item.key],
            "subject": if opened { format!("protection weakened: {}", item.remedy) } else { format!("health item concluded: {}", item.key) },
        }),
        json!({"deployment_id": deployment_id}),
        json!({"health_item": item}),
        at_ms,
    );
    Notice {
        id: id.into(),
        kind,
        account_id: account_id.into(),
        deployment_id: deployment_id.into(),
        severity: None,
        body,
    }
}

/// The body a connection of `kind` sends for herald notification `n`.
pub fn render(kind: ConnectionKind, n: &Value) -> Value {
    let subject = n["notification_data"]["subject"].as_str().unwrap_or("garrison notification");
    let text = format!(
        "{subject} (garrison account {}, notification {})",
        n["account_id"].as_str().unwrap_or(""),
        n["id"].as_str().unwrap_or("")
    );
    match kind {
        ConnectionKind::Webhook => n.clone(),
        ConnectionKind::Slack => json!({"text": text}),
        ConnectionKind::Msteams => json!({
            "@type": "MessageCard", "@context": "https://schema.org/extensions",
            "summary": subject, "title": subject, "text": text,
        }),
    }
}

/// The notice a dry run sends: a finding-shaped sample, marked as a test.
pub fn sample(account_id: &str) -> Value {
    json!({
        "id": "00000000-0000-0000-0000-000000000000", "account_id": account_id, "type": "findings/opened",
        "notification_data": {"class": "garrison:test", "threat_level": "informational", "status": "active",
            "detection_source": "garrison", "targets": [], "subject": "garrison test notification (dry run)"},
        "asset_data": {}, "payload": {"test": true}, "status": "created", "created": {"at": 0, "by": "garrison"},
    })
}

#[cfg(test)]
mod tests;
