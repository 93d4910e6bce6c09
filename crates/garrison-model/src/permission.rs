//! Permissions in the reference's form, `service:account:action:resource` (aims roles):
//! `account` is `own` (the caller's account) or `managed` (an account it manages), any part may
//! be `*`, and each entry is `allowed` or `denied`. A denied entry that matches wins over every
//! allowed one (the reference: "the permissions list will only show the deny entry"); nothing
//! matching is a refusal.
//!
//! Every operation of `ops::OPERATIONS` names the permission it needs (`ops::Need`), so that
//! what a role may do is read from one table, by the server and by the tests alike.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::ops::{By, OPERATIONS, Operation};
use crate::{FieldError, ValidationError};

/// Where the target account stands from the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Own,
    Managed,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Own => "own",
            Scope::Managed => "managed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allowed,
    Denied,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allowed => "allowed",
            Effect::Denied => "denied",
        }
    }
}

/// The actions operations declare (and `*`).
pub const ACTIONS: [&str; 7] = ["list", "get", "create", "update", "delete", "grant", "revoke"];

/// One needed permission, fully named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needed<'a> {
    pub service: &'a str,
    pub scope: Scope,
    pub action: &'a str,
    pub resource: &'a str,
}

impl std::fmt::Display for Needed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}:{}", self.service, self.scope.as_str(), self.action, self.resource)
    }
}

/// What `op` needs when acting in an account of `scope`.
pub fn needed(op: &Operation, scope: Scope) -> Needed<'static> {
    Needed { service: op.service, scope, action: op.need.action, resource: op.need.resource }
}

/// A role's permissions, in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Permissions {
    entries: Vec<([String; 4], Effect)>,
}

fn matches(pattern: &str, value: &str) -> bool {
    pattern == "*" || pattern == value
}

impl Permissions {
    pub fn none() -> Permissions {
        Permissions::default()
    }

    /// From `(pattern, effect)` pairs already known to be well formed (the global roles).
    fn from_static(entries: &[(&str, Effect)]) -> Permissions {
        Permissions {
            entries: entries
                .iter()
                .map(|(p, e)| {
                    let parts: Vec<&str> = p.split(':').collect();
                    ([parts[0].into(), parts[1].into(), parts[2].into(), parts[3].into()], *e)
                })
                .collect(),
        }
    }

    pub fn allows(&self, need: &Needed) -> bool {
        let mut allowed = false;
        for ([service, scope, action, resource], effect) in &self.entries {
            if matches(service, need.service)
                && matches(scope, need.scope.as_str())
                && matches(action, need.action)
                && matches(resource, need.resource)
            {
                match effect {
                    Effect::Denied => return false,
                    Effect::Allowed => allowed = true,
                }
            }
        }
        allowed
    }

    /// Whether the operation is open to these permissions in an account of `scope`
    /// (operations any caller may use are, whatever the role).
    pub fn allows_op(&self, op: &Operation, scope: Scope) -> bool {
        op.need.by == By::AnyCaller || self.allows(&needed(op, scope))
    }

