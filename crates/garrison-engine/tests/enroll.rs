//! Organization enrollment on the emulator (Organizations and StackSets): an organization
//! with two units, one enrolled, one account of it excluded. A reconciliation gives each
//! enrolled account garrison's role (the StackSet's instance), a credential and a deployment
//! from the template, which then protects the account; a second run writes nothing; an
//! account created into the unit later is enrolled by the next run (the catch-up a lost
//! event relies on); an account moved out has its deployment removed (uninstalled and
//! verified), then its credential; the excluded account and the other unit get nothing.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::GARRISON;
use garrison_cloud::audit_queue::{self, deliver_as_eventbridge};
use garrison_cloud::emulator::Moto;
use garrison_cloud::{Aws, Sessions, stacksets};
use garrison_engine::enroll::reconcile as enroll;
use garrison_engine::plan::desired::keys;
use garrison_engine::protect::{reconcile, uninstall};
use garrison_model::enrollment::{EnrollmentSpec, FeedChoice, MemberState};
use garrison_model::organization::{Selection, UnitItem};
use garrison_testkit::{organization, sample};
use serde_json::{Value, json};

const ALICE: &str = "arn:aws:sts::123456789012:assumed-role/Admin/alice";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolled_unit_gets_its_accounts_protected_and_lets_them_go() {
    common::init_log();
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    let sessions = Arc::new(Sessions::new(aws.clone()));
    let org = aws.organizations();
    let root = organization::create(&aws).await.unwrap();
    let (prod, dev) =
        (organization::unit(&aws, &root, "prod").await.unwrap(), organization::unit(&aws, &root, "dev").await.unwrap());
    let a1 = organization::account(&aws, &root, &prod, "prod-a").await.unwrap();
    let excluded = organization::account(&aws, &root, &prod, "prod-excluded").await.unwrap();
    let d1 = organization::account(&aws, &root, &dev, "dev-a").await.unwrap();

    // The management account's credential: a ci_organization role in the emulator's own
    // account. First a role of another type: refused, saying what it lacks.
    let t = garrison_testkit::tenants::tenant(&aws, "mgmt").await.unwrap();
    let store = t.store.clone();
    let management = t.role_credential(&aws, "garrison-management", "ci_organization").await.unwrap();
    let spec = EnrollmentSpec {
        name: "acme".into(),
        credential_id: t.credential.clone(),
        selection: Selection {
            include: vec![UnitItem { unit: prod.clone(), children: true }],
            exclude_units: vec![],
            exclude_accounts: vec![excluded.clone()],
        },
        template: json!({"mode": "automatic",
            "platform": {"type": "aws", "monitor": {"enabled": true, "ct_install_region": "us-east-1"}},
            "scope": {"include": [common::include("region", "/aws/us-east-1")]}}),
        stack_set: "garrison-role".into(),
        event_feed: Default::default(),
    };
    let en = store.create_enrollment(&t.account, spec.clone(), "u").await.unwrap();
    // The organization runs Control Tower: its landing zone's role in the management account.
    aws.iam()
        .create_role()
        .role_name("AWSControlTowerAdmin")
        .assume_role_policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "controltower.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let e = Arc::new(garrison_engine::Engine::new(store.clone(), sessions.clone(), GARRISON.into()));
    let refused = enroll(&e, &en).await;
    assert_eq!(refused.status, "error");
    let why = refused.message.clone().unwrap_or_default();
    assert!(why.contains("not a usable ci_organization role") && why.contains("organizations:"), "{why}");
    assert!(store.list_deployments(&t.account).await.unwrap().is_empty(), "nothing done through it");
    let spec = EnrollmentSpec { credential_id: management, ..spec };
    let en = store.update_enrollment(&t.account, &en.id, en.version, spec.clone(), "u").await.unwrap();

    // 1. The enrolled account: role, credential, deployment; the others left out, saying why.
    let st = enroll(&e, &en).await;
    assert_eq!(st.status, "ok", "{:?}", st.message);
    assert_eq!(st.members.len(), 1, "{:?}", st.members);
    let m = &st.members[0];
    assert_eq!((m.aws_account.as_str(), m.state), (a1.as_str(), MemberState::Enrolled));
    let why = |a: &str| st.excluded.iter().find(|x| x.aws_account == a).map(|x| x.why.clone());
    assert_eq!(why(&excluded).as_deref(), Some("excluded_account"));
    assert_eq!(why(&d1).as_deref(), Some("outside_units"));
    assert_eq!(why("123456789012").as_deref(), Some("management"));
    let d = store.get_deployment(&t.account, m.deployment_id.as_ref().unwrap()).await.unwrap().unwrap();
    assert_eq!((d.platform.id.as_str(), d.name.as_str()), (a1.as_str(), format!("acme {a1}").as_str()));
    assert!(d.is_control_tower, "made in a Control Tower organization, and says so");
    let cred = store.get_credential(&t.account, m.credential_id.as_ref().unwrap()).await.unwrap().unwrap();
    assert_eq!(cred.secrets.arn, format!("arn:aws:iam::{a1}:role/garrison-ci-full"));
    let placed: BTreeSet<String> =
        stacksets::instances(&aws, "garrison-role").await.unwrap().into_iter().map(|i| i.account).collect();
    assert!(placed.contains(&a1) && !placed.contains(&d1), "the role reaches the enrolled unit only: {placed:?}");
    // The deployment protects its account through that role (the worker's run).
    let r = reconcile(&e, &d).await.unwrap();
    assert!(r.outcomes.iter().all(|o| o.result == "done") && !r.outcomes.is_empty(), "{:#?}", r.outcomes);
    assert!(r.audit_source.trail.as_ref().is_some_and(|t| t.id.starts_with("garrison-")), "its own audit source");
    // Its lifecycle feed in the management account: the rule matches the lifecycle events
    // and sends them to the queue, whose policy admits that rule only.
    let feed = st.events.clone().expect("the lifecycle feed is set up");
    let ev = aws.events();
    let rule = ev.describe_rule().name(en.feed_name()).send().await.unwrap();
    assert_eq!(rule.event_pattern(), Some(garrison_catalog::feed::lifecycle_pattern().as_str()));
    let targets = ev.list_targets_by_rule().rule(en.feed_name()).send().await.unwrap();
    assert!(targets.targets()[0].arn().ends_with(&en.feed_name()), "{:?}", targets.targets());
    let policy = aws
        .sqs()
        .get_queue_attributes()
        .queue_url(&feed.queue_url)
        .attribute_names("Policy".into())
        .send()
        .await
        .unwrap();
    let policy = policy.attributes().unwrap().get(&"Policy".into()).cloned().unwrap_or_default();
    assert!(policy.contains(&feed.rule_arn) && policy.contains("events.amazonaws.com"), "{policy}");
    store.set_enrollment_status(&en.id, &st).await.unwrap();

    // 2. Nothing changed: nothing written.
    let en = store.get_enrollment(&t.account, &en.id).await.unwrap().unwrap();
    let creds_before = store.list_credentials(&t.account).await.unwrap().len();
    let again = enroll(&e, &en).await;
    assert_eq!(again, en.status, "a second run changes nothing");
    assert_eq!(store.list_deployments(&t.account).await.unwrap().len(), 1);
    assert_eq!(store.list_credentials(&t.account).await.unwrap().len(), creds_before);

    // 2b. The StackSet holds an older role (an earlier release's): the next pass updates it
    // to the catalog's, and the members' deployments are due at once (each run validates
    // its role before it plans); the pass after writes nothing again.
    let cf = aws.cloudformation();
    let template = |aws: &Aws| {
        let cf = aws.cloudformation();
        async move {
            let d = cf.describe_stack_set().stack_set_name("garrison-role").send().await.unwrap();
            serde_json::from_str::<serde_json::Value>(d.stack_set().unwrap().template_body().unwrap()).unwrap()
        }
    };
    let current = template(&aws).await;
    let mut older = current.clone();
    older["Description"] = json!("garrison role ci_full 2026-01-01");
    older["Resources"]["GarrisonRole"]["Properties"]["Policies"] = json!([]);
    cf.update_stack_set().stack_set_name("garrison-role").template_body(older.to_string()).send().await.unwrap();
    let lease = store.claim_next("w", 1, 60_000, 10).await.unwrap().pop().expect("the member's deployment");
    let version = store.get_deployment(&t.account, &d.id).await.unwrap().unwrap().version;
    assert!(store.finish_lease(&lease, "w", version, i64::MAX / 2).await.unwrap());
    assert!(store.claim_next("w", 2, 60_000, 10).await.unwrap().is_empty(), "nothing due before the upgrade");
    let upgraded = enroll(&e, &en).await;
    let role = e.catalog.get("aws", "ci_full", "latest").unwrap();
    assert_eq!(upgraded.role, Some(format!("ci_full {}", role.version)));
    assert_eq!(upgraded.status, "ok", "{:?}", upgraded.message);
    assert_eq!(template(&aws).await, current, "the StackSet holds the catalog's role again");
    let due = store.claim_next("w", 3, 60_000, 10).await.unwrap();
    assert_eq!(due.iter().map(|l| l.deployment_id.as_str()).collect::<Vec<_>>(), [d.id.as_str()], "re-validated");
    let log = store.audit_log(&t.account, &en.id, 1000).await.unwrap();
    assert_eq!(log.iter().filter(|l| l.call == "cloudformation:UpdateStackSet" && l.outcome == "ok").count(), 1);
    store.set_enrollment_status(&en.id, &upgraded).await.unwrap();
    let en = store.get_enrollment(&t.account, &en.id).await.unwrap().unwrap();
    assert_eq!(enroll(&e, &en).await, en.status, "upgraded: nothing more to write");

    // 2c. The template changes (Professional instead of Essentials): the member's deployment
    // is brought to it by the next pass, and only once.
    let en = store.get_enrollment(&t.account, &en.id).await.unwrap().unwrap();
    let before = store.get_deployment(&t.account, &d.id).await.unwrap().unwrap();
    let mut template = en.template.clone();
    template["scope"]["include"][0]["policy"]["id"] = json!(garrison_catalog::policies::PROFESSIONAL);
    let spec = EnrollmentSpec { template, ..spec };
    let en = store.update_enrollment(&t.account, &en.id, en.version, spec.clone(), "u").await.unwrap();
    let st = enroll(&e, &en).await;
    assert_eq!(st.status, "ok", "{:?}", st.message);
    let after = store.get_deployment(&t.account, &d.id).await.unwrap().unwrap();
    let policy = after.scope.include[0].policy.as_ref().unwrap().id.to_ascii_uppercase();
    assert_eq!(policy, garrison_catalog::policies::PROFESSIONAL.to_ascii_uppercase());
    assert_eq!(after.version, before.version + 1);
    assert_eq!(st.members[0].template_version, Some(en.version));
    store.set_enrollment_status(&en.id, &st).await.unwrap();
    let en = store.get_enrollment(&t.account, &en.id).await.unwrap().unwrap();
    assert_eq!(enroll(&e, &en).await, en.status, "brought to the template: nothing more");
    assert_eq!(store.get_deployment(&t.account, &d.id).await.unwrap().unwrap().version, after.version);
    let d = after;

    // 3. An account created into the unit (its event lost): enrolled by the next run.
    let late = organization::account(&aws, &root, &prod, "prod-late").await.unwrap();
    let st = enroll(&e, &en).await;
    // While the StackSet placed its role, the status said so (the loop then records the end).
    let meanwhile = store.get_enrollment(&t.account, &en.id).await.unwrap().unwrap().status;
    let waiting = meanwhile.members.iter().find(|m| m.aws_account == late).expect("the new account, pending");
    assert_eq!(waiting.state, MemberState::Pending);
    assert!(waiting.reason.as_deref().is_some_and(|r| r.contains("StackSet garrison-role")), "{waiting:?}");
    assert!(meanwhile.members.iter().any(|m| m.aws_account == a1 && m.state == MemberState::Enrolled));
    store.set_enrollment_status(&en.id, &st).await.unwrap();
    let enrolled: BTreeSet<&str> =
        st.members.iter().filter(|m| m.state == MemberState::Enrolled).map(|m| m.aws_account.as_str()).collect();
    assert_eq!(enrolled, BTreeSet::from([a1.as_str(), late.as_str()]));

    // 4. a1 moved out: its deployment removed (uninstalled with the role still there), then
    // its credential; the member goes.
    org.move_account().account_id(&a1).source_parent_id(&prod).destination_parent_id(&dev).send().await.unwrap();
    let en = store.get_enrollment(&t.account, &en.id).await.unwrap().unwrap();
    let st = enroll(&e, &en).await;
    let leaving = st.members.iter().find(|m| m.aws_account == a1).unwrap();
    assert_eq!(leaving.state, MemberState::Leaving, "{leaving:?}");
    store.set_enrollment_status(&en.id, &st).await.unwrap();
    assert!(store.removals().await.unwrap().iter().any(|r| r.id == d.id), "its removal is queued");
    let removal = uninstall(&e, &d).await.unwrap();
    assert!(removal.verified, "{removal:?}");
    let en = store.get_enrollment(&t.account, &en.id).await.unwrap().unwrap();
    let st = enroll(&e, &en).await;
    assert!(st.members.iter().all(|m| m.aws_account != a1), "{:?}", st.members);
    assert!(st.excluded.iter().any(|x| x.aws_account == a1 && x.why == "outside_units"));
    assert!(store.get_credential(&t.account, &cred.id).await.unwrap().is_none(), "its credential is gone");
    assert!(
        store
            .list_deployments(&t.account)
            .await
            .unwrap()
            .iter()
            .all(|x| x.platform.id != a1 && x.platform.id != excluded)
    );
    // Each of the enrollment's own writes is in the audit log, under its id.
    let log = store.audit_log(&t.account, &en.id, 1000).await.unwrap();
    let calls: Vec<(&str, &str)> = log.iter().map(|l| (l.call.as_str(), l.outcome.as_str())).collect();
    for call in
        ["cloudformation:CreateStackSet", "cloudformation:CreateStackInstances", "cloudformation:DeleteStackInstances"]
    {
        assert!(calls.contains(&(call, "ok")), "{call}: {calls:?}");
    }
    assert_eq!(calls.iter().filter(|(c, _)| *c == "cloudformation:CreateStackSet").count(), 1, "made once");

    // 5. Deleted: gone from the API at once; the engine takes the lifecycle feed away, then
    // the record. The deployments it made stay.
    assert!(store.delete_enrollment(&t.account, &en.id).await.unwrap());
    let deleting = store.all_enrollments().await.unwrap().into_iter().find(|x| x.id == en.id).unwrap();
    assert!(deleting.deleting);
    garrison_engine::enroll::tear_down(&e, &deleting).await;
    assert!(store.all_enrollments().await.unwrap().is_empty(), "forgotten once torn down");
    assert!(aws.events().describe_rule().name(en.feed_name()).send().await.is_err(), "its rule is gone");
    assert!(aws.sqs().get_queue_url().queue_name(en.feed_name()).send().await.is_err(), "its queue is gone");
    assert!(store.list_deployments(&t.account).await.unwrap().iter().any(|x| x.platform.id == late));
    let log = store.audit_log(&t.account, &en.id, 1000).await.unwrap();
    for call in ["sqs:CreateQueue", "events:PutRule", "events:PutTargets", "events:DeleteRule", "sqs:DeleteQueue"] {
        assert!(log.iter().any(|l| l.call == call && l.outcome == "ok"), "{call}");
    }
}

