//! A service-managed CloudFormation StackSet of garrison's role, rolled out from an
//! organization's management account to the accounts of chosen organizational units
//! (an organization enrollment: `garrison_engine::enroll`).

use std::time::{Duration, Instant};

use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::types::{
    AccountFilterType, AutoDeployment, Capability, DeploymentTargets, Parameter, PermissionModels,
    StackSetOperationStatus,
};

use crate::writes::Journal;
use crate::{Aws, CloudError};

/// One account the StackSet reached, with the status of its stack instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub account: String,
    pub region: String,
    pub status: String,
    /// AWS's detailed status (SUCCEEDED, FAILED, RUNNING, PENDING, CANCELLED, INOPERABLE,
    /// SKIPPED_SUSPENDED_ACCOUNT), empty where it does not say.
    pub detail: String,
    pub reason: String,
    /// The organizational unit it was deployed through, where AWS says.
    pub unit: Option<String>,
}

impl Instance {
    /// Why the account's role may not be the StackSet's current one: any status but
    /// CURRENT (OUTDATED after a failed create or update, INOPERABLE after a failed delete)
    /// that is not an operation still running, with AWS's reason.
    pub fn problem(&self) -> Option<String> {
        if self.status == "CURRENT" || matches!(self.detail.as_str(), "RUNNING" | "PENDING") {
            return None;
        }
        let detail = if self.detail.is_empty() { String::new() } else { format!(" ({})", self.detail) };
        let reason = if self.reason.is_empty() { "AWS gives no reason" } else { self.reason.as_str() };
        Some(format!("stack instance {}{detail} in {}: {reason}", self.status, self.region))
    }
}

fn err<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    op: &'static str,
) -> impl Fn(aws_sdk_cloudformation::error::SdkError<E, R>) -> CloudError {
    move |e| CloudError::from_sdk("cloudformation", op, e)
}

/// What `ensure_with` found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    Created,
    /// It held another template or external id (an older role version): updated, and
    /// AWS updated every stack instance (the operation waited for).
    Updated,
    Current,
}

/// Whether the StackSet as described holds `template_body` (compared as JSON: AWS may
/// keep it with other spacing) with `external_id`.
fn holds(set: &aws_sdk_cloudformation::types::StackSet, template_body: &str, external_id: &str) -> bool {
    let json = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok();
    let same_template = match (set.template_body().and_then(json), json(template_body)) {
        (Some(a), Some(b)) => a == b,
        _ => set.template_body() == Some(template_body),
    };
    let same_id = set
        .parameters()
        .iter()
        .any(|p| p.parameter_key() == Some("ExternalId") && p.parameter_value() == Some(external_id));
    same_template && same_id
}

/// Creates the StackSet unless it exists, updates it when it holds another template or
/// external id (journaled, waiting up to `wait` for AWS to update every instance). `auto`:
/// AWS's automatic deployment (off for an enrollment, which places each instance itself:
/// AWS's own would also reach accounts the enrollment excludes).
pub async fn ensure_with(
    aws: &Aws,
    journal: &Journal,
    name: &str,
    template_body: &str,
    external_id: &str,
    auto: bool,
    wait: Duration,
) -> Result<Ensured, CloudError> {
    let cf = aws.cloudformation();
    match cf.describe_stack_set().stack_set_name(name).send().await {
        Ok(d) => {
            let Some(set) = d.stack_set() else { return Ok(Ensured::Current) };
            if holds(set, template_body, external_id) {
                return Ok(Ensured::Current);
            }
            // No targets: AWS updates every instance of the set.
            let update = cf
                .update_stack_set()
                .stack_set_name(name)
                .description(DESCRIPTION)
                .template_body(template_body)
                .parameters(Parameter::builder().parameter_key("ExternalId").parameter_value(external_id).build())
                .capabilities(Capability::CapabilityNamedIam)
                .send();
            let op =
                journal.write(aws, "organization/stack_set", "cloudformation", "UpdateStackSet", name, update).await?;
            finish(aws, name, op.operation_id().unwrap_or_default(), "UpdateStackSet", wait).await?;
            return Ok(Ensured::Updated);
        }
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("StackSetNotFoundException") => {}
        Err(e) => return Err(CloudError::from_sdk("cloudformation", "DescribeStackSet", e)),
    }
    let create = cf
        .create_stack_set()
        .stack_set_name(name)
        .description(DESCRIPTION)
        .template_body(template_body)
        .parameters(Parameter::builder().parameter_key("ExternalId").parameter_value(external_id).build())
        .capabilities(Capability::CapabilityNamedIam)
        .permission_model(PermissionModels::ServiceManaged)
        .auto_deployment(AutoDeployment::builder().enabled(auto).retain_stacks_on_account_removal(false).build())
        .send();
    journal.write(aws, "organization/stack_set", "cloudformation", "CreateStackSet", name, create).await?;
    Ok(Ensured::Created)
}

const DESCRIPTION: &str = "garrison's IAM role for each account of the organization's chosen units";

