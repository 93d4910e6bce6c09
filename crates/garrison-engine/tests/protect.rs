//! Protection on the emulator: an estate with the customer's own trail, detector and
//! recorder, a mixed Professional/Essentials scope with exclusions. Checks what gets
//! built (appliances per VPC and zone, exact group rules), that the customer's singletons
//! are adopted and not duplicated, that a second reconcile writes nothing, that scanners
//! follow their VPC's hosts, and that removal leaves the account as it was.

use std::collections::BTreeMap;
use std::sync::Arc;

use garrison_catalog::policies::{ESSENTIALS, PROFESSIONAL};

use garrison_cloud::emulator::Moto;
use garrison_cloud::estate::{self, EstateSpec};
use garrison_cloud::{Aws, Sessions};
use garrison_engine::Engine;
use garrison_engine::protect::{reconcile, uninstall};
use garrison_model::deployment::{Deployment, StatusKind};
use garrison_model::protection::{Perm, TAG_DEPLOYMENT, TAG_KEY};
use garrison_model::snapshot::{Snapshot, Tags};
use serde_json::{Value, json};

mod common;
use common::{GARRISON, store};

fn tagged(tags: &Tags, dep: &str) -> bool {
    tags.get(TAG_DEPLOYMENT).is_some_and(|d| d == dep)
}

