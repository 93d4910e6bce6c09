//! Which records matter: successful calls that change what discovery reads (instances,
//! VPCs, subnets, groups, ACLs, routes, gateways, flow logs, trails, detectors, recorders,
//! clusters) or that touch the audit path (bucket, topic, queue, subscription, the event
//! feed's rules and bus). Reads,
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

/// What a call changes, as far as garrison reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Asset(Kind),
    /// `CreateTags`/`DeleteTags`: the kinds of the resources named.
    Tags,
    AuditPath,
}

/// The management events garrison acts on, per event source. One table for the collector's
/// filter (`classify`) and the event feed's rule pattern (`garrison_catalog::feed`), so
/// the two cannot drift apart.
const ACTED_ON: &[(&str, &[(&str, Effect)])] = {
    use Effect::*;
    use Kind as K;
    &[
        (
            "ec2.amazonaws.com",
            &[
                ("RunInstances", Asset(K::Instances)),
                ("StartInstances", Asset(K::Instances)),
                ("StopInstances", Asset(K::Instances)),
                ("TerminateInstances", Asset(K::Instances)),
                ("ModifyInstanceAttribute", Asset(K::Instances)),
                ("ModifyNetworkInterfaceAttribute", Asset(K::Instances)),
                ("ModifyInstancePlacement", Asset(K::Instances)),
                // An interface attached or detached changes what is mirrored (span_port_enabled).
                ("AttachNetworkInterface", Asset(K::Instances)),
                ("DetachNetworkInterface", Asset(K::Instances)),
                // Traffic Mirroring: someone else's hand on garrison's sessions, targets or
                // filters, or the customer's own sessions taking an interface's room.
                ("CreateTrafficMirrorSession", Asset(K::Mirroring)),
                ("ModifyTrafficMirrorSession", Asset(K::Mirroring)),
                ("DeleteTrafficMirrorSession", Asset(K::Mirroring)),
                ("DeleteTrafficMirrorTarget", Asset(K::Mirroring)),
                ("DeleteTrafficMirrorFilter", Asset(K::Mirroring)),
                ("DeleteTrafficMirrorFilterRule", Asset(K::Mirroring)),
                // The paths a hub's appliances protect its spokes over (otis cross_network_protection).
                ("AcceptVpcPeeringConnection", Asset(K::Connections)),
                ("DeleteVpcPeeringConnection", Asset(K::Connections)),
                ("CreateTransitGatewayVpcAttachment", Asset(K::Connections)),
                ("DeleteTransitGatewayVpcAttachment", Asset(K::Connections)),
                ("CreateVpc", Asset(K::Vpcs)),
                ("DeleteVpc", Asset(K::Vpcs)),
                ("CreateDefaultVpc", Asset(K::Vpcs)),
                ("AssociateVpcCidrBlock", Asset(K::Vpcs)),
                ("DisassociateVpcCidrBlock", Asset(K::Vpcs)),
                ("CreateSubnet", Asset(K::Subnets)),
                ("DeleteSubnet", Asset(K::Subnets)),
                ("CreateDefaultSubnet", Asset(K::Subnets)),
                ("ModifySubnetAttribute", Asset(K::Subnets)),
                ("CreateSecurityGroup", Asset(K::SecurityGroups)),
                ("DeleteSecurityGroup", Asset(K::SecurityGroups)),
                ("AuthorizeSecurityGroupIngress", Asset(K::SecurityGroups)),
                ("AuthorizeSecurityGroupEgress", Asset(K::SecurityGroups)),
                ("RevokeSecurityGroupIngress", Asset(K::SecurityGroups)),
                ("RevokeSecurityGroupEgress", Asset(K::SecurityGroups)),
                ("ModifySecurityGroupRules", Asset(K::SecurityGroups)),
                ("CreateNetworkAcl", Asset(K::NetworkAcls)),
                ("DeleteNetworkAcl", Asset(K::NetworkAcls)),
                ("CreateNetworkAclEntry", Asset(K::NetworkAcls)),
                ("DeleteNetworkAclEntry", Asset(K::NetworkAcls)),
                ("ReplaceNetworkAclEntry", Asset(K::NetworkAcls)),
                ("ReplaceNetworkAclAssociation", Asset(K::NetworkAcls)),
                ("CreateRouteTable", Asset(K::RouteTables)),
                ("DeleteRouteTable", Asset(K::RouteTables)),
                ("CreateRoute", Asset(K::RouteTables)),
                ("DeleteRoute", Asset(K::RouteTables)),
                ("ReplaceRoute", Asset(K::RouteTables)),
                ("AssociateRouteTable", Asset(K::RouteTables)),
                ("DisassociateRouteTable", Asset(K::RouteTables)),
                ("ReplaceRouteTableAssociation", Asset(K::RouteTables)),
                ("CreateInternetGateway", Asset(K::InternetGateways)),
                ("DeleteInternetGateway", Asset(K::InternetGateways)),
                ("AttachInternetGateway", Asset(K::InternetGateways)),
                ("DetachInternetGateway", Asset(K::InternetGateways)),
                ("CreateFlowLogs", Asset(K::FlowLogs)),
                ("DeleteFlowLogs", Asset(K::FlowLogs)),
                ("CreateTags", Tags),
                ("DeleteTags", Tags),
            ],
        ),
        (
            "cloudtrail.amazonaws.com",
            &[
                ("CreateTrail", Asset(K::Trails)),
                ("DeleteTrail", Asset(K::Trails)),
                ("UpdateTrail", Asset(K::Trails)),
                ("StartLogging", Asset(K::Trails)),
                ("StopLogging", Asset(K::Trails)),
                ("PutEventSelectors", Asset(K::Trails)),
            ],
        ),
        (
            "guardduty.amazonaws.com",
            &[
                ("CreateDetector", Asset(K::GuarddutyDetectors)),
                ("DeleteDetector", Asset(K::GuarddutyDetectors)),
                ("UpdateDetector", Asset(K::GuarddutyDetectors)),
            ],
        ),
        (
            "config.amazonaws.com",
            &[
                ("PutConfigurationRecorder", Asset(K::ConfigRecorders)),
                ("DeleteConfigurationRecorder", Asset(K::ConfigRecorders)),
                ("StartConfigurationRecorder", Asset(K::ConfigRecorders)),
                ("StopConfigurationRecorder", Asset(K::ConfigRecorders)),
                ("PutDeliveryChannel", Asset(K::ConfigRecorders)),
                ("DeleteDeliveryChannel", Asset(K::ConfigRecorders)),
            ],
        ),
        ("ecs.amazonaws.com", &[("CreateCluster", Asset(K::EcsClusters)), ("DeleteCluster", Asset(K::EcsClusters))]),
        ("eks.amazonaws.com", &[("CreateCluster", Asset(K::EksClusters)), ("DeleteCluster", Asset(K::EksClusters))]),
        (
            "sns.amazonaws.com",
            &[("Unsubscribe", AuditPath), ("DeleteTopic", AuditPath), ("SetTopicAttributes", AuditPath)],
        ),
        ("sqs.amazonaws.com", &[("DeleteQueue", AuditPath), ("SetQueueAttributes", AuditPath)]),
        (
            "s3.amazonaws.com",
            &[
                ("DeleteBucket", AuditPath),
                ("PutBucketPolicy", AuditPath),
                ("DeleteBucketPolicy", AuditPath),
                ("PutBucketNotification", AuditPath),
                ("PutBucketNotificationConfiguration", AuditPath),
            ],
        ),
        (
            "events.amazonaws.com",
            &[
                ("DeleteRule", AuditPath),
                ("DisableRule", AuditPath),
                ("PutRule", AuditPath),
                ("RemoveTargets", AuditPath),
                ("PutTargets", AuditPath),
                ("DeleteEventBus", AuditPath),
            ],
        ),
    ]
};

