//! The engine on the emulator: role validation (safe, unsafe, missing permissions, not
//! assumable yet) and deployment discovery persisted with its status, including a region
//! that answers AccessDenied.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use garrison_catalog::{Catalog, cft};
use garrison_cloud::emulator::{Moto, sdk_config};
use garrison_cloud::estate::{self, EstateSpec};
use garrison_cloud::{Aws, Sessions};
use garrison_engine::Engine;
use garrison_engine::discover::discover_deployment;
use garrison_engine::validation::{ValidationStatus, validate, validate_reusing};
use garrison_model::credential::{NewCredential, RoleSecret};
use garrison_model::deployment::{Deployment, Reason, Refs, Retry, StatusKind, parse_request};
use garrison_model::snapshot::Kind;
use garrison_store::Store;
use garrison_testkit::proxy::Proxy;
use serde_json::{Value, json};

const GARRISON: &str = "123456789012";

async fn store() -> Store {
    garrison_testkit::tenants::store("engine").await.unwrap().0
}

/// Creates role `name` with `trust` and the given policy documents attached as managed policies.
async fn make_role(aws: &Aws, name: &str, trust: &Value, policies: &[Value]) -> String {
    let iam = aws.iam();
    let r = iam.create_role().role_name(name).assume_role_policy_document(trust.to_string()).send().await.unwrap();
    for (i, p) in policies.iter().enumerate() {
        let pol =
            iam.create_policy().policy_name(format!("{name}-{i}")).policy_document(p.to_string()).send().await.unwrap();
        iam.attach_role_policy().role_name(name).policy_arn(pol.policy().unwrap().arn().unwrap()).send().await.unwrap();
    }
    r.role().unwrap().arn().to_string()
}

