//! Discovery of one deployment: assume its discover role, read its in-scope regions, keep
//! known facts where a read failed, persist, and report in the deployment's status.

use garrison_cloud::discovery;
use garrison_model::coverage::named_regions;
use garrison_model::deployment::{Deployment, Mode, Purpose, Status, StatusKind};
use garrison_model::snapshot::{Kind, Snapshot};

use crate::validation::{ValidationStatus, validate};
use crate::{Engine, now};

#[derive(Debug)]
pub struct Outcome {
    pub status: Status,
    pub snapshot: Option<Snapshot>,
}

fn status(kind: StatusKind, message: String) -> Status {
    Status { status: kind, updated: now(), message: Some(message) }
}

/// Runs discovery for `d` and records the outcome (snapshot and status).
pub async fn discover_deployment(e: &Engine, d: &Deployment) -> anyhow::Result<Outcome> {
    let outcome = run(e, d).await;
    if let Some(s) = &outcome.snapshot {
        e.store.put_snapshot(&d.account_id, &d.id, s).await?;
    }
    e.store.set_status(&d.account_id, &d.id, outcome.status.clone()).await?;
    Ok(outcome)
}

async fn run(e: &Engine, d: &Deployment) -> Outcome {
    let fail = |kind, msg: String| Outcome { status: status(kind, msg), snapshot: None };
    if d.mode == Mode::None || !d.discover || !d.enabled {
        return fail(StatusKind::Ok, "nothing to do: discovery is off for this deployment".into());
    }
    let Some(cred) = d.credentials.iter().find(|c| c.purpose == Purpose::Discover) else {
        return fail(StatusKind::Error, "no credential with purpose discover".into());
    };
    let role_arn = match e.store.get_credential(&d.account_id, &cred.id).await {
        Ok(Some(c)) => c.secrets.arn,
        Ok(None) => return fail(StatusKind::Error, format!("credential {} no longer exists", cred.id)),
        Err(err) => return fail(StatusKind::Error, format!("reading credential: {err}")),
    };
    let external_id = match e.store.external_id(&d.account_id).await {
        Ok(x) => x,
        Err(err) => return fail(StatusKind::Error, format!("reading the external id: {err}")),
    };
    // The role type follows the mode; its permissions are checked before use.
    let role_type = match d.mode {
        Mode::Automatic => "ci_full",
        Mode::Manual | Mode::Guided => "ci_manual",
        _ => "ci_readonly",
    };
    let role = e
        .catalog
        .get("aws", role_type, cred.version.as_deref().unwrap_or("latest"))
        .or_else(|_| e.catalog.get("aws", role_type, "latest"));
    let mut warnings = vec![];
    if let Ok(role) = role {
        let v = validate(e, &role_arn, &external_id, role, 1).await;
        match v.status {
            ValidationStatus::Ok => {}
            ValidationStatus::Unsafe => return fail(StatusKind::Error, v.message),
            ValidationStatus::NotAssumableYet | ValidationStatus::Error => return fail(StatusKind::Error, v.message),
            ValidationStatus::MissingPermissions => warnings.push(v.message),
        }
    }
    let aws = match e.sessions.assume(&role_arn, &external_id).await {
        Ok(a) => a,
        Err(err) => return fail(StatusKind::Error, format!("cannot assume {role_arn}: {err}")),
    };
    let (all, mut regions) = named_regions(&d.scope);
    if all {
        match discovery::enabled_regions(&aws).await {
            Ok(r) => regions = r,
            Err(err) => return fail(StatusKind::Error, format!("listing regions: {err}")),
        }
    }
    let snap = discovery::discover(&aws, &regions, now()).await;
    let previous = e.store.get_snapshot(&d.account_id, &d.id).await.ok().flatten();
    let merged = snap.merged_over(previous.as_ref());
    let gaps = merged.gaps();
    if !gaps.is_empty() {
        let named: Vec<String> =
            gaps.iter().map(|g| format!("{} {} ({})", g.region, g.kind.as_str(), g.code)).collect();
        warnings.insert(0, format!("discovery incomplete, earlier facts kept: {}", named.join(", ")));
    }
    let summary = format!(
        "discovered {} region(s): {} VPC(s), {} subnet(s), {} instance(s)",
        merged.regions.len(),
        merged.count(Kind::Vpcs),
        merged.count(Kind::Subnets),
        merged.count(Kind::Instances)
    );
    let st = if warnings.is_empty() {
        status(StatusKind::Ok, summary)
    } else {
        status(StatusKind::Warning, format!("{}; {summary}", warnings.join("; ")))
    };
    Outcome { status: st, snapshot: Some(merged) }
}
