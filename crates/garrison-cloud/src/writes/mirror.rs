//! VPC Traffic Mirroring (otis `span_port_enabled`): a filter and a target per IDS
//! appliance, and one session per protected network interface sending its packets there.

use aws_sdk_ec2::types::{ResourceType, TrafficDirection, TrafficMirrorRuleAction};
use garrison_model::protection::MIRROR_FILTER_RULE;

use super::network::{missing, tags};
use super::{Created, Ctx, gone_ok};
use crate::CloudError;

const DIRECTIONS: [TrafficDirection; 2] = [TrafficDirection::Ingress, TrafficDirection::Egress];

/// The filter with its accept-everything rule each way.
pub async fn filter(c: &Ctx<'_>, vpc: &str, token: &str) -> Result<Created, CloudError> {
    let out = c
        .call_made(
            "ec2",
            "CreateTrafficMirrorFilter",
            vpc,
            c.aws
                .ec2()
                .create_traffic_mirror_filter()
                .description(format!("garrison: what the IDS appliances of {vpc} are sent"))
                .client_token(token)
                .tag_specifications(tags(c, ResourceType::TrafficMirrorFilter))
                .send(),
            |o: &aws_sdk_ec2::operation::create_traffic_mirror_filter::CreateTrafficMirrorFilterOutput| {
                o.traffic_mirror_filter().and_then(|f| f.traffic_mirror_filter_id())
            },
        )
        .await?;
    let id = out
        .traffic_mirror_filter()
        .and_then(|f| f.traffic_mirror_filter_id())
        .ok_or_else(|| missing("CreateTrafficMirrorFilter", "filter"))?
        .to_string();
    for d in DIRECTIONS {
        rule(c, &id, d, token).await?;
    }
    Ok(Created { id, arn: None })
}

async fn rule(c: &Ctx<'_>, filter: &str, direction: TrafficDirection, token: &str) -> Result<(), CloudError> {
    let (number, action, source, destination) = MIRROR_FILTER_RULE;
    c.call(
        "ec2",
        "CreateTrafficMirrorFilterRule",
        filter,
        c.aws
            .ec2()
            .create_traffic_mirror_filter_rule()
            .traffic_mirror_filter_id(filter)
            .traffic_direction(direction.clone())
            .rule_number(number)
            .rule_action(TrafficMirrorRuleAction::from(action))
            .source_cidr_block(source)
            .destination_cidr_block(destination)
            .client_token(format!("{token}-{}", direction.as_str()))
            .send(),
    )
    .await
    .map(|_| ())
}

/// Gives a filter back the rule of each direction it has none in (a create cut off between
/// the filter and its rules, or a rule someone deleted).
pub async fn mend_filter(c: &Ctx<'_>, id: &str) -> Result<(), CloudError> {
    c.aws.pace("ec2").await;
    let out = c
        .aws
        .ec2()
        .describe_traffic_mirror_filters()
        .traffic_mirror_filter_ids(id)
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("ec2", "DescribeTrafficMirrorFilters", e))?;
    let f = out.traffic_mirror_filters().first().ok_or_else(|| {
        CloudError::terminal("ec2", "DescribeTrafficMirrorFilters", "NotFound", &format!("{id} does not exist"))
    })?;
    let token = format!("garrison-mend-{id}");
    if f.ingress_filter_rules().is_empty() {
        rule(c, id, TrafficDirection::Ingress, &token).await?;
    }
    if f.egress_filter_rules().is_empty() {
        rule(c, id, TrafficDirection::Egress, &token).await?;
    }
    Ok(())
}

pub async fn delete_filter(c: &Ctx<'_>, id: &str) -> Result<(), CloudError> {
    gone_ok(
        c.call(
            "ec2",
            "DeleteTrafficMirrorFilter",
            id,
            c.aws.ec2().delete_traffic_mirror_filter().traffic_mirror_filter_id(id).send(),
        )
        .await
        .map(|_| ()),
    )
}

