//! The three protection levels, with the reference's fixed ids.

use garrison_model::policy::{Policy, PolicyFeature};

pub const ESSENTIALS: &str = "A8E8B104-8F45-411D-A240-A30EA5FE25B0";
pub const PROFESSIONAL: &str = "D12D5E67-166C-474F-87AA-6F86FC9FB9BC";
pub const ENTERPRISE: &str = "EC735B49-2517-4D98-BB9D-BEBC1E75D56D";

fn policy(id: &str, name: &str, family: &str, features: &[&str]) -> Policy {
    Policy {
        id: id.into(),
        name: name.into(),
        product_family: family.into(),
        features: features.iter().map(|f| PolicyFeature { kind: (*f).into() }).collect(),
    }
}

pub fn all() -> Vec<Policy> {
    vec![
        policy(ESSENTIALS, "Essentials", "assess", &["scan", "config_assessment"]),
        policy(PROFESSIONAL, "Professional", "detect", &["scan", "config_assessment", "ids", "log"]),
        policy(ENTERPRISE, "Enterprise", "respond", &["scan", "config_assessment", "ids", "log"]),
    ]
}

/// Looks a policy up by id, case-insensitively (clients copy UUIDs in either case).
pub fn get(id: &str) -> Option<Policy> {
    all().into_iter().find(|p| p.id.eq_ignore_ascii_case(id))
}