fn parts(role: &garrison_catalog::RoleDef) -> Vec<Value> {
    cft::split_policy(&role.policy_document, cft::MANAGED_POLICY_LIMIT)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_validation_tells_safe_unsafe_incomplete_and_not_yet() {
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    let mut e = Engine::new(store().await, Arc::new(Sessions::new(aws.clone())), GARRISON.into());
    e.propagation = (3, Duration::from_millis(300));
    let catalog = Catalog::builtin();
    let full = catalog.get("aws", "ci_full", "latest").unwrap();
    let ext = "ext-abc";

    let safe = make_role(&aws, "safe", &cft::trust_policy(GARRISON, json!(ext)), &parts(full)).await;
    let v = validate(&e, &safe, ext, full, 1).await;
    assert_eq!(v.status, ValidationStatus::Ok, "{}", v.message);
    assert!(v.capabilities.values().all(|c| c.ok));
    // Again: the trust policy and the attachments are read afresh, the (immutable) policy
    // versions are not.
    aws.calls.reset();
    assert_eq!(validate(&e, &safe, ext, full, 1).await.status, ValidationStatus::Ok);
    assert_eq!((aws.calls.count("GetRole"), aws.calls.count("GetPolicyVersion")), (1, 0));
    assert_eq!(aws.calls.count("GetPolicy") as usize, parts(full).len());

    let no_cond = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{GARRISON}:root")}, "Action": "sts:AssumeRole"}]});
    let r = make_role(&aws, "no-condition", &no_cond, &parts(full)).await;
    let v = validate(&e, &r, ext, full, 1).await;
    assert_eq!(v.status, ValidationStatus::Unsafe);
    assert!(v.message.contains("does not require the ExternalId"), "{}", v.message);

    let star = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": ext}}}]});
    let r = make_role(&aws, "star", &star, &parts(full)).await;
    assert_eq!(validate(&e, &r, ext, full, 1).await.status, ValidationStatus::Unsafe);

    let foreign = cft::trust_policy("999999999999", json!(ext));
    let r = make_role(&aws, "foreign", &foreign, &parts(full)).await;
    let v = validate(&e, &r, ext, full, 1).await;
    assert_eq!(v.status, ValidationStatus::Unsafe);
    assert!(v.trust_problems.iter().any(|p| p.contains("999999999999")), "{:?}", v.trust_problems);

    let old = catalog.get("aws", "ci_full", "2020-01-10").unwrap();
    let r = make_role(&aws, "old", &cft::trust_policy(GARRISON, json!(ext)), &parts(old)).await;
    let v = validate(&e, &r, ext, full, 1).await;
    assert_eq!(v.status, ValidationStatus::MissingPermissions);
    let gd = &v.capabilities[&garrison_catalog::iam_check::Capability::Guardduty];
    assert!(!gd.ok && gd.missing.contains(&"guardduty:CreateDetector".to_string()));
    assert!(
        v.capabilities[&garrison_catalog::iam_check::Capability::AuditSource]
            .missing
            .contains(&"cloudtrail:CreateTrail".to_string())
    );
    // The customer upgrades the policies in place (new default versions): seen at once.
    let iam = aws.iam();
    let attached = parts(old).len();
    for (i, p) in parts(full).iter().enumerate() {
        let arn = format!("arn:aws:iam::{GARRISON}:policy/old-{i}");
        if i < attached {
            let doc = p.to_string();
            iam.create_policy_version()
                .policy_arn(&arn)
                .policy_document(doc)
                .set_as_default(true)
                .send()
                .await
                .unwrap();
        } else {
            iam.create_policy().policy_name(format!("old-{i}")).policy_document(p.to_string()).send().await.unwrap();
            iam.attach_role_policy().role_name("old").policy_arn(&arn).send().await.unwrap();
        }
    }
    let v = validate(&e, &r, ext, full, 1).await;
    assert_eq!(v.status, ValidationStatus::Ok, "{}", v.message);

    let t = Instant::now();
    let v = validate(&e, &format!("arn:aws:iam::{GARRISON}:role/not-created-yet"), ext, full, 3).await;
    assert_eq!(v.status, ValidationStatus::NotAssumableYet, "{}", v.message);
    assert_eq!((v.reason(), v.reason().retry()), (Reason::RoleNotAssumable, Retry::Backoff));
    assert!(v.message.contains("after 3 attempt(s)"));
    // The AWS message named the role; the verdict (shown as the deployment's status) does not.
    assert!(!v.message.contains("not-created-yet"), "{}", v.message);
    assert!(t.elapsed() >= Duration::from_millis(600), "retried with pauses");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_is_discovered_persisted_and_reported() {
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let proxy = Proxy::start(&moto.url).await.unwrap();
    let aws = Aws::from_config(sdk_config(&proxy.url, "us-east-1").await);
    let sessions = Arc::new(Sessions::new(aws.clone()));
    let spec = EstateSpec { containers: false, ..EstateSpec::s() };
    let estate = estate::build(&sessions, &spec).await.unwrap();
    let store = store().await;
    let root = store.init_root(None, None).await.unwrap().unwrap();
    let ext = store.external_id(&root.account_id).await.unwrap();
    let readonly = Catalog::builtin().get("aws", "ci_readonly", "latest").unwrap().clone();
    let role = make_role(&aws, "garrison-ro", &cft::trust_policy(GARRISON, json!(ext)), &parts(&readonly)).await;
    let cred = store
        .create_credential(
            &root.account_id,
            &NewCredential { name: "ro".into(), secret: RoleSecret { arn: role } },
            "u",
        )
        .await
        .unwrap();
    let policies: HashSet<String> = garrison_catalog::policies::all().into_iter().map(|p| p.id).collect();
    let creds: HashMap<String, String> = [(cred.id.clone(), GARRISON.to_string())].into();
    let body = json!({"name": "s", "platform": {"type": "aws", "id": GARRISON}, "mode": "readonly",
        "credentials": [{"id": cred.id, "purpose": "discover"}],
        "scope": {"include": [{"type": "region", "key": "/aws/us-east-1"}, {"type": "region", "key": "/aws/us-west-2"}]}});
    let spec_d = parse_request(&body, None, &Refs { policies: &policies, credentials: &creds }).unwrap().spec;
    let d = store.create_deployment(&root.account_id, spec_d, "u").await.unwrap();
    let e = Engine::new(store.clone(), sessions.clone(), GARRISON.into());
    sessions.base.calls.reset();

    let out = discover_deployment(&e, &d).await.unwrap();
    assert_eq!(out.status.status, StatusKind::Ok, "{:?}", out.status.message);
    assert_eq!(out.status.reason, Some(Reason::Converged));
    let got = store.get_deployment(&root.account_id, &d.id).await.unwrap().unwrap();
    assert_eq!(got.status.status, StatusKind::Ok);
    assert_eq!(got.version, 1, "a status change is not a user edit");
    assert!(got.status.message.unwrap().contains(&format!("{} instance(s)", spec.instances)));
    let snap = store.get_snapshot(&root.account_id, &d.id).await.unwrap().unwrap();
    assert_eq!(snap.count(Kind::Instances), spec.instances);
    assert_eq!(snap.count(Kind::Vpcs), spec.vpcs + 2, "the estate's and one default VPC per region");

    proxy.faults.deny_regions.lock().unwrap().insert("us-west-2".into());
    let out = discover_deployment(&e, &d).await.unwrap();
    assert_eq!(sessions.base.calls.count("AssumeRole"), 1, "the session is cached across validation and runs");
    assert_eq!(out.status.status, StatusKind::Warning);
    assert_eq!(out.status.reason, Some(Reason::DiscoveryIncomplete), "a passing cause: retried after a backoff");
    let msg = out.status.message.unwrap();
    assert!(msg.contains("us-west-2 instances (UnauthorizedOperation)"), "{msg}");
    let snap = store.get_snapshot(&root.account_id, &d.id).await.unwrap().unwrap();
    assert!(snap.is_partial());
    assert_eq!(snap.count(Kind::Instances), spec.instances, "facts kept, none replaced by absence");
    let west: usize = estate.vpcs().filter(|v| v.region == "us-west-2").map(|v| v.instances.len()).sum();
    assert_eq!(snap.regions["us-west-2"].instances.len(), west);
}

/// An automatic Essentials deployment of us-east-1 whose discover credential is `arn`.
async fn automatic_with_role(t: &garrison_testkit::tenants::Tenant, name: &str, arn: String) -> Deployment {
    let cred = t
        .store
        .create_credential(&t.account, &NewCredential { name: name.into(), secret: RoleSecret { arn } }, "test")
        .await
        .unwrap();
    let policies: HashSet<String> = garrison_catalog::policies::all().into_iter().map(|p| p.id).collect();
    let creds: HashMap<String, String> = [(cred.id.clone(), GARRISON.to_string())].into();
    let body = json!({"name": name, "platform": {"type": "aws", "id": GARRISON}, "mode": "automatic",
        "credentials": [{"id": cred.id, "purpose": "discover"}],
        "scope": {"include": [{"type": "region", "key": "/aws/us-east-1", "policy": {"id": garrison_catalog::policies::ESSENTIALS}}]}});
    let spec = parse_request(&body, None, &Refs { policies: &policies, credentials: &creds }).unwrap().spec;
    t.store.create_deployment(&t.account, spec, "test").await.unwrap()
}

/// Automatic mode with a role that anyone may assume, or that does not require the
/// ExternalId: refused at every reconcile with the reason, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsafe_role_is_refused_for_automatic_mode_and_nothing_is_written() {
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    estate::build(&Sessions::new(aws.clone()), &EstateSpec::s_bare()).await.unwrap();
    let t = garrison_testkit::tenants::tenant(&aws, "unsafe").await.unwrap();
    let ext = t.store.external_id(&t.account).await.unwrap();
    let full = Catalog::builtin().get("aws", "ci_full", "latest").unwrap().clone();
    let cases = [
        (
            "star",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": ext}}}]}),
            "lets anyone",
        ),
        (
            "no-external-id",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{GARRISON}:root")}, "Action": "sts:AssumeRole"}]}),
            "does not require the ExternalId",
        ),
    ];
    let mut e = Engine::new(t.store.clone(), Arc::new(Sessions::new(aws.clone())), GARRISON.into());
    e.propagation = (1, Duration::ZERO);
    for (name, trust, reason) in cases {
        let arn = make_role(&aws, &format!("unsafe-{name}"), &trust, &parts(&full)).await;
        let d = automatic_with_role(&t, name, arn).await;
        let err = garrison_engine::protect::reconcile(&e, &d).await.expect_err("refused");
        let got = t.store.get_deployment(&t.account, &d.id).await.unwrap().unwrap();
        assert_eq!(got.status.status, StatusKind::Error, "{name}");
        assert_eq!((err.reason, got.status.reason), (Reason::RoleUnsafe, Some(Reason::RoleUnsafe)), "{name}");
        let msg = got.status.message.unwrap();
        assert!(msg.contains("unsafe role") && msg.contains(reason), "{name}: {msg} / {err}");
        assert!(t.store.audit_log(&t.account, &d.id, 1000).await.unwrap().is_empty(), "{name}: no AWS write");
        assert!(t.store.owned(&d.id).await.unwrap().items.is_empty(), "{name}: nothing built");
    }
}

/// A long-running worker reuses slow-changing facts between runs — a role's permission
/// documents, zones and offerings — but reads the trust policy every run: a role made
/// unsafe is refused at the next run, reuse or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_facts_save_calls_but_never_the_trust_check() {
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    let sessions = Arc::new(Sessions::new(aws.clone()).reusing(Duration::from_secs(3600)));
    let e = Engine::new(store().await, sessions.clone(), GARRISON.into());
    let catalog = Catalog::builtin();
    let full = catalog.get("aws", "ci_full", "latest").unwrap();
    let ext = "ext-reuse";
    let role = make_role(&aws, "reused", &cft::trust_policy(GARRISON, json!(ext)), &parts(full)).await;
    assert_eq!(validate_reusing(&e, &role, ext, full, 1, Some("d:1")).await.status, ValidationStatus::Ok);
    aws.calls.reset();
    assert_eq!(validate_reusing(&e, &role, ext, full, 1, Some("d:1")).await.status, ValidationStatus::Ok);
    let counts = |ops: &[&str]| ops.iter().map(|o| aws.calls.count(o)).collect::<Vec<_>>();
    assert_eq!(counts(&["GetRole", "ListAttachedRolePolicies", "GetPolicy", "ListRolePolicies"]), [1, 0, 0, 0]);
    // The deployment changed: everything is read again.
    aws.calls.reset();
    assert_eq!(validate_reusing(&e, &role, ext, full, 1, Some("d:2")).await.status, ValidationStatus::Ok);
    assert_eq!(counts(&["GetRole", "ListAttachedRolePolicies"]), [1, 1]);
    // The customer opens the trust policy to everyone: refused at the next run.
    let star = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": ext}}}]});
    aws.iam().update_assume_role_policy().role_name("reused").policy_document(star.to_string()).send().await.unwrap();
    let v = validate_reusing(&e, &role, ext, full, 1, Some("d:2")).await;
    assert_eq!(v.status, ValidationStatus::Unsafe, "{}", v.message);
    // A failed validation keeps nothing: the next run reads the permissions again.
    aws.calls.reset();
    validate_reusing(&e, &role, ext, full, 1, Some("d:2")).await;
    assert_eq!(aws.calls.count("ListAttachedRolePolicies"), 1);

    // Zones and offerings of a region: read once, then reused; the rest read every time.
    let there = sessions.assume(&role, ext).await.unwrap();
    let first = garrison_cloud::discovery::discover_region(&there, "us-east-1").await;
    aws.calls.reset();
    let again = garrison_cloud::discovery::discover_region(&there, "us-east-1").await;
    assert_eq!(counts(&["DescribeAvailabilityZones", "DescribeInstanceTypeOfferings", "DescribeVpcs"]), [0, 0, 1]);
    assert_eq!((again.zones.clone(), again.offerings.clone()), (first.zones.clone(), first.offerings.clone()));
    assert!(!again.zones.is_empty() && !again.offerings.is_empty());
    assert_eq!(again.status.get(&Kind::Zones), first.status.get(&Kind::Zones));
}

