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