    /// The reference's wire shape: `{"pattern": "allowed" | "denied"}`.
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (p, e) in &self.entries {
            m.insert(p.join(":"), Value::String(e.as_str().into()));
        }
        Value::Object(m)
    }

    /// The stored form (the wire shape as text); a stored value that no longer parses grants nothing.
    pub fn from_stored(text: &str) -> Permissions {
        serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| Permissions::parse(&v, "permissions").ok())
            .unwrap_or_default()
    }

    /// Reads and checks a role's `permissions` object: every key four `:`-separated parts
    /// naming a service, `own`/`managed`, an action and a resource that operations use (or
    /// `*`), every value `allowed` or `denied`. All bad entries are named at once.
    pub fn parse(v: &Value, field: &str) -> Result<Permissions, ValidationError> {
        let mut errors = ValidationError::default();
        let Some(m) = v.as_object() else {
            return Err(ValidationError::one(FieldError::new(
                field,
                "an object of \"service:account:action:resource\": \"allowed\" | \"denied\"",
                crate::error::describe(v),
            )));
        };
        if m.is_empty() || m.len() > MAX_ENTRIES {
            errors.push(FieldError::new(
                field,
                format!("1 to {MAX_ENTRIES} permissions"),
                format!("{} permission(s)", m.len()),
            ));
        }
        let mut entries = vec![];
        for (k, val) in m.iter().take(MAX_ENTRIES + 1) {
            let at = format!("{field}[{}]", crate::error::clip(&format!("{k:?}"), 80));
            let effect = match val.as_str() {
                Some("allowed") => Some(Effect::Allowed),
                Some("denied") => Some(Effect::Denied),
                _ => {
                    errors.push(FieldError::new(&at, "\"allowed\" or \"denied\"", crate::error::describe(val)));
                    None
                }
            };
            match check_pattern(k) {
                Ok(parts) => {
                    if let Some(e) = effect {
                        entries.push((parts, e));
                    }
                }
                Err((expected, found)) => errors
                    .push(FieldError::new(&at, expected, found).hint(
                        "service:account:action:resource, e.g. deployments:own:update:deployment or *:own:get:*",
                    )),
            }
        }
        errors.into_result(Permissions { entries })
    }

    /// The patterns, for listing.
    pub fn patterns(&self) -> impl Iterator<Item = (String, Effect)> + '_ {
        self.entries.iter().map(|(p, e)| (p.join(":"), *e))
    }
}

/// A role holds at most this many entries.
pub const MAX_ENTRIES: usize = 100;

/// The parts of a well-formed pattern, or what was expected and found of the first bad part.
fn check_pattern(k: &str) -> Result<[String; 4], (String, String)> {
    let parts: Vec<&str> = k.split(':').collect();
    let [service, scope, action, resource] = parts.as_slice() else {
        return Err(("four parts separated by ':'".into(), format!("{} part(s)", parts.len())));
    };
    let known = Known::get();
    let check = |what: &str, value: &str, set: &[&'static str]| -> Result<(), (String, String)> {
        if value == "*" || set.contains(&value) {
            Ok(())
        } else {
            Err((format!("{what}: * or one of [{}]", set.join(", ")), format!("{value:?}")))
        }
    };
    check("service", service, &known.services)?;
    check("account", scope, &["own", "managed"])?;
    check("action", action, &ACTIONS)?;
    check("resource", resource, &known.resources)?;
    Ok([service.to_string(), scope.to_string(), action.to_string(), resource.to_string()])
}

/// The services and resources the operation table names.
struct Known {
    services: Vec<&'static str>,
    resources: Vec<&'static str>,
}

impl Known {
    fn get() -> &'static Known {
        static KNOWN: std::sync::LazyLock<Known> = std::sync::LazyLock::new(|| {
            let services = crate::ops::services();
            let mut resources: Vec<&'static str> = OPERATIONS.iter().map(|o| o.need.resource).collect();
            resources.sort_unstable();
            resources.dedup();
            Known { services, resources }
        });
        &KNOWN
    }
}

/// The global roles: the reference's Administrator, Power User and Read Only with its ids and
/// permissions, and the console's Owner, User and Support (ids of garrison's own: the reference
/// lists no ids for them), each as the console documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GlobalRole {
    Administrator,
    Owner,
    PowerUser,
    User,
    ReadOnly,
    Support,
}

use Effect::{Allowed as A, Denied as D};

pub const ADMINISTRATOR_ROLE_ID: &str = "4389AB00-BBCC-4EB1-83E9-7A906A452BF0";
pub const OWNER_ROLE_ID: &str = "0A11B0E7-6A7B-4C25-9E1F-6A2D0C0FFEE1";
pub const POWER_USER_ROLE_ID: &str = "2A33175D-86EF-44B5-AA39-C9549F6306DF";
pub const USER_ROLE_ID: &str = "5C4B7E0A-3D2F-4E8B-A1C9-0F7D6E5B4A32";
pub const READ_ONLY_ROLE_ID: &str = "F578CCE5-9574-4489-BF05-A04075838DE3";
pub const SUPPORT_ROLE_ID: &str = "9D8E7F60-5A4B-4C3D-8E2F-1A0B9C8D7E6F";

