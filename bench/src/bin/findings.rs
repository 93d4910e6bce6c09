//! bench/findings: how fast findings go from garrison's audit queue to stored findings, on
//! one core (a current-thread runtime; the emulator is its own process). N GuardDuty
//! finding events (as EventBridge delivers them to the queue; one in four a finding said
//! again) are put on the queue, then the collector takes them until every finding is
//! stored. Baseline in the same run: the same N events received and deleted with nothing
//! done to them (the floor: what SQS itself costs); and, for scale, garrison's own part
//! alone (each event read and stored, no queue), since the emulator's SQS is the slowest
//! part by far.

use std::sync::Arc;
use std::time::{Duration, Instant};

use garrison_catalog::policies::ESSENTIALS;
use garrison_cloud::audit_queue;
use garrison_cloud::emulator::Moto;
use garrison_cloud::estate::{self, EstateSpec};
use garrison_cloud::{Aws, Sessions};
use garrison_engine::Engine;
use garrison_engine::protect::reconcile;
use garrison_store::FindingFilter;
use garrison_testkit::sample;
use garrison_testkit::tenants::GARRISON;
use serde_json::json;

/// The N events: distinct findings, every fourth one a repeat of the one before.
fn events(n: usize, region: &str) -> (Vec<String>, usize) {
    let mut out = vec![];
    let mut distinct = 0;
    for i in 0..n {
        let k = if i % 4 == 3 { i - 1 } else { i };
        distinct += usize::from(i % 4 != 3);
        let id = format!("{k:032x}");
        let detail = sample::guardduty_finding(
            GARRISON,
            region,
            &id,
            "i-0123456789abcdef0",
            "vpc-0a1b2c3d",
            5.0 + (k % 5) as f64,
            false,
            0,
        );
        let event = json!({"version": "0", "id": format!("ev-{i}"), "detail-type": "GuardDuty Finding",
            "source": "aws.guardduty", "account": GARRISON, "time": "2026-12-06T10:00:00Z", "region": region,
            "resources": [], "detail": detail});
        out.push(event.to_string());
    }
    (out, distinct)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let moto = Moto::start()?;
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    let sessions = Arc::new(Sessions::new(aws.clone()));
    let spec = EstateSpec::s_bare();
    estate::build(&sessions, &spec).await?;
    let fx = garrison_bench::fixture::deployment(&aws, &spec, "findings", |_| ESSENTIALS).await?;
    let (store, d) = (fx.store.clone(), fx.d.clone());
    let mut engine = Engine::new(store.clone(), sessions.clone(), GARRISON.to_string());
    engine.propagation = (1, Duration::ZERO);
    engine.collector.wait_secs = 1;
    engine.collector.audit_check = Duration::from_secs(3600);
    let engine = Arc::new(engine);
    let first = reconcile(&engine, &d).await?;
    anyhow::ensure!(first.outcomes.iter().all(|o| o.result == "done"), "initial protection failed");
    let queue = store.owned(&d.id).await?.get(garrison_engine::plan::desired::keys::QUEUE).cloned();
    let queue = queue.ok_or_else(|| anyhow::anyhow!("no audit queue"))?;
    let q = aws.in_region(&queue.region);
    let (bodies, distinct) = events(n, &queue.region);

    // The floor: receive and delete, nothing else.
    audit_queue::send_bodies(&q, &queue.id, &bodies).await?;
    let t = Instant::now();
    let mut taken = 0;
    while taken < n {
        let batch = audit_queue::receive(&q, &queue.id, 1).await?;
        taken += batch.len();
        let receipts: Vec<String> = batch.into_iter().map(|m| m.receipt).collect();
        audit_queue::delete(&q, &queue.id, &receipts).await?;
    }
    let floor = t.elapsed();

    // garrison: the collector until every finding is stored, the repeats counted.
    audit_queue::send_bodies(&q, &queue.id, &bodies).await?;
    let t = Instant::now();
    let collector = tokio::spawn(garrison_engine::collect::run(engine.clone()));
    let all = FindingFilter::default();
    loop {
        let (_, total) = store.list_findings(&d.account_id, &all, 0, 1).await?;
        if total == distinct {
            let (rows, _) = store.list_findings(&d.account_id, &all, 0, distinct).await?;
            let counted: i64 = rows.iter().map(|f| f.count).sum();
            if counted as usize == n {
                break;
            }
        }
        anyhow::ensure!(t.elapsed() < Duration::from_secs(600), "not all stored in 10 minutes ({total} of {distinct})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = t.elapsed();
    collector.abort();
    // garrison's own part alone: each event read and stored, no queue (another deployment id).
    let t = Instant::now();
    for b in &bodies {
        let v: serde_json::Value = serde_json::from_str(b)?;
        let o = garrison_model::finding::observe(&v, garrison_model::finding::Source::Guardduty)
            .map_err(|m| anyhow::anyhow!("{m}"))?;
        store.record_finding(&d.account_id, "bench-alone", o).await?;
    }
    let alone = t.elapsed();
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!("bench/findings: {n} GuardDuty finding events ({distinct} findings) from the audit queue, one core");
    println!("{:>34} {:>10} {:>12}", "", "time (s)", "events/s");
    println!("{:>34} {:>10.2} {:>12.0}", "garrison (receive, read, store)", took.as_secs_f64(), rate(took));
    println!("{:>34} {:>10.2} {:>12.0}", "floor (receive and delete)", floor.as_secs_f64(), rate(floor));
    println!("{:>34} {:>10.2} {:>12.0}", "read and store alone (no queue)", alone.as_secs_f64(), rate(alone));
    println!(
        "ratio: {:.2} of the floor's rate (higher is better; 1 = storing costs nothing)",
        rate(took) / rate(floor)
    );
    Ok(())
}
