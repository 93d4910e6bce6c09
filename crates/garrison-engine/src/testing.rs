//! For tests and benchmarks on the emulator: a tenant in a fresh store whose credential is
//! an automatic-mode role created in the emulated account, and deployments created from
//! request bodies as the API would.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use garrison_catalog::{Catalog, cft};
use garrison_cloud::Aws;
use garrison_model::credential::{NewCredential, RoleSecret};
use garrison_model::deployment::{Deployment, Refs, parse_request};
use garrison_store::{SealKey, Store};
use serde_json::{Value, json};

/// garrison's principal on the emulator (its default account).
pub const GARRISON: &str = "123456789012";

pub struct Tenant {
    pub store: Store,
    /// garrison's tenant account.
    pub account: String,
    pub credential: String,
    /// Where the store lives (the caller may remove it).
    pub dir: PathBuf,
}

/// A SQLite store in a new temporary directory.
pub async fn store(name: &str) -> anyhow::Result<(Store, PathBuf)> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
    let dir = std::env::temp_dir().join(format!("garrison-{name}-{}-{nanos:x}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = Store::open(&format!("sqlite://{}?mode=rwc", dir.join("g.db").display()), &SealKey::generate()).await?;
    Ok((store, dir))
}

/// A fresh store's root tenant with a credential for the ci_full role `garrison-<name>`,
/// created in the emulated account as the template would, trusting garrison with the
/// tenant's external id.
pub async fn tenant(aws: &Aws, name: &str) -> anyhow::Result<Tenant> {
    let (store, dir) = store(name).await?;
    let root = store.init_root(None, None).await?.ok_or_else(|| anyhow::anyhow!("the store is not fresh"))?;
    let ext = store.external_id(&root.account_id).await?;
    let catalog = Catalog::builtin();
    let full = catalog.get("aws", "ci_full", "latest")?;
    let arn = garrison_cloud::estate::create_role(
        aws,
        &format!("garrison-{name}"),
        &cft::trust_policy(GARRISON, json!(ext)),
        &cft::split_policy(&full.policy_document, cft::MANAGED_POLICY_LIMIT),
    )
    .await?;
    let cred = store
        .create_credential(&root.account_id, &NewCredential { name: name.into(), secret: RoleSecret { arn } }, "test")
        .await?;
    Ok(Tenant { store, account: root.account_id, credential: cred.id, dir })
}

impl Tenant {
    /// A deployment created from a request body, validated as the API would.
    pub async fn deployment(&self, body: &Value) -> anyhow::Result<Deployment> {
        let policies: HashSet<String> = garrison_catalog::policies::all().into_iter().map(|p| p.id).collect();
        let creds: HashMap<String, String> = [(self.credential.clone(), GARRISON.to_string())].into();
        let spec = parse_request(body, None, &Refs { policies: &policies, credentials: &creds })
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .spec;
        Ok(self.store.create_deployment(&self.account, spec, "test").await?)
    }
}
