//! `garrison onboard` end to end on the emulator, as a customer runs it: against a fresh
//! account (estate S without its own audit source) and against an organization's units.

mod common;

use std::collections::BTreeSet;
use std::process::Output;

use common::*;
use garrison_cloud::estate::{self, EstateSpec};
use serde_json::{Value, json};

/// `garrison onboard` with the customer's AWS credentials (the emulator) and garrison's key.
fn onboard(s: &Server, moto_url: &str, args: &[&str]) -> Output {
    garrison_env(s, &[&["onboard"], args].concat(), &moto_env(moto_url))
}

fn count(s: &Server, args: &[&str]) -> u64 {
    json_out(&garrison(s, args)).as_u64().unwrap()
}

fn writes(s: &Server, id: &str) -> u64 {
    count(
        s,
        &["deployments", "list_audit_log", "--deployment_id", id, "--limit", "100000", "--query", "length(entries)"],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboard_protects_a_fresh_account_and_a_second_run_changes_nothing() {
    let moto = garrison_cloud::emulator::Moto::start().expect("the AWS emulator is required for this test");
    let aws = garrison_cloud::Aws::from_config(moto.sdk_config("us-east-1").await);
    let spec = EstateSpec::s_bare();
    let est = estate::build(&garrison_cloud::Sessions::new(aws.clone()), &spec).await.unwrap();
    let east = &spec.regions[0];
    let s = serve_env_worker(&moto_env(&moto.url));

    // Bad flags: exit 2, the field named, nothing made in AWS or garrison.
    let bad = onboard(&s, &moto.url, &["--vpc", "vpc-123"]);
    assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--vpc: expected REGION/VPC-ID"));
    assert!(garrison_cloud::stacks::find_stack(&aws, "garrison").await.unwrap().is_none());
    // Credentials of another account than the one expected: named, refused before any write.
    let wrong = onboard(&s, &moto.url, &["--region", east, "--expect-account", "111122223333"]);
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(1), "{err}");
    assert!(err.contains("AWS account 123456789012") && err.contains("not 111122223333"), "{err}");
    assert!(garrison_cloud::stacks::find_stack(&aws, "garrison").await.unwrap().is_none());
    assert_eq!(count(&s, &["credentials", "list_credentials", "--query", "length(@)"]), 0);

    let first = onboard(
        &s,
        &moto.url,
        &[
            "--region",
            east,
            "--level",
            "professional",
            "--wait",
            "180",
            "--output",
            "json",
            "--expect-account",
            "123456789012",
        ],
    );
    let out = json_out(&first);
    let acct = &out["accounts"][0];
    assert_eq!(acct["aws_account"], "123456789012");
    for step in ["stack", "credential", "deployment"] {
        assert_eq!(acct[step]["action"], "created", "{step}: {out}");
    }
    assert_eq!(acct["outcome"]["status"], "ok", "{out}");
    // Professional in the east: a scanner per VPC with running hosts, IDS per zone with some.
    let running: Vec<_> = est.vpcs().filter(|v| &v.region == east && v.instances.iter().any(|i| i.running)).collect();
    assert!(!running.is_empty());
    assert_eq!(acct["outcome"]["protected_vpcs"], json!(running.len()), "{out}");
    let zones: usize = running
        .iter()
        .map(|v| v.instances.iter().filter(|i| i.running).map(|i| i.zone.clone()).collect::<BTreeSet<_>>().len())
        .sum();
    assert_eq!(acct["outcome"]["appliances"], json!(running.len() + zones), "{out}");
    assert!(acct["outcome"]["audit_trail"].as_str().unwrap().starts_with("garrison-"), "{out}");
    let role_arn = acct["role_arn"].as_str().unwrap();
    let stack = garrison_cloud::stacks::find_stack(&aws, "garrison").await.unwrap().unwrap();
    assert_eq!(stack.role.unwrap().role_arn, role_arn);
    let id = acct["deployment"]["id"].as_str().unwrap().to_string();
    let dep = json_out(&garrison(&s, &["deployments", "get_deployment", "--deployment_id", &id]));
    assert_eq!(dep["mode"], "automatic");
    assert_eq!(
        dep["scope"]["include"],
        json!([{"type": "region", "key": format!("/aws/{east}"), "policy": {"id": "D12D5E67-166C-474F-87AA-6F86FC9FB9BC"}}])
    );
    let before = writes(&s, &id);
    assert!(before > 10, "{before} writes");

    // Again: everything found and reused, no new stack, credential, deployment or write.
    let second = onboard(&s, &moto.url, &["--region", east, "--level", "professional", "--wait", "180"]);
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success(), "{text}\n{}", String::from_utf8_lossy(&second.stderr));
    assert!(text.contains("nothing changed"), "{text}");
    assert!(text.contains(&format!("({id})")) && text.contains(": ok"), "{text}");
    let progress = String::from_utf8_lossy(&second.stderr);
    assert!(progress.contains("stack garrison reused") && progress.contains(": reused"), "{progress}");
    assert_eq!(count(&s, &["deployments", "list_deployments", "--query", "length(@)"]), 1);
    assert_eq!(count(&s, &["credentials", "list_credentials", "--query", "length(@)"]), 1);
    assert_eq!(writes(&s, &id), before, "a second run writes nothing to AWS");

    // A changed scope updates the same deployment and follows its reconcile.
    let third =
        onboard(&s, &moto.url, &["--region", east, "--level", "essentials", "--wait", "180", "--output", "json"]);
    let out = json_out(&third);
    assert_eq!(out["accounts"][0]["deployment"], json!({"id": id, "action": "updated"}), "{out}");
    assert_eq!(out["accounts"][0]["stack"]["action"], "reused");
    assert_eq!(out["accounts"][0]["outcome"]["appliances"], json!(running.len()), "IDS gone with Essentials: {out}");

    // Someone detaches the role's policies: the next run stops at validation and says what
    // is missing, and changes nothing in garrison.
    let iam = aws.iam();
    let role_name = role_arn.rsplit('/').next().unwrap();
    for p in iam.list_attached_role_policies().role_name(role_name).send().await.unwrap().attached_policies() {
        iam.detach_role_policy().role_name(role_name).policy_arn(p.policy_arn().unwrap()).send().await.unwrap();
    }
    let broken = onboard(&s, &moto.url, &["--region", east, "--level", "essentials", "--wait", "30"]);
    let err = String::from_utf8_lossy(&broken.stderr);
    assert_eq!(broken.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("the role {role_arn} is not usable")), "{err}");
    assert!(err.contains("missing") && err.contains("ec2:"), "names the missing permissions: {err}");
    assert_eq!(count(&s, &["deployments", "list_deployments", "--query", "length(@)"]), 1);
}