/// The first differing field of two customer views, for a readable failure.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                let (l, r) = (x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null));
                if let Some(d) = first_difference(l, r, &format!("{path}.{k}")) {
                    return Some(d);
                }
            }
            None
        }
        _ if a != b => Some(format!("{path}: {a} != {b}")),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protection_adopts_builds_converges_follows_hosts_and_uninstalls_cleanly() {
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    let sessions = Arc::new(Sessions::new(aws.clone()));
    let spec = EstateSpec { containers: false, ..EstateSpec::s() };
    let est = estate::build(&sessions, &spec).await.unwrap();
    let t = garrison_testkit::tenants::tenant(&aws, "full").await.unwrap();
    let (store, root_account, cred_id) = (t.store.clone(), t.account.clone(), t.credential.clone());
    // us-east-1 Professional, us-west-2 Essentials with one subnet and one host excluded.
    let west: Vec<_> = est.vpcs().filter(|v| v.region == "us-west-2" && !v.instances.is_empty()).collect();
    let excluded_subnet = west[0].subnets[0].0.clone();
    let excluded_host = west[0].instances.iter().find(|i| i.subnet != excluded_subnet).unwrap().id.clone();
    let body = json!({"name": "s", "platform": {"type": "aws", "id": GARRISON, "monitor": {"enabled": true, "ct_install_region": "us-east-1"}},
        "mode": "automatic",
        "credentials": [{"id": cred_id, "purpose": "discover"}],
        "scope": {"include": [{"type": "region", "key": "/aws/us-east-1", "policy": {"id": PROFESSIONAL}},
                              {"type": "region", "key": "/aws/us-west-2", "policy": {"id": ESSENTIALS}}],
                  "exclude": [{"type": "subnet", "key": format!("/aws/us-west-2/subnet/{excluded_subnet}")},
                              {"type": "host", "key": format!("/aws/us-west-2/host/{excluded_host}")}]}});
    let d: Deployment = t.deployment(&body).await.unwrap();
    let e = Engine::new(store.clone(), sessions.clone(), GARRISON.into());

    let before = garrison_cloud::discovery::discover(&aws, &spec.regions, 0).await;

    let report = reconcile(&e, &d).await.unwrap();
    assert!(report.outcomes.iter().all(|o| o.result == "done"), "{:#?}", report.outcomes);
    // Each resource made has the entry of its kind's create call (the kind table and the
    // cloud's implementation of the kind agree), completed: nothing is left pending.
    let log = store.audit_log(&root_account, &d.id, 100_000).await.unwrap();
    assert!(log.iter().all(|e| e.outcome != "pending"), "a finished run leaves no pending entry");
    let owned = store.owned(&d.id).await.unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for o in owned.items.values().filter(|o| !o.adopted) {
        let call = o.kind.facts().create_call;
        assert!(
            log.iter().any(|e| e.call == call && e.outcome == "ok" && e.key.as_deref() == Some(o.key.as_str())),
            "{} ({}): no {call} entry",
            o.key,
            o.kind.as_str()
        );
        kinds.insert(o.kind);
    }
    // (The customer's trail is adopted here, so the topic and subscription are the crash
    // test's: its estate has no trail. The queue is the event feed's alone.)
    use garrison_model::protection::ResKind as K;
    let want: std::collections::BTreeSet<K> = [
        K::Bucket,
        K::Queue,
        K::FlowLogs,
        K::InternetGateway,
        K::Subnet,
        K::RouteTable,
        K::NetworkAcl,
        K::SecurityGroup,
        K::Appliance,
        K::EventBus,
        K::EventRule,
        K::EventRole,
        K::QueuePolicy,
    ]
    .into();
    assert_eq!(kinds, want, "bucket, flow logs, the network kinds and the event feed were built");
    let got = store.get_deployment(&root_account, &d.id).await.unwrap().unwrap();
    assert_eq!(got.status.status, StatusKind::Ok, "{:?}", got.status.message);
    assert!(
        got.status.message.as_deref().unwrap().contains("publishes no SNS notifications")
            && got.status.message.as_deref().unwrap().contains("through the event feed"),
        "the adopted trail has no topic to subscribe to: said so: {:?}",
        got.status.message
    );

    let snap = garrison_cloud::discovery::discover(&aws, &spec.regions, 0).await;
    let mut appliances: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for rs in snap.regions.values() {
        for i in rs.instances.iter().filter(|i| tagged(&i.tags, &d.id)) {
            let key = &i.tags[TAG_KEY];
            appliances
                .entry(i.vpc_id.clone().unwrap())
                .or_default()
                .push((key.rsplit('/').next().unwrap().into(), i.zone.clone()));
            assert_eq!(i.state, "running");
            assert_eq!(i.tags["AlertLogic"], "Security");
            assert_eq!(i.tags["AlertLogic-AccountID"], root_account);
        }
    }
    for v in est.vpcs() {
        let counted: Vec<_> =
            v.instances.iter().filter(|i| i.running && i.subnet != excluded_subnet && i.id != excluded_host).collect();
        let got = appliances.get(&v.id).cloned().unwrap_or_default();
        let scanners = got.iter().filter(|(k, _)| k == "scanner").count();
        assert_eq!(scanners, usize::from(!counted.is_empty()), "{}: exactly one scanner where hosts run", v.id);
        let mut ids: Vec<&String> = got.iter().filter(|(k, _)| k == "ids").map(|(_, z)| z).collect();
        ids.sort();
        let mut zones: Vec<&String> = counted.iter().map(|i| &i.zone).collect();
        zones.sort();
        zones.dedup();
        if v.region == "us-east-1" {
            assert_eq!(ids, zones, "{}: one IDS per inhabited zone", v.id);
        } else {
            assert!(ids.is_empty(), "Essentials has no IDS");
        }
    }
    // Group rules exactly as the reference.
    let east = &snap.regions["us-east-1"];
    let inhabited = est.vpcs().find(|v| v.region == "us-east-1" && !v.instances.is_empty()).unwrap();
    let flat = |g: &garrison_model::snapshot::SecurityGroup| {
        (garrison_engine::plan::planner::flatten(&g.ingress), garrison_engine::plan::planner::flatten(&g.egress))
    };
    let scan_sg = east
        .security_groups
        .iter()
        .find(|g| g.tags.get(TAG_KEY) == Some(&format!("us-east-1/{}/scan_sg", inhabited.id)))
        .unwrap();
    let (ingress, egress) = flat(scan_sg);
    assert!(ingress.is_empty());
    let mut want = vec![
        Perm::new("tcp", 22, 22, "0.0.0.0/0"),
        Perm::new("tcp", 53, 53, "0.0.0.0/0"),
        Perm::new("udp", 53, 53, "0.0.0.0/0"),
        Perm::new("tcp", 80, 80, "0.0.0.0/0"),
        Perm::new("tcp", 443, 443, "0.0.0.0/0"),
        Perm::new("-1", 0, 0, &inhabited.cidr),
    ];
    want.sort();
    assert_eq!(egress, want);
    let ids_sg = east
        .security_groups
        .iter()
        .find(|g| g.tags.get(TAG_KEY) == Some(&format!("us-east-1/{}/ids_sg", inhabited.id)))
        .unwrap();
    let (ingress, egress) = flat(ids_sg);
    let mut want_in = vec![Perm::new("tcp", 443, 443, &inhabited.cidr), Perm::new("tcp", 7777, 7777, &inhabited.cidr)];
    want_in.sort();
    assert_eq!(ingress, want_in);
    assert_eq!(egress.len(), 12, "443 and 4138 to four data-centre ranges, DNS tcp/udp to two resolvers");
    // The customer's singletons are adopted, not duplicated.
    assert!(report.audit_source.trail.as_ref().unwrap().adopted);
    assert_eq!(east.trails.iter().filter(|t| t.name.starts_with("garrison")).count(), 0);
    assert_eq!(east.detectors.len(), 1);
    assert_eq!(east.config_recorders.len(), 1);
    assert!(report.audit_source.detectors[0].adopted);
    assert!(report.monthly_appliance_usd > 0.0);
    // The summary per scope item: Professional us-east-1 holds the IDS, Essentials us-west-2 none.
    let by_key: BTreeMap<&str, &garrison_engine::protect::ScopeView> =
        report.scope.iter().map(|s| (s.key.as_str(), s)).collect();
    let (e1, w2) = (by_key["/aws/us-east-1"], by_key["/aws/us-west-2"]);
    assert_eq!(e1.scanners + w2.scanners, appliances.values().flatten().filter(|(k, _)| k == "scanner").count());
    assert_eq!(e1.ids, appliances.values().flatten().filter(|(k, _)| k == "ids").count());
    assert!(e1.ids > 0 && w2.ids == 0 && e1.vpcs > 0);

    // A second reconcile plans nothing and writes nothing.
    let audit_before = store.audit_log(&root_account, &d.id, 100_000).await.unwrap().len();
    assert!(audit_before > 20);
    let again = reconcile(&e, &d).await.unwrap();
    assert!(again.plan.actions.is_empty(), "{:#?}", again.plan.actions);
    assert_eq!(store.audit_log(&root_account, &d.id, 100_000).await.unwrap().len(), audit_before);

    // Stopping the last running host of a VPC stops its scanner; starting one starts it.
    let vpc = est.vpcs().find(|v| v.region == "us-east-1" && v.instances.iter().any(|i| i.running)).unwrap();
    let running: Vec<String> = vpc.instances.iter().filter(|i| i.running).map(|i| i.id.clone()).collect();
    let ec2 = aws.ec2();
    ec2.stop_instances().set_instance_ids(Some(running.clone())).send().await.unwrap();
    let r = reconcile(&e, &d).await.unwrap();
    let verbs: Vec<(String, &str)> = r.plan.actions.iter().map(|a| (a.key.clone(), a.op.verb())).collect();
    assert!(verbs.contains(&(format!("us-east-1/{}/scanner", vpc.id), "stop")), "{verbs:?}");
    let scanner_state = |snap: &Snapshot| {
        snap.regions["us-east-1"]
            .instances
            .iter()
            .find(|i| i.tags.get(TAG_KEY) == Some(&format!("us-east-1/{}/scanner", vpc.id)))
            .map(|i| i.state.clone())
    };
    let snap = garrison_cloud::discovery::discover(&aws, &spec.regions, 0).await;
    assert_eq!(scanner_state(&snap).as_deref(), Some("stopped"));
    ec2.start_instances().set_instance_ids(Some(running.clone())).send().await.unwrap();
    let r = reconcile(&e, &d).await.unwrap();
    assert!(r.plan.actions.iter().any(|a| a.key == format!("us-east-1/{}/scanner", vpc.id) && a.op.verb() == "start"));
    let snap = garrison_cloud::discovery::discover(&aws, &spec.regions, 0).await;
    assert_eq!(scanner_state(&snap).as_deref(), Some("running"));

    // Removal: everything of ours goes, the customer's estate describes as before.
    assert!(store.request_removal(&root_account, &d.id, "u").await.unwrap());
    let removal = uninstall(&e, &d).await.unwrap();
    assert!(removal.verified, "{:?} {:#?}", removal.remaining, removal.outcomes);
    assert!(store.removals().await.unwrap().is_empty());
    let after = garrison_cloud::discovery::discover(&aws, &spec.regions, 0).await;
    for rs in after.regions.values() {
        assert!(rs.instances.iter().all(|i| !tagged(&i.tags, &d.id) || i.state == "terminated"));
        assert!(rs.subnets.iter().chain(rs.subnets.iter()).all(|s| !tagged(&s.tags, &d.id)));
        assert!(rs.security_groups.iter().all(|s| !tagged(&s.tags, &d.id)));
        assert!(rs.internet_gateways.iter().all(|s| !tagged(&s.tags, &d.id)));
        assert!(rs.flow_logs.iter().all(|s| !tagged(&s.tags, &d.id)));
    }
    let mut a = serde_json::to_value(after.customer_view()).unwrap();
    let mut b = serde_json::to_value(before.customer_view()).unwrap();
    // Terminated appliances linger in describe output for a while; they are not the customer's.
    for v in [&mut a, &mut b] {
        for rs in v["regions"].as_object_mut().unwrap().values_mut() {
            rs["instances"].as_array_mut().unwrap().retain(|i| i["state"] != "terminated");
        }
    }
    assert_eq!(first_difference(&a, &b, ""), None, "the customer's resources describe exactly as before");
    assert!(after.regions["us-east-1"].trails.iter().any(|t| t.name == "customer-trail" && t.logging == Some(true)));
    assert_eq!(after.regions["us-east-1"].detectors.len(), 1);
    assert_eq!(after.regions["us-east-1"].config_recorders.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_executor_is_fenced_before_any_write() {
    use garrison_engine::execute::Executor;
    use garrison_model::protection::{Action, Op, ResKind, Spec};
    let store = store().await;
    let root_account = store.init_root(None, None).await.unwrap().unwrap().account_id;
    let dep = "D0000000-0000-4000-8000-000000000001";
    let old = store.claim_generation(&root_account, dep).await.unwrap();
    let newer = store.claim_generation(&root_account, dep).await.unwrap();
    assert!(newer > old);
    // Nothing listens there: any AWS call would fail, not be fenced.
    let aws = Aws::from_config(garrison_cloud::emulator::sdk_config("http://127.0.0.1:9", "us-east-1").await);
    let ex = Executor {
        store: store.clone(),
        aws,
        account_id: root_account.clone(),
        deployment_id: dep.into(),
        generation: old,
        parallel: 4,
        retry_pause: std::time::Duration::from_millis(500),
        appliances: None,
    };
    let spec = Spec::Subnet { vpc: "vpc-1".into(), zone: "us-east-1a".into(), cidr: "10.0.255.240/28".into() };
    let plan = vec![
        Action {
            key: "k1".into(),
            region: "us-east-1".into(),
            kind: ResKind::Subnet,
            op: Op::Create { spec: spec.clone(), running: false, tags: Default::default(), retire: None },
            after: vec![],
        },
        Action {
            key: "k2".into(),
            region: "us-east-1".into(),
            kind: ResKind::RouteTable,
            op: Op::Delete { id: "rtb-1".into() },
            after: vec![],
        },
    ];
    let mut owned = Default::default();
    let out = ex.run(&plan, &mut owned).await;
    assert_eq!(out.iter().map(|o| o.result).collect::<Vec<_>>(), ["fenced", "fenced"]);
    assert!(store.owned(dep).await.unwrap().items.is_empty(), "no intent recorded");
    assert!(store.audit_log(&root_account, dep, 10).await.unwrap().is_empty(), "no AWS write");
}

/// otis `ids_appliances_placement` on the emulator: with `max_zones: 1` a Professional VPC
/// whose running hosts are in two zones gets one IDS appliance, in the zone with the most
/// hosts; removing the option brings the second zone's appliance back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ids_placement_option_caps_the_zones_with_appliances() {
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    let sessions = Arc::new(Sessions::new(aws.clone()));
    let spec = EstateSpec { regions: vec!["us-east-1".into()], ..EstateSpec::s_bare() };
    let est = estate::build(&sessions, &spec).await.unwrap();
    let zones_of = |v: &garrison_cloud::estate::BuiltVpc| -> BTreeMap<String, usize> {
        let mut z = BTreeMap::new();
        for i in v.instances.iter().filter(|i| i.running) {
            *z.entry(i.zone.clone()).or_insert(0) += 1;
        }
        z
    };
    let vpc = est.vpcs().find(|v| zones_of(v).len() >= 2).expect("a VPC with running hosts in two zones").clone();
    let t = garrison_testkit::tenants::tenant(&aws, "placement").await.unwrap();
    let body = json!({"name": "p", "platform": {"type": "aws", "id": GARRISON}, "mode": "automatic",
        "credentials": [{"id": t.credential, "purpose": "discover"}],
        "scope": {"include": [{"type": "vpc", "key": format!("/aws/us-east-1/vpc/{}", vpc.id), "policy": {"id": PROFESSIONAL}}]}});
    let d: Deployment = t.deployment(&body).await.unwrap();
    let option = garrison_model::otis::parse(&json!({"name": "ids_appliances_placement",
        "scope": {"deployment_id": d.id}, "value": {"policy": "automatic", "max_zones": 1}}))
    .unwrap();
    assert!(t.store.create_option(&t.account, &option).await.unwrap());
    let e = Engine::new(t.store.clone(), sessions.clone(), GARRISON.into());
    // IDS appliances garrison runs in the VPC, by zone.
    let ids_zones = || async {
        let snap = garrison_cloud::discovery::discover(&aws, &spec.regions, 0).await;
        let mut z: Vec<String> = snap.regions["us-east-1"]
            .instances
            .iter()
            .filter(|i| {
                i.vpc_id.as_deref() == Some(vpc.id.as_str())
                    && i.tags.get(TAG_KEY).is_some_and(|k| k.ends_with("/ids"))
                    && i.state != "terminated"
            })
            .map(|i| i.zone.clone())
            .collect();
        z.sort();
        z
    };
    let r = reconcile(&e, &d).await.unwrap();
    assert!(r.outcomes.iter().all(|o| o.result == "done"), "{:#?}", r.outcomes);
    let busiest = {
        let z = zones_of(&vpc);
        let mut by: Vec<(String, usize)> = z.into_iter().collect();
        by.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        by[0].0.clone()
    };
    assert_eq!(ids_zones().await, [busiest], "one IDS appliance, in the busiest zone");
    assert!(reconcile(&e, &d).await.unwrap().plan.actions.is_empty(), "planning again changes nothing");

    assert!(t.store.delete_option(&t.account, &option.id).await.unwrap());
    let r = reconcile(&e, &d).await.unwrap();
    assert!(r.outcomes.iter().all(|o| o.result == "done"), "{:#?}", r.outcomes);
    assert_eq!(ids_zones().await.len(), zones_of(&vpc).len(), "without the option: one per inhabited zone");
}

/// A fresh emulator holding estate S's first region, a tenant, and a deployment of one VPC
/// with running hosts under `policy`: what the tuning tests start from.
struct OneVpc {
    _moto: Moto,
    aws: Aws,
    sessions: Arc<Sessions>,
    spec: EstateSpec,
    vpc: garrison_cloud::estate::BuiltVpc,
    t: garrison_testkit::tenants::Tenant,
    d: Deployment,
}

async fn one_vpc(name: &str, policy: &str) -> OneVpc {
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    let sessions = Arc::new(Sessions::new(aws.clone()));
    let spec = EstateSpec { regions: vec!["us-east-1".into()], ..EstateSpec::s_bare() };
    let est = estate::build(&sessions, &spec).await.unwrap();
    let vpc = est.vpcs().find(|v| v.instances.iter().any(|i| i.running)).expect("a VPC with a running host").clone();
    let t = garrison_testkit::tenants::tenant(&aws, name).await.unwrap();
    let body = json!({"name": name, "platform": {"type": "aws", "id": GARRISON}, "mode": "automatic",
        "credentials": [{"id": t.credential, "purpose": "discover"}],
        "scope": {"include": [{"type": "vpc", "key": format!("/aws/us-east-1/vpc/{}", vpc.id), "policy": {"id": policy}}]}});
    let d: Deployment = t.deployment(&body).await.unwrap();
    OneVpc { _moto: moto, aws, sessions, spec, vpc, t, d }
}

/// otis types, tags and scaling on the emulator: `ids_appliance_instance_type` replaces each
/// IDS appliance (the new one launched before the old one is terminated, by the audit log),
/// the scanner keeps its instance; the tags land on what garrison builds (role tags on the
/// scanner only); constant scan scaling runs a second scanner; planning again is empty. A
/// changed tag option re-tags in place and leaves the customer's own tag; uninstall takes
/// everything away, the second scanner too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_tag_and_scaling_options_change_exactly_what_they_say() {
    let OneVpc { _moto, aws, sessions, spec, vpc, t, d } = one_vpc("tuning", PROFESSIONAL).await;
    let e = Engine::new(t.store.clone(), sessions.clone(), GARRISON.into());
    let r = reconcile(&e, &d).await.unwrap();
    assert!(r.outcomes.iter().all(|o| o.result == "done"), "{:#?}", r.outcomes);
    // garrison's live instances in the VPC: key → (id, type, tags).
    let ours = || async {
        let snap = garrison_cloud::discovery::discover(&aws, &spec.regions, 0).await;
        let rs = snap.regions["us-east-1"].clone();
        let instances: BTreeMap<String, (String, String, Tags)> = rs
            .instances
            .iter()
            .filter(|i| tagged(&i.tags, &d.id) && !matches!(i.state.as_str(), "terminated" | "shutting-down"))
            .map(|i| (i.tags[TAG_KEY].clone(), (i.id.clone(), i.instance_type.clone(), i.tags.clone())))
            .collect();
        (instances, rs)
    };
    let (before, _) = ours().await;
    let scanner = format!("us-east-1/{}/scanner", vpc.id);
    let ids_keys: Vec<String> = before.keys().filter(|k| k.ends_with("/ids")).cloned().collect();
    assert!(!ids_keys.is_empty() && before.contains_key(&scanner), "{before:?}");
    assert!(ids_keys.iter().all(|k| before[k].1 != "m5.xlarge"), "the default type is another");

    let opt = |name: &str, value: Value| {
        garrison_model::otis::parse(&json!({"name": name, "scope": {"deployment_id": d.id}, "value": value})).unwrap()
    };
    for o in [
        opt("ids_appliance_instance_type", json!("m5.xlarge")),
        opt("security_resource_tags", json!([{"key": "Team", "value": "sec"}, {"key": "CostCenter", "value": "42"}])),
        opt("scan_security_resource_tags", json!([{"key": "Role", "value": "scanner"}])),
        opt("scan_appliances_scaling", json!({"policy": "constant", "num_instances": 2})),
    ] {
        assert!(t.store.create_option(&t.account, &o).await.unwrap());
    }
    let r = reconcile(&e, &d).await.unwrap();
    assert!(r.outcomes.iter().all(|o| o.result == "done"), "{:#?}", r.outcomes);
    // What each option costs, in the report: the type's difference per IDS appliance, a
    // second scanner's price, nothing for tags.
    let prices = garrison_catalog::prices::PriceTable::builtin();
    let m = |ty: &str| garrison_engine::plan::cost::monthly(&prices, "us-east-1", ty);
    let cost_of = |name: &str| r.option_costs.iter().find(|c| c.name == name).map(|c| c.monthly_usd);
    let ids_delta = ids_keys.len() as f64 * (m("m5.xlarge") - m(&before[&ids_keys[0]].1));
    assert!((cost_of("ids_appliance_instance_type").unwrap() - ids_delta).abs() < 0.05, "{:?}", r.option_costs);
    assert!(
        (cost_of("scan_appliances_scaling").unwrap() - m(&before[&scanner].1)).abs() < 0.05,
        "{:?}",
        r.option_costs
    );
    assert_eq!(cost_of("security_resource_tags"), Some(0.0));
    let v = r.vpcs.iter().find(|v| v.vpc_id == vpc.id).unwrap();
    assert!((v.monthly_usd - r.monthly_appliance_usd).abs() < 0.01 && v.monthly_usd > 0.0, "{v:?}");
    let (after, rs) = ours().await;
    for k in &ids_keys {
        let (id, ty, tags) = &after[k];
        assert_eq!(ty, "m5.xlarge", "{k}");
        assert_ne!(id, &before[k].0, "{k}: replaced");
        assert_eq!((tags["Team"].as_str(), tags.get("Role")), ("sec", None), "{k}: general tags only");
        // The old one is terminated only after its replacement was launched.
        let log = t.store.audit_log(&t.account, &d.id, 100_000).await.unwrap();
        let at = |call: &str, key: &str| {
            log.iter().find(|e| e.call == call && e.key.as_deref() == Some(key) && e.outcome == "ok").map(|e| e.at_ms)
        };
        let launched = log
            .iter()
            .filter(|e| e.call == "ec2:RunInstances" && e.key.as_deref() == Some(k.as_str()))
            .map(|e| e.at_ms)
            .max()
            .unwrap();
        let terminated = at("ec2:TerminateInstances", &format!("retired/{k}")).expect("the old appliance terminated");
        assert!(launched <= terminated, "{k}: launched at {launched}, old terminated at {terminated}");
        let old = rs.instances.iter().find(|i| i.id == before[k].0);
        assert!(old.is_none_or(|i| i.state == "terminated"), "{k}: {old:?}");
    }
    let (scan_id, _, scan_tags) = &after[&scanner];
    assert_eq!(scan_id, &before[&scanner].0, "the scanner's type is unchanged: same instance");
    assert_eq!(
        (scan_tags["Team"].as_str(), scan_tags["CostCenter"].as_str(), scan_tags["Role"].as_str()),
        ("sec", "42", "scanner")
    );
    assert_eq!(scan_tags[TAG_KEY], scanner, "garrison's own tags stay");
    assert!(after.contains_key(&format!("{scanner}-2")), "a second scanner: {:?}", after.keys());
    let subnet = rs.subnets.iter().find(|s| tagged(&s.tags, &d.id)).expect("garrison's subnet");
    assert_eq!((subnet.tags["Team"].as_str(), subnet.tags.get("Role")), ("sec", None));
    assert!(reconcile(&e, &d).await.unwrap().plan.actions.is_empty(), "planning again changes nothing");

    // The customer tags garrison's subnet; the operator changes Team and drops the scan tags.
    aws.ec2()
        .create_tags()
        .resources(&subnet.id)
        .tags(aws_sdk_ec2::types::Tag::builder().key("Backup").value("daily").build())
        .send()
        .await
        .unwrap();
    let changed =
        opt("security_resource_tags", json!([{"key": "Team", "value": "ops"}, {"key": "CostCenter", "value": "42"}]));
    assert!(t.store.update_option(&t.account, &changed).await.unwrap());
    let scan_tags_id = opt("scan_security_resource_tags", json!([])).id;
    assert!(t.store.delete_option(&t.account, &scan_tags_id).await.unwrap());
    let r = reconcile(&e, &d).await.unwrap();
    assert!(r.outcomes.iter().all(|o| o.result == "done"), "{:#?}", r.outcomes);
    assert!(r.plan.actions.iter().all(|a| a.op.verb() == "tag"), "tags change in place: {:#?}", r.plan.actions);
    let (now, rs) = ours().await;
    let s = rs.subnets.iter().find(|s| s.id == subnet.id).unwrap();
    assert_eq!((s.tags["Team"].as_str(), s.tags["Backup"].as_str()), ("ops", "daily"), "the customer's tag stays");
    assert_eq!(
        (now[&scanner].2["Team"].as_str(), now[&scanner].2.get("Role")),
        ("ops", None),
        "the dropped tag is off"
    );
    assert!(reconcile(&e, &d).await.unwrap().plan.actions.is_empty());

    assert!(t.store.request_removal(&t.account, &d.id, "u").await.unwrap());
    let removal = uninstall(&e, &d).await.unwrap();
    assert!(removal.verified, "{:?} {:#?}", removal.remaining, removal.outcomes);
    let (left, rs) = ours().await;
    assert!(left.is_empty(), "{left:?}");
    assert!(rs.subnets.iter().all(|s| !tagged(&s.tags, &d.id)));
    assert!(rs.security_groups.iter().all(|s| !tagged(&s.tags, &d.id)));
}

