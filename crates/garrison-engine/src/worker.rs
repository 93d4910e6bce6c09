//! The reconcile loop: deployments that are new or changed (woken by the API) and all of
//! them at each periodic resync go through discover → plan → execute; deployments being
//! removed are uninstalled until the removal is verified.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use garrison_model::deployment::{Deployment, Mode, Reason};

use crate::discover::discover_deployment;
use crate::lease::under_lease;
use crate::protect::{reconcile, uninstall};
use crate::{Engine, now_ms};

/// One deployment's turn: protection for active ones, discovery status for the rest.
/// Returns the reason the run ended with: the error policy's input (`Engine::after_run`).
pub async fn run_one(engine: &Engine, d: &Deployment) -> Reason {
    let active = d.enabled && d.discover && d.mode != Mode::None;
    let r = if active {
        reconcile(engine, d).await.map(|r| r.reason)
    } else {
        discover_deployment(engine, d).await.map(|o| o.status.reason.unwrap_or(Reason::Idle))
    };
    let reason = match r {
        Ok(reason) => reason,
        Err(err) => {
            tracing::warn!(deployment = %d.id, reason = err.reason.as_str(), error = %err.message, "reconcile failed");
            err.reason
        }
    };
    // What the run changed in the deployment's health, told at once.
    if let Err(err) = crate::appliances::evaluate(engine, d, now_ms()).await {
        tracing::warn!(deployment = %d.id, error = %err, "health evaluation failed");
    }
    reason
}

/// Runs until the task is dropped. On a shared store (PostgreSQL) workers coordinate through
/// leases (`run_leased`); on SQLite one process does everything here.
pub async fn run(engine: Arc<Engine>, resync: Duration) {
    if engine.store.backend() == garrison_store::Backend::Postgres {
        return run_leased(engine, resync).await;
    }
    let mut seen: HashMap<String, i64> = HashMap::new();
    // Deployments whose last run failed for a passing reason: when to run them again.
    let mut again: HashMap<String, Instant> = HashMap::new();
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
                        // Back off: 2 s, 4 s, … up to the resync interval (the error policy's curve).
                        let n = retry.get(&d.id).map(|(_, n)| n + 1).unwrap_or(0);
                        let wait = garrison_model::deployment::backoff(n + 1, Duration::from_secs(2), resync);
                        retry.insert(d.id.clone(), (Instant::now() + wait, n));
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "worker cannot list removals"),
        }
        let made_due: std::collections::HashSet<String> = match engine.store.take_made_due().await {
            Ok(ids) => ids.into_iter().collect(),
            Err(err) => {
                tracing::warn!(error = %err, "worker cannot read the deployments made due");
                Default::default()
            }
        };
        match engine.store.all_deployments().await {
            Ok(all) => {
                seen.retain(|id, _| all.iter().any(|d| &d.id == id));
                again.retain(|id, _| all.iter().any(|d| &d.id == id));
                for d in all {
                    let due = again.get(&d.id).is_some_and(|at| Instant::now() >= *at) || made_due.contains(&d.id);
                    if !full && !due && seen.get(&d.id) == Some(&d.version) {
                        continue;
                    }
                    seen.insert(d.id.clone(), d.version);
                    let reason = run_one(&engine, &d).await;
                    match engine.after_run(&d.id, reason, resync) {
                        Some(pause) => again.insert(d.id.clone(), Instant::now() + pause),
                        None => again.remove(&d.id),
                    };
                }
            }
            Err(err) => tracing::warn!(error = %err, "worker cannot list deployments"),
        }
        let pending_removals = engine.store.removals().await.map(|r| !r.is_empty()).unwrap_or(false);
        let next_retry = again.values().min().map(|at| at.saturating_duration_since(Instant::now()));
        let wait = if pending_removals {
            Duration::from_secs(2)
        } else {
            resync.saturating_sub(last_full.elapsed()).max(Duration::from_millis(50))
        };
        let wait = next_retry.map_or(wait, |r| r.clamp(Duration::from_millis(50), wait));
        tokio::select! {
            _ = engine.wake.notified() => {},
            _ = tokio::time::sleep(wait) => {},
        }
    }
}

