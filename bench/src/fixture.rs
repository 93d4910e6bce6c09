//! A deployment ready to protect an emulated estate: a store in a temporary directory, the
//! customer's role as the template makes it, its credential, and an automatic deployment
//! over the estate's regions with garrison's own audit source in the first.

use std::collections::{HashMap, HashSet};

use garrison_catalog::{Catalog, cft};
use garrison_cloud::Aws;
use garrison_cloud::estate::EstateSpec;
use garrison_model::credential::{NewCredential, RoleSecret};
use garrison_model::deployment::{Deployment, Refs, parse_request};
use garrison_store::{SealKey, Store};
use serde_json::json;

pub const GARRISON: &str = "123456789012";

pub struct Fixture {
    pub store: Store,
    pub d: Deployment,
    /// garrison's tenant account.
    pub root: String,
    /// Where the store lives; removed by the caller at the end.
    pub dir: std::path::PathBuf,
}

/// `policy(i)` is the policy id of the i-th region of the estate.
pub async fn deployment(
    aws: &Aws,
    spec: &EstateSpec,
    name: &str,
    policy: impl Fn(usize) -> &'static str,
) -> anyhow::Result<Fixture> {
    let dir = std::env::temp_dir().join(format!("garrison-bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = Store::open(&format!("sqlite://{}?mode=rwc", dir.join("b.db").display()), &SealKey::generate()).await?;
    let root = store.init_root(None, None).await?.expect("a fresh store");
    let ext = store.external_id(&root.account_id).await?;
    let iam = aws.iam();
    let full = Catalog::builtin().get("aws", "ci_full", "latest")?.clone();
    let role_name = format!("garrison-bench-{name}");
    let role = iam
        .create_role()
        .role_name(&role_name)
        .assume_role_policy_document(cft::trust_policy(GARRISON, json!(ext)).to_string())
        .send()
        .await?;
    for (i, p) in cft::split_policy(&full.policy_document, cft::MANAGED_POLICY_LIMIT).iter().enumerate() {
        let pol =
            iam.create_policy().policy_name(format!("{role_name}-{i}")).policy_document(p.to_string()).send().await?;
        iam.attach_role_policy()
            .role_name(&role_name)
            .policy_arn(pol.policy().and_then(|p| p.arn()).unwrap_or_default())
            .send()
            .await?;
    }
    let arn = role.role().map(|r| r.arn().to_string()).unwrap_or_default();
    let cred = store
        .create_credential(&root.account_id, &NewCredential { name: name.into(), secret: RoleSecret { arn } }, "b")
        .await?;
    let include: Vec<_> = spec
        .regions
        .iter()
        .enumerate()
        .map(|(i, r)| json!({"type": "region", "key": format!("/aws/{r}"), "policy": {"id": policy(i)}}))
        .collect();
    let body = json!({"name": name, "platform": {"type": "aws", "id": GARRISON, "monitor": {"enabled": true, "ct_install_region": spec.regions[0]}},
        "mode": "automatic", "credentials": [{"id": cred.id, "purpose": "discover"}], "scope": {"include": include, "exclude": []}});
    let policies: HashSet<String> = garrison_catalog::policies::all().into_iter().map(|p| p.id).collect();
    let creds: HashMap<String, String> = [(cred.id.clone(), GARRISON.to_string())].into();
    let d_spec = parse_request(&body, None, &Refs { policies: &policies, credentials: &creds })
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .spec;
    let d = store.create_deployment(&root.account_id, d_spec, "b").await?;
    Ok(Fixture { store, d, root: root.account_id, dir })
}
