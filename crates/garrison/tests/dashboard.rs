//! The dashboard in a real browser: `garrison demo --serve` protects the demo account, then
//! headless Chromium (Debian's, driven by playwright-core: `tests/browser/dashboard.mjs`)
//! signs in, opens the demo's deployment, checks its VPCs and appliances against the API,
//! and follows one appliance's activity. A second test enrolls an organization
//! (`onboard --organization`) and checks its view (`tests/browser/organization.mjs`). A third
//! signs in through a real OpenID provider (`tests/browser/sso.mjs`, npm `oidc-provider` on
//! loopback). The screenshots stay in the target directory.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cli(env: &[(String, String)], args: &[&str]) -> Value {
    let o = Command::new(env!("CARGO_BIN_EXE_garrison")).args(args).envs(env.iter().cloned()).output().unwrap();
    common::json_out(&o)
}

#[test]
fn the_dashboard_shows_the_demo_deployment_in_chromium() {
    let mut demo = Command::new(env!("CARGO_BIN_EXE_garrison"))
        .args(["demo", "--serve"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start garrison demo --serve");
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    let mut env: Vec<(String, String)> = vec![];
    let mut transcript = String::new();
    while env.len() < 4 {
        let line = lines.next().unwrap_or_else(|| panic!("the demo ended early:\n{transcript}")).unwrap();
        transcript.push_str(&line);
        transcript.push('\n');
        if let Some((k, v)) = line.split_once('=')
            && k.starts_with("GARRISON_")
        {
            env.push((k.to_string(), v.to_string()));
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let get = |k: &str| env.iter().find(|(n, _)| n == k).unwrap().1.clone();

    // What the page must show, from the API.
    let deps = cli(&env, &["deployments", "list_deployments"]);
    let dep = &deps[0];
    let id = dep["id"].as_str().unwrap();
    // A tuning option (the operator's tags): the worker applies it, and the report says
    // what it costs (nothing: tags are free).
    let option = json!({"name": "security_resource_tags", "scope": {"deployment_id": id}, "value": [{"key": "Team", "value": "sec"}]});
    cli(&env, &["otis", "create_option", "--option", &option.to_string()]);
    // And traffic mirroring: the interfaces it mirrors, per VPC, on the page.
    let span = json!({"name": "span_port_enabled", "scope": {"deployment_id": id}, "value": true});
    cli(&env, &["otis", "create_option", "--option", &span.to_string()]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let tuned = loop {
        let p = cli(&env, &["deployments", "get_protection", "--deployment_id", id]);
        let costs = p["option_costs"].as_array().cloned().unwrap_or_default();
        let mirrored = p["vpcs"].as_array().is_some_and(|v| v.iter().any(|v| v["mirror_sessions"].as_u64() > Some(0)));
        if ["security_resource_tags", "span_port_enabled"].iter().all(|n| costs.iter().any(|o| o["name"] == *n))
            && mirrored
        {
            break p;
        }
        assert!(std::time::Instant::now() < deadline, "the worker never applied the options: {}", p["option_costs"]);
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    let cost = |name: &str| {
        tuned["option_costs"].as_array().unwrap().iter().find(|o| o["name"] == name).unwrap()["monthly_usd"].as_f64()
    };
    assert_eq!(cost("security_resource_tags"), Some(0.0), "{}", tuned["option_costs"]);
    assert!(cost("span_port_enabled") > Some(10.0), "a session-hour per interface: {}", tuned["option_costs"]);
    let mirrored = tuned["vpcs"].as_array().unwrap().iter().find(|v| v["mirror_sessions"].as_u64() > Some(0)).map(|v| {
        json!({"vpc": v["vpc_id"], "text": format!(" · {} interface(s) mirrored to the IDS", v["mirror_sessions"])})
    });
    let cov = cli(&env, &["deployments", "get_coverage", "--deployment_id", id]);
    let vpcs: Vec<&Value> =
        cov["regions"].as_array().unwrap().iter().flat_map(|r| r["vpcs"].as_array().unwrap()).collect();
    let protected = vpcs.iter().filter(|v| v["status"] == "protected").count();
    let appliances: Vec<Value> = vpcs.iter().flat_map(|v| v["appliances"].as_array().unwrap().clone()).collect();
    assert!(protected >= 3 && appliances.len() >= 6, "the demo protects its account: {cov}");
    // Every protected VPC has a scanner running; Professional zones with hosts have IDS.
    for v in vpcs.iter().filter(|v| v["status"] == "protected") {
        assert!(
            v["appliances"].as_array().unwrap().iter().any(|a| a["role"] == "scan" && a["state"] == "running"),
            "{v}"
        );
    }
    let ids = appliances.iter().find(|a| a["role"] == "ids").unwrap();
    // The VPC the browser test excludes while it watches: a protected one in the second region.
    let (exclude_region, exclude) = cov["regions"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .find_map(|r| {
            r["vpcs"].as_array().unwrap().iter().find(|v| v["status"] == "protected").map(|v| (r["region"].clone(), v))
        })
        .expect("a protected VPC in the second region");
    // How changes reach garrison: the event feed is built, so it is the live input.
    let prot = cli(&env, &["deployments", "get_protection", "--deployment_id", id]);
    assert_eq!(prot["freshness"]["live"], "events", "{}", prot["freshness"]);
    assert!(
        prot["audit_source"]["feed"]["regions"].as_array().is_some_and(|r| r.len() >= 2),
        "{}",
        prot["audit_source"]
    );
    // A GuardDuty finding on a host of a protected VPC, an Inspector one on an asset of a VPC
    // garrison does not protect (where the demo has one), put on the region's default bus as
    // those services do; the page shows them beside their VPCs.
    let aws_url = get("GARRISON_DEMO_AWS_ENDPOINT");
    let account = dep["platform"]["id"].as_str().unwrap().to_string();
    let regions = cov["regions"].as_array().unwrap();
    let in_status = |want: &dyn Fn(&str) -> bool| {
        regions.iter().find_map(|r| {
            r["vpcs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| want(v["status"].as_str().unwrap()))
                .map(|v| (r["region"].as_str().unwrap().to_string(), v["vpc_id"].as_str().unwrap().to_string()))
        })
    };
    let (gd_region, gd_vpc) = in_status(&|s| s == "protected").unwrap();
    let exposed = in_status(&|s| s != "protected");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let aws = garrison_cloud::Aws::from_config(garrison_cloud::emulator::sdk_config(&aws_url, "us-east-1").await);
        let gd = garrison_testkit::sample::guardduty_finding(
            &account,
            &gd_region,
            "7bc1d2e3f4a5b6c7d8e9f0a1b2c3d4e5",
            "i-0a0a0a0a0a0a0a0a0",
            &gd_vpc,
            8.0,
            false,
            0,
        );
        garrison_cloud::audit_queue::deliver_event(
            &aws.in_region(&gd_region),
            "aws.guardduty",
            "GuardDuty Finding",
            &gd,
        )
        .await
        .unwrap();
        if let Some((region, vpc)) = &exposed {
            let f = garrison_testkit::sample::inspector_finding(
                &account,
                region,
                "1a2b3c4d5e6f708192a3b4c5d6e7f801",
                "i-0b0b0b0b0b0b0b0b0",
                vpc,
                "ACTIVE",
            );
            garrison_cloud::audit_queue::deliver_event(
                &aws.in_region(region),
                "aws.inspector2",
                "Inspector2 Finding",
                &f,
            )
            .await
            .unwrap();
        }
    });
    let expected = json!({
        "finding": {"id": "gd-7bc1d2e3f4a5b6c7d8e9f0a1b2c3d4e5", "vpc": gd_vpc, "severity": "high",
                    "asset": format!("/aws/{gd_region}/host/i-0a0a0a0a0a0a0a0a0")},
        "exposed": exposed.as_ref().map(|(_, vpc)| json!({"id": "in-1a2b3c4d5e6f708192a3b4c5d6e7f801", "vpc": vpc})),
        "feed": "event feed (EventBridge, seconds)",
        "url": get("GARRISON_ENDPOINT"),
        "key_id": get("GARRISON_ACCESS_KEY_ID"),
        "secret": get("GARRISON_SECRET_KEY"),
        "deployment_name": dep["name"],
        "vpcs": vpcs.len(),
        "protected": protected,
        "appliances": appliances.len(),
        "vpc_status": vpcs.iter().map(|v| (v["vpc_id"].as_str().unwrap().to_string(), v["status"].clone())).collect::<serde_json::Map<_, _>>(),
        "appliance": ids["instance_id"],
        "deployment_id": id,
        "option": "security_resource_tags",
        "mirrored": mirrored,
        "vpc_cost": prot["vpcs"].as_array().unwrap().iter().find(|v| v["vpc_id"] == gd_vpc.as_str())
            .map(|v| json!({"vpc": gd_vpc, "text": format!(" · ${:.2}/month", v["monthly_usd"].as_f64().unwrap())})),
        "exclude": {"region": exclude_region, "vpc": exclude["vpc_id"], "appliances": exclude["appliances"].as_array().unwrap().len()},
    });
    browse("dashboard.mjs", &expected, "dashboard");
    // The same findings through the CLI: the list (critical first) and one by id.
    let ids = cli(&env, &["findings", "list_findings", "--status", "active", "--query", "findings[].id"]);
    let mut want = vec![json!("gd-7bc1d2e3f4a5b6c7d8e9f0a1b2c3d4e5")];
    if exposed.is_some() {
        want.insert(0, json!("in-1a2b3c4d5e6f708192a3b4c5d6e7f801"));
    }
    assert_eq!(ids, json!(want));
    let one = cli(&env, &["findings", "get_finding", "--finding_id", "gd-7bc1d2e3f4a5b6c7d8e9f0a1b2c3d4e5"]);
    assert_eq!((one["severity"].as_str(), one["count"].as_i64()), (Some("high"), Some(1)), "{one}");
    let bad = Command::new(env!("CARGO_BIN_EXE_garrison"))
        .args(["findings", "list_findings", "--severity", "severe"])
        .envs(env.iter().cloned())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("\"field\": \"severity\""),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    drop(demo.stdin.take());
    let _ = demo.wait();
}

/// Runs `script` in Chromium with `expected`; its output, after asserting it passed and left
/// a real screenshot named `shot` in the target directory.
fn browse(script: &str, expected: &Value, shot: &str) -> String {
    let browser_dir = repo().join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").exists() && PathBuf::from("/usr/bin/chromium").exists(),
        "the browser test needs Chromium and playwright-core: run scripts/setup-browser"
    );
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&out_dir).unwrap();
    let expect_file = out_dir.join(format!("{shot}.json"));
    std::fs::write(&expect_file, expected.to_string()).unwrap();
    let shot = out_dir.join(format!("{shot}.png"));
    let _ = std::fs::remove_file(&shot);
    let run = Command::new("node")
        .arg(browser_dir.join(script))
        .arg(&expect_file)
        .arg(&shot)
        .current_dir(&browser_dir)
        .output()
        .expect("node is needed for the browser test");
    let stdout = String::from_utf8_lossy(&run.stdout).to_string();
    println!("{stdout}");
    assert!(run.status.success(), "browser test failed:\n{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("ok - no script errors"), "{stdout}");
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot");
    stdout
}

/// An organization enrolled by `onboard --organization` (one unit, one account of it
/// excluded, another unit left out): the list shows the enrollment with its counts, its
/// view each account with its state and deployment, and who is left out with why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_an_organization_enrollment_in_chromium() {
    use garrison_testkit::organization as org;
    let moto = garrison_cloud::emulator::Moto::start().expect("the AWS emulator is required for this test");
    let aws = garrison_cloud::Aws::from_config(moto.sdk_config("us-east-1").await);
    let root = org::create(&aws).await.unwrap();
    let (prod, dev) = (org::unit(&aws, &root, "prod").await.unwrap(), org::unit(&aws, &root, "dev").await.unwrap());
    let a1 = org::account(&aws, &root, &prod, "prod-a").await.unwrap();
    let a2 = org::account(&aws, &root, &prod, "prod-b").await.unwrap();
    let skipped = org::account(&aws, &root, &prod, "prod-legacy").await.unwrap();
    let other = org::account(&aws, &root, &dev, "dev-a").await.unwrap();
    let s = common::serve_env_worker(&common::moto_env(&moto.url));
    let args = [
        "onboard",
        "--organization",
        "--organizational-unit",
        &prod,
        "--exclude-account",
        &skipped,
        "--name",
        "acme",
        "--region",
        "us-east-1",
        "--level",
        "essentials",
        "--wait",
        "180",
        "--output",
        "json",
    ];
    let out = common::json_out(&common::garrison_env(&s, &args, &common::moto_env(&moto.url)));
    let id = out["enrollment"]["id"].as_str().unwrap();
    let en = common::json_out(&common::garrison(&s, &["deployments", "get_organization", "--organization_id", id]));
    let role = en["status"]["role"].as_str().expect("the role version in the status").to_string();
    let deployment_name = format!("acme {a1}");
    let expected = json!({
        "url": s.url, "key_id": common::KEY_ID, "secret": common::SECRET,
        "org_id": id, "org_name": "acme", "role": role,
        "members": {a1.clone(): "enrolled", a2: "enrolled"},
        "excluded": {skipped: "excluded_account", other: "outside_units", "123456789012": "management"},
        "deployment_name": deployment_name,
    });
    browse("organization.mjs", &expected, "organization");
}

/// Single sign-on through a real OpenID provider run by the test: a reader sees the deployment
/// and cannot change it (no button, 403), an admin can; a replayed state, a cross-site POST, a
/// tampered ID token and one for another audience are refused; after the provider rotates its
/// key, sign-in still works.
#[test]
fn the_dashboard_signs_in_through_an_openid_provider_in_chromium() {
    use common::{ACCOUNT, KEY_ID, SECRET};
    let provider_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("garrison-sso-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mapping = dir.join("mapping.toml");
    std::fs::write(
        &mapping,
        format!(
            "scopes = [\"email\", \"groups\"]\n\
             [[map]]\nvalue = \"garrison-admins\"\naccount_id = \"{ACCOUNT}\"\nrole = \"Administrator\"\n\
             [[map]]\nvalue = \"garrison-readers\"\naccount_id = \"{ACCOUNT}\"\nrole = \"Read Only\"\n"
        ),
    )
    .unwrap();
    let issuer = format!("http://127.0.0.1:{provider_port}");
    let s = common::serve_with(&[
        "--oidc-issuer",
        &issuer,
        "--oidc-client-id",
        "garrison-dashboard",
        "--oidc-client-secret",
        "a-client-secret-of-the-test",
        "--oidc-mapping",
        mapping.to_str().unwrap(),
    ]);
    let env: Vec<(String, String)> = vec![
        ("GARRISON_ENDPOINT".into(), s.url.clone()),
        ("GARRISON_ACCESS_KEY_ID".into(), KEY_ID.into()),
        ("GARRISON_SECRET_KEY".into(), SECRET.into()),
        ("HOME".into(), s.dir.display().to_string()),
    ];
    let cred = cli(
        &env,
        &[
            "credentials",
            "create_credential",
            "--name",
            "sso role",
            "--secrets",
            r#"{"type": "aws_iam_role", "arn": "arn:aws:iam::123412341234:role/garrison"}"#,
        ],
    );
    let dep = cli(
        &env,
        &[
            "deployments",
            "create_deployment",
            "--name",
            "SSO estate",
            "--platform",
            r#"{"type": "aws", "id": "123412341234"}"#,
            "--credentials",
            &format!(r#"[{{"id": "{}", "purpose": "discover"}}]"#, cred["id"].as_str().unwrap()),
        ],
    );
    assert_eq!(dep["enabled"], true);
    let expected = json!({
        "url": s.url, "provider_port": provider_port, "client_id": "garrison-dashboard",
        "client_secret": "a-client-secret-of-the-test", "account": ACCOUNT, "deployment_name": "SSO estate",
    });
    browse("sso.mjs", &expected, "sso");
    // What the browser did is what the API says: the admin disabled it; the users were made
    // with the mapped roles.
    let got = cli(&env, &["deployments", "get_deployment", "--deployment_id", dep["id"].as_str().unwrap()]);
    assert_eq!(got["enabled"], false);
    let users = cli(&env, &["aims", "list_users"]);
    let role_of = |email: &str| {
        users["users"].as_array().unwrap().iter().find(|u| u["email"] == email).map(|u| u["role_ids"][0].clone())
    };
    assert_eq!(role_of("reader@example.com"), Some(json!(garrison_model::account::READ_ONLY_ROLE_ID)));
    assert_eq!(role_of("admin@example.com"), Some(json!(garrison_model::account::ADMINISTRATOR_ROLE_ID)));
    assert_eq!(role_of("mallory@example.com"), None, "refused sign-ins made no user");
    let _ = std::fs::remove_dir_all(&dir);
}
