//! Judging a customer's role from its documents (pure; the AWS layer fetches them):
//! does the trust policy let only garrison in, and only with the tenant's ExternalId; and
//! which of the role type's actions do its policies not grant, per capability.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::cft::principal_arn;

fn as_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        _ => vec![],
    }
}

fn statements(doc: &Value) -> Vec<Value> {
    match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(o @ Value::Object(_)) => vec![o.clone()],
        _ => vec![],
    }
}

/// `*`-glob match, case-insensitive as IAM action names are (ASCII; `?` is one byte). No
/// allocation: a permission check runs it for every required action against every grant.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi].eq_ignore_ascii_case(&t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustProblem {
    /// No statement lets garrison's principal assume the role.
    GarrisonNotTrusted,
    /// Anyone (`*`) may assume the role.
    WildcardPrincipal,
    /// A principal other than garrison's may assume the role.
    ForeignPrincipal(String),
    /// garrison may assume it without the ExternalId condition.
    NoExternalIdCondition,
    /// The condition names another external id, or is not StringEquals.
    WrongExternalId,
}

impl std::fmt::Display for TrustProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrustProblem::GarrisonNotTrusted => {
                f.write_str("the trust policy does not let garrison's principal assume the role")
            }
            TrustProblem::WildcardPrincipal => f.write_str("the trust policy lets anyone (\"*\") assume the role"),
            TrustProblem::ForeignPrincipal(p) => write!(f, "the trust policy also lets {p} assume the role"),
            TrustProblem::NoExternalIdCondition => {
                f.write_str("the trust policy does not require the ExternalId (StringEquals sts:ExternalId)")
            }
            TrustProblem::WrongExternalId => {
                f.write_str("the trust policy requires another ExternalId than this account's")
            }
        }
    }
}

fn principal_matches(p: &str, garrison: &str) -> bool {
    let want = principal_arn(garrison);
    let account = want.split(':').nth(4).unwrap_or_default();
    p == want || p == account || (garrison.len() == 12 && p == format!("arn:aws:iam::{garrison}:root"))
}

fn allows_assume(st: &Value) -> bool {
    st.get("Effect").and_then(Value::as_str) == Some("Allow")
        && as_list(st.get("Action").unwrap_or(&Value::Null)).iter().any(|a| glob(a, "sts:AssumeRole"))
}

/// The problems of a trust policy for `garrison` (account id or ARN) and `external_id`;
/// empty means safe.
pub fn check_trust(doc: &Value, garrison: &str, external_id: &str) -> Vec<TrustProblem> {
    let mut problems = vec![];
    let mut trusted = false;
    for st in statements(doc).iter().filter(|s| allows_assume(s)) {
        let principals: Vec<String> = match st.get("Principal") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Object(m)) => m.get("AWS").map(as_list).unwrap_or_default(),
            _ => vec![],
        };
        // Service principals (ec2.amazonaws.com…) are not AWS-account principals.
        if matches!(st.get("Principal"), Some(Value::Object(m)) if !m.contains_key("AWS")) {
            continue;
        }
        for p in &principals {
            if p == "*" {
                problems.push(TrustProblem::WildcardPrincipal);
            } else if !principal_matches(p, garrison) {
                problems.push(TrustProblem::ForeignPrincipal(p.clone()));
            } else {
                trusted = true;
                let cond = st.get("Condition");
                let eq = cond.and_then(|c| c.get("StringEquals")).and_then(|c| c.get("sts:ExternalId"));
                let any_ext =
                    cond.map(|c| c.to_string().to_ascii_lowercase().contains("sts:externalid")).unwrap_or(false);
                match eq {
                    Some(v) if as_list(v) == [external_id.to_string()] => {}
                    Some(_) => problems.push(TrustProblem::WrongExternalId),
                    None if any_ext => problems.push(TrustProblem::WrongExternalId),
                    None => problems.push(TrustProblem::NoExternalIdCondition),
                }
            }
        }
    }
    if !trusted {
        problems.push(TrustProblem::GarrisonNotTrusted);
    }
    problems.dedup();
    problems
}

