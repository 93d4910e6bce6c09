//! The protection report's parts: what protects each VPC (from the records), how the scope's
//! include items account for it, and the status in words with its reason code.

use std::collections::BTreeMap;

use garrison_catalog::prices::PriceTable;
use garrison_model::deployment::{Deployment, Mode, Reason, Status, StatusKind};
use garrison_model::protection::{Owned, Plan, ResKind, Role, Spec};
use garrison_model::report::{
    ActionOutcome, ApplianceView, AuditItem, AuditSource, DetectorItem, FeedItem, RecorderItem, Report, ScopeView,
    VpcView,
};

use crate::discover::{Observation, status};
use crate::plan::desired::keys;

/// Each protected VPC counts under its most specific include item (VPC, then VPC tag, then
/// region, then the whole deployment); host items protect hosts inside VPCs already
/// counted. `snap` gives the VPCs' tags.
pub fn scope_summary(d: &Deployment, vpcs: &[VpcView], snap: &garrison_model::snapshot::Snapshot) -> Vec<ScopeView> {
    use garrison_model::scope::{AssetKey, ScopeType};
    let mut out: Vec<ScopeView> = d
        .scope
        .include
        .iter()
        .map(|i| ScopeView {
            key: i.key.clone(),
            policy: i.policy.as_ref().map(|p| p.id.clone()),
            vpcs: 0,
            scanners: 0,
            ids: 0,
        })
        .collect();
    for v in vpcs {
        let tags = snap.regions.get(&v.region).and_then(|r| r.vpcs.iter().find(|x| x.id == v.vpc_id)).map(|x| &x.tags);
        let rank = |i: &garrison_model::deployment::IncludeItem| match (i.kind, AssetKey::parse(&i.key)) {
            (_, Some(AssetKey::Vpc { region, vpc })) if region == v.region && vpc == v.vpc_id => Some(4),
            (_, Some(k @ AssetKey::Tag { .. })) if k.region() == v.region && tags.is_some_and(|t| k.tag_matches(t)) => {
                Some(3)
            }
            (_, Some(AssetKey::Region { region })) if region == v.region => Some(2),
            (ScopeType::Deployment, _) => Some(1),
            _ => None,
        };
        let best = d.scope.include.iter().enumerate().filter_map(|(n, i)| rank(i).map(|r| (r, n))).max();
        if let Some((_, n)) = best {
            out[n].vpcs += 1;
            out[n].scanners += v.appliances.iter().filter(|a| a.role == Role::Scan).count();
            out[n].ids += v.appliances.iter().filter(|a| a.role == Role::Ids).count();
        }
    }
    out
}

/// What protects the account, for the report.
pub struct Summary {
    pub audit_source: AuditSource,
    pub vpcs: Vec<VpcView>,
    pub monthly_appliance_usd: f64,
}

