//! CloudFormation rendering of a role definition: one IAM role that trusts garrison's
//! principal only with the tenant's ExternalId, and the role type's policy split into
//! managed policies that each fit IAM's size limit.

use serde_json::{Map, Value, json};

use crate::RoleDef;

/// IAM's limit for one managed policy, in characters not counting white space.
pub const MANAGED_POLICY_LIMIT: usize = 6_144;

/// The principal a role must trust: an account id becomes its `:root` ARN.
pub fn principal_arn(principal: &str) -> String {
    if principal.len() == 12 && principal.bytes().all(|b| b.is_ascii_digit()) {
        format!("arn:aws:iam::{principal}:root")
    } else {
        principal.to_string()
    }
}

/// Size as IAM counts it: the policy without insignificant white space.
pub fn policy_size(doc: &Value) -> usize {
    serde_json::to_string(doc).map(|s| s.len()).unwrap_or(usize::MAX)
}

fn document(statements: Vec<Value>) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// Splits a statement whose action list alone is over the limit into several.
fn split_statement(st: &Value, limit: usize) -> Vec<Value> {
    if policy_size(&document(vec![st.clone()])) <= limit {
        return vec![st.clone()];
    }
    let Some(actions) = st.get("Action").and_then(Value::as_array) else {
        return vec![st.clone()];
    };
    let mut out: Vec<Value> = Vec::new();
    let mut current: Vec<Value> = Vec::new();
    let with = |acts: &[Value], n: usize| {
        let mut s = st.clone();
        s["Action"] = Value::Array(acts.to_vec());
        if let Some(sid) = st.get("Sid").and_then(Value::as_str) {
            s["Sid"] = Value::String(format!("{sid}{n}"));
        }
        s
    };
    for a in actions {
        current.push(a.clone());
        if policy_size(&document(vec![with(&current, out.len() + 1)])) > limit && current.len() > 1 {
            let last = current.pop().unwrap();
            out.push(with(&current, out.len() + 1));
            current = vec![last];
        }
    }
    if !current.is_empty() {
        out.push(with(&current, out.len() + 1));
    }
    out
}

/// Packs a policy's statements, in order, into as few documents of at most `limit` as it takes.
pub fn split_policy(doc: &Value, limit: usize) -> Vec<Value> {
    let statements: Vec<Value> = doc
        .get("Statement")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .iter()
        .flat_map(|s| split_statement(s, limit))
        .collect();
    let mut docs: Vec<Vec<Value>> = vec![];
    for st in statements {
        match docs.last_mut() {
            Some(last)
                if {
                    let mut t = last.clone();
                    t.push(st.clone());
                    policy_size(&document(t)) <= limit
                } =>
            {
                last.push(st)
            }
            _ => docs.push(vec![st]),
        }
    }
    docs.into_iter().map(document).collect()
}

pub fn trust_policy(principal: &str, external_id: Value) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": principal_arn(principal)},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": external_id}}
        }]
    })
}

/// The role template's parameter naming the KMS key of an adopted trail's log files.
pub const AUDIT_KEY_PARAMETER: &str = "AuditLogKmsKeyArn";

/// The fixed name of a role type's role when a StackSet puts it in each account.
pub fn stack_set_role_name(role_type: &str) -> String {
    format!("garrison-{}", role_type.replace('_', "-"))
}

/// `render` with a fixed role name, for a StackSet: each account's role ARN then follows
/// from its id (`arn:aws:iam::<account>:role/<name>`). The name is `garrison-<role type>`.
pub fn render_named(role: &RoleDef, principal: &str) -> (Value, String) {
    let name = stack_set_role_name(&role.role_type);
    let mut t = render(role, principal);
    t["Resources"]["GarrisonRole"]["Properties"]["RoleName"] = Value::String(name.clone());
    (t, name)
}

