//! AWS errors told apart: throttling and server faults are retryable, the rest terminal;
//! the AWS error code is kept so that callers can report it.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::error::SdkError;
use garrison_model::error::clip;

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

/// What an operator reads when garrison has no AWS credentials of its own.
pub const NO_CREDENTIALS: &str = "garrison has no AWS credentials of its own: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run it with an instance role";

/// The code of a call that could not be signed because garrison has no credentials.
pub const NO_CREDENTIALS_CODE: &str = "NoCredentials";

fn is_missing_credentials(chain: &str) -> bool {
    let l = chain.to_ascii_lowercase();
    l.contains("credentials") && (l.contains("not load") || l.contains("no providers") || l.contains("failed to load"))
        || l.contains("failedtoloadtoken")
        || l.contains("credentialsnotloaded")
}

/// One sentence for a call that never got an answer, instead of the SDK's `Debug` dump.
fn dispatch_sentence(chain: &str, timeout: bool) -> String {
    if is_missing_credentials(chain) {
        NO_CREDENTIALS.to_string()
    } else if timeout {
        "the connection to AWS timed out".to_string()
    } else {
        format!("the call could not be sent to AWS: {}", clip(chain, 240))
    }
}

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
            SdkError::DispatchFailure(d) => {
                let chain = d
                    .as_connector_error()
                    .map(|c| aws_sdk_s3::error::DisplayErrorContext(c).to_string())
                    .unwrap_or_else(|| format!("{d:?}"));
                let (code, class) = if is_missing_credentials(&chain) {
                    (NO_CREDENTIALS_CODE, Class::Terminal)
                } else {
                    ("DispatchFailure", Class::Retryable)
                };
                (code.into(), dispatch_sentence(&chain, d.is_timeout()), class)
            }
            SdkError::ResponseError(r) => (
                "ResponseError".into(),
                format!("AWS sent an answer garrison could not read ({})", clip(&format!("{r:?}"), 200)),
                Class::Retryable,
            ),
            other => ("Unknown".into(), clip(&format!("{other:?}"), 300), Class::Terminal),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_failures_read_as_one_sentence() {
        let chain = "dispatch failure: other: the credential provider was not enabled: no providers in chain provided credentials (FailedToLoadToken)";
        assert_eq!(dispatch_sentence(chain, false), NO_CREDENTIALS);
        assert_eq!(dispatch_sentence("io error: connection refused", true), "the connection to AWS timed out");
        let long = "x".repeat(5000);
        assert!(dispatch_sentence(&long, false).len() < 300);
    }
}
