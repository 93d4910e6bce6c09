//! Findings read back: after each full reconcile of an automatic deployment, Inspector's
//! findings of every region with garrison's findings rule are listed (`ListFindings`) and
//! recorded like the events that tell them, so that a finding whose event was lost (a rule
//! not yet in place, a queue purged, a worker down past the queue's retention) is still
//! kept, and told. GuardDuty's `ListFindings` is not offered by the emulator: GuardDuty
//! relies on its events.
//!
//! The first read of a deployment and region by this process takes every finding; later
//! ones those updated since the previous read began (a minute's overlap), at most one per
//! `Engine::backfill_every` (4 minutes: about one per resync).

use garrison_model::deployment::Deployment;
use garrison_model::finding::{Source, observe};

use crate::plan::desired::keys;
use crate::{Engine, now_ms};

/// Reads overlap by this much, for clock skew between garrison and AWS.
const OVERLAP_MS: i64 = 60_000;

/// What one backfill did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Backfilled {
    pub regions: usize,
    pub read: usize,
    pub recorded: usize,
    /// Regions read less than `backfill_every` ago, not read again.
    pub fresh: usize,
    /// Regions that could not be read, with the reason (an older role without
    /// `inspector2:ListFindings`, Inspector not enabled, throttling).
    pub skipped: Vec<String>,
}

/// Reads back Inspector's findings of `d` through `aws` (its assumed session). Never fails
/// the run: what cannot be read is logged and tried at the next resync.
pub async fn inspector(e: &Engine, d: &Deployment, aws: &garrison_cloud::Aws) -> Backfilled {
    let mut out = Backfilled::default();
    let regions: Vec<String> = match e.store.owned(&d.id).await {
        Ok(owned) => {
            let mut r: Vec<String> = owned
                .items
                .values()
                .filter(|o| o.key == keys::region(&o.region, keys::FINDINGS) && !o.id.is_empty())
                .map(|o| o.region.clone())
                .collect();
            r.sort();
            r.dedup();
            r
        }
        Err(err) => {
            tracing::warn!(deployment = %d.id, error = %err, "findings backfill: cannot read what garrison owns");
            return out;
        }
    };
    for region in regions {
        out.regions += 1;
        let key = format!("{}/{region}", d.id);
        let last = e.backfilled.lock().unwrap().get(&key).copied();
        let started = now_ms();
        if last.is_some_and(|(_, at)| started - at < e.backfill_every.as_millis() as i64) {
            out.fresh += 1;
            continue;
        }
        let since = last.map(|(since, _)| since);
        let events = match garrison_cloud::inspector::findings(&aws.in_region(&region), &d.platform.id, since).await {
            Ok(ev) => ev,
            Err(err) => {
                tracing::info!(deployment = %d.id, region, code = %err.code, "findings backfill: Inspector's findings not read");
                out.skipped.push(format!("{region} ({})", err.code));
                continue;
            }
        };
        out.read += events.len();
        let mut complete = true;
        for ev in &events {
            let mut o = match observe(ev, Source::Inspector2) {
                Ok(o) if o.aws_account == d.platform.id => o,
                Ok(o) => {
                    tracing::warn!(deployment = %d.id, account = %o.aws_account, "findings backfill: a finding of another account, skipped");
                    continue;
                }
                Err(m) => {
                    tracing::warn!(deployment = %d.id, error = %m, "findings backfill: an unreadable finding, skipped");
                    continue;
                }
            };
            // Read back, not seen again: the count stays what the events made it.
            o.count = Some(1);
            match e.store.record_finding(&d.account_id, &d.id, o).await {
                Ok(_) => out.recorded += 1,
                Err(err) => {
                    tracing::warn!(deployment = %d.id, error = %err, "findings backfill: cannot store a finding");
                    complete = false;
                }
            }
        }
        if complete {
            e.backfilled.lock().unwrap().insert(key, (started - OVERLAP_MS, started));
        }
    }
    metrics::counter!("garrison_findings_backfilled_total", "source" => "inspector2").increment(out.recorded as u64);
    out
}
