//! Discovery of one deployment: assume its discover role, read its in-scope regions, keep
//! known facts where a read failed, persist, and report in the deployment's status.

use garrison_cloud::{Aws, discovery};
use garrison_model::coverage::named_regions;
use garrison_model::deployment::{Deployment, Mode, Purpose, Reason, Status, StatusKind};
use garrison_model::snapshot::{Kind, Snapshot};

use crate::validation::{ValidationStatus, validate_reusing};
use crate::{Engine, now};

#[derive(Debug)]
pub struct Outcome {
    pub status: Status,
    pub snapshot: Option<Snapshot>,
}

pub fn status(kind: StatusKind, reason: Reason, message: String) -> Status {
    Status::new(kind, reason, now(), message)
}

/// Runs discovery for `d` and records the outcome (snapshot and status).
pub async fn discover_deployment(e: &Engine, d: &Deployment) -> Result<Outcome, crate::error::EngineError> {
    let outcome = run(e, d).await;
    crate::record_status(e, d, outcome.status.clone()).await?;
    Ok(outcome)
}

async fn run(e: &Engine, d: &Deployment) -> Outcome {
    if d.mode == Mode::None || !d.discover || !d.enabled {
        return Outcome {
            status: status(StatusKind::Ok, Reason::Idle, "nothing to do: discovery is off for this deployment".into()),
            snapshot: None,
        };
    }
    match Box::pin(observe(e, d, &[])).await {
        Ok(seen) => Outcome { status: seen.status(), snapshot: Some(seen.snapshot) },
        Err(st) => Outcome { status: st, snapshot: None },
    }
}

/// A session in the deployment's account and what discovery saw there.
pub struct Observation {
    pub aws: Aws,
    pub snapshot: Snapshot,
    /// Reasons for a warning status (incomplete discovery, missing permissions).
    pub warnings: Vec<String>,
    /// The code of the first warning; `Converged` without one.
    pub reason: Reason,
}

impl Observation {
    pub fn summary(&self) -> String {
        format!(
            "discovered {} region(s): {} VPC(s), {} subnet(s), {} instance(s)",
            self.snapshot.regions.len(),
            self.snapshot.count(Kind::Vpcs),
            self.snapshot.count(Kind::Subnets),
            self.snapshot.count(Kind::Instances)
        )
    }

    pub fn status(&self) -> Status {
        if self.warnings.is_empty() {
            status(StatusKind::Ok, self.reason, self.summary())
        } else {
            status(StatusKind::Warning, self.reason, format!("{}; {}", self.warnings.join("; "), self.summary()))
        }
    }
}

/// The deployment's discover role and a session in its account (cached), without the
/// permission check `observe` makes first.
pub async fn session(e: &Engine, d: &Deployment) -> Result<(Aws, String), Status> {
    let (role_arn, external_id, _) = role(e, d).await?;
    match e.sessions.assume(&role_arn, &external_id).await {
        Ok(a) => Ok((a, role_arn)),
        Err(err) => Err(status(
            StatusKind::Error,
            crate::error::assume_reason(&err),
            format!("cannot assume {}: {err}", garrison_model::redact::role_arn(&role_arn)),
        )),
    }
}

async fn role(e: &Engine, d: &Deployment) -> Result<(String, String, Option<String>), Status> {
    let fail = |reason, msg: String| status(StatusKind::Error, reason, msg);
    let Some(cred) = d.credentials.iter().find(|c| c.purpose == Purpose::Discover) else {
        return Err(fail(Reason::CredentialMissing, "no credential with purpose discover".into()));
    };
    let role_arn = match e.store.get_credential(&d.account_id, &cred.id).await {
        Ok(Some(c)) => c.secrets.arn,
        Ok(None) => return Err(fail(Reason::CredentialMissing, format!("credential {} no longer exists", cred.id))),
        Err(err) => return Err(fail(Reason::StoreUnavailable, format!("reading credential: {err}"))),
    };
    let external_id = match e.store.external_id(&d.account_id).await {
        Ok(x) => x,
        Err(err) => return Err(fail(Reason::StoreUnavailable, format!("reading the external id: {err}"))),
    };
    Ok((role_arn, external_id, cred.version.clone()))
}

