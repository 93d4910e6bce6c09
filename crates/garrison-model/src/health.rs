//! Appliance health (issue 21, first part: the pure rules). An appliance is judged from
//! what garrison knows of it — when it was launched, when it registered, its last heartbeat
//! and what its counters say — into a state; a silent one is replaced launch-first, at most
//! twice in a row, then left running with the cause reported (never churned). Whatever
//! weakens protection is a health item, opened, updated and concluded as its cause comes and
//! goes (Alert Logic's unhealthy / healthy / concluded).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::deployment::Reason;
use crate::report::{ActionResult, Freshness, Report};
use crate::snapshot::Gap;

pub mod wire;

/// When an appliance counts as silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// Not registered this long after launch.
    pub register_within_ms: i64,
    /// The heartbeat interval appliances are told to keep.
    pub heartbeat_ms: i64,
    /// Heartbeats missed in a row.
    pub missed: i64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing { register_within_ms: 300_000, heartbeat_ms: 60_000, missed: 3 }
    }
}

/// What an appliance's last heartbeat said it is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Work {
    /// The IDS sensor's counters since the appliance started.
    Ids { packets: u64, alerts: u64 },
    /// When the scanner last finished a scan, if ever.
    Scan { last_scan_ms: Option<i64> },
}

impl Work {
    /// The role of the appliance that does this work (`Role::as_str`).
    pub fn role(&self) -> &'static str {
        match self {
            Work::Ids { .. } => "ids",
            Work::Scan { .. } => "scan",
        }
    }
}

/// What garrison knows of one appliance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub launched_ms: i64,
    pub registered_ms: Option<i64>,
    pub last_heartbeat_ms: Option<i64>,
    /// The work reported by the previous heartbeat and the last one (to see it move).
    pub previous_work: Option<Work>,
    pub work: Option<Work>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Launched, not registered yet, still within its time to register.
    Launching,
    /// Registered, no heartbeat yet.
    Registered,
    Healthy,
    /// Heartbeats come, but its counters say it sees nothing.
    Degraded,
    /// Not registered in time, or its heartbeats stopped.
    Silent,
}

/// The state of an appliance at `now`.
pub fn judge(s: &Seen, t: &Timing, now: i64) -> State {
    let Some(registered) = s.registered_ms else {
        return if now - s.launched_ms > t.register_within_ms { State::Silent } else { State::Launching };
    };
    let last = s.last_heartbeat_ms.unwrap_or(registered);
    if now - last > t.heartbeat_ms * t.missed {
        return State::Silent;
    }
    if s.last_heartbeat_ms.is_none() {
        return State::Registered;
    }
    match (&s.previous_work, &s.work) {
        // An IDS sensor whose packet count has not moved between two heartbeats sees nothing.
        (Some(Work::Ids { packets: before, .. }), Some(Work::Ids { packets, .. })) if packets <= before => {
            State::Degraded
        }
        _ => State::Healthy,
    }
}

/// One replacement tried for an appliance: when, and whether the new one registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at_ms: i64,
    pub registered: bool,
}

/// Replacements tried in a row without one registering, after which garrison stops.
pub const MAX_TRIES: usize = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to do: the appliance serves, or it is still starting.
    Keep,
    /// Launch a replacement (then terminate the old one once the new one registers).
    Replace,
    /// A replacement is on its way: wait for it to register or to be judged silent itself.
    Wait,
    /// Replacements never registered: keep what runs, and say why.
    GiveUp(String),
}

/// What to do with an appliance in `state`, given the replacements tried for it in a row
/// (`attempts`, oldest first; a registered one ends the row) and whether one is in flight.
pub fn decide(state: State, attempts: &[Attempt], in_flight: bool) -> Decision {
    if state != State::Silent {
        return Decision::Keep;
    }
    if in_flight {
        return Decision::Wait;
    }
    let failed = attempts.iter().rev().take_while(|a| !a.registered).count();
    if failed >= MAX_TRIES {
        Decision::GiveUp(format!(
            "{failed} replacement(s) in a row never registered: the appliances cannot reach garrison (routing, security groups, the image); what runs is kept"
        ))
    } else {
        Decision::Replace
    }
}

/// What weakens protection, each with the remedy in words.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum Cause {
    ApplianceSilent { appliance: String },
    ApplianceDegraded { appliance: String },
    ReplacementGivenUp { appliance: String, why: String },
    TrailWithoutLiveFeed { trail: String },
    RoleMissingPermissions { capability: String },
    WritesFailing { what: String },
    RegionDenied { region: String },
}

impl Cause {
    /// The item's identity: one item per cause and subject, however often it is seen.
    pub fn key(&self) -> String {
        match self {
            Cause::ApplianceSilent { appliance } => format!("appliance_silent/{appliance}"),
            Cause::ApplianceDegraded { appliance } => format!("appliance_degraded/{appliance}"),
            Cause::ReplacementGivenUp { appliance, .. } => format!("replacement_given_up/{appliance}"),
            Cause::TrailWithoutLiveFeed { trail } => format!("trail_without_live_feed/{trail}"),
            Cause::RoleMissingPermissions { capability } => format!("role_missing_permissions/{capability}"),
            Cause::WritesFailing { what } => format!("writes_failing/{what}"),
            Cause::RegionDenied { region } => format!("region_denied/{region}"),
        }
    }

