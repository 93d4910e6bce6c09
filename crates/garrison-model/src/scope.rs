//! Asset keys in the reference format (`/aws/<region>`, `/aws/<region>/vpc/<vpc-id>`, …)
//! and the scope item types allowed in a deployment's include and exclude lists.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// A parsed AWS asset key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AssetKey {
    Region { region: String },
    Vpc { region: String, vpc: String },
    Subnet { region: String, subnet: String },
    Host { region: String, instance: String },
}

/// The kinds of scope item the reference API knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScopeType {
    Deployment,
    Region,
    Vpc,
    Subnet,
    Host,
}

impl ScopeType {
    pub const INCLUDE: [ScopeType; 4] = [ScopeType::Deployment, ScopeType::Region, ScopeType::Vpc, ScopeType::Host];
    pub const EXCLUDE: [ScopeType; 4] = [ScopeType::Region, ScopeType::Vpc, ScopeType::Subnet, ScopeType::Host];

    pub fn as_str(self) -> &'static str {
        match self {
            ScopeType::Deployment => "deployment",
            ScopeType::Region => "region",
            ScopeType::Vpc => "vpc",
            ScopeType::Subnet => "subnet",
            ScopeType::Host => "host",
        }
    }

    pub fn parse(s: &str) -> Option<ScopeType> {
        Some(match s {
            "deployment" => ScopeType::Deployment,
            "region" => ScopeType::Region,
            "vpc" => ScopeType::Vpc,
            "subnet" => ScopeType::Subnet,
            "host" => ScopeType::Host,
            _ => return None,
        })
    }

    /// The key shape this type takes, for error messages.
    pub fn key_shape(self) -> &'static str {
        match self {
            ScopeType::Deployment => "/aws (the whole AWS account of the deployment)",
            ScopeType::Region => "/aws/<region>, e.g. /aws/us-east-1",
            ScopeType::Vpc => "/aws/<region>/vpc/<vpc-id>, e.g. /aws/us-east-1/vpc/vpc-0a1b2c3d",
            ScopeType::Subnet => "/aws/<region>/subnet/<subnet-id>, e.g. /aws/us-east-1/subnet/subnet-0a1b2c3d",
            ScopeType::Host => "/aws/<region>/host/<instance-id>, e.g. /aws/us-east-1/host/i-0a1b2c3d",
        }
    }
}

static REGION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$").unwrap());
static RESOURCE_ID: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(vpc|subnet|i)-[0-9a-f]{8,17}$").unwrap());

pub fn is_region(s: &str) -> bool {
    REGION.is_match(s)
}

/// The regions of the `aws` partition, the one garrison protects (its credentials are
/// `arn:aws:` roles): a key or install region outside it is refused by name rather than
/// failing later at every call.
pub const AWS_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

pub fn is_known_region(s: &str) -> bool {
    AWS_REGIONS.contains(&s)
}

fn id_ok(prefix: &str, id: &str) -> bool {
    RESOURCE_ID.is_match(id) && id.starts_with(&format!("{prefix}-"))
}

impl AssetKey {
    /// Parses a key; `None` when it is not one of the four AWS shapes.
    pub fn parse(key: &str) -> Option<AssetKey> {
        let rest = key.strip_prefix("/aws/")?;
        let parts: Vec<&str> = rest.split('/').collect();
        let region = parts.first().copied().filter(|r| is_region(r))?.to_string();
        match parts.as_slice() {
            [_] => Some(AssetKey::Region { region }),
            [_, "vpc", id] if id_ok("vpc", id) => Some(AssetKey::Vpc { region, vpc: id.to_string() }),
            [_, "subnet", id] if id_ok("subnet", id) => Some(AssetKey::Subnet { region, subnet: id.to_string() }),
            [_, "host", id] if id_ok("i", id) => Some(AssetKey::Host { region, instance: id.to_string() }),
            _ => None,
        }
    }

    pub fn scope_type(&self) -> ScopeType {
        match self {
            AssetKey::Region { .. } => ScopeType::Region,
            AssetKey::Vpc { .. } => ScopeType::Vpc,
            AssetKey::Subnet { .. } => ScopeType::Subnet,
            AssetKey::Host { .. } => ScopeType::Host,
        }
    }

    pub fn region(&self) -> &str {
        match self {
            AssetKey::Region { region }
            | AssetKey::Vpc { region, .. }
            | AssetKey::Subnet { region, .. }
            | AssetKey::Host { region, .. } => region,
        }
    }

    pub fn render(&self) -> String {
        match self {
            AssetKey::Region { region } => format!("/aws/{region}"),
            AssetKey::Vpc { region, vpc } => format!("/aws/{region}/vpc/{vpc}"),
            AssetKey::Subnet { region, subnet } => format!("/aws/{region}/subnet/{subnet}"),
            AssetKey::Host { region, instance } => format!("/aws/{region}/host/{instance}"),
        }
    }
}

/// Checks that `key` is a valid key for a scope item of type `t`.
pub fn key_matches(t: ScopeType, key: &str) -> bool {
    match t {
        ScopeType::Deployment => key == "/aws",
        _ => AssetKey::parse(key).is_some_and(|k| k.scope_type() == t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_reference_shapes() {
        assert_eq!(AssetKey::parse("/aws/us-east-1"), Some(AssetKey::Region { region: "us-east-1".into() }));
        assert_eq!(
            AssetKey::parse("/aws/eu-west-2/vpc/vpc-0123abcd"),
            Some(AssetKey::Vpc { region: "eu-west-2".into(), vpc: "vpc-0123abcd".into() })
        );
        assert!(AssetKey::parse("/aws/us-gov-west-1/subnet/subnet-0123456789abcdef0").is_some());
        assert!(AssetKey::parse("/aws/ap-southeast-2/host/i-0123456789abcdef0").is_some());
    }

    #[test]
    fn refuses_malformed_keys() {
        for k in [
            "",
            "/aws",
            "/aws/",
            "aws/us-east-1",
            "/aws/US-EAST-1",
            "/aws/us-east-1/",
            "/aws/us-east-1/vpc/",
            "/aws/us-east-1/vpc/subnet-0123abcd",
            "/aws/us-east-1/vpc/vpc-xyz",
            "/azure/us-east-1",
            "/aws/us-east-1/zone/us-east-1a",
            "/aws/us-east-1/vpc/vpc-0123abcd/extra",
        ] {
            assert_eq!(AssetKey::parse(k), None, "{k}");
        }
    }

    #[test]
    fn key_matches_type() {
        assert!(key_matches(ScopeType::Vpc, "/aws/us-east-1/vpc/vpc-0123abcd"));
        assert!(!key_matches(ScopeType::Region, "/aws/us-east-1/vpc/vpc-0123abcd"));
        assert!(key_matches(ScopeType::Deployment, "/aws"));
    }

    proptest! {
        #[test]
        fn render_parse_roundtrip(region in "[a-z]{2}-[a-z]{4,9}-[1-9]", id in "[0-9a-f]{8,17}", kind in 0..4u8) {
            let key = match kind {
                0 => AssetKey::Region { region },
                1 => AssetKey::Vpc { region, vpc: format!("vpc-{id}") },
                2 => AssetKey::Subnet { region, subnet: format!("subnet-{id}") },
                _ => AssetKey::Host { region, instance: format!("i-{id}") },
            };
            prop_assert_eq!(AssetKey::parse(&key.render()), Some(key));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,60}") {
            let _ = AssetKey::parse(&s);
        }
    }
}