/// Validates and assumes the deployment's role, then reads its in-scope regions plus
/// `extra` (regions where garrison still owns something), keeping known facts where a
/// read failed. The snapshot is persisted. An `Err` is the status to report.
pub async fn observe(e: &Engine, d: &Deployment, extra: &[String]) -> Result<Observation, Status> {
    let fail = |reason, msg: String| status(StatusKind::Error, reason, msg);
    let (role_arn, external_id, version) = role(e, d).await?;
    // The role type follows the mode; its permissions are checked before use.
    let role_type = match d.mode {
        Mode::Automatic => "ci_full",
        Mode::Manual | Mode::Guided => "ci_manual",
        _ => "ci_readonly",
    };
    let role = e
        .catalog
        .get("aws", role_type, version.as_deref().unwrap_or("latest"))
        .or_else(|_| e.catalog.get("aws", role_type, "latest"));
    let mut warnings = vec![];
    let mut reason = Reason::Converged;
    let mut role_policies = vec![];
    if let Ok(role) = role {
        // The deployment's version stands for its state (its credential is part of it).
        let state = format!("{}:{}", d.id, d.version);
        let v = validate_reusing(e, &role_arn, &external_id, role, 1, Some(&state)).await;
        role_policies = v.policies.clone();
        match v.status {
            ValidationStatus::Ok => {}
            ValidationStatus::Unsafe | ValidationStatus::NotAssumableYet | ValidationStatus::Error => {
                return Err(fail(v.reason(), v.message));
            }
            ValidationStatus::MissingPermissions => {
                reason = v.reason();
                warnings.push(v.message);
            }
        }
    }
    let aws = match e.sessions.assume(&role_arn, &external_id).await {
        Ok(a) => a,
        Err(err) => {
            return Err(fail(
                crate::error::assume_reason(&err),
                format!("cannot assume {}: {err}", garrison_model::redact::role_arn(&role_arn)),
            ));
        }
    };
    let (all, mut regions) = named_regions(&d.scope);
    if all {
        match discovery::enabled_regions(&aws).await {
            Ok(r) => regions = r,
            Err(err) => return Err(fail(crate::error::reason_of(&err), format!("listing regions: {err}"))),
        }
    }
    for r in extra {
        if !regions.contains(r) {
            regions.push(r.clone());
        }
    }
    let snap = discovery::discover(&aws, &regions, now()).await;
    let previous = e.store.get_snapshot(&d.account_id, &d.id).await.ok().flatten();
    let merged = snap.merged_over(previous.as_ref());
    if let Some(w) = gap_warning(&merged) {
        warnings.insert(0, w);
        reason = Reason::DiscoveryIncomplete;
    }
    if d.platform.monitor.enabled {
        warnings.extend(Box::pin(kms_warnings(&aws, &merged, &role_arn, &role_policies)).await);
    }
    if let Err(err) = e.store.put_snapshot(&d.account_id, &d.id, &merged).await {
        tracing::warn!(deployment = %d.id, error = %err, "cannot store the snapshot");
    }
    Ok(Observation { aws, snapshot: merged, warnings, reason })
}

/// Trails garrison could adopt whose log files are encrypted with a KMS key its role may
/// not use: the key policy must let the role (or its account) decrypt, else the files
/// cannot be read. Said per key, with the remedy.
async fn kms_warnings(
    aws: &garrison_cloud::Aws,
    snap: &garrison_model::snapshot::Snapshot,
    role_arn: &str,
    role_policies: &[std::sync::Arc<serde_json::Value>],
) -> Vec<String> {
    let account = role_arn.split(':').nth(4).unwrap_or_default();
    let mut out = vec![];
    for t in crate::plan::desired::home_copies(snap) {
        let Some(key) = &t.kms_key_id else { continue };
        if !t.multi_region || t.logging != Some(true) || t.name.starts_with(garrison_model::protection::TRAIL_PREFIX) {
            continue;
        }
        let who = garrison_model::redact::role_arn(role_arn);
        // The role's own permission: what the template's parameter grants.
        if !role_policies.is_empty()
            && !role_policies.iter().any(|p| garrison_catalog::iam_check::allows(p, "kms:Decrypt", key))
        {
            out.push(format!(
                "trail {}: {who} may not kms:Decrypt with its log files' key {key}: update the role's stack with {}={key} (or grant kms:Decrypt on that key)",
                t.name,
                garrison_catalog::cft::AUDIT_KEY_PARAMETER
            ));
        }
        match garrison_cloud::discovery::key_policy(aws, key).await {
            Ok(text) => {
                let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                if !garrison_catalog::iam_check::key_policy_lets_decrypt(&doc, role_arn, account) {
                    out.push(format!(
                        "trail {}: its log files are encrypted with KMS key {key}, whose key policy does not let {who} use kms:Decrypt; add the role (or the account {account}) to the key policy: until then its files cannot be read and changes arrive through the event feed only",
                        t.name
                    ));
                }
            }
            Err(err) => out.push(format!(
                "trail {}: cannot read the policy of its KMS key {key} ({}): whether {who} may decrypt its log files is unknown",
                t.name, err.code
            )),
        }
    }
    out
}

/// The warning for reads that failed (their earlier facts were kept), if any did.
pub fn gap_warning(snap: &Snapshot) -> Option<String> {
    let gaps = snap.gaps();
    if gaps.is_empty() {
        return None;
    }
    let named: Vec<String> = gaps.iter().map(|g| format!("{} {} ({})", g.region, g.kind.as_str(), g.code)).collect();
    Some(format!("discovery incomplete, earlier facts kept: {}", named.join(", ")))
}
