//! A token bucket per (AWS account, region, budget), so garrison stays inside each
//! account's API budget however many regions and kinds it reads at once. EC2 writes draw on
//! the budget AWS documents per action (`garrison_model::budget`: each action its own
//! request bucket of its category's size, and RunInstances, StartInstances, StopInstances
//! and TerminateInstances a resource bucket too); reads and other services on one bucket
//! per service. Waits are jittered so that many waiters do not wake in lockstep. With
//! several workers on one PostgreSQL the buckets live in the store (`with_shared`), so the
//! budget holds across them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use garrison_model::budget::{Bucket, SharedBudget, ec2_request, ec2_resource, take_token};
use rand::Rng;

/// (AWS account, region, budget family, action: "" for a whole service's budget).
type Key = (String, String, &'static str, &'static str);

/// The family of an EC2 action's request bucket, and of its resource bucket.
const EC2_REQUEST: &str = "ec2-request";
const EC2_RESOURCE: &str = "ec2-resource";

#[derive(Debug)]
pub struct Limiter {
    rate: f64,
    burst: f64,
    /// EC2 writes paced by the documented table (off: `unlimited`).
    documented: bool,
    buckets: Mutex<HashMap<Key, (f64, Instant)>>,
    shared: Option<Arc<dyn SharedBudget>>,
}

impl Default for Limiter {
    /// 20 calls/s with bursts of 50 for reads and other services: under EC2's documented
    /// 20/s with 100 for describe calls.
    fn default() -> Self {
        Limiter::new(20.0, 50.0)
    }
}

impl Limiter {
    /// `rate_per_sec`/`burst` for reads and every service but EC2's writes, which follow
    /// AWS's table.
    pub fn new(rate_per_sec: f64, burst: f64) -> Limiter {
        Limiter { rate: rate_per_sec, burst, documented: true, buckets: Mutex::new(HashMap::new()), shared: None }
    }

    /// The same budgets, kept in `shared` (the store) so that every process drawing on it
    /// stays inside one budget per account, region and service.
    pub fn with_shared(self, shared: Arc<dyn SharedBudget>) -> Limiter {
        Limiter { shared: Some(shared), ..self }
    }

    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// No pacing at all: for measuring garrison itself against an emulator.
    pub fn unlimited() -> Limiter {
        Limiter { rate: 1e9, burst: 1e9, documented: false, buckets: Mutex::new(HashMap::new()), shared: None }
    }

    fn budget(&self, family: &str, action: &str) -> Bucket {
        let unlimited = Bucket { capacity: 1e9, refill: 1e9 };
        match family {
            EC2_REQUEST if self.documented => ec2_request(action),
            EC2_RESOURCE if self.documented => ec2_resource(action).unwrap_or(unlimited),
            EC2_REQUEST | EC2_RESOURCE => unlimited,
            _ => Bucket { capacity: self.burst, refill: self.rate },
        }
    }

    /// How long the caller must wait for its token (tokens are reserved in arrival order).
    fn reserve(&self, key: Key, now: Instant) -> Duration {
        let b = self.budget(key.2, key.3);
        let mut buckets = self.buckets.lock().expect("limiter");
        let (tokens, last) = buckets.entry(key).or_insert((b.capacity, now));
        let (left, wait) = take_token(*tokens, now.duration_since(*last).as_secs_f64(), b.refill, b.capacity);
        (*tokens, *last) = (left, now);
        wait
    }

    async fn take(&self, account: &str, region: &str, family: &'static str, action: &'static str) -> Duration {
        let key = || (account.to_string(), region.to_string(), family, action);
        match &self.shared {
            Some(shared) => {
                let b = self.budget(family, action);
                let name = if action.is_empty() {
                    format!("{account}/{region}/{family}")
                } else {
                    format!("{account}/{region}/{family}/{action}")
                };
                match shared.take(&name, b.refill, b.capacity).await {
                    Ok(wait) => wait,
                    Err(err) => {
                        // The store is unreachable: pace locally rather than stop working.
                        tracing::warn!(error = %err, "shared rate budget unavailable; pacing locally");
                        self.reserve(key(), Instant::now())
                    }
                }
            }
            None => self.reserve(key(), Instant::now()),
        }
    }