/// What a role may do, by capability garrison needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Discover,
    AuditSource,
    Appliances,
    Guardduty,
    Config,
    FlowLogs,
    /// VPC Traffic Mirroring for the IDS appliances (otis `span_port_enabled`).
    TrafficMirroring,
    /// An organization's management account: its tree, garrison's role StackSet, the
    /// lifecycle rule and queue (role type `ci_organization`).
    Organization,
}

impl Capability {
    /// Which capability an action of a role definition serves.
    pub fn of(action: &str) -> Capability {
        let a = action.to_ascii_lowercase();
        let (service, name) = a.split_once(':').unwrap_or(("", a.as_str()));
        let read = ["describe", "get", "list", "lookup", "generate"].iter().any(|p| name.starts_with(p));
        let stack_set = name.contains("stackset") || name.contains("stackinstances");
        match service {
            "organizations" => Capability::Organization,
            "cloudformation" if stack_set => Capability::Organization,
            "guardduty" if !read => Capability::Guardduty,
            "config" if !read && name != "deliverconfigsnapshot" => Capability::Config,
            "ec2" if name.contains("flowlogs") => Capability::FlowLogs,
            "ec2" if name.contains("trafficmirror") && !read => Capability::TrafficMirroring,
            "logs" if !read => Capability::FlowLogs,
            "cloudtrail" | "s3" | "sns" | "sqs" if !read || service == "sqs" && name.starts_with("receive") => {
                Capability::AuditSource
            }
            "ec2" | "autoscaling" if !read => Capability::Appliances,
            "iam" if name == "createservicelinkedrole" => Capability::Appliances,
            _ => Capability::Discover,
        }
    }
}

/// Whether an Allow statement of `doc` grants `action` on `resource` (conditions are not
/// evaluated): for checking that a role definition covers what garrison names its resources.
pub fn allows(doc: &Value, action: &str, resource: &str) -> bool {
    statements(doc).iter().filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Allow")).any(|s| {
        as_list(s.get("Action").unwrap_or(&Value::Null)).iter().any(|a| glob(a, action))
            && as_list(s.get("Resource").unwrap_or(&Value::Null)).iter().any(|r| glob(r, resource))
    })
}

/// Whether a KMS key policy lets `role_arn` (a role of `account`) decrypt with the key:
/// an Allow of `kms:Decrypt` to the role, or to the account (which delegates to the role's
/// own IAM policy, checked apart), and no Deny of it to either. Conditions are not
/// evaluated (a conditioned Allow counts).
pub fn key_policy_lets_decrypt(doc: &Value, role_arn: &str, account: &str) -> bool {
    let root = format!("arn:aws:iam::{account}:root");
    let names_us = |s: &Value| -> bool {
        let p = s.get("Principal").unwrap_or(&Value::Null);
        if p.as_str() == Some("*") {
            return true;
        }
        as_list(p.get("AWS").unwrap_or(&Value::Null))
            .iter()
            .any(|a| a == "*" || a == role_arn || a == &root || a == account)
    };
    let decrypts = |s: &Value| as_list(s.get("Action").unwrap_or(&Value::Null)).iter().any(|a| glob(a, "kms:Decrypt"));
    let applies = |effect: &str| {
        statements(doc)
            .iter()
            .any(|s| s.get("Effect").and_then(Value::as_str) == Some(effect) && decrypts(s) && names_us(s))
    };
    !applies("Deny") && applies("Allow")
}

/// Allowed actions of a set of policy documents.
pub fn granted_actions<D: std::borrow::Borrow<Value>>(docs: &[D]) -> Vec<String> {
    docs.iter()
        .flat_map(|d| statements(d.borrow()))
        .filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Allow"))
        .flat_map(|s| as_list(s.get("Action").unwrap_or(&Value::Null)))
        .collect()
}

