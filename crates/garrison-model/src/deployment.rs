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

mod parse;
mod scope_items;
pub use parse::*;

#[cfg(test)]
mod tests;
