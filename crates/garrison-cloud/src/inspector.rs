//! Inspector's findings read back (`ListFindings`), for the backfill of what the event
//! feed may have missed. Each is handed on in the shape of the `detail` of an "Inspector2
//! Finding" event, so that one reader (`garrison_model::finding::observe`) serves both.

use aws_sdk_inspector2::primitives::{DateTime, DateTimeFormat};
use aws_sdk_inspector2::types::{DateFilter, FilterCriteria, Finding, StringComparison, StringFilter};
use serde_json::{Value, json};

use crate::Aws;
use crate::error::CloudError;

/// Inspector findings of `account` in the session's region, updated at or after
/// `since_ms` (all of them when `None`), each as an EventBridge event.
pub async fn findings(aws: &Aws, account: &str, since_ms: Option<i64>) -> Result<Vec<Value>, CloudError> {
    let mut criteria = FilterCriteria::builder().aws_account_id(
        StringFilter::builder()
            .comparison(StringComparison::Equals)
            .value(account)
            .build()
            .map_err(|e| CloudError::terminal("inspector2", "ListFindings", "InvalidFilter", &e.to_string()))?,
    );
    if let Some(ms) = since_ms {
        criteria = criteria.updated_at(DateFilter::builder().start_inclusive(DateTime::from_millis(ms)).build());
    }
    let region = aws.region();
    let mut out = vec![];
    let mut stream =
        aws.inspector2().list_findings().filter_criteria(criteria.build()).max_results(100).into_paginator().send();
    loop {
        aws.pace("inspector2").await;
        match stream.next().await {
            None => break,
            Some(Err(e)) => return Err(CloudError::from_sdk("inspector2", "ListFindings", e)),
            Some(Ok(page)) => out.extend(page.findings().iter().map(|f| event(f, &region))),
        }
    }
    Ok(out)
}

fn time(t: &DateTime) -> String {
    t.fmt(DateTimeFormat::DateTime).unwrap_or_default()
}

/// The event EventBridge would carry for `f`.
fn event(f: &Finding, region: &str) -> Value {
    let resources: Vec<Value> = f
        .resources()
        .iter()
        .map(|r| {
            let mut v = json!({"type": r.r#type().as_str(), "id": r.id()});
            if let Some(reg) = r.region() {
                v["region"] = json!(reg);
            }
            if let Some(vpc) = r.details().and_then(|d| d.aws_ec2_instance()).and_then(|i| i.vpc_id()) {
                v["details"] = json!({"awsEc2Instance": {"vpcId": vpc}});
            }
            v
        })
        .collect();
    let mut detail = json!({
        "findingArn": f.finding_arn(),
        "awsAccountId": f.aws_account_id(),
        "type": f.r#type().as_str(),
        "title": f.title(),
        "severity": f.severity().as_str(),
        "status": f.status().as_str(),
        "firstObservedAt": time(f.first_observed_at()),
        "lastObservedAt": time(f.last_observed_at()),
        "resources": resources,
    });
    if let Some(score) = f.inspector_score() {
        detail["inspectorScore"] = json!(score);
    }
    json!({"source": "aws.inspector2", "detail-type": "Inspector2 Finding", "region": region, "detail": detail})
}
