//! The collector: for each automatic deployment with an audit queue, a poller long-polls
//! the queue, reads the CloudTrail files its messages name, and turns the records that
//! change assets into a targeted reconcile of the regions they touch. A message is deleted
//! only once applied (at least once; applying twice changes nothing); input that cannot be
//! used is set aside as a dead letter with the reason. Between messages it checks that the
//! audit path itself (queue, subscription, notification, bucket) is still there.

mod poll;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use garrison_model::deployment::Mode;
use tokio::task::JoinHandle;

use crate::Engine;
use crate::plan::desired::keys;

#[derive(Debug, Clone)]
pub struct Options {
    /// SQS long-polling wait per receive, in seconds (at most 20).
    pub wait_secs: i32,
    /// How often the audit path is checked while the queue is quiet.
    pub audit_check: Duration,
    /// Largest log object read (a CloudTrail file is far smaller).
    pub max_object: u64,
    /// A message that failed to apply this many times is set aside.
    pub max_receives: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options { wait_secs: 20, audit_check: Duration::from_secs(60), max_object: 256 << 20, max_receives: 5 }
    }
}

/// Where a deployment's audit queue is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Queue {
    url: String,
    region: String,
}

/// Runs until dropped: keeps one poller per deployment that has a queue.
pub async fn run(engine: Arc<Engine>) {
    // Pollers end with this task.
    struct Pollers(HashMap<String, (Queue, JoinHandle<()>)>);
    impl Drop for Pollers {
        fn drop(&mut self) {
            for (_, h) in self.0.values() {
                h.abort();
            }
        }
    }
    let mut pollers = Pollers(HashMap::new());
    loop {
        match queues(&engine).await {
            Ok(want) => {
                pollers.0.retain(|id, (q, h)| {
                    let keep = want.get(id).is_some_and(|(_, w)| w == q) && !h.is_finished();
                    if !keep {
                        h.abort();
                    }
                    keep
                });
                for (id, (account, q)) in want {
                    if pollers.0.contains_key(&id) {
                        continue;
                    }
                    tracing::info!(deployment = %id, queue = %q.url, "collector: polling");
                    let h = tokio::spawn(poll::run(engine.clone(), account, id.clone(), q.clone()));
                    pollers.0.insert(id, (q, h));
                }
            }
            Err(err) => tracing::warn!(error = %err, "collector cannot list deployments"),
        }
        // Not woken by the API: its one wake-up permit belongs to the worker. A new queue
        // appears after a reconcile anyway, and is picked up within this pause.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Deployment id → (its tenant, its queue).
async fn queues(e: &Engine) -> anyhow::Result<HashMap<String, (String, Queue)>> {
    let mut out = HashMap::new();
    for d in e.store.all_deployments().await? {
        if !(d.enabled && d.discover && d.mode == Mode::Automatic) {
            continue;
        }
        if let Some(q) = e.store.owned(&d.id).await?.get(keys::QUEUE).filter(|q| !q.id.is_empty()) {
            out.insert(d.id.clone(), (d.account_id.clone(), Queue { url: q.id.clone(), region: q.region.clone() }));
        }
    }
    Ok(out)
}
