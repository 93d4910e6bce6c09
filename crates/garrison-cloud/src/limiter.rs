//! A token bucket per (AWS account, region, service), so garrison stays inside each
//! account's API budget however many regions and kinds it reads at once. Waits are
//! jittered so that many waiters do not wake in lockstep. With several workers on one
//! PostgreSQL the buckets live in the store (`with_shared`), so the budget holds across them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use garrison_model::budget::{SharedBudget, take_token};
use rand::Rng;

/// (AWS account, region, service).
type Key = (String, String, &'static str);

/// The budget name of EC2's mutating calls.
pub const EC2_WRITES: &str = "ec2-writes";

#[derive(Debug)]
pub struct Limiter {
    rate: f64,
    burst: f64,
    /// (rate, burst) of EC2's mutating calls.
    writes: (f64, f64),
    buckets: Mutex<HashMap<Key, (f64, Instant)>>,
    shared: Option<Arc<dyn SharedBudget>>,
}

impl Default for Limiter {
    /// 20 calls/s with bursts of 50: under EC2's documented refill for describe calls.
    fn default() -> Self {
        Limiter::new(20.0, 50.0)
    }
}

impl Limiter {
    /// `rate_per_sec`/`burst` for reads; EC2 writes get a quarter of the rate and four times
    /// the burst (AWS documents 20/s with 100 for EC2 reads, 5/s with 200 for mutations).
    pub fn new(rate_per_sec: f64, burst: f64) -> Limiter {
        Limiter {
            rate: rate_per_sec,
            burst,
            writes: (rate_per_sec / 4.0, burst * 4.0),
            buckets: Mutex::new(HashMap::new()),
            shared: None,
        }
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
        Limiter { rate: 1e9, burst: 1e9, writes: (1e9, 1e9), buckets: Mutex::new(HashMap::new()), shared: None }
    }

    /// EC2 meters mutating calls apart from reads, with a larger bucket that refills more
    /// slowly (200, 5/s per account and region); garrison's writes use that budget.
    fn budget(&self, service: &str) -> (f64, f64) {
        if service == EC2_WRITES { self.writes } else { (self.rate, self.burst) }
    }

    /// How long the caller must wait for its token (tokens are reserved in arrival order).
    fn reserve(&self, key: Key, now: Instant) -> Duration {
        let (rate, burst) = self.budget(key.2);
        let mut b = self.buckets.lock().expect("limiter");
        let (tokens, last) = b.entry(key).or_insert((burst, now));
        let (left, wait) = take_token(*tokens, now.duration_since(*last).as_secs_f64(), rate, burst);
        (*tokens, *last) = (left, now);
        wait
    }

    pub async fn acquire(&self, account: &str, region: &str, service: &'static str) {
        let wait = match &self.shared {
            Some(shared) => {
                let (rate, burst) = self.budget(service);
                match shared.take(&format!("{account}/{region}/{service}"), rate, burst).await {
                    Ok(wait) => wait,
                    Err(err) => {
                        // The store is unreachable: pace locally rather than stop working.
                        tracing::warn!(error = %err, "shared rate budget unavailable; pacing locally");
                        self.reserve((account.to_string(), region.to_string(), service), Instant::now())
                    }
                }
            }
            None => self.reserve((account.to_string(), region.to_string(), service), Instant::now()),
        };
        if !wait.is_zero() {
            let jitter = rand::rng().random_range(0.0..0.2);
            tokio::time::sleep(wait.mul_f64(1.0 + jitter)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_paces() {
        let l = Limiter::new(10.0, 3.0);
        let t = Instant::now();
        let k = || ("1".to_string(), "us-east-1".to_string(), "ec2");
        let waits: Vec<Duration> = (0..5).map(|_| l.reserve(k(), t)).collect();
        assert_eq!(&waits[..3], &[Duration::ZERO; 3]);
        assert_eq!(waits[3], Duration::from_millis(100));
        assert_eq!(waits[4], Duration::from_millis(200));
        // Other keys have their own budget.
        assert_eq!(l.reserve(("1".into(), "eu-west-1".into(), "ec2"), t), Duration::ZERO);
        // Time refills the bucket.
        assert_eq!(l.reserve(k(), t + Duration::from_secs(1)), Duration::ZERO);
        // EC2 writes have their own, larger and slower budget.
        let w = || ("1".to_string(), "us-east-1".to_string(), EC2_WRITES);
        let waits: Vec<Duration> = (0..13).map(|_| l.reserve(w(), t)).collect();
        assert_eq!(&waits[..12], &[Duration::ZERO; 12]);
        assert_eq!(waits[12], Duration::from_millis(400));
    }
}
