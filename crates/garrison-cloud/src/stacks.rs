//! CloudFormation stacks of garrison's role template, as a customer (or `onboard`) runs them.

use std::time::Duration;

use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};

use crate::{Aws, CloudError};

#[derive(Debug, Clone)]
pub struct RoleStack {
    pub stack_id: String,
    pub role_arn: String,
    pub role_name: String,
}

/// Creates `name` from `template_body` with the ExternalId parameter and waits (bounded)
/// for it to complete; returns its RoleARN and IAMRole outputs.
pub async fn create_role_stack(
    aws: &Aws,
    name: &str,
    template_body: &str,
    external_id: &str,
    wait: Duration,
) -> Result<RoleStack, CloudError> {
    let cf = aws.cloudformation();
    let created = cf
        .create_stack()
        .stack_name(name)
        .template_body(template_body)
        .parameters(Parameter::builder().parameter_key("ExternalId").parameter_value(external_id).build())
        .capabilities(Capability::CapabilityIam)
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("cloudformation", "CreateStack", e))?;
    let deadline = std::time::Instant::now() + wait;
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
        match st.stack_status() {
            Some(StackStatus::CreateComplete) => {
                let out = |k: &str| {
                    st.outputs()
                        .iter()
                        .find(|o| o.output_key() == Some(k))
                        .and_then(|o| o.output_value())
                        .unwrap_or_default()
                        .to_string()
                };
                return Ok(RoleStack {
                    stack_id: created.stack_id().unwrap_or_default().to_string(),
                    role_arn: out("RoleARN"),
                    role_name: out("IAMRole"),
                });
            }
            Some(StackStatus::CreateInProgress) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            other => {
                return Err(CloudError::terminal(
                    "cloudformation",
                    "CreateStack",
                    other.map(|s| s.as_str()).unwrap_or("Unknown"),
                    st.stack_status_reason().unwrap_or("the stack did not complete"),
                ));
            }
        }
    }
}
