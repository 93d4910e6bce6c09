//! AWS errors told apart: throttling and server faults are retryable, the rest terminal;
//! the AWS error code is kept so that callers can report it.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::error::SdkError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    Retryable,
    Terminal,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{service}:{operation} failed: {code}: {message}")]
pub struct CloudError {
    pub service: &'static str,
    pub operation: &'static str,
    pub code: String,
    pub message: String,
    pub class: Class,
}

const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "SlowDown",
    "ProvisionedThroughputExceededException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
];

impl CloudError {
    pub fn from_sdk<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
        service: &'static str,
        operation: &'static str,
        e: SdkError<E, R>,
    ) -> CloudError {
        let (code, message, class) = match &e {
            SdkError::ServiceError(se) => {
                let code = se.err().code().unwrap_or("Unknown").to_string();
                let class = if RETRYABLE_CODES.contains(&code.as_str()) { Class::Retryable } else { Class::Terminal };
                (code, se.err().message().unwrap_or_default().to_string(), class)
            }
            SdkError::TimeoutError(_) => ("Timeout".into(), "the call timed out".into(), Class::Retryable),
            SdkError::DispatchFailure(d) => ("DispatchFailure".into(), format!("{d:?}"), Class::Retryable),
            SdkError::ResponseError(r) => ("ResponseError".into(), format!("{r:?}"), Class::Retryable),
            other => ("Unknown".into(), format!("{other:?}"), Class::Terminal),
        };
        // AWS names the customer's role in its messages; they reach statuses and logs.
        let message = garrison_model::redact::text(&message);
        CloudError { service, operation, code, message, class }
    }

    pub fn terminal(service: &'static str, operation: &'static str, code: &str, message: &str) -> CloudError {
        let message = garrison_model::redact::text(message);
        CloudError { service, operation, code: code.into(), message, class: Class::Terminal }
    }

    pub fn is_retryable(&self) -> bool {
        self.class == Class::Retryable
    }
}
