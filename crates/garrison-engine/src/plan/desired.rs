//! What a deployment should have in its account, per plan key: resources to build (with
//! names, CIDRs and instance types decided here) and customer resources to adopt. Choices
//! already made are kept (a subnet keeps its CIDR, an appliance its zone and type) so that
//! protection does not churn as the estate moves.

use std::collections::{BTreeMap, BTreeSet};

use garrison_catalog::appliances::Images;
use garrison_catalog::network::{SgRules, ids_rules, scan_rules};
use garrison_catalog::prices::{IDS_MIN, IDS_TEST_MIN, PriceTable, SCANNER_MIN, Spec as Size};
use garrison_model::cidr::{Ipv4Net, free_block};
use garrison_model::deployment::{DEFAULT_CT_REGION, Deployment};
use garrison_model::protection::{
    MAX_SESSIONS_PER_INTERFACE, MAX_SOURCES_PER_TARGET, Owned, Perm, RECORDER_NAME, ResKind, Role, Spec,
    TAG_DEPLOYMENT, TAG_OWNER, TRAIL_PREFIX, VXLAN_PORT,
};
use garrison_model::snapshot::{Kind, RegionSnapshot, Snapshot, Tags};

use super::needs::{VpcNeed, needs};
use super::tuning::{self, VpcTuning};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// `tags`: the operator's tags (otis), beside garrison's own.
    Build {
        region: String,
        spec: Spec,
        running: bool,
        tags: Tags,
    },
    Adopt {
        region: String,
        kind: ResKind,
        id: String,
        arn: Option<String>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub items: BTreeMap<String, Want>,
    pub problems: Vec<String>,
    pub notes: Vec<String>,
    /// Appliances the health watch judged silent: key → the instance to replace
    /// (launch-first, as for a change of type).
    pub replace: BTreeMap<String, String>,
    /// Keys whose retired appliance keeps running until its replacement registers.
    pub hold: BTreeSet<String>,
}

/// Catalog data the choices depend on.
pub struct Inputs<'a> {
    pub prices: &'a PriceTable,
    pub images: &'a Images,
    /// The account's tuning options (otis); `plan::tuning` reads those the planner applies.
    pub options: &'a [garrison_model::otis::TuningOption],
    /// The scan schedules and controls, and the clock they are read at.
    pub scans: &'a super::scans::Scans,
    /// Silent appliances to replace and retired ones to keep (the health watch's).
    pub appliances: &'a Replacing,
}

/// What the health watch asks of the plan (see `Desired::replace` and `Desired::hold`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replacing {
    pub replace: BTreeMap<String, String>,
    pub hold: BTreeSet<String>,
}

pub mod keys {
    pub const BUCKET: &str = "audit/bucket";
    pub const TOPIC: &str = "audit/topic";
    pub const QUEUE: &str = "audit/queue";
    pub const SUBSCRIPTION: &str = "audit/subscription";
    pub const NOTIFICATION: &str = "audit/notification";
    pub const TRAIL: &str = "audit/trail";
    pub const FEED_BUS: &str = "audit/feed_bus";
    pub const FEED_RULE: &str = "audit/feed_rule";
    pub const FEED_ROLE: &str = "audit/feed_role";
    pub const QUEUE_POLICY: &str = "audit/queue_policy";
    /// A region's rule on its default bus.
    pub const FEED: &str = "feed";
    /// A region's rule for security findings (GuardDuty, Inspector) on its default bus.
    pub const FINDINGS: &str = "findings";

    pub fn vpc(region: &str, vpc: &str, what: &str) -> String {
        format!("{region}/{vpc}/{what}")
    }
    pub fn zone(region: &str, vpc: &str, zone: &str, what: &str) -> String {
        format!("{region}/{vpc}/{zone}/{what}")
    }
    pub fn region(region: &str, what: &str) -> String {
        format!("{region}/{what}")
    }
    /// The mirror session of a protected network interface.
    pub fn mirror_session(region: &str, vpc: &str, interface: &str) -> String {
        self::vpc(region, vpc, &format!("mirror/{interface}"))
    }
    /// The VPC a key made by `vpc`, `zone` or `mirror_session` is under.
    pub fn vpc_of(key: &str) -> Option<&str> {
        key.split('/').nth(1)
    }
}

/// The key of an IDS appliance's mirror `what` (`target`, `filter`).
pub fn mirror_key(appliance: &str, what: &str) -> String {
    format!("{appliance}/mirror_{what}")
}

/// The highest session number AWS takes (the lowest priority on an interface).
const MAX_SESSION_NUMBER: i32 = 32766;

/// Which of `n` appliances an interface goes to: stable for the interface, spread over them.
fn spread(interface: &str, n: usize) -> usize {
    (crate::fnv1a(interface.bytes()) % n.max(1) as u64) as usize
}

