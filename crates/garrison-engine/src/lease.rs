//! Work under a deployment's lease (a shared PostgreSQL store): renewed while the work
//! runs, dropped when lost. The worker's runs and the collector's targeted reconciles both
//! take it; neither module depends on the other for it.

use std::time::{Duration, Instant};

use garrison_model::deployment::Reason;

use crate::error::EngineError;
use crate::{Engine, now_ms};

/// Runs `work` while `holder` keeps `lease`, renewing it every third of its lifetime.
/// None when the lease was lost (this process stalled past expiry and another took over):
/// the work is dropped, and the generation claimed by the newer run fences anything already
/// under way.
pub(crate) async fn under_lease<T>(
    engine: &Engine,
    lease: &garrison_store::Lease,
    holder: &str,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    let ttl = engine.lease_ttl.as_millis() as i64;
    let keep = async {
        loop {
            tokio::time::sleep(engine.lease_ttl / 3).await;
            match engine.store.renew_lease(lease, holder, now_ms(), ttl).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(err) => tracing::warn!(error = %err, "cannot renew a lease"),
            }
        }
    };
    tokio::select! {
        v = work => Some(v),
        _ = keep => None,
    }
}

/// The collector's reconciles on a shared store: they take the deployment's lease too
/// (under a holder name of their own, so that neither this worker's runs nor another's
/// can overlap them), waiting up to two lease periods for a run in progress to end.
pub async fn exclusively<T>(
    engine: &Engine,
    deployment_id: &str,
    work: impl std::future::Future<Output = Result<T, EngineError>>,
) -> Result<T, EngineError> {
    let holder = format!("{}/collector", engine.worker_id);
    let ttl = engine.lease_ttl.as_millis() as i64;
    let deadline = Instant::now() + engine.lease_ttl * 2;
    let lease = loop {
        if let Some(l) = engine.store.claim_lease(deployment_id, &holder, now_ms(), ttl).await? {
            break l;
        }
        if Instant::now() >= deadline {
            return Err(EngineError::new(
                Reason::Busy,
                format!("deployment {deployment_id} is being reconciled elsewhere; the changes wait for the next try"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let out = under_lease(engine, &lease, &holder, work).await;
    if let Err(err) = engine.store.release_lease(&lease, &holder).await {
        tracing::warn!(deployment = %deployment_id, error = %err, "cannot release a lease");
    }
    out.unwrap_or_else(|| {
        Err(EngineError::new(Reason::Busy, format!("lost the lease on deployment {deployment_id}; run abandoned")))
    })
}
