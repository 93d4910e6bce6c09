//! Several workers on one PostgreSQL: three `garrison worker` processes share 50 automatic
//! deployments, one per emulated AWS account, through leases. One worker is SIGKILLed
//! mid-reconcile; the others take its deployments over once its leases expire. Every
//! deployment converges; no two runs of one deployment overlap in time (audit log, by
//! generation); every account holds exactly one audit source; each audit queue is polled
//! by one live worker; every account's calls draw on the store's shared rate budget.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use garrison_catalog::{Catalog, cft};
use garrison_cloud::emulator::Moto;
use garrison_cloud::{Aws, Sessions};
use garrison_engine::collect::QUEUE_LEASE;
use garrison_model::credential::{NewCredential, RoleSecret};
use garrison_model::deployment::{Refs, parse_request};
use garrison_store::{SealKey, Store};
use garrison_testkit::tenants::{GARRISON, leftovers};
use serde_json::{Value, json};

const DEPLOYMENTS: u64 = 50;
const LEASE_TTL_SECS: u64 = 3;

/// The workers, killed however the test ends: a failed assertion must not leave them
/// running (they hold PostgreSQL connections that later tests need).
struct KillOnDrop(Vec<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for w in &mut self.0 {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// Each worker logs JSON lines at info into `<dir>/<name>.log`.
fn worker(name: &str, db: &str, key: &SealKey, dir: &std::path::Path, moto_url: &str, metrics: u16) -> Child {
    let ttl = LEASE_TTL_SECS.to_string();
    let listen = format!("127.0.0.1:{metrics}");
    let extra = ["--resync-interval", "3600", "--lease-ttl", &ttl, "--parallel", "4", "--metrics-listen", &listen];
    std::fs::create_dir_all(dir).unwrap();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    common::worker_command(name, &dir.join(name), db, &key.to_hex(), moto_url, &extra)
        .env("GARRISON_LOG", "warn,garrison_engine=info")
        .env("GARRISON_LOG_FORMAT", "json")
        .stderr(log)
        .spawn()
        .expect("start garrison worker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_fifty_deployments_and_take_over_a_killed_one() {
    let admin = std::env::var("GARRISON_TEST_DATABASE_URL")
        .expect("GARRISON_TEST_DATABASE_URL (PostgreSQL) is required for this test: scripts/test sets it");
    let db = garrison_testkit::postgres::fresh_postgres(&admin).await.unwrap();
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let direct = Aws::from_config(moto.sdk_config("us-east-1").await);
    let sessions = Sessions::new(direct.clone());
    let key = SealKey::generate();
    let store = Store::open(&db, &key).await.unwrap();
    let root = store.init_root(None, None).await.unwrap().unwrap();
    let ext = store.external_id(&root.account_id).await.unwrap();
    let full = Catalog::builtin().get("aws", "ci_full", "latest").unwrap().clone();
    let policies: HashSet<String> = garrison_catalog::policies::all().into_iter().map(|p| p.id).collect();
    let mut accounts: BTreeMap<String, (String, Aws)> = BTreeMap::new();
    for i in 0..DEPLOYMENTS {
        let acct = format!("{}", 210_000_000_000u64 + i);
        // The emulator lets garrison's account act in any other: the customer's own admin role.
        let there = sessions.assume(&format!("arn:aws:iam::{acct}:role/admin"), "setup").await.unwrap();
        let arn = garrison_cloud::estate::create_role(
            &there,
            "garrison",
            &cft::trust_policy(GARRISON, json!(ext)),
            &cft::split_policy(&full.policy_document, cft::MANAGED_POLICY_LIMIT),
        )
        .await
        .unwrap();
        let cred = store
            .create_credential(&root.account_id, &NewCredential { name: acct.clone(), secret: RoleSecret { arn } }, "t")
            .await
            .unwrap();
        let creds: HashMap<String, String> = [(cred.id.clone(), acct.clone())].into();
        let body = json!({"name": acct, "platform": {"type": "aws", "id": acct}, "mode": "automatic",
            "credentials": [{"id": cred.id, "purpose": "discover"}],
            "scope": {"include": [{"type": "region", "key": "/aws/us-east-1", "policy": {"id": garrison_catalog::policies::ESSENTIALS}}]}});
        let spec = parse_request(&body, None, &Refs { policies: &policies, credentials: &creds }).unwrap().spec;
        let d = store.create_deployment(&root.account_id, spec, "t").await.unwrap();
        accounts.insert(d.id.clone(), (acct, there));
    }
    let dir = std::env::temp_dir().join(format!("garrison-fleet-{}", common::rand_u64()));
    let ports: Vec<u16> = (0..3).map(|_| common::free_port()).collect();
    let mut workers = KillOnDrop(
        ["w0", "w1", "w2"].iter().zip(&ports).map(|(n, p)| worker(n, &db, &key, &dir, &moto.url, *p)).collect(),
    );

    let reported = |store: &Store| {
        let store = store.clone();
        let ids: Vec<String> = accounts.keys().cloned().collect();
        let account = root.account_id.clone();
        async move {
            let mut done = 0;
            for id in &ids {
                let r = store.get_report(&account, id).await.unwrap();
                if r.is_some_and(|r| r.outcomes.iter().all(|x| x.result == "done")) {
                    done += 1;
                }
            }
            done
        }
    };
    // Kill w0 while it has runs in flight: once the fleet is under way and w0 holds a lease.
    // It is frozen (SIGSTOP) while its leases are read, so that none of the runs seen in
    // flight finishes between the look and the kill.
    let signal = |sig: &str, pid: u32| {
        assert!(Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success());
    };
    let w0 = workers.0[0].id();
    let start = Instant::now();
    let held_by_w0: Vec<String> = loop {
        assert!(start.elapsed() < Duration::from_secs(120), "w0 never held a lease while the fleet ran");
        if reported(&store).await >= 4 {
            signal("-STOP", w0);
            let now = garrison_engine::now_ms();
            let held: Vec<String> = store
                .leases()
                .await
                .unwrap()
                .into_iter()
                .filter(|(d, holder, _, expires)| {
                    holder.starts_with("w0-") && *expires > now && accounts.contains_key(d)
                })
                .map(|(d, ..)| d)
                .collect();
            if !held.is_empty() {
                break held;
            }
            signal("-CONT", w0);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    workers.0[0].kill().unwrap();
    workers.0[0].wait().unwrap();
    let killed = Instant::now();
    let mut taken_over: Option<Duration> = None;
    while reported(&store).await < DEPLOYMENTS as usize {
        assert!(killed.elapsed() < Duration::from_secs(180), "not every deployment converged after the kill");
        if taken_over.is_none() {
            let now = store.leases().await.unwrap();
            if held_by_w0.iter().all(|d| now.iter().any(|(id, h, ..)| id == d && !h.starts_with("w0-"))) {
                taken_over = Some(killed.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let taken_over = taken_over.unwrap_or_else(|| killed.elapsed());
    // One lease period, plus a worker's pass (0.5 s) and a little scheduling slack.
    let leases = store.leases().await.unwrap();
    assert!(
        taken_over <= Duration::from_secs(LEASE_TTL_SECS) + Duration::from_millis(2500),
        "w0's runs were taken over {taken_over:?} after the kill; their leases now: {:?}",
        leases.iter().filter(|l| held_by_w0.contains(&l.0)).collect::<Vec<_>>()
    );
    let converged = killed.elapsed();
    // The survivors count their takeovers in their /metrics.
    let mut takeovers = 0.0;
    for p in &ports[1..] {
        let text = reqwest::get(format!("http://127.0.0.1:{p}/metrics")).await.unwrap().text().await.unwrap();
        takeovers += text
            .lines()
            .filter(|l| l.starts_with("garrison_lease_takeovers_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
        assert!(text.contains("garrison_reconcile_duration_seconds_count{kind=\"full\",outcome=\"ok\"}"), "{text}");
    }
    // One poller per audit queue across the fleet: each queue's lease is held, unexpired,
    // by one of the survivors (w0's queues taken over once its leases expired).
    let t = Instant::now();
    loop {
        let now = garrison_engine::now_ms();
        let leases = store.leases().await.unwrap();
        let polled: HashMap<&str, &str> = leases
            .iter()
            .filter(|(_, h, _, expires)| *expires > now && !h.starts_with("w0-"))
            .filter_map(|(d, h, ..)| Some((d.strip_prefix(QUEUE_LEASE)?, h.as_str())))
            .collect();
        if accounts.keys().all(|id| polled.contains_key(id.as_str())) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(LEASE_TTL_SECS + 5),
            "queues without a live poller: {:?}",
            accounts.keys().filter(|id| !polled.contains_key(id.as_str())).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every account's calls were paced through the store's shared budget.
    let budgets = store.rate_budget_keys().await.unwrap();
    for (acct, _) in accounts.values() {
        assert!(budgets.contains(&format!("{acct}/us-east-1/ec2")), "{acct}: no shared ec2 budget in {budgets:?}");
    }
    for w in workers.0.iter_mut().skip(1) {
        let _ = w.kill();
        let _ = w.wait();
    }

    // Takeovers: every run w0 had in flight was taken over by w1 or w2.
    let leases = store.leases().await.unwrap();
    let taken: Vec<&String> = leases
        .iter()
        .filter(|(_, holder, prev, _)| {
            !holder.starts_with("w0-") && prev.as_deref().is_some_and(|p| p.starts_with("w0-"))
        })
        .map(|(d, ..)| d)
        .collect();
    assert!(!held_by_w0.is_empty(), "w0 was killed with runs in flight");
    for d in &held_by_w0 {
        assert!(taken.contains(&d), "{d}: w0's run was not taken over: {leases:?}");
    }
    assert!(takeovers >= held_by_w0.len() as f64, "takeovers counted: {takeovers}");
    let holders: HashSet<String> =
        leases.iter().map(|(_, h, ..)| h.split('-').next().unwrap_or_default().to_string()).collect();
    assert!(holders.contains("w1") && holders.contains("w2"), "the work was shared: {holders:?}");

    // No two runs of one deployment at the same time: per deployment, each generation's
    // writes form a time span, and the spans do not overlap.
    for id in accounts.keys() {
        let log = store.audit_log(&root.account_id, id, 100_000).await.unwrap();
        let mut spans: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        for e in &log {
            let s = spans.entry(e.generation).or_insert((e.at_ms, e.at_ms));
            s.0 = s.0.min(e.at_ms);
            s.1 = s.1.max(e.at_ms);
        }
        let spans: Vec<(i64, i64)> = spans.into_values().collect();
        for w in spans.windows(2) {
            assert!(w[0].1 <= w[1].0, "{id}: runs overlap: {spans:?}");
        }
    }
    // Structured logs: every run's lines are JSON carrying the deployment, its tenant and its
    // AWS account; each deployment's runs are there.
    let mut logged: HashSet<String> = HashSet::new();
    for name in ["w0", "w1", "w2"] {
        let text = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let v: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                // w0 was killed: its last line may be cut short.
                Err(_) if name == "w0" && i + 1 == lines.len() => continue,
                Err(e) => panic!("{name}: not JSON ({e}): {line}"),
            };
            if v["fields"]["message"] == "run finished" {
                let span = &v["span"];
                let (id, acct) = (span["deployment"].as_str().unwrap(), span["aws_account"].as_str().unwrap());
                assert_eq!(accounts[id].0, acct, "{line}");
                assert_eq!(span["tenant"], root.account_id.as_str(), "{line}");
                logged.insert(id.to_string());
            }
        }
    }
    assert_eq!(logged.len(), accounts.len(), "every deployment's runs logged with its ids");
    // Exactly one audit source per account, and nothing duplicated.
    for (id, (acct, aws)) in &accounts {
        let left = leftovers(aws, &["us-east-1".to_string()], id).await;
        assert_eq!(left.duplicates(), Vec::<String>::new(), "{acct}");
        assert_eq!(
            left.named.len(),
            8,
            "{acct}: bucket, topic, queue, trail, and the event feed's bus with its three rules (calls, findings, the bus's): {:?}",
            left.named
        );
    }
    println!(
        "fleet: {DEPLOYMENTS} deployments over 3 workers; w0 killed holding {} lease(s), all taken over {:.1} s after the kill (lease {LEASE_TTL_SECS} s), all converged {:.1} s after it; no overlapping runs, no duplicates",
        held_by_w0.len(),
        taken_over.as_secs_f64(),
        converged.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
