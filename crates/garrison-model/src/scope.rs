//! Asset keys in the reference format (`/aws/<region>`, `/aws/<region>/vpc/<vpc-id>`, …)
//! and the scope item types allowed in a deployment's include and exclude lists.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// A parsed AWS asset key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AssetKey {
    Region {
        region: String,
    },
    Vpc {
        region: String,
        vpc: String,
    },
    Subnet {
        region: String,
        subnet: String,
    },
    Host {
        region: String,
        instance: String,
    },
    /// The VPCs of a region carrying a tag (any value when `value` is None): a garrison
    /// extension, so that a template can scope accounts whose VPC ids nobody knows yet.
    Tag {
        region: String,
        key: String,
        value: Option<String>,
    },
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
    Tag,
}

impl ScopeType {
    pub const INCLUDE: [ScopeType; 5] =
        [ScopeType::Deployment, ScopeType::Region, ScopeType::Vpc, ScopeType::Host, ScopeType::Tag];
    pub const EXCLUDE: [ScopeType; 5] =
        [ScopeType::Region, ScopeType::Vpc, ScopeType::Subnet, ScopeType::Host, ScopeType::Tag];

    pub fn as_str(self) -> &'static str {
        match self {
            ScopeType::Deployment => "deployment",
            ScopeType::Region => "region",
            ScopeType::Vpc => "vpc",
            ScopeType::Subnet => "subnet",
            ScopeType::Host => "host",
            ScopeType::Tag => "tag",
        }
    }

    pub fn parse(s: &str) -> Option<ScopeType> {
        Some(match s {
            "deployment" => ScopeType::Deployment,
            "region" => ScopeType::Region,
            "vpc" => ScopeType::Vpc,
            "subnet" => ScopeType::Subnet,
            "host" => ScopeType::Host,
            "tag" => ScopeType::Tag,
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
            ScopeType::Tag => {
                "/aws/<region>/tag/<tag-key>[=<value>] (the region's VPCs carrying that tag), \
                 e.g. /aws/us-east-1/tag/garrison:protect=true"
            }
        }
    }
}

