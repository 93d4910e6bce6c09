//! A rate budget several processes share. AWS meters API calls per account (and region),
//! not per garrison process: when several workers act in one account — two deployments
//! of it, a reconcile and the collector — their calls must come out of one bucket. The
//! store keeps that bucket (garrison-store); the AWS edge (garrison-cloud) draws on it.
//! The trait lives here, in the pure crate, so neither edge depends on the other.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub type TakeFuture<'a> = Pin<Box<dyn Future<Output = Result<Duration, String>> + Send + 'a>>;

pub trait SharedBudget: Send + Sync + std::fmt::Debug {
    /// Takes one token from the token bucket `key` (refilled at `rate_per_sec`, holding at
    /// most `burst`), and says how long the caller must wait before its call: tokens are
    /// reserved in arrival order, so a wait is a place in the queue, not a retry.
    fn take<'a>(&'a self, key: &'a str, rate_per_sec: f64, burst: f64) -> TakeFuture<'a>;
}

/// The token bucket arithmetic: `tokens` left `elapsed_secs` ago, refilled since, one
/// taken. Returns the tokens left (negative: owed to callers already queued) and the wait.
pub fn take_token(tokens: f64, elapsed_secs: f64, rate_per_sec: f64, burst: f64) -> (f64, Duration) {
    let refilled = (tokens + elapsed_secs.max(0.0) * rate_per_sec).min(burst);
    let left = refilled - 1.0;
    let wait = if left >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-left / rate_per_sec) };
    (left, wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_bursts_then_queues_callers_at_its_rate() {
        let (mut tokens, mut waits) = (3.0, vec![]);
        for _ in 0..5 {
            let (left, wait) = take_token(tokens, 0.0, 10.0, 3.0);
            tokens = left;
            waits.push(wait.as_millis());
        }
        assert_eq!(waits, [0, 0, 0, 100, 200]);
        // Refill never exceeds the burst, however long the bucket was idle.
        assert_eq!(take_token(0.0, 3600.0, 10.0, 3.0).0, 2.0);
        // A clock that went backwards refills nothing.
        assert_eq!(take_token(1.0, -1.0, 10.0, 3.0).0, 0.0);
    }
}
