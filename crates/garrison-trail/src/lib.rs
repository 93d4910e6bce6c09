//! CloudTrail as garrison reads it: what arrives on the audit queue (`message`), the log
//! files it names (`log`, streaming), which records change assets (`change`), and which
//! records were seen already (`seen`). Pure functions over bytes, so the parser can be
//! fuzzed and benchmarked on its own.

mod blocks;
pub mod change;
pub mod log;
pub mod message;
pub mod seen;

pub use change::{Change, Target, acted_on, acts_on, classify};
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

/// Reads a gzipped log file and keeps its asset deltas. Only the records of calls garrison
/// acts on are read in full (`change::acts_on`): a malformed field of any other record is
/// not reported, since nothing would be done with it.
pub fn digest_gz(gz: &[u8], own_principal: Option<&str>) -> Result<Digest, log::Unreadable> {
    let mut d = Digest::default();
    let stats = log::read_gz_where(gz, change::acts_on, |r| d.take(r, own_principal))?;
    d.stats = stats;
    Ok(d)
}

/// Reads one CloudTrail record (an EventBridge event's `detail`) with the log files' parser.
pub fn digest_record(record: &str, own_principal: Option<&str>) -> Result<Digest, log::Unreadable> {
    let mut d = Digest::default();
    let wrapped = format!("{{\"Records\":[{record}]}}");
    let stats = log::read_json_where(wrapped.as_bytes(), change::acts_on, |r| d.take(r, own_principal))?;
    d.stats = stats;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn gz(v: &serde_json::Value) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(v.to_string().as_bytes()).unwrap();
        e.finish().unwrap()
    }

    proptest! {
        /// A call read from an EventBridge event changes what the same call read from a log
        /// file changes, and carries the same event id: the two paths are one.
        #[test]
        fn an_event_and_a_log_file_of_the_same_call_agree(
            pick in 0usize..200, region in "[a-z]{2}-[a-z]{4,9}-[1-3]", id in "[0-9a-f]{8}", failed in any::<bool>(),
        ) {
            let all: Vec<(&str, &str)> = acted_on().collect();
            let (source, name) = all[pick % all.len()];
            let mut rec = json!({"eventSource": source, "eventName": name, "awsRegion": region, "eventID": id,
                "userIdentity": {"arn": "arn:aws:sts::1:assumed-role/Admin/alice"},
                "requestParameters": {"resourcesSet": {"items": [{"resourceId": "i-1"}]}}});
            if failed {
                rec["errorCode"] = json!("AccessDenied");
            }
            let event = json!({"version": "0", "id": "ev", "detail-type": message::API_CALL,
                "source": format!("aws.{}", source.trim_end_matches(".amazonaws.com")), "detail": rec});
            let Ok(Message::Event { detail, .. }) = message::parse(&event.to_string()) else {
                panic!("not an event")
            };
            let by_event = digest_record(&detail, None).unwrap();
            let by_file = digest_gz(&gz(&json!({"Records": [rec]})), None).unwrap();
            prop_assert_eq!(&by_event.changes, &by_file.changes);
            prop_assert_eq!(&by_event.acted, &by_file.acted);
            prop_assert_eq!(by_event.changes.is_empty(), failed);
            if !failed {
                prop_assert_eq!(by_event.acted[0].event_id.as_deref(), Some(id.as_str()));
            }
        }
    }

    #[test]
    fn only_records_acted_on_are_read_in_full() {
        // A read with a malformed region: read_json reports it, the digest passes it by (it
        // would act on nothing); a write with the same fault is still reported, and a record
        // whose name cannot be read is reported either way.
        let doc = json!({"Records": [
            {"eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances", "awsRegion": 5},
            {"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances", "awsRegion": 5},
            {"eventSource": "ec2.amazonaws.com", "eventName": 42},
            {"eventSource": "ec2.amazonaws.com", "eventName": "DeleteSubnet", "awsRegion": "eu-west-1"},
        ]});
        let mut bad = vec![];
        log::read_json(doc.to_string().as_bytes(), |r| {
            if let Err(b) = r {
                bad.push(b.index)
            }
        })
        .unwrap();
        assert_eq!(bad, [0, 1, 2]);
        let d = digest_gz(&gz(&doc), None).unwrap();
        assert_eq!(d.bad.iter().map(|b| b.index).collect::<Vec<_>>(), [1, 2]);
        assert!(d.bad[0].reason.contains("awsRegion"), "{:?}", d.bad);
        assert_eq!((d.stats.records, d.stats.bad), (4, 2));
        assert_eq!(d.changes.iter().map(|c| c.event.as_str()).collect::<Vec<_>>(), ["DeleteSubnet"]);
    }

    #[test]
    fn repeated_records_are_left_out_by_id() {
        let rec = |id: &str, name: &str| {
            json!({"eventSource": "ec2.amazonaws.com", "eventName": name,
            "awsRegion": "eu-west-1", "eventID": id})
        };
        let d =
            digest_gz(&gz(&json!({"Records": [rec("a", "RunInstances"), rec("b", "DeleteSubnet")]})), None).unwrap();
        let (changes, repeated) = d.fresh(|id| id != "a");
        assert_eq!(repeated, 1);
        assert_eq!(changes.iter().map(|c| c.event.as_str()).collect::<Vec<_>>(), ["DeleteSubnet"]);
        assert_eq!(d.fresh(|_| true).0.len(), 2);
    }
}
