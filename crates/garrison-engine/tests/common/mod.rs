//! Shared by the engine's emulator tests (the fixture itself is `garrison_engine::testing`).

#![allow(dead_code)]

use garrison_engine::testing;
use garrison_store::Store;

pub use testing::GARRISON;

pub async fn store() -> Store {
    testing::store("engine-test").await.unwrap().0
}

/// Logs to stderr when GARRISON_TEST_LOG is set (a filter such as `garrison_engine=debug`).
pub fn init_log() {
    if let Ok(filter) = std::env::var("GARRISON_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
}