/// Short, lower-case form of a deployment id for AWS names (bucket names are lower case).
pub fn short(id: &str) -> String {
    id.chars().filter(|c| c.is_ascii_alphanumeric()).take(8).collect::<String>().to_ascii_lowercase()
}

fn perms(r: &[garrison_catalog::network::SgRule]) -> Vec<Perm> {
    let mut v: Vec<Perm> = r.iter().map(|r| Perm::new(&r.protocol, r.from_port, r.to_port, &r.cidr)).collect();
    v.sort();
    v.dedup();
    v
}

fn group(vpc: &str, name: String, rules: SgRules) -> Spec {
    Spec::SecurityGroup { vpc: vpc.into(), name, ingress: perms(&rules.ingress), egress: perms(&rules.egress) }
}

fn is_ours(tags: &garrison_model::snapshot::Tags, deployment: &str) -> bool {
    tags.get(TAG_DEPLOYMENT).is_some_and(|d| d == deployment)
}

fn is_garrisons(tags: &garrison_model::snapshot::Tags) -> bool {
    tags.get(TAG_OWNER.0).is_some_and(|v| v == TAG_OWNER.1)
}

struct Builder<'a> {
    d: &'a Deployment,
    snap: &'a Snapshot,
    owned: &'a Owned,
    inputs: &'a Inputs<'a>,
    out: Desired,
    /// The running IDS appliances of the VPC being built that take mirrored traffic:
    /// (zone, appliance key).
    mirror_to: Vec<(String, String)>,
}

