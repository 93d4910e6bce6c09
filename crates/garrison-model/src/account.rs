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

/// A global role of the reference (aims `list_global_roles`), as far as garrison enforces it:
/// Administrator manages users and their keys; Power User does everything else in its
/// accounts and only its own keys; Read Only reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Administrator,
    PowerUser,
    ReadOnly,
}

/// The reference's global role ids (aims.v1.yaml, `list_global_roles`).
pub const ADMINISTRATOR_ROLE_ID: &str = "4389AB00-BBCC-4EB1-83E9-7A906A452BF0";
pub const POWER_USER_ROLE_ID: &str = "2A33175D-86EF-44B5-AA39-C9549F6306DF";
pub const READ_ONLY_ROLE_ID: &str = "F578CCE5-9574-4489-BF05-A04075838DE3";

pub const GLOBAL_ROLES: [(Role, &str, &str); 3] = [
    (Role::Administrator, ADMINISTRATOR_ROLE_ID, "Administrator"),
    (Role::PowerUser, POWER_USER_ROLE_ID, "Power User"),
    (Role::ReadOnly, READ_ONLY_ROLE_ID, "Read Only"),
];

impl Role {
    pub fn id(self) -> &'static str {
        match self {
            Role::Administrator => ADMINISTRATOR_ROLE_ID,
            Role::PowerUser => POWER_USER_ROLE_ID,
            Role::ReadOnly => READ_ONLY_ROLE_ID,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Administrator => "Administrator",
            Role::PowerUser => "Power User",
            Role::ReadOnly => "Read Only",
        }
    }

    /// The role of a stored or requested id (case-insensitive, as the reference's ids are upper-case UUIDs).
    pub fn from_id(id: &str) -> Option<Role> {
        GLOBAL_ROLES.iter().find(|(_, rid, _)| rid.eq_ignore_ascii_case(id)).map(|(r, _, _)| *r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_ids_round_trip() {
        for (role, id, _) in GLOBAL_ROLES {
            assert_eq!(Role::from_id(id), Some(role));
            assert_eq!(Role::from_id(&id.to_lowercase()), Some(role));
            assert_eq!(role.id(), id);
            assert_eq!(role.name(), GLOBAL_ROLES.iter().find(|(r, _, _)| *r == role).unwrap().2);
        }
        assert_eq!(Role::from_id("not-a-role"), None);
    }
}
