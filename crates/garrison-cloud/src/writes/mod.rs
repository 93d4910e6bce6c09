//! Every write garrison makes in a customer account: building, changing and removing the
//! resources of a plan. Each AWS call is written to a `Journal` (call, resource, outcome)
//! that the engine persists as the audit log. Creates carry the ownership tags; instance
//! launches carry an idempotency token.

mod audit;
mod detect;
mod network;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use garrison_model::protection::{Perm, ResKind, Spec};

use crate::{Aws, CloudError};

/// One AWS write and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// When the call was made, in milliseconds since the epoch.
    pub at_ms: i64,
    pub region: String,
    pub call: String,
    pub resource: String,
    /// "ok" or the AWS error code.
    pub outcome: String,
    pub message: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Journal {
    entries: Arc<Mutex<Vec<Entry>>>,
}

impl Journal {
    pub fn take(&self) -> Vec<Entry> {
        std::mem::take(&mut *self.entries.lock().expect("journal"))
    }

    fn push(&self, e: Entry) {
        self.entries.lock().expect("journal").push(e);
    }
}

/// What a write needs besides the spec: where, whose tags, and how to find the ids of the
/// resources the spec refers to.
pub struct Ctx<'a> {
    pub aws: Aws,
    pub region: String,
    pub account: String,
    pub tags: Vec<(String, String)>,
    pub journal: &'a Journal,
    /// key -> (id, arn) of what exists already.
    pub resolved: &'a BTreeMap<String, (String, Option<String>)>,
}

impl Ctx<'_> {
    fn id(&self, key: &str) -> Result<String, CloudError> {
        self.resolved.get(key).map(|(id, _)| id.clone()).ok_or_else(|| {
            CloudError::terminal("garrison", "Resolve", "MissingDependency", &format!("{key} does not exist"))
        })
    }

    fn arn(&self, key: &str) -> Result<String, CloudError> {
        self.resolved.get(key).and_then(|(id, arn)| arn.clone().or_else(|| Some(id.clone()))).ok_or_else(|| {
            CloudError::terminal("garrison", "Resolve", "MissingDependency", &format!("{key} does not exist"))
        })
    }

    /// Awaits one AWS call, paced by the account's rate budget, and journals it.
    async fn call<T, E, R>(
        &self,
        service: &'static str,
        op: &'static str,
        resource: &str,
        fut: impl std::future::Future<Output = Result<T, aws_sdk_s3::error::SdkError<E, R>>>,
    ) -> Result<T, CloudError>
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
        R: std::fmt::Debug,
    {
        self.call_made(service, op, resource, fut, |_| None).await
    }

    /// A call that creates something inside `resource` (an instance in a subnet): its entry
    /// says `created <id>`, so the audit log ties every resource to the write that made it.
    async fn call_made<T, E, R>(
        &self,
        service: &'static str,
        op: &'static str,
        resource: &str,
        fut: impl std::future::Future<Output = Result<T, aws_sdk_s3::error::SdkError<E, R>>>,
        made: impl FnOnce(&T) -> Option<&str>,
    ) -> Result<T, CloudError>
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
        R: std::fmt::Debug,
    {
        let budget = if service == "ec2" && !op.starts_with("Describe") { crate::limiter::EC2_WRITES } else { service };
        self.aws.pace(budget).await;
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let r = fut.await.map_err(|e| CloudError::from_sdk(service, op, e));
        let (outcome, message) = match &r {
            Ok(t) => ("ok".to_string(), made(t).map(|id| format!("created {id}"))),
            Err(e) => (e.code.clone(), Some(e.message.chars().take(300).collect())),
        };
        self.journal.push(Entry {
            at_ms,
            region: self.region.clone(),
            call: format!("{service}:{op}"),
            resource: resource.to_string(),
            outcome,
            message,
        });
        r
    }
}

/// AWS error codes meaning "no such resource" (EC2's `…NotFound`, S3's `NoSuch…`, SQS's
/// `…NonExistentQueue`, Config's `NoSuch…Exception`).
pub(crate) fn absent(code: &str) -> bool {
    code.contains("NotFound") || code.contains("NoSuch") || code.contains("NonExistent")
}

/// A removal that finds nothing to remove has done its job.
pub(crate) fn gone_ok(r: Result<(), CloudError>) -> Result<(), CloudError> {
    match r {
        Err(e) if absent(&e.code) => Ok(()),
        other => other,
    }
}

/// What a create made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub id: String,
    pub arn: Option<String>,
}

