//! One reconcile of a deployment: discover → plan → execute (automatic mode only), then
//! the status and a protection report (plan, outcomes, what protects each VPC). And the
//! uninstall of a deployment being removed, verified before its record goes.

use std::collections::{BTreeMap, BTreeSet};

use garrison_catalog::prices::{HOURS_PER_MONTH, PriceTable};
use garrison_model::deployment::{Deployment, Mode, Reason, Status, StatusKind};
use garrison_model::protection::{Op, Owned, OwnedItem, Plan, ResKind, Role, Spec};
use serde::Serialize;
use serde_json::{Value, json};

use garrison_cloud::discovery;

use crate::discover::{Observation, gap_warning, observe, session, status};
use crate::error::EngineError;
use crate::execute::{ActionOutcome, Executor};
use crate::plan::desired::Want;
use crate::plan::{Inputs, plan_deployment, plan_with_desired};
use crate::{Engine, now};

#[derive(Debug, Clone, Serialize)]
pub struct ApplianceView {
    pub key: String,
    pub role: Role,
    pub zone: String,
    pub instance_type: String,
    pub instance_id: String,
    /// running | stopped (as garrison left it)
    pub state: String,
    pub monthly_usd: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VpcView {
    pub region: String,
    pub vpc_id: String,
    pub appliances: Vec<ApplianceView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub deployment_id: String,
    pub mode: Mode,
    pub at: i64,
    pub generation: i64,
    /// How the run ended (the status's reason code): what the error policy acts on.
    pub reason: Reason,
    pub plan: Plan,
    /// Automatic mode: how each action ended.
    pub outcomes: Vec<ActionOutcome>,
    pub audit_source: Value,
    pub vpcs: Vec<VpcView>,
    /// Per include item of the scope: the protected VPCs and appliances it accounts for.
    pub scope: Vec<ScopeView>,
    pub monthly_appliance_usd: f64,
    /// Set for a targeted reconcile: the events it followed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScopeView {
    pub key: String,
    pub policy: Option<String>,
    pub vpcs: usize,
    pub scanners: usize,
    pub ids: usize,
}

/// Each protected VPC counts under its most specific include item (VPC, then region, then
/// the whole deployment); host items protect hosts inside VPCs already counted.
pub fn scope_summary(d: &Deployment, vpcs: &[VpcView]) -> Vec<ScopeView> {
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
        let rank = |i: &garrison_model::deployment::IncludeItem| match (i.kind, AssetKey::parse(&i.key)) {
            (_, Some(AssetKey::Vpc { region, vpc })) if region == v.region && vpc == v.vpc_id => Some(3),
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

/// Actions in flight at once per deployment: writes wait on AWS, not on this machine.
pub const PARALLEL: usize = 64;

fn executor(e: &Engine, seen: &Observation, d: &Deployment, generation: i64) -> Executor {
    Executor {
        store: e.store.clone(),
        aws: seen.aws.clone(),
        account_id: d.account_id.clone(),
        deployment_id: d.id.clone(),
        generation,
        parallel: PARALLEL,
        retry_pause: e.retry_pause,
    }
}

fn inputs(e: &Engine) -> Inputs<'_> {
    Inputs { prices: &e.prices, images: &e.images }
}

/// What protects the account according to the records (after execution) and the desired
/// running state.
pub fn summarize(owned: &Owned, running: &BTreeMap<String, bool>, prices: &PriceTable) -> (Value, Vec<VpcView>, f64) {
    let mut vpcs: BTreeMap<(String, String), Vec<ApplianceView>> = BTreeMap::new();
    let mut total = 0.0;
    for o in owned.items.values().filter(|o| !o.id.is_empty()) {
        if let Some(Spec::Appliance { role, vpc, zone, instance_type, .. }) = &o.spec {
            let up = running.get(&o.key).copied().unwrap_or(true);
            let hourly = prices.price(&o.region, instance_type).map(|p| p.per_hour).unwrap_or(0.0);
            let monthly = if up { (hourly * HOURS_PER_MONTH * 100.0).round() / 100.0 } else { 0.0 };
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
    let item =
        |k: &str| owned.get(k).map(|o| json!({"id": o.id, "arn": o.arn, "region": o.region, "adopted": o.adopted}));
    let audit = json!({
        "trail": item(crate::plan::desired::keys::TRAIL),
        "bucket": item(crate::plan::desired::keys::BUCKET),
        "topic": item(crate::plan::desired::keys::TOPIC),
        "queue": item(crate::plan::desired::keys::QUEUE),
        "detectors": owned.items.values().filter(|o| o.kind == ResKind::Detector).map(|o| json!({"region": o.region, "id": o.id, "adopted": o.adopted})).collect::<Vec<_>>(),
        "recorders": owned.items.values().filter(|o| o.kind == ResKind::Recorder).map(|o| json!({"region": o.region, "name": o.id, "adopted": o.adopted})).collect::<Vec<_>>(),
        "flow_logs": owned.items.values().filter(|o| o.kind == ResKind::FlowLogs).count(),
    });
    let views = vpcs.into_iter().map(|((region, vpc_id), appliances)| VpcView { region, vpc_id, appliances }).collect();
    (audit, views, (total * 100.0).round() / 100.0)
}

fn regions_of(owned: &Owned) -> Vec<String> {
    let mut r: Vec<String> = owned.items.values().map(|o| o.region.clone()).collect();
    r.sort();
    r.dedup();
    r
}

/// The plan for `d` from a fresh discovery, without writing anything (plan preview).
pub async fn preview(e: &Engine, d: &Deployment) -> Result<(Plan, Observation), Status> {
    // The preview's discovery stores a snapshot: it takes its turn with this process's runs
    // of the deployment rather than write under one of them.
    let _turn = e.lock(&d.id).await;
    let owned = e
        .store
        .owned(&d.id)
        .await
        .map_err(|err| status(StatusKind::Error, Reason::StoreUnavailable, err.to_string()))?;
    let seen = observe(e, d, &regions_of(&owned)).await?;
    let (plan, _) = plan_deployment(Some(d), &d.id, &seen.snapshot, &owned, &inputs(e));
    Ok((plan, seen))
}

/// Discover, plan and (automatic mode) execute; records the report and the status.
pub async fn reconcile(e: &Engine, d: &Deployment) -> Result<Report, EngineError> {
    timed("full", d, Box::pin(reconcile_once(e, d))).await
}

/// Records how long a run of `kind` took and how it ended (`garrison_reconcile_duration_seconds`).
/// Callers box the run: a reconcile future is large, and nested unboxed it overflowed the
/// stack of a thread that polls it (debug builds).
/// Every log line of a run carries the deployment, its tenant and its AWS account (as
/// span fields; `GARRISON_LOG_FORMAT=json` puts them in each JSON line).
async fn timed<T>(
    kind: &'static str,
    d: &Deployment,
    run: impl std::future::Future<Output = Result<T, EngineError>>,
) -> Result<T, EngineError> {
    use tracing::Instrument;
    let span =
        tracing::info_span!("run", kind, deployment = %d.id, tenant = %d.account_id, aws_account = %d.platform.id);
    let t = std::time::Instant::now();
    async move {
        let r = run.await;
        // Failed runs are labelled with their reason code: what to alert on, and why.
        let outcome = match &r {
            Ok(_) => "ok",
            Err(err) => err.reason.as_str(),
        };
        let secs = t.elapsed().as_secs_f64();
        metrics::histogram!("garrison_reconcile_duration_seconds", "kind" => kind, "outcome" => outcome).record(secs);
        match &r {
            Ok(_) => tracing::info!(outcome, secs, "run finished"),
            Err(err) => tracing::warn!(outcome, secs, error = %err, "run finished"),
        }
        r
    }
    .instrument(span)
    .await
}

async fn reconcile_once(e: &Engine, d: &Deployment) -> Result<Report, EngineError> {
    let _turn = e.lock(&d.id).await;
    // Whoever asked may hold an old copy; a deployment removed meanwhile must not be rebuilt.
    let Some(d) = &e.store.get_deployment(&d.account_id, &d.id).await? else {
        return Err(EngineError::new(Reason::Idle, format!("deployment {} no longer exists", d.id)));
    };
    let generation = e.store.claim_generation(&d.account_id, &d.id).await?;
    let mut owned = e.store.owned(&d.id).await?;
    let seen = match observe(e, d, &regions_of(&owned)).await {
        Ok(s) => s,
        Err(st) => {
            crate::record_status(e, d, st.clone()).await?;
            return Err(st.into());
        }
    };
    if d.mode == Mode::Automatic {
        let missing = missing_audit_items(d, &seen.aws, &owned).await;
        forget_missing(e, d, generation, &mut owned, &missing).await?;
    }
    apply(e, d, generation, seen, owned, None, None).await
}

/// One asset delta as reported: in which region what kind of thing changed, by which call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delta {
    pub region: String,
    /// A discovery kind (`instances`, `security_groups`, …) or `audit_path`.
    pub target: &'static str,
    pub event: String,
}

impl From<garrison_trail::Change> for Delta {
    fn from(c: garrison_trail::Change) -> Delta {
        let target = match c.target {
            garrison_trail::Target::Asset(k) => k.as_str(),
            garrison_trail::Target::AuditPath => "audit_path",
        };
        Delta { region: c.region, target, event: c.event }
    }
}

/// garrison's own entry in the audit log (a finding or a decision, not an AWS write).
fn note(
    d: &Deployment,
    generation: i64,
    region: String,
    call: &str,
    resource: String,
    outcome: &str,
    message: String,
) -> garrison_store::AuditEntry {
    garrison_store::AuditEntry {
        at_ms: crate::now_ms(),
        deployment_id: d.id.clone(),
        generation,
        region,
        call: call.into(),
        resource,
        key: None,
        outcome: outcome.into(),
        message: Some(message),
    }
}

/// What set off a targeted reconcile, kept in its report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Trigger {
    /// Log objects read (`s3://bucket/key`) and queue messages handled.
    pub files: Vec<String>,
    pub messages: usize,
    /// The asset deltas: region, what changed, by which call.
    pub changes: Vec<Delta>,
    /// The audit path was checked (a periodic check or an event touching it).
    pub audit_path: bool,
}

/// A targeted reconcile after events: only `regions` are read again (the rest of the
/// snapshot is kept) and only actions there are executed; with `audit_path` the queue,
/// topic, subscription, notification and bucket are checked too. None when there was
/// nothing to do (an audit path check that found everything in place). Falls back to a
/// full reconcile when there is no snapshot yet.
pub async fn react(
    e: &Engine,
    d: &Deployment,
    regions: &BTreeSet<String>,
    trigger: Trigger,
) -> Result<Option<Report>, EngineError> {
    let run = timed("targeted", d, Box::pin(react_once(e, d, regions, trigger)));
    // Several workers: the deployment's lease keeps this apart from any other worker's run.
    if e.store.backend() == garrison_store::Backend::Postgres {
        return Box::pin(crate::worker::exclusively(e, &d.id, run)).await;
    }
    run.await
}

async fn react_once(
    e: &Engine,
    d: &Deployment,
    regions: &BTreeSet<String>,
    trigger: Trigger,
) -> Result<Option<Report>, EngineError> {
    let Some(previous) = e.store.get_snapshot(&d.account_id, &d.id).await? else {
        return reconcile(e, d).await.map(Some);
    };
    let _turn = e.lock(&d.id).await;
    let Some(d) = &e.store.get_deployment(&d.account_id, &d.id).await? else {
        return Ok(None);
    };
    if !(d.enabled && d.discover && d.mode == Mode::Automatic) {
        return Ok(None);
    }
    let mut owned = e.store.owned(&d.id).await?;
    let (aws, _) = match session(e, d).await {
        Ok(s) => s,
        Err(st) => {
            crate::record_status(e, d, st.clone()).await?;
            return Err(st.into());
        }
    };
    // Only regions garrison looks at: in scope (they are in the snapshot) or holding something of ours.
    let mut regions: BTreeSet<String> = regions
        .iter()
        .filter(|r| previous.regions.contains_key(*r) || owned.items.values().any(|o| &o.region == *r))
        .cloned()
        .collect();
    let missing = if trigger.audit_path { missing_audit_items(d, &aws, &owned).await } else { vec![] };
    if regions.is_empty() && missing.is_empty() {
        return Ok(None);
    }
    let generation = e.store.claim_generation(&d.account_id, &d.id).await?;
    forget_missing(e, d, generation, &mut owned, &missing).await?;
    regions.extend(missing.iter().map(|o| o.region.clone()));
    let list: Vec<String> = regions.iter().cloned().collect();
    let t = std::time::Instant::now();
    let fresh = discovery::discover(&aws, &list, now()).await.merged_over(Some(&previous));
    tracing::debug!(deployment = %d.id, regions = ?list, ms = t.elapsed().as_millis() as u64, "targeted discovery");
    let mut snapshot = previous;
    snapshot.taken_at = fresh.taken_at;
    snapshot.regions.extend(fresh.regions);
    if let Err(err) = e.store.put_snapshot(&d.account_id, &d.id, &snapshot).await {
        tracing::warn!(deployment = %d.id, error = %err, "cannot store the snapshot");
    }
    let warnings: Vec<String> = gap_warning(&snapshot).into_iter().collect();
    let reason = if warnings.is_empty() { Reason::Converged } else { Reason::DiscoveryIncomplete };
    let seen = Observation { aws, snapshot, warnings, reason };
    apply(e, d, generation, seen, owned, Some(&regions), Some(trigger)).await.map(Some)
}

/// The audit resources discovery cannot list (bucket, topic, queue, subscription, bucket
/// notification) that no longer exist. One that cannot be checked now is trusted.
async fn missing_audit_items(d: &Deployment, aws: &garrison_cloud::Aws, owned: &Owned) -> Vec<OwnedItem> {
    use garrison_cloud::writes::{Ctx, Journal, exists};
    let journal = Journal::default();
    let resolved = BTreeMap::new();
    let checks: Vec<&OwnedItem> = owned
        .items
        .values()
        .filter(|o| !o.adopted && !o.id.is_empty())
        .filter(|o| {
            matches!(
                o.kind,
                ResKind::Bucket | ResKind::Topic | ResKind::Queue | ResKind::Subscription | ResKind::BucketNotification
            )
        })
        .collect();
    let probes = checks.into_iter().map(|o| {
        let c = Ctx {
            aws: aws.in_region(&o.region),
            region: o.region.clone(),
            account: aws.account.clone(),
            tags: vec![],
            journal: &journal,
            key: Some(o.key.clone()),
            resolved: &resolved,
        };
        async move { (o, exists(&c, o.kind, &o.id).await) }
    });
    let mut out = vec![];
    for (o, r) in futures_util::future::join_all(probes).await {
        match r {
            Ok(true) => {}
            Ok(false) => out.push(o.clone()),
            Err(err) => tracing::warn!(deployment = %d.id, key = %o.key, error = %err, "audit path: cannot check"),
        }
    }
    out
}

/// Drops the records of missing audit resources (so that the plan builds them again) and
/// writes the finding to the audit log.
async fn forget_missing(
    e: &Engine,
    d: &Deployment,
    generation: i64,
    owned: &mut Owned,
    missing: &[OwnedItem],
) -> Result<(), EngineError> {
    let mut entries = vec![];
    for o in missing {
        tracing::warn!(deployment = %d.id, key = %o.key, id = %o.id, "audit path: missing, to be restored");
        e.store.remove_owned(&d.id, &o.key).await?;
        owned.items.remove(&o.key);
        entries.push(garrison_store::AuditEntry {
            key: Some(o.key.clone()),
            ..note(
                d,
                generation,
                o.region.clone(),
                "garrison:TamperDetected",
                o.id.clone(),
                "missing",
                format!("{} ({}) no longer exists", o.key, o.kind.as_str()),
            )
        });
    }
    e.store.append_audit(&d.account_id, &entries).await?;
    Ok(())
}

/// Plans over `seen`, executes (automatic mode; only in `only` regions when given), and
/// records the report and the status.
async fn apply(
    e: &Engine,
    d: &Deployment,
    generation: i64,
    seen: Observation,
    owned: Owned,
    only: Option<&BTreeSet<String>>,
    trigger: Option<Trigger>,
) -> Result<Report, EngineError> {
    let inputs = inputs(e);
    let (mut plan, mut owned, want) = plan_with_desired(Some(d), &d.id, &seen.snapshot, &owned, &inputs);
    if let Some(only) = only {
        // The other regions' facts may predate the last run's changes; they wait for a full reconcile.
        plan.actions.retain(|a| only.contains(&a.region));
    }
    // Records recovered from tags are kept whatever the mode.
    for o in owned.items.values().filter(|o| only.is_none_or(|r| r.contains(&o.region))) {
        e.store.put_owned(&d.account_id, &d.id, o).await?;
    }
    let running: BTreeMap<String, bool> = want
        .items
        .iter()
        .filter_map(|(k, w)| match w {
            Want::Build { running, spec: Spec::Appliance { .. }, .. } => Some((k.clone(), *running)),
            _ => None,
        })
        .collect();
    let outcomes = if d.mode == Mode::Automatic && !plan.is_empty() {
        if let Some(t) = &trigger {
            let events: Vec<&str> = t.changes.iter().map(|c| c.event.as_str()).collect();
            let after = if events.is_empty() { "an audit path check".into() } else { events.join(", ") };
            let regions = only.map(|r| r.iter().cloned().collect::<Vec<_>>().join(",")).unwrap_or_default();
            let n = format!("{} action(s)", plan.actions.len());
            let entry = note(d, generation, regions, "garrison:Reconcile", n, "triggered", format!("after {after}"));
            e.store.append_audit(&d.account_id, &[entry]).await?;
        }
        let ex = executor(e, &seen, d, generation);
        ex.run(&plan.actions, &mut owned).await
    } else {
        vec![]
    };
    let (audit_source, vpcs, monthly) = summarize(&owned, &running, &e.prices);
    let mut report = Report {
        deployment_id: d.id.clone(),
        mode: d.mode,
        at: now(),
        generation,
        reason: Reason::Converged,
        plan: plan.clone(),
        outcomes: outcomes.clone(),
        audit_source,
        scope: scope_summary(d, &vpcs),
        vpcs,
        monthly_appliance_usd: monthly,
        trigger,
    };
    let st = protection_status(d, &seen, &plan, &outcomes, &report);
    report.reason = st.reason.unwrap_or(Reason::Converged);
    e.store.put_report(&d.account_id, &d.id, &serde_json::to_value(&report)?).await?;
    crate::record_status(e, d, st).await?;
    Ok(report)
}

fn protection_status(
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
    let inputs = inputs(e);
    let observe_owned = |d: &Deployment| {
        // Only the regions where something is owned matter now.
        let mut d = d.clone();
        d.scope.include.clear();
        d
    };
    let scoped = observe_owned(d);
    let seen = match observe(e, &scoped, &regions).await {
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
    let outcomes = ex.run(&plan.actions, &mut owned).await;
    // Verify: a fresh look must show nothing of ours, and the records must be empty.
    let after = observe(e, &scoped, &regions).await.map_err(EngineError::from)?;
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
