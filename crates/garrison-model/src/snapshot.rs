//! What discovery saw in one AWS account: per region and resource kind, the facts and
//! whether the read was complete. A failed read is kept as a failure with its AWS error
//! code, never as an empty list, so nothing downstream mistakes "could not look" for "absent".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub type Tags = BTreeMap<String, String>;

/// The resource kinds discovery reads, one (paginated) describe each per region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Zones,
    Vpcs,
    Subnets,
    Instances,
    SecurityGroups,
    RouteTables,
    NetworkAcls,
    InternetGateways,
    FlowLogs,
    Trails,
    GuarddutyDetectors,
    ConfigRecorders,
    EcsClusters,
    EksClusters,
    Offerings,
    /// VPC peering connections and transit gateway VPC attachments.
    Connections,
    /// Traffic mirror targets, filters and sessions.
    Mirroring,
}

impl Kind {
    pub const ALL: [Kind; 17] = [
        Kind::Zones,
        Kind::Vpcs,
        Kind::Subnets,
        Kind::Instances,
        Kind::SecurityGroups,
        Kind::RouteTables,
        Kind::NetworkAcls,
        Kind::InternetGateways,
        Kind::FlowLogs,
        Kind::Trails,
        Kind::GuarddutyDetectors,
        Kind::ConfigRecorders,
        Kind::EcsClusters,
        Kind::EksClusters,
        Kind::Offerings,
        Kind::Connections,
        Kind::Mirroring,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Zones => "zones",
            Kind::Vpcs => "vpcs",
            Kind::Subnets => "subnets",
            Kind::Instances => "instances",
            Kind::SecurityGroups => "security_groups",
            Kind::RouteTables => "route_tables",
            Kind::NetworkAcls => "network_acls",
            Kind::InternetGateways => "internet_gateways",
            Kind::FlowLogs => "flow_logs",
            Kind::Trails => "trails",
            Kind::GuarddutyDetectors => "guardduty_detectors",
            Kind::ConfigRecorders => "config_recorders",
            Kind::EcsClusters => "ecs_clusters",
            Kind::EksClusters => "eks_clusters",
            Kind::Offerings => "instance_type_offerings",
            Kind::Connections => "network_connections",
            Kind::Mirroring => "traffic_mirroring",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ReadStatus {
    Complete,
    Failed { code: String, message: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    pub name: String,
    pub zone_id: String,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vpc {
    pub id: String,
    pub cidr: String,
    pub is_default: bool,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub zone: String,
    pub cidr: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub vpc_id: Option<String>,
    pub subnet_id: Option<String>,
    pub zone: String,
    /// pending | running | shutting-down | terminated | stopping | stopped
    pub state: String,
    pub instance_type: String,
    pub private_ip: Option<String>,
    pub security_groups: Vec<String>,
    pub tags: Tags,
    /// Its network interfaces, the primary (device index 0) first.
    #[serde(default)]
    pub interfaces: Vec<String>,
}

impl Instance {
    pub fn is_running(&self) -> bool {
        self.state == "running" || self.state == "pending"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// "-1" for all, else tcp | udp | icmp or a number.
    pub protocol: String,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub cidrs: Vec<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    pub vpc_id: Option<String>,
    pub name: String,
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub destination: String,
    pub target: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTable {
    pub id: String,
    pub vpc_id: String,
    pub main: bool,
    pub subnet_ids: Vec<String>,
    pub routes: Vec<Route>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAcl {
    pub id: String,
    pub vpc_id: String,
    pub is_default: bool,
    pub subnet_ids: Vec<String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InternetGateway {
    pub id: String,
    pub vpc_ids: Vec<String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowLog {
    pub id: String,
    pub resource_id: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trail {
    pub name: String,
    pub arn: String,
    pub home_region: String,
    pub multi_region: bool,
    /// Read only for multi-region trails homed in the region (one call each, at most a few).
    pub logging: Option<bool>,
    pub s3_bucket: Option<String>,
    pub sns_topic_arn: Option<String>,
    /// The KMS key its log files are encrypted with (SSE-KMS), if any.
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// An organization trail: seen from a member account, it is the management account's
    /// (adopted, never changed; its files are in that account's bucket).
    #[serde(default)]
    pub organization: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detector {
    pub id: String,
    pub status: Option<String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRecorder {
    pub name: String,
    pub recording: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcsCluster {
    pub arn: String,
    pub name: String,
    pub services: Vec<String>,
    pub tasks: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EksCluster {
    pub name: String,
}

/// A network path between VPCs: an active peering (its two VPCs) or an available transit
/// gateway attachment (one VPC, `via` its gateway: two VPCs attached to one gateway are
/// connected).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub id: String,
    /// `peering` or `transit_gateway`
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    pub vpcs: Vec<String>,
}

/// A traffic mirror target (garrison's point at an IDS appliance's interface).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorTarget {
    pub id: String,
    /// The network interface it sends to (none for load balancer targets).
    pub interface: Option<String>,
    pub tags: Tags,
}

/// A traffic mirror filter with how many rules it has each way (a filter without rules
/// mirrors nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorFilter {
    pub id: String,
    pub ingress_rules: usize,
    pub egress_rules: usize,
    pub tags: Tags,
}

/// A traffic mirror session: what one source interface sends where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorSession {
    pub id: String,
    pub interface: String,
    pub target: String,
    pub filter: String,
    pub number: i32,
    pub tags: Tags,
}

/// An instance type offered in a zone (read only for the types appliances may use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offering {
    pub zone: String,
    pub instance_type: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RegionSnapshot {
    pub status: BTreeMap<Kind, ReadStatus>,
    pub zones: Vec<Zone>,
    pub vpcs: Vec<Vpc>,
    pub subnets: Vec<Subnet>,
    pub instances: Vec<Instance>,
    pub security_groups: Vec<SecurityGroup>,
    pub route_tables: Vec<RouteTable>,
    pub network_acls: Vec<NetworkAcl>,
    pub internet_gateways: Vec<InternetGateway>,
    pub flow_logs: Vec<FlowLog>,
    pub trails: Vec<Trail>,
    pub detectors: Vec<Detector>,
    pub config_recorders: Vec<ConfigRecorder>,
    pub ecs_clusters: Vec<EcsCluster>,
    pub eks_clusters: Vec<EksCluster>,
    #[serde(default)]
    pub offerings: Vec<Offering>,
    #[serde(default)]
    pub connections: Vec<Connection>,
    #[serde(default)]
    pub mirror_targets: Vec<MirrorTarget>,
    #[serde(default)]
    pub mirror_filters: Vec<MirrorFilter>,
    #[serde(default)]
    pub mirror_sessions: Vec<MirrorSession>,
}

impl RegionSnapshot {
    /// How `a` reaches `b` in this region, if it does: the peering or the transit gateway.
    pub fn connected(&self, a: &str, b: &str) -> Option<&Connection> {
        let has = |c: &Connection, v: &str| c.vpcs.iter().any(|x| x == v);
        self.connections.iter().find(|c| c.kind == "peering" && has(c, a) && has(c, b)).or_else(|| {
            self.connections.iter().find(|c| {
                c.kind == "transit_gateway"
                    && has(c, a)
                    && self.connections.iter().any(|d| d.kind == "transit_gateway" && d.via == c.via && has(d, b))
            })
        })
    }
}

impl RegionSnapshot {
    pub fn complete(&self, k: Kind) -> bool {
        matches!(self.status.get(&k), Some(ReadStatus::Complete))
    }

    /// Carries `previous`'s facts for every kind this read could not complete.
    fn keep_known(&mut self, previous: &RegionSnapshot) {
        for (k, st) in self.status.clone() {
            if matches!(st, ReadStatus::Complete) {
                continue;
            }
            match k {
                Kind::Zones => self.zones = previous.zones.clone(),
                Kind::Vpcs => self.vpcs = previous.vpcs.clone(),
                Kind::Subnets => self.subnets = previous.subnets.clone(),
                Kind::Instances => self.instances = previous.instances.clone(),
                Kind::SecurityGroups => self.security_groups = previous.security_groups.clone(),
                Kind::RouteTables => self.route_tables = previous.route_tables.clone(),
                Kind::NetworkAcls => self.network_acls = previous.network_acls.clone(),
                Kind::InternetGateways => self.internet_gateways = previous.internet_gateways.clone(),
                Kind::FlowLogs => self.flow_logs = previous.flow_logs.clone(),
                Kind::Trails => self.trails = previous.trails.clone(),
                Kind::GuarddutyDetectors => self.detectors = previous.detectors.clone(),
                Kind::ConfigRecorders => self.config_recorders = previous.config_recorders.clone(),
                Kind::EcsClusters => self.ecs_clusters = previous.ecs_clusters.clone(),
                Kind::EksClusters => self.eks_clusters = previous.eks_clusters.clone(),
                Kind::Offerings => self.offerings = previous.offerings.clone(),
                Kind::Connections => self.connections = previous.connections.clone(),
                Kind::Mirroring => {
                    self.mirror_targets = previous.mirror_targets.clone();
                    self.mirror_filters = previous.mirror_filters.clone();
                    self.mirror_sessions = previous.mirror_sessions.clone();
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub aws_account: String,
    pub taken_at: i64,
    pub regions: BTreeMap<String, RegionSnapshot>,
}

/// One (region, kind) that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    pub region: String,
    pub kind: Kind,
    pub code: String,
    pub message: String,
}

impl Snapshot {
    pub fn gaps(&self) -> Vec<Gap> {
        self.regions
            .iter()
            .flat_map(|(r, rs)| {
                rs.status.iter().filter_map(move |(k, st)| match st {
                    ReadStatus::Failed { code, message } => {
                        Some(Gap { region: r.clone(), kind: *k, code: code.clone(), message: message.clone() })
                    }
                    ReadStatus::Complete => None,
                })
            })
            .collect()
    }

    pub fn is_partial(&self) -> bool {
        !self.gaps().is_empty()
    }

    /// The snapshot to keep after a new read: new facts where the read completed, the
    /// previous facts (still marked as not freshly read) where it failed.
    pub fn merged_over(mut self, previous: Option<&Snapshot>) -> Snapshot {
        if let Some(prev) = previous {
            for (region, rs) in self.regions.iter_mut() {
                if let Some(p) = prev.regions.get(region) {
                    rs.keep_known(p);
                }
            }
        }
        self
    }

    /// Everything garrison did not make, with the read time cleared: what must describe the
    /// same before protection and after its removal. ACL associations of subnets that no
    /// longer exist are dropped (AWS drops them with the subnet; the emulator keeps them).
    pub fn customer_view(&self) -> Snapshot {
        use crate::protection::{RECORDER_NAME, TAG_KEY, TRAIL_PREFIX};
        let mut s = self.clone();
        s.taken_at = 0;
        for rs in s.regions.values_mut() {
            rs.instances.retain(|x| !x.tags.contains_key(TAG_KEY));
            rs.subnets.retain(|x| !x.tags.contains_key(TAG_KEY));
            rs.security_groups.retain(|x| !x.tags.contains_key(TAG_KEY));
            rs.route_tables.retain(|x| !x.tags.contains_key(TAG_KEY));
            rs.network_acls.retain(|x| !x.tags.contains_key(TAG_KEY));
            rs.internet_gateways.retain(|x| !x.tags.contains_key(TAG_KEY));
            rs.flow_logs.retain(|x| !x.tags.contains_key(TAG_KEY));
            rs.detectors.retain(|x| !x.tags.contains_key(TAG_KEY));
            rs.config_recorders.retain(|x| x.name != RECORDER_NAME);
            rs.trails.retain(|x| !x.name.starts_with(TRAIL_PREFIX));
            rs.mirror_targets.retain(|x| !x.tags.contains_key(TAG_KEY));
            rs.mirror_filters.retain(|x| !x.tags.contains_key(TAG_KEY));
            rs.mirror_sessions.retain(|x| !x.tags.contains_key(TAG_KEY));
            let subnets: std::collections::BTreeSet<String> = rs.subnets.iter().map(|s| s.id.clone()).collect();
            for acl in rs.network_acls.iter_mut() {
                acl.subnet_ids.retain(|s| subnets.contains(s));
            }
        }
        s
    }

    pub fn count(&self, k: Kind) -> usize {
        self.regions
            .values()
            .map(|r| match k {
                Kind::Zones => r.zones.len(),
                Kind::Vpcs => r.vpcs.len(),
                Kind::Subnets => r.subnets.len(),
                Kind::Instances => r.instances.len(),
                Kind::SecurityGroups => r.security_groups.len(),
                Kind::RouteTables => r.route_tables.len(),
                Kind::NetworkAcls => r.network_acls.len(),
                Kind::InternetGateways => r.internet_gateways.len(),
                Kind::FlowLogs => r.flow_logs.len(),
                Kind::Trails => r.trails.len(),
                Kind::GuarddutyDetectors => r.detectors.len(),
                Kind::ConfigRecorders => r.config_recorders.len(),
                Kind::EcsClusters => r.ecs_clusters.len(),
                Kind::EksClusters => r.eks_clusters.len(),
                Kind::Offerings => r.offerings.len(),
                Kind::Connections => r.connections.len(),
                Kind::Mirroring => r.mirror_targets.len() + r.mirror_filters.len() + r.mirror_sessions.len(),
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_read_keeps_the_previous_facts_and_is_reported() {
        let mut old = RegionSnapshot::default();
        old.vpcs.push(Vpc { id: "vpc-1".into(), cidr: "10.0.0.0/16".into(), is_default: false, tags: Tags::new() });
        old.instances.push(Instance {
            id: "i-1".into(),
            vpc_id: Some("vpc-1".into()),
            subnet_id: None,
            zone: "us-east-1a".into(),
            state: "running".into(),
            instance_type: "t3.micro".into(),
            private_ip: None,
            security_groups: vec![],
            tags: Tags::new(),
            interfaces: vec![],
        });
        let prev = Snapshot { aws_account: "1".into(), taken_at: 1, regions: [("us-east-1".to_string(), old)].into() };
        let mut new = RegionSnapshot::default();
        new.status.insert(Kind::Vpcs, ReadStatus::Complete);
        new.status.insert(Kind::Instances, ReadStatus::Failed { code: "AccessDenied".into(), message: "no".into() });
        let snap = Snapshot { aws_account: "1".into(), taken_at: 2, regions: [("us-east-1".to_string(), new)].into() };
        assert!(snap.is_partial());
        let merged = snap.merged_over(Some(&prev));
        assert_eq!(merged.count(Kind::Vpcs), 0, "a complete read of no VPCs means none");
        assert_eq!(merged.count(Kind::Instances), 1, "a failed read keeps what was known");
        assert_eq!(merged.gaps()[0].code, "AccessDenied");
    }
}
