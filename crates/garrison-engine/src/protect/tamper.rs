//! Tamper checks of the audit path: the resources discovery does not list (bucket, topic,
//! queue, subscription, notification) are probed; a missing one is forgotten so that the
//! plan builds it again, and the finding goes to the audit log.

use std::collections::BTreeMap;

use garrison_model::deployment::Deployment;
use garrison_model::protection::{Owned, OwnedItem};

use crate::Engine;
use crate::error::EngineError;

/// garrison's own entry in the audit log (a finding or a decision, not an AWS write).
pub(super) fn note(
    d: &Deployment,
    generation: i64,
    region: String,
    call: &str,
    resource: String,
    outcome: &str,
    message: String,
) -> garrison_model::audit::AuditEntry {
    garrison_model::audit::AuditEntry {
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

/// The audit resources discovery cannot list (bucket, topic, queue, subscription, bucket
/// notification) that no longer exist. One that cannot be checked now is trusted.
pub(super) async fn missing_audit_items(d: &Deployment, aws: &garrison_cloud::Aws, owned: &Owned) -> Vec<OwnedItem> {
    use garrison_cloud::writes::{Ctx, Journal, exists};
    let journal = Journal::default();
    let resolved = BTreeMap::new();
    let checks: Vec<&OwnedItem> = owned
        .items
        .values()
        .filter(|o| !o.adopted && !o.id.is_empty())
        // The kinds discovery does not list: garrison reads them itself.
        .filter(|o| o.kind.facts().discovered_as.is_none())
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
            user_data: None,
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
pub(super) async fn forget_missing(
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
        entries.push(garrison_model::audit::AuditEntry {
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
