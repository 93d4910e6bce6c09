//! The planner's properties over random estates: applying a plan and planning again gives
//! an empty plan (also after the estate drifts), and no action ever touches a resource
//! garrison does not own.

use std::collections::BTreeMap;

use garrison_catalog::appliances::Images;
use garrison_catalog::policies::{ESSENTIALS, PROFESSIONAL};
use garrison_catalog::prices::PriceTable;
use garrison_model::deployment::Deployment;
use garrison_model::protection::*;
use garrison_model::schedule::Schedule;
use garrison_model::snapshot::*;
use proptest::prelude::*;
use serde_json::json;

use super::desired::keys;
use super::*;

const DEP: &str = "6F7A1C2E-0000-4000-8000-00000000D001";

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

fn tags_of(key: &str) -> Tags {
    [
        (TAG_OWNER.0.to_string(), TAG_OWNER.1.to_string()),
        (TAG_DEPLOYMENT.to_string(), DEP.to_string()),
        (TAG_TENANT.to_string(), "2".to_string()),
        (TAG_KEY.to_string(), key.to_string()),
    ]
    .into()
}

struct World {
    snap: Snapshot,
    owned: Owned,
    deployment: Deployment,
    next: u64,
    /// The account's tuning options.
    options: Vec<garrison_model::otis::TuningOption>,
    /// Scan schedules and controls, and the planner's clock.
    scans: super::scans::Scans,
    /// What the health watch asks: silent appliances replaced, retired ones kept.
    replacing: super::desired::Replacing,
}

fn rules(p: &[Perm]) -> Vec<Rule> {
    p.iter()
        .map(|p| Rule {
            protocol: p.protocol.clone(),
            from_port: (p.protocol != "-1").then_some(p.from_port),
            to_port: (p.protocol != "-1").then_some(p.to_port),
            cidrs: vec![p.cidr.clone()],
            groups: vec![],
        })
        .collect()
}

fn random_world(seed: u64) -> World {
    let mut r = Rng(seed | 1);
    let zones = ["a", "b", "c"];
    let mut regions = BTreeMap::new();
    let mut include = vec![];
    let mut exclude = vec![];
    for (ri, region) in ["us-east-1", "eu-west-1"].iter().enumerate() {
        let mut rs = RegionSnapshot::default();
        for k in Kind::ALL {
            rs.status.insert(k, ReadStatus::Complete);
        }
        for z in zones {
            rs.zones.push(Zone { name: format!("{region}{z}"), zone_id: z.into(), state: "available".into() });
            for t in ["t3a.medium", "t3.medium", "m3.medium", "c5.xlarge", "m5.xlarge"] {
                if r.chance(70) {
                    rs.offerings.push(Offering { zone: format!("{region}{z}"), instance_type: t.into() });
                }
            }
        }
        if r.chance(80) {
            let p = if r.chance(50) { ESSENTIALS } else { PROFESSIONAL };
            include.push(json!({"type": "region", "key": format!("/aws/{region}"), "policy": {"id": p}}));
        }
        for v in 0..r.below(4) {
            let vpc = format!("vpc-{ri}{v:07}");
            let cidr = format!("10.{v}.0.0/{}", if r.chance(10) { 28 } else { 16 });
            rs.vpcs.push(Vpc { id: vpc.clone(), cidr: cidr.clone(), is_default: false, tags: Tags::new() });
            if r.chance(30) {
                let p = if r.chance(50) { ESSENTIALS } else { PROFESSIONAL };
                include.push(json!({"type": "vpc", "key": format!("/aws/{region}/vpc/{vpc}"), "policy": {"id": p}}));
            }
            if r.chance(20) {
                rs.internet_gateways.push(InternetGateway {
                    id: format!("igw-c{ri}{v}"),
                    vpc_ids: vec![vpc.clone()],
                    tags: Tags::new(),
                });
            }
            if r.chance(15) {
                rs.flow_logs.push(FlowLog { id: format!("fl-c{ri}{v}"), resource_id: vpc.clone(), tags: Tags::new() });
            }
            for s in 0..1 + r.below(3) {
                let subnet = format!("subnet-{ri}{v}{s:06}");
                let zone = format!("{region}{}", zones[s as usize % 3]);
                let scidr = if cidr.ends_with("/28") { cidr.clone() } else { format!("10.{v}.{s}.0/24") };
                rs.subnets.push(Subnet {
                    id: subnet.clone(),
                    vpc_id: vpc.clone(),
                    zone: zone.clone(),
                    cidr: scidr,
                    tags: Tags::new(),
                });
                if r.chance(10) {
                    exclude.push(json!({"type": "subnet", "key": format!("/aws/{region}/subnet/{subnet}")}));
                }
                for h in 0..r.below(4) {
                    let id = format!("i-{ri}{v}{s}{h:05}");
                    let eni = format!("eni-{}", &id[2..]);
                    if r.chance(10) {
                        exclude.push(json!({"type": "host", "key": format!("/aws/{region}/host/{id}")}));
                    }
                    // The customer's own mirroring on some interfaces (now and then as many
                    // sessions as AWS allows).
                    if r.chance(15) {
                        for n in 0..if r.chance(30) { 3 } else { 1 } {
                            rs.mirror_sessions.push(MirrorSession {
                                id: format!("tms-c{}{n}", &id[2..]),
                                interface: eni.clone(),
                                target: "tmt-customer".into(),
                                filter: "tmf-customer".into(),
                                number: 1 + n,
                                tags: Tags::new(),
                            });
                        }
                    }
                    rs.instances.push(Instance {
                        id,
                        vpc_id: Some(vpc.clone()),
                        subnet_id: Some(subnet.clone()),
                        zone: zone.clone(),
                        state: if r.chance(75) { "running" } else { "stopped" }.into(),
                        instance_type: "t3.micro".into(),
                        private_ip: None,
                        interfaces: vec![eni],
                        security_groups: vec![],
                        tags: Tags::new(),
                    });
                }
            }
        }
        if r.chance(30) {
            rs.detectors.push(Detector { id: format!("det-c{ri}"), status: Some("ENABLED".into()), tags: Tags::new() });
        }
        if r.chance(30) {
            rs.config_recorders.push(ConfigRecorder { name: "default".into(), recording: true });
        }
        regions.insert(region.to_string(), rs);
    }
    if r.chance(30) {
        let topic = r.chance(50).then(|| "arn:aws:sns:us-east-1:123456789012:customer".to_string());
        let t = Trail {
            name: "customer".into(),
            arn: "arn:aws:cloudtrail:us-east-1:123456789012:trail/customer".into(),
            home_region: "us-east-1".into(),
            multi_region: true,
            logging: Some(r.chance(80)),
            s3_bucket: Some("customer-logs".into()),
            sns_topic_arn: topic,
            kms_key_id: None,
            organization: false,
        };
        // Listed in every region; its logging status is read where it is homed only.
        for (region, rs) in regions.iter_mut() {
            let logging = if *region == t.home_region { t.logging } else { None };
            rs.trails.push(Trail { logging, ..t.clone() });
        }
    }
    let deployment: Deployment = serde_json::from_value(json!({
        "id": DEP, "account_id": "2", "name": "n",
        "platform": {"type": "aws", "id": "123456789012", "monitor": {"enabled": r.chance(70), "ct_install_region": "us-east-1"}},
        "mode": "automatic", "enabled": true, "discover": true, "scan": true,
        "scope": {"include": include, "exclude": exclude},
        "cloud_defender": {"enabled": false}, "credentials": [], "status": {"status": "ok", "updated": 0},
        "created": {"at": 0, "by": "u"}, "modified": {"at": 0, "by": "u"}, "version": 1, "is_control_tower": false
    }))
    .unwrap();
    World {
        snap: Snapshot { aws_account: "123456789012".into(), taken_at: 0, regions },
        owned: Owned::default(),
        deployment,
        next: 0,
        options: vec![],
        scans: Default::default(),
        replacing: Default::default(),
    }
}