impl Builder<'_> {
    fn build(&mut self, key: String, region: &str, spec: Spec, running: bool) {
        self.build_tagged(key, region, spec, running, Tags::new());
    }

    fn build_tagged(&mut self, key: String, region: &str, spec: Spec, running: bool, tags: Tags) {
        self.out.items.insert(key, Want::Build { region: region.into(), spec, running, tags });
    }

    fn adopt(&mut self, key: &str, region: &str, kind: ResKind, id: &str, arn: Option<String>) {
        self.out.items.insert(key.into(), Want::Adopt { region: region.into(), kind, id: id.into(), arn });
    }

    /// We built it and still hold a record of it (so it stays ours rather than re-adopted).
    fn built(&self, key: &str) -> bool {
        self.owned.get(key).is_some_and(|o| !o.adopted)
    }

    fn owned_spec(&self, key: &str) -> Option<&Spec> {
        self.owned.get(key).filter(|o| !o.adopted).and_then(|o| o.spec.as_ref())
    }

    fn audit_region(&self) -> String {
        self.d.platform.monitor.ct_install_region.clone().unwrap_or_else(|| DEFAULT_CT_REGION.into())
    }

    fn bucket(&mut self) {
        let name = format!("garrison-audit-{}-{}", self.snap.aws_account, short(&self.d.id));
        let region = self.audit_region();
        self.build(keys::BUCKET.into(), &region, Spec::Bucket { name }, false);
    }

    fn audit_source(&mut self) {
        let region = self.audit_region();
        let dep = short(&self.d.id);
        let ours = format!("{TRAIL_PREFIX}{dep}");
        if !self.built(keys::TRAIL) {
            let trails = home_copies(self.snap);
            let preferred = self.d.platform.monitor.preferred_ct_arn.as_deref();
            let adoptable =
                |t: &&garrison_model::snapshot::Trail| t.multi_region && t.logging == Some(true) && t.name != ours;
            let pick = trails
                .iter()
                .find(|t| Some(t.arn.as_str()) == preferred && adoptable(t))
                .or_else(|| trails.iter().find(|t| adoptable(t)));
            if let Some(t) = pick {
                let (name, arn, home) = (t.name.clone(), t.arn.clone(), t.home_region.clone());
                let account = self.snap.aws_account.clone();
                // A topic of another account (an organization trail's, in the management
                // account) cannot be subscribed to from here: the event feed serves.
                let topic = t.sns_topic_arn.clone().filter(|a| a.split(':').nth(4) == Some(account.as_str()));
                if t.organization {
                    self.out.notes.push(format!(
                        "{name} is an organization trail of the management account: adopted, never changed; its log files are in bucket {} of that account, read only where the bucket's policy lets garrison's role",
                        t.s3_bucket.as_deref().unwrap_or("(unknown)")
                    ));
                }
                if let Some(key) = &t.kms_key_id {
                    self.out.notes.push(format!(
                        "the log files of {name} are encrypted with KMS key {key}: garrison's role decrypts them with that key only (role template parameter {})",
                        garrison_catalog::cft::AUDIT_KEY_PARAMETER
                    ));
                }
                self.adopt(keys::TRAIL, &home, ResKind::Trail, &name, Some(arn));
                match topic {
                    Some(topic) => {
                        let topic_region = topic.split(':').nth(3).unwrap_or(&home).to_string();
                        self.adopt(keys::TOPIC, &topic_region, ResKind::Topic, &topic, Some(topic.clone()));
                        self.build(
                            keys::QUEUE.into(),
                            &topic_region,
                            Spec::Queue { name: format!("garrison-audit-{dep}"), topic: Some(keys::TOPIC.into()) },
                            false,
                        );
                        self.build(
                            keys::SUBSCRIPTION.into(),
                            &topic_region,
                            Spec::Subscription { topic: keys::TOPIC.into(), queue: keys::QUEUE.into() },
                            false,
                        );
                    }
                    None => {
                        self.build(
                            keys::QUEUE.into(),
                            &region,
                            Spec::Queue { name: format!("garrison-audit-{dep}"), topic: None },
                            false,
                        );
                        self.out.notes.push(format!(
                            "the adopted trail {name} publishes no SNS notifications garrison can subscribe to: changes reach garrison through the event feed"
                        ))
                    }
                }
                self.feed();
                return;
            }
        }
        self.bucket();
        let bucket_name = match &self.out.items[keys::BUCKET] {
            Want::Build { spec: Spec::Bucket { name }, .. } => name.clone(),
            _ => unreachable!("just built"),
        };
        let b = |k: &str| k.to_string();
        self.build(
            b(keys::TOPIC),
            &region,
            Spec::Topic { name: format!("garrison-audit-{dep}"), bucket: bucket_name },
            false,
        );
        self.build(
            b(keys::QUEUE),
            &region,
            Spec::Queue { name: format!("garrison-audit-{dep}"), topic: Some(b(keys::TOPIC)) },
            false,
        );
        self.build(
            b(keys::SUBSCRIPTION),
            &region,
            Spec::Subscription { topic: b(keys::TOPIC), queue: b(keys::QUEUE) },
            false,
        );
        self.build(
            b(keys::NOTIFICATION),
            &region,
            Spec::BucketNotification { bucket: b(keys::BUCKET), topic: b(keys::TOPIC) },
            false,
        );
        self.build(b(keys::TRAIL), &region, Spec::Trail { name: ours, bucket: b(keys::BUCKET) }, false);
        self.feed();
    }

    /// The regions the deployment's scope names (every region read when it names the
    /// whole deployment).
    fn scope_regions(&self) -> Vec<String> {
        let (all, named) = garrison_model::coverage::named_regions(&self.d.scope);
        if all { self.snap.regions.keys().cloned().collect() } else { named }
    }

    /// The event feed: a rule on each in-scope region's default bus forwards the events
    /// garrison acts on to garrison's bus beside the queue (SQS targets must be in the
    /// rule's region), whose rule sends them to the queue. Rules from other regions put
    /// events on the bus through a role.
    fn feed(&mut self) {
        let Some(Want::Build { region: queue_region, .. }) = self.out.items.get(keys::QUEUE) else { return };
        let home = queue_region.clone();
        let name = format!("garrison-feed-{}", short(&self.d.id));
        let regions = self.scope_regions();
        if regions.is_empty() {
            return;
        }
        // Where every region's rules send: the organization's bus in another account
        // (always through the role; no bus or queue statement of the account's own), or
        // garrison's bus beside the queue (through the role from other regions only).
        let (bus, remote_only) = match &self.d.event_feed {
            Some(f) => (f.bus_arn.clone(), false),
            None => {
                self.build(keys::FEED_BUS.into(), &home, Spec::EventBus { name: name.clone() }, false);
                let to_queue = Spec::EventRule {
                    name: name.clone(),
                    bus: Some(keys::FEED_BUS.into()),
                    pattern: garrison_catalog::feed::bus_pattern(),
                    target: keys::QUEUE.into(),
                    role: None,
                };
                self.build(keys::FEED_RULE.into(), &home, to_queue, false);
                let statement = Spec::QueuePolicy { queue: keys::QUEUE.into(), rule: keys::FEED_RULE.into() };
                self.build(keys::QUEUE_POLICY.into(), &home, statement, false);
                (keys::FEED_BUS.to_string(), true)
            }
        };
        // Findings go the same way under a rule of their own (a rule's pattern cannot ask
        // for API calls and findings alike), named within the role's `garrison-feed-*`.
        let rules = [
            (keys::FEED, name.clone(), garrison_catalog::feed::pattern()),
            (keys::FINDINGS, format!("{name}-findings"), garrison_catalog::feed::findings_pattern()),
        ];
        let mut role_used = false;
        for r in regions {
            let role = (!remote_only || r != home).then(|| keys::FEED_ROLE.to_string());
            role_used |= role.is_some();
            for (key, rule_name, pattern) in &rules {
                let rule = Spec::EventRule {
                    name: rule_name.clone(),
                    bus: None,
                    pattern: pattern.clone(),
                    target: bus.clone(),
                    role: role.clone(),
                };
                self.build(keys::region(&r, key), &r, rule, false);
            }
        }
        if role_used {
            self.build(keys::FEED_ROLE.into(), &home, Spec::EventRole { name, bus }, false);
        }
    }

    fn offered(rs: &RegionSnapshot, zone: &str) -> impl Fn(&str) -> bool {
        let known: BTreeSet<String> =
            rs.offerings.iter().filter(|o| o.zone == zone).map(|o| o.instance_type.clone()).collect();
        // No offering facts for the zone (read failed or region unknown): trust the table.
        let unknown = known.is_empty();
        move |t: &str| unknown || known.contains(t)
    }

    fn pick_type(&mut self, region: &str, zone: &str, min: Size) -> Option<String> {
        let rs = self.snap.regions.get(region)?;
        let offered = Self::offered(rs, zone);
        self.inputs.prices.cheapest_default(region, &offered, min).map(|(t, _)| t)
    }

    /// The type of a `role` appliance in `zone`: the operator's (otis) when it is offered
    /// there (and, from the test option, big enough), else the one it already has, else the
    /// cheapest offered type of the appliance's size.
    fn appliance_type(
        &mut self,
        at: (&str, &str, &str),
        role: Role,
        kept: Option<String>,
        t: &VpcTuning,
    ) -> Option<String> {
        let (region, vpc, zone) = at;
        let (chosen, option, least) = match (role, &t.ids_type) {
            (Role::Scan, _) => (t.scan_type.clone(), tuning::SCAN_TYPE, None),
            (Role::Ids, Some((ty, true))) => (Some(ty.clone()), tuning::IDS_TYPE_TEST, Some(IDS_TEST_MIN)),
            (Role::Ids, Some((ty, false))) => (Some(ty.clone()), tuning::IDS_TYPE, None),
            (Role::Ids, None) => (None, tuning::IDS_TYPE, None),
        };
        let min = if role == Role::Scan { SCANNER_MIN } else { IDS_MIN };
        let Some(ty) = chosen else { return kept.or_else(|| self.pick_type(region, zone, min)) };
        let rs = self.snap.regions.get(region)?;
        let why = if Self::offered(rs, zone)(&ty) {
            least.and_then(|m| self.inputs.prices.unfit(&ty, m))
        } else {
            Some(format!("{ty} is not offered in {zone}"))
        };
        let Some(why) = why else { return Some(ty) };
        let instead = kept.or_else(|| self.pick_type(region, zone, min));
        let problem = format!(
            "{region} {vpc}: option {option} = {ty} not applied in {zone}: {why}; the appliance runs {}",
            instead.as_deref().unwrap_or("nothing (no type is offered)")
        );
        if !self.out.problems.contains(&problem) {
            self.out.problems.push(problem);
        }
        instead
    }

    fn vpc(&mut self, n: &VpcNeed) {
        let (region, vpc) = (n.region.as_str(), n.vpc_id.as_str());
        let Some(rs) = self.snap.regions.get(region) else { return };
        let dep = self.d.id.clone();
        let tenant = self.d.account_id.clone();
        let t = tuning::for_vpc(self.inputs.options, &dep, region, vpc);
        self.mirror_to.clear();
        // A spoke is protected by its hub's appliances: only its flow logs are its own.
        if let Some(hub) = &n.hub {
            if t.mirroring {
                self.out.problems.push(format!(
                    "{region} {vpc}: span_port_enabled not applied: the VPC is protected by hub {hub}, and garrison mirrors only a VPC's own instances to its own IDS appliances"
                ));
            }
            if n.detect() {
                self.flow_logs(rs, region, vpc);
            }
            return;
        }
        let mut peers = n.peers.clone();
        peers.sort();
        // The customer's subnet for the appliances of its zone (otis), as discovery read it.
        let predefined = match &t.predefined_subnet {
            None => None,
            Some(id) => match rs.subnets.iter().find(|s| &s.id == id && s.vpc_id == vpc) {
                Some(s) => Some((s.id.clone(), s.zone.clone())),
                None => {
                    self.out.problems.push(format!(
                        "{region} {vpc}: predefined_security_subnet {id} is not a subnet of the VPC: no appliance is placed there until it is"
                    ));
                    if n.detect() {
                        self.flow_logs(rs, region, vpc);
                    }
                    return;
                }
            },
        };
        let scanner_key = keys::vpc(region, vpc, "scanner");
        // Where the appliances go: kept where they are, else where most hosts are.
        let mut zones: BTreeMap<String, Vec<(Role, bool)>> = BTreeMap::new();
        let owned_zone = |k: &str| match self.owned_spec(k) {
            Some(Spec::Appliance { zone, .. }) => Some(zone.clone()),
            _ => None,
        };
        if n.scan || self.built(&scanner_key) {
            let zone = predefined.as_ref().map(|(_, z)| z.clone()).or_else(|| owned_zone(&scanner_key)).or_else(|| {
                let mut by: Vec<(&String, &usize)> = n.zone_hosts.iter().collect();
                by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                by.first().map(|(z, _)| (*z).clone())
            });
            if let Some(z) = zone {
                // Constant scaling to zero keeps the scanner, stopped; so does a time outside
                // the scan windows of every schedule reaching the VPC.
                let in_window = rs
                    .vpcs
                    .iter()
                    .find(|v| v.id == vpc)
                    .is_none_or(|v| self.inputs.scans.open(&garrison_model::schedule::VpcPlace::of(region, rs, v)));
                zones.entry(z).or_default().push((Role::Scan, n.scan && t.scanners != Some(0) && in_window));
            }
        }
        if n.detect() {
            let mut ids_zones: BTreeSet<String> = n.ids_zones.clone();
            for (k, o) in &self.owned.items {
                // Kept (stopped) where hosts left, unless an option placed the appliances.
                if !n.ids_placed
                    && !o.adopted
                    && k.starts_with(&keys::vpc(region, vpc, ""))
                    && let Some(Spec::Appliance { role: Role::Ids, zone, .. }) = &o.spec
                    && self.owned.get(k).is_some()
                {
                    ids_zones.insert(zone.clone());
                }
            }
            for z in ids_zones {
                let running = n.ids_zones.contains(&z);
                zones.entry(z).or_default().push((Role::Ids, running));
            }
        }
        if n.detect() {
            self.flow_logs(rs, region, vpc);
        }
        if zones.is_empty() {
            return;
        }
        let igw_key = keys::vpc(region, vpc, "igw");
        let Ok(vpc_net) = n.cidr.parse::<Ipv4Net>() else {
            self.out.problems.push(format!("{region} {vpc}: unreadable CIDR {}", n.cidr));
            return;
        };
        let mut taken: Vec<Ipv4Net> =
            rs.subnets.iter().filter(|s| s.vpc_id == vpc).filter_map(|s| s.cidr.parse().ok()).collect();
        for o in self.owned.items.values() {
            if let Some(Spec::Subnet { cidr, vpc: v, .. }) = &o.spec
                && v == vpc
                && let Ok(c) = cidr.parse()
            {
                taken.push(c);
            }
        }
        let mut groups_needed = BTreeSet::new();
        // The operator's block for the scanner's subnet (otis), used when garrison makes it.
        let scan_block = t.scan_block;
        let mut own_subnets = false;
        for (zone, roles) in &zones {
            if let Some((id, _)) = predefined.as_ref().filter(|(_, pz)| pz == zone) {
                let key = keys::zone(region, vpc, zone, "predefined_subnet");
                self.adopt(&key, region, ResKind::Subnet, id, None);
                self.appliances(n, &t, (zone, roles), &key, &mut groups_needed);
                continue;
            }
            let subnet_key = keys::zone(region, vpc, zone, "subnet");
            let wants_block = scan_block.filter(|_| roles.iter().any(|(r, _)| *r == Role::Scan));
            let cidr = match (self.owned_spec(&subnet_key), wants_block) {
                (Some(Spec::Subnet { cidr, .. }), _) => cidr.clone(),
                (_, Some(block)) => {
                    if !vpc_net.contains(&block) || taken.iter().any(|t| t.overlaps(&block)) {
                        self.out.problems.push(format!(
                            "{region} {vpc}: scan_security_subnet_cidr_block {block} is not a free block of the VPC ({})",
                            n.cidr
                        ));
                        continue;
                    }
                    taken.push(block);
                    block.to_string()
                }
                _ => match free_block(&vpc_net, &taken, 28) {
                    Some(c) => {
                        taken.push(c);
                        c.to_string()
                    }
                    None => {
                        self.out.problems.push(format!("{region} {vpc}: no free /28 for a security subnet in {zone}"));
                        continue;
                    }
                },
            };
            let tags = t.tags.clone();
            own_subnets = true;
            self.build_tagged(
                subnet_key.clone(),
                region,
                Spec::Subnet { vpc: vpc.into(), zone: zone.clone(), cidr },
                false,
                tags.clone(),
            );
            self.build_tagged(
                keys::zone(region, vpc, zone, "route_table"),
                region,
                Spec::RouteTable { vpc: vpc.into(), subnet: subnet_key.clone(), gateway: igw_key.clone() },
                false,
                tags.clone(),
            );
            self.build_tagged(
                keys::zone(region, vpc, zone, "nacl"),
                region,
                Spec::NetworkAcl {
                    vpc: vpc.into(),
                    subnet: subnet_key.clone(),
                    vpc_cidr: n.cidr.clone(),
                    peers: peers.clone(),
                },
                false,
                tags,
            );
            self.appliances(n, &t, (zone, roles), &subnet_key, &mut groups_needed);
        }
        // The gateway: the VPC's own when it has one (a VPC takes only one), else ours; none
        // when no subnet of garrison's is placed (every appliance in the customer's subnet,
        // whose routing is the customer's, or no free block): decided after the subnets, or
        // a gateway adopted for a subnet that cannot be placed is forgotten a plan later.
        let theirs =
            rs.internet_gateways.iter().find(|g| g.vpc_ids.iter().any(|v| v == vpc) && !is_ours(&g.tags, &dep));
        match theirs {
            _ if !own_subnets => {}
            Some(g) if !self.built(&igw_key) => {
                let id = g.id.clone();
                self.adopt(&igw_key, region, ResKind::InternetGateway, &id, None)
            }
            _ => self.build_tagged(
                igw_key.clone(),
                region,
                Spec::InternetGateway { vpc: vpc.into() },
                false,
                t.tags.clone(),
            ),
        }
        // A hub's groups reach the VPCs it protects as they reach its own.
        let rules_for = |of: fn(&str) -> SgRules| {
            let mut all = of(&n.cidr);
            for p in &peers {
                let more = of(p);
                all.ingress.extend(more.ingress);
                all.egress.extend(more.egress);
            }
            all
        };
        for role in groups_needed {
            let (key, spec, tags) = match role {
                Role::Scan => (
                    keys::vpc(region, vpc, "scan_sg"),
                    group(vpc, format!("AlertLogic Security Group {tenant}/{dep}/{vpc}"), rules_for(scan_rules)),
                    t.scan_tags.clone(),
                ),
                Role::Ids => {
                    let mut spec =
                        group(vpc, format!("AlertLogic IDS Security Group {tenant}/{dep}/{vpc}"), rules_for(ids_rules));
                    // Mirrored packets arrive in VXLAN from the VPC's instances.
                    if let (true, Spec::SecurityGroup { ingress, .. }) = (t.mirroring, &mut spec) {
                        ingress.push(Perm::new("udp", VXLAN_PORT, VXLAN_PORT, &n.cidr));
                        ingress.sort();
                        ingress.dedup();
                    }
                    (keys::vpc(region, vpc, "ids_sg"), spec, t.ids_tags.clone())
                }
            };
            self.build_tagged(key, region, spec, false, tags);
        }
        if t.mirroring {
            self.mirror_sessions(n, rs, &t);
        }
    }

    /// One mirror session per network interface of each instance under an `ids` policy, to
    /// a running IDS appliance of the instance's zone (else of the VPC) with room for it (a
    /// target takes `MAX_SOURCES_PER_TARGET` sources), kept where it is while that appliance
    /// still takes traffic. Its number puts it after the customer's own sessions on the
    /// interface. An interface with as many sessions as AWS allows, or with no appliance to
    /// take it, is left as it is, and said.
    fn mirror_sessions(&mut self, n: &VpcNeed, rs: &RegionSnapshot, t: &VpcTuning) {
        let (region, vpc) = (n.region.as_str(), n.vpc_id.as_str());
        let to = std::mem::take(&mut self.mirror_to);
        if to.is_empty() {
            return;
        }
        let dep = self.d.id.clone();
        // (key, interface, instance, zone, the customer's session numbers there, kept (appliance, number)).
        let mut sources = vec![];
        for host in &n.ids_hosts {
            let Some(i) = rs.instances.iter().find(|i| &i.id == host) else { continue };
            for eni in &i.interfaces {
                let theirs: Vec<i32> = rs
                    .mirror_sessions
                    .iter()
                    .filter(|s| &s.interface == eni && !is_ours(&s.tags, &dep))
                    .map(|s| s.number)
                    .collect();
                if theirs.len() >= MAX_SESSIONS_PER_INTERFACE {
                    self.out.problems.push(format!(
                        "{region} {vpc}: {eni} of {} is not mirrored to the IDS: it is the source of {} mirror sessions already, the most AWS allows",
                        i.id,
                        theirs.len()
                    ));
                    continue;
                }
                if !theirs.is_empty() {
                    self.out.notes.push(format!(
                        "{region} {vpc}: {eni} of {} has mirror sessions of the customer's ahead of garrison's: the packets their filters take go to them, not to the IDS",
                        i.id
                    ));
                }
                let key = keys::mirror_session(region, vpc, eni);
                let kept = match self.owned_spec(&key) {
                    Some(Spec::MirrorSession { target, number, .. }) => {
                        to.iter().find(|(_, k)| mirror_key(k, "target") == *target).map(|(_, k)| (k.clone(), *number))
                    }
                    _ => None,
                };
                sources.push((key, eni.clone(), i.id.clone(), i.zone.clone(), theirs, kept));
            }
        }
        let mut load: BTreeMap<&str, usize> = to.iter().map(|(_, k)| (k.as_str(), 0)).collect();
        let mut assigned: BTreeMap<usize, String> = BTreeMap::new();
        // What runs stays where it is (within the limit); the rest goes to the least loaded
        // appliance of its zone, else of the VPC.
        for (n, (_, _, _, _, _, kept)) in sources.iter().enumerate() {
            if let Some((k, _)) = kept
                && let Some(l) = load.get_mut(k.as_str())
                && *l < MAX_SOURCES_PER_TARGET
            {
                *l += 1;
                assigned.insert(n, k.clone());
            }
        }
        for (n, (_, eni, id, zone, _, _)) in sources.iter().enumerate() {
            if assigned.contains_key(&n) {
                continue;
            }
            let pick = |same_zone: bool, load: &BTreeMap<&str, usize>| {
                let mut pool: Vec<&String> = to
                    .iter()
                    .filter(|(z, k)| (!same_zone || z == zone) && load[k.as_str()] < MAX_SOURCES_PER_TARGET)
                    .map(|(_, k)| k)
                    .collect();
                if pool.is_empty() {
                    return None;
                }
                let first = spread(eni, pool.len());
                pool.rotate_left(first);
                pool.into_iter().min_by_key(|k| load[k.as_str()]).cloned()
            };
            match pick(true, &load).or_else(|| pick(false, &load)) {
                Some(k) => {
                    *load.get_mut(k.as_str()).expect("a known appliance") += 1;
                    assigned.insert(n, k);
                }
                None => self.out.problems.push(format!(
                    "{region} {vpc}: {eni} of {id} is not mirrored: every IDS appliance of the VPC takes {MAX_SOURCES_PER_TARGET} sources already (AWS's limit per target); more appliances (ids_appliances_scaling) take more"
                )),
            }
        }
        for (n, appliance) in assigned {
            let (key, eni, _, _, theirs, kept) = &sources[n];
            let number = match kept {
                Some((_, n)) if !theirs.contains(n) => *n,
                _ => (1..=MAX_SESSION_NUMBER).rev().find(|n| !theirs.contains(n)).unwrap_or(MAX_SESSION_NUMBER),
            };
            let spec = Spec::MirrorSession {
                interface: eni.clone(),
                target: mirror_key(&appliance, "target"),
                filter: mirror_key(&appliance, "filter"),
                number,
            };
            self.build_tagged(key.clone(), region, spec, false, t.ids_tags.clone());
        }
    }

    /// The appliances of one zone, in the subnet under `subnet_key`: for each role, as many
    /// as the scaling options say (one while kept stopped), of the type the options allow.
    fn appliances(
        &mut self,
        n: &VpcNeed,
        t: &VpcTuning,
        (zone, roles): (&String, &Vec<(Role, bool)>),
        subnet_key: &str,
        groups_needed: &mut BTreeSet<Role>,
    ) {
        let (region, vpc) = (n.region.as_str(), n.vpc_id.as_str());
        let scanner_key = keys::vpc(region, vpc, "scanner");
        for (role, running) in roles {
            let (base, group_key, tags, count) = match role {
                Role::Scan => (scanner_key.clone(), keys::vpc(region, vpc, "scan_sg"), &t.scan_tags, t.scanners),
                Role::Ids => (
                    keys::zone(region, vpc, zone, "ids"),
                    keys::vpc(region, vpc, "ids_sg"),
                    &t.ids_tags,
                    Some(t.ids_per_zone),
                ),
            };
            // Scaling adds appliances beside the first while they are to run; one kept
            // stopped stays one.
            let count = if *running { count.unwrap_or(1).max(1) } else { 1 };
            for i in 1..=count {
                let key = tuning::nth(&base, i);
                let kept = match self.owned_spec(&key) {
                    Some(Spec::Appliance { instance_type, .. }) => Some(instance_type.clone()),
                    _ => None,
                };
                let Some(instance_type) = self.appliance_type((region, vpc, zone), *role, kept, t) else {
                    self.out.problems.push(format!("{region} {zone}: no {role:?} appliance instance type is offered"));
                    continue;
                };
                groups_needed.insert(*role);
                let image = self.inputs.images.image(*role, region);
                if *role == Role::Ids && *running && t.mirroring {
                    self.build_tagged(
                        mirror_key(&key, "filter"),
                        region,
                        Spec::MirrorFilter { vpc: vpc.into() },
                        false,
                        tags.clone(),
                    );
                    self.build_tagged(
                        mirror_key(&key, "target"),
                        region,
                        Spec::MirrorTarget { appliance: key.clone() },
                        false,
                        tags.clone(),
                    );
                    self.mirror_to.push((zone.clone(), key.clone()));
                }
                self.build_tagged(
                    key,
                    region,
                    Spec::Appliance {
                        role: *role,
                        vpc: vpc.into(),
                        zone: zone.clone(),
                        instance_type,
                        image,
                        subnet: subnet_key.to_string(),
                        group: group_key.clone(),
                    },
                    *running,
                    tags.clone(),
                );
            }
        }
    }

    fn flow_logs(&mut self, rs: &RegionSnapshot, region: &str, vpc: &str) {
        let key = keys::vpc(region, vpc, "flow_logs");
        if !self.built(&key)
            && let Some(f) = rs.flow_logs.iter().find(|f| f.resource_id == vpc && !is_ours(&f.tags, &self.d.id))
        {
            let id = f.id.clone();
            self.adopt(&key, region, ResKind::FlowLogs, &id, None);
            return;
        }
        if !self.out.items.contains_key(keys::BUCKET) {
            self.bucket();
        }
        self.build(key, region, Spec::FlowLogs { vpc: vpc.into(), bucket: keys::BUCKET.into() }, false);
    }

    fn detection(&mut self, region: &str) {
        let Some(rs) = self.snap.regions.get(region) else { return };
        let key = keys::region(region, "guardduty");
        match rs.detectors.iter().find(|d| !is_ours(&d.tags, &self.d.id)) {
            Some(det) if !self.built(&key) => {
                let id = det.id.clone();
                self.adopt(&key, region, ResKind::Detector, &id, None)
            }
            _ => self.build(key, region, Spec::Detector, false),
        }
        let key = keys::region(region, "config");
        match rs.config_recorders.iter().find(|r| r.name != RECORDER_NAME) {
            Some(rec) if !self.built(&key) => {
                let id = rec.name.clone();
                self.adopt(&key, region, ResKind::Recorder, &id, None)
            }
            _ => {
                if !self.out.items.contains_key(keys::BUCKET) {
                    self.bucket();
                }
                self.build(
                    key,
                    region,
                    Spec::Recorder { name: RECORDER_NAME.into(), bucket: keys::BUCKET.into() },
                    false,
                )
            }
        }
    }
}

