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
