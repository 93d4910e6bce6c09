//! What a long-running worker may reuse between runs instead of asking AWS again, each for
//! at most `max_age`: a region's zones and the zones offering the appliance instance types
//! (they change on AWS's timescale, not the customer's), and a role's permission documents
//! (what it may do is re-read hourly, and at once when the deployment or its credential
//! changes; *who may assume it* — the trust policy, garrison's safety check — is read on
//! every run). Off unless a process turns it on (`Sessions::reusing`); the API's explicit
//! validation always reads everything afresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use garrison_model::snapshot::{Offering, Zone};
use serde_json::Value;

type Facts = (Vec<Zone>, Vec<Offering>);
/// When an entry was read, and what.
type Entries<K, V> = Mutex<HashMap<K, (Instant, V)>>;

#[derive(Debug)]
pub struct Reuse {
    pub max_age: Duration,
    facts: Entries<(String, String), Facts>,
    permissions: Entries<(String, String), Vec<Arc<Value>>>,
}

/// Entries kept at most per cache; beyond, it starts over.
const KEPT: usize = 50_000;

fn fresh<K: Clone + Eq + std::hash::Hash, V: Clone>(m: &Entries<K, V>, k: &K, max_age: Duration) -> Option<V> {
    m.lock().expect("reuse").get(k).filter(|(at, _)| at.elapsed() < max_age).map(|(_, v)| v.clone())
}

fn keep<K: Eq + std::hash::Hash, V>(m: &Entries<K, V>, k: K, v: V) {
    let mut m = m.lock().expect("reuse");
    if m.len() >= KEPT {
        m.clear();
    }
    m.insert(k, (Instant::now(), v));
}

impl Reuse {
    pub fn new(max_age: Duration) -> Reuse {
        Reuse { max_age, facts: Mutex::default(), permissions: Mutex::default() }
    }

    /// Zones and appliance-type offerings of (AWS account, region), if read recently.
    pub fn facts(&self, account: &str, region: &str) -> Option<Facts> {
        fresh(&self.facts, &(account.to_string(), region.to_string()), self.max_age)
    }

    pub fn keep_facts(&self, account: &str, region: &str, facts: Facts) {
        keep(&self.facts, (account.to_string(), region.to_string()), facts);
    }

    /// A role's permission documents, if read recently under this `version` (the
    /// deployment's and credential's state: a change reads them again).
    pub fn permissions(&self, role_arn: &str, version: &str) -> Option<Vec<Arc<Value>>> {
        fresh(&self.permissions, &(role_arn.to_string(), version.to_string()), self.max_age)
    }

    pub fn keep_permissions(&self, role_arn: &str, version: &str, docs: Vec<Arc<Value>>) {
        keep(&self.permissions, (role_arn.to_string(), version.to_string()), docs);
    }

    /// Forgets what is known of a role (after an access error, for instance).
    pub fn forget_role(&self, role_arn: &str) {
        self.permissions.lock().expect("reuse").retain(|(r, _), _| r != role_arn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_are_keyed_by_version() {
        let r = Reuse::new(Duration::from_millis(50));
        r.keep_permissions("arn:role", "v1", vec![Arc::new(Value::Null)]);
        assert_eq!(r.permissions("arn:role", "v1"), Some(vec![Arc::new(Value::Null)]));
        assert_eq!(r.permissions("arn:role", "v2"), None, "another version reads afresh");
        r.keep_facts("1", "us-east-1", (vec![], vec![]));
        assert!(r.facts("1", "us-east-1").is_some() && r.facts("1", "eu-west-1").is_none());
        r.forget_role("arn:role");
        assert_eq!(r.permissions("arn:role", "v1"), None);
        r.keep_permissions("arn:role", "v1", vec![]);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(r.permissions("arn:role", "v1"), None, "expired");
        assert!(r.facts("1", "us-east-1").is_none(), "expired");
    }
}
