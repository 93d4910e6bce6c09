//! The audit log: every AWS write garrison makes in a customer account, and the decisions
//! it records about them. A write is recorded *before* it is made (outcome `pending`) and
//! completed after, so that a process killed at any point leaves an entry for every call
//! that may have reached AWS.

use serde::{Deserialize, Serialize};

/// The outcome of a write whose result is not known yet: in flight, or its process died.
pub const PENDING: &str = "pending";
/// The outcome of a write AWS accepted.
pub const OK: &str = "ok";

/// Whether an AWS operation (`DescribeNetworkAcls`, or `ec2:DescribeNetworkAcls`) only reads:
/// such calls are never audit entries, which hold writes only.
pub fn is_read(op: &str) -> bool {
    let op = op.rsplit(':').next().unwrap_or(op);
    ["Describe", "Get", "List", "Head", "Lookup"].iter().any(|p| op.starts_with(p))
}

/// One entry of a deployment's audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// When the call was about to be made, in milliseconds since the epoch.
    pub at_ms: i64,
    pub deployment_id: String,
    /// The executor generation that made the call.
    pub generation: i64,
    pub region: String,
    /// `service:Operation`, e.g. `ec2:RunInstances`; garrison's own notes use `garrison:…`.
    pub call: String,
    /// The resource the call names (an id, a name or an ARN; for a create, where it is made).
    pub resource: String,
    /// The plan key (`garrison-key` tag) of the resource the write is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `pending`, `ok`, or the AWS error code.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A page of a deployment's audit log, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub deployment_id: String,
    pub entries: Vec<AuditEntry>,
    /// Present while older entries remain: pass it back as `continue` for the next page.
    #[serde(rename = "continue", default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[cfg(test)]
mod read_tests {
    use super::is_read;

    #[test]
    fn reads_are_told_from_writes() {
        for r in ["DescribeNetworkAcls", "ec2:DescribeInstances", "s3:GetBucketPolicy", "ListTrails", "s3:HeadBucket"] {
            assert!(is_read(r), "{r}");
        }
        for w in
            ["ReplaceNetworkAclAssociation", "ec2:RunInstances", "PutBucketPolicy", "CreateTrail", "garrison:Adopt"]
        {
            assert!(!is_read(w), "{w}");
        }
    }
}