impl World {
    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}-g{:08}", self.next)
    }

    fn resolve(&self, key: &str) -> String {
        self.owned.items[key].id.clone()
    }

    /// What the executor does to the account, as the next discovery would see it.
    fn apply(&mut self, p: &Plan) {
        // In dependency order, as the executor runs them (a dependency not in the plan is
        // there already).
        let mut done = std::collections::BTreeSet::new();
        let planned: std::collections::BTreeSet<&String> = p.actions.iter().map(|a| &a.key).collect();
        let mut ordered = vec![];
        while ordered.len() < p.actions.len() {
            let before = ordered.len();
            for a in &p.actions {
                if !done.contains(&a.key) && a.after.iter().all(|k| done.contains(k) || !planned.contains(k)) {
                    ordered.push(a.clone());
                }
            }
            for a in &ordered[before..] {
                done.insert(a.key.clone());
            }
            assert!(ordered.len() > before, "the plan's order has a cycle");
        }
        for a in &ordered {
            match &a.op {
                Op::Create { spec, running, tags, retire } => {
                    let key = a.key.clone();
                    // As the executor does: what a create replaces stays owned, retired.
                    if let (Some(rk), Some(prior)) = (retire, self.owned.items.get(&key)) {
                        let item = OwnedItem { key: rk.clone(), ..prior.clone() };
                        self.owned.items.insert(rk.clone(), item);
                    }
                    let (id, arn) = self.create(&a.region, &key, spec, *running, tags);
                    self.owned.items.insert(
                        key.clone(),
                        OwnedItem {
                            key,
                            region: a.region.clone(),
                            kind: spec.kind(),
                            id,
                            arn,
                            adopted: false,
                            spec: Some(spec.clone()),
                            token: None,
                            tags: tags.clone(),
                        },
                    );
                }
                Op::Adopt { id } => {
                    self.owned.items.insert(
                        a.key.clone(),
                        OwnedItem {
                            key: a.key.clone(),
                            region: a.region.clone(),
                            kind: a.kind,
                            id: id.clone(),
                            arn: None,
                            adopted: true,
                            spec: None,
                            token: None,
                            tags: Tags::new(),
                        },
                    );
                }
                Op::Forget { .. } => {
                    self.owned.items.remove(&a.key);
                }
                Op::Delete { id } => {
                    self.owned.items.remove(&a.key);
                    let rs = self.snap.regions.get_mut(&a.region).unwrap();
                    rs.subnets.retain(|x| &x.id != id);
                    rs.internet_gateways.retain(|x| &x.id != id);
                    rs.route_tables.retain(|x| &x.id != id);
                    rs.network_acls.retain(|x| &x.id != id);
                    rs.security_groups.retain(|x| &x.id != id);
                    rs.flow_logs.retain(|x| &x.id != id);
                    rs.detectors.retain(|x| &x.id != id);
                    rs.config_recorders.retain(|x| &x.name != id);
                    assert!(
                        !rs.mirror_sessions.iter().any(|m| &m.target == id || &m.filter == id),
                        "{id} removed while a session uses it (AWS refuses)"
                    );
                    rs.mirror_targets.retain(|x| &x.id != id);
                    rs.mirror_filters.retain(|x| &x.id != id);
                    rs.mirror_sessions.retain(|x| &x.id != id);
                    for rs in self.snap.regions.values_mut() {
                        rs.trails.retain(|x| &x.name != id);
                        rs.instances.retain(|x| &x.id != id);
                    }
                }
                Op::Start { id } if a.kind == ResKind::Trail => {
                    for rs in self.snap.regions.values_mut() {
                        for t in rs.trails.iter_mut().filter(|t| &t.name == id && t.logging.is_some()) {
                            t.logging = Some(true);
                        }
                    }
                }
                Op::Start { id } | Op::Stop { id } => {
                    let state = if matches!(a.op, Op::Start { .. }) { "running" } else { "stopped" };
                    for i in self.snap.regions.get_mut(&a.region).unwrap().instances.iter_mut().filter(|i| &i.id == id)
                    {
                        i.state = state.into();
                    }
                }
                Op::Tag { id, set, unset } => {
                    let rs = self.snap.regions.get_mut(&a.region).unwrap();
                    let on = |t: &mut Tags| {
                        t.retain(|k, _| !unset.contains(k));
                        t.extend(set.clone());
                    };
                    rs.subnets.iter_mut().filter(|x| &x.id == id).for_each(|x| on(&mut x.tags));
                    rs.internet_gateways.iter_mut().filter(|x| &x.id == id).for_each(|x| on(&mut x.tags));
                    rs.route_tables.iter_mut().filter(|x| &x.id == id).for_each(|x| on(&mut x.tags));
                    rs.network_acls.iter_mut().filter(|x| &x.id == id).for_each(|x| on(&mut x.tags));
                    rs.security_groups.iter_mut().filter(|x| &x.id == id).for_each(|x| on(&mut x.tags));
                    rs.instances.iter_mut().filter(|x| &x.id == id).for_each(|x| on(&mut x.tags));
                    let o = self.owned.items.get_mut(&a.key).expect("a tagged resource is owned");
                    o.tags.retain(|k, _| !unset.contains(k));
                    o.tags.extend(set.clone());
                }
                Op::Modify { id, spec } => {
                    let resolved = match spec {
                        Spec::MirrorSession { target, filter, number, .. } => {
                            Some((self.resolve(target), self.resolve(filter), *number))
                        }
                        _ => None,
                    };
                    let rs = self.snap.regions.get_mut(&a.region).unwrap();
                    for m in rs.mirror_sessions.iter_mut().filter(|m| &m.id == id) {
                        let (t, f, n) = resolved.clone().expect("only sessions are sent elsewhere");
                        (m.target, m.filter, m.number) = (t, f, n);
                    }
                    for f in rs.mirror_filters.iter_mut().filter(|f| &f.id == id) {
                        (f.ingress_rules, f.egress_rules) = (1, 1);
                    }
                    self.owned.items.get_mut(&a.key).expect("a modified resource is owned").spec = Some(spec.clone());
                }
                Op::SetRules { id, add_ingress, remove_ingress, add_egress, remove_egress } => {
                    let g = self
                        .snap
                        .regions
                        .get_mut(&a.region)
                        .unwrap()
                        .security_groups
                        .iter_mut()
                        .find(|g| &g.id == id)
                        .unwrap();
                    let mut i = planner::flatten(&g.ingress);
                    i.retain(|p| !remove_ingress.contains(p));
                    i.extend(add_ingress.iter().cloned());
                    let mut e = planner::flatten(&g.egress);
                    e.retain(|p| !remove_egress.contains(p));
                    e.extend(add_egress.iter().cloned());
                    g.ingress = rules(&i);
                    g.egress = rules(&e);
                }
            }
        }
    }

    fn create(
        &mut self,
        region: &str,
        key: &str,
        spec: &Spec,
        running: bool,
        extra: &Tags,
    ) -> (String, Option<String>) {
        let mut tags = tags_of(key);
        for (k, v) in extra {
            tags.entry(k.clone()).or_insert_with(|| v.clone());
        }
        match spec {
            Spec::Bucket { name } => (name.clone(), Some(format!("arn:aws:s3:::{name}"))),
            Spec::Topic { name, .. } | Spec::Queue { name, .. } => {
                let arn = format!("arn:aws:sns:{region}:123456789012:{name}");
                (arn.clone(), Some(arn))
            }
            Spec::Subscription { .. } | Spec::BucketNotification { .. } => (self.id("sub"), None),
            // The event feed is not listed by discovery: its records are what the planner sees.
            Spec::EventBus { name } => {
                (name.clone(), Some(format!("arn:aws:events:{region}:123456789012:event-bus/{name}")))
            }
            Spec::EventRule { name, .. } => {
                let arn = format!("arn:aws:events:{region}:123456789012:rule/{name}");
                (arn.clone(), Some(arn))
            }
            Spec::EventRole { name, .. } => (name.clone(), Some(format!("arn:aws:iam::123456789012:role/{name}"))),
            Spec::QueuePolicy { queue, rule } => (self.resolve(queue), Some(self.resolve(rule))),
            Spec::Trail { name, .. } => {
                let t = Trail {
                    name: name.clone(),
                    arn: format!("arn:aws:cloudtrail:{region}:123456789012:trail/{name}"),
                    home_region: region.into(),
                    multi_region: true,
                    logging: Some(true),
                    s3_bucket: None,
                    sns_topic_arn: None,
                    kms_key_id: None,
                    organization: false,
                };
                // Discovery reads the status only where the trail is homed.
                for (r, rs) in self.snap.regions.iter_mut() {
                    let mut t = t.clone();
                    if r != region {
                        t.logging = None;
                    }
                    rs.trails.push(t);
                }
                (name.clone(), Some(t.arn))
            }
            Spec::Recorder { name, .. } => {
                self.snap
                    .regions
                    .get_mut(region)
                    .unwrap()
                    .config_recorders
                    .push(ConfigRecorder { name: name.clone(), recording: true });
                (name.clone(), None)
            }
            _ => {
                let id = self.id(spec.kind().as_str());
                let sub = |w: &World, k: &str| w.resolve(k);
                let rs_entry = match spec {
                    Spec::Subnet { vpc, zone, cidr } => {
                        let s = Subnet {
                            id: id.clone(),
                            vpc_id: vpc.clone(),
                            zone: zone.clone(),
                            cidr: cidr.clone(),
                            tags,
                        };
                        Box::new(move |rs: &mut RegionSnapshot| rs.subnets.push(s))
                            as Box<dyn FnOnce(&mut RegionSnapshot)>
                    }
                    Spec::InternetGateway { vpc } => {
                        let g = InternetGateway { id: id.clone(), vpc_ids: vec![vpc.clone()], tags };
                        Box::new(move |rs: &mut RegionSnapshot| rs.internet_gateways.push(g))
                    }
                    Spec::RouteTable { vpc, subnet, gateway } => {
                        let t = RouteTable {
                            id: id.clone(),
                            vpc_id: vpc.clone(),
                            main: false,
                            subnet_ids: vec![sub(self, subnet)],
                            routes: vec![Route { destination: "0.0.0.0/0".into(), target: Some(sub(self, gateway)) }],
                            tags,
                        };
                        Box::new(move |rs: &mut RegionSnapshot| rs.route_tables.push(t))
                    }
                    Spec::NetworkAcl { vpc, subnet, .. } => {
                        let t = NetworkAcl {
                            id: id.clone(),
                            vpc_id: vpc.clone(),
                            is_default: false,
                            subnet_ids: vec![sub(self, subnet)],
                            tags,
                        };
                        Box::new(move |rs: &mut RegionSnapshot| rs.network_acls.push(t))
                    }
                    Spec::SecurityGroup { vpc, name, ingress, egress } => {
                        let g = SecurityGroup {
                            id: id.clone(),
                            vpc_id: Some(vpc.clone()),
                            name: name.clone(),
                            ingress: rules(ingress),
                            egress: rules(egress),
                            tags,
                        };
                        Box::new(move |rs: &mut RegionSnapshot| rs.security_groups.push(g))
                    }
                    Spec::Appliance { vpc, zone, instance_type, subnet, .. } => {
                        let i = Instance {
                            id: id.clone(),
                            vpc_id: Some(vpc.clone()),
                            subnet_id: Some(sub(self, subnet)),
                            zone: zone.clone(),
                            state: if running { "running" } else { "stopped" }.into(),
                            instance_type: instance_type.clone(),
                            private_ip: None,
                            interfaces: vec![format!("eni-{id}")],
                            security_groups: vec![],
                            tags,
                        };
                        Box::new(move |rs: &mut RegionSnapshot| rs.instances.push(i))
                    }
                    Spec::FlowLogs { vpc, .. } => {
                        let f = FlowLog { id: id.clone(), resource_id: vpc.clone(), tags };
                        Box::new(move |rs: &mut RegionSnapshot| rs.flow_logs.push(f))
                    }
                    Spec::Detector => {
                        let d = Detector { id: id.clone(), status: Some("ENABLED".into()), tags };
                        Box::new(move |rs: &mut RegionSnapshot| rs.detectors.push(d))
                    }
                    Spec::MirrorFilter { .. } => {
                        let f = MirrorFilter { id: id.clone(), ingress_rules: 1, egress_rules: 1, tags };
                        Box::new(move |rs: &mut RegionSnapshot| rs.mirror_filters.push(f))
                    }
                    Spec::MirrorTarget { appliance } => {
                        let instance = sub(self, appliance);
                        let interface = self.snap.regions[region]
                            .instances
                            .iter()
                            .find(|i| i.id == instance)
                            .and_then(|i| i.interfaces.first().cloned());
                        let t = MirrorTarget { id: id.clone(), interface, tags };
                        Box::new(move |rs: &mut RegionSnapshot| rs.mirror_targets.push(t))
                    }
                    Spec::MirrorSession { interface, target, filter, number } => {
                        let m = MirrorSession {
                            id: id.clone(),
                            interface: interface.clone(),
                            target: sub(self, target),
                            filter: sub(self, filter),
                            number: *number,
                            tags,
                        };
                        Box::new(move |rs: &mut RegionSnapshot| rs.mirror_sessions.push(m))
                    }
                    _ => unreachable!(),
                };
                rs_entry(self.snap.regions.get_mut(region).unwrap());
                (id, None)
            }
        }
    }

    fn plan(&self, d: Option<&Deployment>) -> (Plan, Owned) {
        let prices = PriceTable::builtin();
        let images = Images::builtin();
        plan_deployment(
            d,
            DEP,
            &self.snap,
            &self.owned,
            &Inputs {
                prices: &prices,
                images: &images,
                options: &self.options,
                scans: &self.scans,
                appliances: &self.replacing,
            },
        )
    }

    /// Applies plans until converged; returns how many rounds it took.
    fn converge(&mut self, d: Option<&Deployment>) -> usize {
        for round in 1..=3 {
            let (p, owned) = self.plan(d);
            self.owned = owned;
            self.check_touches_only_owned(&p);
            if p.is_empty() {
                return round;
            }
            self.apply(&p);
        }
        panic!("no convergence: {:#?}", self.plan(d).0)
    }

    fn check_touches_only_owned(&self, p: &Plan) {
        for a in &p.actions {
            if let Op::Delete { id }
            | Op::Start { id }
            | Op::Stop { id }
            | Op::SetRules { id, .. }
            | Op::Modify { id, .. }
            | Op::Tag { id, .. } = &a.op
            {
                // A retired resource is owned under its retired key, or (retired by this
                // plan) the one its replacement's key holds now.
                let replaced = a.key.strip_prefix("retired/").map(|k| k.split('#').next().unwrap_or(k));
                let o = self
                    .owned
                    .items
                    .get(&a.key)
                    .or_else(|| self.owned.items.get(replaced?))
                    .unwrap_or_else(|| panic!("{} is not owned", a.key));
                assert!(!o.adopted && &o.id == id, "{a:?} touches what garrison does not own");
            }
        }
    }

    /// The customer changes things: hosts stop and start, one of ours is deleted, a
    /// rule is added to our group.
    fn drift(&mut self, seed: u64) {
        let mut r = Rng(seed.rotate_left(17) | 1);
        for rs in self.snap.regions.values_mut() {
            for i in rs.instances.iter_mut().filter(|i| !i.tags.contains_key(TAG_KEY)) {
                if r.chance(30) {
                    i.state = if i.state == "running" { "stopped" } else { "running" }.into();
                }
            }
            if r.chance(30)
                && let Some(g) = rs.security_groups.iter_mut().find(|g| g.tags.contains_key(TAG_KEY))
            {
                g.egress.push(Rule {
                    protocol: "tcp".into(),
                    from_port: Some(25),
                    to_port: Some(25),
                    cidrs: vec!["0.0.0.0/0".into()],
                    groups: vec![],
                });
            }
            if r.chance(30) {
                rs.instances.retain(|i| !(i.tags.get(TAG_KEY).is_some_and(|k| k.ends_with("/scanner"))));
            }
            // Somebody stops our trail's logging.
            if r.chance(30) {
                for t in rs.trails.iter_mut().filter(|t| t.name.starts_with("garrison-") && t.logging.is_some()) {
                    t.logging = Some(false);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(200), ..ProptestConfig::default() })]

    /// What the collector does: plan over the stored snapshot (read before the last run
    /// executed, so stale everywhere) with only the region an event touched read again,
    /// and act in that region only. There it must do exactly what a full reconcile would.
    #[test]
    fn a_targeted_plan_acts_in_its_region_as_a_full_plan_would(seed in any::<u64>()) {
        let mut w = random_world(seed);
        let d = w.deployment.clone();
        let stale = w.snap.clone();
        w.converge(Some(&d));
        w.drift(seed);
        let (full, _) = w.plan(Some(&d));
        let prices = PriceTable::builtin();
        let images = Images::builtin();
        for region in w.snap.regions.keys() {
            let mut view = stale.clone();
            view.regions.insert(region.clone(), w.snap.regions[region].clone());
            let (targeted, _) =
                plan_deployment(Some(&d), DEP, &view, &w.owned, &Inputs { prices: &prices, images: &images, options: &[], scans: &Default::default(), appliances: &Default::default() });
            let only = |p: &Plan| p.actions.iter().filter(|a| &a.region == region).cloned().collect::<Vec<_>>();
            prop_assert_eq!(only(&targeted), only(&full), "region {}", region);
        }
    }

    #[test]
    fn applying_a_plan_then_planning_again_gives_an_empty_plan(seed in any::<u64>()) {
        let mut w = random_world(seed);
        let d = w.deployment.clone();
        prop_assert!(w.converge(Some(&d)) <= 2, "one plan applied converges");
        w.drift(seed);
        prop_assert!(w.converge(Some(&d)) <= 2, "after drift, one plan applied converges");
        // Removal leaves nothing of garrison's and everything of the customer's.
        let before_customer = serde_json::to_string(&w.snap.customer_view()).unwrap();
        prop_assert!(w.converge(None) <= 2);
        prop_assert!(w.owned.items.is_empty(), "{:?}", w.owned);
        prop_assert_eq!(serde_json::to_string(&w.snap.customer_view()).unwrap(), before_customer);
        for rs in w.snap.regions.values() {
            prop_assert!(rs.instances.iter().all(|i| !i.tags.contains_key(TAG_KEY)));
            prop_assert!(rs.subnets.iter().all(|i| !i.tags.contains_key(TAG_KEY)));
            prop_assert!(rs.security_groups.iter().all(|i| !i.tags.contains_key(TAG_KEY)));
        }
    }
}

fn estate() -> World {
    // A fixed estate: one Professional VPC with hosts in two zones, one Essentials VPC
    // with a single host, one empty VPC, a customer detector to adopt.
    let mut w = random_world(1);
    let mut rs = RegionSnapshot::default();
    for k in Kind::ALL {
        rs.status.insert(k, ReadStatus::Complete);
    }
    for (v, cidr) in [("vpc-0000000a", "10.1.0.0/16"), ("vpc-0000000b", "10.2.0.0/16"), ("vpc-0000000c", "10.3.0.0/16")]
    {
        rs.vpcs.push(Vpc { id: v.into(), cidr: cidr.into(), is_default: false, tags: Tags::new() });
    }
    let host = |id: &str, vpc: &str, subnet: &str, zone: &str| Instance {
        id: id.into(),
        vpc_id: Some(vpc.into()),
        subnet_id: Some(subnet.into()),
        zone: zone.into(),
        state: "running".into(),
        instance_type: "t3.micro".into(),
        private_ip: None,
        interfaces: vec![format!("eni-{}", &id[2..])],
        security_groups: vec![],
        tags: Tags::new(),
    };
    rs.subnets.push(Subnet {
        id: "subnet-000000a1".into(),
        vpc_id: "vpc-0000000a".into(),
        zone: "us-east-1a".into(),
        cidr: "10.1.0.0/24".into(),
        tags: Tags::new(),
    });
    rs.instances.push(host("i-000000a1", "vpc-0000000a", "subnet-000000a1", "us-east-1a"));
    rs.instances.push(host("i-000000a2", "vpc-0000000a", "subnet-000000a2", "us-east-1b"));
    rs.instances.push(host("i-000000b1", "vpc-0000000b", "subnet-000000b1", "us-east-1a"));
    rs.offerings.push(Offering { zone: "us-east-1a".into(), instance_type: "t3.medium".into() });
    rs.offerings.push(Offering { zone: "us-east-1a".into(), instance_type: "c5.xlarge".into() });
    rs.detectors.push(Detector { id: "det-customer".into(), status: None, tags: Tags::new() });
    w.snap.regions = [("us-east-1".to_string(), rs)].into();
    w.deployment.platform.monitor.enabled = true;
    w.deployment.scope = serde_json::from_value(json!({
        "include": [{"type": "region", "key": "/aws/us-east-1", "policy": {"id": ESSENTIALS}},
                    {"type": "vpc", "key": "/aws/us-east-1/vpc/vpc-0000000a", "policy": {"id": PROFESSIONAL}}],
        "exclude": []
    }))
    .unwrap();
    w
}

