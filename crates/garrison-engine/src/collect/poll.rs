//! One deployment's poller: receive a batch, read what it names (log files) or carries
//! (EventBridge events), drop the records another path delivered already, react, delete.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use garrison_cloud::audit_queue::{self, QueueMessage};
use garrison_cloud::{Aws, CloudError};
use garrison_model::deployment::Deployment;
use garrison_store::{DeadLetter, FeedPath};
use garrison_trail::{Change, Message, ObjectRef, Seen, Target, message};

use super::Queue;
use crate::discover::session;
use crate::protect::{Trigger, delta, react};
use crate::{Engine, now_ms};

pub(super) async fn run(e: Arc<Engine>, account_id: String, id: String, q: Queue) {
    let mut next_check = Instant::now() + e.collector.audit_check;
    let mut failures = 0u32;
    let mut state = State::default();
    loop {
        let d = match e.store.get_deployment(&account_id, &id).await {
            Ok(Some(d)) => d,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(deployment = %id, error = %err, "collector: cannot read the deployment");
                backoff(&mut failures).await;
                continue;
            }
        };
        let (aws, own) = match session(&e, &d).await {
            Ok((aws, role)) => (aws.in_region(&q.region), own_principal(&role)),
            Err(st) => {
                tracing::warn!(deployment = %id, status = ?st.message, "collector: no session");
                backoff(&mut failures).await;
                continue;
            }
        };
        match audit_queue::receive(&aws, &q.url, e.collector.wait_secs).await {
            Ok(batch) if batch.is_empty() => {
                failures = 0;
                if Instant::now() >= next_check {
                    next_check = Instant::now() + e.collector.audit_check;
                    let t = Trigger { audit_path: true, ..Default::default() };
                    if let Err(err) = react(&e, &d, &BTreeSet::new(), t).await {
                        tracing::warn!(deployment = %id, error = %err, "collector: audit path check failed");
                    }
                }
            }
            Ok(batch) => {
                failures = 0;
                tracing::debug!(deployment = %id, messages = batch.len(), "collector: received");
                handle(&e, &d, &aws, &q, own.as_deref(), batch, &mut state).await;
            }
            Err(err) => {
                tracing::warn!(deployment = %id, error = %err, "collector: cannot receive");
                if err.code.contains("NonExistentQueue") {
                    // Deleted with its deployment, or by someone else: only the latter is repaired
                    // (react looks the deployment up again under its lock).
                    // Our queue is gone: the audit path check restores it (and the
                    // supervisor starts a poller on the new one).
                    let t = Trigger { audit_path: true, ..Default::default() };
                    if let Err(err) = react(&e, &d, &BTreeSet::new(), t).await {
                        tracing::warn!(deployment = %id, error = %err, "collector: audit path repair failed");
                    }
                    return;
                }
                backoff(&mut failures).await;
            }
        }
    }
}

async fn backoff(failures: &mut u32) {
    *failures += 1;
    tokio::time::sleep(Duration::from_millis(500 * 2u64.pow((*failures).min(6)))).await;
}

/// garrison's own session in the account (its calls are known already). Sessions are
/// named "garrison"; the role may have a path, the assumed-role ARN has only its name.
pub(super) fn own_principal(role_arn: &str) -> Option<String> {
    let account = role_arn.split(':').nth(4)?;
    let name = role_arn.rsplit('/').next()?;
    Some(format!("arn:aws:sts::{account}:assumed-role/{name}/garrison"))
}

/// What a poller keeps between batches.
#[derive(Default)]
pub(crate) struct State {
    /// Records applied, by event id: the same call arrives as an event and in a log file.
    seen: Seen,
    /// Buckets' regions (a trail's bucket may be in another region than the queue).
    bucket_regions: HashMap<String, String>,
}