/// One call of the Organizations JSON API on the emulator (garrison itself needs none:
/// StackSets reach the units' accounts).
async fn organizations(url: &str, target: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(url)
        .header("x-amz-target", format!("AWSOrganizationsV20161128.{target}"))
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20261130/us-east-1/organizations/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{target}: {status} {v}");
    v
}

async fn new_account(url: &str, root: &str, ou: &str, name: &str) -> String {
    let made =
        organizations(url, "CreateAccount", json!({"AccountName": name, "Email": format!("{name}@example.com")})).await;
    let id = made["CreateAccountStatus"]["AccountId"].as_str().unwrap().to_string();
    organizations(url, "MoveAccount", json!({"AccountId": id, "SourceParentId": root, "DestinationParentId": ou}))
        .await;
    id
}

fn deployed_accounts(s: &Server) -> BTreeSet<String> {
    let v = json_out(&garrison(s, &["deployments", "list_deployments", "--query", "[].platform.id"]));
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

/// `onboard --organization`: the management account's own role and credential, then an
/// enrollment of the chosen units (one account excluded by flag); the command returns once
/// every covered account is enrolled and protected. A re-run changes nothing, and finds an
/// account that joined meanwhile (announced by its lifecycle event) already enrolled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_onboarding_enrolls_exactly_the_chosen_units() {
    let moto = garrison_cloud::emulator::Moto::start().expect("the AWS emulator is required for this test");
    let url = moto.url.clone();
    let aws = garrison_cloud::Aws::from_config(moto.sdk_config("us-east-1").await);
    organizations(&url, "CreateOrganization", json!({"FeatureSet": "ALL"})).await;
    let root = organizations(&url, "ListRoots", json!({})).await["Roots"][0]["Id"].as_str().unwrap().to_string();
    let mut units = vec![];
    for name in ["prod", "dev", "sandbox"] {
        let ou = organizations(&url, "CreateOrganizationalUnit", json!({"ParentId": root, "Name": name})).await;
        units.push(ou["OrganizationalUnit"]["Id"].as_str().unwrap().to_string());
    }
    let (prod, dev, sandbox) = (&units[0], &units[1], &units[2]);
    let mut wanted = BTreeSet::new();
    for (ou, name) in [(prod, "prod-a"), (prod, "prod-b"), (dev, "dev-a")] {
        wanted.insert(new_account(&url, &root, ou, name).await);
    }
    let left_out = new_account(&url, &root, prod, "prod-legacy").await;
    let other_unit = new_account(&url, &root, sandbox, "sandbox-a").await;
    let s = serve_env_worker(&moto_env(&url));
    let args = [
        "--organization",
        "--organizational-unit",
        prod,
        "--organizational-unit",
        dev,
        "--exclude-account",
        &left_out,
        "--event-feed",
        "organization",
        "--region",
        "us-east-1",
        "--level",
        "essentials",
        "--wait",
        "180",
        "--output",
        "json",
    ];

    let out = json_out(&onboard(&s, &url, &args));
    assert_eq!(out["management"]["aws_account"], "123456789012", "{out}");
    assert_eq!(out["management"]["stack"]["action"], "created", "{out}");
    assert_eq!(out["enrollment"]["action"], "created", "{out}");
    let accounts = out["accounts"].as_array().unwrap();
    let reached: BTreeSet<String> = accounts.iter().map(|a| a["aws_account"].as_str().unwrap().to_string()).collect();
    assert_eq!(reached, wanted, "{out}");
    for a in accounts {
        assert_eq!(a["state"], "enrolled", "{out}");
        assert_eq!(a["outcome"]["status"], "ok", "{out}");
        // Each account got its own audit source, built through its own role.
        assert!(a["outcome"]["audit_trail"].as_str().unwrap().starts_with("garrison-"), "{out}");
    }
    let why = |acct: &str| {
        out["excluded"].as_array().unwrap().iter().find(|x| x["aws_account"] == acct).map(|x| x["why"].clone())
    };
    assert_eq!(why(&left_out), Some(json!("excluded_account")), "{out}");
    assert_eq!(why(&other_unit), Some(json!("outside_units")), "{out}");
    assert_eq!(deployed_accounts(&s), wanted);
    // One event feed for the organization: its bus, and every member's deployment on it.
    let id = out["enrollment"]["id"].as_str().unwrap();
    let en = json_out(&garrison(&s, &["deployments", "get_organization", "--organization_id", id]));
    assert_eq!(en["event_feed"], "organization");
    let bus = en["status"]["events"]["bus_arn"].as_str().expect("the organization's bus").to_string();
    let feeds = json_out(&garrison(&s, &["deployments", "list_deployments", "--query", "[].event_feed.bus_arn"]));
    assert_eq!(feeds.as_array().unwrap().len(), wanted.len(), "{feeds}");
    assert!(feeds.as_array().unwrap().iter().all(|b| b == bus.as_str()), "{feeds}");
    // The management credential is a ci_organization role, validated.
    let management = json_out(&garrison(
        &s,
        &["credentials", "get_credential", "--credential_id", out["management"]["credential"]["id"].as_str().unwrap()],
    ));
    assert_eq!(management["secrets"]["arn"], out["management"]["role_arn"]);
    let policies = aws
        .iam()
        .list_role_policies()
        .role_name(out["management"]["role_arn"].as_str().unwrap().rsplit('/').next().unwrap())
        .send()
        .await;
    assert!(policies.is_ok(), "the management role exists: {policies:?}");

    // A new account in a chosen unit, announced by Organizations' event: enrolled by
    // garrison alone; the re-run reuses everything and reports it.
    let late = new_account(&url, &root, dev, "dev-b").await;
    garrison_testkit::organization::announce_created(&aws, "123456789012", &late, "dev-b").await.unwrap();
    let out = json_out(&onboard(&s, &url, &args));
    assert_eq!(out["management"]["stack"]["action"], "reused", "{out}");
    assert_eq!(out["management"]["credential"]["action"], "reused", "{out}");
    assert_eq!(out["enrollment"]["action"], "reused", "{out}");
    wanted.insert(late);
    let reached: BTreeSet<String> =
        out["accounts"].as_array().unwrap().iter().map(|a| a["aws_account"].as_str().unwrap().to_string()).collect();
    assert_eq!(reached, wanted, "{out}");
    assert_eq!(deployed_accounts(&s), wanted);
    assert_eq!(count(&s, &["credentials", "list_credentials", "--query", "length(@)"]), 5, "management + 4");
    assert_eq!(count(&s, &["deployments", "list_organizations", "--query", "length(@)"]), 1);
}

