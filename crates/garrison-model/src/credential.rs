//! credentials v2: a stored AWS IAM role that garrison assumes.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Stamp;
use crate::error::{FieldError, ValidationError, describe};
use crate::json_path::{Reader, join};

/// The secret part of a credential; sealed at rest, never logged.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleSecret {
    pub arn: String,
}

impl std::fmt::Debug for RoleSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoleSecret(<sealed>)")
    }
}

/// A validated create_credential body.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCredential {
    pub name: String,
    pub secret: RoleSecret,
}

/// A credential as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Credential {
    pub id: String,
    pub name: String,
    pub secrets: CredentialSecrets,
    pub created: Stamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CredentialSecrets {
    #[serde(rename = "type")]
    pub kind: String,
    pub arn: String,
    pub external_id: String,
}

static ROLE_ARN: LazyLock<Regex> = LazyLock::new(|| {
    // The aws partition only: garrison's own principal and regions are there, and a role in
    // aws-us-gov or aws-cn cannot trust it.
    Regex::new(r"^arn:aws:iam::[0-9]{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$").unwrap()
});

pub fn is_role_arn(s: &str) -> bool {
    ROLE_ARN.is_match(s)
}

/// The 12-digit AWS account id inside a role ARN.
pub fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| a.len() == 12)
}

pub const MAX_NAME: usize = 256;

impl NewCredential {
    pub fn from_json(body: &Value) -> Result<NewCredential, ValidationError> {
        let mut errors = ValidationError::default();
        let mut r = Reader { errors: &mut errors };
        let Some(m) = r.object("body", body) else {
            return Err(errors);
        };
        r.known_keys("", m, &["name", "secrets"]);
        let name = match m.get("name") {
            None => {
                r.fail(FieldError::new("name", "a credential name (string)", "nothing"));
                None
            }
            Some(v) => r.string("name", v).filter(|n| {
                let ok = !n.trim().is_empty() && n.len() <= MAX_NAME;
                if !ok {
                    r.errors.push(FieldError::new(
                        "name",
                        format!("1 to {MAX_NAME} characters"),
                        format!("{} characters", n.len()),
                    ));
                }
                ok
            }),
        };
        let arn = match m.get("secrets") {
            None => {
                r.fail(
                    FieldError::new("secrets", "an object {\"type\": \"aws_iam_role\", \"arn\": …}", "nothing")
                        .hint("--secrets '{\"type\": \"aws_iam_role\", \"arn\": \"arn:aws:iam::123456789012:role/garrison\"}'"),
                );
                None
            }
            Some(v) => secrets(&mut r, v),
        };
        match (name, arn) {
            (Some(name), Some(arn)) if errors.is_empty() => Ok(NewCredential { name, secret: RoleSecret { arn } }),
            _ => Err(errors),
        }
    }
}

fn secrets(r: &mut Reader<'_>, v: &Value) -> Option<String> {
    let m = r.object("secrets", v)?;
    r.known_keys("secrets", m, &["type", "arn"]);
    match m.get("type") {
        // The spec gives aws_iam_role as the default type.
        None => {}
        Some(Value::String(t)) if t == "aws_iam_role" => {}
        Some(Value::String(t)) if t == "azure_ad_user" => r.fail(
            FieldError::new("secrets.type", "\"aws_iam_role\"", "\"azure_ad_user\"")
                .hint("garrison protects AWS accounts only; Azure credentials are not supported"),
        ),
        Some(other) => r.fail(FieldError::new("secrets.type", "\"aws_iam_role\"", describe(other))),
    }
    match m.get("arn") {
        None => {
            r.fail(FieldError::new(
                "secrets.arn",
                "an IAM role ARN, arn:aws:iam::<12-digit account>:role/<name>",
                "nothing",
            ));
            None
        }
        Some(v) => {
            let arn = r.string(&join("secrets", "arn"), v)?;
            if is_role_arn(&arn) {
                Some(arn)
            } else {
                r.fail(
                    FieldError::new(
                        "secrets.arn",
                        "an IAM role ARN, arn:aws:iam::<12-digit account>:role/<name>",
                        describe(v),
                    )
                    .hint("use the RoleARN output of the CloudFormation stack"),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_reference_body() {
        let c = NewCredential::from_json(&json!({"name": "IAM policy", "secrets": {"arn": "arn:aws:iam::123412341234:role/x", "type": "aws_iam_role"}})).unwrap();
        assert_eq!(c.secret.arn, "arn:aws:iam::123412341234:role/x");
        assert_eq!(arn_account(&c.secret.arn), Some("123412341234"));
    }

    #[test]
    fn names_the_bad_field() {
        let e = NewCredential::from_json(&json!({"name": "x", "secrets": {"arn": "arn:aws:iam::1234:role/x"}}))
            .unwrap_err();
        assert_eq!(e.errors.len(), 1);
        assert_eq!(e.errors[0].field, "secrets.arn");
        let e = NewCredential::from_json(
            &json!({"secrets": {"arn": "arn:aws:iam::123412341234:role/x", "type": "keypair"}}),
        )
        .unwrap_err();
        let fields: Vec<&str> = e.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "secrets.type"]);
    }

    #[test]
    fn debug_never_shows_the_arn() {
        let s = format!("{:?}", RoleSecret { arn: "arn:aws:iam::123412341234:role/x".into() });
        assert!(!s.contains("123412341234"));
    }
}