static REGION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$").unwrap());
/// The characters AWS allows in a tag key (without `=`, which separates the value here)
/// and in a value; their lengths (128 and 256 characters) are checked apart, a counted
/// Unicode class being too large for the regex engine.
static TAG_KEY: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[\p{L}\p{Z}\p{N}_.:/+\-@]+$").unwrap());
static TAG_VALUE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$").unwrap());
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
            [_, "tag", _, ..] => {
                // Tag keys may hold `/`: the key is all that follows `tag/`.
                let tag = rest.split_once("/tag/")?.1;
                let (key, value) = match tag.split_once('=') {
                    Some((k, v)) => (k, Some(v)),
                    None => (tag, None),
                };
                let key_ok = TAG_KEY.is_match(key) && key.chars().count() <= 128;
                let value_ok = value.is_none_or(|v| TAG_VALUE.is_match(v) && v.chars().count() <= 256);
                (key_ok && value_ok).then(|| AssetKey::Tag {
                    region,
                    key: key.to_string(),
                    value: value.map(str::to_string),
                })
            }
            _ => None,
        }
    }

    pub fn scope_type(&self) -> ScopeType {
        match self {
            AssetKey::Region { .. } => ScopeType::Region,
            AssetKey::Vpc { .. } => ScopeType::Vpc,
            AssetKey::Subnet { .. } => ScopeType::Subnet,
            AssetKey::Host { .. } => ScopeType::Host,
            AssetKey::Tag { .. } => ScopeType::Tag,
        }
    }

    pub fn region(&self) -> &str {
        match self {
            AssetKey::Region { region }
            | AssetKey::Vpc { region, .. }
            | AssetKey::Subnet { region, .. }
            | AssetKey::Host { region, .. }
            | AssetKey::Tag { region, .. } => region,
        }
    }

    pub fn render(&self) -> String {
        match self {
            AssetKey::Region { region } => format!("/aws/{region}"),
            AssetKey::Vpc { region, vpc } => format!("/aws/{region}/vpc/{vpc}"),
            AssetKey::Subnet { region, subnet } => format!("/aws/{region}/subnet/{subnet}"),
            AssetKey::Host { region, instance } => format!("/aws/{region}/host/{instance}"),
            AssetKey::Tag { region, key, value: None } => format!("/aws/{region}/tag/{key}"),
            AssetKey::Tag { region, key, value: Some(v) } => format!("/aws/{region}/tag/{key}={v}"),
        }
    }

    /// Whether a VPC with these tags carries the tag a `Tag` key names (false for others).
    pub fn tag_matches(&self, tags: &crate::snapshot::Tags) -> bool {
        match self {
            AssetKey::Tag { key, value, .. } => {
                tags.get(key).is_some_and(|v| value.as_ref().is_none_or(|want| want == v))
            }
            _ => false,
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
        assert_eq!(
            AssetKey::parse("/aws/us-east-1/tag/garrison:protect=true"),
            Some(AssetKey::Tag {
                region: "us-east-1".into(),
                key: "garrison:protect".into(),
                value: Some("true".into())
            })
        );
        assert_eq!(
            AssetKey::parse("/aws/us-east-1/tag/team/payments"),
            Some(AssetKey::Tag { region: "us-east-1".into(), key: "team/payments".into(), value: None }),
            "a key may hold a slash"
        );
        assert_eq!(
            AssetKey::parse("/aws/us-east-1/tag/env="),
            Some(AssetKey::Tag { region: "us-east-1".into(), key: "env".into(), value: Some(String::new()) }),
            "an empty value is a value"
        );
    }

    #[test]
    fn a_tag_key_matches_the_vpcs_carrying_it() {
        let tags = |kv: &[(&str, &str)]| kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let exact = AssetKey::parse("/aws/us-east-1/tag/garrison:protect=true").unwrap();
        let any = AssetKey::parse("/aws/us-east-1/tag/garrison:protect").unwrap();
        assert!(exact.tag_matches(&tags(&[("garrison:protect", "true")])));
        assert!(!exact.tag_matches(&tags(&[("garrison:protect", "false")])));
        assert!(!exact.tag_matches(&tags(&[("Name", "garrison:protect=true")])));
        assert!(any.tag_matches(&tags(&[("garrison:protect", "")])));
        assert!(!any.tag_matches(&tags(&[])));
        assert!(!AssetKey::parse("/aws/us-east-1").unwrap().tag_matches(&tags(&[("garrison:protect", "true")])));
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
            "/aws/us-east-1/tag/",
            "/aws/us-east-1/tag/=true",
            "/aws/us-east-1/tag/a\u{0}b",
            "/aws/us-east-1/tag/k=v\u{7}",
            &format!("/aws/us-east-1/tag/{}", "k".repeat(129)),
            &format!("/aws/us-east-1/tag/k={}", "v".repeat(257)),
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
        fn render_parse_roundtrip(
            region in "[a-z]{2}-[a-z]{4,9}-[1-9]",
            id in "[0-9a-f]{8,17}",
            kind in 0..6u8,
            tag_key in "[a-zA-Z0-9 _.:/+@-]{1,128}",
            tag_value in "[a-zA-Z0-9 _.:/=+@-]{0,256}",
        ) {
            let key = match kind {
                0 => AssetKey::Region { region },
                1 => AssetKey::Vpc { region, vpc: format!("vpc-{id}") },
                2 => AssetKey::Subnet { region, subnet: format!("subnet-{id}") },
                3 => AssetKey::Host { region, instance: format!("i-{id}") },
                4 => AssetKey::Tag { region, key: tag_key, value: None },
                _ => AssetKey::Tag { region, key: tag_key, value: Some(tag_value) },
            };
            prop_assert_eq!(AssetKey::parse(&key.render()), Some(key));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,60}") {
            let _ = AssetKey::parse(&s);
        }
    }
}
