//! What protection is made of: the resources garrison builds or adopts in a customer
//! account, the records it keeps of them, and the plans that change them. The planner
//! (garrison-engine) produces `Plan`s; the executor applies them through garrison-cloud.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::snapshot::Kind;

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
    EventBus,
    EventRule,
    EventRole,
    QueuePolicy,
    MirrorFilter,
    MirrorTarget,
    MirrorSession,
}

/// What a resource kind costs the customer while it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CostClass {
    /// Nothing by itself (network plumbing, groups, subscriptions).
    Free,
    /// By what it holds or carries (bucket storage, messages, flow log and trail delivery).
    Usage,
    /// By the hour while it runs (appliances).
    Hourly,
}

/// The static facts of one resource kind: everything garrison knows about it without
/// calling AWS. Its AWS behaviour is one implementation per kind in garrison-cloud
/// (`writes::kinds`); a test there fails when a kind lacks either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindFacts {
    pub kind: ResKind,
    /// Its name in records, reports and the audit log.
    pub name: &'static str,
    /// The discovery kind that lists it; None: discovery does not, and garrison checks it
    /// with a read of its own (`writes::exists`).
    pub discovered_as: Option<Kind>,
    /// Removal order: a resource is removed after every lower-ranked one (instances before
    /// the groups and subnets they sit in, the subnet's ACL and route table before the
    /// subnet, publishers before the bucket and topic they publish to).
    pub removal_rank: u8,
    /// Part of the audit path (the audit source and the event feed): found by garrison's
    /// own reads rather than discovery, removed in order across regions.
    pub audit: bool,
    /// The `Name` tag garrison gives it (IDS appliances and groups: see `name_tag`).
    pub name_tag: &'static str,
    /// The AWS call that makes it: the audit log's create entry for the resource.
    pub create_call: &'static str,
    pub cost: CostClass,
}

const AUDIT_TAG: &str = "AlertLogic Audit";
const FEED_TAG: &str = "AlertLogic Event Feed";

