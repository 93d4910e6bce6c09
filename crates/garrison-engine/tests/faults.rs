//! garrison under an unreliable AWS: estate M protected and then removed through the fault
//! proxy (20% throttling with each service's real error, 5% 500/503, 2% connections reset —
//! half of them after the emulator carried the call out, so the answer is lost), ten runs
//! in a row, each with its own fault sequence. Every run must converge (a reconcile with
//! nothing left to do) with no duplicate and no orphaned resource, and the removal must
//! leave nothing of garrison's behind. The figures go to stdout for the README.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::GARRISON;
use garrison_catalog::policies::{ESSENTIALS, PROFESSIONAL};
use garrison_cloud::emulator::{Moto, sdk_config};
use garrison_cloud::estate::{self, EstateSpec};
use garrison_cloud::{Aws, Sessions};
use garrison_engine::Engine;
use garrison_engine::protect::{reconcile, uninstall};
use garrison_model::deployment::Deployment;
use garrison_model::health::ItemStatus;
use garrison_testkit::proxy::{Proxy, Rates};
use garrison_testkit::tenants::leftovers;

const RUNS: u64 = 10;
const MAX_ROUNDS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estate_m_converges_under_faults_with_no_duplicate_or_orphan() {
    common::init_log();
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let direct = Aws::from_config(moto.sdk_config("us-east-1").await);
    let proxy = Proxy::start(&moto.url).await.unwrap();
    // Retries start after 20 ms, not AWS's second: the faults are what is tested, not waiting.
    let mut faulty =
        Aws::from_config(sdk_config(&proxy.url, "us-east-1").await).with_retry_backoff(Duration::from_millis(20));
    // The emulator has no EC2 write budget; garrison's own pacing would only slow the test.
    faulty.limiter = Arc::new(garrison_cloud::limiter::Limiter::unlimited());
    let spec = EstateSpec::m();
    let (mut calls, mut rounds_total, mut worst_rounds) = (0u64, 0usize, 0usize);
    let t0 = Instant::now();
    for run in 0..RUNS {
        moto.reset().unwrap();
        let t_run = Instant::now();
        estate::build(&Sessions::new(direct.clone()), &spec).await.unwrap();
        let t_built = t_run.elapsed();
        let t = garrison_testkit::tenants::tenant(&direct, "faults").await.unwrap();
        let d: Deployment =
            t.automatic("faults", &spec.regions, |i| if i == 0 { PROFESSIONAL } else { ESSENTIALS }).await.unwrap();
        // Traffic mirroring too: its filters, targets and sessions under the same faults.
        let span = garrison_model::otis::parse(
            &serde_json::json!({"name": "span_port_enabled", "scope": {"deployment_id": d.id}, "value": true}),
        )
        .unwrap();
        assert!(t.store.create_option(&t.account, &span).await.unwrap());
        let mut e = Engine::new(t.store.clone(), Arc::new(Sessions::new(faulty.clone())), GARRISON.into());
        e.propagation = (3, Duration::ZERO);
        e.retry_pause = Duration::from_millis(50);
        *proxy.faults.rates.lock().unwrap() = Rates { throttle: 0.20, server_error: 0.05, reset: 0.02, seed: run };
        let before = proxy.faults.requests.load(std::sync::atomic::Ordering::Relaxed);

        // Reconcile until a run that read everything finds nothing to do (the worker would,
        // every resync). A run with a kind unread (a gap: status warning) keeps that kind's
        // previous facts, which may predate the last run's writes, so it proves nothing.
        let mut rounds = 0;
        // Why each round did not count as converged, for the failure message.
        let mut why: Vec<String> = vec![];
        loop {
            rounds += 1;
            assert!(
                rounds <= MAX_ROUNDS,
                "run {run}: not converged after {MAX_ROUNDS} reconciles:\n{}",
                why.join("\n")
            );
            match reconcile(&e, &d).await {
                Ok(r) if r.plan.actions.is_empty() => {
                    let now = t.store.get_deployment(&d.account_id, &d.id).await.unwrap().unwrap();
                    if now.status.status == garrison_model::deployment::StatusKind::Ok {
                        break;
                    }
                    why.push(format!(
                        "round {rounds}: nothing to do, status {:?}: {:?}",
                        now.status.status, now.status.message
                    ));
                }
                Ok(r) => {
                    let failed: Vec<String> = r
                        .outcomes
                        .iter()
                        .filter(|o| o.result != "done")
                        .map(|o| format!("{} {:?} {}", o.key, o.result, o.error.as_deref().unwrap_or("")))
                        .take(5)
                        .collect();
                    why.push(format!("round {rounds}: {} action(s), not done: {failed:?}", r.plan.actions.len()));
                }
                Err(err) => why.push(format!("round {rounds}: {err}")),
            }
        }
        let t_converged = t_run.elapsed();
        rounds_total += rounds;
        worst_rounds = worst_rounds.max(rounds);
        let regions = spec.regions.clone();
        let got = leftovers(&direct, &regions, &d.id).await;
        let owned = t.store.owned(&d.id).await.unwrap();
        for kind in [garrison_model::protection::ResKind::Appliance, garrison_model::protection::ResKind::MirrorSession]
        {
            assert!(got.by_key.keys().any(|(k, _)| *k == kind), "run {run}: {kind:?} built");
        }
        assert_eq!(got.duplicates(), Vec::<String>::new(), "run {run}: duplicates");
        let (orphans, missing) = got.orphans_and_missing(&owned);
        assert_eq!(orphans, Vec::<String>::new(), "run {run}: orphans");
        assert_eq!(missing, Vec::<String>::new(), "run {run}: recorded but not in AWS");

        // Removal under the same faults leaves nothing behind.
        let mut tries = 0;
        loop {
            tries += 1;
            assert!(tries <= MAX_ROUNDS, "run {run}: removal not finished after {MAX_ROUNDS} tries");
            if let Ok(r) = uninstall(&e, &d).await
                && r.verified
            {
                break;
            }
        }
        println!(
            "faults: run {run}: estate built {:.1} s, converged at {:.1} s ({rounds} reconciles), removed at {:.1} s ({tries} tries)",
            t_built.as_secs_f64(),
            t_converged.as_secs_f64(),
            t_run.elapsed().as_secs_f64()
        );
        let left = leftovers(&direct, &regions, &d.id).await;
        assert!(left.by_key.is_empty() && left.named.is_empty(), "run {run}: left behind: {left:?}");
        calls += proxy.faults.requests.load(std::sync::atomic::Ordering::Relaxed) - before;
        let _ = std::fs::remove_dir_all(&t.dir);
    }
    let (throttles, errors, resets) = proxy.faults.injected();
    println!(
        "faults: {RUNS} runs of estate M in {:.0} s: {calls} AWS calls through the proxy, {throttles} throttled, {errors} 5xx, {resets} resets; \
         converged in {:.1} reconciles on average (at most {worst_rounds}); 0 duplicates, 0 orphans, nothing left after removal",
        t0.elapsed().as_secs_f64(),
        rounds_total as f64 / RUNS as f64
    );
}

