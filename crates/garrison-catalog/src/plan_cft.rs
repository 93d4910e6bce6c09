//! Manual mode: the creates of a plan as CloudFormation templates, one per region (a
//! stack is regional), for the customer to run. The resources are the ones automatic mode
//! would build, with the same names, CIDRs, rules, types and tags. Changes a template
//! cannot express (start, stop, rule edits, removals) are listed in its Metadata.

use std::collections::{BTreeMap, BTreeSet};

use garrison_model::protection::{
    Op, Plan, Role, Spec, bucket_policy, event_role_policy, event_role_trust, feed_statement, queue_policy,
    topic_policy,
};
use serde_json::{Map, Value, json};

/// A CloudFormation logical id for a plan key (alphanumeric, unique per key).
pub fn logical_id(key: &str) -> String {
    key.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .map(|s| {
            let mut c = s.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

struct Doc<'a> {
    resources: Map<String, Value>,
    /// Keys created in this template (referenced with Ref / GetAtt).
    local: BTreeSet<&'a str>,
    /// Ids of resources that already exist, by key.
    existing: &'a BTreeMap<String, String>,
    /// ARNs known from names alone (the feed's bus and role), for references across stacks.
    named: &'a BTreeMap<String, String>,
    tags: Value,
}

impl Doc<'_> {
    fn id(&self, key: &str) -> Value {
        if self.local.contains(key) {
            json!({"Ref": logical_id(key)})
        } else {
            json!(self.existing.get(key).cloned().unwrap_or_else(|| format!("<{key}>")))
        }
    }

    fn arn(&self, key: &str, attr: &str) -> Value {
        // An ARN already (an organization's feed bus): itself.
        if key.starts_with("arn:") {
            return json!(key);
        }
        if self.local.contains(key) {
            json!({"Fn::GetAtt": [logical_id(key), attr]})
        } else if let Some(arn) = self.named.get(key) {
            json!(arn)
        } else {
            json!(self.existing.get(key).cloned().unwrap_or_else(|| format!("<{key}>")))
        }
    }

    fn put(&mut self, name: String, kind: &str, props: Value) {
        self.resources.insert(name, json!({"Type": kind, "Properties": props}));
    }

    fn add(&mut self, key: &str, spec: &Spec, account: &str) {
        let id = logical_id(key);
        let tags = self.tags.clone();
        match spec {
            Spec::Bucket { name } => {
                self.put(id.clone(), "AWS::S3::Bucket", json!({"BucketName": name, "Tags": tags}));
                let policy = bucket_policy(name, account);
                self.put(
                    format!("{id}Policy"),
                    "AWS::S3::BucketPolicy",
                    json!({"Bucket": {"Ref": id}, "PolicyDocument": policy}),
                );
            }
            Spec::Topic { name, bucket } => {
                self.put(id.clone(), "AWS::SNS::Topic", json!({"TopicName": name, "Tags": tags}));
                self.put(
                    format!("{id}Policy"),
                    "AWS::SNS::TopicPolicy",
                    json!({"Topics": [{"Ref": id}], "PolicyDocument": topic_policy(json!({"Ref": id}), bucket, account)}),
                );
            }
            Spec::Queue { name, topic } => {
                self.put(
                    id.clone(),
                    "AWS::SQS::Queue",
                    json!({"QueueName": name, "MessageRetentionPeriod": 1209600, "Tags": tags}),
                );
                let policy = match topic {
                    Some(topic) => queue_policy(json!({"Fn::GetAtt": [id, "Arn"]}), self.id(topic)),
                    None => json!({"Version": "2012-10-17", "Statement": []}),
                };
                self.put(
                    format!("{id}Policy"),
                    "AWS::SQS::QueuePolicy",
                    json!({"Queues": [{"Ref": id}], "PolicyDocument": policy}),
                );
            }
            Spec::EventBus { name } => self.put(id, "AWS::Events::EventBus", json!({"Name": name, "Tags": tags})),
            Spec::EventRule { name, bus, pattern, target, role } => {
                let mut t = json!({"Id": "garrison", "Arn": self.arn(target, "Arn")});
                if let Some(role) = role {
                    t["RoleArn"] = self.arn(role, "Arn");
                }
                let mut props = json!({"Name": name, "State": "ENABLED",
                    "Description": "garrison: management events garrison acts on",
                    "EventPattern": serde_json::from_str::<Value>(pattern).unwrap_or(Value::Null),
                    "Targets": [t]});
                if let Some(bus) = bus {
                    props["EventBusName"] = self.id(bus);
                }
                self.put(id, "AWS::Events::Rule", props);
            }
            Spec::EventRole { name, bus } => self.put(
                id,
                "AWS::IAM::Role",
                json!({"RoleName": name, "AssumeRolePolicyDocument": event_role_trust(account),
                       "Policies": [{"PolicyName": "garrison-feed", "PolicyDocument": event_role_policy(self.arn(bus, "Arn"))}],
                       "Tags": tags}),
            ),
            // The feed's statement joins the queue's policy (one policy per queue).
            Spec::QueuePolicy { queue, rule } => {
                let statement = feed_statement(self.arn(queue, "Arn"), self.arn(rule, "Arn"));
                let policy = format!("{}Policy", logical_id(queue));
                match self.resources.get_mut(&policy) {
                    Some(p) => {
                        if let Some(Value::Array(list)) = p.pointer_mut("/Properties/PolicyDocument/Statement") {
                            list.push(statement);
                        }
                    }
                    None => self.put(
                        id,
                        "AWS::SQS::QueuePolicy",
                        json!({"Queues": [self.id(queue)], "PolicyDocument": {"Version": "2012-10-17", "Statement": [statement]}}),
                    ),
                }
            }
            Spec::Subscription { topic, queue } => self.put(
                id,
                "AWS::SNS::Subscription",
                json!({"Protocol": "sqs", "TopicArn": self.id(topic), "Endpoint": self.arn(queue, "Arn")}),
            ),
            Spec::BucketNotification { bucket, topic } => {
                let b = logical_id(bucket);
                if let Some(Value::Object(r)) = self.resources.get_mut(&b) {
                    r.insert("DependsOn".into(), json!(format!("{}Policy", logical_id(topic))));
                    if let Some(Value::Object(p)) = r.get_mut("Properties") {
                        p.insert(
                            "NotificationConfiguration".into(),
                            json!({"TopicConfigurations": [{"Event": "s3:ObjectCreated:*", "Topic": {"Ref": logical_id(topic)}}]}),
                        );
                    }
                }
            }
            Spec::Trail { name, bucket } => {
                self.put(
                    id.clone(),
                    "AWS::CloudTrail::Trail",
                    json!({"TrailName": name, "S3BucketName": self.id(bucket), "IsLogging": true, "IsMultiRegionTrail": true,
                           "IncludeGlobalServiceEvents": true, "EnableLogFileValidation": true, "Tags": tags}),
                );
                if self.local.contains(bucket.as_str())
                    && let Some(Value::Object(r)) = self.resources.get_mut(&id)
                {
                    r.insert("DependsOn".into(), json!(format!("{}Policy", logical_id(bucket))));
                }
            }
            Spec::Detector => self.put(id, "AWS::GuardDuty::Detector", json!({"Enable": true})),
            Spec::Recorder { name, bucket } => {
                self.put(
                    id.clone(),
                    "AWS::Config::ConfigurationRecorder",
                    json!({"Name": name, "RoleARN": format!("arn:aws:iam::{account}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"),
                           "RecordingGroup": {"AllSupported": true}}),
                );
                self.put(
                    format!("{id}Channel"),
                    "AWS::Config::DeliveryChannel",
                    json!({"Name": name, "S3BucketName": self.id(bucket)}),
                );
            }
            Spec::FlowLogs { vpc, bucket } => self.put(
                id,
                "AWS::EC2::FlowLog",
                json!({"ResourceId": vpc, "ResourceType": "VPC", "TrafficType": "ALL", "LogDestinationType": "s3",
                       "LogDestination": self.arn(bucket, "Arn"), "Tags": tags}),
            ),
            Spec::InternetGateway { vpc } => {
                self.put(id.clone(), "AWS::EC2::InternetGateway", json!({"Tags": tags}));
                self.put(
                    format!("{id}Attachment"),
                    "AWS::EC2::VPCGatewayAttachment",
                    json!({"VpcId": vpc, "InternetGatewayId": {"Ref": id}}),
                );
            }
            Spec::Subnet { vpc, zone, cidr } => self.put(
                id,
                "AWS::EC2::Subnet",
                json!({"VpcId": vpc, "AvailabilityZone": zone, "CidrBlock": cidr, "Tags": tags}),
            ),
            Spec::RouteTable { vpc, subnet, gateway } => {
                self.put(id.clone(), "AWS::EC2::RouteTable", json!({"VpcId": vpc, "Tags": tags}));
                self.put(
                    format!("{id}Default"),
                    "AWS::EC2::Route",
                    json!({"RouteTableId": {"Ref": id}, "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": self.id(gateway)}),
                );
                self.put(
                    format!("{id}Association"),
                    "AWS::EC2::SubnetRouteTableAssociation",
                    json!({"RouteTableId": {"Ref": id}, "SubnetId": self.id(subnet)}),
                );
            }
            Spec::NetworkAcl { vpc, subnet, vpc_cidr, peers } => {
                self.put(id.clone(), "AWS::EC2::NetworkAcl", json!({"VpcId": vpc, "Tags": tags}));
                for e in garrison_model::protection::acl_entries(vpc_cidr, peers) {
                    let proto: i32 = e.protocol.parse().unwrap_or(-1);
                    let mut p = json!({"NetworkAclId": {"Ref": id}, "RuleNumber": e.rule, "Egress": e.egress, "Protocol": proto,
                                       "RuleAction": "allow", "CidrBlock": e.cidr});
                    if let Some((from, to)) = e.ports {
                        p["PortRange"] = json!({"From": from, "To": to});
                    }
                    self.put(format!("{id}{}", e.name), "AWS::EC2::NetworkAclEntry", p);
                }
                self.put(
                    format!("{id}Association"),
                    "AWS::EC2::SubnetNetworkAclAssociation",
                    json!({"NetworkAclId": {"Ref": id}, "SubnetId": self.id(subnet)}),
                );
            }
            Spec::SecurityGroup { vpc, name, ingress, egress } => {
                let rule = |p: &garrison_model::protection::Perm| json!({"IpProtocol": p.protocol, "FromPort": p.from_port, "ToPort": p.to_port, "CidrIp": p.cidr});
                self.put(
                    id,
                    "AWS::EC2::SecurityGroup",
                    json!({"GroupName": name, "GroupDescription": "garrison appliance security group", "VpcId": vpc,
                           "SecurityGroupIngress": ingress.iter().map(rule).collect::<Vec<_>>(),
                           "SecurityGroupEgress": egress.iter().map(rule).collect::<Vec<_>>(), "Tags": tags}),
                );
            }
            Spec::Appliance { role, instance_type, image, subnet, group, .. } => {
                let mut t = tags.clone();
                if let Value::Array(a) = &mut t {
                    let name = match role {
                        Role::Scan => "AlertLogic Scan Appliance",
                        Role::Ids => "AlertLogic IDS Appliance",
                    };
                    a.push(json!({"Key": "Name", "Value": name}));
                }
                self.put(
                    id,
                    "AWS::EC2::Instance",
                    json!({"ImageId": image, "InstanceType": instance_type, "SubnetId": self.id(subnet),
                           "SecurityGroupIds": [self.id(group)], "Tags": t}),
                );
            }
            Spec::MirrorFilter { vpc } => {
                self.put(
                    id.clone(),
                    "AWS::EC2::TrafficMirrorFilter",
                    json!({"Description": format!("garrison: what the IDS appliances of {vpc} are sent"), "Tags": tags}),
                );
                let (number, action, source, destination) = garrison_model::protection::MIRROR_FILTER_RULE;
                for direction in ["ingress", "egress"] {
                    self.put(
                        format!("{id}{}", logical_id(direction)),
                        "AWS::EC2::TrafficMirrorFilterRule",
                        json!({"TrafficMirrorFilterId": {"Ref": id}, "TrafficDirection": direction, "RuleNumber": number,
                               "RuleAction": action, "SourceCidrBlock": source, "DestinationCidrBlock": destination}),
                    );
                }
            }
            // Rendered as a manual step (`render`): a template cannot name an instance's
            // primary network interface.
            Spec::MirrorTarget { .. } => {}
            Spec::MirrorSession { interface, target, filter, number } => self.put(
                id,
                "AWS::EC2::TrafficMirrorSession",
                json!({"NetworkInterfaceId": interface, "TrafficMirrorTargetId": self.id(target),
                       "TrafficMirrorFilterId": self.id(filter), "SessionNumber": number, "Tags": tags}),
            ),
        }
    }
}

/// One template per region holding creates of `plan`. `existing` maps keys of resources
/// that already exist to their ids; `tags` are the ownership tags as (key, value).
pub fn render(
    plan: &Plan,
    account: &str,
    tags: &[(String, String)],
    existing: &BTreeMap<String, String>,
) -> BTreeMap<String, Value> {
    let mut by_region: BTreeMap<&str, Vec<(&str, &Spec)>> = BTreeMap::new();
    let mut manual: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for a in &plan.actions {
        match &a.op {
            Op::Create { spec: Spec::MirrorTarget { appliance }, .. } => {
                manual.entry(a.region.as_str()).or_default().push(format!(
                    "create {}: a traffic mirror target at the primary network interface of {}",
                    a.key, appliance
                ))
            }
            Op::Create { spec, .. } => by_region.entry(a.region.as_str()).or_default().push((a.key.as_str(), spec)),
            Op::Adopt { .. } | Op::Forget { .. } => {}
            other => manual.entry(a.region.as_str()).or_default().push(format!("{} {}", other.verb(), a.key)),
        }
    }
    let tag_list: Vec<Value> = tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect();
    let named: BTreeMap<String, String> = plan
        .actions
        .iter()
        .filter_map(|a| match &a.op {
            Op::Create { spec: Spec::EventBus { name }, .. } => {
                Some((a.key.clone(), format!("arn:aws:events:{}:{account}:event-bus/{name}", a.region)))
            }
            Op::Create { spec: Spec::EventRole { name, .. }, .. } => {
                Some((a.key.clone(), format!("arn:aws:iam::{account}:role/{name}")))
            }
            _ => None,
        })
        .collect();
    let mut out = BTreeMap::new();
    let regions: BTreeSet<&str> = by_region.keys().chain(manual.keys()).copied().collect();
    for region in regions {
        let mut items = by_region.remove(region).unwrap_or_default();
        // Policies that join another resource's come after it.
        items.sort_by_key(|(_, spec)| matches!(spec, Spec::QueuePolicy { .. }));
        let mut doc = Doc {
            resources: Map::new(),
            local: items.iter().map(|(k, _)| *k).collect(),
            existing,
            named: &named,
            tags: json!(tag_list),
        };
        for (key, spec) in &items {
            doc.add(key, spec, account);
        }
        out.insert(
            region.to_string(),
            json!({
                "AWSTemplateFormatVersion": "2010-09-09",
                "Description": format!("garrison protection resources for {account} in {region} (manual mode)"),
                "Metadata": {"garrison:ManualSteps": manual.remove(region).unwrap_or_default()},
                "Resources": doc.resources,
            }),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use garrison_model::protection::{Action, Perm, ResKind};

    fn create(key: &str, region: &str, spec: Spec) -> Action {
        Action {
            key: key.into(),
            region: region.into(),
            kind: spec.kind(),
            op: Op::Create { spec, running: true, tags: Default::default(), retire: None },
            after: vec![],
        }
    }

    #[test]
    fn creates_become_resources_with_references_between_them() {
        let plan = Plan {
            actions: vec![
                create(
                    "us-east-1/vpc-1/us-east-1a/subnet",
                    "us-east-1",
                    Spec::Subnet { vpc: "vpc-1".into(), zone: "us-east-1a".into(), cidr: "10.0.255.240/28".into() },
                ),
                create(
                    "us-east-1/vpc-1/scan_sg",
                    "us-east-1",
                    Spec::SecurityGroup {
                        vpc: "vpc-1".into(),
                        name: "g".into(),
                        ingress: vec![],
                        egress: vec![Perm::new("tcp", 443, 443, "0.0.0.0/0")],
                    },
                ),
                create(
                    "us-east-1/vpc-1/scanner",
                    "us-east-1",
                    Spec::Appliance {
                        role: Role::Scan,
                        vpc: "vpc-1".into(),
                        zone: "us-east-1a".into(),
                        instance_type: "t3.medium".into(),
                        image: "ami-1".into(),
                        subnet: "us-east-1/vpc-1/us-east-1a/subnet".into(),
                        group: "us-east-1/vpc-1/scan_sg".into(),
                    },
                ),
                create(
                    "us-east-1/vpc-1/us-east-1a/route_table",
                    "us-east-1",
                    Spec::RouteTable {
                        vpc: "vpc-1".into(),
                        subnet: "us-east-1/vpc-1/us-east-1a/subnet".into(),
                        gateway: "us-east-1/vpc-1/igw".into(),
                    },
                ),
                Action {
                    key: "eu-west-1/vpc-2/scanner".into(),
                    region: "eu-west-1".into(),
                    kind: ResKind::Appliance,
                    op: Op::Stop { id: "i-1".into() },
                    after: vec![],
                },
            ],
            problems: vec![],
            notes: vec![],
        };
        let existing: BTreeMap<String, String> =
            [("us-east-1/vpc-1/igw".to_string(), "igw-customer".to_string())].into();
        let t = render(&plan, "123456789012", &[("AlertLogic".into(), "Security".into())], &existing);
        let east = &t["us-east-1"]["Resources"];
        let inst = &east["UsEast1Vpc1Scanner"];
        assert_eq!(inst["Type"], "AWS::EC2::Instance");
        assert_eq!(inst["Properties"]["SubnetId"], json!({"Ref": "UsEast1Vpc1UsEast1aSubnet"}));
        assert_eq!(inst["Properties"]["SecurityGroupIds"], json!([{"Ref": "UsEast1Vpc1ScanSg"}]));
        assert_eq!(
            east["UsEast1Vpc1UsEast1aRouteTableDefault"]["Properties"]["GatewayId"], "igw-customer",
            "existing ids are literal"
        );
        assert_eq!(east["UsEast1Vpc1ScanSg"]["Properties"]["SecurityGroupEgress"][0]["FromPort"], 443);
        assert_eq!(t["eu-west-1"]["Metadata"]["garrison:ManualSteps"], json!(["stop eu-west-1/vpc-2/scanner"]));
    }
}
