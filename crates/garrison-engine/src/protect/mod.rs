//! One reconcile of a deployment: discover → plan → execute (automatic mode only), then
//! the status and the protection report. By concern: `report` (what protects each VPC, the
//! status in words and reason code), `tamper` (audit resources removed behind garrison's
//! back), `removal` (the verified uninstall).

mod removal;
mod report;
mod tamper;

use std::collections::{BTreeMap, BTreeSet};

use garrison_model::deployment::{Deployment, Mode, Reason, Status, StatusKind};
use garrison_model::protection::{Owned, Plan, Spec};
pub use garrison_model::report::{ActionOutcome, ApplianceView, Delta, Report, ScopeView, Trigger, VpcView};

use garrison_cloud::discovery;

use crate::discover::{Observation, gap_warning, observe, session, status};
use crate::error::EngineError;
use crate::execute::Executor;
use crate::plan::desired::Want;
use crate::plan::{Inputs, plan_with_desired};
use crate::{Engine, now};

pub use removal::{Removal, uninstall};
use report::protection_status;
pub use report::{Summary, scope_summary, summarize};
use tamper::{forget_missing, missing_audit_items, note};

/// The report's form of an asset change the collector read.
pub fn delta(c: garrison_trail::Change) -> Delta {
    let target = match c.target {
        garrison_trail::Target::Asset(k) => k.as_str(),
        garrison_trail::Target::AuditPath => "audit_path",
    };
    Delta { region: c.region, target: target.into(), event: c.event }
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
        appliances: e.appliances.clone(),
    }
}

fn inputs<'a>(
    e: &'a Engine,
    options: &'a [garrison_model::otis::TuningOption],
    scans: &'a crate::plan::scans::Scans,
    appliances: &'a crate::plan::Replacing,
) -> Inputs<'a> {
    Inputs { prices: &e.prices, images: &e.images, options, scans, appliances }
}

/// What the health watch asks: silent appliances to replace (not those given up on), and
/// the retired ones kept running while a replacement is on its way or was given up on.
pub async fn replacing(e: &Engine, d: &Deployment) -> Result<crate::plan::Replacing, garrison_store::StoreError> {
    let rows = e.store.replacements(&d.id).await?;
    Ok(crate::plan::Replacing {
        replace: rows.values().filter(|r| !r.given_up).map(|r| (r.key.clone(), r.old_instance_id.clone())).collect(),
        hold: rows.into_keys().collect(),
    })
}

/// The deployment's scan schedules (its default one as stored, else as the otis
/// `vulnerability_scan_frequency` option makes it) and scan controls, at the engine's clock.
pub async fn scans(
    e: &Engine,
    d: &Deployment,
    options: &[garrison_model::otis::TuningOption],
) -> Result<crate::plan::scans::Scans, garrison_store::StoreError> {
    Ok(crate::plan::scans::Scans {
        now_ms: (e.clock)(),
        schedules: schedules(&e.store, d, options).await?,
        controls: e.store.scan_controls(&d.id).await?,
        ..Default::default()
    })
}

/// The deployment's scan schedules, its default one first (as stored, else as `options`'
/// `vulnerability_scan_frequency` makes it).
pub async fn schedules(
    store: &garrison_store::Store,
    d: &Deployment,
    options: &[garrison_model::otis::TuningOption],
) -> Result<Vec<garrison_model::schedule::Schedule>, garrison_store::StoreError> {
    let mut all = store.list_schedules(&d.account_id, &d.id).await?;
    if !all.iter().any(|s| s.default) {
        all.push(default_schedule(d, options));
    }
    all.sort_by_key(|s| !s.default);
    Ok(all)
}

/// The default vulnerability schedule of `d` before anyone changed it.
fn default_schedule(
    d: &Deployment,
    options: &[garrison_model::otis::TuningOption],
) -> garrison_model::schedule::Schedule {
    let scope = garrison_model::otis::OptionScope { deployment_id: Some(d.id.clone()), ..Default::default() };
    let frequency =
        garrison_model::otis::resolve(options.iter().filter(|o| o.name == "vulnerability_scan_frequency"), &scope)
            .and_then(|o| o.value.as_str());
    garrison_model::schedule::default_schedule(&d.id, frequency)
}

/// The account's tuning options the planner applies.
async fn options(
    e: &Engine,
    d: &Deployment,
) -> Result<Vec<garrison_model::otis::TuningOption>, garrison_store::StoreError> {
    e.store.list_options(&d.account_id, None).await
}

