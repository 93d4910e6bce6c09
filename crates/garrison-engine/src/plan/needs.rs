//! What each VPC needs: a scan appliance where at least one running, in-scope instance is
//! covered by a policy with the `scan` feature, and (policies with `ids`) an IDS appliance
//! in every zone holding such an instance. Instances in excluded subnets or excluded
//! hosts do not count; stopped instances do not count.

use std::collections::{BTreeMap, BTreeSet};

use garrison_model::coverage::{Coverage, Place, coverage};
use garrison_model::deployment::Deployment;
use garrison_model::policy::Policy;
use garrison_model::snapshot::Snapshot;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcNeed {
    pub region: String,
    pub vpc_id: String,
    pub cidr: String,
    /// Running, counted instances.
    pub hosts: usize,
    pub scan: bool,
    /// Zones that need an IDS appliance.
    pub ids_zones: BTreeSet<String>,
    /// The highest-ranked policy covering a counted instance (by feature count).
    pub policy: Option<String>,
    /// The policy the VPC itself is covered by (None for a VPC reached only through hosts).
    pub vpc_policy: Option<String>,
    /// Counted instances per zone.
    pub zone_hosts: BTreeMap<String, usize>,
    /// `ids_zones` were chosen by an `ids_appliances_placement` option: the appliances there
    /// watch the VPC's other zones too, and no others are kept.
    pub ids_placed: bool,
    /// The hub VPC (same region) whose appliances protect this one (otis
    /// `cross_network_protection` over a peering or a transit gateway): none of its own.
    pub hub: Option<String>,
    /// As a hub: the CIDRs of the VPCs it protects (its groups and ACLs let them in).
    pub peers: Vec<String>,
    /// The counted instances under a policy with `ids` (the sources of traffic mirroring).
    pub ids_hosts: Vec<String>,
}

impl VpcNeed {
    /// Professional and up: the VPC or one of its counted hosts is under a policy with `ids`.
    pub fn detect(&self) -> bool {
        let ids = |p: &Option<String>| {
            p.as_deref().and_then(garrison_catalog::policies::get).is_some_and(|p| p.has_feature("ids"))
        };
        !self.ids_zones.is_empty() || ids(&self.vpc_policy)
    }
}

/// Every in-scope VPC of the snapshot with what it needs (VPCs needing nothing included,
/// so that a planner can stop or remove what they no longer need).
pub fn needs(d: &Deployment, snap: &Snapshot, policies: &[Policy]) -> Vec<VpcNeed> {
    let by_id: BTreeMap<String, &Policy> = policies.iter().map(|p| (p.id.to_ascii_uppercase(), p)).collect();
    let mut out = vec![];
    for (region, rs) in &snap.regions {
        for v in &rs.vpcs {
            let vpc_cov =
                coverage(&d.scope, Place { region, vpc: Some(&v.id), vpc_tags: Some(&v.tags), ..Default::default() });
            let mut need = VpcNeed {
                region: region.clone(),
                vpc_id: v.id.clone(),
                cidr: v.cidr.clone(),
                hosts: 0,
                scan: false,
                ids_zones: BTreeSet::new(),
                policy: None,
                vpc_policy: match &vpc_cov {
                    Coverage::Included(Some(p)) => Some(p.id.clone()),
                    _ => None,
                },
                zone_hosts: BTreeMap::new(),
                ids_placed: false,
                hub: None,
                peers: vec![],
                ids_hosts: vec![],
            };
            let mut best_rank = 0usize;
            for i in rs.instances.iter().filter(|i| {
                i.vpc_id.as_deref() == Some(v.id.as_str()) && i.is_running() && !super::desired::is_appliance(i)
            }) {
                let place = Place {
                    region,
                    vpc: Some(&v.id),
                    subnet: i.subnet_id.as_deref(),
                    host: Some(&i.id),
                    vpc_tags: Some(&v.tags),
                };
                let Coverage::Included(Some(pref)) = coverage(&d.scope, place) else { continue };
                let Some(p) = by_id.get(&pref.id.to_ascii_uppercase()) else { continue };
                need.hosts += 1;
                *need.zone_hosts.entry(i.zone.clone()).or_default() += 1;
                if p.has_feature("scan") {
                    need.scan = true;
                }
                if p.has_feature("ids") {
                    need.ids_zones.insert(i.zone.clone());
                    need.ids_hosts.push(i.id.clone());
                }
                if p.features.len() > best_rank {
                    best_rank = p.features.len();
                    need.policy = Some(p.id.clone());
                }
            }
            if vpc_cov.is_included() || need.hosts > 0 {
                out.push(need);
            }
        }
    }
    out
}

