//! Which records matter: successful calls that change what discovery reads (instances,
//! VPCs, subnets, groups, ACLs, routes, gateways, flow logs, trails, detectors, recorders,
//! clusters) or that touch the audit path (bucket, topic, queue, subscription). Reads,
//! failed calls and garrison's own calls change nothing garrison does not already know.

use garrison_model::snapshot::Kind;
use serde::Deserialize;

use crate::log::Record;

/// What a record changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Asset(Kind),
    /// The S3 → SNS → SQS path itself, which discovery does not list.
    AuditPath,
}

/// One asset delta: in which region what kind of thing changed, and by which call.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub region: String,
    pub target: Target,
    pub event: String,
}

fn ec2(name: &str) -> Option<Kind> {
    Some(match name {
        "RunInstances"
        | "StartInstances"
        | "StopInstances"
        | "TerminateInstances"
        | "ModifyInstanceAttribute"
        | "ModifyNetworkInterfaceAttribute"
        | "ModifyInstancePlacement" => Kind::Instances,
        "CreateVpc" | "DeleteVpc" | "CreateDefaultVpc" | "AssociateVpcCidrBlock" | "DisassociateVpcCidrBlock" => {
            Kind::Vpcs
        }
        "CreateSubnet" | "DeleteSubnet" | "CreateDefaultSubnet" | "ModifySubnetAttribute" => Kind::Subnets,
        "CreateSecurityGroup"
        | "DeleteSecurityGroup"
        | "AuthorizeSecurityGroupIngress"
        | "AuthorizeSecurityGroupEgress"
        | "RevokeSecurityGroupIngress"
        | "RevokeSecurityGroupEgress"
        | "ModifySecurityGroupRules" => Kind::SecurityGroups,
        "CreateNetworkAcl"
        | "DeleteNetworkAcl"
        | "CreateNetworkAclEntry"
        | "DeleteNetworkAclEntry"
        | "ReplaceNetworkAclEntry"
        | "ReplaceNetworkAclAssociation" => Kind::NetworkAcls,
        "CreateRouteTable"
        | "DeleteRouteTable"
        | "CreateRoute"
        | "DeleteRoute"
        | "ReplaceRoute"
        | "AssociateRouteTable"
        | "DisassociateRouteTable"
        | "ReplaceRouteTableAssociation" => Kind::RouteTables,
        "CreateInternetGateway" | "DeleteInternetGateway" | "AttachInternetGateway" | "DetachInternetGateway" => {
            Kind::InternetGateways
        }
        "CreateFlowLogs" | "DeleteFlowLogs" => Kind::FlowLogs,
        _ => return None,
    })
}

