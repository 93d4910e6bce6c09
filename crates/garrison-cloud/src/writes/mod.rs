//! Every write garrison makes in a customer account: building, changing and removing the
//! resources of a plan. Each AWS call is written to a `Journal` (call, resource, outcome)
//! that the engine persists as the audit log. Creates carry the ownership tags; instance
//! launches carry an idempotency token.

mod audit;
mod detect;
mod feed;
pub mod kinds;
mod mirror;
mod network;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use garrison_model::protection::{Perm, ResKind, Spec};

use crate::{Aws, CloudError};

/// One AWS write: recorded before the call with outcome `pending`, completed after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// When the call was about to be made, in milliseconds since the epoch.
    pub at_ms: i64,
    pub region: String,
    pub call: String,
    pub resource: String,
    /// The plan key of the resource the write is for.
    pub key: Option<String>,
    /// "pending", "ok" or the AWS error code.
    pub outcome: String,
    pub message: Option<String>,
}

pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Where writes are recorded. `intent` is called before each AWS write and must have made
/// the record durable when it returns; when it fails the write is not made, so no call
/// reaches AWS unrecorded, whenever the process dies. `outcome` completes the record.
pub trait AuditSink: Send + Sync {
    /// Records `entry` (outcome `pending`) and returns its id.
    fn intent(&self, entry: Entry) -> BoxFuture<'_, Result<String, String>>;
    fn outcome(&self, id: String, outcome: String, message: Option<String>) -> BoxFuture<'_, ()>;
}

/// Keeps entries in memory: for writes whose record is not the audit log's (tests, checks).
#[derive(Debug, Default)]
pub struct Memory {
    entries: Mutex<Vec<Entry>>,
}

impl Memory {
    pub fn entries(&self) -> Vec<Entry> {
        self.entries.lock().expect("journal").clone()
    }
}

impl AuditSink for Memory {
    fn intent(&self, entry: Entry) -> BoxFuture<'_, Result<String, String>> {
        let mut entries = self.entries.lock().expect("journal");
        entries.push(entry);
        let id = (entries.len() - 1).to_string();
        Box::pin(async move { Ok(id) })
    }

    fn outcome(&self, id: String, outcome: String, message: Option<String>) -> BoxFuture<'_, ()> {
        if let Ok(i) = id.parse::<usize>()
            && let Some(e) = self.entries.lock().expect("journal").get_mut(i)
        {
            e.outcome = outcome;
            e.message = message;
        }
        Box::pin(async {})
    }
}

/// The audit journal a write goes through.
#[derive(Clone)]
pub struct Journal {
    sink: Arc<dyn AuditSink>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Journal")
    }
}

impl Default for Journal {
    fn default() -> Self {
        Journal { sink: Arc::new(Memory::default()) }
    }
}

impl Journal {
    pub fn new(sink: Arc<dyn AuditSink>) -> Self {
        Journal { sink }
    }

    /// One write that is not part of a resource plan (an enrollment's StackSet operations),
    /// journaled as plan writes are: recorded before it is made, not made when it cannot
    /// be recorded, completed after. `key` names what it is for in the audit log.
    pub async fn write<T, E, R>(
        &self,
        aws: &Aws,
        key: &str,
        service: &'static str,
        op: &'static str,
        resource: &str,
        fut: impl std::future::Future<Output = Result<T, aws_sdk_s3::error::SdkError<E, R>>>,
    ) -> Result<T, CloudError>
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
        R: std::fmt::Debug,
    {
        static NOTHING: std::sync::LazyLock<BTreeMap<String, Created>> = std::sync::LazyLock::new(BTreeMap::new);
        let c = Ctx {
            aws: aws.clone(),
            region: aws.region(),
            account: String::new(),
            tags: vec![],
            journal: self,
            key: Some(key.to_string()),
            resolved: &NOTHING,
            user_data: None,
        };
        c.call(service, op, resource, fut).await
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
    /// The plan key of the resource being written, for the audit log.
    pub key: Option<String>,
    /// key -> (id, arn) of what exists already.
    pub resolved: &'a BTreeMap<String, Created>,
    /// An appliance's first-boot script (cloud-init), when garrison watches its health.
    pub user_data: Option<String>,
}

impl Ctx<'_> {
    fn id(&self, key: &str) -> Result<String, CloudError> {
        self.resolved.get(key).map(|made| made.id.clone()).ok_or_else(|| {
            CloudError::terminal("garrison", "Resolve", "MissingDependency", &format!("{key} does not exist"))
        })
    }

