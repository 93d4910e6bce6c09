//! CloudFormation stacks of garrison's role template, as a customer (or `onboard`) runs them.

use std::time::{Duration, Instant};

use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::types::{Capability, Parameter, Stack, StackStatus};

use crate::{Aws, CloudError};

#[derive(Debug, Clone)]
pub struct RoleStack {
    pub stack_id: String,
    pub role_arn: String,
    pub role_name: String,
}

/// A stack as found: its status, the ExternalId it was made with, its description (which
/// names the role version) and, once complete, the role.
#[derive(Debug, Clone)]
pub struct FoundStack {
    pub status: String,
    pub external_id: Option<String>,
    pub description: String,
    pub role: Option<RoleStack>,
}

/// The AWS account the credentials act in (STS GetCallerIdentity).
pub async fn caller_account(aws: &Aws) -> Result<String, CloudError> {
    let id = aws
        .sts()
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("sts", "GetCallerIdentity", e))?;
    Ok(id.account().unwrap_or_default().to_string())
}

fn role_of(st: &Stack) -> RoleStack {
    let out = |k: &str| {
        st.outputs()
            .iter()
            .find(|o| o.output_key() == Some(k))
            .and_then(|o| o.output_value())
            .unwrap_or_default()
            .to_string()
    };
    RoleStack {
        stack_id: st.stack_id().unwrap_or_default().to_string(),
        role_arn: out("RoleARN"),
        role_name: out("IAMRole"),
    }
}

fn complete(s: Option<&StackStatus>) -> bool {
    matches!(s, Some(StackStatus::CreateComplete | StackStatus::UpdateComplete))
}

/// The stack called `name`, if there is one that is not deleted.
pub async fn find_stack(aws: &Aws, name: &str) -> Result<Option<FoundStack>, CloudError> {
    let d = match aws.cloudformation().describe_stacks().stack_name(name).send().await {
        Ok(d) => d,
        // "Stack with id X does not exist" is a ValidationError, not a NotFound code.
        Err(e) if e.as_service_error().and_then(|s| s.message()).is_some_and(|m| m.contains("does not exist")) => {
            return Ok(None);
        }
        Err(e) => return Err(CloudError::from_sdk("cloudformation", "DescribeStacks", e)),
    };
    let Some(st) = d.stacks().iter().find(|s| s.stack_status() != Some(&StackStatus::DeleteComplete)) else {
        return Ok(None);
    };
    Ok(Some(FoundStack {
        status: st.stack_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
        external_id: st
            .parameters()
            .iter()
            .find(|p| p.parameter_key() == Some("ExternalId"))
            .and_then(|p| p.parameter_value())
            .map(str::to_string),
        description: st.description().unwrap_or_default().to_string(),
        role: complete(st.stack_status()).then(|| role_of(st)),
    }))
}

fn external_id_param(external_id: &str) -> Parameter {
    Parameter::builder().parameter_key("ExternalId").parameter_value(external_id).build()
}

/// Starts creating `name` from `template_body` with the ExternalId parameter.
pub async fn start_create(aws: &Aws, name: &str, template_body: &str, external_id: &str) -> Result<String, CloudError> {
    let created = aws
        .cloudformation()
        .create_stack()
        .stack_name(name)
        .template_body(template_body)
        .parameters(external_id_param(external_id))
        .capabilities(Capability::CapabilityIam)
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("cloudformation", "CreateStack", e))?;
    Ok(created.stack_id().unwrap_or_default().to_string())
}

/// Starts updating `name` to `template_body` (a newer role version, another external id).
pub async fn start_update(aws: &Aws, name: &str, template_body: &str, external_id: &str) -> Result<(), CloudError> {
    aws.cloudformation()
        .update_stack()
        .stack_name(name)
        .template_body(template_body)
        .parameters(external_id_param(external_id))
        .capabilities(Capability::CapabilityIam)
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("cloudformation", "UpdateStack", e))?;
    Ok(())
}

/// Waits (bounded) for `name` to finish creating or updating, telling `progress` the
/// status and the number of resources done each time it looks; returns its role outputs.
pub async fn wait_stack(
    aws: &Aws,
    name: &str,
    wait: Duration,
    mut progress: impl FnMut(&str, usize),
) -> Result<RoleStack, CloudError> {
    let cf = aws.cloudformation();
    let deadline = Instant::now() + wait;
    loop {
        let d = cf
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| CloudError::from_sdk("cloudformation", "DescribeStacks", e))?;
        let st = d.stacks().first().ok_or_else(|| {
            CloudError::terminal("cloudformation", "DescribeStacks", "NotFound", "the stack vanished")
        })?;
        let status = st.stack_status().map(|s| s.as_str()).unwrap_or("UNKNOWN");
        let done = match cf.describe_stack_resources().stack_name(name).send().await {
            Ok(r) => r
                .stack_resources()
                .iter()
                .filter(|r| r.resource_status().is_some_and(|s| s.as_str().ends_with("_COMPLETE")))
                .count(),
            Err(_) => 0,
        };
        progress(status, done);
        if complete(st.stack_status()) {
            return Ok(role_of(st));
        }
        let in_progress = status.ends_with("_IN_PROGRESS") && !status.contains("ROLLBACK");
        if !in_progress || Instant::now() >= deadline {
            let reason = st.stack_status_reason().unwrap_or(if in_progress {
                "still in progress when the wait ran out"
            } else {
                "the stack did not complete"
            });
            return Err(CloudError::terminal("cloudformation", "CreateStack", status, reason));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Creates `name` and waits for it (what a customer does by hand in the console).
pub async fn create_role_stack(
    aws: &Aws,
    name: &str,
    template_body: &str,
    external_id: &str,
    wait: Duration,
) -> Result<RoleStack, CloudError> {
    start_create(aws, name, template_body, external_id).await?;
    wait_stack(aws, name, wait, |_, _| {}).await
}
