//! What protection is made of: the resources garrison builds or adopts in a customer
//! account, the records it keeps of them, and the plans that change them. The planner
//! (garrison-engine) produces `Plan`s; the executor applies them through garrison-cloud.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The ownership tags of the reference, plus `garrison-key` naming the resource's place in
/// the plan so that a resource created just before a crash is recognised afterwards.
pub const TAG_OWNER: (&str, &str) = ("AlertLogic", "Security");
pub const TAG_TENANT: &str = "AlertLogic-AccountID";
pub const TAG_DEPLOYMENT: &str = "AlertLogic-EnvironmentID";
pub const TAG_KEY: &str = "garrison-key";
/// Trails and Config recorders carry no tags in discovery: garrison's are known by name.
pub const TRAIL_PREFIX: &str = "garrison-";
pub const RECORDER_NAME: &str = "garrison";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResKind {
    Bucket,
    Topic,
    Queue,
    Subscription,
    BucketNotification,
    Trail,
    Detector,
    Recorder,
    FlowLogs,
    InternetGateway,
    Subnet,
    RouteTable,
    NetworkAcl,
    SecurityGroup,
    Appliance,
}

impl ResKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResKind::Bucket => "bucket",
            ResKind::Topic => "topic",
            ResKind::Queue => "queue",
            ResKind::Subscription => "subscription",
            ResKind::BucketNotification => "bucket_notification",
            ResKind::Trail => "trail",
            ResKind::Detector => "detector",
            ResKind::Recorder => "recorder",
            ResKind::FlowLogs => "flow_logs",
            ResKind::InternetGateway => "internet_gateway",
            ResKind::Subnet => "subnet",
            ResKind::RouteTable => "route_table",
            ResKind::NetworkAcl => "network_acl",
            ResKind::SecurityGroup => "security_group",
            ResKind::Appliance => "appliance",
        }
    }

    /// Removal order: a resource is removed after every lower-ranked one (instances before
    /// the groups and subnets they sit in, the subnet's ACL and route table before the
    /// subnet, publishers before the bucket and topic they publish to).
    pub fn removal_rank(self) -> u8 {
        match self {
            ResKind::Appliance
            | ResKind::FlowLogs
            | ResKind::Trail
            | ResKind::Detector
            | ResKind::Recorder
            | ResKind::BucketNotification
            | ResKind::Subscription => 0,
            ResKind::SecurityGroup | ResKind::RouteTable | ResKind::NetworkAcl | ResKind::Queue => 1,
            ResKind::Subnet | ResKind::Topic => 2,
            ResKind::InternetGateway | ResKind::Bucket => 3,
        }
    }

    /// Kinds that live in the audit region and serve every region.
    pub fn is_audit(self) -> bool {
        matches!(
            self,
            ResKind::Bucket | ResKind::Topic | ResKind::Queue | ResKind::Subscription | ResKind::BucketNotification
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Scan,
    Ids,
}

/// One security group permission, one CIDR each; protocol "-1" always has ports 0..0.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Perm {
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    pub cidr: String,
}

impl Perm {
    pub fn new(protocol: &str, from: i32, to: i32, cidr: &str) -> Perm {
        let all = protocol == "-1" || protocol.eq_ignore_ascii_case("all");
        Perm {
            protocol: if all { "-1".into() } else { protocol.to_ascii_lowercase() },
            from_port: if all { 0 } else { from },
            to_port: if all { 0 } else { to },
            cidr: cidr.into(),
        }
    }
}

/// Another planned resource, by key; resolved to its id when the executor gets there.
pub type Ref = String;

/// What to build. Names and CIDRs are decided by the planner, ids of other resources are
/// references to their keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Spec {
    Bucket { name: String },
    Topic { name: String, bucket: String },
    Queue { name: String, topic: Ref },
    Subscription { topic: Ref, queue: Ref },
    BucketNotification { bucket: Ref, topic: Ref },
    Trail { name: String, bucket: Ref },
    Detector,
    Recorder { name: String, bucket: Ref },
    FlowLogs { vpc: String, bucket: Ref },
    InternetGateway { vpc: String },
    Subnet { vpc: String, zone: String, cidr: String },
    RouteTable { vpc: String, subnet: Ref, gateway: Ref },
    NetworkAcl { vpc: String, subnet: Ref, vpc_cidr: String },
    SecurityGroup { vpc: String, name: String, ingress: Vec<Perm>, egress: Vec<Perm> },
    Appliance { role: Role, vpc: String, zone: String, instance_type: String, image: String, subnet: Ref, group: Ref },
}

impl Spec {
    pub fn kind(&self) -> ResKind {
        match self {
            Spec::Bucket { .. } => ResKind::Bucket,
            Spec::Topic { .. } => ResKind::Topic,
            Spec::Queue { .. } => ResKind::Queue,
            Spec::Subscription { .. } => ResKind::Subscription,
            Spec::BucketNotification { .. } => ResKind::BucketNotification,
            Spec::Trail { .. } => ResKind::Trail,
            Spec::Detector => ResKind::Detector,
            Spec::Recorder { .. } => ResKind::Recorder,
            Spec::FlowLogs { .. } => ResKind::FlowLogs,
            Spec::InternetGateway { .. } => ResKind::InternetGateway,
            Spec::Subnet { .. } => ResKind::Subnet,
            Spec::RouteTable { .. } => ResKind::RouteTable,
            Spec::NetworkAcl { .. } => ResKind::NetworkAcl,
            Spec::SecurityGroup { .. } => ResKind::SecurityGroup,
            Spec::Appliance { .. } => ResKind::Appliance,
        }
    }

