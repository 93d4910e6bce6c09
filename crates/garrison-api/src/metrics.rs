//! `/metrics` in the Prometheus text format: what the engine and the AWS layer count
//! (`garrison_aws_calls_total`, `garrison_reconcile_duration_seconds`, the collector's
//! messages and lag), plus gauges read from the store at each scrape (deployments by status,
//! removals pending). Aggregates only: no tenant, deployment or resource id is a label.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use garrison_model::deployment::StatusKind;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;

const SECONDS_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first use (None if another one was installed first).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}

/// A worker's `/metrics` (no store gauges: those come from the API servers).
pub async fn worker_scrape() -> Response {
    match handle() {
        Some(h) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], h.render()).into_response(),
        None => {
            (StatusCode::SERVICE_UNAVAILABLE, "another metrics recorder is installed in this process\n").into_response()
        }
    }
}

pub async fn scrape(State(s): State<AppState>) -> Response {
    let Some(h) = handle() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "another metrics recorder is installed in this process\n")
            .into_response();
    };
    match s.store.all_deployments().await {
        Ok(all) => {
            for kind in [StatusKind::New, StatusKind::Ok, StatusKind::Warning, StatusKind::Error] {
                let n = all.iter().filter(|d| d.status.status == kind).count();
                let label =
                    serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                metrics::gauge!("garrison_deployments", "status" => label).set(n as f64);
            }
        }
        Err(err) => tracing::warn!(error = %err, "metrics: cannot count deployments"),
    }
    if let Ok(r) = s.store.removals().await {
        metrics::gauge!("garrison_removals_pending").set(r.len() as f64);
    }
    match s.store.finding_counts().await {
        Ok(counts) => {
            // Every series, so that one whose last finding moved on reads 0, not its old count.
            use garrison_model::finding::{Severity, Source};
            for source in [Source::Guardduty, Source::Inspector2] {
                for severity in Severity::ALL {
                    for status in ["active", "resolved"] {
                        metrics::gauge!("garrison_findings", "source" => source.as_str(), "severity" => severity.as_str(), "status" => status)
                            .set(0.0);
                    }
                }
            }
            for (source, severity, status, n) in counts {
                metrics::gauge!("garrison_findings", "source" => source, "severity" => severity, "status" => status)
                    .set(n as f64);
            }
        }
        Err(err) => tracing::warn!(error = %err, "metrics: cannot count findings"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], h.render()).into_response()
}

/// A worker's own `/metrics` listener (no API routes, no token), with the API's timeouts and
/// connection cap, so that a scraper cannot hold the worker either.
pub async fn serve_worker(
    listener: tokio::net::TcpListener,
    tls: Option<std::sync::Arc<crate::tls::Tls>>,
) -> std::io::Result<()> {
    let app = axum::Router::new().route("/metrics", axum::routing::get(worker_scrape));
    crate::server::serve_tls(listener, app, Default::default(), tls, std::future::pending()).await
}