/// otis `predefined_security_subnet` on the emulator: the scanner is launched in the
/// customer's subnet; garrison makes no subnet, route table, ACL or gateway in the VPC and
/// leaves the customer's subnet, its routes and ACL exactly as they were, also after
/// uninstall.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_predefined_subnet_is_used_and_never_changed() {
    let OneVpc { _moto, aws, sessions, spec, vpc, t, d } = one_vpc("predefined", ESSENTIALS).await;
    let theirs = vpc.subnets[0].0.clone();
    let option = garrison_model::otis::parse(&json!({"name": "predefined_security_subnet",
        "scope": {"deployment_id": d.id, "vpc_key": format!("/aws/us-east-1/vpc/{}", vpc.id)},
        "value": format!("/aws/us-east-1/subnet/{theirs}")}))
    .unwrap();
    assert!(t.store.create_option(&t.account, &option).await.unwrap());
    // The customer's subnet as AWS describes it, with the route tables and ACLs naming it.
    let view = |snap: &Snapshot| {
        let rs = &snap.regions["us-east-1"];
        let subnet = rs.subnets.iter().find(|s| s.id == theirs).map(|s| serde_json::to_value(s).unwrap());
        let tables: Vec<Value> =
            rs.route_tables.iter().filter(|r| r.vpc_id == vpc.id).map(|r| serde_json::to_value(r).unwrap()).collect();
        let acls: Vec<Value> =
            rs.network_acls.iter().filter(|a| a.vpc_id == vpc.id).map(|a| serde_json::to_value(a).unwrap()).collect();
        (subnet, tables, acls)
    };
    let before = garrison_cloud::discovery::discover(&aws, &spec.regions, 0).await;
    let e = Engine::new(t.store.clone(), sessions.clone(), GARRISON.into());
    let r = reconcile(&e, &d).await.unwrap();
    assert!(r.outcomes.iter().all(|o| o.result == "done"), "{:#?}", r.outcomes);
    let snap = garrison_cloud::discovery::discover(&aws, &spec.regions, 0).await;
    let rs = &snap.regions["us-east-1"];
    let scanner =
        rs.instances.iter().find(|i| tagged(&i.tags, &d.id) && i.state == "running").expect("the scanner runs");
    assert_eq!(scanner.subnet_id.as_deref(), Some(theirs.as_str()), "in the customer's subnet");
    assert!(rs.subnets.iter().all(|s| !tagged(&s.tags, &d.id)), "no subnet of garrison's");
    assert!(rs.route_tables.iter().all(|s| !tagged(&s.tags, &d.id)), "no route table of garrison's");
    assert!(rs.network_acls.iter().all(|s| !tagged(&s.tags, &d.id)), "no ACL of garrison's");
    assert!(rs.internet_gateways.iter().all(|s| !tagged(&s.tags, &d.id)), "no gateway of garrison's");
    assert_eq!(view(&snap), view(&before), "the customer's subnet, routes and ACLs are as they were");
    assert!(reconcile(&e, &d).await.unwrap().plan.actions.is_empty(), "planning again changes nothing");

    assert!(t.store.request_removal(&t.account, &d.id, "u").await.unwrap());
    let removal = uninstall(&e, &d).await.unwrap();
    assert!(removal.verified, "{:?} {:#?}", removal.remaining, removal.outcomes);
    let after = garrison_cloud::discovery::discover(&aws, &spec.regions, 0).await;
    assert_eq!(view(&after), view(&before), "after uninstall too");
}