    /// Waits for a read's (or another service's call's) token.
    pub async fn acquire(&self, account: &str, region: &str, service: &'static str) {
        let wait = self.take(account, region, service, "").await;
        sleep(wait).await;
    }

    /// Waits for a write's tokens: an EC2 action's own request bucket (and its resource
    /// bucket when it has one), any other service's budget.
    pub async fn acquire_write(&self, account: &str, region: &str, service: &'static str, action: &'static str) {
        let wait = if service == "ec2" {
            let request = self.take(account, region, EC2_REQUEST, action).await;
            let resource = match ec2_resource(action) {
                Some(_) => self.take(account, region, EC2_RESOURCE, action).await,
                None => Duration::ZERO,
            };
            request.max(resource)
        } else {
            self.take(account, region, service, "").await
        };
        sleep(wait).await;
    }
}

/// Sleeps out a reserved wait. Reservations already spread waiters one refill apart; the
/// jitter only breaks ties between processes sharing a budget, so it is small (at most 5% of
/// the wait and 20 ms): a proportional one made every paced call 10% later on average.
async fn sleep(wait: Duration) {
    if !wait.is_zero() {
        let cap = (wait / 20).min(Duration::from_millis(20));
        let jitter = cap.mul_f64(rand::rng().random_range(0.0..1.0));
        tokio::time::sleep(wait + jitter).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_paces() {
        let l = Limiter::new(10.0, 3.0);
        let t = Instant::now();
        let k = || ("1".to_string(), "us-east-1".to_string(), "ec2", "");
        let waits: Vec<Duration> = (0..5).map(|_| l.reserve(k(), t)).collect();
        assert_eq!(&waits[..3], &[Duration::ZERO; 3]);
        assert_eq!(waits[3], Duration::from_millis(100));
        assert_eq!(waits[4], Duration::from_millis(200));
        // Other keys have their own budget.
        assert_eq!(l.reserve(("1".into(), "eu-west-1".into(), "ec2", ""), t), Duration::ZERO);
        // Time refills the bucket.
        assert_eq!(l.reserve(k(), t + Duration::from_secs(1)), Duration::ZERO);
    }

    #[test]
    fn each_ec2_write_has_its_own_documented_bucket() {
        let l = Limiter::default();
        let t = Instant::now();
        let k = |family, action| ("1".to_string(), "us-east-1".to_string(), family, action);
        // RunInstances: 5 at once, then one every half second.
        let waits: Vec<u128> = (0..7).map(|_| l.reserve(k(EC2_REQUEST, "RunInstances"), t).as_millis()).collect();
        assert_eq!(waits, [0, 0, 0, 0, 0, 500, 1000]);
        // Its resource bucket holds 1,000 instances.
        assert!((0..1000).all(|_| l.reserve(k(EC2_RESOURCE, "RunInstances"), t).is_zero()));
        assert_eq!(l.reserve(k(EC2_RESOURCE, "RunInstances"), t), Duration::from_millis(500));
        // A mutating action: 50 at once then 5/s, untouched by RunInstances' queue.
        let waits: Vec<Duration> = (0..51).map(|_| l.reserve(k(EC2_REQUEST, "CreateSecurityGroup"), t)).collect();
        assert!(waits[..50].iter().all(Duration::is_zero));
        assert_eq!(waits[50], Duration::from_millis(200));
        // Another mutating action is a bucket of its own.
        assert_eq!(l.reserve(k(EC2_REQUEST, "CreateNetworkAcl"), t), Duration::ZERO);
        // Unlimited paces nothing.
        let u = Limiter::unlimited();
        assert!((0..100).all(|_| u.reserve(k(EC2_REQUEST, "RunInstances"), t).is_zero()));
    }
}