/// The template for `role` trusting `principal` (an AWS account id or a role ARN).
pub fn render(role: &RoleDef, principal: &str) -> Value {
    let mut resources = Map::new();
    resources.insert(
        "GarrisonRole".into(),
        json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": trust_policy(principal, json!({"Ref": "ExternalId"})),
                "MaxSessionDuration": 3600,
                "Tags": [
                    {"Key": "garrison:role-type", "Value": role.role_type},
                    {"Key": "garrison:role-version", "Value": role.version}
                ]
            }
        }),
    );
    let parts = split_policy(&role.policy_document, MANAGED_POLICY_LIMIT);
    let n = parts.len();
    for (i, doc) in parts.into_iter().enumerate() {
        resources.insert(
            format!("GarrisonPolicy{}", i + 1),
            json!({
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {
                    "Description": format!("garrison {} {} (part {} of {})", role.role_type, role.version, i + 1, n),
                    "PolicyDocument": doc,
                    "Roles": [{"Ref": "GarrisonRole"}]
                }
            }),
        );
    }
    // A customer trail whose log files are encrypted with KMS: the role may decrypt with
    // that one key, named when the stack is made or updated (garrison's status names it).
    resources.insert(
        "GarrisonAuditLogKey".into(),
        json!({
            "Type": "AWS::IAM::Policy",
            "Condition": "DecryptsAuditLogs",
            "Properties": {
                "PolicyName": "garrison-audit-log-key",
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Sid": "ReadTheAdoptedTrailsEncryptedLogFiles", "Effect": "Allow",
                    "Action": "kms:Decrypt", "Resource": {"Ref": AUDIT_KEY_PARAMETER}
                }]},
                "Roles": [{"Ref": "GarrisonRole"}]
            }
        }),
    );
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!("garrison {} role, version {}: {}", role.role_type, role.version, role.description),
        "Conditions": {"DecryptsAuditLogs": {"Fn::Not": [{"Fn::Equals": [{"Ref": AUDIT_KEY_PARAMETER}, ""]}]}},
        "Parameters": {
            AUDIT_KEY_PARAMETER: {
                "Type": "String",
                "Default": "",
                "Description": "The KMS key ARN of an existing trail's log files, when garrison adopts that trail and its files are encrypted (garrison's status names it); empty otherwise",
                "AllowedPattern": "(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+)?"
            },
            "ExternalId": {
                "Type": "String",
                "Description": "The external id garrison gave your account (themis get_role: external_id)",
                "MinLength": 2,
                "MaxLength": 1224,
                "AllowedPattern": "[\\w+=,.@:/-]*"
            }
        },
        "Resources": resources,
        "Outputs": {
            "RoleARN": {"Description": "ARN of the role; give it to credentials create_credential", "Value": {"Fn::GetAtt": ["GarrisonRole", "Arn"]}},
            "IAMRole": {"Description": "Name of the role", "Value": {"Ref": "GarrisonRole"}},
            "ExternalID": {"Description": "The external id the role requires", "Value": {"Ref": "ExternalId"}}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Catalog;
    use proptest::prelude::*;

    fn actions(docs: &[Value]) -> Vec<String> {
        docs.iter()
            .flat_map(|d| d["Statement"].as_array().unwrap().clone())
            .flat_map(|s| match &s["Action"] {
                Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect::<Vec<_>>(),
                Value::String(a) => vec![a.clone()],
                _ => vec![],
            })
            .collect()
    }

    #[test]
    fn every_role_renders_within_limits_and_keeps_every_action() {
        let c = Catalog::builtin();
        for r in c.latest().into_iter().chain([c.get("aws", "ci_full", "2020-01-10").unwrap()]) {
            let t = render(r, "123456789012");
            let policies: Vec<Value> = t["Resources"]
                .as_object()
                .unwrap()
                .values()
                .filter(|v| v["Type"] == "AWS::IAM::ManagedPolicy")
                .map(|v| v["Properties"]["PolicyDocument"].clone())
                .collect();
            for p in &policies {
                assert!(policy_size(p) <= MANAGED_POLICY_LIMIT, "{} part too big", r.role_type);
            }
            assert_eq!(actions(&policies), actions(std::slice::from_ref(&r.policy_document)), "{}", r.role_type);
            let trust = &t["Resources"]["GarrisonRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0];
            assert_eq!(trust["Principal"]["AWS"], "arn:aws:iam::123456789012:root");
            assert_eq!(trust["Condition"]["StringEquals"]["sts:ExternalId"], json!({"Ref": "ExternalId"}));
            assert!(t["Outputs"]["RoleARN"].is_object() && t["Outputs"]["IAMRole"].is_object());
        }
    }

    #[test]
    fn the_role_may_decrypt_with_the_one_key_it_is_given_and_none_by_default() {
        let c = Catalog::builtin();
        let t = render(c.get("aws", "ci_full", "latest").unwrap(), "123456789012");
        let p = &t["Parameters"][AUDIT_KEY_PARAMETER];
        assert_eq!(p["Default"], "");
        let key = &t["Resources"]["GarrisonAuditLogKey"];
        assert_eq!(key["Condition"], "DecryptsAuditLogs", "absent unless a key is named");
        let st = &key["Properties"]["PolicyDocument"]["Statement"][0];
        assert_eq!(
            (st["Action"].as_str(), &st["Resource"]),
            (Some("kms:Decrypt"), &json!({"Ref": AUDIT_KEY_PARAMETER}))
        );
        let re = regex::Regex::new(&format!("^(?:{})$", p["AllowedPattern"].as_str().unwrap())).unwrap();
        assert!(re.is_match("arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"));
        assert!(re.is_match(""));
        assert!(!re.is_match("*") && !re.is_match("arn:aws:kms:us-east-1:111122223333:key/*"), "one key, never all");
    }

    #[test]
    fn ci_full_needs_two_managed_policies() {
        let c = Catalog::builtin();
        let r = c.get("aws", "ci_full", "latest").unwrap();
        assert!(policy_size(&r.policy_document) > MANAGED_POLICY_LIMIT);
        assert_eq!(split_policy(&r.policy_document, MANAGED_POLICY_LIMIT).len(), 2);
    }

    proptest! {
        #[test]
        fn split_keeps_order_and_respects_limit(
            acts in proptest::collection::vec(proptest::collection::vec("[a-z]{2,8}:[A-Za-z*]{1,30}", 1..60), 1..12),
            limit in 400usize..3000,
        ) {
            let statements: Vec<Value> = acts.iter().enumerate()
                .map(|(i, a)| json!({"Sid": format!("S{i}"), "Effect": "Allow", "Action": a, "Resource": "*"}))
                .collect();
            let doc = document(statements);
            let parts = split_policy(&doc, limit);
            for p in &parts { prop_assert!(policy_size(p) <= limit); }
            prop_assert_eq!(actions(&parts), actions(&[doc]));
        }
    }
}