/// The primary network interface of an instance (device index 0).
async fn primary_interface(c: &Ctx<'_>, instance: &str) -> Result<String, CloudError> {
    c.aws.pace("ec2").await;
    let out = c
        .aws
        .ec2()
        .describe_instances()
        .instance_ids(instance)
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("ec2", "DescribeInstances", e))?;
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .flat_map(|i| i.network_interfaces())
        .min_by_key(|n| n.attachment().and_then(|a| a.device_index()).unwrap_or(i32::MAX))
        .and_then(|n| n.network_interface_id())
        .map(str::to_string)
        .ok_or_else(|| missing("DescribeInstances", &format!("network interface of {instance}")))
}

/// The IDS appliance's primary interface as a target.
pub async fn target(c: &Ctx<'_>, appliance: &str, token: &str) -> Result<Created, CloudError> {
    let interface = primary_interface(c, appliance).await?;
    let out = c
        .call_made(
            "ec2",
            "CreateTrafficMirrorTarget",
            &interface,
            c.aws
                .ec2()
                .create_traffic_mirror_target()
                .network_interface_id(&interface)
                .description(format!("garrison: IDS appliance {appliance}"))
                .client_token(token)
                .tag_specifications(tags(c, ResourceType::TrafficMirrorTarget))
                .send(),
            |o: &aws_sdk_ec2::operation::create_traffic_mirror_target::CreateTrafficMirrorTargetOutput| {
                o.traffic_mirror_target().and_then(|t| t.traffic_mirror_target_id())
            },
        )
        .await?;
    let id = out
        .traffic_mirror_target()
        .and_then(|t| t.traffic_mirror_target_id())
        .ok_or_else(|| missing("CreateTrafficMirrorTarget", "target"))?;
    Ok(Created { id: id.to_string(), arn: None })
}

pub async fn delete_target(c: &Ctx<'_>, id: &str) -> Result<(), CloudError> {
    gone_ok(
        c.call(
            "ec2",
            "DeleteTrafficMirrorTarget",
            id,
            c.aws.ec2().delete_traffic_mirror_target().traffic_mirror_target_id(id).send(),
        )
        .await
        .map(|_| ()),
    )
}

pub async fn session(
    c: &Ctx<'_>,
    interface: &str,
    (target, filter): (&str, &str),
    number: i32,
    token: &str,
) -> Result<Created, CloudError> {
    let out = c
        .call_made(
            "ec2",
            "CreateTrafficMirrorSession",
            interface,
            c.aws
                .ec2()
                .create_traffic_mirror_session()
                .network_interface_id(interface)
                .traffic_mirror_target_id(target)
                .traffic_mirror_filter_id(filter)
                .session_number(number)
                .description("garrison: mirrored to an IDS appliance")
                .client_token(token)
                .tag_specifications(tags(c, ResourceType::TrafficMirrorSession))
                .send(),
            |o: &aws_sdk_ec2::operation::create_traffic_mirror_session::CreateTrafficMirrorSessionOutput| {
                o.traffic_mirror_session().and_then(|s| s.traffic_mirror_session_id())
            },
        )
        .await?;
    let id = out
        .traffic_mirror_session()
        .and_then(|s| s.traffic_mirror_session_id())
        .ok_or_else(|| missing("CreateTrafficMirrorSession", "session"))?;
    Ok(Created { id: id.to_string(), arn: None })
}

/// Sends a session to another target or filter, or gives it another number, in place: the
/// interface is mirrored throughout.
pub async fn modify_session(
    c: &Ctx<'_>,
    id: &str,
    (target, filter): (&str, &str),
    number: i32,
) -> Result<(), CloudError> {
    c.call(
        "ec2",
        "ModifyTrafficMirrorSession",
        id,
        c.aws
            .ec2()
            .modify_traffic_mirror_session()
            .traffic_mirror_session_id(id)
            .traffic_mirror_target_id(target)
            .traffic_mirror_filter_id(filter)
            .session_number(number)
            .send(),
    )
    .await
    .map(|_| ())
}

pub async fn delete_session(c: &Ctx<'_>, id: &str) -> Result<(), CloudError> {
    gone_ok(
        c.call(
            "ec2",
            "DeleteTrafficMirrorSession",
            id,
            c.aws.ec2().delete_traffic_mirror_session().traffic_mirror_session_id(id).send(),
        )
        .await
        .map(|_| ()),
    )
}