/// Hub and spokes (otis `cross_network_protection`, scoped to the protected VPC or its
/// region, naming the protecting VPC): a spoke connected to its hub in the same region and
/// deployment — an active peering, or attachments to one transit gateway — gets no
/// appliances; its hub scans for it (a scanner when any spoke needs one) and watches it (an
/// IDS appliance in at least one zone), its groups and ACLs letting the spokes' CIDRs in.
/// A spoke that is not connected, a hub of another deployment or region, or a hub that is
/// itself a spoke keeps its own appliances, and the problem says why. Connections not read
/// completely are trusted (the option stands until a read shows otherwise).
pub fn cross_network(
    needs: &mut Vec<VpcNeed>,
    deployment_id: &str,
    snap: &Snapshot,
    options: &[garrison_model::otis::TuningOption],
) -> Vec<String> {
    use garrison_model::scope::AssetKey;
    use garrison_model::snapshot::Kind;
    let mut problems = vec![];
    let mut links: Vec<(usize, String)> = vec![];
    for (i, n) in needs.iter().enumerate() {
        let Some(o) = super::tuning::option_for(options, super::tuning::CROSS, deployment_id, &n.region, &n.vpc_id)
        else {
            continue;
        };
        let hub_key = o.value["vpc_key"].as_str().unwrap_or_default();
        let at = format!("{} {}: cross_network_protection by {hub_key}", n.region, n.vpc_id);
        let Some(AssetKey::Vpc { region, vpc: hub }) = AssetKey::parse(hub_key) else { continue };
        if hub == n.vpc_id {
            continue;
        }
        let why = if o.value["deployment_id"].as_str() != Some(deployment_id) {
            Some("the protecting VPC is another deployment's (hubs are supported within one deployment)".to_string())
        } else if region != n.region {
            Some(format!("the protecting VPC is in {region} (a hub protects VPCs of its own region)"))
        } else {
            let rs = &snap.regions[&n.region];
            if !rs.vpcs.iter().any(|v| v.id == hub) {
                Some("the protecting VPC was not found".to_string())
            } else if rs.complete(Kind::Connections) && rs.connected(&n.vpc_id, &hub).is_none() {
                Some("the VPCs are neither peered nor attached to one transit gateway".to_string())
            } else {
                None
            }
        };
        match why {
            Some(why) => problems.push(format!("{at} not applied: {why}; it keeps appliances of its own")),
            None => links.push((i, hub)),
        }
    }
    let spokes: Vec<(String, String)> =
        links.iter().map(|(i, _)| (needs[*i].region.clone(), needs[*i].vpc_id.clone())).collect();
    for (i, hub) in links {
        let region = needs[i].region.clone();
        if spokes.contains(&(region.clone(), hub.clone())) {
            problems.push(format!(
                "{region} {}: cross_network_protection by {hub} not applied: that VPC is protected by another itself; it keeps appliances of its own",
                needs[i].vpc_id
            ));
            continue;
        }
        let spoke = needs[i].clone();
        let h = match needs.iter().position(|x| x.region == region && x.vpc_id == hub) {
            Some(h) => h,
            None => {
                let v = snap.regions[&region].vpcs.iter().find(|v| v.id == hub).expect("checked above");
                needs.push(VpcNeed {
                    region: region.clone(),
                    vpc_id: hub.clone(),
                    cidr: v.cidr.clone(),
                    hosts: 0,
                    scan: false,
                    ids_zones: BTreeSet::new(),
                    policy: None,
                    vpc_policy: None,
                    zone_hosts: BTreeMap::new(),
                    ids_placed: false,
                    hub: None,
                    peers: vec![],
                    ids_hosts: vec![],
                });
                needs.len() - 1
            }
        };
        let rs = &snap.regions[&region];
        let h_need = &mut needs[h];
        // A hub without hosts places its appliances in its first zone with a subnet.
        if h_need.zone_hosts.is_empty()
            && let Some(z) = rs.subnets.iter().filter(|s| s.vpc_id == hub).map(|s| s.zone.clone()).min()
        {
            h_need.zone_hosts.insert(z, 0);
        }
        h_need.scan |= spoke.scan;
        if spoke.detect() && h_need.ids_zones.is_empty() {
            let mut by: Vec<(&String, &usize)> = h_need.zone_hosts.iter().collect();
            by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            if let Some((z, _)) = by.first() {
                let z = (*z).clone();
                h_need.ids_zones.insert(z);
            }
        }
        if !h_need.peers.contains(&spoke.cidr) {
            h_need.peers.push(spoke.cidr.clone());
        }
        needs[i].hub = Some(hub);
    }
    problems
}