/// otis `cross_network_protection` on the emulator, over a VPC peering and over a transit
/// gateway: discovery reads both; the two spokes get no appliances, the hub's scanner
/// reaches them (its group's rules and its subnet's ACL name their CIDRs); planning again
/// is empty; without the options each spoke gets its own scanner back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_protects_spokes_over_a_peering_and_a_transit_gateway() {
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    let sessions = Arc::new(Sessions::new(aws.clone()));
    let spec = EstateSpec { regions: vec!["us-east-1".into()], vpcs: 6, instances: 18, ..EstateSpec::s_bare() };
    let est = estate::build(&sessions, &spec).await.unwrap();
    let inhabited: Vec<_> = est.vpcs().filter(|v| v.instances.iter().any(|i| i.running)).cloned().collect();
    assert!(inhabited.len() >= 3, "three VPCs with running hosts");
    let (hub, peered, attached) = (&inhabited[0], &inhabited[1], &inhabited[2]);
    let ec2 = aws.ec2();
    let pcx = ec2.create_vpc_peering_connection().vpc_id(&hub.id).peer_vpc_id(&peered.id).send().await.unwrap();
    let pcx_id = pcx.vpc_peering_connection().unwrap().vpc_peering_connection_id().unwrap().to_string();
    ec2.accept_vpc_peering_connection().vpc_peering_connection_id(&pcx_id).send().await.unwrap();
    let tgw = ec2.create_transit_gateway().send().await.unwrap();
    let tgw_id = tgw.transit_gateway().unwrap().transit_gateway_id().unwrap().to_string();
    for v in [hub, attached] {
        ec2.create_transit_gateway_vpc_attachment()
            .transit_gateway_id(&tgw_id)
            .vpc_id(&v.id)
            .subnet_ids(&v.subnets[0].0)
            .send()
            .await
            .unwrap();
    }
    let snap = garrison_cloud::discovery::discover(&aws, &spec.regions, 0).await;
    let rs = &snap.regions["us-east-1"];
    assert!(rs.connected(&hub.id, &peered.id).is_some_and(|c| c.kind == "peering"), "{:?}", rs.connections);
    assert!(rs.connected(&hub.id, &attached.id).is_some_and(|c| c.kind == "transit_gateway"), "{:?}", rs.connections);
    assert!(rs.connected(&peered.id, &attached.id).is_none());

    let t = garrison_testkit::tenants::tenant(&aws, "hub").await.unwrap();
    let body = json!({"name": "h", "platform": {"type": "aws", "id": GARRISON}, "mode": "automatic",
        "credentials": [{"id": t.credential, "purpose": "discover"}],
        "scope": {"include": [{"type": "region", "key": "/aws/us-east-1", "policy": {"id": ESSENTIALS}}]}});
    let d: Deployment = t.deployment(&body).await.unwrap();
    let mut ids = vec![];
    for spoke in [peered, attached] {
        let o = garrison_model::otis::parse(&json!({"name": "cross_network_protection",
            "scope": {"deployment_id": d.id, "vpc_key": format!("/aws/us-east-1/vpc/{}", spoke.id)},
            "value": {"deployment_id": d.id, "vpc_key": format!("/aws/us-east-1/vpc/{}", hub.id)}}))
        .unwrap();
        assert!(t.store.create_option(&t.account, &o).await.unwrap());
        ids.push(o.id);
    }
    let e = Engine::new(t.store.clone(), sessions.clone(), GARRISON.into());
    let r = reconcile(&e, &d).await.unwrap();
    assert!(r.outcomes.iter().all(|o| o.result == "done"), "{:#?}", r.outcomes);
    // The ACL associations were replaced (a read of the association on the way), and the
    // audit log holds the writes only.
    let log = t.store.audit_log(&t.account, &d.id, 100_000).await.unwrap();
    assert!(log.iter().any(|e| e.call == "ec2:ReplaceNetworkAclAssociation"), "{log:?}");
    let reads: Vec<&str> = log.iter().map(|e| e.call.as_str()).filter(|c| garrison_model::audit::is_read(c)).collect();
    assert!(reads.is_empty(), "reads in the audit log: {reads:?}");
    let scanners = || async {
        let snap = garrison_cloud::discovery::discover(&aws, &spec.regions, 0).await;
        let rs = snap.regions["us-east-1"].clone();
        let s: BTreeMap<String, String> = rs
            .instances
            .iter()
            .filter(|i| tagged(&i.tags, &d.id) && i.state == "running")
            .map(|i| (i.vpc_id.clone().unwrap(), i.id.clone()))
            .collect();
        (s, rs)
    };
    let (s, rs) = scanners().await;
    assert!(s.contains_key(&hub.id), "the hub's scanner: {s:?}");
    for spoke in [peered, attached] {
        assert!(!s.contains_key(&spoke.id), "{}: no appliance of its own", spoke.id);
        assert!(rs.subnets.iter().all(|x| x.vpc_id != spoke.id || !tagged(&x.tags, &d.id)));
        let group = rs
            .security_groups
            .iter()
            .find(|g| g.vpc_id.as_deref() == Some(hub.id.as_str()) && tagged(&g.tags, &d.id))
            .unwrap();
        assert!(group.egress.iter().any(|r| r.cidrs.contains(&spoke.cidr)), "{}: {:?}", spoke.cidr, group.egress);
        let acl = rs.network_acls.iter().find(|a| a.vpc_id == hub.id && tagged(&a.tags, &d.id)).unwrap();
        let entries = ec2.describe_network_acls().network_acl_ids(&acl.id).send().await.unwrap();
        let cidrs: Vec<String> =
            entries.network_acls()[0].entries().iter().filter_map(|x| x.cidr_block().map(str::to_string)).collect();
        assert!(cidrs.contains(&spoke.cidr), "{}: {cidrs:?}", spoke.cidr);
    }
    assert!(reconcile(&e, &d).await.unwrap().plan.actions.is_empty(), "planning again changes nothing");

    for id in &ids {
        assert!(t.store.delete_option(&t.account, id).await.unwrap());
    }
    let r = reconcile(&e, &d).await.unwrap();
    assert!(r.outcomes.iter().all(|o| o.result == "done"), "{:#?}", r.outcomes);
    let (s, _) = scanners().await;
    assert!(s.contains_key(&peered.id) && s.contains_key(&attached.id), "each spoke its own again: {s:?}");
    assert!(reconcile(&e, &d).await.unwrap().plan.actions.is_empty());
}