/// An organization feed: one bus in the management account (its policy admitting the
/// organization's principals only) whose rule sends to the enrollment's queue; every
/// member's rules forward there instead of to a bus and queue of its own. An event of a
/// member arriving on that queue reconciles that member's deployment, not the other's. Back
/// to a feed per account, the members get their own again and the bus goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_feed_brings_every_members_events_to_one_queue() {
    common::init_log();
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    let sessions = Arc::new(Sessions::new(aws.clone()));
    let root = organization::create(&aws).await.unwrap();
    let prod = organization::unit(&aws, &root, "prod").await.unwrap();
    let a1 = organization::account(&aws, &root, &prod, "prod-a").await.unwrap();
    let a2 = organization::account(&aws, &root, &prod, "prod-b").await.unwrap();
    let org_id = aws
        .organizations()
        .describe_organization()
        .send()
        .await
        .unwrap()
        .organization()
        .unwrap()
        .id()
        .unwrap()
        .to_string();
    let t = garrison_testkit::tenants::tenant(&aws, "mgmt").await.unwrap();
    let store = t.store.clone();
    let management = t.role_credential(&aws, "garrison-management", "ci_organization").await.unwrap();
    let spec = EnrollmentSpec {
        name: "acme".into(),
        credential_id: management,
        selection: Selection { include: vec![UnitItem { unit: prod.clone(), children: true }], ..Default::default() },
        template: json!({"mode": "automatic",
            "platform": {"type": "aws", "monitor": {"enabled": true, "ct_install_region": "us-east-1"}},
            "scope": {"include": [common::include("region", "/aws/us-east-1")]}}),
        stack_set: "garrison-role".into(),
        event_feed: FeedChoice::Organization,
    };
    let en = store.create_enrollment(&t.account, spec.clone(), "u").await.unwrap();
    let mut engine = garrison_engine::Engine::new(store.clone(), sessions.clone(), GARRISON.into());
    engine.collector.wait_secs = 1;
    let e = Arc::new(engine);

    // 1. The bus, its policy and rule, the queue admitting both rules.
    let st = enroll(&e, &en).await;
    assert_eq!(st.status, "ok", "{:?}", st.message);
    store.set_enrollment_status(&en.id, &st).await.unwrap();
    let feed = st.events.clone().unwrap();
    let bus_arn = feed.bus_arn.clone().expect("the organization's bus");
    let ev = aws.events();
    let bus = ev.describe_event_bus().name(en.feed_name()).send().await.unwrap();
    let policy: serde_json::Value = serde_json::from_str(bus.policy().unwrap()).unwrap();
    assert_eq!(policy["Statement"][0]["Condition"], json!({"StringEquals": {"aws:PrincipalOrgID": org_id}}));
    assert_eq!(policy["Statement"][0]["Action"], "events:PutEvents");
    let bus_rule = ev.describe_rule().name(en.feed_name()).event_bus_name(en.feed_name()).send().await.unwrap();
    assert_eq!(bus_rule.event_pattern(), Some(garrison_catalog::feed::bus_pattern().as_str()));
    let q = aws.sqs();
    let attrs =
        q.get_queue_attributes().queue_url(&feed.queue_url).attribute_names("Policy".into()).send().await.unwrap();
    let qp: serde_json::Value =
        serde_json::from_str(attrs.attributes().unwrap().get(&"Policy".into()).unwrap()).unwrap();
    assert_eq!(
        qp["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"],
        json!([feed.rule_arn, bus_rule.arn().unwrap()]),
        "the lifecycle rule and the bus's rule, nothing else"
    );

    // 2. Each member's deployment forwards to that bus: no bus or queue statement of its own.
    let ext = store.external_id(&t.account).await.unwrap();
    let mut deployments = std::collections::BTreeMap::new();
    for m in &st.members {
        let d = store.get_deployment(&t.account, m.deployment_id.as_ref().unwrap()).await.unwrap().unwrap();
        assert_eq!(
            d.event_feed.as_ref().map(|f| (f.bus_arn.as_str(), f.organization_id.as_str())),
            Some((bus_arn.as_str(), en.id.as_str()))
        );
        let r = reconcile(&e, &d).await.unwrap();
        assert!(r.outcomes.iter().all(|o| o.result == "done"), "{:#?}", r.outcomes);
        let owned = store.owned(&d.id).await.unwrap();
        assert!(owned.get(keys::FEED_BUS).is_none() && owned.get(keys::QUEUE_POLICY).is_none(), "one queue for all");
        let cred = store.get_credential(&t.account, m.credential_id.as_ref().unwrap()).await.unwrap().unwrap();
        let member = sessions.assume(&cred.secrets.arn, &ext).await.unwrap();
        let rules = member.events().list_rules().name_prefix("garrison-feed-").send().await.unwrap();
        assert_eq!(rules.rules().len(), 2, "calls and findings");
        let rule = rules.rules()[0].name().unwrap().to_string();
        let targets = member.events().list_targets_by_rule().rule(&rule).send().await.unwrap();
        assert_eq!(targets.targets()[0].arn(), bus_arn, "{}: to the organization's bus", m.aws_account);
        assert!(targets.targets()[0].role_arn().is_some(), "through the feed role");
        deployments.insert(m.aws_account.clone(), (d, r.generation, member));
    }
    assert_eq!(deployments.len(), 2);
    assert_eq!(enroll(&e, &store.get_enrollment(&t.account, &en.id).await.unwrap().unwrap()).await, st, "stable");

    // 3. The emulator carries a member's event across to that bus and on to the queue.
    let (_, _, member1) = &deployments[&a1];
    let probe = sample::record(
        "ec2",
        "CreateTags",
        "us-east-1",
        &a1,
        ALICE,
        json!({"resourcesSet": {"items": []}}),
        Value::Null,
    );
    deliver_as_eventbridge(member1, &probe).await.unwrap();
    let mut crossed = false;
    for _ in 0..20 {
        for m in audit_queue::receive(&aws, &feed.queue_url, 1).await.unwrap() {
            crossed |= m.body.contains(probe["eventID"].as_str().unwrap());
            audit_queue::delete(&aws, &feed.queue_url, &[m.receipt]).await.unwrap();
        }
        if crossed {
            break;
        }
    }
    assert!(crossed, "the member's rule → the organization's bus → its rule → the queue");

    // 4. What EventBridge delivers there for a1's call: a1's deployment reconciles, a2's does not.
    let looped = tokio::spawn(garrison_engine::enroll::run(e.clone(), std::time::Duration::from_secs(30)));
    let run = sample::record("ec2", "RunInstances", "us-east-1", &a1, ALICE, json!({}), Value::Null);
    let body = sample::eventbridge_event(&run).to_string();
    q.send_message().queue_url(&feed.queue_url).message_body(body).send().await.unwrap();
    let (d1, g1, _) = &deployments[&a1];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let r1 = loop {
        let r = store.get_report(&t.account, &d1.id).await.unwrap().unwrap();
        if r.generation > *g1 {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "a1's event did not reconcile a1");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let trigger = r1.trigger.expect("set off by the event");
    assert!(trigger.changes.iter().any(|c| c.event == "RunInstances"), "{trigger:?}");
    let (d2, g2, _) = &deployments[&a2];
    assert_eq!(store.get_report(&t.account, &d2.id).await.unwrap().unwrap().generation, *g2, "a2 untouched");
    looped.abort();

    // 5. Back to a feed per account: the members' deployments have their own again; the bus goes.
    let en = store.get_enrollment(&t.account, &en.id).await.unwrap().unwrap();
    let spec = EnrollmentSpec { event_feed: FeedChoice::PerAccount, ..spec };
    let en = store.update_enrollment(&t.account, &en.id, en.version, spec, "u").await.unwrap();
    let st = enroll(&e, &en).await;
    assert_eq!(st.status, "ok", "{:?}", st.message);
    assert!(st.events.as_ref().unwrap().bus_arn.is_none());
    assert!(ev.describe_event_bus().name(en.feed_name()).send().await.is_err(), "the bus is gone");
    let d1 = store.get_deployment(&t.account, &d1.id).await.unwrap().unwrap();
    assert!(d1.event_feed.is_none());
    let r = reconcile(&e, &d1).await.unwrap();
    assert!(r.outcomes.iter().all(|o| o.result == "done"), "{:#?}", r.outcomes);
    assert!(store.owned(&d1.id).await.unwrap().get(keys::FEED_BUS).is_some(), "its own bus again");
    let log = store.audit_log(&t.account, &en.id, 1000).await.unwrap();
    for call in ["events:CreateEventBus", "events:PutPermission", "events:DeleteEventBus"] {
        assert!(log.iter().any(|l| l.call == call && l.outcome == "ok"), "{call}");
    }
}