/// Exactly `accounts`, each in one of `units`: a service-managed StackSet targets units,
/// narrowed to the accounts by an intersection filter.
fn exactly(units: &[String], accounts: &[String]) -> DeploymentTargets {
    DeploymentTargets::builder()
        .set_organizational_unit_ids(Some(units.to_vec()))
        .set_accounts(Some(accounts.to_vec()))
        .account_filter_type(AccountFilterType::Intersection)
        .build()
}

/// Deploys the StackSet to exactly `accounts` (each in one of `units`: a service-managed
/// StackSet targets units, narrowed to the accounts by an intersection filter) and waits.
pub async fn deploy_accounts(
    aws: &Aws,
    journal: &Journal,
    name: &str,
    units: &[String],
    accounts: &[String],
    region: &str,
    wait: Duration,
) -> Result<(), CloudError> {
    let call = aws
        .cloudformation()
        .create_stack_instances()
        .stack_set_name(name)
        .deployment_targets(exactly(units, accounts))
        .regions(region)
        .send();
    let what = format!("{name} {}", accounts.join(","));
    let op = journal
        .write(aws, "organization/stack_instances", "cloudformation", "CreateStackInstances", &what, call)
        .await?;
    finish(aws, name, op.operation_id().unwrap_or_default(), "CreateStackInstances", wait).await
}

/// Removes the StackSet's instances from exactly `accounts` (garrison's role goes with them).
pub async fn remove_accounts(
    aws: &Aws,
    journal: &Journal,
    name: &str,
    units: &[String],
    accounts: &[String],
    region: &str,
    wait: Duration,
) -> Result<(), CloudError> {
    let call = aws
        .cloudformation()
        .delete_stack_instances()
        .stack_set_name(name)
        .deployment_targets(exactly(units, accounts))
        .regions(region)
        .retain_stacks(false)
        .send();
    let what = format!("{name} {}", accounts.join(","));
    let op = journal
        .write(aws, "organization/stack_instances", "cloudformation", "DeleteStackInstances", &what, call)
        .await?;
    finish(aws, name, op.operation_id().unwrap_or_default(), "DeleteStackInstances", wait).await
}

async fn finish(aws: &Aws, name: &str, id: &str, what: &'static str, wait: Duration) -> Result<(), CloudError> {
    let cf = aws.cloudformation();
    let deadline = Instant::now() + wait;
    loop {
        let d = cf
            .describe_stack_set_operation()
            .stack_set_name(name)
            .operation_id(id)
            .send()
            .await
            .map_err(err("DescribeStackSetOperation"))?;
        match d.stack_set_operation().and_then(|o| o.status().cloned()) {
            Some(StackSetOperationStatus::Succeeded) => return Ok(()),
            Some(StackSetOperationStatus::Running | StackSetOperationStatus::Queued) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            other => {
                let reason =
                    d.stack_set_operation().and_then(|o| o.status_reason()).unwrap_or("the operation did not succeed");
                return Err(CloudError::terminal(
                    "cloudformation",
                    what,
                    other.as_ref().map(|s| s.as_str()).unwrap_or("Unknown"),
                    reason,
                ));
            }
        }
    }
}

/// Every stack instance of the StackSet.
pub async fn instances(aws: &Aws, name: &str) -> Result<Vec<Instance>, CloudError> {
    let mut out = vec![];
    let mut pages = aws.cloudformation().list_stack_instances().stack_set_name(name).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(err("ListStackInstances"))?;
        for s in page.summaries() {
            out.push(Instance {
                account: s.account().unwrap_or_default().to_string(),
                region: s.region().unwrap_or_default().to_string(),
                status: s.status().map(|x| x.as_str().to_string()).unwrap_or_default(),
                detail: s
                    .stack_instance_status()
                    .and_then(|d| d.detailed_status())
                    .map(|x| x.as_str().to_string())
                    .unwrap_or_default(),
                reason: s.status_reason().unwrap_or_default().to_string(),
                unit: s.organizational_unit_id().map(str::to_string),
            });
        }
    }
    out.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(status: &str, detail: &str, reason: &str) -> Instance {
        Instance {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            status: status.into(),
            detail: detail.into(),
            reason: reason.into(),
            unit: None,
        }
    }

    #[test]
    fn a_failed_instance_is_named_with_its_reason_and_one_at_work_is_not() {
        assert_eq!(instance("CURRENT", "SUCCEEDED", "").problem(), None);
        assert_eq!(instance("OUTDATED", "RUNNING", "").problem(), None, "an update at work");
        assert_eq!(instance("OUTDATED", "PENDING", "").problem(), None);
        let denied =
            "Account 111122223333 should have 'AWSCloudFormationStackSetExecutionRole' role with trust relationship";
        assert_eq!(
            instance("OUTDATED", "FAILED", denied).problem().as_deref(),
            Some(format!("stack instance OUTDATED (FAILED) in us-east-1: {denied}").as_str())
        );
        assert_eq!(
            instance("INOPERABLE", "", "").problem().as_deref(),
            Some("stack instance INOPERABLE in us-east-1: AWS gives no reason")
        );
    }
}
