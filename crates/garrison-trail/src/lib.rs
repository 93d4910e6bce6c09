//! CloudTrail as garrison reads it: what arrives on the audit queue (`message`), the log
//! files it names (`log`, streaming), which records change assets (`change`), and which
//! records were seen already (`seen`). Pure functions over bytes, so the parser can be
//! fuzzed and benchmarked on its own.

pub mod change;
pub mod log;
pub mod message;
pub mod seen;

pub use change::{Change, Target, acted_on, classify};
pub use message::{Malformed, Message, ObjectRef};
pub use seen::Seen;

/// Everything a log file (or an EventBridge event) changes: its asset deltas, the records
/// that made them, and the records that could not be read.
#[derive(Debug, Default)]
pub struct Digest {
    /// The deltas, deduplicated, in order.
    pub changes: Vec<Change>,
    /// Each record that changed something, by its `eventID`, with its deltas: the same call
    /// reaches garrison by a log file and by EventBridge, and is applied once (`fresh`).
    pub acted: Vec<Acted>,
    pub bad: Vec<log::BadRecord>,
    pub stats: log::Stats,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acted {
    pub event_id: Option<String>,
    pub changes: Vec<Change>,
}

impl Digest {
    /// The deltas of the records `fresh` accepts (by event id; records without one always
    /// count), deduplicated in order, and how many records were left out.
    pub fn fresh(&self, mut fresh: impl FnMut(&str) -> bool) -> (Vec<Change>, usize) {
        let mut out: Vec<Change> = vec![];
        let mut repeated = 0;
        for a in &self.acted {
            if let Some(id) = &a.event_id
                && !fresh(id)
            {
                repeated += 1;
                continue;
            }
            for c in &a.changes {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
        }
        (out, repeated)
    }

    fn take(&mut self, r: Result<log::Record<'_>, log::BadRecord>, own_principal: Option<&str>) {
        match r {
            Ok(r) => {
                let cs = classify(&r, own_principal);
                if cs.is_empty() {
                    return;
                }
                for c in &cs {
                    if !self.changes.contains(c) {
                        self.changes.push(c.clone());
                    }
                }
                self.acted.push(Acted { event_id: r.event_id.map(|id| id.into_owned()), changes: cs });
            }
            Err(b) => self.bad.push(b),
        }
    }
}

/// Reads a gzipped log file and keeps its asset deltas.
pub fn digest_gz(gz: &[u8], own_principal: Option<&str>) -> Result<Digest, log::Unreadable> {
    let mut d = Digest::default();
    let stats = log::read_gz(gz, |r| d.take(r, own_principal))?;
    d.stats = stats;
    Ok(d)
}

/// Reads one CloudTrail record (an EventBridge event's `detail`) with the log files' parser.
pub fn digest_record(record: &str, own_principal: Option<&str>) -> Result<Digest, log::Unreadable> {
    let mut d = Digest::default();
    let wrapped = format!("{{\"Records\":[{record}]}}");
    let stats = log::read_json(wrapped.as_bytes(), |r| d.take(r, own_principal))?;
    d.stats = stats;
    Ok(d)
}