/// What protects the account according to the records (after execution) and the desired
/// running state.
pub fn summarize(owned: &Owned, running: &BTreeMap<String, bool>, prices: &PriceTable) -> Summary {
    let mut vpcs: BTreeMap<(String, String), Vec<ApplianceView>> = BTreeMap::new();
    let mut total = 0.0;
    for o in owned.items.values().filter(|o| !o.id.is_empty()) {
        if let Some(Spec::Appliance { role, vpc, zone, instance_type, .. }) = &o.spec {
            let up = running.get(&o.key).copied().unwrap_or(true);
            let monthly = if up { crate::plan::cost::monthly(prices, &o.region, instance_type) } else { 0.0 };
            total += monthly;
            vpcs.entry((o.region.clone(), vpc.clone())).or_default().push(ApplianceView {
                key: o.key.clone(),
                role: *role,
                zone: zone.clone(),
                instance_type: instance_type.clone(),
                instance_id: o.id.clone(),
                state: if up { "running" } else { "stopped" }.into(),
                monthly_usd: monthly,
            });
        }
    }
    let item = |k: &str| {
        owned.get(k).map(|o| AuditItem {
            id: o.id.clone(),
            arn: o.arn.clone(),
            region: o.region.clone(),
            adopted: o.adopted,
        })
    };
    let of = |kind: ResKind| owned.items.values().filter(move |o| o.kind == kind);
    let audit_source = AuditSource {
        trail: item(keys::TRAIL),
        bucket: item(keys::BUCKET),
        topic: item(keys::TOPIC),
        queue: item(keys::QUEUE),
        detectors: of(ResKind::Detector)
            .map(|o| DetectorItem { region: o.region.clone(), id: o.id.clone(), adopted: o.adopted })
            .collect(),
        recorders: of(ResKind::Recorder)
            .map(|o| RecorderItem { region: o.region.clone(), name: o.id.clone(), adopted: o.adopted })
            .collect(),
        flow_logs: of(ResKind::FlowLogs).count(),
        feed: item(keys::FEED_BUS).map(|bus| FeedItem {
            bus: Some(bus),
            regions: of(ResKind::EventRule)
                .filter(|o| !o.id.is_empty() && o.key.ends_with(&format!("/{}", keys::FEED)))
                .map(|o| o.region.clone())
                .collect(),
        }),
    };
    // Mirror sessions by VPC.
    let mut sessions: BTreeMap<(String, String), usize> = BTreeMap::new();
    for o in of(ResKind::MirrorSession).filter(|o| !o.id.is_empty()) {
        if let Some(vpc) = keys::vpc_of(&o.key) {
            *sessions.entry((o.region.clone(), vpc.to_string())).or_default() += 1;
            vpcs.entry((o.region.clone(), vpc.to_string())).or_default();
        }
    }
    let session = crate::plan::cost::monthly_session(prices);
    let vpcs = vpcs
        .into_iter()
        .map(|(at, appliances)| {
            let mirror_sessions = sessions.get(&at).copied().unwrap_or(0);
            let monthly_usd = crate::plan::cost::cents(
                appliances.iter().map(|a| a.monthly_usd).sum::<f64>() + mirror_sessions as f64 * session,
            );
            let (region, vpc_id) = at;
            VpcView { region, vpc_id, appliances, monthly_usd, mirror_sessions }
        })
        .collect();
    Summary { audit_source, vpcs, monthly_appliance_usd: crate::plan::cost::cents(total) }
}

pub(super) fn protection_status(
    d: &Deployment,
    seen: &Observation,
    plan: &Plan,
    outcomes: &[ActionOutcome],
    r: &Report,
) -> Status {
    let mut reasons: Vec<String> = seen.warnings.clone();
    reasons.extend(plan.problems.iter().cloned());
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| o.result != "done")
        .map(|o| format!("{} {}: {}", o.op, o.key, o.error.clone().unwrap_or_default()))
        .collect();
    let appliances: usize = r.vpcs.iter().map(|v| v.appliances.len()).sum();
    let summary = match d.mode {
        Mode::Automatic => format!(
            "{}; protected: {} VPC(s), {} appliance(s), {} change(s) applied",
            seen.summary(),
            r.vpcs.len(),
            appliances,
            outcomes.iter().filter(|o| o.result == "done").count()
        ),
        Mode::Manual => format!(
            "{}; manual mode: {} change(s) planned for the customer to apply (plan_deployment; CloudFormation with format=cloudformation)",
            seen.summary(),
            plan.actions.iter().filter(|a| a.op.writes()).count()
        ),
        _ => format!(
            "{}; {} mode: {} change(s) would be made, none written",
            seen.summary(),
            d.mode.as_str(),
            plan.actions.iter().filter(|a| a.op.writes()).count()
        ),
    };
    if !failed.is_empty() {
        let kind = if failed.len() == outcomes.len() { StatusKind::Error } else { StatusKind::Warning };
        reasons.extend(failed.into_iter().take(5));
        return status(kind, Reason::ActionsFailed, format!("{}; {summary}", reasons.join("; ")));
    }
    let summary = if plan.notes.is_empty() { summary } else { format!("{summary}; note: {}", plan.notes.join("; ")) };
    // Discovery's own reason first (incomplete reads, missing permissions), then the plan's.
    let reason = match seen.reason {
        Reason::Converged if !plan.problems.is_empty() => Reason::ScopeProblems,
        r => r,
    };
    if reasons.is_empty() {
        status(StatusKind::Ok, reason, summary)
    } else {
        status(StatusKind::Warning, reason, format!("{}; {summary}", reasons.join("; ")))
    }
}