/// The customer's multi-region trail, homed in us-east-1, listed in eu-west-1 too (where its
/// logging status is not read): adopted whatever the regions in scope and their order,
/// never duplicated; not adopted when its home copy says it does not log.
#[test]
fn a_multi_region_trail_is_judged_by_its_home_region_copy() {
    let mut w = estate();
    let home = Trail {
        name: "org-trail".into(),
        arn: "arn:aws:cloudtrail:us-east-1:123456789012:trail/org-trail".into(),
        home_region: "us-east-1".into(),
        multi_region: true,
        logging: Some(true),
        s3_bucket: Some("customer-logs".into()),
        sns_topic_arn: None,
        kms_key_id: None,
        organization: false,
    };
    let mut west = w.snap.regions["us-east-1"].clone();
    west.instances.clear();
    west.detectors.clear();
    // "eu-west-1" sorts before "us-east-1": its shadow copy is met first.
    west.trails = vec![Trail { logging: None, ..home.clone() }];
    w.snap.regions.get_mut("us-east-1").unwrap().trails = vec![home.clone()];
    w.snap.regions.insert("eu-west-1".into(), west);
    let trail_op = |w: &mut World| {
        let d = w.deployment.clone();
        let (p, _) = w.plan(Some(&d));
        p.actions.iter().find(|a| a.key == keys::TRAIL).map(|a| a.op.clone())
    };
    for scope in [
        json!({"include": [{"type": "vpc", "key": "/aws/eu-west-1/vpc/vpc-0000000a", "policy": {"id": ESSENTIALS}},
                           {"type": "region", "key": "/aws/us-east-1", "policy": {"id": ESSENTIALS}}], "exclude": []}),
        json!({"include": [{"type": "region", "key": "/aws/us-east-1", "policy": {"id": ESSENTIALS}},
                           {"type": "region", "key": "/aws/eu-west-1", "policy": {"id": ESSENTIALS}}], "exclude": []}),
    ] {
        w.deployment.scope = serde_json::from_value(scope).unwrap();
        assert_eq!(trail_op(&mut w), Some(Op::Adopt { id: "org-trail".into() }), "adopted, not built again");
    }
    // Only eu-west-1 read: discovery gave the shadow copy the home copy's status.
    let mut only_west = World { snap: w.snap.clone(), ..random_world(2) };
    only_west.snap.regions.remove("us-east-1");
    only_west.snap.regions.get_mut("eu-west-1").unwrap().trails[0].logging = Some(true);
    only_west.deployment = w.deployment.clone();
    only_west.deployment.scope = serde_json::from_value(json!({"include": [
        {"type": "vpc", "key": "/aws/eu-west-1/vpc/vpc-0000000a", "policy": {"id": ESSENTIALS}}], "exclude": []}))
    .unwrap();
    assert_eq!(trail_op(&mut only_west), Some(Op::Adopt { id: "org-trail".into() }), "home region not in scope");
    for rs in w.snap.regions.values_mut() {
        for t in rs.trails.iter_mut().filter(|t| t.logging.is_some()) {
            t.logging = Some(false);
        }
    }
    assert!(
        matches!(trail_op(&mut w), Some(Op::Create { spec: Spec::Trail { .. }, .. })),
        "a trail that does not log is not relied on: garrison builds its own"
    );
}

/// The event feed: a rule on each in-scope region's default bus, forwarding to garrison's
/// bus beside the queue (with a role from another region), whose rule sends to the queue
/// that admits it; an adopted trail without notifications gets a queue for the feed alone.
#[test]
fn the_event_feed_forwards_each_scope_region_to_the_bus_beside_the_queue() {
    let mut w = estate();
    let mut west = w.snap.regions["us-east-1"].clone();
    west.instances.clear();
    west.detectors.clear();
    w.snap.regions.insert("eu-west-1".into(), west);
    w.deployment.scope = serde_json::from_value(json!({"include": [
        {"type": "vpc", "key": "/aws/eu-west-1/vpc/vpc-0000000a", "policy": {"id": ESSENTIALS}},
        {"type": "region", "key": "/aws/us-east-1", "policy": {"id": ESSENTIALS}}], "exclude": []}))
    .unwrap();
    let d = w.deployment.clone();
    let (p, _) = w.plan(Some(&d));
    let creates: BTreeMap<&str, (&str, &Spec)> = p
        .actions
        .iter()
        .filter_map(|a| match &a.op {
            Op::Create { spec, .. } => Some((a.key.as_str(), (a.region.as_str(), spec))),
            _ => None,
        })
        .collect();
    let pattern = garrison_catalog::feed::pattern();
    for (key, region, role) in
        [("us-east-1/feed", "us-east-1", None), ("eu-west-1/feed", "eu-west-1", Some(keys::FEED_ROLE.to_string()))]
    {
        let (r, spec) = creates[key];
        assert_eq!(r, region);
        assert!(
            matches!(spec, Spec::EventRule { bus: None, target, role: ro, pattern: pa, .. }
                if target == keys::FEED_BUS && *ro == role && *pa == pattern),
            "{key}: {spec:?}"
        );
    }
    assert!(matches!(creates[keys::FEED_BUS], ("us-east-1", Spec::EventBus { .. })));
    assert!(matches!(creates[keys::FEED_RULE], ("us-east-1", Spec::EventRule { bus: Some(b), target, role: None, .. })
        if b == keys::FEED_BUS && target == keys::QUEUE));
    assert!(matches!(creates[keys::QUEUE_POLICY], ("us-east-1", Spec::QueuePolicy { queue, rule })
        if queue == keys::QUEUE && rule == keys::FEED_RULE));
    assert!(matches!(creates[keys::FEED_ROLE], (_, Spec::EventRole { bus, .. }) if bus == keys::FEED_BUS));
    // Each waits for what it names.
    let after = |k: &str| p.actions.iter().find(|a| a.key == k).unwrap().after.clone();
    assert!(after("eu-west-1/feed").contains(&keys::FEED_ROLE.to_string()));
    assert!(after(keys::QUEUE_POLICY).contains(&keys::FEED_RULE.to_string()));
    // Only the install region in scope: no role.
    w.deployment.scope = serde_json::from_value(json!({"include": [
        {"type": "region", "key": "/aws/us-east-1", "policy": {"id": ESSENTIALS}}], "exclude": []}))
    .unwrap();
    let d = w.deployment.clone();
    let (p, _) = w.plan(Some(&d));
    assert!(p.actions.iter().all(|a| a.key != keys::FEED_ROLE && a.key != "eu-west-1/feed"));
    // A logging customer trail without SNS: adopted, and a queue of its own for the feed.
    w.snap.regions.get_mut("us-east-1").unwrap().trails = vec![Trail {
        name: "theirs".into(),
        arn: "arn:aws:cloudtrail:us-east-1:123456789012:trail/theirs".into(),
        home_region: "us-east-1".into(),
        multi_region: true,
        logging: Some(true),
        s3_bucket: Some("customer-logs".into()),
        sns_topic_arn: None,
        kms_key_id: None,
        organization: false,
    }];
    let (p, _) = w.plan(Some(&d));
    let op = |k: &str| p.actions.iter().find(|a| a.key == k).map(|a| a.op.clone());
    assert_eq!(op(keys::TRAIL), Some(Op::Adopt { id: "theirs".into() }));
    assert!(matches!(op(keys::QUEUE), Some(Op::Create { spec: Spec::Queue { topic: None, .. }, .. })));
    assert!(op(keys::TOPIC).is_none() && op(keys::BUCKET).is_none());
    assert!(op(keys::FEED_RULE).is_some() && op("us-east-1/feed").is_some());
    // Converged; a rule of an older pattern is put again in place, nothing else moves.
    w.converge(Some(&d));
    if let Some(Spec::EventRule { pattern, .. }) = w.owned.items.get_mut("us-east-1/feed").and_then(|o| o.spec.as_mut())
    {
        *pattern = r#"{"source":["aws.ec2"]}"#.into();
    }
    let (p, _) = w.plan(Some(&d));
    assert_eq!(
        p.actions.iter().map(|a| (a.key.as_str(), a.op.verb())).collect::<Vec<_>>(),
        [("us-east-1/feed", "create")]
    );
    w.converge(Some(&d));
    // Uninstalled: rules go before the bus and the queue they send to.
    let (p, _) = w.plan(None);
    let deletes: Vec<&str> = p.actions.iter().filter(|a| a.op.verb() == "delete").map(|a| a.key.as_str()).collect();
    for k in [keys::FEED_BUS, keys::FEED_RULE, keys::QUEUE_POLICY, "us-east-1/feed", keys::QUEUE] {
        assert!(deletes.contains(&k), "{k} removed: {deletes:?}");
    }
    let bus_after = after_of(&p, keys::FEED_BUS);
    assert!(bus_after.contains(&"us-east-1/feed".to_string()) && bus_after.contains(&keys::FEED_RULE.to_string()));
    assert!(after_of(&p, keys::QUEUE).contains(&keys::FEED_RULE.to_string()));
}

#[test]
fn an_organization_feed_replaces_the_accounts_own_bus_and_back() {
    let mut w = estate();
    let d = w.deployment.clone();
    w.converge(Some(&d));
    let bus = "arn:aws:events:us-east-1:999999999999:event-bus/garrison-org-e";
    let mut org = d.clone();
    org.event_feed = Some(garrison_model::deployment::EventFeed { bus_arn: bus.into(), organization_id: "E".into() });
    let (p, _) = w.plan(Some(&org));
    let ops: BTreeMap<&str, (&str, Option<&Spec>)> = p
        .actions
        .iter()
        .map(|a| {
            let spec = match &a.op {
                Op::Create { spec, .. } => Some(spec),
                _ => None,
            };
            (a.key.as_str(), (a.op.verb(), spec))
        })
        .collect();
    // Its rule is put again aiming at the organization's bus through the role; its own bus,
    // the bus's rule and the queue statement go.
    assert!(
        matches!(ops["us-east-1/feed"], ("create", Some(Spec::EventRule { target, role: Some(r), .. }))
        if target == bus && r == keys::FEED_ROLE),
        "{ops:?}"
    );
    assert!(matches!(ops[keys::FEED_ROLE], ("create", Some(Spec::EventRole { bus: b, .. })) if b == bus));
    for k in [keys::FEED_BUS, keys::FEED_RULE, keys::QUEUE_POLICY] {
        assert_eq!(ops[k].0, "delete", "{k}: {ops:?}");
    }
    assert!(!ops.contains_key(keys::QUEUE), "the audit queue stays (the trail's files)");
    w.converge(Some(&org));
    assert!(w.plan(Some(&org)).0.is_empty(), "converged");
    // Back to its own: bus, bus rule, queue statement again; the rule aims at its bus.
    let (p, _) = w.plan(Some(&d));
    let creates: Vec<&str> = p.actions.iter().filter(|a| a.op.verb() == "create").map(|a| a.key.as_str()).collect();
    for k in [keys::FEED_BUS, keys::FEED_RULE, keys::QUEUE_POLICY, "us-east-1/feed"] {
        assert!(creates.contains(&k), "{k}: {creates:?}");
    }
    w.converge(Some(&d));
    assert!(w.plan(Some(&d)).0.is_empty());
}

/// An organization trail seen from a member account, encrypted with KMS, notifying a topic
/// of the management account: adopted and never changed, no subscription across accounts
/// (the event feed brings changes), and the status says where its files are and which key.
#[test]
fn an_organization_trail_is_adopted_and_left_as_it_is() {
    let mut w = estate();
    let org = Trail {
        name: "aws-controltower-BaselineCloudTrail".into(),
        arn: "arn:aws:cloudtrail:us-east-1:999988887777:trail/aws-controltower-BaselineCloudTrail".into(),
        home_region: "us-east-1".into(),
        multi_region: true,
        logging: Some(true),
        s3_bucket: Some("aws-controltower-logs-999988887777-us-east-1".into()),
        sns_topic_arn: Some("arn:aws:sns:us-east-1:999988887777:aws-controltower-AllConfigNotifications".into()),
        kms_key_id: Some("arn:aws:kms:us-east-1:999988887777:key/1234abcd-12ab-34cd-56ef-1234567890ab".into()),
        organization: true,
    };
    w.snap.regions.get_mut("us-east-1").unwrap().trails = vec![org.clone()];
    let d = w.deployment.clone();
    let (p, _) = w.plan(Some(&d));
    let op = |k: &str| p.actions.iter().find(|a| a.key == k).map(|a| a.op.clone());
    assert_eq!(op(keys::TRAIL), Some(Op::Adopt { id: org.name.clone() }));
    assert!(
        op(keys::TOPIC).is_none() && op(keys::SUBSCRIPTION).is_none(),
        "no subscription to another account's topic"
    );
    assert!(matches!(op(keys::QUEUE), Some(Op::Create { spec: Spec::Queue { topic: None, .. }, .. })));
    assert!(op(keys::FEED_RULE).is_some());
    let notes = p.notes.join(" | ");
    assert!(notes.contains("organization trail") && notes.contains("aws-controltower-logs-999988887777"), "{notes}");
    assert!(notes.contains("1234abcd-12ab-34cd-56ef-1234567890ab") && notes.contains("AuditLogKmsKeyArn"), "{notes}");
    // Nothing is ever done to it: converged, then uninstalled, it is only forgotten.
    w.converge(Some(&d));
    let (p, _) = w.plan(None);
    assert!(p.actions.iter().filter(|a| a.key == keys::TRAIL).all(|a| a.op.verb() == "forget"), "{:?}", p.actions);
}