/// `n`'s IDS zones under the `ids_appliances_placement` option that resolves for its VPC, if
/// any (`options`: the account's options of that name): `automatic` with `max_zones` keeps the
/// most populated inhabited zones, `automatic` with `zone_keys` the named ones among the
/// inhabited, `constant` the named zones of its region whether inhabited or not. A VPC that
/// needs no IDS is left alone.
pub fn place_ids(n: &mut VpcNeed, deployment_id: &str, options: &[garrison_model::otis::TuningOption]) {
    let Some(o) = super::tuning::option_for(options, super::tuning::PLACEMENT, deployment_id, &n.region, &n.vpc_id)
    else {
        return;
    };
    if !n.detect() {
        return;
    }
    let prefix = format!("/aws/{}/zone/", n.region);
    let named: Option<BTreeSet<String>> = o.value["zone_keys"]
        .as_array()
        .map(|a| a.iter().filter_map(|z| z.as_str()?.strip_prefix(&prefix).map(str::to_string)).collect());
    let zones = match (o.value["policy"].as_str(), o.value["max_zones"].as_u64(), named) {
        (Some("constant"), _, Some(named)) => named,
        (Some("automatic"), _, Some(named)) => n.ids_zones.intersection(&named).cloned().collect(),
        (Some("automatic"), Some(max), None) => {
            let mut by: Vec<(&String, usize)> =
                n.ids_zones.iter().map(|z| (z, n.zone_hosts.get(z).copied().unwrap_or(0))).collect();
            by.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            by.into_iter().take(max as usize).map(|(z, _)| z.clone()).collect()
        }
        // automatic alone: the default placement.
        _ => return,
    };
    n.ids_zones = zones;
    n.ids_placed = true;
}

#[cfg(test)]
mod tests {
    use super::*;
    use garrison_model::snapshot::*;
    use serde_json::json;

    const ESS: &str = "A8E8B104-8F45-411D-A240-A30EA5FE25B0";
    const PRO: &str = "D12D5E67-166C-474F-87AA-6F86FC9FB9BC";

    fn inst(id: &str, vpc: &str, subnet: &str, zone: &str, state: &str) -> Instance {
        Instance {
            id: id.into(),
            vpc_id: Some(vpc.into()),
            subnet_id: Some(subnet.into()),
            zone: zone.into(),
            state: state.into(),
            instance_type: "t3.micro".into(),
            private_ip: None,
            interfaces: vec![],
            security_groups: vec![],
            tags: Tags::new(),
        }
    }

    fn vpc(id: &str) -> Vpc {
        Vpc { id: id.into(), cidr: "10.0.0.0/16".into(), is_default: false, tags: Tags::new() }
    }

    #[test]
    fn scan_where_running_ids_per_zone_exclusions_respected() {
        let r = RegionSnapshot {
            vpcs: vec![vpc("vpc-0000000a"), vpc("vpc-0000000b"), vpc("vpc-0000000c")],
            instances: vec![
                inst("i-00000001", "vpc-0000000a", "subnet-0000000a", "us-east-1a", "running"),
                inst("i-00000002", "vpc-0000000a", "subnet-0000000b", "us-east-1b", "running"),
                inst("i-00000003", "vpc-0000000a", "subnet-0000000c", "us-east-1c", "running"),
                inst("i-00000004", "vpc-0000000a", "subnet-0000000a", "us-east-1a", "running"),
                inst("i-00000005", "vpc-0000000b", "subnet-0000000d", "us-east-1a", "stopped"),
            ],
            ..Default::default()
        };
        let snap = Snapshot { aws_account: "1".into(), taken_at: 0, regions: [("us-east-1".to_string(), r)].into() };
        let d: Deployment = serde_json::from_value(json!({
            "id": "D", "account_id": "1", "name": "n", "platform": {"type": "aws", "id": "123412341234", "monitor": {"enabled": false}},
            "mode": "automatic", "enabled": true, "discover": true, "scan": true,
            "scope": {"include": [{"type": "region", "key": "/aws/us-east-1", "policy": {"id": ESS}},
                                  {"type": "vpc", "key": "/aws/us-east-1/vpc/vpc-0000000a", "policy": {"id": PRO}}],
                      "exclude": [{"type": "subnet", "key": "/aws/us-east-1/subnet/subnet-0000000c"},
                                  {"type": "host", "key": "/aws/us-east-1/host/i-00000002"}]},
            "cloud_defender": {"enabled": false}, "credentials": [], "status": {"status": "ok", "updated": 0},
            "created": {"at": 0, "by": "u"}, "modified": {"at": 0, "by": "u"}, "version": 1, "is_control_tower": false
        }))
        .unwrap();
        let n = needs(&d, &snap, &garrison_catalog::policies::all());
        let a = n.iter().find(|x| x.vpc_id == "vpc-0000000a").unwrap();
        assert_eq!(a.hosts, 2, "the excluded subnet's and the excluded host's instances do not count");
        assert!(a.scan);
        assert_eq!(a.ids_zones.iter().map(String::as_str).collect::<Vec<_>>(), ["us-east-1a"]);
        assert_eq!(a.policy.as_deref(), Some(PRO));
        let b = n.iter().find(|x| x.vpc_id == "vpc-0000000b").unwrap();
        assert!(!b.scan && b.ids_zones.is_empty() && b.hosts == 0, "only a stopped instance: nothing to scan");
        assert!(
            n.iter().any(|x| x.vpc_id == "vpc-0000000c" && !x.scan),
            "an empty in-scope VPC is listed, needing nothing"
        );
    }
}
