//! Which policy, if any, applies to a place in the account: the deployment's scope
//! resolved most-specific-wins (host > vpc > VPC tag > region > deployment) with exclusions
//! (region, vpc, subnet, host, VPC tag) taking precedence over any include.

use crate::deployment::{PolicyRef, Scope};
use crate::scope::{AssetKey, ScopeType};
use crate::snapshot::Tags;

/// A location to judge: a region, a VPC in it, a subnet, a host.
#[derive(Debug, Clone, Copy, Default)]
pub struct Place<'a> {
    pub region: &'a str,
    pub vpc: Option<&'a str>,
    pub subnet: Option<&'a str>,
    pub host: Option<&'a str>,
    /// The tags of the VPC, for `tag` items (a place without them matches none).
    pub vpc_tags: Option<&'a Tags>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    /// In scope, with the policy of the most specific include item (None when it has none).
    Included(Option<PolicyRef>),
    /// Named by an exclude item.
    Excluded,
    /// No include item reaches it.
    OutOfScope,
}

impl Coverage {
    pub fn is_included(&self) -> bool {
        matches!(self, Coverage::Included(_))
    }
}

pub fn coverage(scope: &Scope, p: Place<'_>) -> Coverage {
    for ex in &scope.exclude {
        let hit = match AssetKey::parse(&ex.key) {
            Some(AssetKey::Region { region }) => region == p.region,
            Some(AssetKey::Vpc { region, vpc }) => region == p.region && p.vpc == Some(vpc.as_str()),
            Some(AssetKey::Subnet { region, subnet }) => region == p.region && p.subnet == Some(subnet.as_str()),
            Some(AssetKey::Host { region, instance }) => region == p.region && p.host == Some(instance.as_str()),
            Some(k @ AssetKey::Tag { .. }) => k.region() == p.region && p.vpc_tags.is_some_and(|t| k.tag_matches(t)),
            None => false,
        };
        if hit {
            return Coverage::Excluded;
        }
    }
    let mut best: Option<(u8, Option<PolicyRef>)> = None;
    for inc in &scope.include {
        let rank = match (inc.kind, AssetKey::parse(&inc.key)) {
            (ScopeType::Deployment, _) => Some(0),
            (_, Some(AssetKey::Region { region })) if region == p.region => Some(1),
            (_, Some(k @ AssetKey::Tag { .. }))
                if k.region() == p.region && p.vpc_tags.is_some_and(|t| k.tag_matches(t)) =>
            {
                Some(2)
            }
            (_, Some(AssetKey::Vpc { region, vpc })) if region == p.region && p.vpc == Some(vpc.as_str()) => Some(3),
            (_, Some(AssetKey::Host { region, instance }))
                if region == p.region && p.host == Some(instance.as_str()) =>
            {
                Some(4)
            }
            _ => None,
        };
        if let Some(r) = rank
            && best.as_ref().is_none_or(|(b, _)| r > *b)
        {
            best = Some((r, inc.policy.clone()));
        }
    }
    match best {
        Some((_, policy)) => Coverage::Included(policy),
        None => Coverage::OutOfScope,
    }
}