/// A region refused (AccessDenied) or a kind throttled beyond every retry: the reconcile
/// removes, stops and forgets nothing, and the status is a warning naming what failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_discovery_removes_nothing_and_says_what_failed() {
    common::init_log();
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let direct = Aws::from_config(moto.sdk_config("us-east-1").await);
    let proxy = Proxy::start(&moto.url).await.unwrap();
    let faulty =
        Aws::from_config(sdk_config(&proxy.url, "us-east-1").await).with_retry_backoff(Duration::from_millis(20));
    let spec = EstateSpec::s_bare();
    estate::build(&Sessions::new(direct.clone()), &spec).await.unwrap();
    let t = garrison_testkit::tenants::tenant(&direct, "partial").await.unwrap();
    let d: Deployment = t.automatic("partial", &spec.regions, |_| ESSENTIALS).await.unwrap();
    let mut e = Engine::new(t.store.clone(), Arc::new(Sessions::new(faulty.clone())), GARRISON.into());
    e.retry_pause = Duration::from_millis(50);
    let first = reconcile(&e, &d).await.unwrap();
    assert!(first.outcomes.iter().all(|o| o.result == "done") && !first.vpcs.is_empty());
    let owned_before = t.store.owned(&d.id).await.unwrap();
    let west = &spec.regions[1];

    let removals = |r: &garrison_engine::protect::Report| {
        r.plan.actions.iter().filter(|a| matches!(a.op.verb(), "delete" | "stop" | "forget")).count()
    };
    for (fault, names) in [
        ("region", format!("{west} instances (UnauthorizedOperation)")),
        ("kind", "instances (RequestLimitExceeded)".to_string()),
    ] {
        let writes_before = t.store.audit_log(&t.account, &d.id, 100_000).await.unwrap().len();
        match fault {
            "region" => {
                proxy.faults.deny_regions.lock().unwrap().insert(west.clone());
            }
            _ => {
                proxy.faults.deny_regions.lock().unwrap().clear();
                proxy.faults.throttle_always.lock().unwrap().insert("DescribeInstances".into());
            }
        }
        let throttled = proxy.faults.throttled.load(std::sync::atomic::Ordering::Relaxed);
        let r = reconcile(&e, &d).await.unwrap();
        let status = t.store.get_deployment(&t.account, &d.id).await.unwrap().unwrap().status;
        let msg = status.message.clone().unwrap_or_default();
        assert_eq!(status.status, garrison_model::deployment::StatusKind::Warning, "{fault}: {msg}");
        assert!(msg.contains("discovery incomplete") && msg.contains(&names), "{fault}: {msg}");
        assert_eq!(removals(&r), 0, "{fault}: {:?}", r.plan.actions);
        let log = t.store.audit_log(&t.account, &d.id, 100_000).await.unwrap();
        assert_eq!(log.len(), writes_before, "{fault}: no AWS write at all: {:?}", &log[writes_before..]);
        assert_eq!(
            t.store.owned(&d.id).await.unwrap().items.len(),
            owned_before.items.len(),
            "{fault}: nothing forgotten"
        );
        if fault == "kind" {
            let n = proxy.faults.throttled.load(std::sync::atomic::Ordering::Relaxed) - throttled;
            assert!(n >= u64::from(garrison_cloud::session::MAX_ATTEMPTS), "every attempt was throttled: {n}");
        }
        // A region whose reads are denied is a health item with its remedy; a throttled
        // read is not a denial (the region's item concludes once its reads go through).
        let h = garrison_engine::appliances::evaluate(&e, &d, garrison_engine::now_ms()).await.unwrap();
        let denied = format!("region_denied/{west}");
        let open: Vec<&String> =
            h.items.values().filter(|i| i.status == ItemStatus::Unhealthy).map(|i| &i.key).collect();
        if fault == "region" {
            assert_eq!(open, vec![&denied], "{fault}: {:?}", h.items);
            assert!(h.items[&denied].remedy.contains("service control policy"), "{:?}", h.items[&denied]);
        } else {
            assert!(open.is_empty(), "{fault}: {:?}", h.items);
            assert_eq!(h.items[&denied].status, ItemStatus::Concluded);
        }
    }
    // Faults gone: the next reconcile is clean and finds nothing to change.
    proxy.faults.throttle_always.lock().unwrap().clear();
    let r = reconcile(&e, &d).await.unwrap();
    let status = t.store.get_deployment(&t.account, &d.id).await.unwrap().unwrap().status;
    assert_eq!(status.status, garrison_model::deployment::StatusKind::Ok, "{:?}", status.message);
    assert!(r.plan.actions.is_empty(), "{:?}", r.plan.actions);
    let h = garrison_engine::appliances::evaluate(&e, &d, garrison_engine::now_ms()).await.unwrap();
    assert!(h.items.values().all(|i| i.status == ItemStatus::Concluded), "{:?}", h.items);

    // Writes AWS refuses: a scanner terminated behind garrison's back cannot be launched
    // again while every RunInstances is throttled — an item per failing resource — and the
    // item concludes once the launch goes through.
    let scanner = r.vpcs.iter().flat_map(|v| &v.appliances).find(|a| a.running()).expect("a running scanner").clone();
    direct
        .in_region(&r.vpcs.iter().find(|v| v.appliances.contains(&scanner)).unwrap().region)
        .ec2()
        .terminate_instances()
        .instance_ids(&scanner.instance_id)
        .send()
        .await
        .unwrap();
    proxy.faults.throttle_always.lock().unwrap().insert("RunInstances".into());
    let r = reconcile(&e, &d).await.unwrap();
    assert!(r.outcomes.iter().any(|o| o.key == scanner.key && o.result == "failed"), "{:?}", r.outcomes);
    let h = garrison_engine::appliances::evaluate(&e, &d, garrison_engine::now_ms()).await.unwrap();
    let failing = format!("writes_failing/{}", scanner.key);
    assert_eq!(h.items.get(&failing).map(|i| i.status), Some(ItemStatus::Unhealthy), "{:?}", h.items);
    proxy.faults.throttle_always.lock().unwrap().clear();
    let r = reconcile(&e, &d).await.unwrap();
    assert!(r.outcomes.iter().all(|o| o.result == "done"), "{:?}", r.outcomes);
    let h = garrison_engine::appliances::evaluate(&e, &d, garrison_engine::now_ms()).await.unwrap();
    assert_eq!(h.items.get(&failing).map(|i| i.status), Some(ItemStatus::Concluded), "{:?}", h.items);
}
