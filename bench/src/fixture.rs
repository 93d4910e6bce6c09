//! A deployment ready to protect an emulated estate: a tenant of
//! `garrison_testkit::tenants` and an automatic deployment over the estate's regions, with
//! garrison's own audit source in the first.

use garrison_cloud::Aws;
use garrison_cloud::estate::EstateSpec;
use garrison_model::deployment::Deployment;
use garrison_store::Store;
use garrison_testkit::tenants::{self, GARRISON};
use serde_json::json;

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
    let t = tenants::tenant(aws, &format!("bench-{name}")).await?;
    let include: Vec<_> = spec
        .regions
        .iter()
        .enumerate()
        .map(|(i, r)| json!({"type": "region", "key": format!("/aws/{r}"), "policy": {"id": policy(i)}}))
        .collect();
    let body = json!({"name": name, "platform": {"type": "aws", "id": GARRISON, "monitor": {"enabled": true, "ct_install_region": spec.regions[0]}},
        "mode": "automatic", "credentials": [{"id": t.credential, "purpose": "discover"}], "scope": {"include": include, "exclude": []}});
    let d = t.deployment(&body).await?;
    Ok(Fixture { store: t.store, d, root: t.account, dir: t.dir })
}