impl GlobalRole {
    pub const ALL: [GlobalRole; 6] = [
        GlobalRole::Administrator,
        GlobalRole::Owner,
        GlobalRole::PowerUser,
        GlobalRole::User,
        GlobalRole::ReadOnly,
        GlobalRole::Support,
    ];

    pub fn id(self) -> &'static str {
        match self {
            GlobalRole::Administrator => ADMINISTRATOR_ROLE_ID,
            GlobalRole::Owner => OWNER_ROLE_ID,
            GlobalRole::PowerUser => POWER_USER_ROLE_ID,
            GlobalRole::User => USER_ROLE_ID,
            GlobalRole::ReadOnly => READ_ONLY_ROLE_ID,
            GlobalRole::Support => SUPPORT_ROLE_ID,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            GlobalRole::Administrator => "Administrator",
            GlobalRole::Owner => "Owner",
            GlobalRole::PowerUser => "Power User",
            GlobalRole::User => "User",
            GlobalRole::ReadOnly => "Read Only",
            GlobalRole::Support => "Support",
        }
    }

    /// The role of an id (case-insensitive: the reference's ids are upper-case UUIDs).
    pub fn from_id(id: &str) -> Option<GlobalRole> {
        GlobalRole::ALL.into_iter().find(|r| r.id().eq_ignore_ascii_case(id))
    }

    fn entries(self) -> &'static [(&'static str, Effect)] {
        match self {
            // Everything in its account and the accounts it manages.
            GlobalRole::Administrator => &[("*:own:*:*", A), ("*:managed:*:*", A)],
            // Everything, but users, their keys and roles of its own account are not its to
            // change, and in managed accounts it edits users without creating or deleting them.
            GlobalRole::Owner => &[
                ("*:own:*:*", A),
                ("*:managed:*:*", A),
                ("aims:own:create:user", D),
                ("aims:own:update:user", D),
                ("aims:own:delete:user", D),
                ("aims:own:create:access_key", D),
                ("aims:own:delete:access_key", D),
                ("aims:own:grant:*", D),
                ("aims:own:revoke:*", D),
                ("aims:own:create:role", D),
                ("aims:own:update:role", D),
                ("aims:own:delete:role", D),
                ("aims:managed:create:user", D),
                ("aims:managed:delete:user", D),
            ],
            // The reference's Power User, and reading its managed accounts (the console's).
            GlobalRole::PowerUser => &[
                ("*:own:*:*", A),
                ("aims:own:revoke:*", D),
                ("aims:own:grant:*", D),
                ("aims:own:delete:*", D),
                ("aims:own:update:*", D),
                ("aims:own:create:*", D),
                ("*:managed:list:*", A),
                ("*:managed:get:*", A),
            ],
            // Reads its account; keeps its own notifications and scan schedules.
            GlobalRole::User => {
                &[("*:own:list:*", A), ("*:own:get:*", A), ("herald:own:*:*", A), ("scan_scheduler:own:*:*", A)]
            }
            GlobalRole::ReadOnly => &[("*:own:list:*", A), ("*:own:get:*", A)],
            GlobalRole::Support => {
                &[("*:own:list:*", A), ("*:own:get:*", A), ("*:managed:list:*", A), ("*:managed:get:*", A)]
            }
        }
    }

    pub fn permissions(self) -> Permissions {
        Permissions::from_static(self.entries())
    }
}

