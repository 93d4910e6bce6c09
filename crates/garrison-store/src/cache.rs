//! A read cache of deployments. GET deployment is the hottest call, and a round trip to the
//! database costs several times what the rest of the request does.
//!
//! Coherence: every write to `deployments` bumps a generation counter in the same
//! transaction. Writes made through this process update the cache at once (a client reads
//! its own writes); a background task polls the counter and drops the cache when another
//! process wrote, so a write made elsewhere is visible here within one poll interval.
//! Conditional updates always compare versions in the database, so the cache can never
//! cause a lost update.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use garrison_model::deployment::Deployment;
use sqlx::{AnyPool, Row};

/// How often the generation counter is polled.
pub const POLL: Duration = Duration::from_millis(100);

/// The most JSON kept, in bytes: about 11,000 deployments of the usual ~750 bytes, so the
/// deployments of a 10,000-account organization are all served from memory, and the
/// server's memory does not grow with the store past it. Past it, arbitrary entries make
/// room (the hash map's order is random per process), which keeps a hot working set mostly
/// cached without bookkeeping on every read.
pub const BUDGET: usize = 8 << 20;

/// One cached deployment, as GET answers it: its JSON (written by `Deployment`'s own
/// serializer, so parsing it gives the deployment back) and the account it belongs to.
/// Kept as bytes, not parsed: a third of the memory, and a GET sends them as they are.
#[derive(Clone, Debug)]
pub struct Cached {
    pub account_id: Arc<str>,
    pub json: bytes::Bytes,
}

impl Cached {
    pub fn of(d: &Deployment) -> Cached {
        let json = serde_json::to_vec(d).expect("a deployment always serializes");
        Cached { account_id: d.account_id.as_str().into(), json: json.into() }
    }

    /// A deployment's JSON as it was just written to its row: the cache keeps those bytes,
    /// not a second serialization.
    pub fn stored(account_id: &str, body: String) -> Cached {
        Cached { account_id: account_id.into(), json: body.into_bytes().into() }
    }

    fn size(&self) -> usize {
        self.json.len() + self.account_id.len()
    }
}

#[derive(Default, Debug)]
struct Entries {
    map: HashMap<String, Cached>,
    /// The sizes of the entries in `map`, summed.
    bytes: usize,
}

impl Entries {
    fn insert(&mut self, id: &str, c: Cached) {
        self.remove(id);
        while self.bytes + c.size() > BUDGET {
            let Some(victim) = self.map.keys().next().cloned() else { break };
            self.remove(&victim);
        }
        self.bytes += c.size();
        self.map.insert(id.to_string(), c);
    }

    fn remove(&mut self, id: &str) {
        if let Some(old) = self.map.remove(id) {
            self.bytes -= old.size();
        }
    }

    fn clear(&mut self) {
        self.map.clear();
        self.bytes = 0;
    }
}

#[derive(Default, Debug)]
pub struct DeploymentCache {
    entries: RwLock<Entries>,
    /// The counter value the entries are known to be consistent with.
    generation: AtomicI64,
}

impl DeploymentCache {
    pub fn generation(&self) -> i64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn get(&self, id: &str) -> Option<Cached> {
        self.entries.read().expect("cache lock").map.get(id).cloned()
    }

    /// Caches a value read from the database at generation `seen`, unless a change
    /// arrived meanwhile (then the read may be stale and is not kept).
    pub fn fill(&self, seen: i64, id: &str, c: Cached) {
        let mut e = self.entries.write().expect("cache lock");
        if self.generation() == seen && seen != i64::MIN {
            e.insert(id, c);
        }
    }

    /// After this process's own write committed at generation `new`.
    pub fn wrote(&self, new: i64, id: &str, value: Option<Cached>) {
        let mut e = self.entries.write().expect("cache lock");
        let current = self.generation.load(Ordering::Acquire);
        if new <= current {
            // A later state was already observed; ours may be older than it.
            e.remove(id);
            return;
        }
        if current + 1 != new {
            // Someone else wrote in between: nothing cached can be trusted.
            e.clear();
        }
        match value {
            Some(c) => e.insert(id, c),
            None => e.remove(id),
        }
        self.generation.store(new, Ordering::Release);
    }

    fn observed(&self, current: i64) {
        if current != self.generation() {
            let mut e = self.entries.write().expect("cache lock");
            e.clear();
            self.generation.store(current, Ordering::Release);
        }
    }
}

pub async fn read_generation(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    let rows = sqlx::query("SELECT generation FROM change_counters WHERE name = 'deployments'").fetch_all(pool).await?;
    rows.first().map(|r| r.get(0)).ok_or(sqlx::Error::RowNotFound)
}