/// Every kind, in `ResKind`'s order.
pub const KINDS: [KindFacts; 22] = {
    use CostClass::*;
    use ResKind as R;
    [
        KindFacts {
            kind: R::Bucket,
            name: "bucket",
            discovered_as: None,
            removal_rank: 3,
            audit: true,
            name_tag: AUDIT_TAG,
            create_call: "s3:CreateBucket",
            cost: Usage,
        },
        KindFacts {
            kind: R::Topic,
            name: "topic",
            discovered_as: None,
            removal_rank: 2,
            audit: true,
            name_tag: AUDIT_TAG,
            create_call: "sns:CreateTopic",
            cost: Usage,
        },
        KindFacts {
            kind: R::Queue,
            name: "queue",
            discovered_as: None,
            removal_rank: 1,
            audit: true,
            name_tag: AUDIT_TAG,
            create_call: "sqs:CreateQueue",
            cost: Usage,
        },
        KindFacts {
            kind: R::Subscription,
            name: "subscription",
            discovered_as: None,
            removal_rank: 0,
            audit: true,
            name_tag: AUDIT_TAG,
            create_call: "sns:Subscribe",
            cost: Free,
        },
        KindFacts {
            kind: R::BucketNotification,
            name: "bucket_notification",
            discovered_as: None,
            removal_rank: 0,
            audit: true,
            name_tag: AUDIT_TAG,
            create_call: "s3:PutBucketNotificationConfiguration",
            cost: Free,
        },
        KindFacts {
            kind: R::Trail,
            name: "trail",
            discovered_as: Some(Kind::Trails),
            removal_rank: 0,
            audit: false,
            name_tag: AUDIT_TAG,
            create_call: "cloudtrail:CreateTrail",
            cost: Usage,
        },
        KindFacts {
            kind: R::Detector,
            name: "detector",
            discovered_as: Some(Kind::GuarddutyDetectors),
            removal_rank: 0,
            audit: false,
            name_tag: AUDIT_TAG,
            create_call: "guardduty:CreateDetector",
            cost: Usage,
        },
        KindFacts {
            kind: R::Recorder,
            name: "recorder",
            discovered_as: Some(Kind::ConfigRecorders),
            removal_rank: 0,
            audit: false,
            name_tag: AUDIT_TAG,
            create_call: "config:PutConfigurationRecorder",
            cost: Usage,
        },
        KindFacts {
            kind: R::FlowLogs,
            name: "flow_logs",
            discovered_as: Some(Kind::FlowLogs),
            removal_rank: 0,
            audit: false,
            name_tag: AUDIT_TAG,
            create_call: "ec2:CreateFlowLogs",
            cost: Usage,
        },
        KindFacts {
            kind: R::InternetGateway,
            name: "internet_gateway",
            discovered_as: Some(Kind::InternetGateways),
            removal_rank: 3,
            audit: false,
            name_tag: "AlertLogic Internet Gateway",
            create_call: "ec2:CreateInternetGateway",
            cost: Free,
        },
        KindFacts {
            kind: R::Subnet,
            name: "subnet",
            discovered_as: Some(Kind::Subnets),
            removal_rank: 2,
            audit: false,
            name_tag: "AlertLogic Security Subnet",
            create_call: "ec2:CreateSubnet",
            cost: Free,
        },
        KindFacts {
            kind: R::RouteTable,
            name: "route_table",
            discovered_as: Some(Kind::RouteTables),
            removal_rank: 1,
            audit: false,
            name_tag: "AlertLogic Security Route Table",
            create_call: "ec2:CreateRouteTable",
            cost: Free,
        },
        KindFacts {
            kind: R::NetworkAcl,
            name: "network_acl",
            discovered_as: Some(Kind::NetworkAcls),
            removal_rank: 1,
            audit: false,
            name_tag: "AlertLogic Security Network ACL",
            create_call: "ec2:CreateNetworkAcl",
            cost: Free,
        },
        KindFacts {
            kind: R::SecurityGroup,
            name: "security_group",
            discovered_as: Some(Kind::SecurityGroups),
            removal_rank: 1,
            audit: false,
            name_tag: "AlertLogic Security Group",
            create_call: "ec2:CreateSecurityGroup",
            cost: Free,
        },
        KindFacts {
            kind: R::Appliance,
            name: "appliance",
            discovered_as: Some(Kind::Instances),
            removal_rank: 0,
            audit: false,
            name_tag: "AlertLogic Scan Appliance",
            create_call: "ec2:RunInstances",
            cost: Hourly,
        },
        KindFacts {
            kind: R::EventBus,
            name: "event_bus",
            discovered_as: None,
            removal_rank: 1,
            audit: true,
            name_tag: FEED_TAG,
            create_call: "events:CreateEventBus",
            cost: Usage,
        },
        KindFacts {
            kind: R::EventRule,
            name: "event_rule",
            discovered_as: None,
            removal_rank: 0,
            audit: true,
            name_tag: FEED_TAG,
            create_call: "events:PutRule",
            cost: Usage,
        },
        KindFacts {
            kind: R::EventRole,
            name: "event_role",
            discovered_as: None,
            removal_rank: 1,
            audit: true,
            name_tag: FEED_TAG,
            create_call: "iam:CreateRole",
            cost: Free,
        },
        KindFacts {
            kind: R::QueuePolicy,
            name: "queue_policy",
            discovered_as: None,
            removal_rank: 0,
            audit: true,
            name_tag: FEED_TAG,
            create_call: "sqs:SetQueueAttributes",
            cost: Free,
        },
        // VPC Traffic Mirroring (otis `span_port_enabled`): sessions go before the targets and
        // filters they use (AWS refuses to delete those while a session uses them).
        KindFacts {
            kind: R::MirrorFilter,
            name: "mirror_filter",
            discovered_as: Some(Kind::Mirroring),
            removal_rank: 1,
            audit: false,
            name_tag: "AlertLogic IDS Mirror Filter",
            create_call: "ec2:CreateTrafficMirrorFilter",
            cost: Free,
        },
        KindFacts {
            kind: R::MirrorTarget,
            name: "mirror_target",
            discovered_as: Some(Kind::Mirroring),
            removal_rank: 1,
            audit: false,
            name_tag: "AlertLogic IDS Mirror Target",
            create_call: "ec2:CreateTrafficMirrorTarget",
            cost: Free,
        },
        KindFacts {
            kind: R::MirrorSession,
            name: "mirror_session",
            discovered_as: Some(Kind::Mirroring),
            removal_rank: 0,
            audit: false,
            name_tag: "AlertLogic IDS Mirror Session",
            create_call: "ec2:CreateTrafficMirrorSession",
            cost: Usage,
        },
    ]
};