fn after_of(p: &Plan, key: &str) -> Vec<String> {
    p.actions.iter().find(|a| a.key == key).map(|a| a.after.clone()).unwrap_or_default()
}

#[test]
fn a_fixed_estate_gets_what_the_reference_builds() {
    let mut w = estate();
    let d = w.deployment.clone();
    let (p, _) = w.plan(Some(&d));
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    let creates: BTreeMap<&str, &Spec> = p
        .actions
        .iter()
        .filter_map(|a| match &a.op {
            Op::Create { spec, .. } => Some((a.key.as_str(), spec)),
            _ => None,
        })
        .collect();
    let appliances: Vec<(&str, &str)> = creates
        .iter()
        .filter_map(|(k, s)| match s {
            Spec::Appliance { instance_type, .. } => Some((*k, instance_type.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        appliances,
        [
            ("us-east-1/vpc-0000000a/scanner", "t3.medium"),
            ("us-east-1/vpc-0000000a/us-east-1a/ids", "c5.xlarge"),
            // us-east-1b has no offering facts: the table's cheapest IDS type is trusted.
            ("us-east-1/vpc-0000000a/us-east-1b/ids", "c5.xlarge"),
            ("us-east-1/vpc-0000000b/scanner", "t3.medium"),
        ],
        "one scanner per inhabited VPC, one IDS per inhabited zone of the Professional VPC, none for the empty VPC"
    );
    assert!(
        matches!(creates["us-east-1/vpc-0000000a/us-east-1a/subnet"], Spec::Subnet { cidr, .. } if cidr == "10.1.255.240/28")
    );
    assert!(
        matches!(creates["us-east-1/vpc-0000000a/us-east-1b/subnet"], Spec::Subnet { cidr, .. } if cidr == "10.1.255.224/28")
    );
    assert!(!creates.keys().any(|k| k.contains("vpc-0000000c")), "the empty VPC gets nothing");
    assert!(
        creates.contains_key("us-east-1/vpc-0000000a/flow_logs")
            && !creates.contains_key("us-east-1/vpc-0000000b/flow_logs")
    );
    assert!(creates.contains_key(keys::TRAIL) && creates.contains_key(keys::QUEUE));
    let adopt: Vec<&str> =
        p.actions.iter().filter(|a| matches!(a.op, Op::Adopt { .. })).map(|a| a.key.as_str()).collect();
    assert_eq!(adopt, ["us-east-1/guardduty"], "the customer's detector is adopted, not duplicated");
    let scanner = p.actions.iter().find(|a| a.key == "us-east-1/vpc-0000000a/scanner").unwrap();
    assert_eq!(scanner.after, ["us-east-1/vpc-0000000a/us-east-1a/subnet", "us-east-1/vpc-0000000a/scan_sg"]);
    // Egress exactly per reference.
    let Spec::SecurityGroup { ingress, egress, .. } = creates["us-east-1/vpc-0000000a/scan_sg"] else { panic!() };
    assert!(ingress.is_empty());
    assert_eq!(egress.len(), 6);
    assert!(egress.contains(&Perm::new("-1", 0, 0, "10.1.0.0/16")));

    // Stopping the last host of the Essentials VPC stops its scanner; starting one starts it.
    w.apply(&p);
    let set = |w: &mut World, state: &str| {
        w.snap
            .regions
            .get_mut("us-east-1")
            .unwrap()
            .instances
            .iter_mut()
            .filter(|i| i.id == "i-000000b1")
            .for_each(|i| i.state = state.into())
    };
    set(&mut w, "stopped");
    let (p, _) = w.plan(Some(&d));
    assert_eq!(
        p.actions.iter().map(|a| (a.key.as_str(), a.op.verb())).collect::<Vec<_>>(),
        [("us-east-1/vpc-0000000b/scanner", "stop")]
    );
    w.apply(&p);
    set(&mut w, "running");
    let (p, _) = w.plan(Some(&d));
    assert_eq!(
        p.actions.iter().map(|a| (a.key.as_str(), a.op.verb())).collect::<Vec<_>>(),
        [("us-east-1/vpc-0000000b/scanner", "start")]
    );
}

#[test]
fn nothing_is_removed_where_discovery_was_incomplete() {
    let mut w = estate();
    let d = w.deployment.clone();
    w.converge(Some(&d));
    let rs = w.snap.regions.get_mut("us-east-1").unwrap();
    rs.status.insert(Kind::Instances, ReadStatus::Failed { code: "AccessDenied".into(), message: "no".into() });
    let (p, _) = w.plan(None);
    assert!(
        p.actions.iter().all(|a| !matches!(a.op, Op::Delete { .. }) || a.kind.is_audit()),
        "no EC2 removal while a read of the region failed: {:?}",
        p.actions
    );
}

#[test]
fn a_resource_created_before_a_crash_is_recognised_by_its_tags() {
    let mut w = estate();
    let d = w.deployment.clone();
    w.converge(Some(&d));
    let lost = w.owned.items.remove("us-east-1/vpc-0000000b/scanner").unwrap();
    let (p, owned) = w.plan(Some(&d));
    assert!(p.is_empty(), "{:?}", p.actions);
    assert_eq!(owned.items["us-east-1/vpc-0000000b/scanner"].id, lost.id);
}

#[test]
fn discovery_reads_the_offerings_of_exactly_the_priced_types() {
    let mut priced: Vec<String> = PriceTable::builtin().specs.keys().cloned().collect();
    let mut read = garrison_cloud::discovery::appliance_types();
    priced.sort();
    read.sort();
    assert_eq!(priced, read);
}

#[test]
fn the_operators_price_table_decides_among_the_offered_types() {
    let w = estate();
    let d = w.deployment.clone();
    let prices = PriceTable::from_json(
        r#"{"date": "2027-01-01", "source": "operator", "currency": "USD",
            "specs": {"m3.medium": {"vcpu": 1, "memory_gib": 3.75}, "t3.medium": {"vcpu": 2, "memory_gib": 4.0},
                      "c5.xlarge": {"vcpu": 4, "memory_gib": 8.0}},
            "regions": {"us-east-1": {"m3.medium": 0.01, "t3.medium": 0.5, "c5.xlarge": 0.9}}}"#,
    )
    .unwrap();
    let images = Images::from_json(r#"{"scan": {"default": "ami-5ca9"}, "ids": {"default": "ami-1d5"}}"#).unwrap();
    let (p, _) = plan_deployment(
        Some(&d),
        DEP,
        &w.snap,
        &w.owned,
        &Inputs {
            prices: &prices,
            images: &images,
            options: &[],
            scans: &Default::default(),
            appliances: &Default::default(),
        },
    );
    let scanner = p.actions.iter().find(|a| a.key == "us-east-1/vpc-0000000b/scanner").unwrap();
    let Op::Create { spec: Spec::Appliance { instance_type, image, zone, .. }, .. } = &scanner.op else { panic!() };
    // m3.medium is cheapest but not offered in us-east-1a, where the VPC's host is.
    assert_eq!((instance_type.as_str(), image.as_str(), zone.as_str()), ("t3.medium", "ami-5ca9", "us-east-1a"));
}

#[test]
fn logging_stopped_on_our_trail_is_started_again() {
    let mut w = estate();
    let d = w.deployment.clone();
    w.converge(Some(&d));
    for t in w.snap.regions.get_mut("us-east-1").unwrap().trails.iter_mut().filter(|t| t.name.starts_with("garrison-"))
    {
        t.logging = Some(false);
    }
    let (p, _) = w.plan(Some(&d));
    assert_eq!(p.actions.iter().map(|a| (a.key.as_str(), a.op.verb())).collect::<Vec<_>>(), [(keys::TRAIL, "start")]);
    w.apply(&p);
    assert!(w.plan(Some(&d)).0.is_empty());
}

/// The automatic-mode role must let garrison do what it does to the audit resources it
/// names (the emulator does not enforce IAM, so only this catches a name outside the role).
#[test]
fn the_automatic_role_covers_what_garrison_does_to_its_audit_resources() {
    use garrison_catalog::iam_check::allows;
    let mut w = estate();
    let d = w.deployment.clone();
    w.converge(Some(&d));
    let doc = garrison_catalog::Catalog::builtin().get("aws", "ci_full", "latest").unwrap().policy_document.clone();
    let name = |key: &str| match w.owned.get(key).and_then(|o| o.spec.clone()) {
        Some(
            Spec::Bucket { name } | Spec::Topic { name, .. } | Spec::Queue { name, .. } | Spec::Trail { name, .. },
        ) => name,
        other => panic!("{key}: {other:?}"),
    };
    let (bucket, topic, queue, trail) = (name(keys::BUCKET), name(keys::TOPIC), name(keys::QUEUE), name(keys::TRAIL));
    let acct = &w.snap.aws_account;
    let s3 = format!("arn:aws:s3:::{bucket}");
    let object = format!("{s3}/AWSLogs/{acct}/CloudTrail/us-east-1/x.json.gz");
    let sns = format!("arn:aws:sns:us-east-1:{acct}:{topic}");
    let subscription = format!("{sns}:0b0e0a2c-1111-4222-8333-444455556666");
    let sqs = format!("arn:aws:sqs:us-east-1:{acct}:{queue}");
    let ct = format!("arn:aws:cloudtrail:us-east-1:{acct}:trail/{trail}");
    let needed = [
        ("s3:CreateBucket", &s3),
        ("s3:PutBucketPolicy", &s3),
        ("s3:DeleteBucketPolicy", &s3),
        ("s3:PutBucketTagging", &s3),
        ("s3:PutBucketNotification", &s3),
        ("s3:GetBucketNotification", &s3),
        ("s3:ListBucket", &s3),
        ("s3:DeleteBucket", &s3),
        ("s3:GetObject", &object),
        ("s3:DeleteObject", &object),
        ("sns:CreateTopic", &sns),
        ("sns:TagResource", &sns),
        ("sns:SetTopicAttributes", &sns),
        ("sns:GetTopicAttributes", &sns),
        ("sns:Subscribe", &sns),
        ("sns:DeleteTopic", &sns),
        ("sns:Unsubscribe", &subscription),
        ("sns:GetSubscriptionAttributes", &subscription),
        ("sqs:CreateQueue", &sqs),
        ("sqs:TagQueue", &sqs),
        ("sqs:SetQueueAttributes", &sqs),
        ("sqs:GetQueueAttributes", &sqs),
        ("sqs:ReceiveMessage", &sqs),
        ("sqs:DeleteMessage", &sqs),
        ("sqs:DeleteQueue", &sqs),
        ("cloudtrail:CreateTrail", &ct),
        ("cloudtrail:AddTags", &ct),
        ("cloudtrail:StartLogging", &ct),
        ("cloudtrail:DeleteTrail", &ct),
    ]
    .map(|(a, r)| (a, r.clone()));
    // The event feed: the rules, the bus and the role garrison names.
    let feed = match w.owned.get(keys::FEED_BUS).and_then(|o| o.spec.clone()) {
        Some(Spec::EventBus { name }) => name,
        other => panic!("feed bus: {other:?}"),
    };
    let bus = format!("arn:aws:events:us-east-1:{acct}:event-bus/{feed}");
    let rule = format!("arn:aws:events:eu-west-1:{acct}:rule/{feed}");
    let bus_rule = format!("arn:aws:events:us-east-1:{acct}:rule/{feed}/{feed}");
    let role = format!("arn:aws:iam::{acct}:role/{feed}");
    let mut needed = needed.to_vec();
    for (a, r) in [
        ("events:CreateEventBus", &bus),
        ("events:TagResource", &bus),
        ("events:DescribeEventBus", &bus),
        ("events:DeleteEventBus", &bus),
        ("events:PutRule", &rule),
        ("events:PutTargets", &rule),
        ("events:DescribeRule", &rule),
        ("events:ListTargetsByRule", &rule),
        ("events:RemoveTargets", &rule),
        ("events:DeleteRule", &rule),
        ("events:PutRule", &bus_rule),
        ("events:PutTargets", &bus_rule),
        ("events:RemoveTargets", &bus_rule),
        ("events:DeleteRule", &bus_rule),
        ("events:TagResource", &bus_rule),
        ("iam:CreateRole", &role),
        ("iam:TagRole", &role),
        ("iam:PutRolePolicy", &role),
        ("iam:GetRole", &role),
        ("iam:PassRole", &role),
        ("iam:DeleteRolePolicy", &role),
        ("iam:DeleteRole", &role),
        ("s3:GetBucketLocation", &s3),
        // The findings backfill (ListFindings has no resource type: "*").
        ("inspector2:ListFindings", &"*".to_string()),
    ] {
        needed.push((a, r.clone()));
    }
    let missing: Vec<String> =
        needed.iter().filter(|(a, r)| !allows(&doc, a, r)).map(|(a, r)| format!("{a} on {r}")).collect();
    assert!(missing.is_empty(), "ci_full latest does not allow: {missing:#?}");
}

#[test]
fn the_coverage_picture_judges_each_vpc_and_zone() {
    let w = estate();
    let app = |vpc: &str, role: &str, zone: &str, state: &str| {
        json!({"key": format!("{vpc}/{role}/{zone}"), "role": role, "zone": zone, "state": state,
        "instance_id": format!("i-{vpc}-{role}-{zone}"), "instance_type": "c5.large", "monthly_usd": 0.0})
    };
    let views = |report: &serde_json::Value| -> Vec<crate::protect::VpcView> {
        serde_json::from_value(report.clone()).unwrap()
    };
    // vpc a (Professional, hosts in 1a and 1b) has its scanner and the IDS of 1a only;
    // vpc b (Essentials) its scanner; vpc c has nothing running.
    let mut report = json!([
        {"region": "us-east-1", "vpc_id": "vpc-0000000a", "appliances": [
            app("a", "scan", "us-east-1a", "running"), app("a", "ids", "us-east-1a", "running")]},
        {"region": "us-east-1", "vpc_id": "vpc-0000000b", "appliances": [app("b", "scan", "us-east-1a", "running")]},
    ]);
    let pic = crate::coverage::picture(&w.deployment, &w.snap, &views(&report), &w.options);
    let vpc = |p: &serde_json::Value, id: &str| {
        p["regions"][0]["vpcs"].as_array().unwrap().iter().find(|v| v["vpc_id"] == id).unwrap().clone()
    };
    let zone = |v: &serde_json::Value, z: &str| {
        v["zones"].as_array().unwrap().iter().find(|x| x["zone"] == z).unwrap()["status"].clone()
    };
    let a = vpc(&pic, "vpc-0000000a");
    assert_eq!(a["status"], "unprotected", "{a}");
    assert_eq!(a["policy"], "Professional");
    assert_eq!(zone(&a, "us-east-1a"), "protected");
    assert_eq!(zone(&a, "us-east-1b"), "unprotected", "no IDS in 1b");
    assert_eq!(a["hosts_running"], 2);
    let b = vpc(&pic, "vpc-0000000b");
    assert_eq!((b["status"].as_str(), b["policy"].as_str()), (Some("protected"), Some("Essentials")));
    assert_eq!(vpc(&pic, "vpc-0000000c")["status"], "idle");
    assert_eq!(pic["counts"], json!({"excluded": 0, "idle": 1, "protected": 1, "unprotected": 1}));
    assert_eq!(pic["regions"][0]["scope"], "included");

    // The missing IDS runs; the scanner of vpc b is stopped; vpc c is excluded.
    report[0]["appliances"].as_array_mut().unwrap().push(app("a", "ids", "us-east-1b", "running"));
    report[1]["appliances"][0]["state"] = "stopped".into();
    let mut d = w.deployment.clone();
    d.scope.exclude =
        serde_json::from_value(json!([{"type": "vpc", "key": "/aws/us-east-1/vpc/vpc-0000000c"}])).unwrap();
    let pic = crate::coverage::picture(&d, &w.snap, &views(&report), &[]);
    assert_eq!(vpc(&pic, "vpc-0000000a")["status"], "protected");
    assert_eq!(vpc(&pic, "vpc-0000000b")["status"], "unprotected", "a stopped scanner protects nothing");
    let c = vpc(&pic, "vpc-0000000c");
    assert_eq!((c["status"].as_str(), c["scope"].as_str()), (Some("excluded"), Some("excluded")));
    assert_eq!(pic["counts"], json!({"excluded": 1, "idle": 0, "protected": 1, "unprotected": 1}));
    // Before the first report nothing is protected yet.
    let none = crate::coverage::picture(&w.deployment, &w.snap, &[], &[]);
    assert_eq!(none["counts"]["unprotected"], 2);
}

/// IDS appliances of the Professional VPC (hosts in us-east-1a and us-east-1b) in `w`'s
/// current protection: their zones, and whether each runs.
fn ids_zones(w: &World) -> Vec<String> {
    let mut z: Vec<String> = w
        .owned
        .items
        .values()
        .filter_map(|o| match &o.spec {
            Some(Spec::Appliance { role: Role::Ids, vpc, zone, .. }) if vpc == "vpc-0000000a" => Some(zone.clone()),
            _ => None,
        })
        .collect();
    z.sort();
    z
}

fn placement(w: &World, value: serde_json::Value) -> garrison_model::otis::TuningOption {
    garrison_model::otis::parse(&json!({"name": "ids_appliances_placement",
        "scope": {"deployment_id": w.deployment.id, "vpc_key": "/aws/us-east-1/vpc/vpc-0000000a"}, "value": value}))
    .unwrap()
}

/// otis `ids_appliances_placement`: `max_zones` caps the zones with IDS appliances (the most
/// populated kept), `constant` puts them in the named zones whether inhabited or not and
/// removes the others; planning again is empty; the coverage picture counts the VPC
/// protected (the placed appliances watch its other zones).
#[test]
fn an_ids_placement_option_decides_the_zones_with_appliances() {
    let mut w = estate();
    let d = w.deployment.clone();
    w.converge(Some(&d));
    assert_eq!(ids_zones(&w), ["us-east-1a", "us-east-1b"], "the default: every inhabited zone");

    w.options = vec![placement(&w, json!({"policy": "automatic", "max_zones": 1}))];
    let (p, _) = w.plan(Some(&d));
    let deleted: Vec<&str> =
        p.actions.iter().filter(|a| matches!(a.op, Op::Delete { .. })).map(|a| a.key.as_str()).collect();
    assert!(deleted.contains(&"us-east-1/vpc-0000000a/us-east-1b/ids"), "{deleted:?}");
    w.converge(Some(&d));
    assert_eq!(ids_zones(&w), ["us-east-1a"], "one zone, the first of two equally populated");
    assert!(w.plan(Some(&d)).0.is_empty(), "planning again changes nothing");
    // The report's view of vpc a: its scanner and the one IDS appliance, in us-east-1a.
    let app = |role: &str| {
        json!({"key": format!("a/{role}"), "role": role, "zone": "us-east-1a", "state": "running",
            "instance_id": format!("i-a-{role}"), "instance_type": "c5.large", "monthly_usd": 0.0})
    };
    let views: Vec<crate::protect::VpcView> = serde_json::from_value(json!([
        {"region": "us-east-1", "vpc_id": "vpc-0000000a", "appliances": [app("scan"), app("ids")]}]))
    .unwrap();
    let pic = crate::coverage::picture(&w.deployment, &w.snap, &views, &w.options);
    let vpc =
        pic["regions"][0]["vpcs"].as_array().unwrap().iter().find(|v| v["vpc_id"] == "vpc-0000000a").unwrap().clone();
    assert_eq!(vpc["status"], "protected", "{vpc:#}");

    w.options = vec![placement(
        &w,
        json!({"policy": "constant", "zone_keys": ["/aws/us-east-1/zone/us-east-1b", "/aws/us-east-1/zone/us-east-1c"]}),
    )];
    w.converge(Some(&d));
    assert_eq!(ids_zones(&w), ["us-east-1b", "us-east-1c"], "the named zones, 1c without hosts included");
    let running = w
        .owned
        .items
        .values()
        .filter(|o| matches!(&o.spec, Some(Spec::Appliance { role: Role::Ids, zone, .. }) if zone == "us-east-1c"))
        .count();
    assert_eq!(running, 1);

    // The option gone: the default again.
    w.options.clear();
    w.converge(Some(&d));
    assert_eq!(
        ids_zones(&w),
        ["us-east-1a", "us-east-1b", "us-east-1c"],
        "placed ones are kept (stopped where empty), as without options"
    );
}

/// otis `scan_security_subnet_cidr_block`: the scanner's subnet is made with the operator's
/// block; a block outside the VPC or taken is a problem that names it, and nothing is built
/// in that zone; a subnet already made keeps its block.
#[test]
fn the_scanner_subnet_takes_the_operators_block() {
    let block = |w: &World, cidr: &str| {
        garrison_model::otis::parse(&json!({"name": "scan_security_subnet_cidr_block",
            "scope": {"deployment_id": w.deployment.id, "vpc_key": "/aws/us-east-1/vpc/vpc-0000000a"}, "value": cidr}))
        .unwrap()
    };
    let scanner_subnet = |w: &World| -> Option<String> {
        let zone = match &w.owned.get("us-east-1/vpc-0000000a/scanner")?.spec {
            Some(Spec::Appliance { zone, .. }) => zone.clone(),
            _ => return None,
        };
        match &w.owned.get(&format!("us-east-1/vpc-0000000a/{zone}/subnet"))?.spec {
            Some(Spec::Subnet { cidr, .. }) => Some(cidr.clone()),
            _ => None,
        }
    };
    let mut w = estate();
    let d = w.deployment.clone();
    w.options = vec![block(&w, "10.1.200.0/28")];
    w.converge(Some(&d));
    assert_eq!(scanner_subnet(&w).as_deref(), Some("10.1.200.0/28"));
    assert!(w.plan(Some(&d)).0.is_empty());
    // Another block later: the subnet made keeps its own.
    w.options = vec![block(&w, "10.1.201.0/28")];
    assert!(w.plan(Some(&d)).0.is_empty());

    // Taken (the customer's 10.1.0.0/24) or outside the VPC: said, and no scanner subnet.
    for bad in ["10.1.0.0/28", "10.9.0.0/28"] {
        let mut w = estate();
        w.options = vec![block(&w, bad)];
        let (p, _) = w.plan(Some(&d));
        assert!(
            p.problems.iter().any(|m| m.contains(bad) && m.contains("not a free block")),
            "{bad}: {:?}",
            p.problems
        );
        assert!(!p.actions.iter().any(|a| a.key == "us-east-1/vpc-0000000a/scanner"), "{bad}");
    }
}

fn option(
    w: &World,
    name: &str,
    scope: serde_json::Value,
    value: serde_json::Value,
) -> garrison_model::otis::TuningOption {
    let mut scope = scope;
    if scope.is_object() && !scope.as_object().unwrap().is_empty() {
        scope["deployment_id"] = json!(w.deployment.id);
    }
    garrison_model::otis::parse(&json!({"name": name, "scope": scope, "value": value})).unwrap()
}

const VPC_A: &str = "/aws/us-east-1/vpc/vpc-0000000a";

fn appliances(w: &World) -> BTreeMap<String, (String, String)> {
    w.owned
        .items
        .values()
        .filter_map(|o| match &o.spec {
            Some(Spec::Appliance { instance_type, .. }) => {
                let state = w.snap.regions[&o.region].instances.iter().find(|i| i.id == o.id)?.state.clone();
                Some((o.key.clone(), (instance_type.clone(), state)))
            }
            _ => None,
        })
        .collect()
}

/// otis `*_instance_type`: an appliance of another type is replaced — the new one launched
/// first, the old one terminated after it (`retired/` key, ordered after the create) — and
/// planning again is empty; a type not offered in the zone is a problem naming the option,
/// the appliance keeping its type; the test option refuses a type too small; the option
/// gone, the appliances keep the type they have (no churn back).
#[test]
fn an_instance_type_option_replaces_the_appliance_launching_first() {
    let mut w = estate();
    let d = w.deployment.clone();
    w.converge(Some(&d));
    let ids_a = "us-east-1/vpc-0000000a/us-east-1a/ids";
    let before = appliances(&w);
    assert_eq!(before[ids_a].0, "c5.xlarge", "the default: cheapest offered of the IDS size");
    let old_id = w.owned.items[ids_a].id.clone();

    w.options = vec![option(&w, "ids_appliance_instance_type", json!({"vpc_key": VPC_A}), json!("m5.xlarge"))];
    let (p, _) = w.plan(Some(&d));
    // us-east-1a offers only t3.medium and c5.xlarge: refused there, applied in 1b.
    assert!(
        p.problems.iter().any(|m| m.contains("ids_appliance_instance_type = m5.xlarge")
            && m.contains("not offered in us-east-1a")
            && m.contains("runs c5.xlarge")),
        "{:?}",
        p.problems
    );
    let ids_b = "us-east-1/vpc-0000000a/us-east-1b/ids";
    let create = p.actions.iter().find(|a| a.key == ids_b && matches!(a.op, Op::Create { .. })).expect("a new 1b IDS");
    let retire = p.actions.iter().find(|a| a.key == format!("retired/{ids_b}")).expect("the old 1b IDS retired");
    assert!(matches!(&retire.op, Op::Delete { id } if *id == w.owned.items[ids_b].id));
    assert_eq!(retire.after, vec![create.key.clone()], "terminated only after its replacement runs");
    assert!(!p.actions.iter().any(|a| a.key == ids_a && !matches!(a.op, Op::Tag { .. })), "1a untouched");
    w.converge(Some(&d));
    let now = appliances(&w);
    assert_eq!(now[ids_b], ("m5.xlarge".to_string(), "running".to_string()));
    assert_eq!(w.owned.items[ids_a].id, old_id);
    assert_eq!(
        w.snap.regions["us-east-1"].instances.iter().filter(|i| i.tags.contains_key(TAG_KEY)).count(),
        now.len(),
        "every old appliance is gone"
    );
    assert!(w.plan(Some(&d)).0.is_empty());

    // The test option overrides the listed one; too small a type is refused with its size.
    w.options.push(option(&w, "ids_appliance_instance_type_test", json!({"vpc_key": VPC_A}), json!("m3.medium")));
    w.options.push(option(&w, "scan_appliance_instance_type", json!({}), json!("t3.medium")));
    let (p, _) = w.plan(Some(&d));
    assert!(
        p.problems.iter().any(|m| m.contains("ids_appliance_instance_type_test = m3.medium not applied in us-east-1b")
            && m.contains("1 vCPU and 3.75 GiB, less than the 2 vCPU and 4 GiB")),
        "{:?}",
        p.problems
    );
    w.converge(Some(&d));
    assert_eq!(appliances(&w)["us-east-1/vpc-0000000a/scanner"].0, "t3.medium", "an account-wide scan type");

    w.options.clear();
    assert!(w.plan(Some(&d)).0.is_empty(), "without the options the types stay as they are");
}

/// otis `*_security_resource_tags`: what garrison builds carries the operator's tags (role
/// tags over the general ones, on the appliances and their groups only); a changed option
/// re-tags in place; a tag dropped from the option is taken off, one the customer added is
/// left; garrison's own tags never change.
#[test]
fn operator_tags_are_put_changed_and_taken_off_in_place() {
    let mut w = estate();
    let d = w.deployment.clone();
    w.options = vec![
        option(
            &w,
            "security_resource_tags",
            json!({}),
            json!([{"key": "Team", "value": "sec"}, {"key": "Cost", "value": "1"}]),
        ),
        option(&w, "ids_security_resource_tags", json!({"vpc_key": VPC_A}), json!([{"key": "Cost", "value": "ids"}])),
    ];
    w.converge(Some(&d));
    let tags_of_key = |w: &World, key: &str| -> Tags {
        let o = &w.owned.items[key];
        let rs = &w.snap.regions[&o.region];
        rs.instances
            .iter()
            .map(|i| (&i.id, &i.tags))
            .chain(rs.subnets.iter().map(|x| (&x.id, &x.tags)))
            .chain(rs.security_groups.iter().map(|x| (&x.id, &x.tags)))
            .find(|(id, _)| **id == o.id)
            .map(|(_, t)| t.clone())
            .unwrap()
    };
    let ids = "us-east-1/vpc-0000000a/us-east-1a/ids";
    let scanner = "us-east-1/vpc-0000000a/scanner";
    let subnet = "us-east-1/vpc-0000000a/us-east-1a/subnet";
    assert_eq!((tags_of_key(&w, ids)["Team"].as_str(), tags_of_key(&w, ids)["Cost"].as_str()), ("sec", "ids"));
    assert_eq!(tags_of_key(&w, scanner)["Cost"], "1");
    assert_eq!(tags_of_key(&w, "us-east-1/vpc-0000000a/ids_sg")["Cost"], "ids");
    assert_eq!(tags_of_key(&w, subnet)["Cost"], "1", "the subnet takes the general tags only");
    assert_eq!(tags_of_key(&w, ids)[TAG_KEY], ids, "garrison's own tags stay");
    assert!(w.plan(Some(&d)).0.is_empty());

    // The customer adds a tag of their own to our subnet; the operator drops Team and
    // changes Cost.
    let sid = w.owned.items[subnet].id.clone();
    let rs = w.snap.regions.get_mut("us-east-1").unwrap();
    rs.subnets.iter_mut().find(|s| s.id == sid).unwrap().tags.insert("Backup".into(), "no".into());
    w.options[0] = option(&w, "security_resource_tags", json!({}), json!([{"key": "Cost", "value": "2"}]));
    let (p, _) = w.plan(Some(&d));
    let on_subnet = p.actions.iter().find(|a| a.key == subnet).expect("the subnet re-tagged");
    assert_eq!(
        on_subnet.op,
        Op::Tag { id: sid.clone(), set: [("Cost".to_string(), "2".to_string())].into(), unset: vec!["Team".into()] }
    );
    assert!(p.actions.iter().all(|a| matches!(a.op, Op::Tag { .. })), "tags change in place: {:?}", p.actions);
    w.converge(Some(&d));
    let t = tags_of_key(&w, subnet);
    assert_eq!(
        (t.get("Cost").map(String::as_str), t.get("Team"), t.get("Backup").map(String::as_str)),
        (Some("2"), None, Some("no"))
    );
    assert_eq!(tags_of_key(&w, ids)["Cost"], "ids");
    assert!(w.plan(Some(&d)).0.is_empty());
}

/// otis scaling: `ids_appliances_scaling` constant 2 runs two IDS appliances per protected
/// zone (the first keeps its key), back to one removes the second; `scan_appliances_scaling`
/// constant 0 keeps the scanner stopped, constant 2 runs a second one.
#[test]
fn scaling_options_set_how_many_appliances_run() {
    let mut w = estate();
    let d = w.deployment.clone();
    w.converge(Some(&d));
    let first = w.owned.items["us-east-1/vpc-0000000a/us-east-1a/ids"].id.clone();
    w.options = vec![option(
        &w,
        "ids_appliances_scaling",
        json!({"vpc_key": VPC_A}),
        json!({"policy": "constant", "num_instances": 2}),
    )];
    w.converge(Some(&d));
    let a = appliances(&w);
    for z in ["us-east-1a", "us-east-1b"] {
        for k in ["ids", "ids-2"] {
            assert_eq!(a[&format!("us-east-1/vpc-0000000a/{z}/{k}")].1, "running", "{z} {k}");
        }
    }
    assert_eq!(w.owned.items["us-east-1/vpc-0000000a/us-east-1a/ids"].id, first, "scaling up replaces nothing");
    w.options = vec![
        option(
            &w,
            "ids_appliances_scaling",
            json!({"vpc_key": VPC_A}),
            json!({"policy": "automatic", "max_instances": 3}),
        ),
        option(&w, "scan_appliances_scaling", json!({}), json!({"policy": "constant", "num_instances": 0})),
    ];
    w.converge(Some(&d));
    let a = appliances(&w);
    assert!(!a.contains_key("us-east-1/vpc-0000000a/us-east-1a/ids-2"), "{a:?}");
    assert_eq!(a["us-east-1/vpc-0000000a/scanner"].1, "stopped");
    assert_eq!(a["us-east-1/vpc-0000000b/scanner"].1, "stopped", "account-wide");
    w.options = vec![option(
        &w,
        "scan_appliances_scaling",
        json!({"vpc_key": VPC_A}),
        json!({"policy": "constant", "num_instances": 2}),
    )];
    w.converge(Some(&d));
    let a = appliances(&w);
    assert_eq!(
        (a["us-east-1/vpc-0000000a/scanner"].1.as_str(), a["us-east-1/vpc-0000000a/scanner-2"].1.as_str()),
        ("running", "running")
    );
    assert_eq!(a["us-east-1/vpc-0000000b/scanner"].1, "running");
}

/// `n` cases, or `PROPTEST_CASES` when it is set: CI runs a bounded number, and a long hunt
/// for rare estates is `PROPTEST_CASES=20000 cargo test --workspace --lib -- plan::tests`.
fn cases(n: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(n)
}

/// A random valid option set for `w` (types, tags, scaling, placement, the subnet block).
fn random_options(w: &World, seed: u64) -> Vec<garrison_model::otis::TuningOption> {
    let mut r = Rng(seed.rotate_left(29) | 1);
    let mut out = vec![];
    let mut scopes = vec![json!({}), json!({"deployment_id": DEP})];
    for (region, rs) in &w.snap.regions {
        scopes.push(json!({"deployment_id": DEP, "region_key": format!("/aws/{region}")}));
        for v in &rs.vpcs {
            scopes.push(json!({"deployment_id": DEP, "vpc_key": format!("/aws/{region}/vpc/{}", v.id)}));
        }
    }
    let pick = |r: &mut Rng, a: &[serde_json::Value]| a[r.below(a.len() as u64) as usize].clone();
    let tags = |r: &mut Rng| json!([{"key": "Team", "value": format!("t{}", r.below(3))}, {"key": format!("K{}", r.below(3)), "value": "v"}]);
    for _ in 0..r.below(8) {
        let scope = pick(&mut r, &scopes);
        let (name, value) = match r.below(9) {
            0 => (
                "ids_appliance_instance_type",
                pick(&mut r, &[json!("m5.xlarge"), json!("c5.xlarge"), json!("t3.medium")]),
            ),
            1 => ("scan_appliance_instance_type", pick(&mut r, &[json!("m3.medium"), json!("t3.medium")])),
            2 => ("security_resource_tags", tags(&mut r)),
            3 => ("ids_security_resource_tags", tags(&mut r)),
            4 => ("scan_appliances_scaling", json!({"policy": "constant", "num_instances": r.below(3)})),
            5 => ("ids_appliances_scaling", json!({"policy": "constant", "num_instances": 1 + r.below(2)})),
            6 => ("ids_appliances_placement", json!({"policy": "automatic", "max_zones": 1 + r.below(2)})),
            7 => ("span_port_enabled", json!(r.chance(70))),
            _ => ("ids_appliance_instance_type_test", pick(&mut r, &[json!("t3a.medium"), json!("m5.xlarge")])),
        };
        if name == "ids_appliances_placement" && scope.get("deployment_id").is_none() {
            continue;
        }
        if let Ok(o) = garrison_model::otis::parse(&json!({"name": name, "scope": scope, "value": value})) {
            out.retain(|x: &garrison_model::otis::TuningOption| x.id != o.id);
            out.push(o);
        }
    }
    // Hubs and spokes: any VPC protected by any other (connected or not, any region).
    let vpcs: Vec<(String, String)> =
        w.snap.regions.iter().flat_map(|(r, rs)| rs.vpcs.iter().map(move |v| (r.clone(), v.id.clone()))).collect();
    for (region, spoke) in &vpcs {
        if r.chance(30) && !vpcs.is_empty() {
            let (hr, hub) = &vpcs[r.below(vpcs.len() as u64) as usize];
            let o = json!({"name": "cross_network_protection",
                "scope": {"deployment_id": DEP, "vpc_key": format!("/aws/{region}/vpc/{spoke}")},
                "value": {"deployment_id": DEP, "vpc_key": format!("/aws/{hr}/vpc/{hub}")}});
            if let Ok(o) = garrison_model::otis::parse(&o) {
                out.retain(|x: &garrison_model::otis::TuningOption| x.id != o.id);
                out.push(o);
            }
        }
    }
    // The customer's subnet for one VPC's appliances, now and then.
    for (region, rs) in &w.snap.regions {
        for s in rs.subnets.iter().filter(|s| !s.tags.contains_key(TAG_KEY)).filter(|_| r.chance(20)) {
            let o = json!({"name": "predefined_security_subnet",
                "scope": {"deployment_id": DEP, "vpc_key": format!("/aws/{region}/vpc/{}", s.vpc_id)},
                "value": format!("/aws/{region}/subnet/{}", s.id)});
            let o = garrison_model::otis::parse(&o).unwrap();
            out.retain(|x: &garrison_model::otis::TuningOption| x.id != o.id);
            out.push(o);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(150), ..ProptestConfig::default() })]

    /// Any valid option set, and any change of it: one plan applied converges (planning again
    /// is empty), no action touches what garrison does not own, and removal leaves the
    /// customer's estate as it was.
    #[test]
    fn any_option_set_converges_and_touches_only_what_is_owned(seed in any::<u64>()) {
        let mut w = random_world(seed);
        let d = w.deployment.clone();
        // Some VPCs of a region peered, some attached to one transit gateway.
        let mut r = Rng(seed.rotate_left(41) | 1);
        for rs in w.snap.regions.values_mut() {
            let ids: Vec<String> = rs.vpcs.iter().map(|v| v.id.clone()).collect();
            for (i, a) in ids.iter().enumerate() {
                for b in &ids[i + 1..] {
                    if r.chance(40) {
                        rs.connections.push(Connection { id: format!("pcx-{a}{b}"), kind: "peering".into(), via: None, vpcs: vec![a.clone(), b.clone()] });
                    }
                }
                if r.chance(40) {
                    rs.connections.push(Connection { id: format!("tgw-attach-{a}"), kind: "transit_gateway".into(), via: Some("tgw-1".into()), vpcs: vec![a.clone()] });
                }
            }
        }
        w.options = random_options(&w, seed);
        prop_assert!(w.converge(Some(&d)) <= 2, "one plan applied converges: {:?}", w.options);
        w.options = random_options(&w, seed.wrapping_mul(31).wrapping_add(7));
        prop_assert!(w.converge(Some(&d)) <= 2, "after the options change too: {:?}", w.options);
        let before_customer = serde_json::to_string(&w.snap.customer_view()).unwrap();
        prop_assert!(w.converge(None) <= 2);
        prop_assert!(w.owned.items.is_empty());
        prop_assert_eq!(serde_json::to_string(&w.snap.customer_view()).unwrap(), before_customer);
    }
}

/// otis `predefined_security_subnet`: the appliances of the subnet's zone go in the
/// customer's subnet, adopted and never changed (no route table, ACL or tags of garrison's
/// there); other zones get garrison's own; a subnet the VPC does not have is a problem and
/// nothing is placed. The option gone, those appliances move to a subnet of garrison's
/// (replaced, launched first) and the customer's subnet is only forgotten.
#[test]
fn a_predefined_subnet_takes_the_appliances_of_its_zone_and_is_never_changed() {
    let mut w = estate();
    let d = w.deployment.clone();
    w.options = vec![option(
        &w,
        "predefined_security_subnet",
        json!({"vpc_key": VPC_A}),
        json!("/aws/us-east-1/subnet/subnet-000000a1"),
    )];
    let customer_before = w.snap.regions["us-east-1"].subnets.iter().find(|s| s.id == "subnet-000000a1").cloned();
    let (p, _) = w.plan(Some(&d));
    assert!(
        p.actions.iter().any(|a| a.key == "us-east-1/vpc-0000000a/us-east-1a/predefined_subnet"
            && a.op == Op::Adopt { id: "subnet-000000a1".into() }),
        "{:?}",
        p.actions
    );
    for k in ["subnet", "route_table", "nacl"] {
        assert!(!p.actions.iter().any(|a| a.key == format!("us-east-1/vpc-0000000a/us-east-1a/{k}")), "no {k} in 1a");
    }
    assert!(p.actions.iter().any(|a| a.key == "us-east-1/vpc-0000000a/us-east-1b/subnet"), "1b gets garrison's");
    w.converge(Some(&d));
    let subnet_of = |w: &World, key: &str| match &w.owned.items[key].spec {
        Some(Spec::Appliance { subnet, zone, .. }) => (zone.clone(), w.owned.items[subnet].id.clone()),
        _ => panic!("{key}"),
    };
    assert_eq!(subnet_of(&w, "us-east-1/vpc-0000000a/scanner"), ("us-east-1a".into(), "subnet-000000a1".into()));
    assert_eq!(subnet_of(&w, "us-east-1/vpc-0000000a/us-east-1a/ids").1, "subnet-000000a1");
    assert_ne!(subnet_of(&w, "us-east-1/vpc-0000000a/us-east-1b/ids").1, "subnet-000000a1");
    assert_eq!(
        w.snap.regions["us-east-1"].subnets.iter().find(|s| s.id == "subnet-000000a1").cloned(),
        customer_before,
        "the customer's subnet is as it was"
    );
    assert!(w.plan(Some(&d)).0.is_empty());

    // A subnet of another VPC (or gone): said, and nothing placed in the VPC.
    let mut bad = estate();
    bad.options = vec![option(
        &bad,
        "predefined_security_subnet",
        json!({"vpc_key": VPC_A}),
        json!("/aws/us-east-1/subnet/subnet-0000ffff"),
    )];
    let (p, _) = bad.plan(Some(&d));
    assert!(
        p.problems.iter().any(|m| m.contains("subnet-0000ffff") && m.contains("not a subnet of the VPC")),
        "{:?}",
        p.problems
    );
    assert!(!p.actions.iter().any(|a| a.key.starts_with("us-east-1/vpc-0000000a/") && a.kind == ResKind::Appliance));

    // The option gone: the appliances move to garrison's subnet, the customer's is forgotten.
    let scanner_before = w.owned.items["us-east-1/vpc-0000000a/scanner"].id.clone();
    w.options.clear();
    let (p, _) = w.plan(Some(&d));
    assert!(p.actions.iter().any(|a| a.key == "retired/us-east-1/vpc-0000000a/scanner"), "{:?}", p.actions);
    assert!(p.actions.iter().any(|a| a.key.ends_with("1a/predefined_subnet") && matches!(a.op, Op::Forget { .. })));
    w.converge(Some(&d));
    assert_ne!(w.owned.items["us-east-1/vpc-0000000a/scanner"].id, scanner_before);
    assert_ne!(subnet_of(&w, "us-east-1/vpc-0000000a/scanner").1, "subnet-000000a1");
    assert!(w.snap.regions["us-east-1"].subnets.iter().any(|s| s.id == "subnet-000000a1"), "never removed");
}

/// otis `cross_network_protection`: a spoke peered with (or attached to one transit gateway
/// as) its hub gets no appliances; the hub's groups and ACL let the spoke's CIDR in (the
/// ACL replaced launch-first when its peers change); planning again is empty; a spoke that
/// is not connected keeps its own appliances and the problem says why; the coverage picture
/// counts the spoke protected by the hub's appliances.
#[test]
fn a_hub_protects_its_connected_spokes() {
    let mut w = estate();
    let d = w.deployment.clone();
    let spoke = |w: &World| {
        option(
            w,
            "cross_network_protection",
            json!({"vpc_key": "/aws/us-east-1/vpc/vpc-0000000b"}),
            json!({"deployment_id": DEP, "vpc_key": VPC_A}),
        )
    };
    let rs = w.snap.regions.get_mut("us-east-1").unwrap();
    rs.connections.push(Connection {
        id: "pcx-0000000a".into(),
        kind: "peering".into(),
        via: None,
        vpcs: vec!["vpc-0000000a".into(), "vpc-0000000b".into()],
    });
    w.options = vec![spoke(&w)];
    w.converge(Some(&d));
    let keys: Vec<&String> = w.owned.items.keys().collect();
    assert!(!keys.iter().any(|k| k.starts_with("us-east-1/vpc-0000000b/") && !k.ends_with("flow_logs")), "{keys:?}");
    let sg = |w: &World, k: &str| match &w.owned.items[k].spec {
        Some(Spec::SecurityGroup { ingress, egress, .. }) => (ingress.clone(), egress.clone()),
        _ => panic!("{k}"),
    };
    let (_, scan_out) = sg(&w, "us-east-1/vpc-0000000a/scan_sg");
    assert!(scan_out.iter().any(|p| p.cidr == "10.2.0.0/16"), "the scanner reaches the spoke: {scan_out:?}");
    let (ids_in, _) = sg(&w, "us-east-1/vpc-0000000a/ids_sg");
    assert!(ids_in.iter().any(|p| p.cidr == "10.2.0.0/16"), "the spoke reaches the IDS: {ids_in:?}");
    match &w.owned.items["us-east-1/vpc-0000000a/us-east-1a/nacl"].spec {
        Some(Spec::NetworkAcl { peers, .. }) => assert_eq!(peers, &["10.2.0.0/16".to_string()]),
        other => panic!("{other:?}"),
    }
    assert!(w.plan(Some(&d)).0.is_empty());
    // The coverage picture: vpc b protected by a's running scanner.
    let app = |role: &str| {
        json!({"key": format!("a/{role}"), "role": role, "zone": "us-east-1a", "state": "running",
            "instance_id": format!("i-a-{role}"), "instance_type": "c5.large", "monthly_usd": 0.0})
    };
    let views: Vec<crate::protect::VpcView> = serde_json::from_value(json!([
        {"region": "us-east-1", "vpc_id": "vpc-0000000a", "appliances": [app("scan"), app("ids")]}]))
    .unwrap();
    let pic = crate::coverage::picture(&w.deployment, &w.snap, &views, &w.options);
    let b =
        pic["regions"][0]["vpcs"].as_array().unwrap().iter().find(|v| v["vpc_id"] == "vpc-0000000b").unwrap().clone();
    assert_eq!((b["status"].as_str(), b["protected_by"].as_str()), (Some("protected"), Some("vpc-0000000a")), "{b:#}");

    // Over a transit gateway instead of the peering: the same.
    let rs = w.snap.regions.get_mut("us-east-1").unwrap();
    rs.connections = ["vpc-0000000a", "vpc-0000000b"]
        .iter()
        .map(|v| Connection {
            id: format!("tgw-attach-{v}"),
            kind: "transit_gateway".into(),
            via: Some("tgw-1".into()),
            vpcs: vec![v.to_string()],
        })
        .collect();
    assert!(w.plan(Some(&d)).0.is_empty(), "still connected");

    // Not connected: the spoke keeps appliances of its own, and the problem says why.
    w.snap.regions.get_mut("us-east-1").unwrap().connections.clear();
    let (p, _) = w.plan(Some(&d));
    assert!(
        p.problems.iter().any(|m| m.contains("vpc-0000000b") && m.contains("neither peered nor attached")),
        "{:?}",
        p.problems
    );
    assert!(p.actions.iter().any(|a| a.key == "us-east-1/vpc-0000000b/scanner"));
    // Its own again: the hub's ACL is replaced without the peer, created before the old goes.
    w.converge(Some(&d));
    let (p, _) = {
        w.options.clear();
        w.plan(Some(&d))
    };
    assert!(
        p.actions.iter().all(|a| !a.key.starts_with("retired/") || a.kind == ResKind::NetworkAcl),
        "{:?}",
        p.actions
    );
    w.converge(Some(&d));
    match &w.owned.items["us-east-1/vpc-0000000a/us-east-1a/nacl"].spec {
        Some(Spec::NetworkAcl { peers, .. }) => assert!(peers.is_empty()),
        other => panic!("{other:?}"),
    }
    assert!(w.owned.items.contains_key("us-east-1/vpc-0000000b/scanner"));
}

/// Scan windows: with the default schedule given windows, scanners run inside them and are
/// stopped outside (IDS appliances run regardless); a scan expedited for a VPC runs its
/// scanner outside the windows; a stop shuts it inside one; a schedule reaching only one VPC
/// (the default disabled) leaves the other's scanner stopped.
#[test]
fn scanners_run_inside_their_windows_only() {
    use garrison_model::schedule::{ScanControl, default_schedule};
    let ms = |s: &str| garrison_model::schedule::parse_ms(s).unwrap();
    let scanner_state = |w: &World, vpc: &str| appliances(w)[&format!("us-east-1/{vpc}/scanner")].1.clone();
    let mut w = estate();
    let d = w.deployment.clone();
    let mut nightly = default_schedule(DEP, Some("daily"));
    nightly.scan_windows = Some(vec![
        json!({"type": "days_of_week", "start_time": "22:00", "end_time": "02:00", "days_of_week": [1, 2, 3, 4, 5, 6, 7]}),
    ]);
    w.scans = super::scans::Scans {
        now_ms: ms("2027-01-04T23:00:00Z"),
        schedules: vec![nightly.clone()],
        ..Default::default()
    };
    w.converge(Some(&d));
    assert_eq!(scanner_state(&w, "vpc-0000000a"), "running");
    w.scans.now_ms = ms("2027-01-05T12:00:00Z");
    let (p, _) = w.plan(Some(&d));
    let stops: Vec<&str> =
        p.actions.iter().filter(|a| matches!(a.op, Op::Stop { .. })).map(|a| a.key.as_str()).collect();
    assert_eq!(stops, ["us-east-1/vpc-0000000a/scanner", "us-east-1/vpc-0000000b/scanner"], "only the scanners stop");
    w.converge(Some(&d));
    assert_eq!(scanner_state(&w, "vpc-0000000a"), "stopped");
    assert_eq!(appliances(&w)["us-east-1/vpc-0000000a/us-east-1a/ids"].1, "running");
    // Expedited for VPC a: its scanner runs now, b's stays stopped.
    w.scans.controls = vec![ScanControl {
        key: VPC_A.into(),
        asset_type: "vpc".into(),
        expedite_until: Some(w.scans.now_ms + 3_600_000),
        stopped_at: None,
    }];
    w.converge(Some(&d));
    assert_eq!(
        (scanner_state(&w, "vpc-0000000a"), scanner_state(&w, "vpc-0000000b")),
        ("running".into(), "stopped".into())
    );
    // Back in the window at night, but a stopped: a's scanner stays off until the next one.
    w.scans.now_ms = ms("2027-01-05T23:00:00Z");
    w.scans.controls = vec![ScanControl {
        key: VPC_A.into(),
        asset_type: "vpc".into(),
        expedite_until: None,
        stopped_at: Some(ms("2027-01-05T22:30:00Z")),
    }];
    w.converge(Some(&d));
    assert_eq!(
        (scanner_state(&w, "vpc-0000000a"), scanner_state(&w, "vpc-0000000b")),
        ("stopped".into(), "running".into())
    );
    w.scans.now_ms = ms("2027-01-06T22:30:00Z");
    w.converge(Some(&d));
    assert_eq!(scanner_state(&w, "vpc-0000000a"), "running", "the next window runs again");
    // Only a schedule for VPC b, the default disabled: a's scanner is stopped.
    let mut only_b = nightly.clone();
    only_b.id = "B".into();
    only_b.default = false;
    only_b.scan_windows = None;
    only_b.scan_scope =
        json!({"include": [{"type": "asset", "asset_type": "vpc", "key": "/aws/us-east-1/vpc/vpc-0000000b"}]});
    w.scans = super::scans::Scans {
        now_ms: ms("2027-01-06T12:00:00Z"),
        schedules: vec![Schedule { enabled: false, ..nightly }, only_b],
        ..Default::default()
    };
    w.converge(Some(&d));
    assert_eq!(
        (scanner_state(&w, "vpc-0000000a"), scanner_state(&w, "vpc-0000000b")),
        ("stopped".into(), "running".into())
    );
    assert!(w.plan(Some(&d)).0.is_empty());
}

/// The next scan window edge within the horizon: a window's opening or closing, or an
/// expedite running out, whichever comes first; none when nothing changes in it.
#[test]
fn the_next_window_edge_is_found_within_the_horizon() {
    use garrison_model::schedule::{ScanControl, default_schedule};
    let ms = |s: &str| garrison_model::schedule::parse_ms(s).unwrap();
    let mut nightly = default_schedule(DEP, None);
    nightly.scan_windows = Some(vec![
        json!({"type": "days_of_week", "start_time": "22:00", "end_time": "02:00", "days_of_week": [1, 2, 3, 4, 5, 6, 7]}),
    ]);
    let at = |now: &str, controls: Vec<ScanControl>| super::scans::Scans {
        now_ms: ms(now),
        schedules: vec![nightly.clone()],
        controls,
        ..Default::default()
    };
    assert_eq!(at("2027-01-04T21:30:20Z", vec![]).next_edge(3_600_000), Some(ms("2027-01-04T22:00:00Z")), "it opens");
    assert_eq!(at("2027-01-05T01:59:00Z", vec![]).next_edge(3_600_000), Some(ms("2027-01-05T02:00:00Z")), "it closes");
    assert_eq!(at("2027-01-05T12:00:00Z", vec![]).next_edge(3_600_000), None, "nothing within the hour");
    let expedite = ScanControl {
        key: VPC_A.into(),
        asset_type: "vpc".into(),
        expedite_until: Some(ms("2027-01-05T12:10:00Z")),
        stopped_at: None,
    };
    assert_eq!(at("2027-01-05T12:00:00Z", vec![expedite]).next_edge(3_600_000), Some(ms("2027-01-05T12:10:00Z")));
}

/// The health watch's replacements: a silent appliance is replaced launch-first and its
/// predecessor kept running (retired, held) until the replacement registers; a replacement
/// that stays silent is replaced in turn and retired at once, the original still held; once
/// nothing is held the original goes. Nothing else is touched on the way.
#[test]
fn a_silent_appliance_is_replaced_and_its_predecessor_kept_until_the_replacement_registers() {
    let mut w = estate();
    let d = w.deployment.clone();
    w.converge(Some(&d));
    let key = "us-east-1/vpc-0000000a/us-east-1a/ids";
    let retired = format!("retired/{key}");
    let original = w.owned.items[key].id.clone();
    let running = |w: &World| -> std::collections::BTreeSet<String> {
        w.snap.regions["us-east-1"]
            .instances
            .iter()
            .filter(|i| i.tags.get(TAG_KEY).is_some_and(|k| k == key) && i.state == "running")
            .map(|i| i.id.clone())
            .collect()
    };
    w.replacing.replace.insert(key.into(), original.clone());
    w.replacing.hold.insert(key.into());
    let (p, _) = w.plan(Some(&d));
    assert_eq!(p.actions.len(), 1, "only the replacement's launch: {:?}", p.actions);
    assert!(
        matches!(&p.actions[0].op, Op::Create { retire: Some(r), .. } if *r == retired) && p.actions[0].key == key,
        "{:?}",
        p.actions
    );
    w.converge(Some(&d));
    let first = w.owned.items[key].id.clone();
    assert_ne!(first, original);
    assert_eq!(w.owned.items[&retired].id, original, "the silent one is kept, retired");
    assert_eq!(running(&w), std::collections::BTreeSet::from([original.clone(), first.clone()]), "both run meanwhile");

    // The replacement never registered: replaced in turn, and it alone goes.
    w.replacing.replace.insert(key.into(), first.clone());
    let (p, _) = w.plan(Some(&d));
    let failed = format!("{retired}#{first}");
    assert_eq!(p.actions.len(), 2, "{:?}", p.actions);
    let delete = p.actions.iter().find(|a| a.key == failed).expect("the failed replacement retired under its own key");
    assert!(matches!(&delete.op, Op::Delete { id } if *id == first));
    assert_eq!(delete.after, vec![key.to_string()], "after its own replacement runs");
    w.converge(Some(&d));
    let second = w.owned.items[key].id.clone();
    assert_eq!(running(&w), std::collections::BTreeSet::from([original.clone(), second.clone()]));
    assert_eq!(w.owned.items[&retired].id, original);

    // The second replacement registered: the watch holds nothing any more; the original goes.
    w.replacing = Default::default();
    let (p, _) = w.plan(Some(&d));
    assert_eq!(p.actions.len(), 1, "{:?}", p.actions);
    assert!(p.actions[0].key == retired && matches!(&p.actions[0].op, Op::Delete { id } if *id == original));
    w.converge(Some(&d));
    assert_eq!(running(&w), std::collections::BTreeSet::from([second]));
    assert!(!w.owned.items.contains_key(&retired));
    // Given up: nothing to replace, the retired one held — the plan stays empty (no churn).
    w.replacing.hold.insert(key.into());
    assert!(w.plan(Some(&d)).0.is_empty());
}

fn sessions(w: &World) -> BTreeMap<String, (String, String, i32)> {
    w.snap.regions["us-east-1"]
        .mirror_sessions
        .iter()
        .filter(|m| m.tags.contains_key(TAG_KEY))
        .map(|m| (m.interface.clone(), (m.target.clone(), m.filter.clone(), m.number)))
        .collect()
}

/// otis `span_port_enabled`: each running IDS appliance gets a mirror filter (a rule each
/// way) and a target at its primary interface; every interface of every instance under an
/// `ids` policy gets one session, to an appliance of its zone, numbered after the customer's
/// own sessions there; an interface that has the most sessions AWS allows is a problem and
/// left alone; the IDS group lets VXLAN in from the VPC. A replaced appliance takes its
/// target with it in the same plan (the new target created after the new appliance, the
/// sessions moved in place, the old target removed after them, never while in use). A
/// filter that lost a rule is mended in place. The option off, the mirroring goes, sessions
/// before the targets and filters they use, the customer's sessions untouched.
#[test]
fn span_port_mirrors_every_protected_interface_and_follows_a_replaced_appliance() {
    let mut w = estate();
    let d = w.deployment.clone();
    {
        let rs = w.snap.regions.get_mut("us-east-1").unwrap();
        // The customer mirrors i-000000a1 already; eni-000000a2 is full.
        rs.mirror_sessions.push(MirrorSession {
            id: "tms-customer".into(),
            interface: "eni-000000a1".into(),
            target: "tmt-customer".into(),
            filter: "tmf-customer".into(),
            number: 32766,
            tags: Tags::new(),
        });
        let a2 = rs.instances.iter_mut().find(|i| i.id == "i-000000a2").unwrap();
        a2.interfaces.push("eni-000000a9".into());
        for n in 1..=3 {
            rs.mirror_sessions.push(MirrorSession {
                id: format!("tms-full{n}"),
                interface: "eni-000000a9".into(),
                target: "tmt-customer".into(),
                filter: "tmf-customer".into(),
                number: n,
                tags: Tags::new(),
            });
        }
    }
    w.options = vec![option(&w, "span_port_enabled", json!({"vpc_key": VPC_A}), json!(true))];
    assert_eq!(w.converge(Some(&d)), 2, "one plan applied converges");
    let (ids_a, ids_b) = ("us-east-1/vpc-0000000a/us-east-1a/ids", "us-east-1/vpc-0000000a/us-east-1b/ids");
    let target = |w: &World, ids: &str| w.owned.items[&format!("{ids}/mirror_target")].id.clone();
    let filter = |w: &World, ids: &str| w.owned.items[&format!("{ids}/mirror_filter")].id.clone();
    let rs = &w.snap.regions["us-east-1"];
    let eni_of = |w: &World, ids: &str| format!("eni-{}", w.owned.items[ids].id);
    for ids in [ids_a, ids_b] {
        let t = rs.mirror_targets.iter().find(|t| t.id == target(&w, ids)).unwrap();
        assert_eq!(t.interface, Some(eni_of(&w, ids)), "the target is the appliance's interface");
        let f = rs.mirror_filters.iter().find(|f| f.id == filter(&w, ids)).unwrap();
        assert_eq!((f.ingress_rules, f.egress_rules), (1, 1));
    }
    let s = sessions(&w);
    assert_eq!(
        s.keys().collect::<Vec<_>>(),
        ["eni-000000a1", "eni-000000a2"],
        "every protected interface but the full one; nothing in the Essentials VPC"
    );
    assert_eq!(s["eni-000000a1"], (target(&w, ids_a), filter(&w, ids_a), 32765), "after the customer's 32766");
    assert_eq!(s["eni-000000a2"], (target(&w, ids_b), filter(&w, ids_b), 32766), "to its zone's appliance");
    let (p, _) = w.plan(Some(&d));
    assert!(
        p.problems.iter().any(|m| m.contains("eni-000000a9") && m.contains("the most AWS allows")),
        "{:?}",
        p.problems
    );
    let group = w.owned.items["us-east-1/vpc-0000000a/ids_sg"].spec.clone();
    assert!(
        matches!(&group, Some(Spec::SecurityGroup { ingress, .. })
            if ingress.contains(&Perm::new("udp", VXLAN_PORT, VXLAN_PORT, "10.1.0.0/16"))),
        "{group:?}"
    );

    // The 1a appliance replaced (another type): its target follows in the same plan.
    w.snap
        .regions
        .get_mut("us-east-1")
        .unwrap()
        .offerings
        .push(Offering { zone: "us-east-1a".into(), instance_type: "m5.xlarge".into() });
    w.options.push(option(&w, "ids_appliance_instance_type", json!({"vpc_key": VPC_A}), json!("m5.xlarge")));
    let old_target = target(&w, ids_a);
    let (p, _) = w.plan(Some(&d));
    let t_key = format!("{ids_a}/mirror_target");
    let find = |key: &str, verb: &str| {
        p.actions.iter().find(|a| a.key == key && a.op.verb() == verb).unwrap_or_else(|| panic!("{verb} {key}: {p:#?}"))
    };
    assert!(find(&t_key, "create").after.contains(&ids_a.to_string()), "after the new appliance");
    let moved = find("us-east-1/vpc-0000000a/mirror/eni-000000a1", "modify");
    assert!(moved.after.contains(&t_key), "the session moves once the new target exists");
    let retired = find(&format!("retired/{t_key}"), "delete");
    assert!(matches!(&retired.op, Op::Delete { id } if *id == old_target));
    assert!(retired.after.contains(&"us-east-1/vpc-0000000a/mirror/eni-000000a1".to_string()), "{retired:?}");
    w.apply(&p);
    assert_eq!(w.converge(Some(&d)), 1, "converged in that one plan");
    assert_ne!(target(&w, ids_a), old_target);
    assert_eq!(sessions(&w)["eni-000000a1"].0, target(&w, ids_a));
    let t = w.snap.regions["us-east-1"].mirror_targets.iter().find(|t| t.id == target(&w, ids_a)).cloned().unwrap();
    assert_eq!(t.interface, Some(eni_of(&w, ids_a)));

    // A filter that lost its egress rule is given it back in place.
    let f = filter(&w, ids_b);
    w.snap.regions.get_mut("us-east-1").unwrap().mirror_filters.iter_mut().find(|x| x.id == f).unwrap().egress_rules =
        0;
    let (p, _) = w.plan(Some(&d));
    assert_eq!(p.actions.len(), 1, "{p:#?}");
    assert!(matches!(&p.actions[0].op, Op::Modify { id, .. } if *id == f));
    w.apply(&p);

    // Off: the mirroring goes; the customer's sessions stay.
    w.options.retain(|o| o.name != "span_port_enabled");
    let (p, _) = w.plan(Some(&d));
    let dels: Vec<&Action> = p.actions.iter().filter(|a| matches!(a.op, Op::Delete { .. })).collect();
    assert_eq!(dels.len(), 2 + 2 + 2, "two sessions, two targets, two filters: {dels:#?}");
    for a in dels.iter().filter(|a| a.kind != ResKind::MirrorSession) {
        assert_eq!(a.after.iter().filter(|k| k.contains("/mirror/")).count(), 2, "{a:?}");
    }
    w.converge(Some(&d));
    let rs = &w.snap.regions["us-east-1"];
    assert!(sessions(&w).is_empty() && rs.mirror_targets.is_empty() && rs.mirror_filters.is_empty());
    assert_eq!(rs.mirror_sessions.len(), 4, "the customer's four sessions");
}

/// A network-interface target takes 10 sources (AWS's limit): a zone's interfaces beyond
/// that go to the VPC's other appliances, and beyond all of them are named in the problems
/// with the remedy; more appliances per zone take them all, without moving what runs.
#[test]
fn mirror_targets_take_at_most_ten_sources_each() {
    let mut w = estate();
    let d = w.deployment.clone();
    {
        let rs = w.snap.regions.get_mut("us-east-1").unwrap();
        let template = rs.instances.iter().find(|i| i.id == "i-000000a1").unwrap().clone();
        for n in 0..20 {
            let id = format!("i-0000a1{n:02}");
            rs.instances.push(Instance { interfaces: vec![format!("eni-{}", &id[2..])], id, ..template.clone() });
        }
    }
    w.options = vec![option(&w, "span_port_enabled", json!({"vpc_key": VPC_A}), json!(true))];
    w.converge(Some(&d));
    let per_target = |w: &World| {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for (t, _, _) in sessions(w).values() {
            *m.entry(t.clone()).or_default() += 1;
        }
        m
    };
    assert_eq!(per_target(&w).values().copied().collect::<Vec<_>>(), [10, 10], "two appliances, full");
    let (p, _) = w.plan(Some(&d));
    let unmirrored: Vec<&String> = p.problems.iter().filter(|m| m.contains("ids_appliances_scaling")).collect();
    assert_eq!(unmirrored.len(), 2, "22 interfaces, room for 20: {:?}", p.problems);
    let before = sessions(&w);

    w.options.push(option(
        &w,
        "ids_appliances_scaling",
        json!({"vpc_key": VPC_A}),
        json!({"policy": "constant", "num_instances": 2}),
    ));
    w.converge(Some(&d));
    assert_eq!(sessions(&w).len(), 22, "every interface mirrored");
    assert!(per_target(&w).values().all(|n| *n <= 10), "{:?}", per_target(&w));
    for (eni, s) in &before {
        assert_eq!(&sessions(&w)[eni], s, "{eni}: kept where it was");
    }
}

/// A VPC with no free /28 for garrison's subnet: said, and nothing of the network is built
/// or adopted for it — not the customer's gateway either, which would route nothing and be
/// forgotten a plan later (found by `any_option_set_converges…`, seed 8034834687498168292:
/// a scanner moved out of a customer's subnet into a full VPC took three plans).
#[test]
fn a_vpc_without_room_for_a_subnet_adopts_no_gateway() {
    let mut w = estate();
    let d = w.deployment.clone();
    let rs = w.snap.regions.get_mut("us-east-1").unwrap();
    rs.subnets.iter_mut().find(|s| s.id == "subnet-000000a1").unwrap().cidr = "10.1.0.0/16".into();
    rs.internet_gateways.push(InternetGateway {
        id: "igw-customer".into(),
        vpc_ids: vec!["vpc-0000000a".into()],
        tags: Tags::new(),
    });
    let (p, _) = w.plan(Some(&d));
    assert!(
        p.problems.iter().any(|m| m.contains("vpc-0000000a: no free /28 for a security subnet")),
        "{:?}",
        p.problems
    );
    assert!(
        !p.actions.iter().any(|a| a.key.starts_with("us-east-1/vpc-0000000a/")
            && !a.key.ends_with("/flow_logs")
            && !matches!(a.op, Op::Delete { .. } | Op::Forget { .. })),
        "nothing built or adopted in the full VPC: {:#?}",
        p.actions.iter().filter(|a| a.key.starts_with("us-east-1/vpc-0000000a/")).collect::<Vec<_>>()
    );
    assert_eq!(w.converge(Some(&d)), 2, "one plan applied converges");

    // The customer's subnet given for the scanner's zone, then taken back: the scanner
    // leaves it, there is no room for one of garrison's, and one plan settles it.
    w.options = vec![option(
        &w,
        "predefined_security_subnet",
        json!({"vpc_key": VPC_A}),
        json!("/aws/us-east-1/subnet/subnet-000000a1"),
    )];
    assert_eq!(w.converge(Some(&d)), 2);
    assert!(w.owned.items.contains_key("us-east-1/vpc-0000000a/scanner"));
    w.options.clear();
    assert_eq!(w.converge(Some(&d)), 2, "the scanner's leaving takes one plan");
    assert!(!w.owned.items.keys().any(|k| k.starts_with("us-east-1/vpc-0000000a/") && k.ends_with("igw")));
}
