//! The engine's error: a reason code (the error policy's input, `Reason::retry`) and one
//! sentence for the deployment's status.

use garrison_cloud::CloudError;
use garrison_model::deployment::{Reason, Status};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineError {
    pub reason: Reason,
    pub message: String,
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.reason.as_str())
    }
}

impl std::error::Error for EngineError {}

impl EngineError {
    pub fn new(reason: Reason, message: impl Into<String>) -> EngineError {
        EngineError { reason, message: message.into() }
    }
}

impl From<garrison_store::StoreError> for EngineError {
    fn from(e: garrison_store::StoreError) -> Self {
        EngineError::new(Reason::StoreUnavailable, format!("garrison's store: {e}"))
    }
}

impl From<serde_json::Error> for EngineError {
    fn from(e: serde_json::Error) -> Self {
        EngineError::new(Reason::StoreUnavailable, format!("garrison's store: a record could not be encoded: {e}"))
    }
}

/// A status that says a run could not go on becomes the run's error.
impl From<Status> for EngineError {
    fn from(st: Status) -> Self {
        EngineError::new(st.reason.unwrap_or(Reason::AwsUnavailable), st.message.unwrap_or_default())
    }
}

/// The reason an AWS failure stands for, outside role checks: garrison's own missing
/// credentials, a denied call (the role's permissions), or AWS being unavailable.
pub fn reason_of(err: &CloudError) -> Reason {
    const DENIED: &[&str] =
        &["AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "AuthFailure"];
    if err.code == garrison_cloud::error::NO_CREDENTIALS_CODE {
        Reason::NoAwsCredentials
    } else if DENIED.contains(&err.code.as_str()) {
        Reason::RolePermissions
    } else {
        Reason::AwsUnavailable
    }
}

/// The reason a failed AssumeRole stands for.
pub fn assume_reason(err: &CloudError) -> Reason {
    match reason_of(err) {
        Reason::RolePermissions => Reason::RoleNotAssumable,
        Reason::AwsUnavailable if !err.is_retryable() => Reason::RoleNotAssumable,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_failures_map_to_the_reason_an_operator_acts_on() {
        let e = |code: &str| CloudError::terminal("sts", "AssumeRole", code, "m");
        assert_eq!(reason_of(&e(garrison_cloud::error::NO_CREDENTIALS_CODE)), Reason::NoAwsCredentials);
        assert_eq!(reason_of(&e("UnauthorizedOperation")), Reason::RolePermissions);
        assert_eq!(reason_of(&e("InternalError")), Reason::AwsUnavailable);
        assert_eq!(assume_reason(&e("AccessDenied")), Reason::RoleNotAssumable);
        assert_eq!(assume_reason(&e("NoSuchEntity")), Reason::RoleNotAssumable);
        let throttled = CloudError { class: garrison_cloud::error::Class::Retryable, ..e("Throttling") };
        assert_eq!(assume_reason(&throttled), Reason::AwsUnavailable);
        let err = EngineError::from(garrison_store::StoreError::NotFound);
        assert_eq!(err.reason, Reason::StoreUnavailable);
    }
}