impl ResKind {
    pub const ALL: [ResKind; 22] = [
        ResKind::Bucket,
        ResKind::Topic,
        ResKind::Queue,
        ResKind::Subscription,
        ResKind::BucketNotification,
        ResKind::Trail,
        ResKind::Detector,
        ResKind::Recorder,
        ResKind::FlowLogs,
        ResKind::InternetGateway,
        ResKind::Subnet,
        ResKind::RouteTable,
        ResKind::NetworkAcl,
        ResKind::SecurityGroup,
        ResKind::Appliance,
        ResKind::EventBus,
        ResKind::EventRule,
        ResKind::EventRole,
        ResKind::QueuePolicy,
        ResKind::MirrorFilter,
        ResKind::MirrorTarget,
        ResKind::MirrorSession,
    ];

    /// This kind's row of `KINDS`.
    pub fn facts(self) -> &'static KindFacts {
        &KINDS[self as usize]
    }

    pub fn as_str(self) -> &'static str {
        self.facts().name
    }

    pub fn removal_rank(self) -> u8 {
        self.facts().removal_rank
    }

    pub fn is_audit(self) -> bool {
        self.facts().audit
    }

    /// The `Name` tag of a resource of this kind built from `spec`: IDS appliances and
    /// groups say so.
    pub fn name_tag(self, spec: Option<&Spec>) -> &'static str {
        match (self, spec) {
            (ResKind::Appliance, Some(Spec::Appliance { role: Role::Ids, .. })) => "AlertLogic IDS Appliance",
            (ResKind::SecurityGroup, Some(Spec::SecurityGroup { name, .. })) if name.contains("IDS") => {
                "AlertLogic IDS Security Group"
            }
            _ => self.facts().name_tag,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Scan,
    Ids,
}

