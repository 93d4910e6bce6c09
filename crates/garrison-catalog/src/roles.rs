//! Role types and their dated policy versions, loaded from `data/roles/<type>/<date>.json`.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Deserialize)]
pub struct RoleDef {
    pub role_type: String,
    /// A date, YYYY-MM-DD (`.N` for a later release of the same day); later ones supersede
    /// earlier ones, a released one never changes.
    pub version: String,
    pub description: String,
    /// Where the policy text comes from.
    pub source: String,
    pub policy_document: Value,
}

/// Each file is embedded so that the binary carries its catalog.
const FILES: &[&str] = &[
    include_str!("../data/roles/ci_full/2020-01-10.json"),
    include_str!("../data/roles/ci_full/2026-11-30.json"),
    include_str!("../data/roles/ci_full/2026-12-06.json"),
    include_str!("../data/roles/ci_full/2026-12-06.2.json"),
    include_str!("../data/roles/ci_full/2026-12-06.3.json"),
    include_str!("../data/roles/ci_full/2026-12-07.json"),
    include_str!("../data/roles/ci_manual/2020-01-10.json"),
    include_str!("../data/roles/ci_essentials/2021-03-30.json"),
    include_str!("../data/roles/ci_readonly/2019-10-22.json"),
    include_str!("../data/roles/ci_x_account_ct/2021-03-30.json"),
    include_str!("../data/roles/ci_organization/2026-12-06.json"),
];

/// Role types of the reference that garrison does not offer, with the reason.
pub const RETIRED: &[(&str, &str)] = &[("cd_full", "the legacy Cloud Defender role is not offered by garrison")];

pub const PLATFORMS: &[&str] = &["aws"];

#[derive(Debug, Clone)]
pub struct Catalog {
    roles: Vec<RoleDef>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("unknown platform_type {0:?}; garrison supports \"aws\"")]
    Platform(String),
    #[error("unknown role_type {found:?}; known: {known}")]
    RoleType { found: String, known: String },
    #[error("role_type {0:?}: {1}")]
    Retired(String, String),
    #[error("role {role_type} has no version {found:?}; versions: {known} (or \"latest\")")]
    Version { role_type: String, found: String, known: String },
}

impl Catalog {
    pub fn builtin() -> Catalog {
        let mut roles: Vec<RoleDef> =
            FILES.iter().map(|f| serde_json::from_str(f).expect("embedded role file is valid JSON")).collect();
        roles.sort_by(|a, b| (&a.role_type, &a.version).cmp(&(&b.role_type, &b.version)));
        Catalog { roles }
    }

    pub fn role_types(&self) -> Vec<&str> {
        let mut t: Vec<&str> = self.roles.iter().map(|r| r.role_type.as_str()).collect();
        t.dedup();
        t
    }

    pub fn versions(&self, role_type: &str) -> Vec<&str> {
        self.roles.iter().filter(|r| r.role_type == role_type).map(|r| r.version.as_str()).collect()
    }

    pub fn all(&self) -> &[RoleDef] {
        &self.roles
    }

    pub fn latest(&self) -> Vec<&RoleDef> {
        self.role_types().into_iter().filter_map(|t| self.roles.iter().rfind(|r| r.role_type == t)).collect()
    }

    pub fn get(&self, platform: &str, role_type: &str, version: &str) -> Result<&RoleDef, LookupError> {
        if !PLATFORMS.contains(&platform) {
            return Err(LookupError::Platform(platform.into()));
        }
        if let Some((_, why)) = RETIRED.iter().find(|(t, _)| *t == role_type) {
            return Err(LookupError::Retired(role_type.into(), (*why).into()));
        }
        let versions = self.versions(role_type);
        if versions.is_empty() {
            return Err(LookupError::RoleType { found: role_type.into(), known: self.role_types().join(", ") });
        }
        let found = if version == "latest" {
            self.roles.iter().rfind(|r| r.role_type == role_type)
        } else {
            self.roles.iter().find(|r| r.role_type == role_type && r.version == version)
        };
        found.ok_or_else(|| LookupError::Version {
            role_type: role_type.into(),
            found: version.into(),
            known: versions.join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_role_type_is_there() {
        let c = Catalog::builtin();
        assert_eq!(
            c.role_types(),
            ["ci_essentials", "ci_full", "ci_manual", "ci_organization", "ci_readonly", "ci_x_account_ct"]
        );
        for r in c.latest() {
            let st = r.policy_document["Statement"].as_array().unwrap();
            assert!(!st.is_empty(), "{}", r.role_type);
            assert_eq!(r.policy_document["Version"], "2012-10-17");
        }
    }

    #[test]
    fn latest_resolves_to_the_newest_date() {
        let c = Catalog::builtin();
        assert_eq!(c.get("aws", "ci_full", "latest").unwrap().version, "2026-12-07");
        assert_eq!(c.get("aws", "ci_full", "2020-01-10").unwrap().version, "2020-01-10");
        assert!(matches!(c.get("aws", "ci_full", "2019-01-01"), Err(LookupError::Version { .. })));
        assert!(matches!(c.get("aws", "cd_full", "latest"), Err(LookupError::Retired(..))));
        assert!(matches!(c.get("azure", "ci_full", "latest"), Err(LookupError::Platform(_))));
        assert!(matches!(c.get("aws", "nope", "latest"), Err(LookupError::RoleType { .. })));
    }
}