/// Runs `task` every `period` while the store is alive (`alive`: its cache, dropped with the
/// last handle of the store), outside any request. Nothing is started without a runtime.
pub(crate) fn every<F, Fut>(period: Duration, alive: Weak<DeploymentCache>, mut task: F)
where
    F: FnMut(Arc<DeploymentCache>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(cache) = alive.upgrade() else { return };
            task(cache).await;
        }
    });
}

/// Polls the counter while the cache is alive.
pub fn spawn_poller(pool: AnyPool, cache: Weak<DeploymentCache>) {
    every(POLL, cache, move |cache| {
        let pool = pool.clone();
        async move {
            match read_generation(&pool).await {
                Ok(g) => cache.observed(g),
                // Without a fresh counter the cache cannot be trusted.
                Err(e) => {
                    tracing::warn!(error = %e, "deployment cache: cannot read the change counter; dropping the cache");
                    cache.observed(i64::MIN)
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(id: &str, version: i64) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "id": id, "account_id": "1", "name": "n",
            "platform": {"type": "aws", "id": "123412341234", "monitor": {"enabled": false}},
            "mode": "none", "enabled": true, "discover": true, "scan": true, "scope": {"include": [], "exclude": []},
            "cloud_defender": {"enabled": false}, "credentials": [], "status": {"status": "new", "updated": 0},
            "created": {"at": 0, "by": "u"}, "modified": {"at": 0, "by": "u"}, "version": version, "is_control_tower": false
        }))
        .unwrap()
    }

    fn version(c: &DeploymentCache, id: &str) -> Option<i64> {
        c.get(id).map(|c| serde_json::from_slice::<Deployment>(&c.json).unwrap().version)
    }

    #[test]
    fn own_writes_are_read_back_and_foreign_writes_clear() {
        let c = DeploymentCache::default();
        c.wrote(1, "a", Some(Cached::of(&dep("a", 1))));
        assert_eq!(version(&c, "a"), Some(1));
        assert_eq!(&*c.get("a").unwrap().account_id, "1");
        c.fill(1, "b", Cached::of(&dep("b", 1)));
        assert!(c.get("b").is_some());
        // Generation 2 was written elsewhere; our write is 3.
        c.wrote(3, "a", Some(Cached::of(&dep("a", 2))));
        assert!(c.get("b").is_none(), "entries from before the foreign write are dropped");
        assert_eq!(version(&c, "a"), Some(2));
        // The poller saw generation 5; our late write at 4 must not be cached.
        c.observed(5);
        c.wrote(4, "a", Some(Cached::of(&dep("a", 3))));
        assert!(c.get("a").is_none());
        // A read that raced a change is not kept.
        c.fill(4, "c", Cached::of(&dep("c", 1)));
        assert!(c.get("c").is_none());
    }

    #[test]
    fn what_is_cached_is_the_deployment_as_its_serializer_writes_it() {
        let d = dep("a", 7);
        let c = Cached::of(&d);
        assert_eq!(c.json, serde_json::to_vec(&d).unwrap());
        assert_eq!(serde_json::from_slice::<Deployment>(&c.json).unwrap(), d);
    }

    #[test]
    fn the_cache_never_holds_more_than_its_budget() {
        let c = DeploymentCache::default();
        let each = Cached::of(&dep("d00000", 1)).size();
        let fits = BUDGET / each;
        for i in 0..(fits + 500) {
            let id = format!("d{i:05}");
            c.fill(0, &id, Cached::of(&dep(&id, 1)));
        }
        let (len, bytes) = {
            let e = c.entries.read().unwrap();
            (e.map.len(), e.bytes)
        };
        assert_eq!(len, fits);
        assert_eq!(bytes, fits * each);
        assert!(bytes <= BUDGET);
        // The newest is always kept, and an update of a cached entry evicts nothing.
        assert!(c.get(&format!("d{:05}", fits + 499)).is_some());
        let kept: String = c.entries.read().unwrap().map.keys().next().cloned().unwrap();
        c.wrote(1, &kept, Some(Cached::of(&dep(&kept, 2))));
        assert_eq!(c.entries.read().unwrap().map.len(), fits);
        assert_eq!(version(&c, &kept), Some(2));
        // Removing and clearing keep the sum true.
        c.wrote(2, &kept, None);
        assert_eq!(c.entries.read().unwrap().bytes, (fits - 1) * each);
        c.observed(9);
        assert_eq!(c.entries.read().unwrap().bytes, 0);
    }
}