impl Role {
    /// As the appliance channel and its agent name it (`--role`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Scan => "scan",
            Role::Ids => "ids",
        }
    }
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
    Bucket {
        name: String,
    },
    Topic {
        name: String,
        bucket: String,
    },
    /// The audit queue; `topic`: the SNS topic it is subscribed to (none when an adopted
    /// trail publishes no notifications and the event feed is its only input).
    Queue {
        name: String,
        #[serde(default)]
        topic: Option<Ref>,
    },
    Subscription {
        topic: Ref,
        queue: Ref,
    },
    BucketNotification {
        bucket: Ref,
        topic: Ref,
    },
    Trail {
        name: String,
        bucket: Ref,
    },
    Detector,
    Recorder {
        name: String,
        bucket: Ref,
    },
    FlowLogs {
        vpc: String,
        bucket: Ref,
    },
    InternetGateway {
        vpc: String,
    },
    Subnet {
        vpc: String,
        zone: String,
        cidr: String,
    },
    RouteTable {
        vpc: String,
        subnet: Ref,
        gateway: Ref,
    },
    NetworkAcl {
        vpc: String,
        subnet: Ref,
        vpc_cidr: String,
        /// The CIDRs of the VPCs a hub protects (otis `cross_network_protection`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        peers: Vec<String>,
    },
    SecurityGroup {
        vpc: String,
        name: String,
        ingress: Vec<Perm>,
        egress: Vec<Perm>,
    },
    Appliance {
        role: Role,
        vpc: String,
        zone: String,
        instance_type: String,
        image: String,
        subnet: Ref,
        group: Ref,
    },
    /// The event feed's bus, where every region's rule forwards (in the queue's region).
    EventBus {
        name: String,
    },
    /// An EventBridge rule and its one target: on a region's default bus (`bus` none),
    /// forwarding to the feed bus (with `role` from another region); or on the feed bus,
    /// forwarding to the queue. `pattern` is the catalog's (`garrison_catalog::feed`).
    EventRule {
        name: String,
        bus: Option<Ref>,
        pattern: String,
        target: Ref,
        role: Option<Ref>,
    },
    /// The role EventBridge takes to put events on the feed bus from another region.
    EventRole {
        name: String,
        bus: Ref,
    },
    /// The queue policy's statement that lets the feed bus's rule send to the queue.
    QueuePolicy {
        queue: Ref,
        rule: Ref,
    },
    /// What an IDS appliance is sent of the traffic it watches: everything, both ways
    /// (`mirror_filter_rules`).
    MirrorFilter {
        vpc: String,
    },
    /// The IDS appliance's primary network interface as a mirror target.
    MirrorTarget {
        appliance: Ref,
    },
    /// A protected instance's network interface mirrored to a target; `number` is the
    /// session's priority on that interface (garrison takes the lowest free one, after the
    /// customer's own sessions).
    MirrorSession {
        interface: String,
        target: Ref,
        filter: Ref,
        number: i32,
    },
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
            Spec::EventBus { .. } => ResKind::EventBus,
            Spec::EventRule { .. } => ResKind::EventRule,
            Spec::EventRole { .. } => ResKind::EventRole,
            Spec::QueuePolicy { .. } => ResKind::QueuePolicy,
            Spec::MirrorFilter { .. } => ResKind::MirrorFilter,
            Spec::MirrorTarget { .. } => ResKind::MirrorTarget,
            Spec::MirrorSession { .. } => ResKind::MirrorSession,
        }
    }

    /// The keys this resource needs to exist first.
    pub fn refs(&self) -> Vec<&str> {
        match self {
            Spec::Queue { topic, .. } => topic.iter().map(String::as_str).collect(),
            Spec::EventRule { bus, target, role, .. } => {
                bus.iter().chain(role.iter()).chain(std::iter::once(target)).map(String::as_str).collect()
            }
            Spec::EventRole { bus, .. } => vec![bus],
            Spec::QueuePolicy { queue, rule } => vec![queue, rule],
            Spec::Subscription { topic, queue } => vec![topic, queue],
            Spec::BucketNotification { bucket, topic } => vec![bucket, topic],
            Spec::Trail { bucket, .. } | Spec::Recorder { bucket, .. } | Spec::FlowLogs { bucket, .. } => vec![bucket],
            Spec::RouteTable { subnet, gateway, .. } => vec![subnet, gateway],
            Spec::NetworkAcl { subnet, .. } => vec![subnet],
            Spec::Appliance { subnet, group, .. } => vec![subnet, group],
            Spec::MirrorTarget { appliance } => vec![appliance],
            Spec::MirrorSession { target, filter, .. } => vec![target, filter],
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
    /// The operator's tags (otis `*security_resource_tags`) garrison put on it, so that a
    /// tag the operator drops is taken off and a tag someone else added is left alone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
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
        /// The operator's tags, beside garrison's own.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        tags: BTreeMap<String, String>,
        /// A replacement: the key the resource it replaces is recorded under (`retired/…`)
        /// before the create, so that it stays garrison's until it is removed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retire: Option<String>,
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
    /// Brings the operator's tags on an EC2 resource to what the options say.
    Tag {
        id: String,
        set: BTreeMap<String, String>,
        unset: Vec<String>,
    },
    /// Changes a resource in place to `spec` (a mirror session sent to another target or
    /// filter, a filter given back the rules it lost).
    Modify {
        id: String,
        spec: Spec,
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
            Op::Tag { .. } => "tag",
            Op::Modify { .. } => "modify",
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

/// The rule a mirror filter has in each direction (`ingress`, `egress`): number, action,
/// source and destination — every packet, accepted. A filter without rules mirrors nothing.
pub const MIRROR_FILTER_RULE: (i32, &str, &str, &str) = (100, "accept", "0.0.0.0/0", "0.0.0.0/0");

/// Mirrored packets reach the target in VXLAN on this UDP port: the IDS group lets it in
/// from the sources' VPC.
pub const VXLAN_PORT: i32 = 4789;

/// The most sessions AWS lets one network interface be the source of.
pub const MAX_SESSIONS_PER_INTERFACE: usize = 3;

/// The most sources AWS lets a network-interface target take (all but the largest instance
/// sizes: 10; garrison assumes 10 everywhere, never more than AWS takes).
pub const MAX_SOURCES_PER_TARGET: usize = 10;

/// One entry of a security subnet's ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    pub name: String,
    pub rule: i32,
    pub egress: bool,
    /// `-1` (all), `6` (TCP), `17` (UDP)
    pub protocol: &'static str,
    pub cidr: String,
    pub ports: Option<(i32, i32)>,
}

/// The ACL of a security subnet: everything in from the VPC (and from the VPCs a hub
/// protects), replies in from anywhere, everything out (the groups narrow it per appliance).
pub fn acl_entries(vpc_cidr: &str, peers: &[String]) -> Vec<AclEntry> {
    let e = |name: &str, rule, egress, protocol, cidr: &str, ports| AclEntry {
        name: name.into(),
        rule,
        egress,
        protocol,
        cidr: cidr.into(),
        ports,
    };
    let mut v = vec![
        e("InVpc", 100, false, "-1", vpc_cidr, None),
        e("InTcpReplies", 110, false, "6", "0.0.0.0/0", Some((1024, 65535))),
        e("InUdpReplies", 120, false, "17", "0.0.0.0/0", Some((1024, 65535))),
        e("OutAll", 100, true, "-1", "0.0.0.0/0", None),
    ];
    for (i, p) in peers.iter().enumerate() {
        v.push(e(&format!("InPeer{i}"), 130 + i as i32, false, "-1", p, None));
    }
    v
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

/// The Sid of the queue policy's event-feed statement (a `QueuePolicy` resource).
pub const FEED_SID: &str = "FromTheEventFeedRuleOnly";

/// The statement that lets the feed bus's one rule send to the queue.
pub fn feed_statement(queue: Value, rule: Value) -> Value {
    json!({
        "Sid": FEED_SID, "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage", "Resource": queue,
        "Condition": {"ArnEquals": {"aws:SourceArn": rule}}
    })
}

/// `policy` (a queue policy's text, maybe empty) with the feed statement put in or, when
/// `statement` is None, taken out; the other statements are kept as they are.
pub fn with_feed_statement(policy: Option<&str>, statement: Option<Value>) -> Value {
    let mut doc: Value = policy
        .filter(|p| !p.trim().is_empty())
        .and_then(|p| serde_json::from_str(p).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"Version": "2012-10-17", "Statement": []}));
    let mut list: Vec<Value> = match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(o @ Value::Object(_)) => vec![o.clone()],
        _ => vec![],
    };
    list.retain(|s| s.get("Sid").and_then(Value::as_str) != Some(FEED_SID));
    list.extend(statement);
    doc["Statement"] = Value::Array(list);
    doc
}

