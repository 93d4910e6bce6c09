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

/// Runs until the task is dropped.
pub async fn run(engine: Arc<Engine>, resync: Duration) {
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
