//! bench/protect: time to protection of estate M (4 regions, 40 VPCs, 400 instances) on
//! the emulator behind a proxy adding 50 ms to every AWS call, against the critical-path
//! bound measured on the same plan; and the monthly appliance cost against the reference
//! defaults (an m3.medium scanner always on in every in-scope VPC, a c5.xlarge IDS in every
//! inhabited zone of Professional VPCs).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use garrison_catalog::policies::{ESSENTIALS, PROFESSIONAL};
use garrison_catalog::prices::{HOURS_PER_MONTH, PriceTable};
use garrison_catalog::{Catalog, cft};
use garrison_cloud::emulator::{Moto, sdk_config};
use garrison_cloud::estate::{self, EstateSpec};
use garrison_cloud::{Aws, Sessions};
use garrison_engine::Engine;
use garrison_engine::protect::reconcile;
use garrison_model::budget::{Ec2Category, ec2_floor_secs, ec2_request, ec2_resource};
use garrison_model::protection::{Op, Plan, ResKind, Spec};
use garrison_testkit::proxy::Proxy;
use serde_json::json;

use garrison_testkit::tenants::GARRISON;

/// AWS calls one create makes one after another (see garrison-cloud's writes).
fn calls(spec: &Spec) -> u32 {
    match spec.kind() {
        ResKind::Bucket => 3,
        ResKind::Topic => 2,
        ResKind::Queue | ResKind::Subscription | ResKind::BucketNotification => 1,
        ResKind::Trail => 2,
        ResKind::Detector | ResKind::FlowLogs | ResKind::Subnet | ResKind::Appliance => 1,
        ResKind::Recorder => 3,
        ResKind::InternetGateway => 2,
        ResKind::EventBus => 1,
        // PutRule, PutTargets; CreateRole, PutRolePolicy; GetQueueAttributes, SetQueueAttributes
        ResKind::EventRule | ResKind::EventRole | ResKind::QueuePolicy => 2,
        ResKind::RouteTable => 3,
        // create, four entries, find the association, replace it
        ResKind::NetworkAcl => 7,
        ResKind::SecurityGroup => match spec {
            Spec::SecurityGroup { ingress, .. } if ingress.is_empty() => 3,
            _ => 4,
        },
        // CreateTrafficMirrorFilter and a rule each way; DescribeInstances (the appliance's
        // interface), CreateTrafficMirrorTarget; CreateTrafficMirrorSession
        ResKind::MirrorFilter => 3,
        ResKind::MirrorTarget => 2,
        ResKind::MirrorSession => 1,
    }
}

/// The longest chain of dependent calls in the plan.
fn chain(plan: &Plan) -> u32 {
    depths(plan).values().copied().max().unwrap_or(0)
}

/// Calls that must come one after another before the first launch (the appliances'
/// subnets and groups): where the RunInstances bucket can start to drain.
fn before_first_launch(plan: &Plan) -> u32 {
    let d = depths(plan);
    plan.actions
        .iter()
        .filter_map(|a| match &a.op {
            Op::Create { spec: spec @ Spec::Appliance { .. }, .. } => Some(d[a.key.as_str()] - calls(spec)),
            _ => None,
        })
        .min()
        .unwrap_or(0)
}

