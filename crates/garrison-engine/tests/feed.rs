//! The event feed on the emulator: garrison's rules on each in-scope region's default bus
//! forward the management events it acts on to its bus in the install region, whose rule
//! sends them to the audit queue. The test puts each event on the default bus of the region
//! where the call happened, as EventBridge does for every call a trail records (the emulator
//! never does), and the emulator routes it through garrison's rules. A host started in an
//! empty VPC of another region gets its scanner with no log file and no resync; the same
//! call arriving later in a log file is not applied again; removal takes the feed away.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::GARRISON;
use garrison_cloud::audit_queue::{self, deliver_as_cloudtrail, deliver_as_eventbridge};
use garrison_cloud::emulator::Moto;
use garrison_cloud::estate::{self, EstateSpec};
use garrison_cloud::{Aws, Sessions};
use garrison_engine::plan::desired::keys;
use garrison_engine::protect::reconcile;
use garrison_model::protection::{FEED_SID, TAG_KEY};
use garrison_model::report::Report;
use garrison_store::Store;
use garrison_testkit::sample;
use serde_json::{Value, json};

const ALICE: &str = "arn:aws:sts::123456789012:assumed-role/Admin/alice";

async fn report_when(
    store: &Store,
    account: &str,
    id: &str,
    after: i64,
    what: &str,
    done: impl Fn(&Report) -> bool,
) -> Report {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(r) = store.get_report(account, id).await.unwrap()
            && r.generation > after
            && done(&r)
        {
            return r;
        }
        assert!(Instant::now() < deadline, "{what}: not seen in 90 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn by_event(r: &Report, event: &str) -> bool {
    r.trigger.as_ref().is_some_and(|t| t.changes.iter().any(|c| c.event == event))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_on_the_default_bus_reach_garrison_once_and_the_feed_is_removed_with_the_deployment() {
    common::init_log();
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    let sessions = Arc::new(Sessions::new(aws.clone()));
    let spec = EstateSpec::s_bare();
    let est = estate::build(&sessions, &spec).await.unwrap();
    let empty = est.vpcs().find(|v| v.instances.is_empty()).expect("estate S has an empty VPC").clone();
    // The install region is another than the empty VPC's: its events cross regions.
    let install = spec.regions.iter().find(|r| **r != empty.region).unwrap().clone();
    let t = garrison_testkit::tenants::tenant(&aws, "full").await.unwrap();
    let store = t.store.clone();
    let (d, e) = common::watched(&t, &sessions, "feed", &spec.regions, &install).await;

    // 1. The feed as built: a rule per region, the bus and its rule, the queue's permission.
    let first = reconcile(&e, &d).await.unwrap();
    assert!(first.outcomes.iter().all(|o| o.result == "done"), "{:#?}", first.outcomes);
    let feed = first.audit_source.feed.clone().expect("the report shows the feed");
    let mut regions = feed.regions.clone();
    regions.sort();
    assert_eq!(
        regions,
        spec.regions.iter().cloned().collect::<std::collections::BTreeSet<_>>().into_iter().collect::<Vec<_>>()
    );
    let bus = feed.bus.expect("the feed's bus").id;
    let owned = store.owned(&d.id).await.unwrap();
    let role_arn = owned.get(keys::FEED_ROLE).and_then(|o| o.arn.clone()).expect("a role for the other region");
    let bus_arn = owned.get(keys::FEED_BUS).and_then(|o| o.arn.clone()).unwrap();
    let queue_url = owned.get(keys::QUEUE).unwrap().id.clone();
    let queue_arn = owned.get(keys::QUEUE).and_then(|o| o.arn.clone()).unwrap();
    let pattern: Value = serde_json::from_str(&garrison_catalog::feed::pattern()).unwrap();
    for region in &spec.regions {
        let ev = aws.in_region(region).events();
        let rules = ev.list_rules().name_prefix("garrison-feed-").send().await.unwrap();
        assert_eq!(rules.rules().len(), 2, "{region}: a rule for calls and one for findings on the default bus");
        let (findings, calls): (Vec<_>, Vec<_>) =
            rules.rules().iter().partition(|r| r.name().is_some_and(|n| n.ends_with("-findings")));
        let rule = calls[0];
        assert_eq!(serde_json::from_str::<Value>(rule.event_pattern().unwrap()).unwrap(), pattern, "{region}");
        assert_eq!(findings[0].event_pattern(), Some(garrison_catalog::feed::findings_pattern().as_str()));
        let to = ev.list_targets_by_rule().rule(findings[0].name().unwrap()).send().await.unwrap();
        assert_eq!(to.targets()[0].arn(), bus_arn, "{region}: findings forward to the same bus");
        let targets = ev.list_targets_by_rule().rule(rule.name().unwrap()).send().await.unwrap();
        let target = &targets.targets()[0];
        assert_eq!(target.arn(), bus_arn, "{region}: forwards to garrison's bus");
        assert_eq!(
            target.role_arn(),
            (*region != install).then_some(role_arn.as_str()),
            "{region}: role across regions only"
        );
    }
    let ev = aws.in_region(&install).events();
    let bus_rules = ev.list_rules().event_bus_name(&bus).send().await.unwrap();
    let bus_rule = bus_rules.rules()[0].clone();
    let to_queue = ev.list_targets_by_rule().rule(bus_rule.name().unwrap()).event_bus_name(&bus).send().await.unwrap();
    assert_eq!(to_queue.targets()[0].arn(), queue_arn);
    let sqs = aws.in_region(&install).sqs();
    let attrs = sqs.get_queue_attributes().queue_url(&queue_url).attribute_names("Policy".into()).send().await.unwrap();
    let policy: Value =
        serde_json::from_str(attrs.attributes().unwrap().get(&"Policy".into()).map(String::as_str).unwrap()).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    let st = statements.iter().find(|s| s["Sid"] == FEED_SID).expect("the feed's statement");
    assert_eq!(st["Principal"], json!({"Service": "events.amazonaws.com"}));
    assert_eq!(st["Condition"]["ArnEquals"]["aws:SourceArn"], bus_rule.arn().unwrap(), "that rule only");
    assert!(statements.iter().any(|s| s["Sid"] == "FromTheAuditTopicOnly"), "the topic's statement is kept");
    let log = store.audit_log(&d.account_id, &d.id, 100_000).await.unwrap();
    for call in
        ["events:CreateEventBus", "events:PutRule", "events:PutTargets", "iam:CreateRole", "sqs:SetQueueAttributes"]
    {
        assert!(log.iter().any(|l| l.call == call && l.outcome == "ok"), "{call} in the audit log");
    }

    // 2. A host started in the empty VPC, reported only on its region's default bus.
    let bucket = first.audit_source.bucket.as_ref().unwrap().id.clone();
    aws.in_region(&install).s3().delete_bucket_policy().bucket(&bucket).send().await.unwrap();
    let collector = tokio::spawn(garrison_engine::collect::run(e.clone()));
    let host = common::launch_host(&aws, &empty).await;
    let run = sample::record(
        "ec2",
        "RunInstances",
        &empty.region,
        GARRISON,
        ALICE,
        json!({"instancesSet": {"items": [{"imageId": "ami-12c6146b"}]}}),
        json!({"instancesSet": {"items": [{"instanceId": host}]}}),
    );
    deliver_as_eventbridge(&aws, &run).await.unwrap();
    let r = report_when(&store, &d.account_id, &d.id, first.generation, "a scanner from the event", |r| {
        r.vpcs.iter().any(|v| v.vpc_id == empty.id)
    })
    .await;
    let trigger = r.trigger.clone().unwrap();
    assert!(by_event(&r, "RunInstances"), "{trigger:?}");
    assert!(trigger.files.is_empty() && trigger.events.len() == 1, "by the event, not a file: {trigger:?}");
    assert!(r.outcomes.iter().all(|o| o.result == "done"), "{:#?}", r.outcomes);
    let seen = store.feed_seen(&d.account_id, &d.id).await.unwrap();
    assert!(seen.events_ms.is_some() && seen.trail_files_ms.is_none(), "{seen:?}");

    // 3. The same call in the trail's log file minutes later, beside a new one: only the
    // new one is applied.
    let tag = sample::record(
        "ec2",
        "CreateTags",
        &empty.region,
        GARRISON,
        ALICE,
        json!({"resourcesSet": {"items": [{"resourceId": host}]}}),
        Value::Null,
    );
    let key = sample::log_key(GARRISON, &install, "both-paths");
    deliver_as_cloudtrail(&aws.in_region(&install), &bucket, &key, sample::gzip(&[run.clone(), tag])).await.unwrap();
    let again = report_when(&store, &d.account_id, &d.id, r.generation, "the log file applied", |r| {
        r.trigger.as_ref().is_some_and(|t| !t.files.is_empty())
    })
    .await;
    let t2 = again.trigger.clone().unwrap();
    assert_eq!(t2.repeated, 1, "the call delivered by both paths is left out once: {t2:?}");
    assert!(by_event(&again, "CreateTags") && !by_event(&again, "RunInstances"), "{t2:?}");
    assert!(store.feed_seen(&d.account_id, &d.id).await.unwrap().trail_files_ms.is_some());
    // A file holding only calls already applied sets off no reconcile at all.
    let key = sample::log_key(GARRISON, &install, "repeat-only");
    deliver_as_cloudtrail(&aws.in_region(&install), &bucket, &key, sample::gzip(&[run])).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = sqs.get_queue_attributes().queue_url(&queue_url).attribute_names("All".into()).send().await.unwrap();
        let n = |k: &str| a.attributes().and_then(|m| m.iter().find(|(x, _)| x.as_str() == k).map(|(_, v)| v.clone()));
        if n("ApproximateNumberOfMessages").as_deref() == Some("0")
            && n("ApproximateNumberOfMessagesNotVisible").as_deref() == Some("0")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the queue did not drain");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let last = store.get_report(&d.account_id, &d.id).await.unwrap().unwrap();
    assert_eq!(last.generation, again.generation, "no reconcile for a repeated call");

    // 4. A malformed event is set aside with its reason.
    sqs.send_message()
        .queue_url(&queue_url)
        .message_body(
            json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2", "detail": "x"}).to_string(),
        )
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let l = store.dead_letters(&d.account_id, &d.id, 10).await.unwrap();
        if l.iter().any(|l| l.reason.contains("EventBridge event: field detail")) {
            break;
        }
        assert!(Instant::now() < deadline, "dead letters: {l:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    collector.abort();

    // 5. Removed with the deployment: rules, targets, bus, role and the queue's policy.
    assert!(store.request_removal(&d.account_id, &d.id, "u").await.unwrap());
    let removal = garrison_engine::protect::uninstall(&e, &d).await.unwrap();
    assert!(removal.verified, "{removal:?}");
    for region in &spec.regions {
        let ev = aws.in_region(region).events();
        assert!(ev.list_rules().name_prefix("garrison-feed-").send().await.unwrap().rules().is_empty(), "{region}");
        assert!(ev.describe_event_bus().name(&bus).send().await.is_err() || *region != install, "bus gone");
    }
    let role_name = role_arn.rsplit('/').next().unwrap();
    assert!(aws.iam().get_role().role_name(role_name).send().await.is_err(), "role gone");
    let left = garrison_testkit::tenants::leftovers(&aws, &spec.regions, &d.id).await;
    assert!(left.ids().is_empty(), "left behind: {:?}", left.ids());
    let log = store.audit_log(&d.account_id, &d.id, 100_000).await.unwrap();
    for call in ["events:RemoveTargets", "events:DeleteRule", "events:DeleteEventBus", "iam:DeleteRole"] {
        assert!(log.iter().any(|l| l.call == call && l.outcome == "ok"), "{call} in the audit log");
    }
}

/// The VPCs of a deployment scoped by tag follow their tags through the event feed: a VPC
/// tagged after the fact gains its scanner within seconds of the `CreateTags` event, one
/// whose tag is taken away loses it after `DeleteTags`; the untagged VPC gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vpc_tagged_after_the_fact_gains_its_appliances_through_the_event_feed() {
    common::init_log();
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    let sessions = Arc::new(Sessions::new(aws.clone()));
    let spec = EstateSpec::s_bare();
    let est = estate::build(&sessions, &spec).await.unwrap();
    let first = est.vpcs().find(|v| !v.instances.is_empty()).unwrap().clone();
    let region = first.region.clone();
    let others: Vec<_> = est.vpcs().filter(|v| v.region == region && v.id != first.id).cloned().collect();
    let later = others.first().expect("estate S has two VPCs per region").clone();
    if later.instances.is_empty() {
        common::launch_host(&aws, &later).await;
    }
    let ec2 = aws.in_region(&region).ec2();
    let tag = |k: &str, v: &str| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
    ec2.create_tags().resources(&first.id).tags(tag("garrison:protect", "true")).send().await.unwrap();
    // The same key with another value does not count.
    for v in &others[1..] {
        ec2.create_tags().resources(&v.id).tags(tag("garrison:protect", "false")).send().await.unwrap();
    }
    let t = garrison_testkit::tenants::tenant(&aws, "tagged").await.unwrap();
    let store = t.store.clone();
    let key = format!("/aws/{region}/tag/garrison:protect=true");
    let (d, e) = common::watched_with(&t, &sessions, "by-tag", vec![common::include("tag", &key)], &region).await;
    let scanned = |r: &Report, vpc: &str| {
        r.vpcs.iter().any(|v| v.vpc_id == vpc && v.appliances.iter().any(|a| a.running() && !a.instance_id.is_empty()))
    };

    // 1. The tagged VPC only.
    let r = reconcile(&e, &d).await.unwrap();
    assert!(r.outcomes.iter().all(|o| o.result == "done"), "{:#?}", r.outcomes);
    assert!(scanned(&r, &first.id), "{:#?}", r.vpcs);
    assert_eq!(r.vpcs.len(), 1, "only the tagged VPC: {:#?}", r.vpcs);
    assert_eq!((r.scope[0].key.as_str(), r.scope[0].vpcs), (key.as_str(), 1), "counted under the tag item");
    assert!(r.audit_source.feed.as_ref().is_some_and(|f| f.regions == [region.clone()]), "the tag's region is fed");

    // 2. Tagged later: the CreateTags event on the region's default bus sets it off.
    let collector = tokio::spawn(garrison_engine::collect::run(e.clone()));
    ec2.create_tags().resources(&later.id).tags(tag("garrison:protect", "true")).send().await.unwrap();
    let tagged_at = Instant::now();
    let items = |id: &str| {
        json!({"resourcesSet": {"items": [{"resourceId": id}]},
        "tagSet": {"items": [{"key": "garrison:protect", "value": "true"}]}})
    };
    let ev = sample::record("ec2", "CreateTags", &region, GARRISON, ALICE, items(&later.id), Value::Null);
    deliver_as_eventbridge(&aws, &ev).await.unwrap();
    let r2 = report_when(&store, &d.account_id, &d.id, r.generation, "the scanner of the tagged VPC", |r| {
        scanned(r, &later.id)
    })
    .await;
    let took = tagged_at.elapsed();
    assert!(by_event(&r2, "CreateTags"), "{:?}", r2.trigger);
    assert!(took < Duration::from_secs(30), "protected {took:?} after the tag");
    eprintln!("a VPC tagged: protected {} ms after the event", took.as_millis());
    assert_eq!(r2.scope[0].vpcs, 2);

    // 3. Untagged: its appliances go.
    ec2.delete_tags().resources(&first.id).tags(tag("garrison:protect", "true")).send().await.unwrap();
    let ev = sample::record("ec2", "DeleteTags", &region, GARRISON, ALICE, items(&first.id), Value::Null);
    deliver_as_eventbridge(&aws, &ev).await.unwrap();
    let r3 = report_when(&store, &d.account_id, &d.id, r2.generation, "the untagged VPC's scanner removed", |r| {
        !r.vpcs.iter().any(|v| v.vpc_id == first.id)
    })
    .await;
    assert!(by_event(&r3, "DeleteTags"), "{:?}", r3.trigger);
    assert!(scanned(&r3, &later.id));
    collector.abort();
    let snap = garrison_cloud::discovery::discover(&aws, std::slice::from_ref(&region), 0).await;
    let running: Vec<String> = snap.regions[&region]
        .instances
        .iter()
        .filter(|i| i.vpc_id.as_deref() == Some(first.id.as_str()) && i.tags.contains_key(TAG_KEY) && i.is_running())
        .map(|i| i.id.clone())
        .collect();
    assert!(running.is_empty(), "garrison's appliances left running in the untagged VPC: {running:?}");
}

/// GuardDuty and Inspector findings put on a region's default bus, as those services do,
/// reach garrison through the findings rule: stored with the asset they name, the same
/// finding said three times is one finding seen three times, an archived one is resolved,
/// and a malformed one or one of another account is set aside with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_on_the_default_bus_are_kept_once_with_their_asset() {
    use garrison_model::finding::{FindingStatus, Severity};
    use garrison_store::FindingFilter;
    common::init_log();
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    let sessions = Arc::new(Sessions::new(aws.clone()));
    let spec = EstateSpec::s_bare();
    let est = estate::build(&sessions, &spec).await.unwrap();
    let vpc = est.vpcs().find(|v| !v.instances.is_empty()).unwrap().clone();
    let host = vpc.instances[0].id.clone();
    let region = vpc.region.clone();
    let t = garrison_testkit::tenants::tenant(&aws, "findings").await.unwrap();
    let store = t.store.clone();
    let (d, e) = common::watched(&t, &sessions, "findings", &spec.regions, &spec.regions[0]).await;
    let r = reconcile(&e, &d).await.unwrap();
    assert!(r.outcomes.iter().all(|o| o.result == "done"), "{:#?}", r.outcomes);
    // A webhook subscribed to findings opened and resolved: what the collector stores is owed
    // to it (the delivery itself is tested in garrison-api's notify.rs).
    let hook = garrison_model::notify::parse_connection(
        &json!({"name": "hook", "type": "webhook", "target_url": "https://hooks.example.com/findings"}),
        false,
    )
    .unwrap();
    let (conn, _) = store.create_connection(&d.account_id, hook, "u").await.unwrap();
    for kind in ["findings/opened", "findings/resolved"] {
        let sub = garrison_model::notify::parse_subscription(
            &json!({"name": kind, "class": "event", "notification_type": kind,
                    "subscribers": [{"subscriber": conn.id, "subscriber_type": "connection"}]}),
            None,
        )
        .unwrap();
        store.create_subscription(&d.account_id, sub, "u").await.unwrap();
    }
    let collector = tokio::spawn(garrison_engine::collect::run(e.clone()));
    let at = aws.in_region(&region);
    let gd = |severity: f64, archived: bool| {
        sample::guardduty_finding(
            GARRISON,
            &region,
            "6ab0c1d2e3f4a5b6c7d8e9f0a1b2c3d4",
            &host,
            &vpc.id,
            severity,
            archived,
            0,
        )
    };
    let list = |filter: FindingFilter| {
        let store = store.clone();
        let account = d.account_id.clone();
        async move { store.list_findings(&account, &filter, 0, 100).await.unwrap().0 }
    };
    type Done = Box<dyn Fn(&[garrison_model::finding::Finding]) -> bool + Send>;
    let until = |what: &'static str, done: Done| async move {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now = list(FindingFilter::default()).await;
            if done(&now) {
                return now;
            }
            assert!(Instant::now() < deadline, "{what}: {now:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };

    // 1. A GuardDuty finding on the host: stored with its asset key.
    audit_queue::deliver_event(&at, "aws.guardduty", "GuardDuty Finding", &gd(8.0, false)).await.unwrap();
    let got = until("the GuardDuty finding", Box::new(|f| f.len() == 1)).await;
    let f = &got[0];
    assert_eq!(f.id, "gd-6ab0c1d2e3f4a5b6c7d8e9f0a1b2c3d4");
    assert_eq!((f.severity, f.status, f.count), (Severity::High, FindingStatus::Active, 1));
    assert_eq!(f.resource.as_ref().and_then(|r| r.asset_key.clone()), Some(format!("/aws/{region}/host/{host}")));
    assert_eq!((f.aws_account.as_str(), f.deployment_id.as_str()), (GARRISON, d.id.as_str()));

    // 2. Said twice more: one finding, seen three times.
    for _ in 0..2 {
        audit_queue::deliver_event(&at, "aws.guardduty", "GuardDuty Finding", &gd(8.0, false)).await.unwrap();
    }
    until("three sightings", Box::new(|f| f.len() == 1 && f[0].count == 3)).await;

    // 3. An Inspector finding on the same host; then the GuardDuty one archived.
    let inspector =
        sample::inspector_finding(GARRISON, &region, "0f1e2d3c4b5a69788796a5b4c3d2e1f0", &host, &vpc.id, "ACTIVE");
    audit_queue::deliver_event(&at, "aws.inspector2", "Inspector2 Finding", &inspector).await.unwrap();
    audit_queue::deliver_event(&at, "aws.guardduty", "GuardDuty Finding", &gd(8.0, true)).await.unwrap();
    let got = until(
        "Inspector's, and GuardDuty's resolved",
        Box::new(|f| f.len() == 2 && f.iter().any(|x| x.status == FindingStatus::Resolved)),
    )
    .await;
    assert_eq!(got[0].id, "in-0f1e2d3c4b5a69788796a5b4c3d2e1f0", "critical first");
    assert_eq!(got[0].severity, Severity::Critical);
    let active = list(FindingFilter { status: Some(FindingStatus::Active), ..Default::default() }).await;
    assert_eq!(active.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), ["in-0f1e2d3c4b5a69788796a5b4c3d2e1f0"]);
    // Owed to the webhook: two findings opened, one resolved; the repeats told nothing.
    let owed = store.deliveries(&d.account_id, "pending", 10).await.unwrap();
    let mut told: Vec<(String, String)> = owed
        .iter()
        .map(|x| (x.notification_type.clone(), x.body["payload"]["finding"]["id"].as_str().unwrap().to_string()))
        .collect();
    told.sort();
    assert_eq!(
        told,
        [
            ("findings/opened".to_string(), "gd-6ab0c1d2e3f4a5b6c7d8e9f0a1b2c3d4".to_string()),
            ("findings/opened".to_string(), "in-0f1e2d3c4b5a69788796a5b4c3d2e1f0".to_string()),
            ("findings/resolved".to_string(), "gd-6ab0c1d2e3f4a5b6c7d8e9f0a1b2c3d4".to_string()),
        ]
    );
    assert!(owed.iter().all(|x| x.connection_id == conn.id));

    // 4. Malformed, and another account's: set aside with the reason, nothing stored.
    audit_queue::deliver_event(&at, "aws.guardduty", "GuardDuty Finding", &gd(42.0, false)).await.unwrap();
    let mut other = gd(5.0, false);
    other["accountId"] = json!("999999999999");
    other["id"] = json!("ffffffffffffffffffffffffffffffff");
    audit_queue::deliver_event(&at, "aws.guardduty", "GuardDuty Finding", &other).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let l = store.dead_letters(&d.account_id, &d.id, 10).await.unwrap();
        let says = |s: &str| l.iter().any(|x| x.reason.contains(s));
        if says("field detail.severity") && says("of account 999999999999") {
            break;
        }
        assert!(Instant::now() < deadline, "dead letters: {l:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(list(FindingFilter::default()).await.len(), 2, "nothing else stored");
    collector.abort();

    // 5. An Inspector finding whose event never came: the next full reconcile reads it back
    //    (ListFindings), keeps it and tells the webhook; the one after asks only for what
    //    changed since, and learns it was closed.
    let missed = "1a2b3c4d5e6f708192a3b4c5d6e7f809";
    let listed = |status: &str| sample::inspector_listed(GARRISON, &region, missed, &host, &vpc.id, status);
    moto.seed_inspector_findings(GARRISON, &region, &[vec![listed("ACTIVE")], vec![listed("CLOSED")]]).unwrap();
    reconcile(&e, &d).await.unwrap();
    let got = list(FindingFilter::default()).await;
    let back = got.iter().find(|f| f.id == format!("in-{missed}")).expect("read back");
    assert_eq!((back.status, back.count, back.severity), (FindingStatus::Active, 1, Severity::Critical));
    assert_eq!(back.resource.as_ref().and_then(|r| r.asset_key.clone()), Some(format!("/aws/{region}/host/{host}")));
    let owed = store.deliveries(&d.account_id, "pending", 10).await.unwrap();
    assert!(owed.iter().any(|x| x.body["payload"]["finding"]["id"] == format!("in-{missed}").as_str()), "told");
    reconcile(&e, &d).await.unwrap();
    let got = list(FindingFilter::default()).await;
    let back = got.iter().find(|f| f.id == format!("in-{missed}")).unwrap();
    assert_eq!((back.status, back.count), (FindingStatus::Resolved, 1), "closed since; a read is not a sighting");
    assert_eq!(got.len(), 3);
    // At the default pace a deployment's regions are read at most once in four minutes,
    // however often it is reconciled.
    let paced = garrison_engine::Engine::new(store.clone(), sessions.clone(), GARRISON.into());
    let first = garrison_engine::collect::backfill::inspector(&paced, &d, &aws).await;
    let second = garrison_engine::collect::backfill::inspector(&paced, &d, &aws).await;
    assert_eq!((first.regions, first.fresh), (spec.regions.len(), 0), "{first:?}");
    assert_eq!((second.regions, second.fresh, second.read), (spec.regions.len(), spec.regions.len(), 0), "{second:?}");

    // 6. Removed: the findings rules go with the feed, the findings with the deployment.
    assert!(store.request_removal(&d.account_id, &d.id, "u").await.unwrap());
    let removal = garrison_engine::protect::uninstall(&e, &d).await.unwrap();
    assert!(removal.verified, "{removal:?}");
    for region in &spec.regions {
        let rules = aws.in_region(region).events().list_rules().name_prefix("garrison-feed-").send().await.unwrap();
        assert!(rules.rules().is_empty(), "{region}: {:?}", rules.rules());
    }
    assert!(list(FindingFilter::default()).await.is_empty(), "forgotten with the deployment");
}