/// What a role grants in an account of `scope` over what `granter` holds there: the
/// operations (as `service:account:action:resource`) a grant would open that the granter
/// cannot use itself. Granting a role (or creating a user with one) needs this to be empty,
/// so nobody hands out more than they hold. `in_managed`: the grantee's account is one the
/// granter manages (so both the grantee's own and managed accounts are managed for the granter).
pub fn escalation(granter: &Permissions, role: &Permissions, in_managed: bool) -> Vec<String> {
    let mut out: BTreeMap<String, ()> = BTreeMap::new();
    for op in OPERATIONS.iter().filter(|o| o.needs_token && o.need.by != By::AnyCaller) {
        for scope in [Scope::Own, Scope::Managed] {
            let theirs = if in_managed { Scope::Managed } else { scope };
            if role.allows(&needed(op, scope)) && !granter.allows(&needed(op, theirs)) {
                out.insert(needed(op, scope).to_string(), ());
            }
        }
    }
    out.into_keys().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn need(s: &'static str) -> Needed<'static> {
        let p: Vec<&'static str> = s.split(':').collect();
        let scope = if p[1] == "own" { Scope::Own } else { Scope::Managed };
        Needed { service: p[0], scope, action: p[2], resource: p[3] }
    }

    #[test]
    fn the_reference_roles_read_as_documented() {
        let pu = GlobalRole::PowerUser.permissions();
        assert!(pu.allows(&need("deployments:own:create:deployment")));
        assert!(!pu.allows(&need("aims:own:create:user")), "a deny wins over *:own:*:*");
        assert!(pu.allows(&need("aims:own:get:user")));
        assert!(pu.allows(&need("deployments:managed:get:deployment")));
        assert!(!pu.allows(&need("deployments:managed:update:deployment")));
        let ro = GlobalRole::ReadOnly.permissions();
        assert!(ro.allows(&need("deployments:own:list:deployment")));
        assert!(!ro.allows(&need("deployments:own:update:deployment")));
        assert!(!ro.allows(&need("deployments:managed:get:deployment")), "Read Only sees no managed account");
        let support = GlobalRole::Support.permissions();
        assert!(support.allows(&need("deployments:managed:get:deployment")));
        assert!(!support.allows(&need("credentials:managed:create:credential")));
        let owner = GlobalRole::Owner.permissions();
        assert!(owner.allows(&need("deployments:own:delete:deployment")));
        assert!(!owner.allows(&need("aims:own:create:user")));
        assert!(owner.allows(&need("aims:managed:update:user")));
        assert!(!owner.allows(&need("aims:managed:delete:user")));
        let user = GlobalRole::User.permissions();
        assert!(user.allows(&need("herald:own:create:subscription")));
        assert!(!user.allows(&need("deployments:own:update:deployment")));
        assert!(GlobalRole::Administrator.permissions().allows(&need("aims:managed:grant:role")));
        assert!(!Permissions::none().allows(&need("deployments:own:get:deployment")), "nothing matching refuses");
    }

    #[test]
    fn ids_round_trip_and_the_reference_ids_are_kept() {
        for r in GlobalRole::ALL {
            assert_eq!(GlobalRole::from_id(r.id()), Some(r));
            assert_eq!(GlobalRole::from_id(&r.id().to_lowercase()), Some(r));
        }
        assert_eq!(GlobalRole::Administrator.id(), "4389AB00-BBCC-4EB1-83E9-7A906A452BF0");
        assert_eq!(GlobalRole::PowerUser.id(), "2A33175D-86EF-44B5-AA39-C9549F6306DF");
        assert_eq!(GlobalRole::ReadOnly.id(), "F578CCE5-9574-4489-BF05-A04075838DE3");
        assert_eq!(GlobalRole::from_id("nope"), None);
    }

    #[test]
    fn the_global_roles_use_only_what_operations_name() {
        for r in GlobalRole::ALL {
            let json = r.permissions().to_json();
            assert_eq!(Permissions::parse(&json, "permissions").unwrap(), r.permissions(), "{}", r.name());
        }
    }

    #[test]
    fn bad_permissions_are_named_each() {
        let e = Permissions::parse(
            &json!({"deployments:own:update:deployment": "allowed", "x:own:get:*": "allowed",
                    "*:everywhere:get:*": "allowed", "*:own:fly:*": "allowed", "*:own:get:dragon": "allowed",
                    "*:own:get": "allowed", "*:own:get:*": "yes"}),
            "permissions",
        )
        .unwrap_err();
        let fields: Vec<&str> = e.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(e.errors.len(), 6, "{e}");
        assert!(fields.contains(&"permissions[\"x:own:get:*\"]"), "{fields:?}");
        assert!(e.to_string().contains("account: * or one of [own, managed]"), "{e}");
        assert!(e.to_string().contains("\"yes\""), "{e}");
        assert!(Permissions::parse(&json!({}), "permissions").is_err());
        assert!(Permissions::parse(&json!([]), "permissions").is_err());
    }

    #[test]
    fn no_role_grants_more_than_an_administrator_holds() {
        let admin = GlobalRole::Administrator.permissions();
        for r in GlobalRole::ALL {
            assert_eq!(escalation(&admin, &r.permissions(), false), Vec::<String>::new(), "{}", r.name());
        }
        // A Power User could not hand out Administrator; an Owner may make Owners in a managed
        // account (it holds all they do there) but no Administrator, as it creates no users.
        let pu = GlobalRole::PowerUser.permissions();
        let missing = escalation(&pu, &admin, false);
        assert!(missing.contains(&"aims:own:create:user".to_string()), "{missing:?}");
        assert!(missing.contains(&"deployments:managed:update:deployment".to_string()), "{missing:?}");
        let owner = GlobalRole::Owner.permissions();
        assert!(escalation(&owner, &GlobalRole::ReadOnly.permissions(), true).is_empty());
        assert!(escalation(&owner, &GlobalRole::Owner.permissions(), true).is_empty());
        let missing = escalation(&owner, &admin, true);
        assert!(missing.contains(&"aims:own:create:user".to_string()), "{missing:?}");
        assert!(missing.contains(&"aims:managed:create:user".to_string()), "{missing:?}");
    }

    fn part(set: &'static [&'static str]) -> impl Strategy<Value = String> {
        prop_oneof![Just("*".to_string()), proptest::sample::select(set).prop_map(str::to_string)]
    }

    proptest! {
        // Any well-formed set of entries reads back as written, and a deny matching a need
        // always refuses it whatever else the role allows.
        #[test]
        fn parse_round_trips_and_deny_wins(
            entries in proptest::collection::vec(
                (part(&["aims", "deployments", "credentials", "otis"]), part(&["own", "managed"]),
                 part(&["list", "get", "create", "update", "delete"]), part(&["deployment", "user", "credential"]),
                 any::<bool>()), 1..12),
            op_index in 0..OPERATIONS.len(),
            managed in any::<bool>(),
        ) {
            let mut m = serde_json::Map::new();
            for (s, sc, a, r, allow) in &entries {
                m.insert(format!("{s}:{sc}:{a}:{r}"), json!(if *allow { "allowed" } else { "denied" }));
            }
            let v = Value::Object(m);
            let p = Permissions::parse(&v, "permissions").unwrap();
            prop_assert_eq!(p.to_json(), v.clone());
            let scope = if managed { Scope::Managed } else { Scope::Own };
            let n = needed(&OPERATIONS[op_index], scope);
            let hit = |allow: bool| p.patterns().any(|(k, e)| {
                let q: Vec<&str> = k.split(':').collect();
                (e == Effect::Allowed) == allow
                    && matches(q[0], n.service) && matches(q[1], n.scope.as_str())
                    && matches(q[2], n.action) && matches(q[3], n.resource)
            });
            prop_assert_eq!(p.allows(&n), hit(true) && !hit(false));
        }

        // Garbage never panics and is either refused or read as entries it names.
        #[test]
        fn any_text_key_is_checked(k in "\\PC{0,40}", v in "\\PC{0,10}") {
            let mut m = serde_json::Map::new();
            m.insert(k, json!(v));
            let _ = Permissions::parse(&Value::Object(m), "permissions");
        }
    }
}
