//! The engine: discovery of deployments into persisted snapshots, role validation, and
//! the worker loop that runs them when deployments change and periodically.

pub mod appliances;
pub mod collect;
pub mod coverage;
pub mod discover;
pub mod enroll;
pub mod error;
pub mod execute;
pub mod lease;
pub mod plan;
pub mod protect;
pub mod validation;
pub mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use garrison_catalog::Catalog;
use garrison_cloud::Sessions;
use garrison_store::Store;
use tokio::sync::Notify;

pub struct Engine {
    pub store: Store,
    pub sessions: Arc<Sessions>,
    /// garrison's AWS principal, which roles must trust.
    pub principal: String,
    pub catalog: Catalog,
    /// Poked by the API when a deployment is created or changed.
    pub wake: Arc<Notify>,
    /// Poked by the API when an organization enrollment is created or changed.
    pub enrollments_changed: Arc<Notify>,
    /// Attempts and pause while a new role propagates.
    pub propagation: (u32, Duration),
    /// Instance prices and appliance images the planner decides with (built in, or the operator's).
    pub prices: Arc<garrison_catalog::prices::PriceTable>,
    pub images: Arc<garrison_catalog::appliances::Images>,
    /// One writer per deployment at a time: the worker's reconciles, the collector's
    /// targeted ones and removals take turns (generations fence whatever slips past).
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    pub collector: collect::Options,
    /// First pause before an action is tried again (then doubling, 6 tries in all).
    pub retry_pause: Duration,
    /// With a shared store (PostgreSQL): this worker's name in the leases, how long a lease
    /// lasts unrenewed, and how many deployments it reconciles at once.
    pub worker_id: String,
    pub lease_ttl: Duration,
    pub parallel_runs: usize,
    /// The error policy's first pause after a run that failed for a passing reason
    /// (doubling with each consecutive failure, at most the resync interval).
    pub backoff_base: Duration,
    /// Consecutive such failures per deployment.
    failures: Mutex<HashMap<String, u32>>,
    /// When the findings backfill last read each `<deployment>/<region>`: (the time the next
    /// read asks for changes since — the last read's start less an overlap —, the last read's
    /// start), in milliseconds.
    pub(crate) backfilled: Mutex<HashMap<String, (i64, i64)>>,
    /// At most one findings read-back per deployment and region in this time: full
    /// reconciles can come often (edits, wakes, retries), findings change slowly.
    pub backfill_every: Duration,
    /// The time scan windows are judged at, in milliseconds (tests set it).
    pub clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    /// Per deployment, when a scan window next opens or closes (within `EDGE_HORIZON_MS`):
    /// its next run comes then rather than at the resync.
    edges: Mutex<HashMap<String, i64>>,
    /// How appliances report in (their user data carries a one-time token); None: they are
    /// launched without the agent and their health is not watched.
    pub appliances: Option<appliances::Channel>,
    /// Per deployment, the causes its last run showed, and what they were read from (the
    /// report's generation, the status's reason).
    pub(crate) run_causes: Mutex<HashMap<String, RunCauses>>,
    /// One health evaluation at a time in this process (the watch and the runs' own), so
    /// that an item is opened, and told, once.
    pub(crate) health_turn: tokio::sync::Mutex<()>,
}

type RunCauses = ((i64, Option<garrison_model::deployment::Reason>), Vec<garrison_model::health::Cause>);

/// How far ahead a run looks for the next scan window edge (the longest resync it shortens).
pub const EDGE_HORIZON_MS: i64 = 3_600_000;

impl Engine {
    pub fn new(store: Store, sessions: Arc<Sessions>, principal: String) -> Engine {
        Engine {
            store,
            sessions,
            principal,
            catalog: Catalog::builtin(),
            wake: Arc::new(Notify::new()),
            enrollments_changed: Arc::new(Notify::new()),
            propagation: (12, Duration::from_secs(5)),
            prices: Arc::new(garrison_catalog::prices::PriceTable::builtin()),
            images: Arc::new(garrison_catalog::appliances::Images::builtin()),
            locks: Mutex::new(HashMap::new()),
            collector: collect::Options::default(),
            retry_pause: Duration::from_millis(500),
            worker_id: format!(
                "{}-{}-{:04x}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into()),
                std::process::id(),
                rand::random::<u16>()
            ),
            lease_ttl: Duration::from_secs(30),
            parallel_runs: 8,
            backoff_base: Duration::from_secs(5),
            failures: Mutex::new(HashMap::new()),
            backfilled: Mutex::new(HashMap::new()),
            backfill_every: Duration::from_secs(240),
            clock: Arc::new(now_ms),
            edges: Mutex::new(HashMap::new()),
            appliances: None,
            run_causes: Mutex::new(HashMap::new()),
            health_turn: tokio::sync::Mutex::new(()),
        }
    }

    /// The error policy: after a run of deployment `id` that ended for `reason`, the pause
    /// before it runs again, or None for its periodic resync (converged, or waiting for a
    /// change someone must make: a change to the deployment wakes it anyway).
    pub fn after_run(
        &self,
        id: &str,
        reason: garrison_model::deployment::Reason,
        resync: Duration,
    ) -> Option<Duration> {
        use garrison_model::deployment::{Retry, backoff};
        let mut failures = self.failures.lock().expect("failures");
        match reason.retry() {
            Retry::Backoff => {
                let n = failures.entry(id.to_string()).or_default();
                *n += 1;
                Some(backoff(*n, self.backoff_base, resync))
            }
            Retry::Resync | Retry::WaitForChange => {
                failures.remove(id);
                // A scan window opening or closing before the resync: run then (a second
                // after the edge, so that the run sees it).
                let edge = self.edges.lock().expect("edges").get(id).copied()?;
                let wait = Duration::from_millis((edge - (self.clock)()).max(0) as u64 + 1_000);
                (wait < resync).then_some(wait)
            }
        }
    }

    /// Records when `id`'s next scan window edge is (None: none within the horizon).
    pub fn note_edge(&self, id: &str, edge: Option<i64>) {
        let mut edges = self.edges.lock().expect("edges");
        match edge {
            Some(t) => edges.insert(id.to_string(), t),
            None => edges.remove(id),
        };
    }

    /// Waits for the deployment's turn to write.
    pub async fn lock(&self, deployment_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut locks = self.locks.lock().expect("locks");
            // A lock held or waited for has a guard or a waiter holding a clone.
            locks.retain(|_, m| Arc::strong_count(m) > 1);
            locks.entry(deployment_id.to_string()).or_default().clone()
        };
        m.lock_owned().await
    }
}

/// FNV-1a of `bytes`: a stable hash (client tokens, spreading interfaces over appliances)
/// that never changes between releases, unlike std's.
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf29ce484222325, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Records the status a run ended with and counts it by reason code and retry policy
/// (`garrison_runs_total`).
pub async fn record_status(
    e: &Engine,
    d: &garrison_model::deployment::Deployment,
    st: garrison_model::deployment::Status,
) -> Result<(), garrison_store::StoreError> {
    if let Some(r) = st.reason {
        metrics::counter!("garrison_runs_total", "reason" => r.as_str(), "retry" => r.retry().as_str()).increment(1);
    }
    e.store.set_status(&d.account_id, &d.id, st).await?;
    Ok(())
}