/// What became of one message.
enum Fate {
    /// Applied or set aside: delete it.
    Done,
    /// Its changes wait for the reconcile below.
    Pending,
    /// A read failed for now: leave it to come back after its visibility timeout.
    Retry,
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn handle(
    e: &Engine,
    d: &Deployment,
    aws: &Aws,
    q: &Queue,
    own: Option<&str>,
    batch: Vec<QueueMessage>,
    state: &mut State,
) {
    let mut fates = Vec::with_capacity(batch.len());
    let mut trigger = Trigger::default();
    let mut regions = BTreeSet::new();
    let mut dead = vec![];
    // Event ids applied by this batch: remembered once the reconcile succeeds, so that a
    // batch that fails is applied in full when it comes back.
    let mut batch_ids: BTreeSet<String> = BTreeSet::new();
    let mut inputs: Vec<FeedPath> = vec![];
    let mut take =
        |digest: &garrison_trail::Digest, trigger: &mut Trigger, regions: &mut BTreeSet<String>, seen: &Seen| -> bool {
            let (changes, repeated): (Vec<Change>, usize) = digest.fresh(|id| {
                if seen.contains(id) || batch_ids.contains(id) {
                    return false;
                }
                batch_ids.insert(id.to_string());
                true
            });
            trigger.repeated += repeated;
            let mut pending = false;
            for c in changes {
                if c.target == Target::AuditPath {
                    trigger.audit_path = true;
                }
                regions.insert(c.region.clone());
                let v = delta(c);
                if !trigger.changes.contains(&v) {
                    trigger.changes.push(v);
                }
                pending = true;
            }
            pending
        };
    for m in &batch {
        let refs = match message::parse(&m.body) {
            Err(bad) => {
                dead.push(letter(d, &format!("sqs:{}", m.id), bad.to_string(), &m.body));
                fates.push(Fate::Done);
                continue;
            }
            Ok(Message::Ignore(why)) => {
                tracing::debug!(deployment = %d.id, message = %m.id, why, "collector: nothing to do");
                fates.push(Fate::Done);
                continue;
            }
            Ok(Message::Finding { source, event }) => {
                trigger.messages += 1;
                inputs.push(FeedPath::Events);
                let fate = match finding(e, d, source, &event).await {
                    Ok(()) => Fate::Done,
                    Err(FindingFate::Unusable(why)) => {
                        dead.push(letter(d, &format!("sqs:{}", m.id), why, &m.body));
                        Fate::Done
                    }
                    Err(FindingFate::Later(err)) if m.receives < e.collector.max_receives => {
                        tracing::warn!(deployment = %d.id, error = %err, "collector: finding not stored yet");
                        Fate::Retry
                    }
                    Err(FindingFate::Later(err)) => {
                        let why = format!("not stored after {} attempts: {err}", m.receives);
                        dead.push(letter(d, &format!("sqs:{}", m.id), why, &m.body));
                        Fate::Done
                    }
                };
                fates.push(fate);
                continue;
            }
            Ok(Message::Event { id, detail }) => {
                trigger.messages += 1;
                inputs.push(FeedPath::Events);
                let fate = match garrison_trail::digest_record(&detail, own) {
                    Ok(digest) if digest.bad.is_empty() => {
                        trigger.events.push(id);
                        if take(&digest, &mut trigger, &mut regions, &state.seen) { Fate::Pending } else { Fate::Done }
                    }
                    Ok(digest) => {
                        let why = digest.bad.iter().map(|b| b.reason.as_str()).collect::<Vec<_>>().join("; ");
                        dead.push(letter(
                            d,
                            &format!("sqs:{}", m.id),
                            format!("EventBridge event: detail: {why}"),
                            &m.body,
                        ));
                        Fate::Done
                    }
                    Err(bad) => {
                        dead.push(letter(
                            d,
                            &format!("sqs:{}", m.id),
                            format!("EventBridge event: detail: {bad}"),
                            &m.body,
                        ));
                        Fate::Done
                    }
                };
                fates.push(fate);
                continue;
            }
            Ok(Message::Logs(refs)) => refs,
        };
        trigger.messages += 1;
        inputs.push(FeedPath::TrailFiles);
        let mut fate = Fate::Done;
        for r in refs {
            let region = bucket_region(aws, &r.bucket, &mut state.bucket_regions).await;
            match read(e, &aws.in_region(&region), &r, own).await {
                Ok(digest) => {
                    trigger.files.push(format!("s3://{}/{}", r.bucket, r.key));
                    if !digest.bad.is_empty() {
                        let reasons: Vec<&str> = digest.bad.iter().take(3).map(|b| b.reason.as_str()).collect();
                        dead.push(letter(
                            d,
                            &format!("s3://{}/{}", r.bucket, r.key),
                            format!(
                                "{} of {} record(s) of unknown shape, the rest applied: {}",
                                digest.bad.len(),
                                digest.stats.records,
                                reasons.join("; ")
                            ),
                            "",
                        ));
                    }
                    if take(&digest, &mut trigger, &mut regions, &state.seen) {
                        fate = Fate::Pending;
                    }
                }
                Err(Read::Unusable(reason, excerpt)) => {
                    dead.push(letter(d, &format!("s3://{}/{}", r.bucket, r.key), reason, &excerpt));
                }
                Err(Read::Later(err)) => {
                    tracing::warn!(deployment = %d.id, key = %r.key, error = %err, "collector: log object not read yet");
                    fate = Fate::Retry;
                }
            }
        }
        // A message that keeps failing is set aside rather than retried for ever.
        if matches!(fate, Fate::Retry) && m.receives >= e.collector.max_receives {
            dead.push(letter(
                d,
                &format!("sqs:{}", m.id),
                format!("not applied after {} attempts", m.receives),
                &m.body,
            ));
            fate = Fate::Done;
        }
        fates.push(fate);
    }
    let now = crate::now_ms();
    inputs.sort_by_key(|p| p.as_str());
    inputs.dedup();
    for path in inputs {
        if let Err(err) = e.store.note_feed_input(&d.account_id, &d.id, path, now).await {
            tracing::warn!(deployment = %d.id, error = %err, "collector: cannot record the input's time");
        }
    }
    metrics::counter!("garrison_collector_repeated_records_total").increment(trigger.repeated as u64);
    let applied = if regions.is_empty() && !trigger.audit_path {
        true
    } else {
        tracing::info!(deployment = %d.id, regions = ?regions, changes = trigger.changes.len(), "collector: reconciling");
        match react(e, d, &regions, trigger).await {
            Ok(_) => true,
            Err(err) => {
                tracing::warn!(deployment = %d.id, error = %err, "collector: targeted reconcile failed; messages kept");
                for (m, f) in batch.iter().zip(&fates) {
                    if matches!(f, Fate::Pending) && m.receives >= e.collector.max_receives {
                        let why = format!("not applied after {} attempts: {err}", m.receives);
                        dead.push(letter(d, &format!("sqs:{}", m.id), why, &m.body));
                    }
                }
                false
            }
        }
    };
    if applied {
        for id in &batch_ids {
            state.seen.remember(id);
        }
    }
    for l in &dead {
        tracing::warn!(deployment = %d.id, source = %l.source, reason = %l.reason, "collector: set aside");
        if let Err(err) = e.store.add_dead_letter(&d.account_id, l).await {
            tracing::error!(deployment = %d.id, error = %err, "collector: cannot record a dead letter");
        }
    }
    let receipts: Vec<String> = batch
        .iter()
        .zip(&fates)
        .filter(|(m, f)| match f {
            Fate::Done => true,
            Fate::Pending => applied || m.receives >= e.collector.max_receives,
            Fate::Retry => false,
        })
        .map(|(m, _)| m.receipt.clone())
        .collect();
    // Queue lag: how long a handled message waited between SQS and garrison's answer.
    for (m, f) in batch.iter().zip(&fates) {
        let outcome = match f {
            Fate::Done => "applied",
            Fate::Pending if applied => "applied",
            Fate::Pending | Fate::Retry => "retry",
        };
        metrics::counter!("garrison_collector_messages_total", "outcome" => outcome).increment(1);
        if m.sent_ms > 0 && outcome == "applied" {
            metrics::histogram!("garrison_collector_lag_seconds").record((now - m.sent_ms).max(0) as f64 / 1000.0);
        }
    }
    metrics::counter!("garrison_collector_dead_letters_total").increment(dead.len() as u64);
    if let Err(err) = audit_queue::delete(aws, &q.url, &receipts).await {
        tracing::warn!(deployment = %d.id, error = %err, "collector: cannot delete handled messages; they will be applied again");
    }
}

/// Why a finding event was not stored.
enum FindingFate {
    /// Never usable: set aside with the reason.
    Unusable(String),
    /// The store failed: the message comes back.
    Later(String),
}

/// Stores the finding `event` tells, for deployment `d` (of the account it watches only).
async fn finding(
    e: &Engine,
    d: &Deployment,
    source: garrison_model::finding::Source,
    event: &serde_json::Value,
) -> Result<(), FindingFate> {
    let o = garrison_model::finding::observe(event, source)
        .map_err(|m| FindingFate::Unusable(format!("{} finding: {m}", source.as_str())))?;
    if o.aws_account != d.platform.id {
        return Err(FindingFate::Unusable(format!(
            "{} finding of account {}, not this deployment's ({})",
            source.as_str(),
            o.aws_account,
            d.platform.id
        )));
    }
    let (f, change) =
        e.store.record_finding(&d.account_id, &d.id, o).await.map_err(|err| FindingFate::Later(err.to_string()))?;
    tracing::info!(deployment = %d.id, finding = %f.id, severity = f.severity.as_str(), change = ?change, "finding recorded");
    metrics::counter!("garrison_findings_received_total", "source" => source.as_str(), "severity" => f.severity.as_str())
        .increment(1);
    Ok(())
}

/// The region of a log bucket (read once per bucket; the queue's region when it cannot be
/// read, as for a bucket of another account whose policy does not say).
async fn bucket_region(aws: &Aws, bucket: &str, known: &mut HashMap<String, String>) -> String {
    if let Some(r) = known.get(bucket) {
        return r.clone();
    }
    match audit_queue::bucket_region(aws, bucket).await {
        Ok(r) => {
            known.insert(bucket.to_string(), r.clone());
            r
        }
        Err(err) => {
            tracing::debug!(bucket, error = %err, "collector: bucket region unknown; reading from the queue's region");
            aws.region()
        }
    }
}

enum Read {
    /// Never readable: set aside with the reason and the start of the object.
    Unusable(String, String),
    /// Worth another try (throttled, a server fault).
    Later(CloudError),
}

async fn read(e: &Engine, aws: &Aws, r: &ObjectRef, own: Option<&str>) -> Result<garrison_trail::Digest, Read> {
    let bytes = match audit_queue::get_object(aws, &r.bucket, &r.key, e.collector.max_object).await {
        Ok(b) => b,
        Err(err) if err.is_retryable() => return Err(Read::Later(err)),
        Err(err) => {
            return Err(Read::Unusable(
                format!("cannot read the log object: {}: {}", err.code, err.message),
                String::new(),
            ));
        }
    };
    let own = own.map(str::to_string);
    // Inflating and parsing is CPU work: off the async threads.
    let parsed = tokio::task::spawn_blocking(move || {
        let r = garrison_trail::digest_gz(&bytes, own.as_deref());
        (r, bytes)
    })
    .await;
    match parsed {
        Ok((Ok(d), _)) => Ok(d),
        Ok((Err(bad), bytes)) => {
            let excerpt = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
            Err(Read::Unusable(format!("unreadable log object: {bad}"), excerpt))
        }
        Err(join) => Err(Read::Unusable(format!("the reader failed: {join}"), String::new())),
    }
}

fn letter(d: &Deployment, source: &str, reason: String, excerpt: &str) -> DeadLetter {
    DeadLetter {
        at_ms: now_ms(),
        deployment_id: d.id.clone(),
        source: source.to_string(),
        reason,
        excerpt: excerpt.chars().take(garrison_store::EXCERPT_CHARS).collect(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_principal_is_the_assumed_role_session() {
        assert_eq!(
            super::own_principal("arn:aws:iam::111122223333:role/path/to/garrison-full").as_deref(),
            Some("arn:aws:sts::111122223333:assumed-role/garrison-full/garrison")
        );
    }
}
