//! The reconcile loop: deployments that are new or changed (woken by the API) and all of
//! them at each periodic resync go through discover → plan → execute; deployments being
//! removed are uninstalled until the removal is verified.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use garrison_model::deployment::{Deployment, Mode};

use crate::Engine;
use crate::discover::discover_deployment;
use crate::protect::{reconcile, uninstall};

/// One deployment's turn: protection for active ones, discovery status for the rest.
pub async fn run_one(engine: &Engine, d: &Deployment) {
    let active = d.enabled && d.discover && d.mode != Mode::None;
    let r =
        if active { reconcile(engine, d).await.map(|_| ()) } else { discover_deployment(engine, d).await.map(|_| ()) };
    if let Err(err) = r {
        tracing::warn!(deployment = %d.id, error = %err, "reconcile failed");
    }
}

/// Runs until the task is dropped. On a shared store (PostgreSQL) workers coordinate through
/// leases (`run_leased`); on SQLite one process does everything here.
pub async fn run(engine: Arc<Engine>, resync: Duration) {
    if engine.store.backend() == garrison_store::Backend::Postgres {
        return run_leased(engine, resync).await;
    }
    let mut seen: HashMap<String, i64> = HashMap::new();
    // Removals that did not verify: when to try again, and how many times they failed.
    let mut retry: HashMap<String, (Instant, u32)> = HashMap::new();
    let mut last_full = Instant::now() - resync;
    loop {
        let full = last_full.elapsed() >= resync;
        if full {
            last_full = Instant::now();
        }
        match engine.store.removals().await {
            Ok(list) => {
                retry.retain(|id, _| list.iter().any(|d| &d.id == id));
                for d in list {
                    if retry.get(&d.id).is_some_and(|(next, _)| Instant::now() < *next) {
                        continue;
                    }
                    tracing::info!(deployment = %d.id, "uninstalling");
                    let ok = match uninstall(&engine, &d).await {
                        Ok(r) if r.verified => {
                            tracing::info!(deployment = %d.id, "removed");
                            true
                        }
                        Ok(r) => {
                            tracing::warn!(deployment = %d.id, remaining = ?r.remaining, "removal not complete yet");
                            false
                        }
                        Err(err) => {
                            tracing::warn!(deployment = %d.id, error = %err, "removal failed");
                            false
                        }
                    };
                    if ok {
                        retry.remove(&d.id);
                    } else {
                        // Back off: 2 s, 4 s, … up to the resync interval.
                        let n = retry.get(&d.id).map(|(_, n)| n + 1).unwrap_or(0);
                        let wait = Duration::from_secs(2u64.saturating_pow(n + 1)).min(resync);
                        retry.insert(d.id.clone(), (Instant::now() + wait, n));
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "worker cannot list removals"),
        }
        match engine.store.all_deployments().await {
            Ok(all) => {
                seen.retain(|id, _| all.iter().any(|d| &d.id == id));
                for d in all {
                    if !full && seen.get(&d.id) == Some(&d.version) {
                        continue;
                    }
                    seen.insert(d.id.clone(), d.version);
                    run_one(&engine, &d).await;
                }
            }
            Err(err) => tracing::warn!(error = %err, "worker cannot list deployments"),
        }
        let pending_removals = engine.store.removals().await.map(|r| !r.is_empty()).unwrap_or(false);
        let wait = if pending_removals {
            Duration::from_secs(2)
        } else {
            resync.saturating_sub(last_full.elapsed()).max(Duration::from_millis(50))
        };
        tokio::select! {
            _ = engine.wake.notified() => {},
            _ = tokio::time::sleep(wait) => {},
        }
    }
}

fn now_ms() -> i64 {
    crate::now_ms()
}

/// The next periodic run, spread over ±10% of the interval so that deployments created
/// together do not come due together.
fn next_due(resync: Duration) -> i64 {
    let ms = resync.as_millis() as i64;
    now_ms() + ms - ms / 10 + (rand::random::<u64>() % (ms as u64 / 5 + 1)) as i64
}

/// One run under a lease: renewed every third of its lifetime while the run goes on; if it
/// is lost (this worker stalled past expiry and another took over), the run is dropped —
/// and the generation claimed by the newer run fences anything already under way.
async fn leased_run(engine: Arc<Engine>, lease: garrison_store::Lease, d: Deployment, resync: Duration, removal: bool) {
    let me = engine.worker_id.clone();
    let ttl = engine.lease_ttl.as_millis() as i64;
    if let Some(from) = &lease.taken_from {
        metrics::counter!("garrison_lease_takeovers_total").increment(1);
        tracing::info!(deployment = %d.id, from = %from, worker = %me, "lease taken over");
    }
    let keep = {
        let (engine, lease, me) = (engine.clone(), lease.clone(), me.clone());
        async move {
            loop {
                tokio::time::sleep(engine.lease_ttl / 3).await;
                match engine.store.renew_lease(&lease, &me, now_ms(), ttl).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(err) => tracing::warn!(error = %err, "cannot renew a lease"),
                }
            }
        }
    };
    let work = async {
        if removal {
            match uninstall(&engine, &d).await {
                Ok(r) if r.verified => tracing::info!(deployment = %d.id, "removed"),
                Ok(r) => tracing::warn!(deployment = %d.id, remaining = ?r.remaining, "removal not complete yet"),
                Err(err) => tracing::warn!(deployment = %d.id, error = %err, "removal failed"),
            }
        } else {
            run_one(&engine, &d).await;
        }
    };
    tokio::select! {
        _ = work => {
            // A removal comes back soon if it did not finish; a reconcile at the next resync.
            let due = if removal { now_ms() + 2_000 } else { next_due(resync) };
            if let Err(err) = engine.store.finish_lease(&lease, &me, d.version, due).await {
                tracing::warn!(deployment = %d.id, error = %err, "cannot finish a lease");
            }
        }
        _ = keep => tracing::warn!(deployment = %d.id, worker = %me, "lease lost; run abandoned"),
    }
}

/// Several workers on one PostgreSQL: each pass claims the deployments that are due (a
/// version not reconciled yet, or the next periodic run) and free, up to `parallel_runs` at a
/// time; a killed worker's leases expire and others take them over.
pub async fn run_leased(engine: Arc<Engine>, resync: Duration) {
    let me = engine.worker_id.clone();
    let ttl = engine.lease_ttl.as_millis() as i64;
    let slots = Arc::new(tokio::sync::Semaphore::new(engine.parallel_runs.max(1)));
    let running: Arc<std::sync::Mutex<std::collections::HashSet<String>>> = Arc::default();
    tracing::info!(worker = %me, "worker running with leases");
    loop {
        let mut work: Vec<(Deployment, bool)> = vec![];
        match engine.store.removals().await {
            Ok(list) => work.extend(list.into_iter().map(|d| (d, true))),
            Err(err) => tracing::warn!(error = %err, "worker cannot list removals"),
        }
        match engine.store.all_deployments().await {
            Ok(all) => work.extend(all.into_iter().map(|d| (d, false))),
            Err(err) => tracing::warn!(error = %err, "worker cannot list deployments"),
        }
        for (d, removal) in work {
            if running.lock().expect("running").contains(&d.id) {
                continue;
            }
            let Ok(permit) = slots.clone().try_acquire_owned() else { break };
            // A removal is always due; its version stands for "removal" in the lease.
            let version = if removal { -2 } else { d.version };
            let lease = match engine.store.claim_due(&d.id, version, &me, now_ms(), ttl).await {
                Ok(Some(l)) => l,
                Ok(None) => continue,
                Err(err) => {
                    tracing::warn!(deployment = %d.id, error = %err, "cannot claim a lease");
                    continue;
                }
            };
            running.lock().expect("running").insert(d.id.clone());
            let (engine, running) = (engine.clone(), running.clone());
            tokio::spawn(async move {
                let id = d.id.clone();
                leased_run(engine, lease, d, resync, removal).await;
                running.lock().expect("running").remove(&id);
                drop(permit);
            });
        }
        tokio::select! {
            _ = engine.wake.notified() => {},
            _ = tokio::time::sleep(Duration::from_millis(500)) => {},
        }
    }
}
