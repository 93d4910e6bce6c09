//! Every attempt at an AWS call, counted by service and operation (an SDK interceptor on
//! every client garrison builds): the evidence for "no per-resource calls", the figures of
//! the benchmarks, and later the metrics.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_ec2::config::interceptors::{BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef};
use aws_sdk_ec2::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

#[derive(Clone, Debug, Default)]
pub struct CallLog {
    counts: Arc<Mutex<BTreeMap<(String, String), u64>>>,
}

impl CallLog {
    pub fn record(&self, service: &str, operation: &str) {
        *self.counts.lock().expect("call log").entry((service.to_string(), operation.to_string())).or_default() += 1;
    }

    /// Attempts per (service, operation).
    pub fn snapshot(&self) -> BTreeMap<(String, String), u64> {
        self.counts.lock().expect("call log").clone()
    }

    pub fn total(&self) -> u64 {
        self.counts.lock().expect("call log").values().sum()
    }

    pub fn count(&self, operation: &str) -> u64 {
        self.counts.lock().expect("call log").iter().filter(|((_, op), _)| op == operation).map(|(_, n)| n).sum()
    }

    pub fn reset(&self) {
        self.counts.lock().expect("call log").clear();
    }
}

#[derive(Debug)]
pub struct Counter(pub CallLog);

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "garrison-call-counter"
    }

    fn read_before_attempt(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            self.0.record(m.service(), m.name());
        }
        Ok(())
    }

    /// Every attempt's outcome, for `/metrics` (`garrison_aws_calls_total`).
    fn read_after_attempt(
        &self,
        ctx: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            let outcome = match ctx.response().map(|r| r.status().as_u16()) {
                Some(s) if s < 400 => "ok",
                Some(429) => "throttled",
                Some(s) if s < 500 => "client_error",
                Some(_) => "server_error",
                None => "no_response",
            };
            metrics::counter!("garrison_aws_calls_total", "service" => m.service().to_ascii_lowercase(), "operation" => m.name().to_string(), "outcome" => outcome)
                .increment(1);
        }
        Ok(())
    }
}