/// The trust policy of the event feed's role: EventBridge, for rules of this account.
pub fn event_role_trust(account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}}
        }]
    })
}

/// What the event feed's role may do: put events on the feed bus, nothing else.
pub fn event_role_policy(bus: Value) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": bus}]
    })
}

#[cfg(test)]
mod kind_table_tests {
    use super::*;

    #[test]
    fn every_kind_has_its_row_and_the_rows_agree_with_the_wire() {
        let mut names = std::collections::BTreeSet::new();
        for (i, kind) in ResKind::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, i, "ResKind::ALL is in declaration order");
            let f = kind.facts();
            assert_eq!(f.kind, kind, "KINDS[{i}] is {:?}'s row", kind);
            assert_eq!(serde_json::to_value(kind).unwrap(), f.name, "{kind:?}: its record name is its serde name");
            assert!(names.insert(f.name), "{} twice", f.name);
            assert!(f.create_call.contains(':') && !f.name_tag.is_empty(), "{kind:?}");
            // Audit-path kinds are found by garrison's own reads, the others by discovery.
            assert_eq!(f.audit, f.discovered_as.is_none(), "{kind:?}");
        }
        // A removal never waits for something of its own rank in the same region to go.
        assert!(ResKind::Appliance.removal_rank() < ResKind::SecurityGroup.removal_rank());
        assert!(ResKind::RouteTable.removal_rank() < ResKind::Subnet.removal_rank());
        assert!(ResKind::Subnet.removal_rank() < ResKind::InternetGateway.removal_rank());
        // Rules before the bus and role they use and the queue they send to.
        assert!(ResKind::EventRule.removal_rank() < ResKind::EventBus.removal_rank());
        assert!(ResKind::EventRule.removal_rank() < ResKind::EventRole.removal_rank());
        assert!(ResKind::EventRule.removal_rank() < ResKind::Queue.removal_rank());
    }

    #[test]
    fn the_feed_statement_is_added_and_removed_leaving_the_others() {
        let queue = json!("arn:aws:sqs:us-east-1:1:q");
        let base = queue_policy(queue.clone(), json!("arn:aws:sns:us-east-1:1:t")).to_string();
        let st = feed_statement(queue.clone(), json!("arn:aws:events:us-east-1:1:rule/b/r"));
        let with = with_feed_statement(Some(&base), Some(st.clone()));
        assert_eq!(with["Statement"].as_array().unwrap().len(), 2);
        // Idempotent: putting it twice keeps one.
        let again = with_feed_statement(Some(&with.to_string()), Some(st.clone()));
        assert_eq!(again, with);
        let without = with_feed_statement(Some(&with.to_string()), None);
        assert_eq!(without, serde_json::from_str::<Value>(&base).unwrap());
        // No policy yet (a queue with no topic), or an unreadable one: the statement alone.
        for p in [None, Some(""), Some("not json")] {
            assert_eq!(with_feed_statement(p, Some(st.clone()))["Statement"], json!([st]));
        }
    }

    #[test]
    fn a_queue_record_of_before_the_feed_still_reads() {
        let old: Spec = serde_json::from_value(json!({"type": "queue", "name": "q", "topic": "audit/topic"})).unwrap();
        assert_eq!(old, Spec::Queue { name: "q".into(), topic: Some("audit/topic".into()) });
        assert_eq!(old.refs(), vec!["audit/topic"]);
    }
}