/// The role definition's actions that `granted` does not cover, by capability. Resource
/// and condition scoping are not compared: only whether each action is allowed at all.
pub fn missing_actions(required: &Value, granted: &[String]) -> BTreeMap<Capability, Vec<String>> {
    // Grants without wildcards are looked up; only the wildcard ones are matched one by one.
    let wild = |g: &&String| g.contains(['*', '?']);
    let exact: std::collections::HashSet<String> =
        granted.iter().filter(|g| !wild(g)).map(|g| g.to_ascii_lowercase()).collect();
    let patterns: Vec<&String> = granted.iter().filter(wild).collect();
    let mut out: BTreeMap<Capability, Vec<String>> = BTreeMap::new();
    for st in statements(required).iter().filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Allow")) {
        for a in as_list(st.get("Action").unwrap_or(&Value::Null)) {
            let covered = exact.contains(&a.to_ascii_lowercase()) || patterns.iter().any(|g| glob(g, &a));
            let e = out.entry(Capability::of(&a)).or_default();
            if !covered && !e.contains(&a) {
                e.push(a);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Catalog;
    use serde_json::json;

    const G: &str = "210987654321";

    fn trust(principal: Value, condition: Option<Value>) -> Value {
        let mut st = json!({"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"});
        if let Some(c) = condition {
            st["Condition"] = c;
        }
        json!({"Version": "2012-10-17", "Statement": [st]})
    }

    #[test]
    fn the_rendered_trust_policy_is_safe() {
        let doc = crate::cft::trust_policy(G, json!("ext-1"));
        assert_eq!(check_trust(&doc, G, "ext-1"), vec![]);
        let by_id = trust(json!(G), Some(json!({"StringEquals": {"sts:ExternalId": "ext-1"}})));
        assert_eq!(check_trust(&by_id, G, "ext-1"), vec![]);
    }

    #[test]
    fn unsafe_trust_policies_are_named() {
        let ok_cond = Some(json!({"StringEquals": {"sts:ExternalId": "ext-1"}}));
        assert_eq!(
            check_trust(&trust(json!(format!("arn:aws:iam::{G}:root")), None), G, "ext-1"),
            vec![TrustProblem::NoExternalIdCondition]
        );
        assert_eq!(
            check_trust(&trust(json!("*"), ok_cond.clone()), G, "ext-1"),
            vec![TrustProblem::WildcardPrincipal, TrustProblem::GarrisonNotTrusted]
        );
        assert_eq!(
            check_trust(
                &trust(json!([format!("arn:aws:iam::{G}:root"), "arn:aws:iam::999999999999:root"]), ok_cond.clone()),
                G,
                "ext-1"
            ),
            vec![TrustProblem::ForeignPrincipal("arn:aws:iam::999999999999:root".into())]
        );
        assert_eq!(
            check_trust(
                &trust(json!(format!("arn:aws:iam::{G}:root")), Some(json!({"StringLike": {"sts:ExternalId": "*"}}))),
                G,
                "ext-1"
            ),
            vec![TrustProblem::WrongExternalId]
        );
        assert_eq!(
            check_trust(&trust(json!(format!("arn:aws:iam::{G}:root")), ok_cond), G, "ext-2"),
            vec![TrustProblem::WrongExternalId]
        );
        let service_only = json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
        assert_eq!(check_trust(&service_only, G, "x"), vec![TrustProblem::GarrisonNotTrusted]);
    }

    /// The matcher as first written (chars, lowercased copies): the reference.
    fn reference_glob(pattern: &str, text: &str) -> bool {
        let (p, t): (Vec<char>, Vec<char>) =
            (pattern.to_ascii_lowercase().chars().collect(), text.to_ascii_lowercase().chars().collect());
        let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
        while ti < t.len() {
            if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
                pi += 1;
                ti += 1;
            } else if pi < p.len() && p[pi] == '*' {
                star = Some(pi);
                mark = ti;
                pi += 1;
            } else if let Some(s) = star {
                pi = s + 1;
                mark += 1;
                ti = mark;
            } else {
                return false;
            }
        }
        while pi < p.len() && p[pi] == '*' {
            pi += 1;
        }
        pi == p.len()
    }

    proptest::proptest! {
        #[test]
        fn glob_agrees_with_the_reference(pattern in "[a-cA-C:*?]{0,8}", text in "[a-cA-C:]{0,10}") {
            proptest::prop_assert_eq!(glob(&pattern, &text), reference_glob(&pattern, &text));
        }

        #[test]
        fn missing_actions_agree_with_matching_every_grant(
            granted in proptest::collection::vec("[a-c]{1,2}:[A-Ca-c*?]{0,4}", 0..12),
            required in proptest::collection::vec("[a-c]{1,2}:[A-Ca-c]{1,4}", 1..12),
        ) {
            let doc = json!({"Statement": [{"Effect": "Allow", "Action": required.clone(), "Resource": "*"}]});
            let missing: Vec<String> = missing_actions(&doc, &granted).into_values().flatten().collect();
            let mut expected: Vec<String> = vec![];
            for a in &required {
                if !granted.iter().any(|g| reference_glob(g, a)) && !expected.contains(a) {
                    expected.push(a.clone());
                }
            }
            let (mut m, mut e) = (missing, expected);
            m.sort();
            e.sort();
            proptest::prop_assert_eq!(m, e);
        }
    }

    #[test]
    fn globs() {
        assert!(glob("ec2:Describe*", "ec2:DescribeVpcs"));
        assert!(glob("ec2:*", "ec2:Describe*"));
        assert!(glob("*", "iam:GetRole"));
        assert!(!glob("ec2:Describe*", "ec2:RunInstances"));
        assert!(glob("EC2:describe*", "ec2:DescribeVpcs"));
    }

    #[test]
    fn missing_permissions_are_listed_by_capability() {
        let c = Catalog::builtin();
        let role = c.get("aws", "ci_full", "latest").unwrap();
        let all = granted_actions(std::slice::from_ref(&role.policy_document));
        assert!(missing_actions(&role.policy_document, &all).values().all(Vec::is_empty));
        // A ci_full role built from the 2020 policy lacks garrison's additions.
        let old = c.get("aws", "ci_full", "2020-01-10").unwrap();
        let m = missing_actions(&role.policy_document, &granted_actions(std::slice::from_ref(&old.policy_document)));
        assert!(m[&Capability::Guardduty].contains(&"guardduty:CreateDetector".to_string()));
        assert!(m[&Capability::FlowLogs].contains(&"ec2:CreateFlowLogs".to_string()));
        assert!(m[&Capability::Discover].contains(&"ecs:Describe*".to_string()));
        assert_eq!(
            m[&Capability::Appliances],
            ["ec2:DetachInternetGateway", "ec2:DeleteInternetGateway", "ec2:DisassociateRouteTable", "ec2:DeleteTags"]
        );
        assert_eq!(m[&Capability::TrafficMirroring].len(), 9, "{:?}", m[&Capability::TrafficMirroring]);
        assert!(m[&Capability::TrafficMirroring].contains(&"ec2:ModifyTrafficMirrorSession".to_string()));
        // `*` covers everything.
        assert!(missing_actions(&role.policy_document, &["*".to_string()]).values().all(Vec::is_empty));
    }

    #[test]
    fn a_key_policy_lets_the_role_decrypt_directly_or_through_its_account() {
        use serde_json::json;
        let role = "arn:aws:iam::111122223333:role/garrison";
        let allow = |principal: Value, action: &str| {
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": "*"}]})
        };
        assert!(key_policy_lets_decrypt(&allow(json!({"AWS": role}), "kms:Decrypt"), role, "111122223333"));
        assert!(key_policy_lets_decrypt(
            &allow(json!({"AWS": "arn:aws:iam::111122223333:root"}), "kms:*"),
            role,
            "111122223333"
        ));
        assert!(!key_policy_lets_decrypt(
            &allow(json!({"AWS": "arn:aws:iam::111122223333:role/other"}), "kms:Decrypt"),
            role,
            "111122223333"
        ));
        assert!(!key_policy_lets_decrypt(&allow(json!({"AWS": role}), "kms:Encrypt"), role, "111122223333"));
        assert!(!key_policy_lets_decrypt(
            &allow(json!({"Service": "cloudtrail.amazonaws.com"}), "kms:*"),
            role,
            "111122223333"
        ));
        let mut denied = allow(json!({"AWS": role}), "kms:Decrypt");
        denied["Statement"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Effect": "Deny", "Principal": {"AWS": role}, "Action": "kms:Decrypt", "Resource": "*"}));
        assert!(!key_policy_lets_decrypt(&denied, role, "111122223333"), "a deny wins");
    }
}