/// Tags decide exclusions and ownership, so tag changes count for the kinds they name.
fn tagged_kind(id: &str) -> Option<Kind> {
    let prefix = id.split('-').next()?;
    Some(match prefix {
        "i" => Kind::Instances,
        "vpc" => Kind::Vpcs,
        "subnet" => Kind::Subnets,
        "sg" => Kind::SecurityGroups,
        "acl" => Kind::NetworkAcls,
        "rtb" => Kind::RouteTables,
        "igw" => Kind::InternetGateways,
        "fl" => Kind::FlowLogs,
        _ => return None,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagsRequest {
    resources_set: Option<ItemSet>,
}

#[derive(Deserialize)]
struct ItemSet {
    #[serde(default)]
    items: Vec<TagItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagItem {
    resource_id: Option<String>,
}

/// The changes one record makes, or none. `own_principal` is garrison's assumed-role
/// session in this account, whose calls are already known.
pub fn classify(r: &Record<'_>, own_principal: Option<&str>) -> Vec<Change> {
    if r.error_code.is_some() {
        return vec![];
    }
    let name = r.event_name.as_ref();
    let asset = |k: Kind| vec![Target::Asset(k)];
    let targets: Vec<Target> = match r.event_source.as_ref() {
        "ec2.amazonaws.com" => match name {
            "CreateTags" | "DeleteTags" => {
                let req: Option<TagsRequest> = r.request_parameters.and_then(|p| serde_json::from_slice(p).ok());
                let mut kinds: Vec<Kind> = req
                    .and_then(|q| q.resources_set)
                    .map(|s| s.items.iter().filter_map(|i| i.resource_id.as_deref().and_then(tagged_kind)).collect())
                    .unwrap_or_default();
                kinds.sort();
                kinds.dedup();
                kinds.into_iter().map(Target::Asset).collect()
            }
            _ => ec2(name).map(asset).unwrap_or_default(),
        },
        "cloudtrail.amazonaws.com" => match name {
            "CreateTrail" | "DeleteTrail" | "UpdateTrail" | "StartLogging" | "StopLogging" | "PutEventSelectors" => {
                asset(Kind::Trails)
            }
            _ => vec![],
        },
        "guardduty.amazonaws.com" => match name {
            "CreateDetector" | "DeleteDetector" | "UpdateDetector" => asset(Kind::GuarddutyDetectors),
            _ => vec![],
        },
        "config.amazonaws.com" => match name {
            "PutConfigurationRecorder"
            | "DeleteConfigurationRecorder"
            | "StartConfigurationRecorder"
            | "StopConfigurationRecorder"
            | "PutDeliveryChannel"
            | "DeleteDeliveryChannel" => asset(Kind::ConfigRecorders),
            _ => vec![],
        },
        "ecs.amazonaws.com" if matches!(name, "CreateCluster" | "DeleteCluster") => asset(Kind::EcsClusters),
        "eks.amazonaws.com" if matches!(name, "CreateCluster" | "DeleteCluster") => asset(Kind::EksClusters),
        "sns.amazonaws.com" if matches!(name, "Unsubscribe" | "DeleteTopic" | "SetTopicAttributes") => {
            vec![Target::AuditPath]
        }
        "sqs.amazonaws.com" if matches!(name, "DeleteQueue" | "SetQueueAttributes") => vec![Target::AuditPath],
        "s3.amazonaws.com"
            if matches!(
                name,
                "DeleteBucket"
                    | "PutBucketPolicy"
                    | "DeleteBucketPolicy"
                    | "PutBucketNotification"
                    | "PutBucketNotificationConfiguration"
            ) =>
        {
            vec![Target::AuditPath]
        }
        _ => vec![],
    };
    // Who called is read only for the few records that change something.
    if targets.is_empty() || own_principal.is_some_and(|own| r.principal().as_deref() == Some(own)) {
        return vec![];
    }
    targets
        .into_iter()
        .map(|target| Change { region: r.aws_region.to_string(), target, event: name.to_string() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::read_json;

    fn changes(rec: &str, own: Option<&str>) -> Vec<Change> {
        let mut out = vec![];
        read_json(format!(r#"{{"Records":[{rec}]}}"#).as_bytes(), |r| out.extend(classify(&r.unwrap(), own))).unwrap();
        out
    }

    fn rec(source: &str, name: &str, extra: &str) -> String {
        format!(
            r#"{{"eventSource":"{source}.amazonaws.com","eventName":"{name}","awsRegion":"eu-west-1","userIdentity":{{"arn":"arn:aws:iam::1:user/alice"}}{extra}}}"#
        )
    }

    #[test]
    fn asset_changes_name_their_region_and_kind() {
        let c = changes(&rec("ec2", "RunInstances", ""), None);
        assert_eq!(
            c,
            vec![Change {
                region: "eu-west-1".into(),
                target: Target::Asset(Kind::Instances),
                event: "RunInstances".into()
            }]
        );
        for (src, name, kind) in [
            ("ec2", "RevokeSecurityGroupIngress", Kind::SecurityGroups),
            ("ec2", "DeleteSubnet", Kind::Subnets),
            ("ec2", "ReplaceRoute", Kind::RouteTables),
            ("ec2", "DeleteNetworkAclEntry", Kind::NetworkAcls),
            ("cloudtrail", "StopLogging", Kind::Trails),
            ("guardduty", "DeleteDetector", Kind::GuarddutyDetectors),
            ("config", "StopConfigurationRecorder", Kind::ConfigRecorders),
        ] {
            assert_eq!(changes(&rec(src, name, ""), None)[0].target, Target::Asset(kind), "{name}");
        }
        assert_eq!(changes(&rec("sns", "Unsubscribe", ""), None)[0].target, Target::AuditPath);
    }

    #[test]
    fn reads_failures_and_our_own_calls_change_nothing() {
        assert!(changes(&rec("ec2", "DescribeInstances", ""), None).is_empty());
        assert!(changes(&rec("s3", "GetObject", ""), None).is_empty());
        assert!(changes(&rec("ec2", "RunInstances", r#","errorCode":"UnauthorizedOperation""#), None).is_empty());
        assert!(changes(&rec("ec2", "RunInstances", ""), Some("arn:aws:iam::1:user/alice")).is_empty());
        assert_eq!(changes(&rec("ec2", "RunInstances", ""), Some("arn:aws:sts::1:assumed-role/r/garrison")).len(), 1);
    }

    #[test]
    fn tag_changes_count_for_the_kinds_they_name() {
        let req = r#","requestParameters":{"resourcesSet":{"items":[{"resourceId":"i-1"},{"resourceId":"sg-2"},{"resourceId":"i-3"},{"resourceId":"ami-4"}]}}"#;
        let kinds: Vec<Target> = changes(&rec("ec2", "CreateTags", req), None).into_iter().map(|c| c.target).collect();
        assert_eq!(kinds, vec![Target::Asset(Kind::Instances), Target::Asset(Kind::SecurityGroups)]);
        assert!(changes(&rec("ec2", "DeleteTags", r#","requestParameters":{"x":1}"#), None).is_empty());
    }
}
