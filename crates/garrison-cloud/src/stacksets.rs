//! A service-managed CloudFormation StackSet of garrison's role, rolled out from an
//! organization's management account to the accounts of chosen organizational units
//! (`garrison onboard --organization`).

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
    pub reason: String,
    /// The organizational unit it was deployed through, where AWS says.
    pub unit: Option<String>,
}

fn err<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    op: &'static str,
) -> impl Fn(aws_sdk_cloudformation::error::SdkError<E, R>) -> CloudError {
    move |e| CloudError::from_sdk("cloudformation", op, e)
}

/// Creates the StackSet unless it exists; true when it was created. Automatic deployment
/// is on, so accounts that join the units later get the role without a re-run.
pub async fn ensure(aws: &Aws, name: &str, template_body: &str, external_id: &str) -> Result<bool, CloudError> {
    ensure_with(aws, &Journal::default(), name, template_body, external_id, true).await
}

/// `ensure`, choosing automatic deployment: an enrollment places each instance itself
/// (AWS's own would also reach accounts the enrollment excludes).
pub async fn ensure_with(
    aws: &Aws,
    journal: &Journal,
    name: &str,
    template_body: &str,
    external_id: &str,
    auto: bool,
) -> Result<bool, CloudError> {
    let cf = aws.cloudformation();
    match cf.describe_stack_set().stack_set_name(name).send().await {
        Ok(_) => return Ok(false),
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("StackSetNotFoundException") => {}
        Err(e) => return Err(CloudError::from_sdk("cloudformation", "DescribeStackSet", e)),
    }
    let create = cf
        .create_stack_set()
        .stack_set_name(name)
        .description("garrison's IAM role for each account of the organization's chosen units")
        .template_body(template_body)
        .parameters(Parameter::builder().parameter_key("ExternalId").parameter_value(external_id).build())
        .capabilities(Capability::CapabilityNamedIam)
        .permission_model(PermissionModels::ServiceManaged)
        .auto_deployment(AutoDeployment::builder().enabled(auto).retain_stacks_on_account_removal(false).build())
        .send();
    journal.write(aws, "organization/stack_set", "cloudformation", "CreateStackSet", name, create).await?;
    Ok(true)
}

/// Deploys the StackSet to every account of `units` in `region` (accounts that have it
/// already are left alone) and waits (bounded) for the operation to finish.
pub async fn deploy(aws: &Aws, name: &str, units: &[String], region: &str, wait: Duration) -> Result<(), CloudError> {
    let op = aws
        .cloudformation()
        .create_stack_instances()
        .stack_set_name(name)
        .deployment_targets(DeploymentTargets::builder().set_organizational_unit_ids(Some(units.to_vec())).build())
        .regions(region)
        .send()
        .await
        .map_err(err("CreateStackInstances"))?;
    finish(aws, name, op.operation_id().unwrap_or_default(), "CreateStackInstances", wait).await
}

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
                reason: s.status_reason().unwrap_or_default().to_string(),
                unit: s.organizational_unit_id().map(str::to_string),
            });
        }
    }
    out.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
    Ok(out)
}
