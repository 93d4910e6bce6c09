//! The collector on the emulator, with no periodic resync running: CloudTrail files written
//! into the audit bucket (as CloudTrail would; the emulator never does) reach garrison
//! through S3 → SNS → SQS, and what they report is followed by a targeted reconcile — a
//! new host in an empty VPC gets a scanner, a terminated appliance is replaced, a revoked
//! rule restored, logging restarted — while a removed subscription is found by the audit
//! path check. Bad input is set aside with its reason and never blocks the queue.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::GARRISON;
use garrison_catalog::policies::ESSENTIALS;
use garrison_cloud::audit_queue::deliver_as_cloudtrail;
use garrison_cloud::emulator::Moto;
use garrison_cloud::estate::{self, EstateSpec};
use garrison_cloud::{Aws, Sessions};
use garrison_engine::Engine;
use garrison_engine::protect::reconcile;
use garrison_model::deployment::Deployment;
use garrison_store::Store;
use garrison_testkit::sample;
use serde_json::{Value, json};

const ALICE: &str = "arn:aws:sts::123456789012:assumed-role/Admin/alice";

struct World {
    aws: Aws,
    store: Store,
    d: Deployment,
    bucket: String,
    ct_region: String,
    files: usize,
}

impl World {
    /// Writes a CloudTrail file of one record into the audit bucket.
    async fn trail_file(&mut self, source: &str, name: &str, region: &str, request: Value) -> String {
        let rec = sample::record(source, name, region, GARRISON, ALICE, request, Value::Null);
        self.raw_file(sample::gzip(&[rec])).await
    }

    async fn raw_file(&mut self, body: Vec<u8>) -> String {
        self.files += 1;
        let key = sample::log_key(GARRISON, &self.ct_region, &format!("f{}", self.files));
        deliver_as_cloudtrail(&self.aws.in_region(&self.ct_region), &self.bucket, &key, body).await.unwrap();
        key
    }

    async fn report(&self) -> Value {
        let r = self.store.get_report(&self.d.account_id, &self.d.id).await.unwrap();
        r.map(|r| serde_json::to_value(r).unwrap()).unwrap_or(Value::Null)
    }

