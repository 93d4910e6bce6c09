//! The collector: for each automatic deployment with an audit queue, a poller long-polls
//! the queue, reads the CloudTrail files its messages name, and turns the records that
//! change assets into a targeted reconcile of the regions they touch. A message is deleted
//! only once applied (at least once; applying twice changes nothing); input that cannot be
//! used is set aside as a dead letter with the reason. Between messages it checks that the
//! audit path itself (queue, subscription, notification, bucket) is still there.

pub mod backfill;
mod poll;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use garrison_model::deployment::Mode;
use tokio::task::JoinHandle;

use garrison_store::{Backend, Lease};

use crate::plan::desired::keys;
use crate::{Engine, now_ms};

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

/// Runs until dropped: keeps one poller per deployment that has a queue. On a shared store
/// (several workers on PostgreSQL) a worker polls a queue only while it holds that queue's
/// lease (`collect:<deployment>`), so each queue has one poller across the fleet, and a
/// dead worker's queues are taken over once their leases expire.
pub async fn run(engine: Arc<Engine>) {
    // Pollers end with this task.
    struct Pollers(HashMap<String, (Queue, JoinHandle<()>, Option<Lease>)>);
    impl Drop for Pollers {
        fn drop(&mut self) {
            for (_, h, _) in self.0.values() {
                h.abort();
            }
        }
    }
    let leased = engine.store.backend() == Backend::Postgres;
    let me = engine.worker_id.clone();
    let ttl = engine.lease_ttl.as_millis() as i64;
    let mut pollers = Pollers(HashMap::new());
    loop {
        match queues(&engine).await {
            Ok(want) => {
                let mut dropped = vec![];
                pollers.0.retain(|id, (q, h, lease)| {
                    let keep = want.get(id).is_some_and(|(_, w)| w == q) && !h.is_finished();
                    if !keep {
                        h.abort();
                        dropped.extend(lease.take());
                    }
                    keep
                });
                for lease in dropped {
                    let _ = engine.store.release_lease(&lease, &me).await;
                }
                // Held leases are renewed; a poller whose lease was lost stops.
                let mut lost = vec![];
                for (id, (_, _, lease)) in &pollers.0 {
                    if let Some(l) = lease
                        && matches!(engine.store.renew_lease(l, &me, now_ms(), ttl).await, Ok(false))
                    {
                        lost.push(id.clone());
                    }
                }
                for id in lost {
                    if let Some((_, h, _)) = pollers.0.remove(&id) {
                        tracing::warn!(deployment = %id, "collector: queue lease lost; another worker polls it");
                        h.abort();
                    }
                }
                for (id, (account, q)) in want {
                    if pollers.0.contains_key(&id) {
                        continue;
                    }
                    let lease = if leased {
                        match engine.store.claim_lease(&format!("{QUEUE_LEASE}{id}"), &me, now_ms(), ttl).await {
                            Ok(Some(l)) => Some(l),
                            Ok(None) => continue,
                            Err(err) => {
                                tracing::warn!(deployment = %id, error = %err, "collector: cannot claim the queue");
                                continue;
                            }
                        }
                    } else {
                        None
                    };
                    tracing::info!(deployment = %id, queue = %q.url, "collector: polling");
                    let h = tokio::spawn(poll::run(engine.clone(), account, id.clone(), q.clone()));
                    pollers.0.insert(id, (q, h, lease));
                }
            }
            Err(err) => tracing::warn!(error = %err, "collector cannot list deployments"),
        }
        // Not woken by the API: its one wake-up permit belongs to the worker. A new queue
        // appears after a reconcile anyway, and is picked up within this pause (which also
        // renews the queue leases well within their lifetime).
        tokio::time::sleep(Duration::from_secs(2).min(engine.lease_ttl / 3)).await;
    }
}

pub(crate) use poll::State;

/// Events of deployment `id` (tenant `account_id`) that arrived on a queue it does not own
/// (its organization's feed queue, read with `aws`): applied as its own poller applies
/// them, and deleted from that queue once applied.
pub(crate) async fn handle_routed(
    e: &Engine,
    account_id: &str,
    id: &str,
    aws: &garrison_cloud::Aws,
    url: &str,
    batch: Vec<garrison_cloud::audit_queue::QueueMessage>,
    state: &mut State,
) {
    let d = match e.store.get_deployment(account_id, id).await {
        Ok(Some(d)) => d,
        Ok(None) => return,
        Err(err) => {
            tracing::warn!(deployment = %id, error = %err, "organization feed: cannot read the deployment");
            return;
        }
    };
    let own = match crate::discover::session(e, &d).await {
        Ok((_, role)) => poll::own_principal(&role),
        Err(st) => {
            tracing::warn!(deployment = %id, status = ?st.message, "organization feed: no session; messages kept");
            return;
        }
    };
    let q = Queue { url: url.to_string(), region: aws.region() };
    poll::handle(e, &d, aws, &q, own.as_deref(), batch, state).await;
}

/// The lease key of a deployment's audit queue (beside the deployment's own lease).
pub const QUEUE_LEASE: &str = "collect:";

/// Deployment id → (its tenant, its queue). Read every two seconds, so by the queues' own
/// index: one statement whatever the fleet's size (it read every deployment, then each
/// one's owned resources: at 1,000 deployments 21 statements per deployment per minute).
async fn queues(e: &Engine) -> anyhow::Result<HashMap<String, (String, Queue)>> {
    let mut out = HashMap::new();
    for (d, q) in e.store.deployments_owning(keys::QUEUE).await? {
        if !(d.enabled && d.discover && d.mode == Mode::Automatic) || q.id.is_empty() {
            continue;
        }
        out.insert(d.id.clone(), (d.account_id.clone(), Queue { url: q.id, region: q.region }));
    }
    Ok(out)
}
