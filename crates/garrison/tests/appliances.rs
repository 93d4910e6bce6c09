//! Appliances that report in, end to end: `garrison serve` with its worker protects a VPC
//! on the emulator with an IDS and a scanner, each launched with user data carrying a
//! one-time bootstrap token; one real `garrison appliance run` process per appliance, given
//! what its user data says, registers and sends heartbeats. A token replayed or used from
//! another instance is refused and recorded; appliance credentials open no tenant route and
//! tenant tokens no appliance route; a killed agent turns its appliance silent and opens a
//! health item with its remedy, concluded when it reports again; an IDS whose sensor stops
//! counting is degraded; removing the deployment revokes the appliances, whose agents stop.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use garrison_cloud::estate::{self, EstateSpec};
use serde_json::{Value, json};

const PRO: &str = "D12D5E67-166C-474F-87AA-6F86FC9FB9BC";

/// One agent process and what it was started with.
struct Agent {
    child: Child,
    instance: String,
    role: String,
    state: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent(endpoint: &str, token: Option<&str>, role: &str, instance: &str, state: &Path, stats: &Path) -> Agent {
    let mut c = Command::new(env!("CARGO_BIN_EXE_garrison"));
    c.args(["appliance", "run", "--endpoint", endpoint, "--role", role, "--instance-id", instance, "--state-dir"])
        .arg(state)
        .env_remove("GARRISON_BOOTSTRAP_TOKEN")
        .env("GARRISON_LOG", "warn")
        .stdout(Stdio::null())
        // Its warnings and errors (a refused registration, a failed heartbeat) are what tells
        // a failure of this test apart.
        .stderr(Stdio::inherit());
    if let Some(t) = token {
        c.args(["--token", t]);
    }
    if role == "ids" {
        c.arg("--sensor-stats").arg(stats);
    }
    Agent {
        child: c.spawn().expect("start garrison appliance run"),
        instance: instance.into(),
        role: role.into(),
        state: state.into(),
    }
}

/// The environment file the user data writes, as a map.
fn user_data_env(user_data: &str) -> BTreeMap<String, String> {
    user_data
        .lines()
        .filter_map(|l| l.trim().split_once('='))
        .filter(|(k, _)| k.starts_with("GARRISON_"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn token(url: &str) -> String {
    let auth: Value = reqwest::Client::new()
        .post(format!("{url}/aims/v1/authenticate"))
        .basic_auth(KEY_ID, Some(SECRET))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    auth["authentication"]["token"].as_str().unwrap().to_string()
}

fn health(s: &Server, id: &str) -> Value {
    json_out(&garrison(s, &["deployments", "list_health", "--deployment_id", id]))
}

/// Waits until the deployment's health satisfies `done`.
fn health_when(s: &Server, id: &str, what: &str, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let h = health(s, id);
        if done(&h) {
            return h;
        }
        assert!(Instant::now() < deadline, "never came: {what}; last health: {h:#}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn state_of<'a>(h: &'a Value, instance: &str) -> &'a str {
    h["appliances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["instance_id"] == instance)
        .and_then(|a| a["state"].as_str())
        .unwrap_or("absent")
}

/// The report's appliances: (key, instance, state).
fn reported(s: &Server, id: &str) -> Vec<(String, String, String)> {
    let r = json_out(&garrison(s, &["deployments", "get_protection", "--deployment_id", id]));
    r["vpcs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| v["appliances"].as_array().unwrap().clone())
        .map(|a| {
            let f = |k: &str| a[k].as_str().unwrap().to_string();
            (f("key"), f("instance_id"), f("state"))
        })
        .collect()
}

/// The instances EC2 runs under an appliance key (its tag), whatever garrison calls them now.
async fn running_under(aws: &garrison_cloud::Aws, key: &str) -> std::collections::BTreeSet<String> {
    estate::instances_tagged(aws, "us-east-1", garrison_model::protection::TAG_KEY, key)
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, state)| state == "running" || state == "pending")
        .map(|(id, _)| id)
        .collect()
}

/// A webhook receiver on loopback: every body it gets.
async fn receiver() -> (String, Arc<std::sync::Mutex<Vec<Value>>>) {
    let got: Arc<std::sync::Mutex<Vec<Value>>> = Arc::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, got)
}

fn item<'a>(h: &'a Value, key: &str) -> Option<&'a Value> {
    h["items"].as_array().unwrap().iter().find(|i| i["key"] == key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appliances_register_beat_fall_silent_and_are_revoked_with_real_agents() {
    let moto = garrison_cloud::emulator::Moto::start().expect("the AWS emulator is required for this test");
    let aws = garrison_cloud::Aws::from_config(moto.sdk_config("us-east-1").await);
    let spec = EstateSpec {
        regions: vec!["us-east-1".into()],
        vpcs: 1,
        instances: 2,
        empty_every: 0,
        stopped_every: 0,
        zones_per_vpc: 1,
        ..EstateSpec::s_bare()
    };
    let est = estate::build(&garrison_cloud::Sessions::new(aws.clone()), &spec).await.unwrap();
    let vpc = est.vpcs().next().unwrap().id.clone();
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let s = serve_at(
        &format!("127.0.0.1:{port}"),
        &[
            "--appliance-endpoint",
            &endpoint,
            "--heartbeat-interval",
            "1",
            "--register-within",
            "15",
            "--allow-private-webhooks",
        ],
        &moto_env(&moto.url),
        true,
    );
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
    // The team subscribes a webhook to health items opening and concluding.
    let (hook, notices) = receiver().await;
    let conn = json_out(&garrison(
        &s,
        &[
            "connectors",
            "create_connection",
            "--data",
            &json!({"name": "health hook", "type": "webhook", "target_url": format!("{hook}/hook")}).to_string(),
        ],
    ));
    for kind in ["health/opened", "health/concluded"] {
        json_out(&garrison(
            &s,
            &[
                "herald",
                "create_subscription",
                "--name",
                kind,
                "--class",
                "event",
                "--notification_type",
                kind,
                "--subscribers",
                &format!(r#"[{{"subscriber": "{}", "subscriber_type": "connection"}}]"#, conn["id"].as_str().unwrap()),
            ],
        ));
    }
    let scope =
        json!({"include": [{"type": "vpc", "key": format!("/aws/us-east-1/vpc/{vpc}"), "policy": {"id": PRO}}]});
    let d = json_out(&garrison(
        &s,
        &[
            "deployments",
            "create_deployment",
            "--name",
            "appliances",
            "--platform",
            &json!({"type": "aws", "id": "123456789012", "monitor": {"enabled": true, "ct_install_region": "us-east-1"}})
                .to_string(),
            "--mode",
            "automatic",
            "--discover",
            "true",
            "--scan",
            "true",
            "--scope",
            &scope.to_string(),
            "--credentials",
            &format!(r#"[{{"id": "{}", "purpose": "discover"}}]"#, cred["id"].as_str().unwrap()),
        ],
    ));
    let id = d["id"].as_str().unwrap().to_string();

    // The worker launches an IDS and a scanner, each with its own token in its user data.
    let deadline = Instant::now() + Duration::from_secs(240);
    let appliances: Vec<(String, String)> = loop {
        let o = garrison(&s, &["deployments", "get_protection", "--deployment_id", &id]);
        if o.status.success() {
            let r: Value = serde_json::from_slice(&o.stdout).unwrap();
            let apps: Vec<(String, String)> = r["vpcs"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|v| v["appliances"].as_array().unwrap().clone())
                .filter(|a| a["state"] == "running")
                .map(|a| (a["instance_id"].as_str().unwrap().to_string(), a["key"].as_str().unwrap().to_string()))
                .collect();
            if apps.len() == 2 && r["outcomes"].as_array().unwrap().iter().all(|o| o["result"] == "done") {
                break apps;
            }
        }
        assert!(Instant::now() < deadline, "the worker never launched an IDS and a scanner");
        std::thread::sleep(Duration::from_millis(300));
    };
    let mut env: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (instance, _) in &appliances {
        let text = estate::user_data(&aws, instance).await.unwrap().expect("an appliance launched with user data");
        assert!(text.starts_with("#cloud-config"), "{text}");
        assert!(text.contains("garrison appliance run"), "the user data starts the agent: {text}");
        let e = user_data_env(&text);
        assert_eq!(e.get("GARRISON_ENDPOINT"), Some(&endpoint), "{text}");
        assert!(e["GARRISON_BOOTSTRAP_TOKEN"].starts_with("gbt_"), "{text}");
        env.insert(instance.clone(), e);
    }
    let tokens: Vec<&String> = env.values().map(|e| &e["GARRISON_BOOTSTRAP_TOKEN"]).collect();
    assert_ne!(tokens[0], tokens[1], "a token per appliance");
    let (ids_instance, ids_key) =
        appliances.iter().find(|(i, _)| env[i]["GARRISON_APPLIANCE_ROLE"] == "ids").cloned().expect("an IDS");
    let (scan_instance, _) =
        appliances.iter().find(|(i, _)| env[i]["GARRISON_APPLIANCE_ROLE"] == "scan").cloned().expect("a scanner");
    let http = reqwest::Client::new();
    let register = |token: &str, instance: &str, role: &str| {
        http.post(format!("{endpoint}/appliances/v1/register"))
            .json(&json!({"token": token, "instance_id": instance, "role": role, "version": "test"}))
            .send()
    };

    // The IDS's token used from the scanner's instance: refused, and the token not spent.
    let r = register(&env[&ids_instance]["GARRISON_BOOTSTRAP_TOKEN"], &scan_instance, "ids").await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("another instance"));

    // The agents: the IDS's sensor counts while "traffic" flows (a thread bumps its counters).
    let scratch = std::env::temp_dir().join(format!("garrison-appliances-{}-{:x}", std::process::id(), rand_u64()));
    std::fs::create_dir_all(&scratch).unwrap();
    let stats = scratch.join("sensor.json");
    let packets = Arc::new(AtomicU64::new(1));
    let flowing = Arc::new(AtomicBool::new(true));
    std::fs::write(&stats, r#"{"packets": 1, "alerts": 0}"#).unwrap();
    let sensor = {
        let (packets, flowing, stats, stop) = (packets.clone(), flowing.clone(), stats.clone(), scratch.clone());
        std::thread::spawn(move || {
            while stop.exists() {
                if flowing.load(Ordering::SeqCst) {
                    let n = packets.fetch_add(7, Ordering::SeqCst) + 7;
                    let tmp = stats.with_extension("tmp");
                    std::fs::write(&tmp, format!(r#"{{"packets": {n}, "alerts": 1}}"#)).unwrap();
                    std::fs::rename(&tmp, &stats).unwrap();
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let start = |env: &BTreeMap<String, BTreeMap<String, String>>, instance: &str, with_token: bool| {
        let e = &env[instance];
        agent(
            &e["GARRISON_ENDPOINT"],
            with_token.then(|| e["GARRISON_BOOTSTRAP_TOKEN"].as_str()),
            &e["GARRISON_APPLIANCE_ROLE"],
            instance,
            &scratch.join(instance),
            &stats,
        )
    };
    let mut ids = start(&env, &ids_instance, true);
    let mut scan = start(&env, &scan_instance, true);
    let h = health_when(&s, &id, "both appliances healthy", 60, |h| {
        state_of(h, &ids_instance) == "healthy" && state_of(h, &scan_instance) == "healthy"
    });
    assert_eq!(h["status"], "healthy", "{h:#}");
    let ids_view = h["appliances"].as_array().unwrap().iter().find(|a| a["instance_id"] == ids_instance).unwrap();
    assert_eq!(ids_view["role"], "ids");
    assert!(ids_view["work"]["packets"].as_u64().unwrap() > 1, "{ids_view}");
    assert!(ids_view["registered_ms"].as_i64().is_some() && ids_view["version"].as_str().is_some(), "{ids_view}");
    // The watch's gauges say so too.
    let metrics =
        |url: String| async move { reqwest::get(format!("{url}/metrics")).await.unwrap().text().await.unwrap() };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = metrics(s.url.clone()).await;
        if text.lines().any(|l| l == "garrison_appliances{state=\"healthy\"} 2") {
            break;
        }
        assert!(Instant::now() < deadline, "no healthy gauge of 2: {text}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Each kept its credential, 0600, in its state directory.
    for a in [&ids, &scan] {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(a.state.join("credential")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{}", a.instance);
        assert!(std::fs::read_to_string(a.state.join("credential")).unwrap().starts_with("gap_"));
    }

    // The token replayed: refused, recorded with the foreign use above.
    let r = register(&env[&ids_instance]["GARRISON_BOOTSTRAP_TOKEN"], &ids_instance, "ids").await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("used already"));
    let refusals: Vec<(String, String)> = health(&s, &id)["refusals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["reason"].as_str().unwrap().to_string(), r["instance_id"].as_str().unwrap().to_string()))
        .collect();
    assert!(refusals.contains(&("replayed".into(), ids_instance.clone())), "{refusals:?}");
    assert!(refusals.contains(&("foreign_instance".into(), scan_instance.clone())), "{refusals:?}");

    // An appliance credential opens no tenant route; a tenant token no appliance route.
    let credential = std::fs::read_to_string(ids.state.join("credential")).unwrap();
    let tenant = token(&s.url).await;
    let mut opened = vec![];
    for op in garrison_model::ops::OPERATIONS.iter().filter(|o| o.needs_token) {
        let path = op
            .path
            .replace("{account_id}", ACCOUNT)
            .split('/')
            .map(|seg| if seg.starts_with('{') { "X" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let method = reqwest::Method::from_bytes(op.method.as_bytes()).unwrap();
        for (header, value) in
            [("x-aims-auth-token", credential.clone()), ("authorization", format!("Bearer {credential}"))]
        {
            let r =
                http.request(method.clone(), format!("{}{path}", s.url)).header(header, &value).send().await.unwrap();
            if r.status() != 401 {
                opened.push(format!("{} {} with {header}: {}", op.method, op.path, r.status()));
            }
        }
    }
    assert!(opened.is_empty(), "appliance credentials opened tenant routes: {opened:#?}");
    for (method, route) in [("POST", "heartbeat"), ("GET", "config"), ("POST", "register")] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        for (header, value) in [("x-aims-auth-token", tenant.clone()), ("authorization", format!("Bearer {tenant}"))] {
            let r = http
                .request(m.clone(), format!("{endpoint}/appliances/v1/{route}"))
                .header(header, &value)
                .json(&json!({"instance_id": ids_instance, "role": "ids", "version": "x", "uptime_s": 1, "work": {"role": "ids", "packets": 1, "alerts": 0}}))
                .send()
                .await
                .unwrap();
            assert!(
                [400, 401].contains(&r.status().as_u16()),
                "{method} {route} with a tenant token in {header}: {}",
                r.status()
            );
            assert_ne!(r.status(), 200);
        }
    }

    // A restarted agent registers again with its credential (no token) and stays healthy.
    drop(scan);
    scan = start(&env, &scan_instance, false);
    std::thread::sleep(Duration::from_secs(3));
    assert!(scan.child.try_wait().unwrap().is_none(), "the restarted scanner agent runs on");
    assert_eq!(state_of(&health(&s, &id), &scan_instance), "healthy");

    // The sensor stops counting: degraded, then healthy again when traffic flows.
    flowing.store(false, Ordering::SeqCst);
    let degraded = format!("appliance_degraded/{ids_key}");
    let h = health_when(&s, &id, "the IDS degraded", 30, |h| {
        state_of(h, &ids_instance) == "degraded" && item(h, &degraded).is_some_and(|i| i["status"] == "unhealthy")
    });
    assert!(item(&h, &degraded).unwrap()["remedy"].as_str().unwrap().contains("sees no traffic"));
    flowing.store(true, Ordering::SeqCst);
    let h = health_when(&s, &id, "the degraded item concluded", 30, |h| {
        item(h, &degraded).is_some_and(|i| i["status"] == "concluded") && state_of(h, &ids_instance) == "healthy"
    });
    assert_eq!(h["status"], "healthy", "{h:#}");
    assert!(item(&h, &degraded).unwrap()["concluded_ms"].as_i64().is_some(), "kept for the record");
    let unhealthy =
        json_out(&garrison(&s, &["deployments", "list_health", "--deployment_id", &id, "--status", "unhealthy"]));
    assert_eq!(unhealthy["items"], json!([]), "{unhealthy:#}");

    // The IDS agent killed: silent after 3 missed heartbeats, an item with its remedy.
    drop(ids);
    let silent = format!("appliance_silent/{ids_key}");
    let h =
        health_when(&s, &id, "the IDS silent", 30, |h| item(h, &silent).is_some_and(|i| i["status"] == "unhealthy"));
    assert_eq!(h["status"], "unhealthy");
    let it = item(&h, &silent).unwrap();
    assert_eq!(it["cause"]["cause"], "appliance_silent", "{it}");
    assert!(it["remedy"].as_str().unwrap().contains("no heartbeat"), "{it}");
    assert_eq!(state_of(&h, &scan_instance), "healthy", "the scanner is not affected");

    // The IDS killed for good: garrison launches a replacement with its own token, keeps the
    // silent one running until the replacement registers, then terminates it. EC2 runs an
    // IDS for this key at every moment.
    let original = ids_instance.clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    let replacement = loop {
        assert!(!running_under(&aws, &ids_key).await.is_empty(), "no IDS running while it is replaced");
        let now = reported(&s, &id);
        // Pending or running: its agent starts as it boots, as on EC2 (waiting for the next
        // report to say running left it less than the registration window on a busy machine).
        let booting = |st: &str| st == "running" || st == "pending";
        if let Some((_, i, _)) = now.iter().find(|(k, i, st)| *k == ids_key && *i != original && booting(st)) {
            assert!(
                now.iter().any(|(k, i, _)| *k == format!("retired/{ids_key}") && *i == original),
                "the silent one kept, retired: {now:?}"
            );
            break i.clone();
        }
        assert!(Instant::now() < deadline, "no replacement launched: {now:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(
        running_under(&aws, &ids_key).await,
        [original.clone(), replacement.clone()].into(),
        "both run meanwhile"
    );
    let h = health(&s, &id);
    assert_eq!(
        item(&h, &silent).map(|i| i["status"].clone()),
        Some(json!("unhealthy")),
        "the silent item stays open while its replacement has not registered: {h:#}"
    );
    assert_eq!(h["status"], "unhealthy", "{h:#}");
    let text = estate::user_data(&aws, &replacement).await.unwrap().expect("the replacement's user data");
    let e = user_data_env(&text);
    assert_ne!(e["GARRISON_BOOTSTRAP_TOKEN"], env[&original]["GARRISON_BOOTSTRAP_TOKEN"], "a new token");
    env.insert(replacement.clone(), e);
    ids = start(&env, &replacement, true);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let up = running_under(&aws, &ids_key).await;
        assert!(!up.is_empty(), "no IDS running while the old one is removed");
        if up == [replacement.clone()].into() {
            break;
        }
        assert!(Instant::now() < deadline, "the silent IDS never went: {up:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let h = health_when(&s, &id, "the replacement healthy, the silent item concluded", 30, |h| {
        state_of(h, &replacement) == "healthy" && item(h, &silent).is_some_and(|i| i["status"] == "concluded")
    });
    assert_eq!(state_of(&h, &original), "absent", "{h:#}");
    let r = http
        .post(format!("{endpoint}/appliances/v1/heartbeat"))
        .bearer_auth(credential.trim())
        .json(&json!({"version": "x", "uptime_s": 1, "work": {"role": "ids", "packets": 1, "alerts": 0}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the replaced appliance's credential is revoked");

    // Replacements that never register: two tries, then garrison gives up, keeps what runs
    // and says why; it does not churn instances.
    drop(ids);
    let given_up = format!("replacement_given_up/{ids_key}");
    let h = health_when(&s, &id, "the replacements given up", 180, |h| {
        item(h, &given_up).is_some_and(|i| i["status"] == "unhealthy")
    });
    let it = item(&h, &given_up).unwrap();
    assert!(it["remedy"].as_str().unwrap().contains("never registered"), "{it}");
    let kept = running_under(&aws, &ids_key).await;
    assert_eq!(kept.len(), 2, "the silent one and the last replacement kept: {kept:?}");
    assert!(kept.contains(&replacement), "{kept:?}");
    let audit =
        || json_out(&garrison(&s, &["deployments", "list_audit_log", "--deployment_id", &id, "--limit", "100000"]));
    let run_instances = |log: &Value| {
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["call"] == "ec2:RunInstances" && e["key"] == ids_key.as_str())
            .count()
    };
    let launches = audit();
    assert_eq!(run_instances(&launches), 4, "the first IDS, its replacement, and two that never registered");
    std::thread::sleep(Duration::from_secs(20));
    assert_eq!(running_under(&aws, &ids_key).await, kept, "no churn after giving up");
    let later = audit();
    assert_eq!(run_instances(&later), run_instances(&launches), "no launch after giving up");

    let text = metrics(s.url.clone()).await;
    for want in [
        "garrison_appliance_replacements_total{outcome=\"given_up\"} 1",
        "garrison_appliance_replacements_total{outcome=\"registered\"} 1",
        "garrison_appliance_refusals_total{reason=\"replayed\"} 1",
    ] {
        assert!(text.lines().any(|l| l == want), "{want} not in the metrics: {text}");
    }
    // The team was told of each item as it opened and concluded.
    let deadline = Instant::now() + Duration::from_secs(30);
    let told = loop {
        let told: Vec<(String, String)> = notices
            .lock()
            .unwrap()
            .iter()
            .map(|n| {
                let f = |v: &Value| v.as_str().unwrap_or("").to_string();
                (f(&n["type"]), f(&n["notification_data"]["targets"][0]))
            })
            .collect();
        if told.len() >= 5 || Instant::now() > deadline {
            break told;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for (kind, key) in [
        ("health/opened", &degraded),
        ("health/concluded", &degraded),
        ("health/opened", &silent),
        ("health/concluded", &silent),
        ("health/opened", &given_up),
    ] {
        assert!(told.contains(&(kind.to_string(), key.clone())), "{kind} {key} not told: {told:?}");
    }
    let n = notices.lock().unwrap().iter().find(|n| n["type"] == "health/opened").cloned().unwrap();
    assert_eq!(n["asset_data"]["deployment_id"], id.as_str());
    assert!(n["notification_data"]["subject"].as_str().unwrap().starts_with("protection weakened: "), "{n}");

    // A bad filter is a 400 naming the field.
    let o = garrison(&s, &["deployments", "list_health", "--deployment_id", &id, "--status", "sick"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("status"), "{}", String::from_utf8_lossy(&o.stderr));

    // Removal: the appliances go, their credentials with them; the agent is refused and stops (exit 3).
    assert!(garrison(&s, &["deployments", "delete_deployment", "--deployment_id", &id]).status.success());
    let deadline = Instant::now() + Duration::from_secs(240);
    for a in [&mut scan] {
        let code = loop {
            if let Some(st) = a.child.try_wait().unwrap() {
                break st.code();
            }
            assert!(Instant::now() < deadline, "the {} agent was never refused after the removal", a.role);
            std::thread::sleep(Duration::from_millis(300));
        };
        assert_eq!(code, Some(3), "the {} agent ends as refused", a.role);
    }
    assert!(running_under(&aws, &ids_key).await.is_empty(), "every IDS gone with the deployment");
    std::fs::remove_dir_all(&scratch).unwrap();
    sensor.join().unwrap();
}
