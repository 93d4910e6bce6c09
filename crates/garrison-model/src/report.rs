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
    /// What each applied tuning option adds to (or, negative, saves on) the monthly cost of
    /// the appliances: the protection designed from scratch with and without it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub option_costs: Vec<OptionCost>,
    /// Set for a targeted reconcile: the events it followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// How fresh garrison's view of the account is: filled when the report is served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness: Option<Freshness>,
}

/// Which input brings changes to garrison, and when it last did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Freshness {
    /// `events` (the event feed: seconds), `trail_files` (log-file notifications: about 5
    /// to 15 minutes) or `resync_only` (the periodic full reconcile).
    pub live: String,
    /// When the newest EventBridge event arrived, and its age in seconds.
    pub last_event_ms: Option<i64>,
    pub last_event_age_s: Option<i64>,
    /// When the newest log-file notification arrived, and its age in seconds.
    pub last_file_ms: Option<i64>,
    pub last_file_age_s: Option<i64>,
}

impl Freshness {
    /// From what the audit source holds and what the collector last received.
    pub fn of(source: &AuditSource, events_ms: Option<i64>, files_ms: Option<i64>, now_ms: i64) -> Freshness {
        let live = if source.feed.as_ref().is_some_and(|f| !f.regions.is_empty()) {
            "events"
        } else if source.queue.is_some() && source.topic.is_some() {
            "trail_files"
        } else {
            "resync_only"
        };
        let age = |ms: Option<i64>| ms.map(|t| ((now_ms - t).max(0)) / 1000);
        Freshness {
            live: live.into(),
            last_event_ms: events_ms,
            last_event_age_s: age(events_ms),
            last_file_ms: files_ms,
            last_file_age_s: age(files_ms),
        }
    }
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
    /// The event feed: garrison's bus and the regions whose default bus forwards to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed: Option<FeedItem>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FeedItem {
    pub bus: Option<AuditItem>,
    pub regions: Vec<String>,
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
    /// The monthly cost of the running appliances and the mirror sessions (reports of
    /// earlier releases: 0).
    #[serde(default)]
    pub monthly_usd: f64,
    /// The network interfaces mirrored to the IDS appliances (otis `span_port_enabled`).
    #[serde(default)]
    pub mirror_sessions: usize,
}

/// What a tuning option does to the monthly appliance cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OptionCost {
    pub option_id: String,
    pub name: String,
    /// With the option minus without it, USD a month.
    pub monthly_usd: f64,
}

/// The monthly appliance cost now and once a plan is applied, in all and per VPC.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CostChange {
    pub now_usd_month: f64,
    pub planned_usd_month: f64,
    pub delta_usd_month: f64,
    pub vpcs: Vec<VpcCost>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VpcCost {
    pub region: String,
    pub vpc_id: String,
    pub now_usd_month: f64,
    pub planned_usd_month: f64,
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
    /// EventBridge events applied (the event feed), by event id.
    #[serde(default)]
    pub events: Vec<String>,
    /// Records left out because another path had delivered them already (by `eventID`).
    #[serde(default)]
    pub repeated: usize,
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
    fn freshness_names_the_live_input_and_its_age() {
        let item = AuditItem { id: "x".into(), arn: None, region: "us-east-1".into(), adopted: false };
        let mut src = AuditSource::default();
        assert_eq!(Freshness::of(&src, None, None, 10_000).live, "resync_only");
        src.queue = Some(item.clone());
        assert_eq!(Freshness::of(&src, None, None, 10_000).live, "resync_only", "a queue without a topic");
        src.topic = Some(item.clone());
        assert_eq!(Freshness::of(&src, None, Some(4_000), 10_000).live, "trail_files");
        src.feed = Some(FeedItem { bus: Some(item), regions: vec!["eu-west-1".into()] });
        let f = Freshness::of(&src, Some(7_500), Some(4_000), 10_000);
        assert_eq!((f.live.as_str(), f.last_event_age_s, f.last_file_age_s), ("events", Some(2), Some(6)));
    }

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
