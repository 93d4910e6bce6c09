//! bench/react: how fast garrison answers tampering. A rule of one of its scan groups is
//! revoked and the call reaches garrison by one of its two paths: the CloudTrail file
//! recording it lands in the audit bucket (S3 → SNS → SQS), or the event is put on the
//! region's default bus as EventBridge does (default bus → garrison's bus → SQS). Measured
//! is the time from that write to garrison's first corrective AWS call, over many trials per
//! path, with the collector long-polling as in production. Baseline in the same run: a full
//! reconcile started at the same moment (the best case of a resync-only design, which on
//! average also waits half its interval). What AWS adds in front of each path (file
//! delivery about 5 minutes, event delivery seconds) is not emulated: see the README.

use std::sync::Arc;
use std::time::{Duration, Instant};

use garrison_catalog::policies::ESSENTIALS;
use garrison_cloud::audit_queue::deliver_as_eventbridge;
use garrison_cloud::emulator::Moto;
use garrison_cloud::estate::{self, EstateSpec};
use garrison_cloud::{Aws, Sessions};
use garrison_engine::protect::reconcile;
use garrison_engine::{Engine, now_ms};
use garrison_testkit::sample;
use garrison_testkit::tenants::GARRISON;
use serde_json::{Value, json};

const ALICE: &str = "arn:aws:sts::123456789012:assumed-role/Admin/alice";

fn pct(v: &[i64], p: f64) -> i64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    s[((s.len() as f64 * p).ceil() as usize).clamp(1, s.len()) - 1]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let trials: usize = std::env::var("BENCH_TRIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let moto = Moto::start()?;
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    let sessions = Arc::new(Sessions::new(aws.clone()));
    let spec = EstateSpec::s_bare();
    estate::build(&sessions, &spec).await?;
    let fx = garrison_bench::fixture::deployment(&aws, &spec, "react", |_| ESSENTIALS).await?;
    let (store, d) = (fx.store.clone(), fx.d.clone());
    let mut engine = Engine::new(store.clone(), sessions.clone(), GARRISON.to_string());
    engine.propagation = (1, Duration::ZERO);
    // Production settings: 20 s long polls; no audit path check during the trials.
    engine.collector.audit_check = Duration::from_secs(3600);
    let engine = Arc::new(engine);
    let first = reconcile(&engine, &d).await?;
    anyhow::ensure!(first.outcomes.iter().all(|o| o.result == "done"), "initial protection failed");
    let region = spec.regions[0].clone();
    let bucket = first.audit_source.bucket.as_ref().map(|b| b.id.clone()).unwrap_or_default();
    let owned = store.owned(&d.id).await?;
    let sg = owned
        .items
        .values()
        .find(|o| o.region == region && o.key.ends_with("/scan_sg"))
        .map(|o| o.id.clone())
        .ok_or_else(|| anyhow::anyhow!("no scan group in {region}"))?;
    let s3 = aws.in_region(&region).s3();
    // The emulator treats the bucket policy's conditions as a deny of object reads and
    // writes (AWS does not); set aside for the benchmark.
    s3.delete_bucket_policy().bucket(&bucket).send().await?;
    let ec2 = aws.in_region(&region).ec2();
    let rules = ec2.describe_security_groups().group_ids(&sg).send().await?.security_groups()[0]
        .ip_permissions_egress()
        .to_vec();
    let collector = tokio::spawn(garrison_engine::collect::run(engine.clone()));
    // Let the poller start and settle into its long poll.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let revoke = || async {
        ec2.revoke_security_group_egress().group_id(&sg).set_ip_permissions(Some(rules.clone())).send().await
    };
    let first_fix = |since: i64| {
        let store = store.clone();
        let (acct, id) = (fx.root.clone(), d.id.clone());
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let log = store.audit_log(&acct, &id, 1_000_000).await?;
                if let Some(e) = log.iter().find(|e| e.at_ms >= since && e.call == "ec2:AuthorizeSecurityGroupEgress") {
                    return anyhow::Ok(e.at_ms);
                }
                anyhow::ensure!(Instant::now() < deadline, "no corrective call within 60 s");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let mut lat = vec![];
    let mut by_event = vec![];
    for n in 0..trials * 2 {
        revoke().await?;
        let rec = sample::record(
            "ec2",
            "RevokeSecurityGroupEgress",
            &region,
            GARRISON,
            ALICE,
            json!({"groupId": sg}),
            Value::Null,
        );
        let t0 = now_ms();
        if n % 2 == 0 {
            let key = sample::log_key(GARRISON, &region, &format!("react{n}"));
            let body = sample::gzip(&[rec]);
            s3.put_object().bucket(&bucket).key(&key).body(body.into()).send().await?;
            lat.push(first_fix(t0).await? - t0);
        } else {
            deliver_as_eventbridge(&aws, &rec).await?;
            by_event.push(first_fix(t0).await? - t0);
        }
        // Let the repair finish (all its calls) before the next trial.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    collector.abort();

    // Baseline: a full reconcile started the moment the rule is revoked.
    let mut full = vec![];
    for _ in 0..5 {
        revoke().await?;
        let t0 = now_ms();
        let r = reconcile(&engine, &d).await?;
        anyhow::ensure!(r.outcomes.iter().all(|o| o.result == "done"));
        full.push(first_fix(t0).await? - t0);
    }
    let (p50, p99, max) = (pct(&lat, 0.50), pct(&lat, 0.99), pct(&lat, 1.0));
    let full50 = pct(&full, 0.5);
    println!(
        "bench/react: estate S ({} regions), Essentials, collector long-polling (20 s), {trials} trials per path",
        spec.regions.len()
    );
    println!("{:<46} {:>8} {:>8} {:>8}", "object written -> first corrective call", "p50 ms", "p99 ms", "max ms");
    println!("{:<46} {:>8} {:>8} {:>8}", "trail file notification (S3 -> SNS -> SQS)", p50, p99, max);
    println!(
        "{:<46} {:>8} {:>8} {:>8}",
        "EventBridge event (default bus -> bus -> SQS)",
        pct(&by_event, 0.5),
        pct(&by_event, 0.99),
        pct(&by_event, 1.0)
    );
    println!(
        "{:<46} {:>8} {:>8} {:>8}",
        "full reconcile started at once (baseline)",
        full50,
        pct(&full, 0.99),
        pct(&full, 1.0)
    );
    let ev99 = pct(&by_event, 0.99);
    println!(
        "p99 target <= 1000 ms: files {}, events {}",
        if p99 <= 1000 { "met" } else { "NOT met" },
        if ev99 <= 1000 { "met" } else { "NOT met" }
    );
    println!(
        "event / file path (p50): {:.2}x in the emulator; in AWS the file path adds CloudTrail's ~5 min delivery, the event path seconds",
        pct(&by_event, 0.5) as f64 / p50.max(1) as f64
    );
    println!(
        "full reconcile / collector (p50): {:.1}x; a resync-only design also waits half its interval (150 s at 300 s)",
        full50 as f64 / p50.max(1) as f64
    );
    let _ = std::fs::remove_dir_all(&fx.dir);
    Ok(())
}
