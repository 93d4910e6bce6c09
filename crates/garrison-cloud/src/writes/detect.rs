//! Professional's account-level sensors: a GuardDuty detector and a Config recorder per
//! region, and VPC flow logs delivered to the audit bucket.

use aws_sdk_config::types::{ConfigurationRecorder, DeliveryChannel, RecordingGroup};
use aws_sdk_ec2::types::{FlowLogsResourceType, LogDestinationType, ResourceType, Tag, TagSpecification, TrafficType};

use super::{Created, Ctx, gone_ok};
use crate::CloudError;

pub async fn detector(c: &Ctx<'_>) -> Result<Created, CloudError> {
    let mut req = c.aws.guardduty().create_detector().enable(true);
    for (k, v) in &c.tags {
        req = req.tags(k, v);
    }
    let out = c.call("guardduty", "CreateDetector", &c.region, req.send()).await?;
    let id = out
        .detector_id()
        .ok_or_else(|| CloudError::terminal("guardduty", "CreateDetector", "EmptyResponse", "no id"))?;
    Ok(Created { id: id.into(), arn: None })
}

pub async fn delete_detector(c: &Ctx<'_>, id: &str) -> Result<(), CloudError> {
    let r = c.call("guardduty", "DeleteDetector", id, c.aws.guardduty().delete_detector().detector_id(id).send()).await;
    match gone_ok(r.map(|_| ())) {
        // GuardDuty answers a detector that no longer exists with a bad request.
        Err(e) if e.code == "BadRequestException" => Ok(()),
        other => other,
    }
}

/// The recorder uses AWS Config's service-linked role; the delivery channel writes to the
/// audit bucket.
pub async fn recorder(c: &Ctx<'_>, name: &str, bucket: &str) -> Result<Created, CloudError> {
    let cs = c.aws.configservice();
    let role = format!("arn:aws:iam::{}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig", c.account);
    let rec = ConfigurationRecorder::builder()
        .name(name)
        .role_arn(role)
        .recording_group(RecordingGroup::builder().all_supported(true).include_global_resource_types(false).build())
        .build();
    c.call(
        "config",
        "PutConfigurationRecorder",
        name,
        cs.put_configuration_recorder().configuration_recorder(rec).send(),
    )
    .await?;
    let channel = DeliveryChannel::builder().name(name).s3_bucket_name(bucket).build();
    c.call("config", "PutDeliveryChannel", name, cs.put_delivery_channel().delivery_channel(channel).send()).await?;
    c.call(
        "config",
        "StartConfigurationRecorder",
        name,
        cs.start_configuration_recorder().configuration_recorder_name(name).send(),
    )
    .await?;
    Ok(Created { id: name.into(), arn: None })
}

pub async fn delete_recorder(c: &Ctx<'_>, name: &str) -> Result<(), CloudError> {
    let cs = c.aws.configservice();
    gone_ok(
        c.call(
            "config",
            "StopConfigurationRecorder",
            name,
            cs.stop_configuration_recorder().configuration_recorder_name(name).send(),
        )
        .await
        .map(|_| ()),
    )?;
    gone_ok(
        c.call(
            "config",
            "DeleteDeliveryChannel",
            name,
            cs.delete_delivery_channel().delivery_channel_name(name).send(),
        )
        .await
        .map(|_| ()),
    )?;
    gone_ok(
        c.call(
            "config",
            "DeleteConfigurationRecorder",
            name,
            cs.delete_configuration_recorder().configuration_recorder_name(name).send(),
        )
        .await
        .map(|_| ()),
    )
}

pub async fn flow_logs(c: &Ctx<'_>, vpc: &str, bucket: &str) -> Result<Created, CloudError> {
    let tags = TagSpecification::builder()
        .resource_type(ResourceType::VpcFlowLog)
        .set_tags(Some(c.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()))
        .build();
    let out = c
        .call(
            "ec2",
            "CreateFlowLogs",
            vpc,
            c.aws
                .ec2()
                .create_flow_logs()
                .resource_ids(vpc)
                .resource_type(FlowLogsResourceType::Vpc)
                .traffic_type(TrafficType::All)
                .log_destination_type(LogDestinationType::S3)
                .log_destination(format!("arn:aws:s3:::{bucket}"))
                .tag_specifications(tags)
                .send(),
        )
        .await?;
    if let Some(u) = out.unsuccessful().first() {
        let msg = u.error().and_then(|e| e.message()).unwrap_or("refused").to_string();
        return Err(CloudError::terminal("ec2", "CreateFlowLogs", "Unsuccessful", &msg));
    }
    let id = out
        .flow_log_ids()
        .first()
        .ok_or_else(|| CloudError::terminal("ec2", "CreateFlowLogs", "EmptyResponse", "no id"))?;
    Ok(Created { id: id.clone(), arn: None })
}

pub async fn delete_flow_logs(c: &Ctx<'_>, id: &str) -> Result<(), CloudError> {
    gone_ok(
        c.call("ec2", "DeleteFlowLogs", id, c.aws.ec2().delete_flow_logs().flow_log_ids(id).send()).await.map(|_| ()),
    )
}