/// An organization enrollment through the CLI, kept by the server's own loop with no further
/// command: the enrolled unit's account gets its deployment, which protects it; an account
/// created into the unit later joins by itself; the other unit's account gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_enrollment_protects_accounts_as_they_join() {
    let moto = garrison_cloud::emulator::Moto::start().expect("the AWS emulator is required for this test");
    let url = moto.url.clone();
    let aws = garrison_cloud::Aws::from_config(moto.sdk_config("us-east-1").await);
    organizations(&url, "CreateOrganization", json!({"FeatureSet": "ALL"})).await;
    let root = organizations(&url, "ListRoots", json!({})).await["Roots"][0]["Id"].as_str().unwrap().to_string();
    let ou = |name: &'static str| {
        let (url, root) = (url.clone(), root.clone());
        async move {
            let made = organizations(&url, "CreateOrganizationalUnit", json!({"ParentId": root, "Name": name})).await;
            made["OrganizationalUnit"]["Id"].as_str().unwrap().to_string()
        }
    };
    let (prod, dev) = (ou("prod").await, ou("dev").await);
    let first = new_account(&url, &root, &prod, "prod-a").await;
    let other = new_account(&url, &root, &dev, "dev-a").await;
    // The default resync: the enrollment loop's own pass comes only every minute, so an
    // account that joins within seconds did so through its lifecycle event.
    let s = serve_env_worker(&moto_env(&url));
    // The management account's role and its credential.
    let (_, stack) = customer_creates_role(&s, &aws, "ci_organization", "garrison-management").await;
    let cred = json_out(&garrison(
        &s,
        &[
            "credentials",
            "create_credential",
            "--name",
            "management",
            "--secrets",
            &json!({"type": "aws_iam_role", "arn": stack.role_arn}).to_string(),
        ],
    ));
    let template = json!({"mode": "automatic",
        "platform": {"type": "aws", "monitor": {"enabled": true, "ct_install_region": "us-east-1"}},
        "scope": {"include": [{"type": "region", "key": "/aws/us-east-1", "policy": {"id": "A8E8B104-8F45-411D-A240-A30EA5FE25B0"}}]}});
    let en = json_out(&garrison(
        &s,
        &[
            "deployments",
            "create_organization",
            "--name",
            "acme",
            "--credential_id",
            cred["id"].as_str().unwrap(),
            "--include",
            &json!([{"unit": prod, "children": true}]).to_string(),
            "--template",
            &template.to_string(),
        ],
    ));
    let id = en["id"].as_str().unwrap().to_string();
    let enrolled = |want: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let st = json_out(&garrison(
                &s,
                &["deployments", "get_organization", "--organization_id", &id, "--query", "status"],
            ));
            let members: BTreeSet<String> = st["members"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .filter(|m| m["state"] == "enrolled")
                        .map(|m| m["aws_account"].as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default();
            if members.len() >= want {
                return (members, st);
            }
            assert!(std::time::Instant::now() < deadline, "not enrolled in 120 s: {st}");
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    };
    let (members, st) = enrolled(1);
    assert_eq!(members, BTreeSet::from([first.clone()]), "{st}");
    assert!(
        st["excluded"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["aws_account"] == other.as_str() && x["why"] == "outside_units")
    );
    // Its deployment protects the account, by the worker.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let st = json_out(&garrison(
            &s,
            &["deployments", "list_deployments", "--query", &format!("[?platform.id=='{first}'].status.status | [0]")],
        ));
        if st == "ok" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the enrolled account's deployment is {st}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    // A new account in the unit joins by itself, through Organizations' event.
    let late = new_account(&url, &root, &prod, "prod-late").await;
    let t0 = std::time::Instant::now();
    garrison_testkit::organization::announce_created(&aws, "123456789012", &late, "prod-late").await.unwrap();
    let (members, _) = enrolled(2);
    assert!(t0.elapsed() < std::time::Duration::from_secs(30), "joined {:?} after its event", t0.elapsed());
    assert_eq!(members, BTreeSet::from([first.clone(), late]));
    assert!(!deployed_accounts(&s).contains(&other), "the other unit's account gets nothing");
    // The enrollment's own writes, in its audit log.
    let calls = json_out(&garrison(
        &s,
        &[
            "deployments",
            "list_organization_audit_log",
            "--organization_id",
            &id,
            "--query",
            "entries[?outcome=='ok'].call",
        ],
    ));
    let calls: Vec<&str> = calls.as_array().unwrap().iter().filter_map(|c| c.as_str()).collect();
    assert!(
        calls.contains(&"cloudformation:CreateStackSet") && calls.contains(&"cloudformation:CreateStackInstances"),
        "{calls:?}"
    );
}
