//! A fleet to measure: `size` emulated AWS accounts, each with garrison's role (the CloudFormation
//! template's trust and permissions), a credential and an automatic deployment with nothing to
//! build (CloudTrail monitoring off, Essentials in one region).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use garrison_catalog::{Catalog, cft};
use garrison_cloud::Sessions;
use garrison_model::credential::{NewCredential, RoleSecret};
use garrison_model::deployment::{Refs, parse_request};
use garrison_store::Store;
use garrison_testkit::tenants::GARRISON;
use serde_json::json;

/// The AWS account of deployment `i`.
pub fn account(i: usize) -> String {
    format!("{}", 220_000_000_000u64 + i as u64)
}

/// Sets up accounts `0..size`, `parallel` at a time (the emulator processes serve them side by side).
pub async fn fleet(
    sessions: Arc<Sessions>,
    store: &Store,
    tenant: &str,
    size: usize,
    parallel: usize,
) -> anyhow::Result<()> {
    let full = Catalog::builtin().get("aws", "ci_full", "latest")?.clone();
    let ext = store.external_id(tenant).await?;
    let policies: Arc<HashSet<String>> =
        Arc::new(garrison_catalog::policies::all().into_iter().map(|p| p.id).collect());
    let trust = cft::trust_policy(GARRISON, json!(ext));
    let permissions = cft::split_policy(&full.policy_document, cft::MANAGED_POLICY_LIMIT);
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..parallel.max(1) {
        let (sessions, store, tenant, policies) =
            (sessions.clone(), store.clone(), tenant.to_string(), policies.clone());
        let (trust, permissions) = (trust.clone(), permissions.clone());
        tasks.spawn(async move {
            for i in (lane..size).step_by(parallel.max(1)) {
                let acct = account(i);
                let there = sessions.assume(&format!("arn:aws:iam::{acct}:role/admin"), "setup").await?;
                let arn = garrison_cloud::estate::create_role(&there, "garrison", &trust, &permissions).await?;
                let cred = store
                    .create_credential(&tenant, &NewCredential { name: acct.clone(), secret: RoleSecret { arn } }, "b")
                    .await?;
                let creds: HashMap<String, String> = [(cred.id.clone(), acct.clone())].into();
                let body = json!({"name": acct, "platform": {"type": "aws", "id": acct, "monitor": {"enabled": false}}, "mode": "automatic",
                    "credentials": [{"id": cred.id, "purpose": "discover"}],
                    "scope": {"include": [{"type": "region", "key": "/aws/us-east-1", "policy": {"id": garrison_catalog::policies::ESSENTIALS}}]}});
                let spec = parse_request(&body, None, &Refs { policies: &policies, credentials: &creds })
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .spec;
                store.create_deployment(&tenant, spec, "b").await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}
