//! CloudTrail as garrison reads it: what arrives on the audit queue (`message`), the log
//! files it names (`log`, streaming), and which records change assets (`change`).
//! Pure functions over bytes, so the parser can be fuzzed and benchmarked on its own.

pub mod change;
pub mod log;
pub mod message;

pub use change::{Change, Target, classify};
pub use message::{Malformed, Message, ObjectRef};

/// Everything a log file changes: its asset deltas and the records that could not be read.
#[derive(Debug, Default)]
pub struct Digest {
    pub changes: Vec<Change>,
    pub bad: Vec<log::BadRecord>,
    pub stats: log::Stats,
}

/// Reads a gzipped log file and keeps its asset deltas (deduplicated, in order).
pub fn digest_gz(gz: &[u8], own_principal: Option<&str>) -> Result<Digest, log::Unreadable> {
    let mut d = Digest::default();
    let stats = log::read_gz(gz, |r| match r {
        Ok(r) => {
            for c in classify(&r, own_principal) {
                if !d.changes.contains(&c) {
                    d.changes.push(c);
                }
            }
        }
        Err(b) => d.bad.push(b),
    })?;
    d.stats = stats;
    Ok(d)
}