    /// The keys this resource needs to exist first.
    pub fn refs(&self) -> Vec<&str> {
        match self {
            Spec::Queue { topic, .. } => vec![topic],
            Spec::Subscription { topic, queue } => vec![topic, queue],
            Spec::BucketNotification { bucket, topic } => vec![bucket, topic],
            Spec::Trail { bucket, .. } | Spec::Recorder { bucket, .. } | Spec::FlowLogs { bucket, .. } => vec![bucket],
            Spec::RouteTable { subnet, gateway, .. } => vec![subnet, gateway],
            Spec::NetworkAcl { subnet, .. } => vec![subnet],
            Spec::Appliance { subnet, group, .. } => vec![subnet, group],
            _ => vec![],
        }
    }
}

/// What garrison knows it owns or adopted, one record per plan key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedItem {
    pub key: String,
    pub region: String,
    pub kind: ResKind,
    /// Empty while only the intent to create is recorded.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Adopted resources were the customer's: recorded, never changed or removed.
    pub adopted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<Spec>,
    /// The idempotency token of the create in flight (RunInstances' ClientToken).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owned {
    pub items: BTreeMap<String, OwnedItem>,
}

impl Owned {
    /// A record with an id (not only an intent).
    pub fn get(&self, key: &str) -> Option<&OwnedItem> {
        self.items.get(key).filter(|o| !o.id.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Create {
        spec: Spec,
        /// Appliances: whether to leave it running.
        running: bool,
    },
    /// Record a customer's resource as adopted (no AWS write).
    Adopt {
        id: String,
    },
    /// Drop the record of an adopted or vanished resource (no AWS write).
    Forget {
        id: String,
    },
    Delete {
        id: String,
    },
    Start {
        id: String,
    },
    Stop {
        id: String,
    },
    SetRules {
        id: String,
        add_ingress: Vec<Perm>,
        remove_ingress: Vec<Perm>,
        add_egress: Vec<Perm>,
        remove_egress: Vec<Perm>,
    },
}

impl Op {
    pub fn verb(&self) -> &'static str {
        match self {
            Op::Create { .. } => "create",
            Op::Adopt { .. } => "adopt",
            Op::Forget { .. } => "forget",
            Op::Delete { .. } => "delete",
            Op::Start { .. } => "start",
            Op::Stop { .. } => "stop",
            Op::SetRules { .. } => "set_rules",
        }
    }

    /// Whether applying it writes to the customer's account.
    pub fn writes(&self) -> bool {
        !matches!(self, Op::Adopt { .. } | Op::Forget { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub key: String,
    pub region: String,
    pub kind: ResKind,
    #[serde(flatten)]
    pub op: Op,
    /// Keys of actions of this plan that must succeed first.
    pub after: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// What cannot be protected and why (no free /28, no instance type offered, …).
    pub problems: Vec<String>,
    /// Facts worth knowing that are not failures (an adopted trail without notifications).
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Counts per verb, for summaries.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for a in &self.actions {
            *m.entry(a.op.verb()).or_default() += 1;
        }
        m
    }
}

/// The audit bucket's policy: CloudTrail, VPC flow logs and AWS Config may deliver to this
/// account's prefix; nothing over plain HTTP.
pub fn bucket_policy(bucket: &str, account: &str) -> Value {
    let arn = format!("arn:aws:s3:::{bucket}");
    let logs = format!("{arn}/AWSLogs/{account}/*");
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "CloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:GetBucketAcl", "Resource": arn},
            {"Sid": "CloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:PutObject", "Resource": logs,
             "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceAccount": account}}},
            {"Sid": "DeliveryAclCheck", "Effect": "Allow",
             "Principal": {"Service": ["delivery.logs.amazonaws.com", "config.amazonaws.com"]},
             "Action": ["s3:GetBucketAcl", "s3:ListBucket"], "Resource": arn,
             "Condition": {"StringEquals": {"aws:SourceAccount": account}}},
            {"Sid": "DeliveryWrite", "Effect": "Allow",
             "Principal": {"Service": ["delivery.logs.amazonaws.com", "config.amazonaws.com"]},
             "Action": "s3:PutObject", "Resource": logs,
             "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceAccount": account}}},
            {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": [arn.clone(), format!("{arn}/*")],
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
        ]
    })
}

/// The audit topic's policy: the bucket and CloudTrail of this account may publish.
pub fn topic_policy(topic: Value, bucket: &str, account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "BucketPublishes", "Effect": "Allow",
            "Principal": {"Service": ["s3.amazonaws.com", "cloudtrail.amazonaws.com"]},
            "Action": "SNS:Publish", "Resource": topic,
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:cloudtrail:*:{account}:trail/*")]}
            }
        }]
    })
}

/// The queue's policy admits SendMessage from the one topic's ARN, nothing else.
pub fn queue_policy(queue: Value, topic: Value) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "FromTheAuditTopicOnly", "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": queue,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic}}
        }]
    })
}