    /// The ARN of what `key` made; a key that is an ARN already (a resource garrison does
    /// not make in this account, such as an organization's feed bus) is itself.
    fn arn(&self, key: &str) -> Result<String, CloudError> {
        if key.starts_with("arn:") {
            return Ok(key.to_string());
        }
        self.resolved.get(key).map(|made| made.arn.clone().unwrap_or_else(|| made.id.clone())).ok_or_else(|| {
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
        debug_assert!(
            !garrison_model::audit::is_read(op),
            "{service}:{op} is a read: the audit log holds writes only (make reads outside Ctx::call)"
        );
        self.aws.pace_write(service, op).await;
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let intent = Entry {
            at_ms,
            region: self.region.clone(),
            call: format!("{service}:{op}"),
            resource: resource.to_string(),
            key: self.key.clone(),
            outcome: garrison_model::audit::PENDING.into(),
            message: None,
        };
        // The future is lazy: nothing is sent before the intent is recorded.
        let entry = self.journal.sink.intent(intent).await.map_err(|e| {
            CloudError::terminal(
                "garrison",
                "Audit",
                "AuditUnavailable",
                &format!("{service}:{op} was not made because the audit log could not record it: {e}"),
            )
        })?;
        // Boxed: SDK futures are large, and held inline across the intent's await they made
        // every enclosing future (and a debug build's stack) larger.
        let r = Box::pin(fut).await.map_err(|e| CloudError::from_sdk(service, op, e));
        let (outcome, message) = match &r {
            Ok(t) => (garrison_model::audit::OK.to_string(), made(t).map(|id| format!("created {id}"))),
            Err(e) => (e.code.clone(), Some(e.message.chars().take(300).collect())),
        };
        self.journal.sink.outcome(entry, outcome, message).await;
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

/// What a create made (and, for later writes, what a plan key resolves to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub id: String,
    pub arn: Option<String>,
}

/// Makes `spec`'s resource (the implementation of its kind).
pub async fn create(c: &Ctx<'_>, spec: &Spec, running: bool, token: &str) -> Result<Created, CloudError> {
    kinds::implementation(spec.kind()).create(c, spec, running, token).await
}

/// Removes one owned resource (the caller checked ownership).
pub async fn delete(c: &Ctx<'_>, kind: ResKind, id: &str) -> Result<(), CloudError> {
    kinds::implementation(kind).delete(c, id).await
}

/// Starts an appliance, or a trail's logging.
pub async fn start(c: &Ctx<'_>, kind: ResKind, id: &str) -> Result<(), CloudError> {
    kinds::implementation(kind).start(c, id).await
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

/// Changes an owned resource in place to `spec` (the kinds that can be).
pub async fn modify(c: &Ctx<'_>, id: &str, spec: &Spec) -> Result<(), CloudError> {
    kinds::implementation(spec.kind()).modify(c, id, spec).await
}

/// Brings the operator's tags on an EC2 resource garrison owns to what its options say.
pub async fn tag(c: &Ctx<'_>, id: &str, set: &BTreeMap<String, String>, unset: &[String]) -> Result<(), CloudError> {
    network::tag(c, id, set, unset).await
}

/// Whether an owned resource still exists, for verifying a removal and the audit path
/// (the kinds discovery lists are checked by discovery: false here).
pub async fn exists(c: &Ctx<'_>, kind: ResKind, id: &str) -> Result<bool, CloudError> {
    match kinds::implementation(kind).exists(c, id) {
        Some(check) => check.await,
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use aws_sdk_s3::error::SdkError;
    use aws_sdk_s3::operation::create_bucket::CreateBucketError;
    use aws_smithy_runtime_api::http::Response;

    use super::*;

    struct Refuses;

    impl AuditSink for Refuses {
        fn intent(&self, _: Entry) -> BoxFuture<'_, Result<String, String>> {
            Box::pin(async { Err("database is locked".into()) })
        }
        fn outcome(&self, _: String, _: String, _: Option<String>) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    fn offline_aws() -> Aws {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        Aws::from_config(config)
    }

    fn ctx(journal: &Journal) -> Ctx<'_> {
        static RESOLVED: std::sync::LazyLock<BTreeMap<String, Created>> = std::sync::LazyLock::new(BTreeMap::new);
        Ctx {
            aws: offline_aws(),
            region: "us-east-1".into(),
            account: "111111111111".into(),
            tags: vec![],
            journal,
            key: Some("audit/bucket".into()),
            resolved: &RESOLVED,
            user_data: None,
        }
    }

    #[tokio::test]
    async fn a_write_is_recorded_pending_before_it_is_made_and_completed_after() {
        let memory = Arc::new(Memory::default());
        let journal = Journal::new(memory.clone());
        let c = ctx(&journal);
        let seen_before = Arc::new(Mutex::new(vec![]));
        let (m, seen) = (memory.clone(), seen_before.clone());
        let call = async move {
            *seen.lock().unwrap() = m.entries();
            Ok::<_, SdkError<CreateBucketError, Response>>(())
        };
        c.call("s3", "CreateBucket", "garrison-audit", call).await.unwrap();
        let before = seen_before.lock().unwrap().clone();
        assert_eq!(before.len(), 1, "the intent is recorded before the call runs");
        assert_eq!(
            (before[0].call.as_str(), before[0].outcome.as_str(), before[0].key.as_deref()),
            ("s3:CreateBucket", "pending", Some("audit/bucket"))
        );
        assert_eq!(memory.entries()[0].outcome, "ok", "and completed after it");
    }

    #[tokio::test]
    async fn a_write_the_audit_log_cannot_record_is_not_made() {
        let journal = Journal::new(Arc::new(Refuses));
        let c = ctx(&journal);
        let made = Arc::new(AtomicBool::new(false));
        let m = made.clone();
        let call = async move {
            m.store(true, Ordering::SeqCst);
            Ok::<_, SdkError<CreateBucketError, Response>>(())
        };
        let err = c.call("s3", "CreateBucket", "garrison-audit", call).await.unwrap_err();
        assert!(!made.load(Ordering::SeqCst), "the call never ran");
        assert_eq!(err.code, "AuditUnavailable");
        assert!(err.to_string().contains("s3:CreateBucket was not made"), "{err}");
    }

    #[tokio::test]
    async fn every_kind_has_its_implementation() {
        let journal = Journal::default();
        let c = ctx(&journal);
        for kind in ResKind::ALL {
            let imp = kinds::implementation(kind);
            assert_eq!(imp.kind(), kind, "{kind:?}'s implementation says so");
            // The table and the implementation agree on who checks existence.
            assert_eq!(imp.exists(&c, "x").is_some(), kind.facts().discovered_as.is_none(), "{kind:?}");
        }
        // A spec of another kind is refused before any call.
        let err = kinds::implementation(ResKind::Bucket).create(&c, &Spec::Detector, true, "t").await.unwrap_err();
        assert_eq!(err.code, "SpecMismatch");
        let err = kinds::implementation(ResKind::Subnet).start(&c, "subnet-1").await.unwrap_err();
        assert_eq!(err.code, "Unsupported");
    }
}