/// Scan windows on the emulator with a controllable clock: the default schedule given a
/// nightly window in New York time, the scanner runs inside it and is stopped outside it
/// (the IDS appliance keeps running); a scan expedited for the VPC starts it outside the
/// window; planning again at the same time is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scanner_runs_inside_its_window_and_stops_outside_it() {
    use std::sync::atomic::{AtomicI64, Ordering};
    let OneVpc { _moto, aws, sessions, spec, vpc, t, d } = one_vpc("windows", PROFESSIONAL).await;
    let mut nightly = garrison_model::schedule::default_schedule(&d.id, None);
    nightly.timezone = Some("America/New_York".into());
    nightly.scan_windows = Some(vec![json!({"type": "days_of_week", "start_time": "22:00", "end_time": "02:00",
        "days_of_week": [1, 2, 3, 4, 5, 6, 7]})]);
    t.store.put_schedule(&t.account, &d.id, &nightly).await.unwrap();
    let ms = |s: &str| garrison_model::schedule::parse_ms(s).unwrap();
    let clock = Arc::new(AtomicI64::new(ms("2027-01-05T04:00:00Z"))); // 23:00 in New York
    let mut e = Engine::new(t.store.clone(), sessions.clone(), GARRISON.into());
    let c = clock.clone();
    e.clock = Arc::new(move || c.load(Ordering::SeqCst));
    let states = || async {
        let snap = garrison_cloud::discovery::discover(&aws, &spec.regions, 0).await;
        let mut by_role: BTreeMap<String, String> = BTreeMap::new();
        for i in
            snap.regions["us-east-1"].instances.iter().filter(|i| tagged(&i.tags, &d.id) && i.state != "terminated")
        {
            let role = if i.tags[TAG_KEY].ends_with("/scanner") { "scan" } else { "ids" };
            by_role.insert(role.into(), i.state.clone());
        }
        by_role
    };
    let r = reconcile(&e, &d).await.unwrap();
    assert!(r.outcomes.iter().all(|o| o.result == "done"), "{:#?}", r.outcomes);
    assert_eq!(states().await.get("scan").map(String::as_str), Some("running"), "inside the window");

    clock.store(ms("2027-01-05T17:00:00Z"), Ordering::SeqCst); // noon in New York
    let r = reconcile(&e, &d).await.unwrap();
    let verbs: Vec<(&str, &str)> = r.plan.actions.iter().map(|a| (a.key.as_str(), a.op.verb())).collect();
    assert_eq!(verbs, [(format!("us-east-1/{}/scanner", vpc.id).as_str(), "stop")], "only the scanner stops");
    let s = states().await;
    assert_eq!((s["scan"].as_str(), s["ids"].as_str()), ("stopped", "running"));
    assert!(reconcile(&e, &d).await.unwrap().plan.actions.is_empty(), "planning again at noon changes nothing");

    // Scan now, for the VPC: the scanner starts outside the window.
    let expedite = garrison_model::schedule::ScanControl {
        key: format!("/aws/us-east-1/vpc/{}", vpc.id),
        asset_type: "vpc".into(),
        expedite_until: Some(clock.load(Ordering::SeqCst) + garrison_model::schedule::EXPEDITE_MS),
        stopped_at: None,
    };
    t.store.put_scan_control(&d.id, &expedite).await.unwrap();
    reconcile(&e, &d).await.unwrap();
    assert_eq!(states().await["scan"], "running", "expedited");
    // Five hours later the expedite has run out, and it is still day in New York.
    clock.store(ms("2027-01-05T22:00:00Z"), Ordering::SeqCst);
    reconcile(&e, &d).await.unwrap();
    assert_eq!(states().await["scan"], "stopped");
    // Two minutes before the window opens, the worker's next run is due at its opening, not
    // at the five-minute resync.
    clock.store(ms("2027-01-06T02:58:00Z"), Ordering::SeqCst);
    reconcile(&e, &d).await.unwrap();
    let resync = std::time::Duration::from_secs(300);
    let next = e.after_run(&d.id, garrison_model::deployment::Reason::Converged, resync).expect("a run at the edge");
    assert_eq!(next, std::time::Duration::from_secs(121), "the edge at 03:00 UTC, plus a second");
    clock.store(ms("2027-01-06T03:00:01Z"), Ordering::SeqCst);
    reconcile(&e, &d).await.unwrap();
    assert_eq!(states().await["scan"], "running", "started when the window opened");
}

