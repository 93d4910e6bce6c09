//! An organization enrollment: which units of an AWS organization garrison protects by
//! itself, through which management-account credential, and the deployment each enrolled
//! account gets. The request is checked field by field like a deployment's; its template
//! is a create_deployment body without the account's own `platform.id` and `credentials`,
//! checked by the same parser.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::Stamp;
use crate::deployment::{MAX_NAME, Refs, parse_request};
use crate::error::{FieldError, ValidationError, describe};
use crate::organization::{Selection, UnitItem, is_account_id, is_unit_id};

/// What happens to one account of the organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Its deployment exists.
    Enrolled,
    /// On its way: the step it waits on is in `reason`.
    Pending,
    /// It left the units: its deployment is being removed, then its stack instance.
    Leaving,
    /// A step failed; `reason` says which and why.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Member {
    pub aws_account: String,
    pub state: MemberState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The enrollment version whose template the deployment was last brought to (a change
    /// of the enrollment reapplies its template; a hand edit of the deployment stays until then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_version: Option<i64>,
}

/// The last reconciliation of the enrollment against the organization.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnrollmentStatus {
    /// Milliseconds since the epoch; 0 before the first run.
    pub updated: i64,
    /// ok | warning | error, with what it means in words.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The accounts the enrollment covers or is letting go, by AWS account id.
    pub members: Vec<Member>,
    /// Accounts of the organization left out, with why (`outside_units`, `excluded_unit`,
    /// `excluded_account`, `not_active`, `management`).
    #[serde(default)]
    pub excluded: Vec<Excluded>,
    /// Where the organization's lifecycle events arrive (the management account's queue,
    /// fed by garrison's rule), once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<LifecycleFeed>,
    /// The role type and version garrison's StackSet holds, e.g. `ci_full 2026-12-06`:
    /// when the catalog's role changes, the StackSet and every account are upgraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LifecycleFeed {
    pub queue_url: String,
    pub rule_arn: String,
    /// The organization's event feed bus (`event_feed: organization`): the enrolled
    /// accounts' rules put their events there, its rule sends them to the same queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Excluded {
    pub aws_account: String,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Enrollment {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub version: i64,
    /// The management account's credential: a role there that reads the organization and
    /// runs the StackSet.
    pub credential_id: String,
    pub include: Vec<UnitItem>,
    pub exclude_units: Vec<String>,
    pub exclude_accounts: Vec<String>,
    /// The deployment each enrolled account gets (a create_deployment body without
    /// `platform.id` and `credentials`).
    #[schema(value_type = Object)]
    pub template: Value,
    /// The service-managed StackSet that puts garrison's role in each enrolled account.
    pub stack_set: String,
    /// Where the enrolled accounts' event feeds go: a bus and queue per account, or one
    /// bus for the organization (`organization`, in the management account).
    #[serde(default)]
    pub event_feed: FeedChoice,
    pub created: Stamp,
    pub modified: Stamp,
    #[serde(default)]
    pub status: EnrollmentStatus,
    /// Deleted: gone from the API; the engine takes its lifecycle rule and queue away, then
    /// the record.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
}

impl Enrollment {
    /// The name of its lifecycle rule and queue in the management account.
    pub fn feed_name(&self) -> String {
        let short: String = self.id.chars().filter(|c| c.is_ascii_alphanumeric()).take(8).collect();
        format!("garrison-org-{}", short.to_ascii_lowercase())
    }
}

impl Enrollment {
    pub fn selection(&self) -> Selection {
        Selection {
            include: self.include.clone(),
            exclude_units: self.exclude_units.clone(),
            exclude_accounts: self.exclude_accounts.clone(),
        }
    }

    /// The deployment request for `aws_account`, through `credential_id`.
    pub fn deployment_body(&self, aws_account: &str, credential_id: &str) -> Value {
        instantiate(&self.template, &format!("{} {aws_account}", self.name), aws_account, credential_id)
    }
}

/// What a create or update sets (the rest is garrison's).
#[derive(Debug, Clone, PartialEq)]
pub struct EnrollmentSpec {
    pub name: String,
    pub credential_id: String,
    pub selection: Selection,
    pub template: Value,
    pub stack_set: String,
    pub event_feed: FeedChoice,
}

/// Where an enrollment's accounts send their management events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedChoice {
    /// Each account its own bus beside its own audit queue (as any deployment).
    #[default]
    PerAccount,
    /// The accounts' rules forward to one bus in the management account (its policy admits
    /// the organization's accounts only), whose rule sends to the enrollment's queue: one
    /// queue for N accounts.
    Organization,
}