pub async fn create(c: &Ctx<'_>, spec: &Spec, running: bool, token: &str) -> Result<Created, CloudError> {
    match spec {
        Spec::Bucket { name } => audit::bucket(c, name).await,
        Spec::Topic { name, bucket } => audit::topic(c, name, bucket).await,
        Spec::Queue { name, topic } => audit::queue(c, name, &c.arn(topic)?).await,
        Spec::Subscription { topic, queue } => audit::subscribe(c, &c.arn(topic)?, &c.arn(queue)?).await,
        Spec::BucketNotification { bucket, topic } => audit::notify(c, &c.id(bucket)?, &c.arn(topic)?).await,
        Spec::Trail { name, bucket } => audit::trail(c, name, &c.id(bucket)?).await,
        Spec::Detector => detect::detector(c).await,
        Spec::Recorder { name, bucket } => detect::recorder(c, name, &c.id(bucket)?).await,
        Spec::FlowLogs { vpc, bucket } => detect::flow_logs(c, vpc, &c.id(bucket)?).await,
        Spec::InternetGateway { vpc } => network::gateway(c, vpc).await,
        Spec::Subnet { vpc, zone, cidr } => network::subnet(c, vpc, zone, cidr).await,
        Spec::RouteTable { vpc, subnet, gateway } => {
            network::route_table(c, vpc, &c.id(subnet)?, &c.id(gateway)?).await
        }
        Spec::NetworkAcl { vpc, subnet, vpc_cidr } => network::acl(c, vpc, &c.id(subnet)?, vpc_cidr).await,
        Spec::SecurityGroup { vpc, name, ingress, egress } => network::group(c, vpc, name, ingress, egress).await,
        Spec::Appliance { instance_type, image, subnet, group, .. } => {
            network::launch(c, instance_type, image, &c.id(subnet)?, &c.id(group)?, running, token).await
        }
    }
}

/// Removes one owned resource (the caller checked ownership).
pub async fn delete(c: &Ctx<'_>, kind: ResKind, id: &str) -> Result<(), CloudError> {
    match kind {
        ResKind::Bucket => audit::delete_bucket(c, id).await,
        ResKind::Topic => audit::delete_topic(c, id).await,
        ResKind::Queue => audit::delete_queue(c, id).await,
        ResKind::Subscription => audit::unsubscribe(c, id).await,
        ResKind::BucketNotification => audit::unnotify(c, id).await,
        // By name, in its home region: some implementations ignore an ARN here.
        ResKind::Trail => audit::delete_trail(c, id).await,
        ResKind::Detector => detect::delete_detector(c, id).await,
        ResKind::Recorder => detect::delete_recorder(c, id).await,
        ResKind::FlowLogs => detect::delete_flow_logs(c, id).await,
        ResKind::InternetGateway => network::delete_gateway(c, id).await,
        ResKind::Subnet => network::delete_subnet(c, id).await,
        ResKind::RouteTable => network::delete_route_table(c, id).await,
        ResKind::NetworkAcl => network::delete_acl(c, id).await,
        ResKind::SecurityGroup => network::delete_group(c, id).await,
        ResKind::Appliance => network::terminate(c, id).await,
    }
}

/// Starts an appliance, or a trail's logging.
pub async fn start(c: &Ctx<'_>, kind: ResKind, id: &str) -> Result<(), CloudError> {
    match kind {
        ResKind::Trail => audit::start_logging(c, id).await,
        _ => network::start(c, id).await,
    }
}

pub async fn stop(c: &Ctx<'_>, id: &str) -> Result<(), CloudError> {
    network::stop(c, id).await
}

pub async fn set_rules(
    c: &Ctx<'_>,
    id: &str,
    add: (&[Perm], &[Perm]),
    remove: (&[Perm], &[Perm]),
) -> Result<(), CloudError> {
    network::set_rules(c, id, add, remove).await
}

/// Whether an owned resource still exists, for verifying a removal and the audit path
/// (EC2 kinds are checked by discovery; these are the ones it does not list).
pub async fn exists(c: &Ctx<'_>, kind: ResKind, id: &str) -> Result<bool, CloudError> {
    match kind {
        ResKind::Bucket => audit::bucket_exists(c, id).await,
        ResKind::Topic => audit::topic_exists(c, id).await,
        ResKind::Queue => audit::queue_exists(c, id).await,
        ResKind::Subscription => audit::subscription_exists(c, id).await,
        ResKind::BucketNotification => audit::notification_exists(c, id).await,
        _ => Ok(false),
    }
}
