//! The pure centre of protection: what each VPC needs (`needs`), what the deployment
//! should have (`desired`), and the difference as ordered actions (`planner`).

pub mod cost;
pub mod desired;
pub mod needs;
pub mod planner;
pub mod scans;
#[cfg(test)]
mod tests;
pub mod tuning;

use garrison_model::deployment::Deployment;
use garrison_model::protection::{Owned, Plan};
use garrison_model::snapshot::Snapshot;

pub use desired::{Desired, Inputs, Replacing, desired};
pub use planner::{plan, recover};

/// Records completed from the snapshot's tags, then the plan for `d` (None: the
/// deployment is being removed, so nothing is desired).
pub fn plan_deployment(
    d: Option<&Deployment>,
    deployment_id: &str,
    snap: &Snapshot,
    owned: &Owned,
    inputs: &Inputs<'_>,
) -> (Plan, Owned) {
    let (plan, owned, _) = plan_with_desired(d, deployment_id, snap, owned, inputs);
    (plan, owned)
}

/// `plan_deployment`, also returning the desired state it planned towards.
pub fn plan_with_desired(
    d: Option<&Deployment>,
    deployment_id: &str,
    snap: &Snapshot,
    owned: &Owned,
    inputs: &Inputs<'_>,
) -> (Plan, Owned, Desired) {
    let mut owned = owned.clone();
    recover(&mut owned, snap, deployment_id);
    let want = match d {
        Some(d) => desired(d, snap, &owned, inputs),
        None => Desired::default(),
    };
    (plan(&want, snap, &owned), owned, want)
}
