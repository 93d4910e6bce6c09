//! aims: tenant accounts (with managed children), users and access keys.

use serde::{Deserialize, Serialize};

use crate::Stamp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub active: bool,
    pub version: i64,
    pub accessible_locations: Vec<String>,
    pub default_location: String,
    pub created: Stamp,
    pub modified: Stamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub username: String,
    pub email: String,
    pub active: bool,
    pub locked: bool,
    pub version: i64,
    /// The user's global role (one of [`GLOBAL_ROLES`]); the reference's `include_role_ids` shape.
    pub role_ids: Vec<String>,
    pub created: Stamp,
    pub modified: Stamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccessKey {
    pub access_key_id: String,
    pub user_id: String,
    pub account_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub created: Stamp,
    pub modified: Stamp,
    /// Present only in the response that creates the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
}

/// The one location garrison answers for; kept for clients that read it.
pub const LOCATION: &str = "garrison";

/// Account ids are 8 decimal digits, like the reference's.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit())
}

pub use crate::permission::{
    ADMINISTRATOR_ROLE_ID, GlobalRole, OWNER_ROLE_ID, POWER_USER_ROLE_ID, READ_ONLY_ROLE_ID, SUPPORT_ROLE_ID,
    USER_ROLE_ID,
};

/// A role as aims answers it: a global role (`account_id` `*`, `global: true`) or one of an
/// account's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoleView {
    pub id: String,
    pub account_id: String,
    pub name: String,
    /// `{"service:account:action:resource": "allowed" | "denied"}`
    #[schema(value_type = Object)]
    pub permissions: serde_json::Value,
    pub legacy_permissions: Vec<String>,
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<bool>,
    pub created: Stamp,
    pub modified: Stamp,
}

impl RoleView {
    pub fn global(role: GlobalRole) -> RoleView {
        let system = || Stamp { at: 1_430_184_599, by: "System".into() };
        RoleView {
            id: role.id().into(),
            account_id: "*".into(),
            name: role.name().into(),
            permissions: role.permissions().to_json(),
            legacy_permissions: vec![],
            version: 1,
            global: Some(true),
            created: system(),
            modified: system(),
        }
    }
}
