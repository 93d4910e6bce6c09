//! Shared by the engine's emulator tests (the fixture itself is `garrison_testkit::tenants`).

#![allow(dead_code)]

use garrison_store::Store;
use garrison_testkit::tenants;

pub use tenants::GARRISON;

pub async fn store() -> Store {
    tenants::store("engine-test").await.unwrap().0
}

/// Logs to stderr when GARRISON_TEST_LOG is set (a filter such as `garrison_engine=debug`).
pub fn init_log() {
    if let Ok(filter) = std::env::var("GARRISON_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
}

/// An automatic deployment of garrison's emulated account, every region of `regions` in
/// scope under Essentials, its audit source in `install`; and an engine whose collector
/// polls every second and leaves the audit-path check to the test.
pub async fn watched(
    t: &tenants::Tenant,
    sessions: &std::sync::Arc<garrison_cloud::Sessions>,
    name: &str,
    regions: &[String],
    install: &str,
) -> (garrison_model::deployment::Deployment, std::sync::Arc<garrison_engine::Engine>) {
    let include: Vec<serde_json::Value> = regions.iter().map(|r| include("region", &format!("/aws/{r}"))).collect();
    watched_with(t, sessions, name, include, install).await
}

/// An include item under Essentials.
pub fn include(kind: &str, key: &str) -> serde_json::Value {
    serde_json::json!({"type": kind, "key": key, "policy": {"id": garrison_catalog::policies::ESSENTIALS}})
}

/// `watched` with the scope's include items given.
pub async fn watched_with(
    t: &tenants::Tenant,
    sessions: &std::sync::Arc<garrison_cloud::Sessions>,
    name: &str,
    include: Vec<serde_json::Value>,
    install: &str,
) -> (garrison_model::deployment::Deployment, std::sync::Arc<garrison_engine::Engine>) {
    let body = serde_json::json!({"name": name, "mode": "automatic",
        "platform": {"type": "aws", "id": GARRISON, "monitor": {"enabled": true, "ct_install_region": install}},
        "credentials": [{"id": t.credential, "purpose": "discover"}], "scope": {"include": include}});
    let d = t.deployment(&body).await.unwrap();
    let mut e = garrison_engine::Engine::new(t.store.clone(), sessions.clone(), GARRISON.into());
    e.collector.wait_secs = 1;
    e.collector.audit_check = std::time::Duration::from_secs(3600);
    // Every full reconcile reads findings back (the tests' reconciles are seconds apart).
    e.backfill_every = std::time::Duration::ZERO;
    (d, std::sync::Arc::new(e))
}

/// Starts a host in the first subnet of `vpc` (as a customer would); its instance id.
pub async fn launch_host(aws: &garrison_cloud::Aws, vpc: &garrison_cloud::estate::BuiltVpc) -> String {
    let launched = aws
        .in_region(&vpc.region)
        .ec2()
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type("t3.micro".into())
        .min_count(1)
        .max_count(1)
        .subnet_id(&vpc.subnets[0].0)
        .send()
        .await
        .unwrap();
    launched.instances()[0].instance_id().unwrap().to_string()
}