/// The (event source, event name) pairs garrison acts on: what the event feed's rules match.
pub fn acted_on() -> impl Iterator<Item = (&'static str, &'static str)> {
    ACTED_ON.iter().flat_map(|(source, names)| names.iter().map(move |(name, _)| (*source, *name)))
}

/// Whether a call of `name` on `source` is one garrison acts on (when it succeeds).
pub fn acts_on(source: &str, name: &str) -> bool {
    effect(source, name).is_some()
}

fn effect(source: &str, name: &str) -> Option<Effect> {
    let (_, names) = ACTED_ON.iter().find(|(s, _)| *s == source)?;
    names.iter().find(|(n, _)| *n == name).map(|(_, e)| *e)
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
        "tmt" | "tmf" | "tms" => Kind::Mirroring,
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
    let targets: Vec<Target> = match effect(r.event_source.as_ref(), name) {
        None => vec![],
        Some(Effect::Asset(k)) => vec![Target::Asset(k)],
        Some(Effect::AuditPath) => vec![Target::AuditPath],
        Some(Effect::Tags) => {
            let req: Option<TagsRequest> = r.request_parameters.and_then(|p| serde_json::from_slice(p).ok());
            let mut kinds: Vec<Kind> = req
                .and_then(|q| q.resources_set)
                .map(|s| s.items.iter().filter_map(|i| i.resource_id.as_deref().and_then(tagged_kind)).collect())
                .unwrap_or_default();
            kinds.sort();
            kinds.dedup();
            kinds.into_iter().map(Target::Asset).collect()
        }
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

    #[test]
    fn every_event_of_the_table_is_acted_on_and_nothing_else() {
        let tags = r#","requestParameters":{"resourcesSet":{"items":[{"resourceId":"i-1"}]}}"#;
        let mut n = 0;
        for (source, name) in acted_on() {
            let service = source.trim_end_matches(".amazonaws.com");
            let extra = if name.ends_with("Tags") { tags } else { "" };
            assert_eq!(changes(&rec(service, name, extra), None).len(), 1, "{source} {name}");
            n += 1;
        }
        assert!(n > 60, "{n} events");
        // The same name from another service is not one of them.
        assert!(changes(&rec("ecs", "RunInstances", ""), None).is_empty());
        assert!(changes(&rec("ec2", "CreateCluster", ""), None).is_empty());
    }
}
