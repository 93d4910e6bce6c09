//! End to end through the binaries: `garrison serve` as a process, the reference workflow
//! through the `garrison` CLI and through the real alcli (PyPI alcli==1.0.70 in the venv
//! that scripts/setup-python makes).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::*;

const PRO: &str = "D12D5E67-166C-474F-87AA-6F86FC9FB9BC";
/// The reference workflow's first command, run verbatim by both CLIs.
const REFERENCE_GET_ROLE: [&str; 10] = [
    "themis",
    "get_role",
    "--account_id",
    ACCOUNT,
    "--platform_type",
    "aws",
    "--role_type",
    "ci_full",
    "--role_version",
    "latest",
];
#[test]
fn reference_workflow_through_the_garrison_cli() {
    let s = serve();
    let role = json_out(&garrison(&s, &REFERENCE_GET_ROLE));
    assert_eq!(role["type"], "ci_full");
    // The same role as Terraform: HCL printed as it is, not as a JSON string.
    let tf = garrison(&s, &[&REFERENCE_GET_ROLE[..], &["--format", "terraform"]].concat());
    let hcl = String::from_utf8_lossy(&tf.stdout);
    assert!(tf.status.success(), "{}", String::from_utf8_lossy(&tf.stderr));
    assert!(
        hcl.starts_with("# garrison ci_full role") && hcl.contains("\nresource \"aws_iam_role\" \"garrison\" {\n"),
        "{hcl}"
    );
    let bad = garrison(&s, &[&REFERENCE_GET_ROLE[..], &["--format", "yaml"]].concat());
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("\"field\": \"format\""),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let secrets = r#"{"arn": "arn:aws:iam::123412341234:role/garrison", "type": "aws_iam_role"}"#;
    let cred = json_out(&garrison(
        &s,
        &["credentials", "create_credential", "--account_id", ACCOUNT, "--name", "IAM policy", "--secrets", secrets],
    ));
    assert_eq!(cred["secrets"]["external_id"], role["external_id"]);
    let cid = cred["id"].as_str().unwrap();
    let creds = format!(r#"[{{"id": "{cid}", "purpose": "discover"}}]"#);
    let scope = format!(
        r#"{{"include": [{{"type": "region", "key": "/aws/us-east-1", "policy": {{"id": "{PRO}"}}}}], "exclude": []}}"#
    );
    let dep = json_out(&garrison(
        &s,
        &[
            "deployments",
            "create_deployment",
            "--account_id",
            ACCOUNT,
            "--name",
            "My Deployment",
            "--platform",
            r#"{"type": "aws", "id": "123412341234"}"#,
            "--credentials",
            &creds,
            "--mode",
            "automatic",
            "--scope",
            &scope,
        ],
    ));
    assert_eq!((dep["version"].as_i64(), dep["status"]["status"].as_str()), (Some(1), Some("new")));
    let id = dep["id"].as_str().unwrap();
    // --query, --output table, account defaulting to the key's account.
    let names = garrison(&s, &["--query", "[].name", "deployments", "list_deployments"]);
    assert_eq!(json_out(&names), serde_json::json!(["My Deployment"]));
    let table =
        garrison(&s, &["deployments", "list_deployments", "--output", "table", "--query", "[].{id: id, mode: mode}"]);
    assert_eq!(
        String::from_utf8_lossy(&table.stdout).trim(),
        format!("ID{}  MODE\n{id}  automatic", " ".repeat(id.len() - 2))
    );
    // Stale version: HTTP 409 on stderr, non-zero exit.
    let stale = garrison(
        &s,
        &[
            "deployments",
            "update_deployment",
            "--account_id",
            ACCOUNT,
            "--deployment_id",
            id,
            "--version",
            "7",
            "--name",
            "x",
        ],
    );
    assert_eq!(stale.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&stale.stderr).contains("HTTP 409"));
    // The reference sample's mistakes get precise errors, and nothing is sent.
    let obj = garrison(
        &s,
        &[
            "deployments",
            "create_deployment",
            "--name",
            "x",
            "--credentials",
            &format!(r#"{{"id": "{cid}", "purpose": "discover"}}"#),
        ],
    );
    assert_eq!(obj.status.code(), Some(2));
    let err = String::from_utf8_lossy(&obj.stderr);
    assert!(
        err.contains("--credentials: expected a JSON array […], found a single object")
            && err.contains("wrap it in brackets"),
        "{err}"
    );
    let bad_scope = garrison(
        &s,
        &[
            "deployments",
            "create_deployment",
            "--name",
            "x",
            "--scope",
            r#"{"include": [{"type": "region", key: "/aws/us-east-1"}]}"#,
        ],
    );
    assert_eq!(bad_scope.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad_scope.stderr);
    assert!(
        err.contains("--scope: expected a JSON object; found invalid JSON: key must be a string at line 1 column 33")
            && err.contains("^ here"),
        "{err}"
    );
    let after = json_out(&garrison(&s, &["deployments", "list_deployments"]));
    assert_eq!(after.as_array().unwrap().len(), 1, "nothing half-written");
    // A server-side validation error names the field on stderr.
    let bad = garrison(
        &s,
        &[
            "deployments",
            "create_deployment",
            "--name",
            "x",
            "--platform",
            "type=aws,id=1",
            "--credentials",
            &creds,
            "--scope",
            &scope,
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("\"field\": \"platform.id\""));
    // Delete: 204 prints nothing and exits 0.
    let del = garrison(&s, &["deployments", "delete_deployment", "--deployment_id", id]);
    assert!(del.status.success() && del.stdout.is_empty());
    // Unreachable server: exit 3.
    let dead = Command::new(env!("CARGO_BIN_EXE_garrison"))
        .args([
            "--endpoint",
            &format!("http://127.0.0.1:{}", free_port()),
            "--access_key_id",
            "a",
            "--secret_key",
            "b",
            "policies",
            "list_policies",
        ])
        .env("HOME", &s.dir)
        .output()
        .unwrap();
    assert_eq!(dead.status.code(), Some(3));
}

fn alcli_path() -> PathBuf {
    if let Ok(p) = std::env::var("GARRISON_ALCLI") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-alcli/bin/alcli")
}

/// The real alcli against `s`, signed in with the root key.
fn alcli(s: &Server, args: &[&str]) -> std::process::Output {
    let alcli = alcli_path();
    assert!(
        alcli.exists(),
        "alcli not found at {} — run scripts/setup-python (it installs alcli==1.0.70 into .venv)",
        alcli.display()
    );
    Command::new(&alcli)
        .args(args)
        .env("ALERTLOGIC_ENDPOINT", &s.url)
        .env("ALERTLOGIC_ACCESS_KEY_ID", KEY_ID)
        .env("ALERTLOGIC_SECRET_KEY", SECRET)
        .env("HOME", &s.dir)
        .output()
        .unwrap()
}

/// alcli's own aims definitions reach the role routes: global roles listed, a user created
/// with one, another granted, the grant read back, permissions in the reference's shape.
#[test]
fn roles_through_the_real_alcli() {
    let s = serve();
    let run = |args: &[&str]| alcli(&s, args);
    let global = json_out(&run(&["aims", "list_global_roles"]));
    let names: Vec<&str> = global["roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Administrator", "Owner", "Power User", "User", "Read Only", "Support"]);
    let roles = json_out(&run(&["aims", "list_roles", "--account_id", ACCOUNT]));
    assert_eq!(roles["roles"].as_array().unwrap().len(), 6, "{roles}");
    let user = json_out(&run(&[
        "aims",
        "create_user",
        "--account_id",
        ACCOUNT,
        "--name",
        "Rita Reader",
        "--email",
        "rita@example.com",
    ]));
    let uid = user["id"].as_str().unwrap_or_else(|| panic!("{user}"));
    let read_only = "F578CCE5-9574-4489-BF05-A04075838DE3";
    let grant = run(&["aims", "grant_user_role", "--account_id", ACCOUNT, "--user_id", uid, "--role_id", read_only]);
    assert!(grant.status.success(), "{}", String::from_utf8_lossy(&grant.stderr));
    let ids = json_out(&run(&["aims", "get_assigned_role_ids", "--account_id", ACCOUNT, "--user_id", uid]));
    assert_eq!(ids["role_ids"], serde_json::json!([read_only]));
    let perms = json_out(&run(&["aims", "get_user_permissions", "--account_id", ACCOUNT, "--user_id", uid]));
    assert_eq!(perms["permissions"], serde_json::json!([{"*:own:list:*": "allowed"}, {"*:own:get:*": "allowed"}]));
    let detail = json_out(&run(&["aims", "get_role_details", "--account_id", ACCOUNT, "--role_id", read_only]));
    assert_eq!(detail["name"], "Read Only");
    // Granting oneself is the reference's self_grant_error, shown by alcli as an error.
    let root = json_out(&run(&["aims", "list_users", "--account_id", ACCOUNT]));
    let root_id = root["users"][0]["id"].as_str().unwrap();
    let own = run(&["aims", "grant_user_role", "--account_id", ACCOUNT, "--user_id", root_id, "--role_id", read_only]);
    let text = format!("{}{}", String::from_utf8_lossy(&own.stdout), String::from_utf8_lossy(&own.stderr));
    assert!(text.contains("self_grant_error") || text.contains("400"), "{text}");
}

#[test]
fn reference_workflow_through_the_real_alcli() {
    let s = serve();
    let run = |args: &[&str]| json_out(&alcli(&s, args));
    let role = run(&REFERENCE_GET_ROLE);
    assert_eq!((role["type"].as_str(), role["version"].as_str()), (Some("ci_full"), Some("2026-12-07")));
    let cred = run(&[
        "credentials",
        "create_credential",
        "--account_id",
        ACCOUNT,
        "--name",
        "IAM policy",
        "--secrets",
        r#"{"arn": "arn:aws:iam::123412341234:role/garrison", "type": "aws_iam_role"}"#,
    ]);
    assert_eq!(cred["secrets"]["external_id"], role["external_id"]);
    let cid = cred["id"].as_str().unwrap();
    let dep = run(&[
        "deployments",
        "create_deployment",
        "--account_id",
        ACCOUNT,
        "--name",
        "My Deployment",
        "--platform",
        r#"{"type": "aws", "id": "123412341234"}"#,
        "--credentials",
        &format!(r#"[{{"id": "{cid}", "purpose": "discover"}}]"#),
        "--mode",
        "automatic",
        "--scope",
        &format!(
            r#"{{"include": [{{"type": "region", "key": "/aws/us-east-1", "policy": {{"id": "{PRO}"}}}}], "exclude": []}}"#
        ),
    ]);
    assert_eq!(dep["name"], "My Deployment");
    assert_eq!(dep["credentials"][0]["id"], cid);
    // alcli injects enabled/discover/scan/is_control_tower defaults; they arrive as sent.
    assert_eq!((dep["enabled"].as_bool(), dep["is_control_tower"].as_bool()), (Some(true), Some(false)));
    let got = run(&[
        "deployments",
        "get_deployment",
        "--account_id",
        ACCOUNT,
        "--deployment_id",
        dep["id"].as_str().unwrap(),
    ]);
    assert_eq!(got["scope"]["include"][0]["policy"]["id"], PRO);
    // Tuning options through alcli's otis definitions.
    let dep_id = dep["id"].as_str().unwrap();
    let opt = run(&[
        "otis",
        "create_option",
        "--account_id",
        ACCOUNT,
        "--option",
        &format!(
            r#"{{"name": "ids_appliances_placement", "scope": {{"deployment_id": "{dep_id}"}}, "value": {{"policy": "automatic", "max_zones": 1}}}}"#
        ),
    ]);
    assert_eq!(opt["value"]["max_zones"], 1, "{opt}");
    let opts = run(&["otis", "list_options", "--account_id", ACCOUNT]);
    assert_eq!(opts[0]["id"], opt["id"]);
    let got_opt = run(&["otis", "get_option", "--account_id", ACCOUNT, "--option_id", opt["id"].as_str().unwrap()]);
    assert_eq!(got_opt["scope"]["deployment_id"], dep_id);
    // Scan schedules through alcli's scan_scheduler definitions: the default one is listed,
    // a schedule with a window created from alcli's expanded body.
    let scheds = run(&["scan_scheduler", "list_schedules", "--account_id", ACCOUNT, "--deployment_id", dep_id]);
    assert_eq!(scheds[0]["default"], true, "{scheds}");
    let created = run(&[
        "scan_scheduler",
        "create_schedule",
        "--account_id",
        ACCOUNT,
        "--deployment_id",
        dep_id,
        "--name",
        "nightly",
        "--scan_frequency",
        "daily",
        "--scan_windows",
        // (alcli's schema wants `start_day` in this window too; garrison accepts it.)
        r#"[{"type": "days_of_week", "start_time": "22:00", "end_time": "02:00", "start_day": 1, "days_of_week": [1, 2, 3]}]"#,
    ]);
    assert_eq!(
        (created["name"].as_str(), created["scan_windows"][0]["start_time"].as_str()),
        (Some("nightly"), Some("22:00")),
        "{created}"
    );
    let got = run(&[
        "scan_scheduler",
        "get_schedule",
        "--account_id",
        ACCOUNT,
        "--deployment_id",
        dep_id,
        "--id",
        created["id"].as_str().unwrap(),
    ]);
    assert_eq!(got["scan_frequency"], "daily");
    // Notifications through alcli's own connectors and herald definitions.
    let types = run(&["herald", "get_notification_types"]);
    assert_eq!(types["notification_types"][0]["notification_type"], "findings/opened");
    let conn = run(&[
        "connectors",
        "create_connection",
        "--account_id",
        ACCOUNT,
        "--data",
        r#"{"name": "security hook", "type": "webhook", "target_url": "https://hooks.example.com/garrison",
            "payload_conversion_type": "default", "payload_template": "{}"}"#,
    ]);
    assert!(conn["signing_secret"].as_str().unwrap().starts_with("gsec_"), "{conn}");
    let conn_id = conn["id"].as_str().unwrap();
    let sub = run(&[
        "herald",
        "create_subscription",
        "--account_id",
        ACCOUNT,
        "--name",
        "high findings",
        "--class",
        "event",
        "--notification_type",
        "findings/opened",
        "--options",
        r#"{"min_severity": "high"}"#,
        "--subscribers",
        &format!(r#"[{{"subscriber": "{conn_id}", "subscriber_type": "connection"}}]"#),
    ]);
    assert_eq!(
        (sub["notification_type"].as_str(), sub["subscriber_count"].as_u64()),
        (Some("findings/opened"), Some(1))
    );
    let listed = run(&["connectors", "list_connections", "--account_id", ACCOUNT]);
    assert_eq!(listed[0]["id"], conn_id);
    assert!(listed[0].get("signing_secret").is_none());
    // alcli sends the dead-letter routes (no account in their path) to Alert Logic's own
    // connectors host, past the endpoints lookup: garrison's CLI reaches them here.
    let dead = json_out(&garrison(&s, &["connectors", "list_dlq_messages", "--key", "notifications"]));
    assert_eq!(dead["count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_published_to_s3_are_what_themis_points_at() {
    let moto = garrison_cloud::emulator::Moto::start().expect("the AWS emulator is required for this test");
    let aws = garrison_cloud::Aws::from_config(moto.sdk_config("us-east-1").await);
    aws.s3().create_bucket().bucket("operator-templates").send().await.unwrap();
    // The standard AWS environment variables, AWS_ENDPOINT_URL included: no emulator switch.
    let out = Command::new(env!("CARGO_BIN_EXE_garrison"))
        .args(["publish-templates", "--bucket", "operator-templates", "--aws-principal", "210987654321"])
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("GARRISON_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(printed.lines().count(), 11, "{printed}");
    let obj = aws.s3().get_object().bucket("operator-templates").key("ci_full/2026-12-07").send().await.unwrap();
    let body: Value = serde_json::from_slice(&obj.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(
        body["Resources"]["GarrisonRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::210987654321:root"
    );

    // A server configured with the bucket points get_role's cft there.
    let s = serve_with(&["--template-bucket", "operator-templates"]);
    let role = json_out(&garrison(
        &s,
        &["themis", "get_role", "--platform_type", "aws", "--role_type", "ci_full", "--role_version", "latest"],
    ));
    assert_eq!(
        role["cft"],
        serde_json::json!({"s3_bucket": "operator-templates", "s3_key": "ci_full/2026-12-07", "s3_url": "https://operator-templates.s3.amazonaws.com/ci_full/2026-12-07"})
    );
}

#[test]
fn first_start_prints_the_root_key_once_and_it_works() {
    use std::io::{BufRead, BufReader};
    let dir = std::env::temp_dir().join(format!("garrison-cli-first-{}", rand_u64()));
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_garrison"))
            .args(["serve", "--no-worker", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir)
            .envs(NO_AWS)
            .env("GARRISON_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = start();
    let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
    let mut printed = vec![];
    for _ in 0..4 {
        printed.push(lines.next().unwrap().unwrap());
    }
    let grab = |prefix: &str| {
        printed.iter().find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string())).unwrap()
    };
    let (key, secret) = (grab("access_key_id:"), grab("secret_key:"));
    assert_eq!((key.len(), secret.len()), (16, 64));
    let _ = first.kill();
    let _ = first.wait();
    // Second start on the same data: nothing printed, the same key still works.
    let mut second = start();
    let mut lines = BufReader::new(second.stdout.take().unwrap()).lines();
    let first_line = lines.next().unwrap().unwrap();
    let url = first_line.strip_prefix("garrison: listening on ").expect("nothing but the address printed").to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_garrison"))
        .args([
            "--endpoint",
            &url,
            "--access_key_id",
            &key,
            "--secret_key",
            &secret,
            "aims",
            "get_token_info",
            "--query",
            "account.name",
        ])
        .env("HOME", &dir)
        .output()
        .unwrap();
    // The server runs without transparent huge pages (main.rs: they kept whole 2 MiB pages
    // resident for a few live blocks each).
    let status = std::fs::read_to_string(format!("/proc/{}/status", second.id())).unwrap();
    let _ = second.kill();
    assert!(status.lines().any(|l| l.split_whitespace().eq(["THP_enabled:", "0"])), "{status}");
    let rest: String = lines.map_while(Result::ok).collect::<Vec<_>>().join("\n");
    let _ = second.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "\"root\"", "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!rest.contains("secret_key"), "printed again: {rest}");
}

#[test]
fn keys_come_from_a_profile_file_when_not_given() {
    let s = serve();
    let home = s.dir.join("home");
    std::fs::create_dir_all(home.join(".garrison")).unwrap();
    std::fs::write(
        home.join(".garrison/config"),
        format!("[default]\nendpoint = http://127.0.0.1:1\n\n[lab]\nendpoint = {}\naccess_key_id = {KEY_ID}\nsecret_key = {SECRET}\n", s.url),
    )
    .unwrap();
    let run =
        |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_garrison")).args(args).env("HOME", &home).output().unwrap();
    let ok = run(&["--profile", "lab", "policies", "list_policies", "--query", "length(@)"]);
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "3", "{}", String::from_utf8_lossy(&ok.stderr));
    // The default profile has no key: a precise message, exit 2, nothing sent.
    let missing = run(&["policies", "list_policies"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no access key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn themis_validate_reads_the_real_role() {
    let moto = garrison_cloud::emulator::Moto::start().expect("the AWS emulator is required for this test");
    let aws = garrison_cloud::Aws::from_config(moto.sdk_config("us-east-1").await);
    let s = serve_env(&[], &moto_env(&moto.url));
    let (ext, stack) = customer_creates_role(&s, &aws, "ci_full", "garrison").await;
    let cred = |arn: &str| {
        serde_json::json!({"platform_type": "aws", "role_type": "ci_full", "arn": arn, "external_id": ext}).to_string()
    };
    let ok = json_out(&garrison(
        &s,
        &[
            "themis",
            "validate_credentials",
            "--platform_type",
            "aws",
            "--role_type",
            "ci_full",
            "--credential",
            &cred(&stack.role_arn),
        ],
    ));
    assert_eq!((ok["status"].as_str(), ok["message"].as_str()), (Some("latest"), Some("Validation successful")));
    assert_eq!(ok["validation"]["capabilities"]["guardduty"]["ok"], true);

    // A role any principal may assume with that ExternalId is refused, with the reason.
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": ext}}}]});
    let r = aws
        .iam()
        .create_role()
        .role_name("too-open")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    let out = garrison(
        &s,
        &[
            "themis",
            "validate_credentials",
            "--platform_type",
            "aws",
            "--role_type",
            "ci_full",
            "--credential",
            &cred(r.role().unwrap().arn()),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"status\": \"unsafe\"") && err.contains("lets anyone"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_discovers_a_new_deployment_and_assets_query_shows_it() {
    let moto = garrison_cloud::emulator::Moto::start().expect("the AWS emulator is required for this test");
    let aws = garrison_cloud::Aws::from_config(moto.sdk_config("us-east-1").await);
    let spec = garrison_cloud::estate::EstateSpec { containers: false, ..garrison_cloud::estate::EstateSpec::s() };
    let estate = garrison_cloud::estate::build(&garrison_cloud::Sessions::new(aws.clone()), &spec).await.unwrap();
    // This server runs its worker (no --no-worker).
    let s = serve_env_worker(&moto_env(&moto.url));
    let (_, stack) = customer_creates_role(&s, &aws, "ci_readonly", "garrison-ro").await;
    let cred = json_out(&garrison(
        &s,
        &[
            "credentials",
            "create_credential",
            "--name",
            "ro",
            "--secrets",
            &format!(r#"{{"type": "aws_iam_role", "arn": "{}"}}"#, stack.role_arn),
        ],
    ));
    let dep = json_out(&garrison(
        &s,
        &[
            "deployments",
            "create_deployment",
            "--name",
            "estate",
            "--mode",
            "readonly",
            "--platform",
            r#"{"type": "aws", "id": "123456789012"}"#,
            "--credentials",
            &format!(r#"[{{"id": "{}", "purpose": "discover"}}]"#, cred["id"].as_str().unwrap()),
            "--scope",
            r#"{"include": [{"type": "region", "key": "/aws/us-east-1"}], "exclude": []}"#,
        ],
    ));
    let id = dep["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let st =
            json_out(&garrison(&s, &["deployments", "get_deployment", "--deployment_id", &id, "--query", "status"]));
        if st["status"] != "new" {
            break st;
        }
        assert!(Instant::now() < deadline, "the worker never ran");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status["status"], "ok", "{status}");
    let east: Vec<&garrison_cloud::estate::BuiltVpc> = estate.vpcs().filter(|v| v.region == "us-east-1").collect();
    let want_hosts: usize = east.iter().map(|v| v.instances.len()).sum();
    let hosts = json_out(&garrison(
        &s,
        &[
            "assets_query",
            "query_deployment_assets",
            "--deployment_id",
            &id,
            "--asset_types",
            "h:host",
            "--query",
            "rows",
        ],
    ));
    assert_eq!(hosts.as_u64(), Some(want_hosts as u64));
    let vpcs = json_out(&garrison(
        &s,
        &[
            "assets_query",
            "query_deployment_assets",
            "--deployment_id",
            &id,
            "--asset_types",
            "v:vpc",
            "--query",
            "assets[*][0].key",
        ],
    ));
    for v in &east {
        assert!(
            vpcs.as_array().unwrap().iter().any(|k| k.as_str() == Some(&format!("/aws/us-east-1/vpc/{}", v.id))),
            "{vpcs}"
        );
    }
    assert!(!vpcs.to_string().contains("us-west-2"), "out-of-scope regions are not read");
}

#[test]
fn rotating_the_seal_key_reseals_everything_and_the_old_key_is_refused() {
    use std::io::{BufRead, BufReader};
    let mut s = serve();
    let arn = "arn:aws:iam::123412341234:role/rotated";
    let cred = json_out(&garrison(
        &s,
        &[
            "credentials",
            "create_credential",
            "--name",
            "r",
            "--secrets",
            &format!(r#"{{"type": "aws_iam_role", "arn": "{arn}"}}"#),
        ],
    ));
    let _ = s.child.kill();
    let _ = s.child.wait();
    let rotate = |new: &str| {
        Command::new(env!("CARGO_BIN_EXE_garrison"))
            .args(["rotate-seal-key", "--data-dir"])
            .arg(&s.dir)
            .args(["--new-key-file", new])
            .env("GARRISON_LOG", "error")
            .output()
            .unwrap()
    };
    let new_key = s.dir.join("new.key");
    let out = rotate(new_key.to_str().unwrap());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("re-sealed 1 external id(s), 1 credential(s)"), "{said}");
    assert_eq!(std::fs::read_to_string(&new_key).unwrap().trim().len(), 64);
    // The old key no longer opens the store: a second rotation and a start with it fail loudly.
    let again = rotate(s.dir.join("other.key").to_str().unwrap());
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("does not open"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(!s.dir.join("other.key").exists(), "no key written when nothing was rotated");
    let start = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_garrison"))
            .args(["serve", "--no-worker", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&s.dir)
            .args(extra)
            .envs(NO_AWS)
            .env("GARRISON_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let old = start(&[]).wait_with_output().unwrap();
    assert!(!old.status.success());
    assert!(String::from_utf8_lossy(&old.stderr).contains("does not open"), "{}", String::from_utf8_lossy(&old.stderr));
    // With the new key everything reads as before.
    let mut server = start(&["--seal-key-file", new_key.to_str().unwrap()]);
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let url = lines.next().unwrap().unwrap().strip_prefix("garrison: listening on ").unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_garrison"))
        .args(["--endpoint", &url, "--access_key_id", KEY_ID, "--secret_key", SECRET])
        .args([
            "credentials",
            "get_credential",
            "--credential_id",
            cred["id"].as_str().unwrap(),
            "--query",
            "secrets.arn",
        ])
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(
        json_out(&out),
        serde_json::json!(arn),
        "the credential opens under the new key; the root key still signs in"
    );
}

/// The SQLite store is one process's: a second `serve` or `worker` on the data directory
/// refuses to start (pointing to PostgreSQL); the directory is 0700 and its files 0600; a
/// server that cannot bind its port creates nothing; a short operator-given root secret is
/// refused; `--help` lists every command.
#[test]
fn the_data_directory_is_private_and_held_by_one_process() {
    use std::os::unix::fs::PermissionsExt;
    let s = serve_env(&[], &NO_AWS);
    // The first server made and holds the store.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&s.dir), 0o700, "data dir");
    for f in ["garrison.db", "seal.key"] {
        assert_eq!(mode(&s.dir.join(f)), 0o600, "{f}");
    }
    for f in ["garrison.db-wal", "garrison.db-shm"] {
        if s.dir.join(f).exists() {
            assert_eq!(mode(&s.dir.join(f)), 0o600, "{f}");
        }
    }
    for cmd in ["serve", "worker"] {
        let out = Command::new(env!("CARGO_BIN_EXE_garrison"))
            .args([cmd, "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&s.dir)
            .envs(NO_AWS)
            .env("GARRISON_LOG", "error")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {err}");
        assert!(err.contains("another garrison process") && err.contains("PostgreSQL"), "{cmd}: {err}");
    }
    // Nor may the seal key be rotated under it.
    let out = Command::new(env!("CARGO_BIN_EXE_garrison"))
        .args(["rotate-seal-key", "--new-key-file"])
        .arg(s.dir.join("new.key"))
        .arg("--data-dir")
        .arg(&s.dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another garrison process"));
    assert!(!s.dir.join("new.key").exists());
    // The first server is unharmed.
    let info = json_out(&garrison(&s, &["aims", "get_token_info", "--query", "account.id"]));
    assert_eq!(info, ACCOUNT);

    // A port that is taken: nothing created, no key printed.
    let port = s.url.rsplit(':').next().unwrap().to_string();
    let dir = std::env::temp_dir().join(format!("garrison-cli-bind-{}", rand_u64()));
    let out = Command::new(env!("CARGO_BIN_EXE_garrison"))
        .args(["serve", "--no-worker", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(&dir)
        .envs(NO_AWS)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("binding"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("secret_key"));
    assert!(!dir.join("garrison.db").exists(), "a store was created by a server that could not listen");

    // A one-character root secret is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_garrison"))
        .args(["serve", "--no-worker", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .envs(NO_AWS)
        .env("GARRISON_ROOT_ACCESS_KEY_ID", "0123456789abcdef")
        .env("GARRISON_ROOT_SECRET_KEY", "x")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("at least 32 characters"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    // Every command is in the help.
    let help = Command::new(env!("CARGO_BIN_EXE_garrison")).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for cmd in ["serve", "worker", "demo", "onboard", "publish-templates", "rotate-seal-key", "deployments", "aims"] {
        assert!(text.contains(cmd), "--help lacks {cmd}: {text}");
    }
    // Logs that go to a file or a pipe carry no colour codes.
    let mut child = Command::new(env!("CARGO_BIN_EXE_garrison"))
        .args(["serve", "--no-worker", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .envs(NO_AWS)
        .env("GARRISON_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
    let line = lines.find(|l| l.as_ref().is_ok_and(|l| l.contains("seal key"))).unwrap().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!line.contains('\u{1b}'), "colour codes in a piped log: {line:?}");
}

/// A server started with no AWS credentials of its own: the deployment's status says so in
/// one sentence an operator can act on (not the SDK's debug dump), and names no role.
#[test]
fn without_aws_credentials_the_status_says_what_to_do() {
    let env = [
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
        ("AWS_CONFIG_FILE", "/nonexistent/config"),
    ];
    let s = serve_cmd(&[], &env, true);
    let cred = json_out(&garrison(
        &s,
        &[
            "credentials",
            "create_credential",
            "--name",
            "r",
            "--secrets",
            r#"{"type": "aws_iam_role", "arn": "arn:aws:iam::123412341234:role/TeamSecretRole"}"#,
        ],
    ));
    let creds = format!(r#"[{{"id": "{}", "purpose": "discover"}}]"#, cred["id"].as_str().unwrap());
    let scope = r#"{"include": [{"type": "region", "key": "/aws/us-east-1", "policy": {"id": "A8E8B104-8F45-411D-A240-A30EA5FE25B0"}}], "exclude": []}"#;
    let dep = json_out(&garrison(
        &s,
        &[
            "deployments",
            "create_deployment",
            "--name",
            "d",
            "--platform",
            r#"{"type": "aws", "id": "123412341234"}"#,
            "--credentials",
            &creds,
            "--scope",
            scope,
        ],
    ));
    let id = dep["id"].as_str().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        let d = json_out(&garrison(&s, &["deployments", "get_deployment", "--deployment_id", id]));
        if d["status"]["status"] == "error" {
            break d["status"].clone();
        }
        assert!(std::time::Instant::now() < deadline, "no error status: {d}");
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    let message = status["message"].as_str().unwrap_or_default();
    assert!(message.contains("garrison has no AWS credentials of its own: set AWS_PROFILE"), "{message}");
    assert!(message.len() < 400, "{} characters: {message}", message.len());
    assert!(!message.contains("TeamSecretRole") && !message.contains("Debug"), "{message}");
    // The code beside the words: scripts and alerts key on it; the operator must act, so the
    // worker waits for a change or the resync instead of retrying.
    assert_eq!(status["reason"], "no_aws_credentials", "{status}");
}

/// The binary's relative relocations are packed (build.rs): a few kilobytes to apply at start
/// instead of the 3.5 MB `.rela.dyn` that stayed resident.
#[test]
fn the_binary_packs_its_relocations() {
    let out =
        Command::new("readelf").arg("-dW").arg(env!("CARGO_BIN_EXE_garrison")).output().expect("readelf (binutils)");
    let dynamic = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dynamic.contains("(RELR)"), "no DT_RELR: {dynamic}");
    let relacount = dynamic
        .lines()
        .find(|l| l.contains("(RELACOUNT)"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(relacount < 1000, "{relacount} relative relocations left unpacked");
}

/// Once listening, the server drops the pages of its code that starting touched (resident.rs:
/// the kernel maps code 64 KiB around each first touch, and most of what starting ran never
/// runs again), says how much, and serves on.
#[test]
fn the_server_lets_go_of_its_startup_code_and_serves_on() {
    use std::io::{BufRead, BufReader};
    let mut s = serve_logging("info", Stdio::piped());
    let mut err = BufReader::new(s.child.stderr.take().unwrap()).lines().map_while(Result::ok);
    let said = err.find(|l| l.contains("garrison listening")).expect("the listening line is logged");
    // Drained on: a server whose log pipe is closed cannot log the requests below.
    std::thread::spawn(move || err.for_each(drop));
    let kib: u64 = said
        .split_whitespace()
        .find_map(|w| w.strip_prefix("startup_pages_dropped_kib="))
        .unwrap_or_else(|| panic!("no figure in {said:?}"))
        .parse()
        .unwrap();
    // The debug binary's code alone is tens of MiB.
    assert!(kib > 10 << 10, "{said}");
    assert_eq!(json_out(&garrison(&s, &["aims", "get_token_info", "--query", "account.id"])), ACCOUNT);
}

/// A log that cannot be written (a full disk, a reader gone) costs the log, not the server:
/// it used to panic at its first line, when the subscriber reported the failure on stderr.
#[test]
fn a_server_whose_log_cannot_be_written_serves_on() {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let mut s = serve_logging("debug", full.into());
    for _ in 0..2 {
        assert_eq!(json_out(&garrison(&s, &["aims", "get_token_info", "--query", "account.id"])), ACCOUNT);
    }
    assert!(s.child.try_wait().unwrap().is_none(), "the server is still running");
}