/// otis `scan_security_subnet_cidr_block` on the emulator: the scanner's subnet is made with
/// the operator's block (the VPC's last /28 here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scanner_subnet_takes_the_operators_block_on_the_emulator() {
    let OneVpc { _moto, aws, sessions, spec, vpc, t, d } = one_vpc("block", ESSENTIALS).await;
    let net: garrison_model::cidr::Ipv4Net = vpc.cidr.parse().unwrap();
    let last =
        garrison_model::cidr::Ipv4Net { addr: (net.addr | (u32::MAX >> net.prefix)) & !15, prefix: 28 }.to_string();
    let o = garrison_model::otis::parse(&json!({"name": "scan_security_subnet_cidr_block",
        "scope": {"deployment_id": d.id, "vpc_key": format!("/aws/us-east-1/vpc/{}", vpc.id)}, "value": last}))
    .unwrap();
    assert!(t.store.create_option(&t.account, &o).await.unwrap());
    let e = Engine::new(t.store.clone(), sessions.clone(), GARRISON.into());
    let r = reconcile(&e, &d).await.unwrap();
    assert!(r.outcomes.iter().all(|o| o.result == "done"), "{:#?}", r.outcomes);
    let snap = garrison_cloud::discovery::discover(&aws, &spec.regions, 0).await;
    let rs = &snap.regions["us-east-1"];
    let scanner = rs.instances.iter().find(|i| tagged(&i.tags, &d.id) && i.state == "running").expect("the scanner");
    let subnet = rs.subnets.iter().find(|s| Some(&s.id) == scanner.subnet_id.as_ref()).unwrap();
    assert_eq!(
        (subnet.cidr.as_str(), tagged(&subnet.tags, &d.id)),
        (last.as_str(), true),
        "garrison's subnet, the operator's block"
    );
}

