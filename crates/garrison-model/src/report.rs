//! The protection report of a deployment's last run: the plan, how each action ended, what
//! protects each VPC and what it costs. Written by the engine, stored and served as is
//! (`GET …/protection`), read typed by the coverage picture and the dashboard.

use serde::{Deserialize, Serialize};

use crate::deployment::{Mode, Reason};
use crate::protection::{Plan, Role};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Report {
    pub deployment_id: String,
    pub mode: Mode,
    pub at: i64,
    pub generation: i64,
    /// How the run ended (the status's reason code): what the error policy acts on.
    /// Reports of releases before it were converged runs.
    #[serde(default = "converged")]
    pub reason: Reason,
    #[schema(value_type = Object)]
    pub plan: Plan,
    /// Automatic mode: how each action ended.
    pub outcomes: Vec<ActionOutcome>,
    pub audit_source: AuditSource,
    pub vpcs: Vec<VpcView>,
    /// Per include item of the scope: the protected VPCs and appliances it accounts for.
    pub scope: Vec<ScopeView>,
    pub monthly_appliance_usd: f64,
    /// Set for a targeted reconcile: the events it followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
}

fn converged() -> Reason {
    Reason::Converged
}

impl Report {
    /// Nothing left to do and nothing failed: the deployment is as planned.
    pub fn settled(&self) -> bool {
        self.plan.actions.is_empty() && self.outcomes.is_empty()
    }
}

/// How one action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionResult {
    Done,
    Failed,
    /// Not tried: an action it depends on did not complete.
    Skipped,
    /// Not tried: a newer run or a removal took over the deployment.
    Fenced,
}

impl ActionResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionResult::Done => "done",
            ActionResult::Failed => "failed",
            ActionResult::Skipped => "skipped",
            ActionResult::Fenced => "fenced",
        }
    }
}

/// `outcome.result == "done"` reads as it does on the wire.
impl PartialEq<&str> for ActionResult {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActionOutcome {
    /// The action's plan key.
    pub key: String,
    /// create | adopt | forget | delete | start | stop | set_rules
    pub op: String,
    pub result: ActionResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One audit resource as recorded (made by garrison or adopted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditItem {
    pub id: String,
    pub arn: Option<String>,
    pub region: String,
    pub adopted: bool,
}

/// A GuardDuty detector, by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DetectorItem {
    pub region: String,
    pub id: String,
    pub adopted: bool,
}

/// A Config recorder, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecorderItem {
    pub region: String,
    pub name: String,
    pub adopted: bool,
}

/// The audit source: the trail and its delivery path, and the per-region detectors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditSource {
    pub trail: Option<AuditItem>,
    pub bucket: Option<AuditItem>,
    pub topic: Option<AuditItem>,
    pub queue: Option<AuditItem>,
    #[serde(default)]
    pub detectors: Vec<DetectorItem>,
    #[serde(default)]
    pub recorders: Vec<RecorderItem>,
    #[serde(default)]
    pub flow_logs: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApplianceView {
    pub key: String,
    #[schema(value_type = String)]
    pub role: Role,
    pub zone: String,
    pub instance_type: String,
    pub instance_id: String,
    /// running | stopped (as garrison left it)
    pub state: String,
    pub monthly_usd: f64,
}

impl ApplianceView {
    pub fn running(&self) -> bool {
        self.state == "running"
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VpcView {
    pub region: String,
    pub vpc_id: String,
    pub appliances: Vec<ApplianceView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScopeView {
    pub key: String,
    pub policy: Option<String>,
    pub vpcs: usize,
    pub scanners: usize,
    pub ids: usize,
}

/// One asset delta as reported: in which region what kind of thing changed, by which call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delta {
    pub region: String,
    /// A discovery kind (`instances`, `security_groups`, …) or `audit_path`.
    pub target: String,
    pub event: String,
}

/// What set off a targeted reconcile, kept in its report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Trigger {
    /// Log objects read (`s3://bucket/key`) and queue messages handled.
    pub files: Vec<String>,
    pub messages: usize,
    /// The asset deltas: region, what changed, by which call.
    pub changes: Vec<Delta>,
    /// The audit path was checked (a periodic check or an event touching it).
    pub audit_path: bool,
}

/// A stored report read back: one written by an earlier release that no longer reads as a
/// `Report` is dropped (the next run writes a new one) rather than failing the API.
pub fn read_stored(body: &str) -> Option<Report> {
    serde_json::from_str(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_of_the_previous_release_reads_typed() {
        // The shape stored before reports were typed: no reason, recorders by name.
        let old = serde_json::json!({
            "deployment_id": "D", "mode": "automatic", "at": 1, "generation": 2,
            "plan": {"actions": [], "problems": [], "notes": []},
            "outcomes": [{"key": "k", "op": "create", "result": "done"}],
            "audit_source": {"trail": {"id": "t", "arn": null, "region": "us-east-1", "adopted": true},
                             "bucket": null, "topic": null, "queue": null,
                             "detectors": [], "recorders": [{"region": "us-east-1", "name": "garrison", "adopted": false}],
                             "flow_logs": 3},
            "vpcs": [], "scope": [], "monthly_appliance_usd": 0.0});
        let r = read_stored(&old.to_string()).expect("reads");
        assert_eq!(r.reason, Reason::Converged);
        assert_eq!(r.outcomes[0].result, ActionResult::Done);
        assert!(r.outcomes[0].result == "done");
        assert_eq!(r.audit_source.recorders[0].name, "garrison");
        assert_eq!(
            serde_json::to_value(&r).unwrap()["audit_source"],
            old["audit_source"],
            "the same shape on the wire"
        );
        assert_eq!(r.audit_source.flow_logs, 3);
        assert!(read_stored("{\"deployment_id\": 1}").is_none());
    }
}