    pub fn remedy(&self) -> String {
        match self {
            Cause::ApplianceSilent { appliance } => format!(
                "appliance {appliance} sends no heartbeat: garrison is replacing it; if replacements stay silent, check that the security subnet routes to garrison's endpoint"
            ),
            Cause::ApplianceDegraded { appliance } => format!(
                "appliance {appliance} sees no traffic: check the traffic mirror sessions or agents that feed it"
            ),
            Cause::ReplacementGivenUp { appliance, why } => {
                format!("appliance {appliance}: {why}; fix the cause, then garrison tries again at its next change")
            }
            Cause::TrailWithoutLiveFeed { trail } => format!(
                "trail {trail} logs but no event reaches garrison: check the event feed's rules and the queue's policy"
            ),
            Cause::RoleMissingPermissions { capability } => {
                format!("the role lacks what {capability} needs: update the role's stack to the newest template")
            }
            Cause::WritesFailing { what } => format!("AWS refuses garrison's writes ({what}): see the audit log"),
            Cause::RegionDenied { region } => format!(
                "{region} denies garrison's calls (a service control policy?): allow the role there or take the region out of scope"
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Unhealthy,
    /// Its cause is gone: kept for the record.
    Concluded,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub key: String,
    pub cause: Cause,
    pub status: ItemStatus,
    pub remedy: String,
    pub opened_ms: i64,
    pub updated_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concluded_ms: Option<i64>,
}

/// What changed in the items (to store, count and notify).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Opened(String),
    Updated(String),
    Concluded(String),
}

/// Brings `items` (by key) to the causes seen now: a new cause opens an item, one still
/// there updates its item (the remedy can change with the cause's details), one gone
/// concludes it; a concluded item whose cause comes back is opened again.
pub fn reconcile(items: &mut BTreeMap<String, Item>, now_causes: &[Cause], now: i64) -> Vec<Change> {
    let mut changes = vec![];
    let mut seen = std::collections::BTreeSet::new();
    for c in now_causes {
        let key = c.key();
        if !seen.insert(key.clone()) {
            continue;
        }
        match items.get_mut(&key) {
            Some(it) if it.status == ItemStatus::Unhealthy => {
                if it.cause != *c {
                    it.cause = c.clone();
                    it.remedy = c.remedy();
                    it.updated_ms = now;
                    changes.push(Change::Updated(key));
                }
            }
            _ => {
                items.insert(
                    key.clone(),
                    Item {
                        key: key.clone(),
                        cause: c.clone(),
                        status: ItemStatus::Unhealthy,
                        remedy: c.remedy(),
                        opened_ms: now,
                        updated_ms: now,
                        concluded_ms: None,
                    },
                );
                changes.push(Change::Opened(key));
            }
        }
    }
    for (key, it) in items.iter_mut() {
        if it.status == ItemStatus::Unhealthy && !seen.contains(key) {
            it.status = ItemStatus::Concluded;
            it.concluded_ms = Some(now);
            it.updated_ms = now;
            changes.push(Change::Concluded(key.clone()));
        }
    }
    changes
}

/// One appliance as `list_health` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplianceHealth {
    pub key: String,
    pub instance_id: String,
    pub role: String,
    pub state: State,
    pub launched_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<Work>,
}

/// The causes a deployment's last run shows, besides its appliances': writes AWS refused,
/// a trail whose changes reach garrison only at the resync, a role short of permissions (the
/// deployment status's `reason`), a region whose reads are denied (`gaps` of the last
/// discovery).
pub fn run_causes(report: &Report, reason: Option<Reason>, gaps: &[Gap]) -> Vec<Cause> {
    let mut causes = vec![];
    for o in report.outcomes.iter().filter(|o| o.result == ActionResult::Failed) {
        causes.push(Cause::WritesFailing { what: o.key.clone() });
    }
    if let Some(trail) = &report.audit_source.trail
        && Freshness::of(&report.audit_source, None, None, 0).live == "resync_only"
    {
        causes.push(Cause::TrailWithoutLiveFeed { trail: trail.id.clone() });
    }
    // The status's reason: a run that stops at the role check writes no report.
    if reason == Some(Reason::RolePermissions) {
        causes.push(Cause::RoleMissingPermissions { capability: format!("{} mode", report.mode.as_str()) });
    }
    for g in gaps {
        let denied = ["AccessDenied", "UnauthorizedOperation", "AuthFailure"].iter().any(|c| g.code.contains(c));
        if denied && !causes.iter().any(|c| matches!(c, Cause::RegionDenied { region } if *region == g.region)) {
            causes.push(Cause::RegionDenied { region: g.region.clone() });
        }
    }
    causes
}

#[cfg(test)]
mod tests;