/// The error policy on the real worker loop: a run that failed for a passing reason (the
/// role is not assumable yet) is tried again after a pause that doubles; one that needs the
/// customer to act (an unsafe role) waits for a change or the next resync. Both statuses
/// carry their reason code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_runs_back_off_or_wait_for_a_change_as_their_reason_says() {
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    let full = Catalog::builtin().get("aws", "ci_full", "latest").unwrap().clone();
    let star = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]});
    let unsafe_role = make_role(&aws, "policy-star", &star, &parts(&full)).await;
    let missing = format!("arn:aws:iam::{GARRISON}:role/never-made");
    let mut runs = vec![];
    for (name, arn, reason) in
        [("missing", missing, Reason::RoleNotAssumable), ("unsafe", unsafe_role, Reason::RoleUnsafe)]
    {
        // A tenant (and store) each: the worker runs every deployment of its store.
        let t = garrison_testkit::tenants::tenant(&aws, &format!("policy-{name}")).await.unwrap();
        let d = automatic_with_role(&t, name, arn).await;
        let mut e = Engine::new(t.store.clone(), Arc::new(Sessions::new(aws.clone())), GARRISON.into());
        e.propagation = (1, Duration::ZERO);
        e.backoff_base = Duration::from_millis(100);
        let e = Arc::new(e);
        let worker = tokio::spawn(garrison_engine::worker::run(e.clone(), Duration::from_secs(3600)));
        // Runs at 0 s, then (backing off) 0.1, 0.3, 0.7, 1.5 s, ...
        tokio::time::sleep(Duration::from_millis(400)).await;
        let early = e.sessions.base.calls.count("AssumeRole");
        tokio::time::sleep(Duration::from_millis(2000)).await;
        worker.abort();
        let late = e.sessions.base.calls.count("AssumeRole");
        let got = t.store.get_deployment(&t.account, &d.id).await.unwrap().unwrap();
        assert_eq!(got.status.reason, Some(reason), "{name}: {:?}", got.status.message);
        assert!(early >= 1, "{name}: the first run tried the role");
        runs.push((name, early, late));
    }
    println!("error policy: (deployment, AssumeRole calls by 0.4 s, by 2.4 s) {runs:?}");
    let (_, early, late) = runs[0];
    assert!(late >= early + 2, "not assumable yet: tried again, backing off: {runs:?}");
    assert!(late <= early + 4, "... with growing pauses, not in a tight loop: {runs:?}");
    let (_, early, late) = runs[1];
    assert_eq!(late, early, "unsafe: not tried again before a change or the resync: {runs:?}");
}