/// The next periodic run of deployment `id`, finished at `now`: at its own phase of the
/// interval (a stable hash of its id), the first such moment more than half an interval
/// away. In steady state each deployment runs once per interval, and the fleet's runs are
/// spread evenly over it, however many were created, or came due, at the same moment.
pub fn next_due(id: &str, now: i64, resync: Duration) -> i64 {
    let interval = (resync.as_millis() as i64).max(1);
    // FNV-1a: stable across processes and builds, unlike std's hasher.
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
    let phase = (hash % interval as u64) as i64;
    let earliest = now + interval / 2 + 1;
    earliest + (phase - earliest).rem_euclid(interval)
}

/// One run under a lease (see `under_lease`); finished with the next due time.
async fn leased_run(engine: Arc<Engine>, lease: garrison_store::Lease, d: Deployment, resync: Duration, removal: bool) {
    let me = engine.worker_id.clone();
    if let Some(from) = &lease.taken_from {
        metrics::counter!("garrison_lease_takeovers_total").increment(1);
        tracing::info!(deployment = %d.id, from = %from, worker = %me, "lease taken over");
    }
    let work = async {
        if removal {
            match uninstall(&engine, &d).await {
                Ok(r) if r.verified => tracing::info!(deployment = %d.id, "removed"),
                Ok(r) => tracing::warn!(deployment = %d.id, remaining = ?r.remaining, "removal not complete yet"),
                Err(err) => tracing::warn!(deployment = %d.id, error = %err, "removal failed"),
            }
            None
        } else {
            Some(run_one(&engine, &d).await)
        }
    };
    let Some(reason) = under_lease(&engine, &lease, &me, work).await else {
        tracing::warn!(deployment = %d.id, worker = %me, "lease lost; run abandoned");
        return;
    };
    // A removal comes back soon if it did not finish; a reconcile as the error policy says:
    // after a backoff, or at its next resync.
    let due = match reason {
        None => now_ms() + 2_000,
        Some(reason) => match engine.after_run(&d.id, reason, resync) {
            Some(pause) => now_ms() + pause.as_millis() as i64,
            None => next_due(&d.id, now_ms(), resync),
        },
    };
    if let Err(err) = engine.store.finish_lease(&lease, &me, d.version, due).await {
        tracing::warn!(deployment = %d.id, error = %err, "cannot finish a lease");
    }
}

/// Starts the run of claimed `lease` in a free slot; false when none is free (the lease is
/// given back). A removal carries its own copy of the deployment; a reconcile reads the
/// deployment as it is now, once it is ours.
async fn start(
    engine: &Arc<Engine>,
    lanes: &[&Arc<tokio::sync::Semaphore>],
    running: &Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    lease: garrison_store::Lease,
    removal_of: Option<Deployment>,
    resync: Duration,
) -> bool {
    let me = &engine.worker_id;
    let id = lease.deployment_id.clone();
    // A run of ours still going (its lease lapsed while it stalled): it finds out at its
    // next renewal; this claim waits for a later pass.
    let busy = running.lock().expect("running").contains(&id);
    let permit = lanes.iter().find_map(|lane| (*lane).clone().try_acquire_owned().ok());
    let permit = match permit {
        Some(p) if !busy => p,
        other => {
            let _ = engine.store.release_lease(&lease, me).await;
            return other.is_some();
        }
    };
    let removal = removal_of.is_some();
    let d = match removal_of {
        Some(d) => d,
        None => match engine.store.deployment_by_id(&id).await {
            Ok(Some(d)) => d,
            other => {
                if let Err(err) = other {
                    tracing::warn!(deployment = %id, error = %err, "cannot read a claimed deployment");
                }
                let _ = engine.store.release_lease(&lease, me).await;
                return true;
            }
        },
    };
    running.lock().expect("running").insert(id.clone());
    let (engine, running) = (engine.clone(), running.clone());
    tokio::spawn(async move {
        leased_run(engine.clone(), lease, d, resync, removal).await;
        running.lock().expect("running").remove(&id);
        drop(permit);
        // A slot is free: look for more work now rather than at the next tick.
        engine.wake.notify_one();
    });
    true
}