/// The desired state of an active deployment. An inactive or deleted deployment desires
/// nothing (`Desired::default()`), which the planner turns into an uninstall.
pub fn desired(d: &Deployment, snap: &Snapshot, owned: &Owned, inputs: &Inputs<'_>) -> Desired {
    let all = garrison_catalog::policies::all();
    let mut needs = needs(d, snap, &all);
    for n in &mut needs {
        super::needs::place_ids(n, &d.id, inputs.options);
    }
    let hub_problems = super::needs::cross_network(&mut needs, &d.id, snap, inputs.options);
    let mut b = Builder { d, snap, owned, inputs, out: Desired::default(), mirror_to: vec![] };
    b.out.replace = inputs.appliances.replace.clone();
    b.out.hold = inputs.appliances.hold.clone();
    b.out.problems.extend(hub_problems);
    if d.platform.monitor.enabled {
        b.audit_source();
    }
    let mut detect_regions = BTreeSet::new();
    for n in &needs {
        b.vpc(n);
        if n.detect() {
            detect_regions.insert(n.region.clone());
        }
    }
    for r in detect_regions {
        b.detection(&r);
    }
    b.out
}

/// Instances garrison made (any deployment's appliances) are not hosts to protect.
pub fn is_appliance(i: &garrison_model::snapshot::Instance) -> bool {
    is_garrisons(&i.tags)
}

/// Whether every kind a removal in `region` depends on was read completely.
pub fn region_complete(snap: &Snapshot, region: &str) -> bool {
    snap.regions.get(region).is_some_and(|r| Kind::ALL.iter().all(|k| r.complete(*k)))
}

/// Each trail once, as seen from its home region: a multi-region trail appears in every
/// region's listing, but only the copy read in its home region has a logging status, so
/// that copy judges it (whatever the regions read and their order). Where the home region
/// was not read, discovery reads the status there by ARN (`home_status_of_shadows`): a copy
/// that carries one is kept.
pub fn home_copies(snap: &garrison_model::snapshot::Snapshot) -> Vec<&garrison_model::snapshot::Trail> {
    let mut by_arn: BTreeMap<&str, &garrison_model::snapshot::Trail> = BTreeMap::new();
    for (region, rs) in &snap.regions {
        for t in &rs.trails {
            let home = *region == t.home_region;
            by_arn
                .entry(t.arn.as_str())
                .and_modify(|kept| {
                    if home || (kept.logging.is_none() && t.logging.is_some()) {
                        *kept = t
                    }
                })
                .or_insert(t);
        }
    }
    by_arn.into_values().collect()
}
