//! The worker loop: discovery for deployments that are new or changed (woken by the API)
//! and for all of them at each periodic resync.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Engine;
use crate::discover::discover_deployment;

/// Runs until the task is dropped.
pub async fn run(engine: Arc<Engine>, resync: Duration) {
    let mut seen: HashMap<String, i64> = HashMap::new();
    let mut last_full = Instant::now() - resync;
    loop {
        let full = last_full.elapsed() >= resync;
        if full {
            last_full = Instant::now();
        }
        match engine.store.all_deployments().await {
            Ok(all) => {
                seen.retain(|id, _| all.iter().any(|d| &d.id == id));
                for d in all {
                    if !full && seen.get(&d.id) == Some(&d.version) {
                        continue;
                    }
                    seen.insert(d.id.clone(), d.version);
                    if let Err(err) = discover_deployment(&engine, &d).await {
                        tracing::warn!(deployment = %d.id, error = %err, "discovery run failed");
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "worker cannot list deployments"),
        }
        let wait = resync.saturating_sub(last_full.elapsed()).max(Duration::from_millis(50));
        tokio::select! {
            _ = engine.wake.notified() => {},
            _ = tokio::time::sleep(wait) => {},
        }
    }
}
