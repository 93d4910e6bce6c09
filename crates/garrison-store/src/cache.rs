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

/// The most deployments kept (a few MB): the cache serves the hot ones, and the server's
/// memory does not grow with the store. Past it, an arbitrary entry makes room (the hash
/// map's order is random per process), which keeps a hot working set mostly cached
/// without bookkeeping on every read.
pub const CAPACITY: usize = 4096;

fn insert(e: &mut HashMap<String, Arc<Deployment>>, d: Deployment) {
    if e.len() >= CAPACITY && !e.contains_key(&d.id) {
        let victim = e.keys().next().cloned();
        if let Some(v) = victim {
            e.remove(&v);
        }
    }
    e.insert(d.id.clone(), Arc::new(d));
}

#[derive(Default, Debug)]
pub struct DeploymentCache {
    entries: RwLock<HashMap<String, Arc<Deployment>>>,
    /// The counter value the entries are known to be consistent with.
    generation: AtomicI64,
}

impl DeploymentCache {
    pub fn generation(&self) -> i64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Deployment>> {
        self.entries.read().expect("cache lock").get(id).cloned()
    }

    /// Caches a value read from the database at generation `seen`, unless a change
    /// arrived meanwhile (then the read may be stale and is not kept).
    pub fn fill(&self, seen: i64, d: Deployment) {
        let mut e = self.entries.write().expect("cache lock");
        if self.generation() == seen && seen != i64::MIN {
            insert(&mut e, d);
        }
    }

    /// After this process's own write committed at generation `new`.
    pub fn wrote(&self, new: i64, id: &str, value: Option<Deployment>) {
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
            Some(d) => insert(&mut e, d),
            None => {
                e.remove(id);
            }
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

    #[test]
    fn own_writes_are_read_back_and_foreign_writes_clear() {
        let c = DeploymentCache::default();
        c.wrote(1, "a", Some(dep("a", 1)));
        assert_eq!(c.get("a").unwrap().version, 1);
        c.fill(1, dep("b", 1));
        assert!(c.get("b").is_some());
        // Generation 2 was written elsewhere; our write is 3.
        c.wrote(3, "a", Some(dep("a", 2)));
        assert!(c.get("b").is_none(), "entries from before the foreign write are dropped");
        assert_eq!(c.get("a").unwrap().version, 2);
        // The poller saw generation 5; our late write at 4 must not be cached.
        c.observed(5);
        c.wrote(4, "a", Some(dep("a", 3)));
        assert!(c.get("a").is_none());
        // A read that raced a change is not kept.
        c.fill(4, dep("c", 1));
        assert!(c.get("c").is_none());
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let c = DeploymentCache::default();
        for i in 0..(CAPACITY + 500) {
            c.fill(0, dep(&format!("d{i}"), 1));
        }
        assert_eq!(c.entries.read().unwrap().len(), CAPACITY);
        // The newest is always kept, and an update of a cached entry evicts nothing.
        assert!(c.get(&format!("d{}", CAPACITY + 499)).is_some());
        let kept: Vec<String> = c.entries.read().unwrap().keys().cloned().collect();
        c.wrote(1, &kept[0], Some(dep(&kept[0], 2)));
        assert_eq!(c.entries.read().unwrap().len(), CAPACITY);
        assert_eq!(c.get(&kept[0]).unwrap().version, 2);
    }
}