/// Each action's depth: the calls of the longest chain that ends with it.
fn depths(plan: &Plan) -> HashMap<&str, u32> {
    let by_key: BTreeMap<&str, &garrison_model::protection::Action> =
        plan.actions.iter().map(|a| (a.key.as_str(), a)).collect();
    let mut memo: HashMap<&str, u32> = HashMap::new();
    fn depth<'a>(
        k: &'a str,
        by: &BTreeMap<&'a str, &'a garrison_model::protection::Action>,
        memo: &mut HashMap<&'a str, u32>,
    ) -> u32 {
        if let Some(d) = memo.get(k) {
            return *d;
        }
        let a = by[k];
        let own = match &a.op {
            Op::Create { spec, .. } => calls(spec),
            Op::Adopt { .. } | Op::Forget { .. } => 0,
            _ => 1,
        };
        let before =
            a.after.iter().filter(|d| by.contains_key(d.as_str())).map(|d| depth(d, by, memo)).max().unwrap_or(0);
        memo.insert(k, own + before);
        own + before
    }
    for a in &plan.actions {
        depth(&a.key, &by_key, &mut memo);
    }
    memo
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let latency =
        Duration::from_millis(std::env::var("BENCH_LATENCY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(50));
    let spec = match std::env::var("BENCH_ESTATE").as_deref() {
        Ok("S") => EstateSpec::s(),
        _ => EstateSpec::m(),
    };
    let shards: usize = std::env::var("BENCH_SHARDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let motos: Vec<Moto> = (0..shards).map(|_| Moto::start()).collect::<Result<_, _>>()?;
    let proxy = Proxy::start_sharded(&motos.iter().map(|m| m.url.clone()).collect::<Vec<_>>()).await?;
    let mut aws = Aws::from_config(sdk_config(&proxy.url, "us-east-1").await);
    // BENCH_LIMITER=off measures garrison without its AWS rate budget (the emulator has none).
    let limited = std::env::var("BENCH_LIMITER").as_deref() != Ok("off");
    if !limited {
        aws.limiter = Arc::new(garrison_cloud::limiter::Limiter::unlimited());
    }
    let sessions = Arc::new(Sessions::new(aws.clone()));
    let t = Instant::now();
    let est = estate::build(&sessions, &spec).await?;
    println!(
        "bench/protect: estate {} built in {:.1}s ({} regions, {} VPCs, {} instances)",
        spec.name,
        t.elapsed().as_secs_f64(),
        spec.regions.len(),
        spec.vpcs,
        spec.instances
    );

    // Professional in the first region, Essentials elsewhere.
    let garrison_bench::fixture::Fixture { store, d, root: root_account, dir } =
        garrison_bench::fixture::deployment(&aws, &spec, "protect", |i| if i == 0 { PROFESSIONAL } else { ESSENTIALS })
            .await?;
    let mut engine = Engine::new(store.clone(), sessions.clone(), GARRISON.into());
    engine.propagation = (1, Duration::ZERO);

    *proxy.faults.latency.lock().unwrap() = latency;
    let before = proxy.faults.requests.load(std::sync::atomic::Ordering::Relaxed);
    let t = Instant::now();
    let report = reconcile(&engine, &d).await?;
    let wall = t.elapsed();
    let total_calls = proxy.faults.requests.load(std::sync::atomic::Ordering::Relaxed) - before;
    let failed = report.outcomes.iter().filter(|o| o.result != "done").count();
    anyhow::ensure!(
        failed == 0,
        "{failed} action(s) failed: {:?}",
        report.outcomes.iter().find(|o| o.result != "done")
    );
    let log = store.audit_log(&root_account, &d.id, 1_000_000).await?;
    let writes = log.len();
    // EC2's documented budget (garrison_model::budget, the limiter's own table): each write
    // action its own bucket per region, RunInstances a resource bucket too. The floor is the
    // busiest region's slowest bucket drained from full.
    let mut by_region: BTreeMap<&str, BTreeMap<&str, u32>> = BTreeMap::new();
    for e in log.iter().filter(|e| e.call.starts_with("ec2:")) {
        *by_region.entry(e.region.as_str()).or_default().entry(&e.call["ec2:".len()..]).or_default() += 1;
    }
    let floors: BTreeMap<&str, f64> =
        by_region.iter().map(|(r, calls)| (*r, ec2_floor_secs(calls.iter().map(|(a, n)| (*a, *n))))).collect();
    let (floor_region, floor) = floors.iter().fold(("-", 0.0), |m, (r, f)| if *f > m.1 { (r, *f) } else { m });
    let budget_floor = if limited { floor } else { 0.0 };
    // The action whose bucket sets the floor.
    let slowest = by_region
        .get(floor_region)
        .and_then(|calls| {
            calls.iter().max_by(|a, b| ec2_floor_secs([(*a.0, *a.1)]).total_cmp(&ec2_floor_secs([(*b.0, *b.1)])))
        })
        .map_or("-", |(a, _)| *a);
    let busiest = by_region.values().map(|c| c.values().sum::<u32>()).max().unwrap_or(0);
    // Critical path: AssumeRole, role validation (GetRole, the attached-policy list, then
    // each policy and its version, the inline list), discovery's longest chain (a list then
    // a status), then the plan's longest chain of dependent writes.
    let full = Catalog::builtin().get("aws", "ci_full", "latest")?.clone();
    let attached = cft::split_policy(&full.policy_document, cft::MANAGED_POLICY_LIMIT).len() as u32;
    let validation = 3 + 2 * attached;
    let discovery = 2;
    let exec = chain(&report.plan);
    let bound_calls = 1 + validation + discovery + exec;
    let bound = latency * bound_calls;
    // The budget floor starts where its bucket can: the slowest bucket is the launches'
    // (RunInstances), which cannot start before the calls ahead of the first launch, and
    // its last call takes one call's time to answer.
    let ahead = if slowest == "RunInstances" { before_first_launch(&report.plan) } else { 0 };
    let launch_start = latency * (1 + validation + discovery + ahead);
    let budget_floor = if budget_floor > 0.0 { budget_floor + (launch_start + latency).as_secs_f64() } else { 0.0 };

    // A second reconcile: nothing to do, no write.
    let t2 = Instant::now();
    let again = reconcile(&engine, &d).await?;
    let second = t2.elapsed();
    anyhow::ensure!(again.plan.actions.is_empty(), "second plan not empty: {:?}", again.plan.actions.first());

    // Cost against the reference defaults on the same estate and scope.
    let prices = PriceTable::builtin();
    let hourly = |t: &str| prices.price("us-east-1", t).map(|p| p.per_hour).unwrap_or(0.0);
    let snap = store.get_snapshot(&root_account, &d.id).await?.expect("snapshot");
    let in_scope_vpcs: usize = snap.regions.values().map(|r| r.vpcs.len()).sum();
    let pro = &spec.regions[0];
    let ids_zones: usize = est
        .vpcs()
        .filter(|v| &v.region == pro)
        .map(|v| v.instances.iter().filter(|i| i.running).map(|i| i.zone.clone()).collect::<HashSet<_>>().len())
        .sum();
    let reference =
        (in_scope_vpcs as f64 * hourly("m3.medium") + ids_zones as f64 * hourly("c5.xlarge")) * HOURS_PER_MONTH;
    let ours = report.monthly_appliance_usd;
    let scanners: usize = report
        .vpcs
        .iter()
        .flat_map(|v| &v.appliances)
        .filter(|a| a.role == garrison_model::protection::Role::Scan)
        .count();
    let ids: usize = report
        .vpcs
        .iter()
        .flat_map(|v| &v.appliances)
        .filter(|a| a.role == garrison_model::protection::Role::Ids)
        .count();
    let ours_scan: f64 = report
        .vpcs
        .iter()
        .flat_map(|v| &v.appliances)
        .filter(|a| a.role == garrison_model::protection::Role::Scan)
        .map(|a| a.monthly_usd)
        .sum();
    let ref_scan = in_scope_vpcs as f64 * hourly("m3.medium") * HOURS_PER_MONTH;

    println!("\n| measure | value | baseline | ratio |\n|---|---|---|---|");
    println!(
        "| time to protection, {} ms per call ({} AWS calls, {} writes, {} actions) | {:.2} s | critical path {} calls = {:.2} s | {:.1}x the bound (target <= 3x) |",
        latency.as_millis(),
        total_calls,
        writes,
        report.outcomes.len(),
        wall.as_secs_f64(),
        bound_calls,
        bound.as_secs_f64(),
        wall.as_secs_f64() / bound.as_secs_f64()
    );
    println!(
        "| EC2 budget floor (each action's documented bucket drained from where it can start; slowest: {slowest} in {floor_region}) | {budget_floor:.2} s | limiter {} | garrison at {:.2}x max(bound, floor) (target <= 1.2x) |",
        if limited { "on" } else { "off (BENCH_LIMITER=off)" },
        wall.as_secs_f64() / bound.as_secs_f64().max(budget_floor)
    );
    println!("| second reconcile (nothing to do, no write) | {:.2} s | - | - |", second.as_secs_f64());
    println!(
        "| monthly appliance cost | ${ours:.0} ({scanners} scanners, {ids} IDS) | reference ${reference:.0} ({in_scope_vpcs} m3.medium, {ids_zones} c5.xlarge) | {:.0}% (target <= 40%) |",
        100.0 * ours / reference
    );
    println!("| of which scanners | ${ours_scan:.0} | ${ref_scan:.0} | {:.0}% |", 100.0 * ours_scan / ref_scan);
    println!("\n{shards} emulator process(es); the plan's longest write chain is {exec} calls");
    writes_table(&log, &by_region, &report.plan, &spec.regions[0]);

    // The cost of layouts (otis), on the same estate: every VPC of a region attached to one
    // transit gateway, one hub per region protecting the others, IDS in one zone, scanners
    // running four hours a night.
    let layouts = cost_table(&aws, &est, &spec, &d, &engine, &store, &root_account).await?;

    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("out");
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join(format!("protect-{}.json", spec.name)),
        serde_json::to_vec_pretty(&json!({
            "estate": spec.name, "latency_ms": latency.as_millis() as u64, "emulator_processes": shards,
            "wall_s": wall.as_secs_f64(), "aws_calls": total_calls, "writes": writes, "actions": report.outcomes.len(),
            "critical_path_calls": bound_calls, "critical_path_s": bound.as_secs_f64(),
            "ratio_to_bound": wall.as_secs_f64() / bound.as_secs_f64(),
            "second_reconcile_s": second.as_secs_f64(),
            "limiter": limited, "busiest_region_ec2_writes": busiest, "budget_floor_s": budget_floor, "budget_floor_region": floor_region, "budget_floor_action": slowest,
            "monthly_usd": ours, "reference_monthly_usd": reference, "cost_ratio": ours / reference,
            "scanner_monthly_usd": ours_scan, "reference_scanner_monthly_usd": ref_scan,
            "layouts": layouts,
        }))?,
    )?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The fewest writes the AWS APIs allow for creating `spec` as garrison builds it: tags in
/// the create call (`TagSpecifications`), every ingress rule of a group in one
/// `AuthorizeSecurityGroupIngress`, every egress rule in one `AuthorizeSecurityGroupEgress`,
/// and the default allow-all egress revoked in one call; an ACL entry per call (EC2 has no
/// batch); a route table's route and association one call each.
fn fewest(spec: &Spec) -> u32 {
    match spec {
        Spec::SecurityGroup { ingress, .. } => 1 + u32::from(!ingress.is_empty()) + 2,
        Spec::NetworkAcl { .. } => 1 + 4 + 1,
        Spec::RouteTable { .. } => 3,
        Spec::InternetGateway { .. } => 2,
        Spec::MirrorFilter { .. } => 3,
        _ => calls(spec),
    }
}

/// Writes by operation (all regions, the busiest region, the action's bucket and its floor
/// there) and per protected VPC (Professional and Essentials apart) against the fewest calls
/// the APIs allow for what the plan built in it.
fn writes_table(
    log: &[garrison_store::AuditEntry],
    by_region: &BTreeMap<&str, BTreeMap<&str, u32>>,
    plan: &Plan,
    professional_region: &str,
) {
    let mut total: BTreeMap<&str, u32> = BTreeMap::new();
    for e in log {
        *total.entry(e.call.as_str()).or_default() += 1;
    }
    let busiest = by_region.iter().max_by_key(|(_, c)| c.values().sum::<u32>()).map(|(r, c)| (*r, c));
    println!(
        "\n| write | calls | in {} | EC2 bucket (category: capacity, refill/s) | floor there |",
        busiest.map_or("-", |b| b.0)
    );
    println!("|---|---|---|---|---|");
    for (call, n) in &total {
        let action = call.strip_prefix("ec2:");
        let there = action.and_then(|a| busiest.and_then(|b| b.1.get(a))).copied().unwrap_or(0);
        let (bucket, floor) = match action {
            Some(a) => {
                let b = ec2_request(a);
                let res =
                    ec2_resource(a).map(|r| format!("; resource {}, {}/s", r.capacity, r.refill)).unwrap_or_default();
                (
                    format!("{}: {}, {}/s{res}", Ec2Category::of(a).name(), b.capacity, b.refill),
                    format!("{:.1} s", ec2_floor_secs([(a, there)])),
                )
            }
            None => ("- (its service's budget)".into(), "-".into()),
        };
        println!("| {call} | {n} | {there} | {bucket} | {floor} |");
    }
    // Per VPC: keys are region/vpc/…; the fewest writes from the plan's creates in it.
    let vpc_of = |key: &str| -> Option<(String, String)> {
        let mut parts = key.split('/');
        let (region, vpc) = (parts.next()?, parts.next()?);
        vpc.starts_with("vpc-").then(|| (region.to_string(), vpc.to_string()))
    };
    let mut actual: BTreeMap<(String, String), u32> = BTreeMap::new();
    for e in log {
        if let Some(v) = e.key.as_deref().and_then(vpc_of) {
            *actual.entry(v).or_default() += 1;
        }
    }
    let mut least: BTreeMap<(String, String), u32> = BTreeMap::new();
    for a in &plan.actions {
        if let (Op::Create { spec, .. }, Some(v)) = (&a.op, vpc_of(&a.key)) {
            *least.entry(v).or_default() += fewest(spec);
        }
    }
    println!("\n| protected VPC | VPCs | writes per VPC (mean) | fewest the APIs allow (mean) | ratio |");
    println!("|---|---|---|---|---|");
    for (name, pro) in [("Professional", true), ("Essentials", false)] {
        let vpcs: Vec<&(String, String)> = least.keys().filter(|(r, _)| (r == professional_region) == pro).collect();
        if vpcs.is_empty() {
            continue;
        }
        let n = vpcs.len() as f64;
        let ours: f64 = vpcs.iter().map(|v| f64::from(actual.get(*v).copied().unwrap_or(0))).sum::<f64>() / n;
        let min: f64 = vpcs.iter().map(|v| f64::from(least[*v])).sum::<f64>() / n;
        println!("| {name} | {} | {ours:.1} | {min:.1} | {:.2} |", vpcs.len(), ours / min);
    }
}

/// Hours a month a scanner runs in a nightly four-hour window.
const WINDOW_HOURS: f64 = 4.0 * 365.0 / 12.0;

/// One layout's monthly appliance cost (always-on appliances for the month, scanners for
/// `scan_hours`) and the in-scope VPCs it would leave unprotected (the coverage picture with
/// every appliance running).
fn layout(
    d: &garrison_model::deployment::Deployment,
    snap: &garrison_model::snapshot::Snapshot,
    options: &[garrison_model::otis::TuningOption],
    scan_hours: f64,
) -> (usize, usize, f64, u64) {
    use garrison_engine::plan::desired::Want;
    use garrison_model::protection::Role;
    use garrison_model::report::{ApplianceView, VpcView};
    let prices = PriceTable::builtin();
    let images = garrison_catalog::appliances::Images::builtin();
    let scans = garrison_engine::plan::scans::Scans::default();
    let inputs = garrison_engine::plan::Inputs {
        prices: &prices,
        images: &images,
        options,
        scans: &scans,
        appliances: &Default::default(),
    };
    let want = garrison_engine::plan::desired(d, snap, &Default::default(), &inputs);
    let (mut scanners, mut ids, mut usd) = (0, 0, 0.0);
    let mut views: BTreeMap<(String, String), Vec<ApplianceView>> = BTreeMap::new();
    for (key, w) in &want.items {
        if let Want::Build {
            region, spec: Spec::Appliance { role, vpc, zone, instance_type, .. }, running: true, ..
        } = w
        {
            let hourly = prices.price(region, instance_type).map_or(0.0, |p| p.per_hour);
            match role {
                Role::Scan => {
                    scanners += 1;
                    usd += hourly * scan_hours;
                }
                Role::Ids => {
                    ids += 1;
                    usd += hourly * HOURS_PER_MONTH;
                }
            }
            views.entry((region.clone(), vpc.clone())).or_default().push(ApplianceView {
                key: key.clone(),
                role: *role,
                zone: zone.clone(),
                instance_type: instance_type.clone(),
                instance_id: key.clone(),
                state: "running".into(),
                monthly_usd: 0.0,
            });
        }
    }
    let views: Vec<VpcView> = views
        .into_iter()
        .map(|((region, vpc_id), appliances)| VpcView {
            region,
            vpc_id,
            appliances,
            monthly_usd: 0.0,
            mirror_sessions: 0,
        })
        .collect();
    let pic = garrison_engine::coverage::picture(d, snap, &views, options);
    (scanners, ids, usd, pic["counts"]["unprotected"].as_u64().unwrap_or(u64::MAX))
}

#[allow(clippy::too_many_arguments)]
async fn cost_table(
    aws: &Aws,
    est: &garrison_cloud::estate::Estate,
    spec: &EstateSpec,
    d: &garrison_model::deployment::Deployment,
    engine: &Engine,
    store: &garrison_store::Store,
    root: &str,
) -> anyhow::Result<serde_json::Value> {
    // Connect each region's VPCs through one transit gateway.
    for region in &spec.regions {
        let ec2 = aws.in_region(region).ec2();
        let tgw = ec2.create_transit_gateway().send().await?;
        let tgw_id = tgw.transit_gateway().and_then(|t| t.transit_gateway_id()).unwrap_or_default().to_string();
        for v in est.vpcs().filter(|v| &v.region == region && !v.subnets.is_empty()) {
            ec2.create_transit_gateway_vpc_attachment()
                .transit_gateway_id(&tgw_id)
                .vpc_id(&v.id)
                .subnet_ids(&v.subnets[0].0)
                .send()
                .await?;
        }
    }
    let snap = garrison_cloud::discovery::discover(aws, &spec.regions, 0).await;
    let opt = |name: &str, scope: serde_json::Value, value: serde_json::Value| {
        garrison_model::otis::parse(&json!({"name": name, "scope": scope, "value": value})).expect("a valid option")
    };
    // One hub per region, the VPC with the most running hosts; every other inhabited VPC a spoke.
    let mut cheapest = vec![opt(
        "ids_appliances_placement",
        json!({"deployment_id": d.id}),
        json!({"policy": "automatic", "max_zones": 1}),
    )];
    let mut hubs = vec![];
    for region in &spec.regions {
        let rs = &snap.regions[region];
        let running =
            |v: &str| rs.instances.iter().filter(|i| i.vpc_id.as_deref() == Some(v) && i.state == "running").count();
        let mut inhabited: Vec<&str> = rs.vpcs.iter().map(|v| v.id.as_str()).filter(|v| running(v) > 0).collect();
        inhabited.sort_by_key(|v| std::cmp::Reverse(running(v)));
        let Some(hub) = inhabited.first() else { continue };
        hubs.push(format!("{region}/{hub}"));
        for spoke in &inhabited[1..] {
            cheapest.push(opt(
                "cross_network_protection",
                json!({"deployment_id": d.id, "vpc_key": format!("/aws/{region}/vpc/{spoke}")}),
                json!({"deployment_id": d.id, "vpc_key": format!("/aws/{region}/vpc/{hub}")}),
            ));
        }
    }
    let prices = PriceTable::builtin();
    let hourly = |t: &str| prices.price("us-east-1", t).map(|p| p.per_hour).unwrap_or(0.0);
    let mut essentials = d.clone();
    for i in &mut essentials.scope.include {
        if let Some(p) = &mut i.policy {
            p.id = ESSENTIALS.into();
        }
    }
    let mut rows = vec![];
    println!(
        "\n| scope | layout | scanners | IDS | monthly | of the reference | unprotected VPCs |\n|---|---|---|---|---|---|---|"
    );
    for (scope, dep) in [("mixed (Professional in one region)", d), ("Essentials only", &essentials)] {
        let in_scope_vpcs: usize = snap.regions.values().map(|r| r.vpcs.len()).sum();
        let pro_zones: usize = if std::ptr::eq(dep, d) {
            est.vpcs()
                .filter(|v| v.region == spec.regions[0])
                .map(|v| v.instances.iter().filter(|i| i.running).map(|i| i.zone.clone()).collect::<HashSet<_>>().len())
                .sum()
        } else {
            0
        };
        let reference =
            (in_scope_vpcs as f64 * hourly("m3.medium") + pro_zones as f64 * hourly("c5.xlarge")) * HOURS_PER_MONTH;
        println!(
            "| {scope} | reference defaults: an m3.medium scanner always on per in-scope VPC, a c5.xlarge IDS per inhabited zone of Professional VPCs | {in_scope_vpcs} | {pro_zones} | ${reference:.0} | 100% | - |"
        );
        for (name, options, hours) in [
            (
                "garrison defaults: scanners where hosts run, cheapest offered types, IDS per inhabited zone",
                vec![],
                HOURS_PER_MONTH,
            ),
            (
                "garrison cheapest: one hub per region over its transit gateway, IDS in one zone, scanners in a nightly 4-hour window",
                cheapest.clone(),
                WINDOW_HOURS,
            ),
        ] {
            let (scanners, ids, usd, unprotected) = layout(dep, &snap, &options, hours);
            let ratio = usd / reference;
            println!("| {scope} | {name} | {scanners} | {ids} | ${usd:.0} | {:.0}% | {unprotected} |", 100.0 * ratio);
            rows.push(json!({"scope": scope, "layout": name, "scanners": scanners, "ids": ids, "monthly_usd": usd,
                "reference_monthly_usd": reference, "ratio": ratio, "unprotected_vpcs": unprotected}));
        }
    }
    println!("hubs: {}", hubs.join(", "));
    println!(
        "targets: cheapest <= 40% of the reference for the mixed scope, <= 25% for Essentials only, none unprotected"
    );

    // The cheapest mixed layout applied for real: every action done, nothing unprotected.
    for o in &cheapest {
        store.create_option(root, o).await?;
    }
    let t = Instant::now();
    let applied = reconcile(engine, d).await?;
    let failed = applied.outcomes.iter().filter(|o| o.result != "done").count();
    anyhow::ensure!(
        failed == 0,
        "applying the cheapest layout: {:?}",
        applied.outcomes.iter().find(|o| o.result != "done")
    );
    let pic = garrison_engine::coverage::picture(
        d,
        &store.get_snapshot(root, &d.id).await?.expect("snapshot"),
        &applied.vpcs,
        &cheapest,
    );
    println!(
        "cheapest mixed layout applied on the emulator: {} actions in {:.1} s; coverage {}; report ${:.0} a month with every appliance running",
        applied.outcomes.len(),
        t.elapsed().as_secs_f64(),
        pic["counts"],
        applied.monthly_appliance_usd
    );
    Ok(json!(rows))
}