/// Several workers on one PostgreSQL: each pass claims from the store as many due
/// deployments as it has free slots (`parallel_runs`) in one statement (`claim_next`:
/// changed ones first, then its own from before, then the longest overdue) and runs them;
/// a killed worker's leases expire and others take them over. A slot freed wakes the loop
/// at once. A large account holds one slot for as long as it takes; the others keep turning.
/// Runs a dead worker left half-done are taken over as soon as their leases lapse, in a
/// slot if one is free and otherwise in a takeover lane of as many again: with every slot
/// busy they would wait for a routine run to end, and an account left half-built waits
/// for nothing else.
pub async fn run_leased(engine: Arc<Engine>, resync: Duration) {
    let me = engine.worker_id.clone();
    let ttl = engine.lease_ttl.as_millis() as i64;
    let slots = Arc::new(tokio::sync::Semaphore::new(engine.parallel_runs.max(1)));
    let takeovers = Arc::new(tokio::sync::Semaphore::new(engine.parallel_runs.max(1)));
    let running: Arc<std::sync::Mutex<std::collections::HashSet<String>>> = Arc::default();
    tracing::info!(worker = %me, "worker running with leases");
    loop {
        // Removals first: few, and each one is always due.
        match engine.store.removals().await {
            Ok(list) => {
                for d in list {
                    if slots.available_permits() == 0 {
                        break;
                    }
                    // Claiming again what we hold would fence off our own run in progress.
                    if running.lock().expect("running").contains(&d.id) {
                        continue;
                    }
                    match engine.store.claim_due(&d.id, -2, &me, now_ms(), ttl).await {
                        Ok(Some(lease)) => {
                            start(&engine, &[&slots], &running, lease, Some(d), resync).await;
                        }
                        Ok(None) => {}
                        Err(err) => tracing::warn!(deployment = %d.id, error = %err, "cannot claim a lease"),
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "worker cannot list removals"),
        }
        let room = slots.available_permits() + takeovers.available_permits();
        if room > 0 {
            match engine.store.claim_lapsed(&me, now_ms(), ttl, room as i64).await {
                Ok(leases) => {
                    for lease in leases {
                        start(&engine, &[&slots, &takeovers], &running, lease, None, resync).await;
                    }
                }
                Err(err) => tracing::warn!(error = %err, "worker cannot claim lapsed runs"),
            }
        }
        let free = slots.available_permits();
        if free > 0 {
            match engine.store.claim_next(&me, now_ms(), ttl, free as i64).await {
                Ok(leases) => {
                    for lease in leases {
                        start(&engine, &[&slots], &running, lease, None, resync).await;
                    }
                }
                Err(err) => tracing::warn!(error = %err, "worker cannot claim due deployments"),
            }
        }
        tokio::select! {
            _ = engine.wake.notified() => {},
            _ = tokio::time::sleep(Duration::from_millis(500)) => {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_resync_comes_between_half_and_one_and_a_half_intervals_later(
            id in "[A-F0-9-]{8,36}", now in 0i64..4_000_000_000_000, secs in 1u64..100_000,
        ) {
            let i = (secs * 1000) as i64;
            let due = next_due(&id, now, Duration::from_secs(secs));
            prop_assert!(due > now + i / 2 && due <= now + i / 2 + i, "{due} after {now}");
            // Finished shortly after it came due, a deployment keeps its place: once per interval.
            prop_assert_eq!(next_due(&id, due + i / 3, Duration::from_secs(secs)), due + i);
        }
    }

    #[test]
    fn deployments_that_came_due_together_are_spread_over_the_interval() {
        let resync = Duration::from_secs(3600);
        let now = 1_800_000_000_000;
        let mut buckets = [0u32; 12];
        for n in 0..1200u64 {
            // Ids that differ in a digit or two, the hard case for a spread.
            let id = format!("5EED0000-0000-4000-8000-{n:012X}");
            let due = next_due(&id, now, resync) - now - 1_800_000;
            buckets[(due * 12 / 3_600_000) as usize] += 1;
        }
        // 100 per five minutes on average; no five minutes with a burst.
        assert!(buckets.iter().all(|&b| (60..=140).contains(&b)), "{buckets:?}");
    }
}