pub const DEFAULT_STACK_SET: &str = "garrison-role";
const FIELDS: &[&str] = &[
    "name",
    "credential_id",
    "include",
    "exclude_units",
    "exclude_accounts",
    "template",
    "stack_set",
    "event_feed",
    "version",
];
const READ_ONLY: &[&str] = &["id", "account_id", "created", "modified", "status"];
/// An account id that never exists, standing for each enrolled account while the template
/// is checked.
const PLACEHOLDER_ACCOUNT: &str = "000000000000";

fn instantiate(template: &Value, name: &str, aws_account: &str, credential_id: &str) -> Value {
    let mut body = template.as_object().cloned().unwrap_or_default();
    body.entry("name").or_insert_with(|| json!(name));
    let platform = body.entry("platform").or_insert_with(|| json!({"type": "aws"}));
    if let Value::Object(p) = platform {
        p.insert("id".into(), json!(aws_account));
        p.entry("type").or_insert_with(|| json!("aws"));
    }
    body.insert("credentials".into(), json!([{"id": credential_id, "purpose": "discover"}]));
    Value::Object(body)
}

/// Checks a create (`existing == None`) or update body; an update replaces the fields it
/// carries. `credentials`: the account's credentials (id → AWS account of the role).
pub fn parse(
    body: &Value,
    existing: Option<&Enrollment>,
    policies: &HashSet<String>,
    credentials: &HashMap<String, String>,
) -> Result<(EnrollmentSpec, Option<i64>), ValidationError> {
    let mut errors = ValidationError::default();
    let fail = |errors: &mut ValidationError, f: FieldError| errors.errors.push(f);
    let Value::Object(m) = body else {
        fail(&mut errors, FieldError::new("body", "a JSON object", describe(body)));
        return Err(errors);
    };
    for k in m.keys() {
        let known = FIELDS.contains(&k.as_str()) || (existing.is_some() && READ_ONLY.contains(&k.as_str()));
        if !known {
            fail(
                &mut errors,
                FieldError::new(k.clone(), format!("one of the fields {}", FIELDS.join(", ")), "an unknown field"),
            );
        }
    }
    let text = |errors: &mut ValidationError, k: &str, prior: Option<&str>, max: usize| -> Option<String> {
        match (m.get(k), prior) {
            (Some(Value::String(s)), _) if !s.trim().is_empty() && s.len() <= max => Some(s.clone()),
            (Some(v), _) => {
                errors.errors.push(FieldError::new(k, format!("a string of 1 to {max} characters"), describe(v)));
                None
            }
            (None, Some(p)) => Some(p.to_string()),
            (None, None) => {
                errors.errors.push(FieldError::new(k, format!("a string of 1 to {max} characters"), "nothing"));
                None
            }
        }
    };
    let name = text(&mut errors, "name", existing.map(|e| e.name.as_str()), MAX_NAME);
    let credential_id = text(&mut errors, "credential_id", existing.map(|e| e.credential_id.as_str()), 64);
    if let (Some(c), Some(v)) = (&credential_id, m.get("credential_id"))
        && !credentials.contains_key(c)
    {
        fail(&mut errors, FieldError::new("credential_id", "the id of one of the account's credentials", describe(v)));
    }
    let stack_set = match m.get("stack_set") {
        None => existing.map(|e| e.stack_set.clone()).unwrap_or_else(|| DEFAULT_STACK_SET.into()),
        Some(Value::String(s))
            if (1..=128).contains(&s.len())
                && s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            s.clone()
        }
        Some(v) => {
            fail(
                &mut errors,
                FieldError::new(
                    "stack_set",
                    "a StackSet name: a letter, then letters, digits or '-', at most 128",
                    describe(v),
                ),
            );
            String::new()
        }
    };
    let event_feed = match m.get("event_feed") {
        None => existing.map(|e| e.event_feed).unwrap_or_default(),
        Some(Value::String(s)) if s == "per_account" => FeedChoice::PerAccount,
        Some(Value::String(s)) if s == "organization" => FeedChoice::Organization,
        Some(v) => {
            fail(&mut errors, FieldError::new("event_feed", "one of [per_account, organization]", describe(v)));
            FeedChoice::PerAccount
        }
    };
    let include = match m.get("include") {
        None => existing.map(|e| e.include.clone()).unwrap_or_else(|| {
            errors.errors.push(FieldError::new(
                "include",
                "a non-empty array of {\"unit\": \"ou-…\", \"children\": true|false}",
                "nothing",
            ));
            vec![]
        }),
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut out = vec![];
            for (i, it) in items.iter().enumerate() {
                let unit = it.get("unit").and_then(Value::as_str);
                let children = it.get("children").map(Value::as_bool);
                let extra = it.as_object().is_some_and(|o| o.keys().any(|k| k != "unit" && k != "children"));
                match (unit, children) {
                    (Some(u), None | Some(Some(_))) if is_unit_id(u) && !extra => {
                        out.push(UnitItem { unit: u.into(), children: children.flatten().unwrap_or(false) })
                    }
                    _ => errors.errors.push(FieldError::new(
                        format!("include[{i}]"),
                        "{\"unit\": an organizational unit id (ou-xxxx-yyyyyyyy) or the root (r-xxxx), \"children\": true|false}",
                        describe(it),
                    )),
                }
            }
            out
        }
        Some(v) => {
            errors.errors.push(FieldError::new(
                "include",
                "a non-empty array of {\"unit\": \"ou-…\", \"children\": true|false}",
                describe(v),
            ));
            vec![]
        }
    };
    let list =
        |errors: &mut ValidationError, k: &str, ok: fn(&str) -> bool, what: &str, prior: Option<&Vec<String>>| match m
            .get(k)
        {
            None => prior.cloned().unwrap_or_default(),
            Some(Value::Array(items)) => {
                let mut out = vec![];
                for (i, it) in items.iter().enumerate() {
                    match it.as_str() {
                        Some(s) if ok(s) => out.push(s.to_string()),
                        _ => errors.errors.push(FieldError::new(format!("{k}[{i}]"), what, describe(it))),
                    }
                }
                out
            }
            Some(v) => {
                errors.errors.push(FieldError::new(k, format!("an array of {what}s"), describe(v)));
                vec![]
            }
        };
    let exclude_units =
        list(&mut errors, "exclude_units", is_unit_id, "an organizational unit id", existing.map(|e| &e.exclude_units));
    let exclude_accounts = list(
        &mut errors,
        "exclude_accounts",
        is_account_id,
        "an AWS account id of 12 digits",
        existing.map(|e| &e.exclude_accounts),
    );
    let template = match (m.get("template"), existing) {
        (Some(t @ Value::Object(o)), _) => {
            for (k, what) in [("credentials", "each account's own (garrison makes it)"), ("id", "garrison's")] {
                if o.contains_key(k) {
                    fail(
                        &mut errors,
                        FieldError::new(format!("template.{k}"), format!("not given: {what}"), describe(&o[k])),
                    );
                }
            }
            if let Some(id) = o.get("platform").and_then(|p| p.get("id")) {
                fail(
                    &mut errors,
                    FieldError::new("template.platform.id", "not given: each enrolled account's own id", describe(id)),
                );
            }
            // Checked as the deployment of a stand-in account would be.
            let creds: HashMap<String, String> =
                [("organization-member".to_string(), PLACEHOLDER_ACCOUNT.to_string())].into();
            let body = instantiate(t, "template", PLACEHOLDER_ACCOUNT, "organization-member");
            if let Err(e) = parse_request(&body, None, &Refs { policies, credentials: &creds }) {
                for mut f in e.errors {
                    f.field = format!("template.{}", f.field);
                    errors.errors.push(f);
                }
            }
            t.clone()
        }
        (None, Some(e)) => e.template.clone(),
        (Some(v), _) => {
            fail(
                &mut errors,
                FieldError::new(
                    "template",
                    "a create_deployment body without platform.id and credentials",
                    describe(v),
                ),
            );
            Value::Object(Map::new())
        }
        (None, None) => {
            fail(
                &mut errors,
                FieldError::new("template", "a create_deployment body without platform.id and credentials", "nothing"),
            );
            Value::Object(Map::new())
        }
    };
    let version = match m.get("version") {
        None => None,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
        Some(v) => {
            fail(&mut errors, FieldError::new("version", "an integer", describe(v)));
            None
        }
    };
    if !errors.errors.is_empty() {
        return Err(errors);
    }
    let spec = EnrollmentSpec {
        name: name.unwrap_or_default(),
        credential_id: credential_id.unwrap_or_default(),
        selection: Selection { include, exclude_units, exclude_accounts },
        template,
        stack_set,
        event_feed,
    };
    Ok((spec, version))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ok_body() -> Value {
        json!({"name": "org", "credential_id": "C1", "include": [{"unit": "ou-ab12-cd34ef56", "children": true}],
            "exclude_accounts": ["123456789012"],
            "template": {"mode": "automatic", "platform": {"type": "aws", "monitor": {"enabled": true, "ct_install_region": "us-east-1"}},
                "scope": {"include": [{"type": "region", "key": "/aws/us-east-1", "policy": {"id": "D12D5E67-166C-474B-A8BD-3F3E52FE7D1F"}}]}}})
    }

    fn parse_it(body: &Value) -> Result<(EnrollmentSpec, Option<i64>), ValidationError> {
        let policies: HashSet<String> = ["D12D5E67-166C-474B-A8BD-3F3E52FE7D1F".to_string()].into();
        let creds: HashMap<String, String> = [("C1".to_string(), "999999999999".to_string())].into();
        parse(body, None, &policies, &creds)
    }

    #[test]
    fn a_good_request_and_the_deployment_it_makes() {
        let (spec, _) = parse_it(&ok_body()).unwrap();
        assert_eq!(spec.stack_set, DEFAULT_STACK_SET);
        assert_eq!(spec.event_feed, FeedChoice::PerAccount, "a feed per account unless asked");
        let mut b = ok_body();
        b["event_feed"] = json!("organization");
        assert_eq!(parse_it(&b).unwrap().0.event_feed, FeedChoice::Organization);
        assert_eq!(spec.selection.include[0], UnitItem { unit: "ou-ab12-cd34ef56".into(), children: true });
        let e = Enrollment {
            id: "E".into(),
            account_id: "10000001".into(),
            name: spec.name,
            version: 1,
            credential_id: spec.credential_id,
            include: spec.selection.include,
            exclude_units: vec![],
            exclude_accounts: vec![],
            template: spec.template,
            stack_set: spec.stack_set,
            event_feed: spec.event_feed,
            created: Stamp { at: 0, by: "u".into() },
            modified: Stamp { at: 0, by: "u".into() },
            status: EnrollmentStatus::default(),
            deleting: false,
        };
        let d = e.deployment_body("111122223333", "C9");
        assert_eq!(d["platform"]["id"], "111122223333");
        assert_eq!(d["name"], "org 111122223333");
        assert_eq!(d["credentials"], json!([{"id": "C9", "purpose": "discover"}]));
        assert_eq!(d["platform"]["monitor"]["ct_install_region"], "us-east-1", "the template's own fields kept");
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let mut b = ok_body();
        b["credential_id"] = json!("nope");
        b["include"] = json!([{"unit": "ou-BAD"}, {"unit": "r-ab12", "children": "yes"}]);
        b["exclude_accounts"] = json!(["12"]);
        b["template"]["platform"]["id"] = json!("111122223333");
        b["template"]["mode"] = json!("sometimes");
        b["stack_set"] = json!("1bad");
        b["event_feed"] = json!("shared");
        b["surprise"] = json!(1);
        let e = parse_it(&b).unwrap_err();
        let fields: Vec<&str> = e.errors.iter().map(|f| f.field.as_str()).collect();
        for want in [
            "credential_id",
            "include[0]",
            "include[1]",
            "exclude_accounts[0]",
            "template.platform.id",
            "template.mode",
            "stack_set",
            "event_feed",
            "surprise",
        ] {
            assert!(fields.contains(&want), "{want} in {fields:?}");
        }
        assert!(parse_it(&json!([])).is_err());
        let mut none = ok_body();
        none.as_object_mut().unwrap().remove("include");
        assert_eq!(parse_it(&none).unwrap_err().errors[0].field, "include");
    }

    proptest! {
        /// Any body is accepted or refused with named fields; never a panic.
        #[test]
        fn any_body_is_judged(v in proptest::arbitrary::any::<u8>().prop_flat_map(|_| {
            let leaf = prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::from), "[a-z0-9-]{0,20}".prop_map(Value::from), any::<i64>().prop_map(Value::from)];
            leaf.prop_recursive(3, 24, 4, |inner| prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map(prop_oneof![Just("name".to_string()), Just("include".to_string()), Just("template".to_string()), Just("unit".to_string()), Just("credential_id".to_string()), "[a-z]{1,6}".prop_map(String::from)], inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ])
        })) {
            if let Err(e) = parse_it(&v) {
                prop_assert!(!e.errors.is_empty());
                prop_assert!(e.errors.iter().all(|f| !f.field.is_empty() && !f.expected.is_empty()));
            }
        }
    }
}