/// otis `span_port_enabled` on the emulator: a session for exactly the interfaces of the
/// VPC's protected instances, each to the target at an IDS appliance of its zone (the
/// appliance's primary interface), with a filter that takes everything both ways; numbered
/// after the customer's own session on one interface, which is left as it was; the IDS group
/// lets VXLAN in; every mirror resource has its create entry in the audit log. An IDS
/// appliance replaced (another type) takes its target along: the sessions are the same ones,
/// sent to the new target in place, the old target gone. Uninstall removes all of it and
/// nothing of the customer's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_port_mirrors_exactly_the_protected_interfaces_and_goes_on_uninstall() {
    use garrison_model::protection::ResKind as K;
    let OneVpc { _moto, aws, sessions, spec, vpc, t, d } = one_vpc("mirror", PROFESSIONAL).await;
    let read =
        || async { garrison_cloud::discovery::discover(&aws, &spec.regions, 0).await.regions["us-east-1"].clone() };
    let rs = read().await;
    let hosts: Vec<&garrison_model::snapshot::Instance> =
        rs.instances.iter().filter(|i| i.vpc_id.as_deref() == Some(vpc.id.as_str()) && i.is_running()).collect();
    assert!(hosts.len() >= 2, "{hosts:?}");
    // The customer mirrors their first host to their second already.
    let ec2 = aws.ec2();
    let their_target = ec2
        .create_traffic_mirror_target()
        .network_interface_id(&hosts[1].interfaces[0])
        .send()
        .await
        .unwrap()
        .traffic_mirror_target
        .unwrap()
        .traffic_mirror_target_id
        .unwrap();
    let their_filter = ec2
        .create_traffic_mirror_filter()
        .send()
        .await
        .unwrap()
        .traffic_mirror_filter
        .unwrap()
        .traffic_mirror_filter_id
        .unwrap();
    ec2.create_traffic_mirror_session()
        .network_interface_id(&hosts[0].interfaces[0])
        .traffic_mirror_target_id(&their_target)
        .traffic_mirror_filter_id(&their_filter)
        .session_number(32766)
        .send()
        .await
        .unwrap();
    let theirs_before = {
        let now = read().await;
        (now.mirror_targets.len(), now.mirror_sessions)
    };

    let option = |name: &str, value: Value| {
        garrison_model::otis::parse(&json!({"name": name, "scope": {"deployment_id": d.id}, "value": value})).unwrap()
    };
    assert!(t.store.create_option(&t.account, &option("span_port_enabled", json!(true))).await.unwrap());
    let e = Engine::new(t.store.clone(), sessions.clone(), GARRISON.into());
    let r = reconcile(&e, &d).await.unwrap();
    assert!(r.outcomes.iter().all(|o| o.result == "done"), "{:#?}", r.outcomes);
    // What mirroring costs: a session-hour per interface, in the option's cost and the VPC's.
    let interfaces = hosts.iter().map(|h| h.interfaces.len()).sum::<usize>();
    let session = garrison_engine::plan::cost::monthly_session(&garrison_catalog::prices::PriceTable::builtin());
    assert!(session > 10.0, "USD 0.015 an hour: {session}");
    let cost = r.option_costs.iter().find(|c| c.name == "span_port_enabled").map(|c| c.monthly_usd);
    assert!((cost.unwrap() - interfaces as f64 * session).abs() < 0.05, "{:?}", r.option_costs);
    let v = r.vpcs.iter().find(|v| v.vpc_id == vpc.id).unwrap();
    assert_eq!(v.mirror_sessions, interfaces);
    let appliances: f64 = v.appliances.iter().map(|a| a.monthly_usd).sum();
    assert!((v.monthly_usd - appliances - interfaces as f64 * session).abs() < 0.05, "{v:?}");

    // What garrison mirrors, and to which appliance.
    let check = |rs: &garrison_model::snapshot::RegionSnapshot| {
        let ours = |tags: &Tags| tagged(tags, &d.id);
        let sessions: BTreeMap<&str, &garrison_model::snapshot::MirrorSession> =
            rs.mirror_sessions.iter().filter(|s| ours(&s.tags)).map(|s| (s.interface.as_str(), s)).collect();
        let wanted: std::collections::BTreeSet<&str> =
            hosts.iter().flat_map(|h| h.interfaces.iter().map(String::as_str)).collect();
        assert_eq!(
            sessions.keys().copied().collect::<std::collections::BTreeSet<_>>(),
            wanted,
            "exactly the protected interfaces"
        );
        for h in &hosts {
            let s = sessions[h.interfaces[0].as_str()];
            let target =
                rs.mirror_targets.iter().find(|t| t.id == s.target && ours(&t.tags)).expect("garrison's target");
            let ids = rs
                .instances
                .iter()
                .find(|i| i.interfaces.first() == target.interface.as_ref())
                .expect("the target is an instance's primary interface");
            assert_eq!(ids.tags[TAG_KEY], format!("us-east-1/{}/{}/ids", vpc.id, h.zone), "{}: its zone's IDS", h.id);
            let f = rs.mirror_filters.iter().find(|f| f.id == s.filter && ours(&f.tags)).expect("garrison's filter");
            assert_eq!((f.ingress_rules, f.egress_rules), (1, 1));
            let number = if h.id == hosts[0].id { 32765 } else { 32766 };
            assert_eq!(s.number, number, "{}: after the customer's session", h.id);
        }
        sessions.values().map(|s| (s.interface.clone(), (s.id.clone(), s.target.clone()))).collect::<BTreeMap<_, _>>()
    };
    let rs = read().await;
    let first = check(&rs);
    let group = rs.security_groups.iter().find(|g| tagged(&g.tags, &d.id) && g.name.contains("IDS")).unwrap();
    assert!(
        garrison_engine::plan::planner::flatten(&group.ingress).contains(&Perm::new("udp", 4789, 4789, &vpc.cidr)),
        "{:?}",
        group.ingress
    );
    let log = t.store.audit_log(&t.account, &d.id, 100_000).await.unwrap();
    for o in t.store.owned(&d.id).await.unwrap().items.values() {
        if matches!(o.kind, K::MirrorFilter | K::MirrorTarget | K::MirrorSession) {
            let call = o.kind.facts().create_call;
            assert!(
                log.iter().any(|e| e.call == call && e.outcome == "ok" && e.key.as_deref() == Some(&o.key)),
                "{}",
                o.key
            );
        }
    }
    assert!(log.iter().filter(|e| e.call == "ec2:CreateTrafficMirrorFilterRule" && e.outcome == "ok").count() >= 2);
    assert!(reconcile(&e, &d).await.unwrap().plan.actions.is_empty(), "planning again changes nothing");

    // Each IDS appliance replaced: the sessions stay, sent to the new targets.
    assert!(
        t.store.create_option(&t.account, &option("ids_appliance_instance_type", json!("m5.xlarge"))).await.unwrap()
    );
    let r = reconcile(&e, &d).await.unwrap();
    assert!(r.outcomes.iter().all(|o| o.result == "done"), "{:#?}", r.outcomes);
    let rs = read().await;
    let second = check(&rs);
    for (eni, (id, target)) in &second {
        assert_eq!(&first[eni].0, id, "{eni}: the same session, changed in place");
        assert_ne!(&first[eni].1, target, "{eni}: to the new appliance's target");
        assert!(rs.mirror_targets.iter().all(|t| t.id != first[eni].1), "the old target is gone");
    }
    assert!(reconcile(&e, &d).await.unwrap().plan.actions.is_empty(), "converged");

    assert!(t.store.request_removal(&t.account, &d.id, "u").await.unwrap());
    let removal = uninstall(&e, &d).await.unwrap();
    assert!(removal.verified, "{:?} {:#?}", removal.remaining, removal.outcomes);
    let rs = read().await;
    assert_eq!((rs.mirror_targets.len(), rs.mirror_sessions.clone()), theirs_before, "the customer's, as they were");
    assert_eq!(rs.mirror_filters.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), [their_filter.as_str()]);
}
