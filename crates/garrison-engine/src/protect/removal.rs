//! The uninstall of a deployment being removed: everything garrison made goes (adopted
//! resources are only forgotten), verified by a fresh discovery before the record goes.

use garrison_model::deployment::{Deployment, Reason};
use garrison_model::protection::Op;
use garrison_model::report::ActionOutcome;
use serde::Serialize;

use super::{executor, inputs, regions_of, timed};
use crate::Engine;
use crate::discover::observe;
use crate::error::EngineError;
use crate::plan::plan_deployment;

/// Outcome of one uninstall attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Removal {
    pub outcomes: Vec<ActionOutcome>,
    /// Everything owned is gone (checked by a fresh discovery) and the record was deleted.
    pub verified: bool,
    pub remaining: Vec<String>,
}

/// Removes every resource garrison made for `d` (adopted ones are only forgotten), then
/// verifies with a fresh discovery that none is left before deleting the record.
pub async fn uninstall(e: &Engine, d: &Deployment) -> Result<Removal, EngineError> {
    timed("removal", d, Box::pin(uninstall_once(e, d))).await
}

async fn uninstall_once(e: &Engine, d: &Deployment) -> Result<Removal, EngineError> {
    let _turn = e.lock(&d.id).await;
    let generation = e.store.claim_generation(&d.account_id, &d.id).await?;
    let owned = e.store.owned(&d.id).await?;
    let regions = regions_of(&owned);
    let no_scans = crate::plan::scans::Scans::default();
    let keep_nothing = crate::plan::Replacing::default();
    let inputs = inputs(e, &[], &no_scans, &keep_nothing);
    let observe_owned = |d: &Deployment| {
        // Only the regions where something is owned matter now.
        let mut d = d.clone();
        d.scope.include.clear();
        d
    };
    let scoped = observe_owned(d);
    let seen = match Box::pin(observe(e, &scoped, &regions)).await {
        Ok(s) => s,
        Err(st) => {
            let reason = st.reason.unwrap_or(Reason::AwsUnavailable);
            return Err(EngineError::new(
                reason,
                format!("cannot look at the account: {}", st.message.unwrap_or_default()),
            ));
        }
    };
    let (plan, mut owned) = plan_deployment(None, &d.id, &seen.snapshot, &owned, &inputs);
    for o in owned.items.values() {
        e.store.put_owned(&d.account_id, &d.id, o).await?;
    }
    let ex = executor(e, &seen, d, generation);
    tracing::info!(deployment = %d.id, actions = plan.actions.len(), "removing");
    let outcomes = Box::pin(ex.run(&plan.actions, &mut owned)).await;
    // Verify: a fresh look must show nothing of ours, and the records must be empty.
    let after = Box::pin(observe(e, &scoped, &regions)).await.map_err(EngineError::from)?;
    let (again, owned_after) = plan_deployment(None, &d.id, &after.snapshot, &e.store.owned(&d.id).await?, &inputs);
    let mut remaining: Vec<String> = owned_after.items.keys().cloned().collect();
    remaining.extend(again.actions.iter().filter(|a| matches!(a.op, Op::Delete { .. })).map(|a| a.key.clone()));
    // Trails carry no tags in discovery: ours is known by its name.
    let trail = format!("{}{}", garrison_model::protection::TRAIL_PREFIX, crate::plan::desired::short(&d.id));
    if after.snapshot.regions.values().any(|r| r.trails.iter().any(|t| t.name == trail)) {
        remaining.push(crate::plan::desired::keys::TRAIL.to_string());
    }
    remaining.sort();
    remaining.dedup();
    let verified = remaining.is_empty() && after.snapshot.gaps().is_empty();
    tracing::info!(deployment = %d.id, verified, remaining = ?remaining, "removal checked");
    if verified {
        e.store.finish_removal(&d.id).await?;
    }
    Ok(Removal { outcomes, verified, remaining })
}
