//! Role validation: the trust policy must let in only garrison's principal and only with
//! the tenant's ExternalId; the policies must grant the role type's actions. One result
//! per capability, and "not assumable yet" told apart from "trust wrong".

use std::collections::BTreeMap;

use garrison_catalog::RoleDef;
use garrison_catalog::iam_check::{Capability, check_trust, granted_actions, missing_actions};
use garrison_cloud::role_check::{self, FetchError};
use garrison_model::deployment::Reason;
use serde::Serialize;

use crate::Engine;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidationStatus {
    Ok,
    /// The trust policy lets in someone else, or garrison without the ExternalId.
    Unsafe,
    MissingPermissions,
    /// Not assumable or not found after the bounded retries (new roles take a while).
    NotAssumableYet,
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct CapabilityResult {
    pub ok: bool,
    pub missing: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleValidation {
    pub status: ValidationStatus,
    pub message: String,
    pub role_arn: String,
    pub role_type: String,
    pub version: String,
    pub trust_problems: Vec<String>,
    pub capabilities: BTreeMap<Capability, CapabilityResult>,
    /// What an `Error` stands for (set with it).
    #[serde(skip)]
    pub error_reason: Option<Reason>,
    /// The role's permission documents as read (for checks beyond the role type's, such as
    /// decrypting an adopted trail's files).
    #[serde(skip)]
    pub policies: Vec<std::sync::Arc<serde_json::Value>>,
}

impl RoleValidation {
    /// The reason code a run that met this validation ends with.
    pub fn reason(&self) -> Reason {
        match self.status {
            ValidationStatus::Ok => Reason::Converged,
            ValidationStatus::Unsafe => Reason::RoleUnsafe,
            ValidationStatus::MissingPermissions => Reason::RolePermissions,
            ValidationStatus::NotAssumableYet => Reason::RoleNotAssumable,
            ValidationStatus::Error => self.error_reason.unwrap_or(Reason::AwsUnavailable),
        }
    }
}

pub async fn validate(e: &Engine, role_arn: &str, external_id: &str, role: &RoleDef, attempts: u32) -> RoleValidation {
    validate_reusing(e, role_arn, external_id, role, attempts, None).await
}

/// `validate` for a run: the role's permission documents may be reused under `state` (the
/// deployment's version: a change reads them again) where the process allows it; the trust
/// policy is read every time.
pub async fn validate_reusing(
    e: &Engine,
    role_arn: &str,
    external_id: &str,
    role: &RoleDef,
    attempts: u32,
    state: Option<&str>,
) -> RoleValidation {
    let mut v = RoleValidation {
        status: ValidationStatus::Ok,
        message: String::new(),
        role_arn: role_arn.to_string(),
        role_type: role.role_type.clone(),
        version: role.version.clone(),
        trust_problems: vec![],
        capabilities: BTreeMap::new(),
        error_reason: None,
        policies: vec![],
    };
    let docs = match role_check::fetch_reusing(&e.sessions, role_arn, external_id, attempts, e.propagation.1, state)
        .await
    {
        Ok(d) => d,
        Err(FetchError::NotAssumableYet { attempts, code, message }) => {
            let message = garrison_model::redact::text_naming(&message, role_arn);
            v.status = ValidationStatus::NotAssumableYet;
            v.message = format!(
                "the role is not assumable yet after {attempts} attempt(s) ({code}: {message}); a new role takes up to a minute, else check that it exists and trusts garrison with this ExternalId"
            );
            return v;
        }
        Err(FetchError::Failed(err)) => {
            v.status = ValidationStatus::Error;
            v.error_reason = Some(crate::error::reason_of(&err));
            v.message = garrison_model::redact::text_naming(&err.to_string(), role_arn);
            return v;
        }
    };
    v.policies = docs.policies.clone();
    let problems = check_trust(&docs.trust, &e.principal, external_id);
    v.trust_problems = problems.iter().map(|p| p.to_string()).collect();
    let missing = missing_actions(&role.policy_document, &granted_actions(&docs.policies));
    v.capabilities = missing.into_iter().map(|(c, m)| (c, CapabilityResult { ok: m.is_empty(), missing: m })).collect();
    let lacking: Vec<String> = v
        .capabilities
        .iter()
        .filter(|(_, r)| !r.ok)
        .map(|(c, r)| {
            format!(
                "{} ({} action(s), e.g. {})",
                serde_json::to_value(c).ok().and_then(|x| x.as_str().map(str::to_string)).unwrap_or_default(),
                r.missing.len(),
                r.missing[0]
            )
        })
        .collect();
    if !v.trust_problems.is_empty() {
        v.status = ValidationStatus::Unsafe;
        v.message = format!("unsafe role: {}", v.trust_problems.join("; "));
    } else if !lacking.is_empty() {
        v.status = ValidationStatus::MissingPermissions;
        v.message = format!("the role lacks permissions for: {}", lacking.join(", "));
    } else {
        v.message = "Validation successful".into();
    }
    // Only documents that passed are reused: a fix to a role is seen at the next run.
    if v.status != ValidationStatus::Ok
        && let Some(r) = &e.sessions.base.reuse
    {
        r.forget_role(role_arn);
    }
    v
}
