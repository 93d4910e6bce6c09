//! Automatic protection end to end through the CLI, against `garrison serve` running its
//! worker and the emulator: estate M, a mixed Professional/Essentials scope with an
//! excluded subnet and host and an out-of-scope region. Manual mode first (a plan and
//! CloudFormation, nothing written), then automatic: appliances exactly where they
//! belong, group rules as the reference, the audit source wired end to end, a second
//! reconcile that writes nothing, and a delete that leaves the account as it was.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use garrison_cloud::estate::{self, EstateSpec};
use garrison_model::protection::{Perm, TAG_DEPLOYMENT, TAG_KEY};
use serde_json::{Value, json};

const ESS: &str = "A8E8B104-8F45-411D-A240-A30EA5FE25B0";
const PRO: &str = "D12D5E67-166C-474F-87AA-6F86FC9FB9BC";

fn ours(tags: &BTreeMap<String, String>, dep: &str) -> bool {
    tags.get(TAG_DEPLOYMENT).is_some_and(|d| d == dep)
}

/// Waits until the worker has written a report satisfying `done`.
fn report_when(s: &Server, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let o = garrison(s, &["deployments", "get_protection", "--deployment_id", id]);
        if o.status.success() {
            let r: Value = serde_json::from_slice(&o.stdout).unwrap();
            if done(&r) {
                return r;
            }
        }
        assert!(Instant::now() < deadline, "the worker never got to: {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estate_m_is_protected_hands_off_and_removed_cleanly() {
    let moto = garrison_cloud::emulator::Moto::start().expect("the AWS emulator is required for this test");
    let aws = garrison_cloud::Aws::from_config(moto.sdk_config("us-east-1").await);
    let spec = EstateSpec::m();
    let est = estate::build(&garrison_cloud::Sessions::new(aws.clone()), &spec).await.unwrap();
    let regions = spec.regions.clone();
    let (east, west, eu, out_of_scope) = (&regions[0], &regions[1], &regions[2], &regions[3]);
    let s = serve_env_worker(&moto_env(&moto.url));
    let (_, stack) = customer_creates_role(&s, &aws, "ci_full", "garrison-full").await;
    let cred = json_out(&garrison(
        &s,
        &[
            "credentials",
            "create_credential",
            "--name",
            "full",
            "--secrets",
            &format!(r#"{{"type": "aws_iam_role", "arn": "{}"}}"#, stack.role_arn),
        ],
    ));
    // Scope: east Professional, west Essentials (one subnet and one host excluded), eu
    // Essentials with one VPC Professional, the fourth region out of scope.
    let west_vpc =
        est.vpcs().find(|v| &v.region == west && v.instances.iter().filter(|i| i.running).count() >= 2).unwrap();
    let excluded_subnet = west_vpc.subnets[0].0.clone();
    let east_vpc = est.vpcs().find(|v| &v.region == east && v.instances.iter().any(|i| i.running)).unwrap();
    let excluded_host = east_vpc.instances.iter().find(|i| i.running).unwrap().id.clone();
    let eu_pro = est.vpcs().find(|v| &v.region == eu && !v.instances.is_empty()).unwrap();
    let scope = json!({
        "include": [
            {"type": "region", "key": format!("/aws/{east}"), "policy": {"id": PRO}},
            {"type": "region", "key": format!("/aws/{west}"), "policy": {"id": ESS}},
            {"type": "region", "key": format!("/aws/{eu}"), "policy": {"id": ESS}},
            {"type": "vpc", "key": format!("/aws/{eu}/vpc/{}", eu_pro.id), "policy": {"id": PRO}},
        ],
        "exclude": [
            {"type": "subnet", "key": format!("/aws/{west}/subnet/{excluded_subnet}")},
            {"type": "host", "key": format!("/aws/{east}/host/{excluded_host}")},
        ]
    });
    let before = garrison_cloud::discovery::discover(&aws, &regions, 0).await;

    // Manual mode: a plan and its CloudFormation, nothing written.
    let dep = json_out(&garrison(
        &s,
        &[
            "deployments",
            "create_deployment",
            "--name",
            "estate-m",
            "--mode",
            "manual",
            "--platform",
            &json!({"type": "aws", "id": "123456789012", "monitor": {"enabled": true, "ct_install_region": east}})
                .to_string(),
            "--credentials",
            &format!(r#"[{{"id": "{}", "purpose": "discover"}}]"#, cred["id"].as_str().unwrap()),
            "--scope",
            &scope.to_string(),
        ],
    ));
    let id = dep["id"].as_str().unwrap().to_string();
    let manual = report_when(&s, &id, "the manual-mode plan", |r| r["mode"] == "manual");
    assert!(manual["outcomes"].as_array().unwrap().is_empty());
    let audit = json_out(&garrison(
        &s,
        &["deployments", "list_audit_log", "--deployment_id", &id, "--query", "length(entries)"],
    ));
    assert_eq!(audit, json!(0), "manual mode writes nothing");
    let preview = json_out(&garrison(&s, &["deployments", "plan_deployment", "--deployment_id", &id]));
    let creates = preview["counts"]["create"].as_u64().unwrap();
    assert!(creates > 100, "{}", preview["counts"]);
    // The plan's cost: nothing runs yet; what is planned is priced, per VPC too.
    let cost = &preview["cost"];
    let planned = cost["planned_usd_month"].as_f64().unwrap();
    assert_eq!(
        (cost["now_usd_month"].as_f64(), cost["delta_usd_month"].as_f64()),
        (Some(0.0), Some(planned)),
        "{cost}"
    );
    let per_vpc: f64 = cost["vpcs"].as_array().unwrap().iter().map(|v| v["planned_usd_month"].as_f64().unwrap()).sum();
    assert!(planned > 0.0 && (per_vpc - planned).abs() < 0.05, "{cost}");
    // An option previewed before it is saved (scanners scaled to zero): the same creates,
    // every scanner's price less; nothing stored.
    let prices = garrison_catalog::prices::PriceTable::builtin();
    let scanners: f64 = preview["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["op"] == "create" && a["spec"]["role"] == "scan")
        .map(|a| {
            let ty = a["spec"]["instance_type"].as_str().unwrap();
            garrison_engine::plan::cost::monthly(&prices, a["region"].as_str().unwrap(), ty)
        })
        .sum();
    assert!(scanners > 0.0, "{}", preview["actions"]);
    let option = json!({"name": "scan_appliances_scaling", "scope": {"deployment_id": id},
        "value": {"policy": "constant", "num_instances": 0}});
    let dry = json_out(&garrison(&s, &["otis", "create_option", "--option", &option.to_string(), "--dry_run", "true"]));
    assert_eq!((&dry["dry_run"], &dry["deployments"][0]["deployment_id"]), (&json!(true), &json!(id)), "{dry}");
    let with = dry["deployments"][0]["cost"]["planned_usd_month"].as_f64().unwrap();
    assert!((planned - with - scanners).abs() < 0.05, "planned {planned}, with the option {with}, scanners {scanners}");
    assert_eq!(dry["deployments"][0]["counts"]["create"], preview["counts"]["create"]);
    assert_eq!(json_out(&garrison(&s, &["otis", "list_options"])), json!([]), "a dry run stores nothing");
    let cfn = json_out(&garrison(
        &s,
        &["deployments", "plan_deployment", "--deployment_id", &id, "--format", "cloudformation"],
    ));
    let templates = cfn["templates"].as_object().unwrap();
    assert!(templates.contains_key(east.as_str()) && !templates.contains_key(out_of_scope.as_str()));
    let east_resources = templates[east.as_str()]["Resources"].as_object().unwrap();
    assert!(east_resources.values().any(|r| r["Type"] == "AWS::CloudTrail::Trail"));
    assert!(east_resources.values().filter(|r| r["Type"] == "AWS::EC2::Instance").count() >= 2);
    // The event feed in the templates: each in-scope region's rule, with the pattern
    // automatic mode puts (compared below with what it put), forwarding to the bus in east.
    let rule_of = |region: &str| -> Value {
        templates[region]["Resources"]
            .as_object()
            .unwrap()
            .values()
            .find(|r| {
                r["Type"] == "AWS::Events::Rule"
                    && r["Properties"].get("EventBusName").is_none()
                    && !r["Properties"]["Name"].as_str().is_some_and(|n| n.ends_with("-findings"))
            })
            .unwrap_or_else(|| panic!("{region}: no feed rule"))["Properties"]
            .clone()
    };
    let cfn_pattern = rule_of(east)["EventPattern"].clone();
    assert!(east_resources.values().any(|r| r["Type"] == "AWS::Events::EventBus"));
    for region in [east, west, eu] {
        assert_eq!(rule_of(region)["EventPattern"], cfn_pattern, "{region}: one pattern");
    }
    let west_target = &rule_of(west)["Targets"][0];
    assert!(
        west_target["Arn"]
            .as_str()
            .is_some_and(|a| a.starts_with(&format!("arn:aws:events:{east}:123456789012:event-bus/garrison-feed-"))),
        "{west_target}"
    );
    assert!(west_target["RoleArn"].as_str().is_some_and(|a| a.contains(":role/garrison-feed-")), "{west_target}");
    let queue_policy = east_resources
        .values()
        .find(|r| r["Type"] == "AWS::SQS::QueuePolicy")
        .map(|r| r["Properties"]["PolicyDocument"]["Statement"].clone())
        .unwrap();
    assert!(
        queue_policy.as_array().unwrap().iter().any(|st| st["Sid"] == "FromTheEventFeedRuleOnly"),
        "{queue_policy}"
    );
    let bad = garrison(&s, &["deployments", "plan_deployment", "--deployment_id", &id, "--format", "yaml"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("\"field\": \"format\""),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // Automatic: the worker protects the account hands-off.
    let t = Instant::now();
    json_out(&garrison(&s, &["deployments", "update_deployment", "--deployment_id", &id, "--mode", "automatic"]));
    let report = report_when(&s, &id, "automatic protection", |r| r["mode"] == "automatic");
    let took = t.elapsed();
    let failed: Vec<&Value> = report["outcomes"].as_array().unwrap().iter().filter(|o| o["result"] != "done").collect();
    assert!(failed.is_empty(), "{failed:#?}");
    let st = json_out(&garrison(&s, &["deployments", "get_deployment", "--deployment_id", &id, "--query", "status"]));
    assert_eq!(st["status"], "ok", "{st}");
    // Each VPC's cost in the report; together the report's total.
    let vpc_total: f64 = report["vpcs"].as_array().unwrap().iter().map(|v| v["monthly_usd"].as_f64().unwrap()).sum();
    let total = report["monthly_appliance_usd"].as_f64().unwrap();
    assert!(total > 0.0 && (vpc_total - total).abs() < 0.05, "{vpc_total} vs {total}");
    eprintln!("estate M protected in {took:?}: {} actions", report["outcomes"].as_array().unwrap().len());
    // Automatic mode put the rule manual mode's template describes.
    for region in [east, west, eu] {
        let rules = aws.in_region(region).events().list_rules().name_prefix("garrison-feed-").send().await.unwrap();
        let calls = rules.rules().iter().find(|r| r.name().is_some_and(|n| !n.ends_with("-findings"))).unwrap();
        let put: Value = serde_json::from_str(calls.event_pattern().unwrap()).unwrap();
        assert_eq!(put, cfn_pattern, "{region}: the template's pattern is the one put");
    }

    let snap = garrison_cloud::discovery::discover(&aws, &regions, 0).await;
    let mut found: BTreeMap<String, (usize, BTreeSet<String>)> = BTreeMap::new();
    for rs in snap.regions.values() {
        for i in rs.instances.iter().filter(|i| ours(&i.tags, &id)) {
            let e = found.entry(i.vpc_id.clone().unwrap()).or_default();
            match i.tags[TAG_KEY].rsplit('/').next().unwrap() {
                "scanner" => e.0 += 1,
                "ids" => assert!(e.1.insert(i.zone.clone()), "one IDS per zone"),
                other => panic!("unexpected appliance {other}"),
            }
        }
    }
    for v in est.vpcs() {
        let counted: Vec<_> =
            v.instances.iter().filter(|i| i.running && i.subnet != excluded_subnet && i.id != excluded_host).collect();
        let (scanners, ids) = found.get(&v.id).cloned().unwrap_or_default();
        if &v.region == out_of_scope {
            assert_eq!((scanners, ids.len()), (0, 0), "{}: out of scope, untouched", v.id);
            continue;
        }
        assert_eq!(scanners, usize::from(!counted.is_empty()), "{}: one scanner where hosts run", v.id);
        let pro = &v.region == east || v.id == eu_pro.id;
        let zones: BTreeSet<String> =
            if pro { counted.iter().map(|i| i.zone.clone()).collect() } else { BTreeSet::new() };
        assert_eq!(ids, zones, "{}: one IDS per inhabited zone, Professional only", v.id);
    }
    let rs = &snap.regions[out_of_scope.as_str()];
    assert!(rs.subnets.iter().all(|x| !ours(&x.tags, &id)) && rs.security_groups.iter().all(|x| !ours(&x.tags, &id)));
    // Empty VPCs get nothing at all.
    for v in est.vpcs().filter(|v| v.instances.is_empty()) {
        let rs = &snap.regions[v.region.as_str()];
        assert!(rs.subnets.iter().all(|x| x.vpc_id != v.id || !ours(&x.tags, &id)), "{}: empty VPC untouched", v.id);
    }
    // Group rules exactly as the reference.
    let rs = &snap.regions[east.as_str()];
    let sg = |what: &str| {
        rs.security_groups
            .iter()
            .find(|g| g.tags.get(TAG_KEY) == Some(&format!("{east}/{}/{what}", east_vpc.id)))
            .unwrap()
    };
    let flat = |r| garrison_engine::plan::planner::flatten(r);
    let mut scan_egress = vec![
        Perm::new("tcp", 22, 22, "0.0.0.0/0"),
        Perm::new("tcp", 53, 53, "0.0.0.0/0"),
        Perm::new("udp", 53, 53, "0.0.0.0/0"),
        Perm::new("tcp", 80, 80, "0.0.0.0/0"),
        Perm::new("tcp", 443, 443, "0.0.0.0/0"),
        Perm::new("-1", 0, 0, &east_vpc.cidr),
    ];
    scan_egress.sort();
    assert!(flat(&sg("scan_sg").ingress).is_empty());
    assert_eq!(flat(&sg("scan_sg").egress), scan_egress);
    let mut ids_in = vec![Perm::new("tcp", 7777, 7777, &east_vpc.cidr), Perm::new("tcp", 443, 443, &east_vpc.cidr)];
    ids_in.sort();
    assert_eq!(flat(&sg("ids_sg").ingress), ids_in);
    let ids_out = flat(&sg("ids_sg").egress);
    assert_eq!(ids_out.len(), 12);
    assert!(ids_out.contains(&Perm::new("tcp", 4138, 4138, "204.110.218.96/27")));
    assert!(ids_out.contains(&Perm::new("udp", 53, 53, "8.8.8.8/32")));

    // The audit source is wired end to end: a CloudTrail file in the bucket reaches the
    // collector in `serve` through S3 → SNS → SQS and sets off a targeted reconcile.
    let bucket = report["audit_source"]["bucket"]["id"].as_str().unwrap();
    assert!(report["audit_source"]["queue"]["id"].as_str().unwrap().starts_with("http"));
    assert_eq!(report["audit_source"]["trail"]["adopted"], false);
    let ct = aws.in_region(east);
    // The emulator evaluates any bucket-policy statement whose condition it cannot read
    // (aws:SourceAccount, aws:SecureTransport) as a deny of every object read and write, so
    // the policy is set aside while CloudTrail's delivery is simulated and put back after.
    let policy = ct.s3().get_bucket_policy().bucket(bucket).send().await.unwrap().policy().unwrap().to_string();
    assert!(policy.contains("cloudtrail.amazonaws.com") && policy.contains("DenyInsecureTransport"), "{policy}");
    ct.s3().delete_bucket_policy().bucket(bucket).send().await.unwrap();
    let host = &east_vpc.instances[0].id;
    let record = garrison_testkit::sample::record(
        "ec2",
        "CreateTags",
        east,
        &est.accounts[0].account,
        "arn:aws:sts::123456789012:assumed-role/Admin/alice",
        json!({"resourcesSet": {"items": [{"resourceId": host}]}, "tagSet": {"items": [{"key": "team", "value": "a"}]}}),
        Value::Null,
    );
    let key = garrison_testkit::sample::log_key(&est.accounts[0].account, east, "cli");
    garrison_cloud::audit_queue::deliver_as_cloudtrail(&ct, bucket, &key, garrison_testkit::sample::gzip(&[record]))
        .await
        .unwrap();
    let generation = report["generation"].as_i64().unwrap();
    let reacted = report_when(&s, &id, "a reconcile after the CloudTrail file", |r| {
        r["generation"].as_i64().unwrap() > generation && r["trigger"]["files"].to_string().contains(&key)
    });
    assert_eq!(reacted["trigger"]["changes"], json!([{"region": east, "target": "instances", "event": "CreateTags"}]));
    assert_eq!(reacted["plan"]["actions"], json!([]), "a tag on a customer host changes nothing to do");
    ct.s3().put_bucket_policy().bucket(bucket).policy(&policy).send().await.unwrap();

    // A second reconcile plans nothing and makes no AWS write.
    let writes = json_out(&garrison(
        &s,
        &["deployments", "list_audit_log", "--deployment_id", &id, "--limit", "100000", "--query", "length(entries)"],
    ));
    let generation = reacted["generation"].as_i64().unwrap();
    json_out(&garrison(&s, &["deployments", "update_deployment", "--deployment_id", &id, "--name", "estate-m-2"]));
    let again = report_when(&s, &id, "a second reconcile", |r| r["generation"].as_i64().unwrap() > generation);
    assert_eq!(again["plan"]["actions"], json!([]), "{}", again["plan"]);
    let writes_after = json_out(&garrison(
        &s,
        &["deployments", "list_audit_log", "--deployment_id", &id, "--limit", "100000", "--query", "length(entries)"],
    ));
    assert_eq!(writes, writes_after, "no AWS write");
    let preview =
        json_out(&garrison(&s, &["deployments", "plan_deployment", "--deployment_id", &id, "--query", "actions"]));
    assert_eq!(preview, json!([]));

    // Logging stopped on garrison's trail is started again at the next reconcile.
    let trail = report["audit_source"]["trail"]["id"].as_str().unwrap().to_string();
    ct.cloudtrail().stop_logging().name(&trail).send().await.unwrap();
    let generation = again["generation"].as_i64().unwrap();
    json_out(&garrison(&s, &["deployments", "update_deployment", "--deployment_id", &id, "--name", "estate-m-3"]));
    let third =
        report_when(&s, &id, "a reconcile after logging stopped", |r| r["generation"].as_i64().unwrap() > generation);
    assert_eq!(third["plan"]["actions"][0]["op"], "start", "{}", third["plan"]);
    let st = ct.cloudtrail().get_trail_status().name(&trail).send().await.unwrap();
    assert_eq!(st.is_logging(), Some(true));

    // /metrics (Prometheus text) counts what happened: AWS calls by service and outcome,
    // full and targeted reconciles, the collector's messages and their lag, deployments by status.
    let m = reqwest::get(format!("{}/metrics", s.url)).await.unwrap();
    assert!(m.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = m.text().await.unwrap();
    let value = |prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
            .sum()
    };
    assert!(
        value("garrison_aws_calls_total{service=\"ec2\",operation=\"RunInstances\",outcome=\"ok\"}") >= 40.0,
        "{text}"
    );
    assert!(value("garrison_aws_calls_total{service=\"s3\"") > 0.0, "{text}");
    assert!(value("garrison_reconcile_duration_seconds_count{kind=\"full\",outcome=\"ok\"}") >= 3.0, "{text}");
    assert!(value("garrison_reconcile_duration_seconds_count{kind=\"targeted\",outcome=\"ok\"}") >= 1.0, "{text}");
    assert!(value("garrison_runs_total{reason=\"converged\",retry=\"resync\"}") >= 3.0, "{text}");
    assert!(value("garrison_collector_messages_total{outcome=\"applied\"}") >= 1.0, "{text}");
    assert!(value("garrison_collector_lag_seconds_count") >= 1.0, "{text}");
    assert_eq!(value("garrison_deployments{status=\"ok\"}"), 1.0, "{text}");
    assert!(!text.contains(&id), "no deployment id in the metrics");

    // Delete: everything garrison made goes, the customer's account describes as before.
    assert!(garrison(&s, &["deployments", "delete_deployment", "--deployment_id", &id]).status.success());
    let gone = garrison(&s, &["deployments", "get_deployment", "--deployment_id", &id]);
    assert_eq!(gone.status.code(), Some(1), "the deployment leaves the API at once");
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let r = json_out(&garrison(&s, &["deployments", "list_removals", "--query", "length(removals)"]));
        if r == json!(0) {
            break;
        }
        assert!(Instant::now() < deadline, "the removal never completed");
        std::thread::sleep(Duration::from_millis(500));
    }
    let after = garrison_cloud::discovery::discover(&aws, &regions, 0).await;
    for rs in after.regions.values() {
        assert!(rs.instances.iter().all(|i| !ours(&i.tags, &id) || i.state == "terminated"));
        assert!(rs.subnets.iter().all(|x| !ours(&x.tags, &id)));
        assert!(rs.security_groups.iter().all(|x| !ours(&x.tags, &id)));
        assert!(rs.route_tables.iter().all(|x| !ours(&x.tags, &id)));
        assert!(rs.network_acls.iter().all(|x| !ours(&x.tags, &id)));
        assert!(rs.internet_gateways.iter().all(|x| !ours(&x.tags, &id)));
        assert!(rs.flow_logs.iter().all(|x| !ours(&x.tags, &id)));
        assert!(rs.detectors.iter().all(|x| !ours(&x.tags, &id)));
        assert!(rs.trails.iter().all(|t| !t.name.starts_with("garrison-")), "{:?}", rs.trails);
    }
    assert!(ct.s3().head_bucket().bucket(bucket).send().await.is_err(), "the audit bucket is gone");
    assert_eq!(after.customer_view(), before.customer_view(), "the customer's resources describe exactly as before");
    // The audit log outlives the deployment.
    let log = json_out(&garrison(&s, &["deployments", "list_audit_log", "--deployment_id", &id, "--limit", "100000"]));
    let calls: BTreeSet<&str> =
        log["entries"].as_array().unwrap().iter().map(|e| e["call"].as_str().unwrap()).collect();
    for c in [
        "ec2:RunInstances",
        "ec2:TerminateInstances",
        "cloudtrail:CreateTrail",
        "cloudtrail:DeleteTrail",
        "s3:DeleteBucket",
    ] {
        assert!(calls.contains(c), "{c} in {calls:?}");
    }
}