fn regions_of(owned: &Owned) -> Vec<String> {
    let mut r: Vec<String> = owned.items.values().map(|o| o.region.clone()).collect();
    r.sort();
    r.dedup();
    r
}

/// A plan preview: what protection would do now, and what it would cost.
pub struct Preview {
    pub plan: Plan,
    pub seen: Observation,
    pub cost: garrison_model::report::CostChange,
}

/// The plan for `d` and its cost from a fresh discovery, with the account's options or
/// with `options` in their place (an option previewed before it is saved); nothing is
/// written but the snapshot.
pub async fn preview(
    e: &Engine,
    d: &Deployment,
    options: Option<Vec<garrison_model::otis::TuningOption>>,
) -> Result<Preview, Status> {
    // The preview's discovery stores a snapshot: it takes its turn with this process's runs
    // of the deployment rather than write under one of them.
    let _turn = e.lock(&d.id).await;
    let owned = e
        .store
        .owned(&d.id)
        .await
        .map_err(|err| status(StatusKind::Error, Reason::StoreUnavailable, err.to_string()))?;
    let seen = observe(e, d, &regions_of(&owned)).await?;
    let opts = match options {
        Some(o) => o,
        None => self::options(e, d)
            .await
            .map_err(|err| status(StatusKind::Error, Reason::StoreUnavailable, err.to_string()))?,
    };
    let scans =
        scans(e, d, &opts).await.map_err(|err| status(StatusKind::Error, Reason::StoreUnavailable, err.to_string()))?;
    let work =
        replacing(e, d).await.map_err(|err| status(StatusKind::Error, Reason::StoreUnavailable, err.to_string()))?;
    let (plan, owned, want) =
        plan_with_desired(Some(d), &d.id, &seen.snapshot, &owned, &inputs(e, &opts, &scans, &work));
    let cost = crate::plan::cost::change(
        &crate::plan::cost::now(&seen.snapshot, &owned, &e.prices),
        &crate::plan::cost::planned(&want, &e.prices),
    );
    Ok(Preview { plan, seen, cost })
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
    let aws = seen.aws.clone();
    let report = Box::pin(apply(e, d, generation, seen, owned, None, None)).await?;
    if d.mode == Mode::Automatic {
        let b = crate::collect::backfill::inspector(e, d, &aws).await;
        tracing::debug!(deployment = %d.id, ?b, "findings backfill");
    }
    Ok(report)
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
        return Box::pin(crate::lease::exclusively(e, &d.id, run)).await;
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
    Box::pin(apply(e, d, generation, seen, owned, Some(&regions), Some(trigger))).await.map(Some)
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
    let opts = options(e, d).await?;
    let scans = scans(e, d, &opts).await?;
    e.note_edge(&d.id, scans.next_edge(crate::EDGE_HORIZON_MS));
    let work = replacing(e, d).await?;
    let inputs = inputs(e, &opts, &scans, &work);
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
        Box::pin(ex.run(&plan.actions, &mut owned)).await
    } else {
        vec![]
    };
    let Summary { audit_source, vpcs, monthly_appliance_usd } = summarize(&owned, &running, &e.prices);
    // What each option costs plans the whole deployment again per option: a full run's work.
    // A targeted run (an event) keeps the last report's figures.
    let option_costs = match only {
        None => crate::plan::cost::option_costs(d, &seen.snapshot, &inputs),
        Some(_) if opts.is_empty() => vec![],
        Some(_) => e.store.get_report(&d.account_id, &d.id).await?.map(|r| r.option_costs).unwrap_or_default(),
    };
    let mut report = Report {
        deployment_id: d.id.clone(),
        mode: d.mode,
        at: now(),
        generation,
        reason: Reason::Converged,
        plan: plan.clone(),
        outcomes: outcomes.clone(),
        audit_source,
        scope: scope_summary(d, &vpcs, &seen.snapshot),
        vpcs,
        monthly_appliance_usd,
        option_costs,
        trigger,
        freshness: None,
    };
    let st = protection_status(d, &seen, &plan, &outcomes, &report);
    report.reason = st.reason.unwrap_or(Reason::Converged);
    e.store.put_report(&d.account_id, &d.id, &report).await?;
    // The health evaluation that follows reads the run's causes here, not the snapshot again.
    let causes = garrison_model::health::run_causes(&report, st.reason, &seen.snapshot.gaps());
    e.run_causes.lock().expect("run causes").insert(d.id.clone(), ((report.generation, st.reason), causes));
    crate::record_status(e, d, st).await?;
    Ok(report)
}
