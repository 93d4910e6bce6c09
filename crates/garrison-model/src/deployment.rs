//! deployments v1: what the user asks garrison to protect, and how.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Stamp;
use crate::scope::ScopeType;

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
    /// Set by an organization enrollment only (never from a request body: forwarding an
    /// account's events to a bus named by a client would hand them to whoever owns it).
    pub event_feed: Option<EventFeed>,
}

/// Where a deployment's event feed goes instead of a bus of its own: the organization's
/// bus (in the management account, its policy limited to the organization), so that an
/// organization of N accounts has one feed queue, not N.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventFeed {
    /// `arn:aws:events:<region>:<account>:event-bus/<name>`
    pub bus_arn: String,
    /// The organization enrollment that set it.
    pub organization_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatusKind {
    New,
    Ok,
    Warning,
    Error,
}

impl StatusKind {
    /// Its name on the wire (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::New => "new",
            StatusKind::Ok => "ok",
            StatusKind::Warning => "warning",
            StatusKind::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Status {
    pub status: StatusKind,
    pub updated: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Why the last run ended as it did: a stable code for scripts, alerts and metrics
    /// (`message` says it in words). Absent before the first run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

impl Status {
    pub fn new(status: StatusKind, reason: Reason, updated: i64, message: String) -> Status {
        Status { status, updated, message: Some(message), reason: Some(reason) }
    }
}

/// How a run ended, and so when garrison runs the deployment again (`Reason::retry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Protection matches the plan (outside automatic mode: the plan is current).
    Converged,
    /// Discovery is off or the deployment disabled: nothing to do.
    Idle,
    /// Some changes failed or were skipped.
    ActionsFailed,
    /// Some reads failed; earlier facts were kept.
    DiscoveryIncomplete,
    /// AWS throttled, failed on its side, or could not be reached.
    AwsUnavailable,
    /// garrison's own store failed.
    StoreUnavailable,
    /// Another run holds the deployment.
    Busy,
    /// The customer's role cannot be assumed (yet: a new role takes up to a minute).
    RoleNotAssumable,
    /// The role's trust policy lets in someone else, or garrison without the ExternalId.
    RoleUnsafe,
    /// The role lacks permissions this mode needs.
    RolePermissions,
    /// Part of the scope cannot be protected as asked (no room for a security subnet, no
    /// appliance instance type offered): the message names it.
    ScopeProblems,
    /// The deployment has no usable discover credential.
    CredentialMissing,
    /// garrison has no AWS credentials of its own.
    NoAwsCredentials,
}

/// When a deployment runs again after a run that ended for a `Reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Retry {
    /// At the next periodic resync.
    Resync,
    /// Soon, after a pause that doubles with each consecutive failure (up to the resync
    /// interval): the cause is likely to pass by itself.
    Backoff,
    /// Not before something changes (the deployment, its credential) or the next resync:
    /// someone must act, and retrying sooner only costs calls.
    WaitForChange,
}

impl Retry {
    pub fn as_str(self) -> &'static str {
        match self {
            Retry::Resync => "resync",
            Retry::Backoff => "backoff",
            Retry::WaitForChange => "wait_for_change",
        }
    }
}

impl Reason {
    pub const ALL: [Reason; 13] = [
        Reason::Converged,
        Reason::Idle,
        Reason::ActionsFailed,
        Reason::DiscoveryIncomplete,
        Reason::AwsUnavailable,
        Reason::StoreUnavailable,
        Reason::Busy,
        Reason::RoleNotAssumable,
        Reason::RoleUnsafe,
        Reason::RolePermissions,
        Reason::ScopeProblems,
        Reason::CredentialMissing,
        Reason::NoAwsCredentials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Converged => "converged",
            Reason::Idle => "idle",
            Reason::ActionsFailed => "actions_failed",
            Reason::DiscoveryIncomplete => "discovery_incomplete",
            Reason::AwsUnavailable => "aws_unavailable",
            Reason::StoreUnavailable => "store_unavailable",
            Reason::Busy => "busy",
            Reason::RoleNotAssumable => "role_not_assumable",
            Reason::RoleUnsafe => "role_unsafe",
            Reason::RolePermissions => "role_permissions",
            Reason::ScopeProblems => "scope_problems",
            Reason::CredentialMissing => "credential_missing",
            Reason::NoAwsCredentials => "no_aws_credentials",
        }
    }

    /// The error policy: what a run that ended so does next.
    pub fn retry(self) -> Retry {
        match self {
            Reason::Converged | Reason::Idle => Retry::Resync,
            // Transient, or (a new role) likely to become assumable within a minute.
            Reason::ActionsFailed
            | Reason::DiscoveryIncomplete
            | Reason::AwsUnavailable
            | Reason::StoreUnavailable
            | Reason::Busy
            | Reason::RoleNotAssumable => Retry::Backoff,
            Reason::RoleUnsafe
            | Reason::RolePermissions
            | Reason::ScopeProblems
            | Reason::CredentialMissing
            | Reason::NoAwsCredentials => Retry::WaitForChange,
        }
    }
}

/// The pause before retry number `failures` (1 for the first) of a deployment whose runs
/// keep failing for a `Backoff` reason: `base` doubling, at most `cap` (the resync interval).
pub fn backoff(failures: u32, base: std::time::Duration, cap: std::time::Duration) -> std::time::Duration {
    base.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(20))).min(cap)
}

/// The shape of `Deployment`'s JSON. The store records it beside each body it writes, and
/// answers a body written in this shape as it is stored, without parsing it; a body written
/// by a release with another shape is parsed and written again first. Any change to the
/// JSON a deployment serializes to must raise it: `the_json_shape_is_pinned` fails until
/// it is raised.
pub const JSON_FORMAT: i64 = 1;

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
    /// The organization's event feed, when the deployment's organization enrollment uses
    /// one (read-only: set by the enrollment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_feed: Option<EventFeed>,
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
            event_feed: self.event_feed.clone(),
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
        self.event_feed = spec.event_feed;
    }
}

mod parse;
mod scope_items;
pub use parse::*;

#[cfg(test)]
mod tests;
