//! Shared by the engine's emulator tests: a store in a temporary directory and a role
//! with the automatic-mode permissions in the emulated account.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};

use garrison_catalog::{Catalog, cft};
use garrison_cloud::Aws;
use garrison_model::credential::{NewCredential, RoleSecret};
use garrison_model::deployment::{Deployment, Refs, parse_request};
use garrison_store::{SealKey, Store};
use serde_json::{Value, json};

pub const GARRISON: &str = "123456789012";

pub async fn store() -> Store {
    let dir = std::env::temp_dir().join(format!(
        "garrison-protect-{}-{:x}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    Store::open(&format!("sqlite://{}?mode=rwc", dir.join("p.db").display()), &SealKey::generate()).await.unwrap()
}

pub async fn full_role(aws: &Aws, ext: &str) -> String {
    let iam = aws.iam();
    let role = Catalog::builtin().get("aws", "ci_full", "latest").unwrap().clone();
    let r = iam
        .create_role()
        .role_name("garrison-full")
        .assume_role_policy_document(cft::trust_policy(GARRISON, json!(ext)).to_string())
        .send()
        .await
        .unwrap();
    for (i, p) in cft::split_policy(&role.policy_document, cft::MANAGED_POLICY_LIMIT).iter().enumerate() {
        let pol =
            iam.create_policy().policy_name(format!("full-{i}")).policy_document(p.to_string()).send().await.unwrap();
        iam.attach_role_policy()
            .role_name("garrison-full")
            .policy_arn(pol.policy().unwrap().arn().unwrap())
            .send()
            .await
            .unwrap();
    }
    r.role().unwrap().arn().to_string()
}

/// Logs to stderr when GARRISON_TEST_LOG is set (a filter such as `garrison_engine=debug`).
pub fn init_log() {
    if let Ok(filter) = std::env::var("GARRISON_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
}

/// A fresh store, its root tenant and a credential for the automatic-mode role in the
/// emulated account: (store, tenant account id, credential id).
pub async fn tenant(aws: &Aws) -> (Store, String, String) {
    let store = store().await;
    let root = store.init_root(None, None).await.unwrap().unwrap();
    let ext = store.external_id(&root.account_id).await.unwrap();
    let role = full_role(aws, &ext).await;
    let cred = store
        .create_credential(
            &root.account_id,
            &NewCredential { name: "full".into(), secret: RoleSecret { arn: role } },
            "u",
        )
        .await
        .unwrap();
    (store, root.account_id, cred.id)
}

/// A deployment created from a request body, as the API would.
pub async fn deployment(store: &Store, account: &str, cred: &str, body: &Value) -> Deployment {
    let policies: HashSet<String> = garrison_catalog::policies::all().into_iter().map(|p| p.id).collect();
    let creds: HashMap<String, String> = [(cred.to_string(), GARRISON.to_string())].into();
    let spec = parse_request(body, None, &Refs { policies: &policies, credentials: &creds }).unwrap().spec;
    store.create_deployment(account, spec, "u").await.unwrap()
}
