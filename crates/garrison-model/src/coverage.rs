//! Which policy, if any, applies to a place in the account: the deployment's scope
//! resolved most-specific-wins (host > vpc > region > deployment) with exclusions
//! (region, vpc, subnet, host) taking precedence over any include.

use crate::deployment::{PolicyRef, Scope};
use crate::scope::{AssetKey, ScopeType};

/// A location to judge: a region, a VPC in it, a subnet, a host.
#[derive(Debug, Clone, Copy, Default)]
pub struct Place<'a> {
    pub region: &'a str,
    pub vpc: Option<&'a str>,
    pub subnet: Option<&'a str>,
    pub host: Option<&'a str>,
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
            (_, Some(AssetKey::Vpc { region, vpc })) if region == p.region && p.vpc == Some(vpc.as_str()) => Some(2),
            (_, Some(AssetKey::Host { region, instance }))
                if region == p.region && p.host == Some(instance.as_str()) =>
            {
                Some(3)
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

/// Regions the scope reaches by name (region, vpc and host items); `deployment` items
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
        let p = |vpc, subnet, host| Place { region: "us-east-1", vpc: Some(vpc), subnet: Some(subnet), host };
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
}