    /// The first report after `generation` for which `done` holds.
    async fn report_when(&self, generation: i64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let r = self.report().await;
            if r["generation"].as_i64().unwrap_or(0) > generation && done(&r) {
                return r;
            }
            assert!(Instant::now() < deadline, "{what}: not seen in 90 s; last report: {}", r);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn owned_id(&self, key: &str) -> String {
        self.store.owned(&self.d.id).await.unwrap().get(key).map(|o| o.id.clone()).unwrap_or_default()
    }
}

fn triggered_by(r: &Value, event: &str) -> bool {
    r["trigger"]["changes"].as_array().is_some_and(|c| c.iter().any(|c| c["event"] == event))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_follows_cloudtrail_repairs_tampering_and_sets_bad_input_aside() {
    common::init_log();
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    let sessions = Arc::new(Sessions::new(aws.clone()));
    let spec = EstateSpec::s_bare();
    let est = estate::build(&sessions, &spec).await.unwrap();
    let t = garrison_testkit::tenants::tenant(&aws, "full").await.unwrap();
    let (store, cred_id) = (t.store.clone(), t.credential.clone());
    let ct_region = "us-east-1".to_string();
    let include: Vec<Value> = spec
        .regions
        .iter()
        .map(|r| json!({"type": "region", "key": format!("/aws/{r}"), "policy": {"id": ESSENTIALS}}))
        .collect();
    let body = json!({"name": "c", "platform": {"type": "aws", "id": GARRISON, "monitor": {"enabled": true, "ct_install_region": ct_region}},
        "mode": "automatic", "credentials": [{"id": cred_id, "purpose": "discover"}], "scope": {"include": include}});
    let d: Deployment = t.deployment(&body).await.unwrap();
    let mut e = Engine::new(store.clone(), sessions.clone(), GARRISON.into());
    e.collector.wait_secs = 1;
    e.collector.audit_check = Duration::from_secs(2);
    let e = Arc::new(e);

    // Initial protection by a full reconcile; from here on only the collector runs.
    let first = reconcile(&e, &d).await.unwrap();
    assert!(first.outcomes.iter().all(|o| o.result == "done"), "{:#?}", first.outcomes);
    let bucket = first.audit_source.bucket.as_ref().unwrap().id.as_str().to_string();
    let queue = first.audit_source.queue.as_ref().unwrap().id.as_str().to_string();
    // The emulator evaluates every conditioned statement of the bucket policy (TLS only,
    // source account) as a deny of all object reads and writes, which AWS does not: the
    // policy is set aside so that the collector can read what the test delivers.
    aws.in_region(&ct_region).s3().delete_bucket_policy().bucket(&bucket).send().await.unwrap();
    let collector = tokio::spawn(garrison_engine::collect::run(e.clone()));
    let mut w =
        World { aws: aws.clone(), store: store.clone(), d: d.clone(), bucket, ct_region: ct_region.clone(), files: 0 };

    // 1. A host launched in a VPC that was empty gets a scanner, through its CloudTrail record.
    let empty = est.vpcs().find(|v| v.instances.is_empty()).expect("estate S has an empty VPC").clone();
    assert!(!first.vpcs.iter().any(|v| v.vpc_id == empty.id), "no appliance in the empty VPC yet");
    let ec2 = aws.in_region(&empty.region).ec2();
    let host = common::launch_host(&aws, &empty).await;
    let g = first.generation;
    let key = w
        .trail_file(
            "ec2",
            "RunInstances",
            &empty.region,
            json!({"instancesSet": {"items": [{"imageId": "ami-12c6146b"}]}}),
        )
        .await;
    let r = w
        .report_when(g, "a scanner for the newly inhabited VPC", |r| {
            r["vpcs"].as_array().unwrap().iter().any(|v| v["vpc_id"] == empty.id.as_str())
        })
        .await;
    assert!(triggered_by(&r, "RunInstances"), "{}", r["trigger"]);
    assert_eq!(r["trigger"]["files"], json!([format!("s3://{}/{key}", w.bucket)]));
    let regions: HashSet<&str> =
        r["plan"]["actions"].as_array().unwrap().iter().map(|a| a["region"].as_str().unwrap()).collect();
    assert_eq!(regions, HashSet::from([empty.region.as_str()]), "only the touched region is acted on");
    assert!(r["outcomes"].as_array().unwrap().iter().all(|o| o["result"] == "done"), "{}", r["outcomes"]);
    let snap = store.get_snapshot(&d.account_id, &d.id).await.unwrap().unwrap();
    assert!(snap.regions[&empty.region].instances.iter().any(|i| i.id == host), "the asset model has the new host");
    let scanner_key = format!("{}/{}/scanner", empty.region, empty.id);
    let scanner = w.owned_id(&scanner_key).await;
    assert!(scanner.starts_with("i-"), "{scanner}");

    // The same event again changes nothing.
    let g = r["generation"].as_i64().unwrap();
    w.trail_file("ec2", "RunInstances", &empty.region, json!({})).await;
    let again = w.report_when(g, "the repeated event", |r| triggered_by(r, "RunInstances")).await;
    assert_eq!(again["plan"]["actions"], json!([]), "{}", again["plan"]);

    // 2. Our appliance terminated: replaced.
    ec2.terminate_instances().instance_ids(&scanner).send().await.unwrap();
    let g = again["generation"].as_i64().unwrap();
    w.trail_file(
        "ec2",
        "TerminateInstances",
        &empty.region,
        json!({"instancesSet": {"items": [{"instanceId": scanner}]}}),
    )
    .await;
    let r = w.report_when(g, "the terminated scanner replaced", |r| triggered_by(r, "TerminateInstances")).await;
    assert!(
        r["outcomes"].as_array().unwrap().iter().any(|o| o["key"] == scanner_key.as_str() && o["result"] == "done"),
        "{}",
        r["outcomes"]
    );
    let replacement = w.owned_id(&scanner_key).await;
    assert!(replacement.starts_with("i-") && replacement != scanner, "{replacement}");
    let state = ec2.describe_instances().instance_ids(&replacement).send().await.unwrap();
    let st = state.reservations()[0].instances()[0].state().unwrap().name().unwrap().as_str().to_string();
    assert!(st == "running" || st == "pending", "{st}");

    // 3. A rule of our scan group revoked: restored.
    let sg = w.owned_id(&format!("{}/{}/scan_sg", empty.region, empty.id)).await;
    let group = ec2.describe_security_groups().group_ids(&sg).send().await.unwrap();
    let rules = group.security_groups()[0].ip_permissions_egress().to_vec();
    assert!(!rules.is_empty());
    ec2.revoke_security_group_egress().group_id(&sg).set_ip_permissions(Some(rules.clone())).send().await.unwrap();
    let g = r["generation"].as_i64().unwrap();
    w.trail_file("ec2", "RevokeSecurityGroupEgress", &empty.region, json!({"groupId": sg})).await;
    let r = w.report_when(g, "the revoked rules restored", |r| triggered_by(r, "RevokeSecurityGroupEgress")).await;
    let set_rules: Vec<&Value> =
        r["plan"]["actions"].as_array().unwrap().iter().filter(|a| a["op"] == "set_rules").collect();
    assert_eq!(set_rules.len(), 1, "{}", r["plan"]);
    assert_eq!(set_rules[0]["id"], sg.as_str());
    let group = ec2.describe_security_groups().group_ids(&sg).send().await.unwrap();
    let back: usize = group.security_groups()[0].ip_permissions_egress().iter().map(|p| p.ip_ranges().len()).sum();
    let before: usize = rules.iter().map(|p| p.ip_ranges().len()).sum();
    assert_eq!(back, before, "every revoked range is back");

    // 4. Logging stopped on our trail: restarted.
    let trail = first.audit_source.trail.as_ref().unwrap().id.as_str().to_string();
    let ct = aws.in_region(&ct_region).cloudtrail();
    ct.stop_logging().name(&trail).send().await.unwrap();
    let g = r["generation"].as_i64().unwrap();
    w.trail_file("cloudtrail", "StopLogging", &ct_region, json!({"name": trail})).await;
    w.report_when(g, "logging restarted", |r| triggered_by(r, "StopLogging")).await;
    assert_eq!(ct.get_trail_status().name(&trail).send().await.unwrap().is_logging(), Some(true));

    // 5. Our subscription removed: no event can arrive through it, the audit path check finds it.
    let sub = w.owned_id("audit/subscription").await;
    aws.in_region(&ct_region).sns().unsubscribe().subscription_arn(&sub).send().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let resub = loop {
        let now = w.owned_id("audit/subscription").await;
        if !now.is_empty() && now != sub {
            break now;
        }
        assert!(Instant::now() < deadline, "the subscription was not restored");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let topic = first.audit_source.topic.as_ref().unwrap().id.as_str();
    let subs = aws.in_region(&ct_region).sns().list_subscriptions_by_topic().topic_arn(topic).send().await.unwrap();
    assert!(subs.subscriptions().iter().any(|s| s.subscription_arn() == Some(resub.as_str())));
    let log = store.audit_log(&d.account_id, &d.id, 100_000).await.unwrap();
    assert!(log.iter().any(|l| l.call == "garrison:TamperDetected" && l.resource == sub), "tamper recorded");
    assert!(log.iter().any(|l| l.call == "sns:Subscribe" && l.outcome == "ok"));
    assert!(
        log.iter()
            .any(|l| l.call == "garrison:Reconcile" && l.message.as_deref().is_some_and(|m| m.contains("StopLogging")))
    );

    // 6. Bad input is set aside with its reason; what follows it is still applied.
    let sqs = aws.in_region(&ct_region).sqs();
    sqs.send_message().queue_url(&queue).message_body("this is not json").send().await.unwrap();
    w.raw_file(b"not gzip at all".to_vec()).await;
    let odd = json!({"Records": [{"eventName": 42}, sample::record("ec2", "CreateTags", &empty.region, GARRISON, ALICE,
        json!({"resourcesSet": {"items": [{"resourceId": host}]}}), Value::Null)]});
    w.raw_file(sample::gzip_bytes(odd.to_string().as_bytes())).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let letters = loop {
        let l = store.dead_letters(&d.account_id, &d.id, 10).await.unwrap();
        if l.len() >= 3 {
            break l;
        }
        assert!(Instant::now() < deadline, "dead letters: {l:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let reasons: Vec<&str> = letters.iter().map(|l| l.reason.as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("message body is not JSON")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("unreadable log object") && r.contains("inflate")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("1 of 2 record(s) of unknown shape")), "{reasons:?}");
    let g = w.report().await["generation"].as_i64().unwrap();
    w.trail_file("ec2", "DeleteSubnet", &empty.region, json!({"subnetId": "subnet-gone"})).await;
    w.report_when(g - 1, "a good file after bad ones", |r| {
        triggered_by(r, "CreateTags") || triggered_by(r, "DeleteSubnet")
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attrs = sqs.get_queue_attributes().queue_url(&queue).attribute_names("All".into()).send().await.unwrap();
        let n =
            |k: &str| attrs.attributes().and_then(|a| a.iter().find(|(x, _)| x.as_str() == k).map(|(_, v)| v.clone()));
        if n("ApproximateNumberOfMessages").as_deref() == Some("0")
            && n("ApproximateNumberOfMessagesNotVisible").as_deref() == Some("0")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the queue did not drain");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    collector.abort();
}
