//! The scope of a deployment request: include and exclude items, their keys and policies.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::*;
use crate::error::{FieldError, describe};
use crate::json_path::{Reader, index, join};
use crate::scope::key_matches;

pub(super) fn scope_type(
    r: &mut Reader<'_>,
    path: &str,
    m: &Map<String, Value>,
    allowed: &[ScopeType],
) -> Option<ScopeType> {
    let names: Vec<&str> = allowed.iter().map(|t| t.as_str()).collect();
    let field = join(path, "type");
    match m.get("type") {
        None => {
            r.fail(FieldError::new(field, format!("one of [{}]", names.join(", ")), "nothing"));
            None
        }
        Some(v) => match v.as_str().and_then(ScopeType::parse).filter(|t| allowed.contains(t)) {
            Some(t) => Some(t),
            None => {
                r.fail(FieldError::new(field, format!("one of [{}]", names.join(", ")), describe(v)));
                None
            }
        },
    }
}

pub(super) fn scope_key(r: &mut Reader<'_>, path: &str, m: &Map<String, Value>, t: ScopeType) -> Option<String> {
    let field = join(path, "key");
    match m.get("key") {
        // The whole-deployment item needs no key.
        None if t == ScopeType::Deployment => Some("/aws".into()),
        Some(Value::String(k))
            if key_matches(t, k)
                && crate::scope::AssetKey::parse(k).is_some_and(|a| !crate::scope::is_known_region(a.region())) =>
        {
            let region = crate::scope::AssetKey::parse(k).map(|a| a.region().to_string()).unwrap_or_default();
            r.fail(
                FieldError::new(field, "a key in a region of the aws partition", format!("{k:?} (region {region:?})"))
                    .hint(format!("known regions: {}", crate::scope::AWS_REGIONS.join(", "))),
            );
            None
        }
        Some(Value::String(k)) if key_matches(t, k) => Some(k.clone()),
        other => {
            let found = other.map_or("nothing".to_string(), describe);
            let mut e = FieldError::new(field, format!("a {} key: {}", t.as_str(), t.key_shape()), found);
            if let Some(Value::String(k)) = other
                && let Some(actual) = crate::scope::AssetKey::parse(k)
            {
                e = e.hint(format!(
                    "that is a {} key; set \"type\": \"{}\"",
                    actual.scope_type().as_str(),
                    actual.scope_type().as_str()
                ));
            }
            r.fail(e);
            None
        }
    }
}

pub(super) fn parse_scope(r: &mut Reader<'_>, v: &Value, mode: Mode, refs: &Refs<'_>) -> Option<Scope> {
    let m = r.object("scope", v)?;
    r.known_keys("scope", m, &["include", "exclude"]);
    let mut scope = Scope::default();
    let mut ok = true;
    let mut seen = HashSet::new();
    if let Some(inc) = m.get("include") {
        if let Some(items) = r.array("scope.include", inc) {
            for (i, it) in items.iter().enumerate() {
                let path = index("scope.include", i);
                let Some(im) = r.object(&path, it) else {
                    ok = false;
                    continue;
                };
                r.known_keys(&path, im, &["type", "key", "policy"]);
                let t = scope_type(r, &path, im, &ScopeType::INCLUDE);
                let key = t.and_then(|t| scope_key(r, &path, im, t));
                let policy = match im.get("policy") {
                    None => None,
                    Some(pv) => parse_policy_ref(r, &join(&path, "policy"), pv, refs),
                };
                match (t, key) {
                    (Some(t), Some(key)) => {
                        if !seen.insert(key.clone()) {
                            r.fail(FieldError::new(
                                join(&path, "key"),
                                "each key at most once in scope.include",
                                format!("{key:?} again"),
                            ));
                        }
                        scope.include.push(IncludeItem { kind: t, key, policy });
                    }
                    _ => ok = false,
                }
            }
        } else {
            ok = false;
        }
    }
    let mut seen_ex = HashSet::new();
    if let Some(exc) = m.get("exclude") {
        if let Some(items) = r.array("scope.exclude", exc) {
            for (i, it) in items.iter().enumerate() {
                let path = index("scope.exclude", i);
                let Some(em) = r.object(&path, it) else {
                    ok = false;
                    continue;
                };
                r.known_keys(&path, em, &["type", "key"]);
                let t = scope_type(r, &path, em, &ScopeType::EXCLUDE);
                let key = t.and_then(|t| scope_key(r, &path, em, t));
                match (t, key) {
                    (Some(t), Some(key)) => {
                        if seen.contains(&key) {
                            r.fail(FieldError::new(
                                join(&path, "key"),
                                "a key that is not also in scope.include",
                                format!("{key:?}"),
                            ));
                        } else if !seen_ex.insert(key.clone()) {
                            r.fail(FieldError::new(
                                join(&path, "key"),
                                "each key at most once in scope.exclude",
                                format!("{key:?} again"),
                            ));
                        }
                        scope.exclude.push(ExcludeItem { kind: t, key });
                    }
                    _ => ok = false,
                }
            }
        } else {
            ok = false;
        }
    }
    if ok {
        check_policies(r, &scope, mode, refs);
        Some(scope)
    } else {
        None
    }
}

pub(super) fn parse_policy_ref(r: &mut Reader<'_>, path: &str, v: &Value, refs: &Refs<'_>) -> Option<PolicyRef> {
    let m = r.object(path, v)?;
    r.known_keys(path, m, &["id"]);
    let field = join(path, "id");
    match m.get("id") {
        Some(Value::String(id)) if refs.policies.contains(id) => Some(PolicyRef { id: id.clone() }),
        // Policy ids are UUIDs; accept any case as clients copy them around.
        Some(Value::String(id)) if refs.policies.contains(&id.to_ascii_uppercase()) => {
            Some(PolicyRef { id: id.to_ascii_uppercase() })
        }
        other => {
            let mut ids: Vec<&String> = refs.policies.iter().collect();
            ids.sort();
            let ids: Vec<&str> = ids.iter().map(|s| s.as_str()).collect();
            r.fail(
                FieldError::new(
                    field,
                    format!("the id of an existing policy, one of [{}]", ids.join(", ")),
                    other.map_or("nothing".into(), describe),
                )
                .hint("list them with: garrison policies list_policies --account_id <account>"),
            );
            None
        }
    }
}

pub(super) fn check_policies(r: &mut Reader<'_>, scope: &Scope, mode: Mode, _refs: &Refs<'_>) {
    if !mode.needs_policy() {
        return;
    }
    for (i, it) in scope.include.iter().enumerate() {
        if it.policy.is_none() {
            r.fail(
                FieldError::new(join(&index("scope.include", i), "policy"), format!("a policy {{\"id\": …}} (mode {} installs protection)", mode.as_str()), "nothing")
                    .hint("Essentials is A8E8B104-8F45-411D-A240-A30EA5FE25B0, Professional D12D5E67-166C-474F-87AA-6F86FC9FB9BC"),
            );
        }
    }
}
