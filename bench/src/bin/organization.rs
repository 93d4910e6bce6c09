//! bench/organization: accounts created into an enrolled organizational unit at once, each
//! announced by Organizations' `CreateAccountResult` event, until every one is protected (its
//! deployment's first run ended ok), with garrison's worker and enrollment loop running as
//! `garrison serve` runs them. Baseline in the same run: one account alone, end to end; the
//! sum of N such critical paths is what enrolling them one after another would take. The
//! deployments have monitoring off and the accounts are empty, so the time is enrollment's
//! (StackSet instance, credential, deployment, first run), not protection's.
//! BENCH_SIZES (default 50,200).

use std::sync::Arc;
use std::time::{Duration, Instant};

use garrison_cloud::emulator::Moto;
use garrison_cloud::{Aws, Sessions};
use garrison_engine::Engine;
use garrison_model::deployment::StatusKind;
use garrison_model::enrollment::EnrollmentSpec;
use garrison_model::organization::{Selection, UnitItem};
use garrison_testkit::organization;
use garrison_testkit::tenants::GARRISON;
use serde_json::json;

struct Run {
    aws: Aws,
    engine: Arc<Engine>,
    account: String,
    root: String,
    unit: String,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn setup(moto: &Moto) -> anyhow::Result<Run> {
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    let sessions = Arc::new(Sessions::new(aws.clone()));
    let root = organization::create(&aws).await?;
    let unit = organization::unit(&aws, &root, "prod").await?;
    let t = garrison_testkit::tenants::tenant(&aws, "bench-org").await?;
    let management = t.role_credential(&aws, "garrison-management", "ci_organization").await?;
    let spec = EnrollmentSpec {
        name: "bench".into(),
        credential_id: management,
        selection: Selection { include: vec![UnitItem { unit: unit.clone(), children: false }], ..Default::default() },
        template: json!({"mode": "automatic", "platform": {"type": "aws", "monitor": {"enabled": false}},
            "scope": {"include": [{"type": "region", "key": "/aws/us-east-1", "policy": {"id": garrison_catalog::policies::ESSENTIALS}}]}}),
        stack_set: "garrison-role".into(),
        event_feed: Default::default(),
    };
    t.store.create_enrollment(&t.account, spec, "bench").await?;
    let mut engine = Engine::new(t.store.clone(), sessions, GARRISON.into());
    engine.propagation = (1, Duration::ZERO);
    let engine = Arc::new(engine);
    let resync = Duration::from_secs(3600);
    let tasks = vec![
        tokio::spawn(garrison_engine::worker::run(engine.clone(), resync)),
        tokio::spawn(garrison_engine::enroll::run(engine.clone(), resync)),
    ];
    Ok(Run { aws, engine, account: t.account, root, unit, _tasks: tasks })
}

/// Creates `n` accounts into the unit, announces each, and waits until each has a
/// deployment whose run ended ok; the time from the first announcement.
async fn enroll(r: &Run, n: usize, tag: &str) -> anyhow::Result<Duration> {
    let mut ids = vec![];
    for i in 0..n {
        ids.push(organization::account(&r.aws, &r.root, &r.unit, &format!("{tag}-{i}")).await?);
    }
    let t0 = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        organization::announce_created(&r.aws, "123456789012", id, &format!("{tag}-{i}")).await?;
    }
    let deadline = t0 + Duration::from_secs(1800);
    loop {
        let deployments = r.engine.store.list_deployments(&r.account).await?;
        let ok =
            deployments.iter().filter(|d| ids.contains(&d.platform.id) && d.status.status == StatusKind::Ok).count();
        if ok == n {
            return Ok(t0.elapsed());
        }
        anyhow::ensure!(Instant::now() < deadline, "{ok} of {n} protected after 30 minutes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "50,200".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!(
        "bench/organization: accounts created into an enrolled unit at once, each announced by its CreateAccountResult event"
    );
    println!(
        "{:>6} {:>12} {:>12} {:>16} {:>14} {:>8}",
        "N", "all (s)", "one (s)", "N x one (s)", "calls/account", "ratio"
    );
    for n in sizes {
        let moto = Moto::start()?;
        let r = setup(&moto).await?;
        // Let the loop make the lifecycle feed and settle into listening.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let one = enroll(&r, 1, "solo").await?;
        let calls0 = r.engine.sessions.base.calls.total();
        let all = enroll(&r, n, "batch").await?;
        let calls = (r.engine.sessions.base.calls.total() - calls0) as f64 / n as f64;
        let serial = one * n as u32;
        println!(
            "{n:>6} {:>12.1} {:>12.2} {:>16.1} {:>14.1} {:>8.2}",
            all.as_secs_f64(),
            one.as_secs_f64(),
            serial.as_secs_f64(),
            calls,
            all.as_secs_f64() / serial.as_secs_f64()
        );
    }
    println!(
        "ratio: time for N at once over N times one account alone (lower is better; < 1: enrollment runs them together)"
    );
    Ok(())
}
