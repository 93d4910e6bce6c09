//! When scanners run: the deployment's scan schedules (scan_scheduler v2) and the scans
//! expedited or stopped, at the planner's clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use garrison_model::schedule::{ScanControl, Schedule, VpcPlace, reaches};
use serde_json::json;

/// A schedule's id, the stop it is judged under, and the time.
type Judged = (String, Option<i64>, i64);

/// What the planner knows of scan timing. Empty (no schedules): scanners run whenever there
/// is something to scan, as without the scheduler.
#[derive(Debug, Clone, Default)]
pub struct Scans {
    pub now_ms: i64,
    /// The deployment's schedules, its default one included.
    pub schedules: Vec<Schedule>,
    pub controls: Vec<ScanControl>,
    /// Whether each schedule, under each stop, is open at `now_ms`.
    pub memo: Arc<Mutex<HashMap<Judged, bool>>>,
}

impl Scans {
    /// The first time within `horizon_ms` after now at which a schedule's windows open or
    /// close or an expedite runs out: when the scanners' state may change with no one acting.
    pub fn next_edge(&self, horizon_ms: i64) -> Option<i64> {
        let now = self.now_ms;
        let end = now + horizon_ms;
        let mut best: Option<i64> = None;
        let mut keep = |t: i64| best = Some(best.map_or(t, |b| b.min(t)));
        for u in self.controls.iter().filter_map(|c| c.expedite_until) {
            if u > now && u <= end {
                keep(u);
            }
        }
        for s in self.schedules.iter().filter(|s| s.enabled && s.type_of_scan == "vulnerability") {
            let c = s.compile();
            let was = c.open(now);
            let mut t = now - now.rem_euclid(60_000) + 60_000;
            while t <= end {
                if c.open(t) != was {
                    keep(t);
                    break;
                }
                t += 60_000;
            }
        }
        best
    }

    /// Whether the scanners of a VPC may run now: a scan expedited for an asset reaching it
    /// runs them; else one of the vulnerability schedules reaching it has a window open
    /// (the union of their windows), not stopped in it.
    pub fn open(&self, p: &VpcPlace<'_>) -> bool {
        if self.schedules.is_empty() {
            return true;
        }
        let control = |c: &ScanControl| reaches(&json!({"type": "asset", "asset_type": c.asset_type, "key": c.key}), p);
        if self.controls.iter().any(|c| c.expedite_until.is_some_and(|u| u > self.now_ms) && control(c)) {
            return true;
        }
        let stopped = self.controls.iter().filter(|c| control(c)).filter_map(|c| c.stopped_at).max();
        self.schedules.iter().filter(|s| s.type_of_scan == "vulnerability" && s.covers(p)).any(|s| {
            let at = s.stopped_at.max(stopped);
            // Judging a stop walks the windows minute by minute: once per schedule and stop,
            // not once per VPC.
            let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
            *memo.entry((s.id.clone(), at, self.now_ms)).or_insert_with(|| {
                let c = s.compile();
                s.enabled && c.open(self.now_ms) && !at.is_some_and(|at| s.stopped(&c, at, self.now_ms))
            })
        })
    }
}