/// Regions the scope reaches by name (region, vpc, host and tag items); `deployment` items
/// reach every region, which the caller resolves.
pub fn named_regions(scope: &Scope) -> (bool, Vec<String>) {
    let mut all = false;
    let mut out: Vec<String> = vec![];
    for inc in &scope.include {
        if inc.kind == ScopeType::Deployment {
            all = true;
        } else if let Some(k) = AssetKey::parse(&inc.key) {
            out.push(k.region().to_string());
        }
    }
    let excluded: Vec<String> = scope
        .exclude
        .iter()
        .filter(|e| e.kind == ScopeType::Region)
        .filter_map(|e| AssetKey::parse(&e.key).map(|k| k.region().to_string()))
        .collect();
    out.retain(|r| !excluded.contains(r));
    out.sort();
    out.dedup();
    (all, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::{ExcludeItem, IncludeItem};

    fn inc(kind: ScopeType, key: &str, policy: &str) -> IncludeItem {
        IncludeItem { kind, key: key.into(), policy: Some(PolicyRef { id: policy.into() }) }
    }

    #[test]
    fn most_specific_include_wins_and_excludes_beat_includes() {
        let scope = Scope {
            include: vec![
                inc(ScopeType::Region, "/aws/us-east-1", "ESS"),
                inc(ScopeType::Vpc, "/aws/us-east-1/vpc/vpc-0000000a", "PRO"),
            ],
            exclude: vec![
                ExcludeItem { kind: ScopeType::Subnet, key: "/aws/us-east-1/subnet/subnet-0000000b".into() },
                ExcludeItem { kind: ScopeType::Host, key: "/aws/us-east-1/host/i-0000000c".into() },
            ],
        };
        let p = |vpc, subnet, host| Place {
            region: "us-east-1",
            vpc: Some(vpc),
            subnet: Some(subnet),
            host,
            vpc_tags: None,
        };
        let pol = |c: Coverage| match c {
            Coverage::Included(Some(p)) => p.id,
            other => format!("{other:?}"),
        };
        assert_eq!(pol(coverage(&scope, p("vpc-00000001", "subnet-00000001", None))), "ESS");
        assert_eq!(pol(coverage(&scope, p("vpc-0000000a", "subnet-00000001", None))), "PRO");
        assert_eq!(coverage(&scope, p("vpc-0000000a", "subnet-0000000b", None)), Coverage::Excluded);
        assert_eq!(coverage(&scope, p("vpc-0000000a", "subnet-00000001", Some("i-0000000c"))), Coverage::Excluded);
        assert_eq!(coverage(&scope, Place { region: "eu-west-1", ..Default::default() }), Coverage::OutOfScope);
        assert_eq!(named_regions(&scope), (false, vec!["us-east-1".to_string()]));
    }

    #[test]
    fn a_tag_item_covers_the_tagged_vpcs_of_its_region_below_a_named_vpc() {
        let scope = Scope {
            include: vec![
                inc(ScopeType::Tag, "/aws/us-east-1/tag/garrison:protect=true", "PRO"),
                inc(ScopeType::Vpc, "/aws/us-east-1/vpc/vpc-0000000a", "ESS"),
            ],
            exclude: vec![ExcludeItem { kind: ScopeType::Vpc, key: "/aws/us-east-1/vpc/vpc-0000000e".into() }],
        };
        let tagged: Tags = [("garrison:protect".to_string(), "true".to_string())].into();
        let plain = Tags::new();
        let at = |region, vpc, tags| Place { region, vpc: Some(vpc), vpc_tags: Some(tags), ..Default::default() };
        let pol = |c: Coverage| match c {
            Coverage::Included(Some(p)) => p.id,
            other => format!("{other:?}"),
        };
        assert_eq!(pol(coverage(&scope, at("us-east-1", "vpc-00000001", &tagged))), "PRO");
        assert_eq!(coverage(&scope, at("us-east-1", "vpc-00000002", &plain)), Coverage::OutOfScope);
        assert_eq!(coverage(&scope, at("us-west-2", "vpc-00000003", &tagged)), Coverage::OutOfScope, "its region only");
        assert_eq!(pol(coverage(&scope, at("us-east-1", "vpc-0000000a", &tagged))), "ESS", "a named VPC wins");
        assert_eq!(coverage(&scope, at("us-east-1", "vpc-0000000e", &tagged)), Coverage::Excluded);
        let host = Place { host: Some("i-00000001"), ..at("us-east-1", "vpc-00000001", &tagged) };
        assert_eq!(pol(coverage(&scope, host)), "PRO", "a host in a tagged VPC");
        assert_eq!(coverage(&scope, Place { region: "us-east-1", ..Default::default() }), Coverage::OutOfScope);
        assert_eq!(named_regions(&scope), (false, vec!["us-east-1".to_string()]));
        // And as an exclusion: a region's VPCs but those tagged otherwise.
        let scope = Scope {
            include: vec![inc(ScopeType::Region, "/aws/us-east-1", "ESS")],
            exclude: vec![ExcludeItem {
                kind: ScopeType::Tag,
                key: "/aws/us-east-1/tag/garrison:protect=false".into(),
            }],
        };
        let off: Tags = [("garrison:protect".to_string(), "false".to_string())].into();
        assert_eq!(coverage(&scope, at("us-east-1", "vpc-00000001", &off)), Coverage::Excluded);
        assert_eq!(pol(coverage(&scope, at("us-east-1", "vpc-00000001", &plain))), "ESS");
    }
}
