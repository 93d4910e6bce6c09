//! Reading a customer's role as garrison sees it: assume it with the tenant's ExternalId,
//! then read its own trust policy and policy documents with iam:GetRole and friends. A
//! role that cannot be assumed or read yet is retried a bounded number of times, since a
//! new role takes 10-60 s to become usable.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::{CloudError, Sessions};

#[derive(Debug, Clone)]
pub struct RoleDocuments {
    pub trust: Value,
    /// Shared copies (`Sessions::document`): every run of every role made from one
    /// template reads the same few documents.
    pub policies: Vec<Arc<Value>>,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub enum FetchError {
    /// Still not assumable or readable after every attempt; the last AWS error code.
    NotAssumableYet { attempts: u32, code: String, message: String },
    /// An error that retrying does not cure.
    Failed(CloudError),
}

/// A policy document as IAM returns it (URL-encoded JSON) or as plain JSON.
pub fn decode(doc: &str) -> Value {
    serde_json::from_str(doc).unwrap_or_else(|_| {
        // IAM returns documents URL-encoded.
        let b = doc.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%'
                && i + 2 < b.len()
                && let Ok(v) = u8::from_str_radix(&doc[i + 1..i + 3], 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
        serde_json::from_slice(&out).unwrap_or(Value::Null)
    })
}

const PROPAGATION_CODES: &[&str] = &["AccessDenied", "AccessDeniedException", "NoSuchEntity", "InvalidClientTokenId"];

/// `reuse`: the state (deployment and credential versions) under which the permission
/// documents read before may be reused (see `crate::reuse`); None reads them.
async fn fetch_once(
    sessions: &Sessions,
    role_arn: &str,
    external_id: &str,
    reuse: Option<&str>,
) -> Result<RoleDocuments, CloudError> {
    let aws = sessions.assume(role_arn, external_id).await?;
    let name = role_arn.rsplit('/').next().unwrap_or_default().to_string();
    let iam = aws.iam();
    aws.pace("iam").await;
    let role = iam.get_role().role_name(&name).send().await.map_err(|e| CloudError::from_sdk("iam", "GetRole", e))?;
    let r =
        role.role().ok_or_else(|| CloudError::terminal("iam", "GetRole", "NoSuchEntity", "no role in the answer"))?;
    let trust = decode(r.assume_role_policy_document().unwrap_or("{}"));
    let tags = r.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
    let cache = reuse.and_then(|v| Some((aws.reuse.clone()?, v)));
    if let Some(policies) = cache.as_ref().and_then(|(c, v)| c.permissions(role_arn, v)) {
        return Ok(RoleDocuments { trust, policies, tags });
    }
    let mut policies = vec![];
    aws.pace("iam").await;
    let attached = iam
        .list_attached_role_policies()
        .role_name(&name)
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("iam", "ListAttachedRolePolicies", e))?;
    for p in attached.attached_policies() {
        let arn = p.policy_arn().unwrap_or_default();
        aws.pace("iam").await;
        let pol =
            iam.get_policy().policy_arn(arn).send().await.map_err(|e| CloudError::from_sdk("iam", "GetPolicy", e))?;
        let version = pol.policy().and_then(|p| p.default_version_id()).unwrap_or("v1").to_string();
        // A policy version's document never changes (an edit makes a new version), so each
        // is read once per process; which version is the default is read every time. The
        // policy's unique id is part of the key: a policy deleted and made again under the
        // same name starts over at v1 with another document.
        let key = format!("{arn}#{}", pol.policy().and_then(|p| p.policy_id()).unwrap_or_default());
        if let Some(doc) = sessions.policy_version(&key, &version) {
            policies.push(doc);
            continue;
        }
        aws.pace("iam").await;
        let v = iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(&version)
            .send()
            .await
            .map_err(|e| CloudError::from_sdk("iam", "GetPolicyVersion", e))?;
        let doc = sessions.document(v.policy_version().and_then(|p| p.document()).unwrap_or("{}"));
        sessions.keep_policy_version(&key, &version, &doc);
        policies.push(doc);
    }
    aws.pace("iam").await;
    let inline = iam
        .list_role_policies()
        .role_name(&name)
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("iam", "ListRolePolicies", e))?;
    for pname in inline.policy_names() {
        aws.pace("iam").await;
        let p = iam
            .get_role_policy()
            .role_name(&name)
            .policy_name(pname)
            .send()
            .await
            .map_err(|e| CloudError::from_sdk("iam", "GetRolePolicy", e))?;
        policies.push(sessions.document(p.policy_document()));
    }
    if let Some((c, v)) = &cache {
        c.keep_permissions(role_arn, v, policies.clone());
    }
    Ok(RoleDocuments { trust, policies, tags })
}

/// Fetches the role's documents, retrying `attempts` times `delay` apart while the role
/// is not assumable or not found (propagation).
pub async fn fetch(
    sessions: &Sessions,
    role_arn: &str,
    external_id: &str,
    attempts: u32,
    delay: Duration,
) -> Result<RoleDocuments, FetchError> {
    fetch_reusing(sessions, role_arn, external_id, attempts, delay, None).await
}

/// Like `fetch`; the permission documents may be reused under `reuse` (see `fetch_once`).
pub async fn fetch_reusing(
    sessions: &Sessions,
    role_arn: &str,
    external_id: &str,
    attempts: u32,
    delay: Duration,
    reuse: Option<&str>,
) -> Result<RoleDocuments, FetchError> {
    let mut last = None;
    for attempt in 1..=attempts.max(1) {
        match fetch_once(sessions, role_arn, external_id, reuse).await {
            Ok(d) => return Ok(d),
            Err(e) if PROPAGATION_CODES.contains(&e.code.as_str()) => {
                sessions.forget(role_arn);
                last = Some(e);
                if attempt < attempts {
                    tokio::time::sleep(delay).await;
                }
            }
            Err(e) => return Err(FetchError::Failed(e)),
        }
    }
    let e = last.expect("at least one attempt");
    Err(FetchError::NotAssumableYet { attempts: attempts.max(1), code: e.code, message: e.message })
}
