use std::collections::{HashMap, HashSet};

use super::*;
use crate::ValidationError;
use serde_json::json;

const PRO: &str = "D12D5E67-166C-474F-87AA-6F86FC9FB9BC";

fn refs_data() -> (HashSet<String>, HashMap<String, String>) {
    let p: HashSet<String> = [PRO, "A8E8B104-8F45-411D-A240-A30EA5FE25B0"].iter().map(|s| s.to_string()).collect();
    let c: HashMap<String, String> =
        [("cred-1".to_string(), "123412341234".to_string()), ("cred-x".to_string(), "999999999999".to_string())].into();
    (p, c)
}

fn reference_body() -> Value {
    json!({"name": "My Deployment", "platform": {"type": "aws", "id": "123412341234"}, "mode": "automatic",
           "credentials": [{"id": "cred-1", "purpose": "discover"}],
           "scope": {"include": [{"type": "region", "key": "/aws/us-east-1", "policy": {"id": PRO}}], "exclude": []}})
}

/// A deployment holding nothing yet but `spec`'s platform (version 1).
fn blank(spec: &DeploymentSpec) -> Deployment {
    Deployment {
        id: "D".into(),
        account_id: "10000001".into(),
        name: String::new(),
        platform: spec.platform.clone(),
        mode: Mode::None,
        enabled: false,
        discover: false,
        scan: false,
        scope: Scope::default(),
        features: None,
        cloud_defender: CloudDefender::default(),
        credentials: vec![],
        status: Status { status: StatusKind::New, updated: 0, message: None, reason: None },
        created: crate::Stamp { at: 0, by: "u".into() },
        modified: crate::Stamp { at: 0, by: "u".into() },
        version: 1,
        is_control_tower: false,
        control_tower: None,
        event_feed: None,
    }
}

fn fields(e: &ValidationError) -> Vec<&str> {
    e.errors.iter().map(|e| e.field.as_str()).collect()
}

#[test]
fn reference_body_gets_defaults() {
    let (p, c) = refs_data();
    let req = parse_request(&reference_body(), None, &Refs { policies: &p, credentials: &c }).unwrap();
    let s = req.spec;
    assert_eq!(s.mode, Mode::Automatic);
    assert!(s.enabled && s.discover && s.scan && !s.is_control_tower);
    assert_eq!(s.platform.monitor.ct_install_region.as_deref(), Some("us-east-1"));
    assert_eq!(s.scope.include[0].policy.as_ref().unwrap().id, PRO);
}

#[test]
fn credentials_as_object_gets_a_hint() {
    let (p, c) = refs_data();
    let mut b = reference_body();
    b["credentials"] = json!({"id": "cred-1", "purpose": "discover"});
    let e = parse_request(&b, None, &Refs { policies: &p, credentials: &c }).unwrap_err();
    assert_eq!(fields(&e), ["credentials"]);
    assert_eq!(e.errors[0].found, "a single object");
    assert!(e.errors[0].hint.as_ref().unwrap().contains("wrap it in brackets"));
}

#[test]
fn every_bad_field_is_named() {
    let (p, c) = refs_data();
    let b = json!({"name": "", "platform": {"type": "aws", "id": "1234"}, "mode": "bogus",
        "credentials": [{"id": "nope", "purpose": "spy"}],
        "scope": {"include": [{"type": "region", "key": "/aws/us-east-1/vpc/vpc-0123abcd", "policy": {"id": "X"}},
                              {"type": "vpc", "key": "/aws/us-east-1/vpc/vpc-0123abcd", "policy": {"id": PRO}}],
                  "exclude": [{"type": "deployment", "key": "/aws"}]},
        "scpoe": 1});
    let e = parse_request(&b, None, &Refs { policies: &p, credentials: &c }).unwrap_err();
    let f = fields(&e);
    for want in [
        "scpoe",
        "name",
        "mode",
        "platform.id",
        "scope.include[0].key",
        "scope.include[0].policy.id",
        "scope.exclude[0].type",
        "credentials[0].id",
        "credentials[0].purpose",
    ] {
        assert!(f.contains(&want), "{want} missing from {f:?}");
    }
    let key_err = e.errors.iter().find(|e| e.field == "scope.include[0].key").unwrap();
    assert!(key_err.hint.as_ref().unwrap().contains("\"type\": \"vpc\""));
}

#[test]
fn a_scope_by_vpc_tag_parses_and_a_bad_tag_key_is_named() {
    let (p, c) = refs_data();
    let mut b = reference_body();
    b["scope"] = json!({"include": [{"type": "tag", "key": "/aws/us-east-1/tag/garrison:protect=true", "policy": {"id": PRO}}],
                        "exclude": [{"type": "tag", "key": "/aws/us-east-1/tag/garrison:protect=false"}]});
    let s = parse_request(&b, None, &Refs { policies: &p, credentials: &c }).unwrap().spec;
    assert_eq!((s.scope.include[0].kind, s.scope.exclude[0].kind), (ScopeType::Tag, ScopeType::Tag));
    b["scope"] = json!({"include": [{"type": "tag", "key": "/aws/us-east-1/tag/=true", "policy": {"id": PRO}},
                                    {"type": "tag", "key": "/aws/us-east-1/vpc/vpc-0123abcd", "policy": {"id": PRO}}]});
    let e = parse_request(&b, None, &Refs { policies: &p, credentials: &c }).unwrap_err();
    assert_eq!(fields(&e), ["scope.include[0].key", "scope.include[1].key"]);
    assert!(e.errors[0].expected.contains("/aws/<region>/tag/<tag-key>[=<value>]"), "{:?}", e.errors[0]);
    assert!(e.errors[1].hint.as_ref().unwrap().contains("\"type\": \"vpc\""));
}

#[test]
fn an_event_feed_is_never_taken_from_a_request() {
    // Forwarding an account's events to a bus a client names would hand them to its owner.
    let (p, c) = refs_data();
    let mut b = reference_body();
    b["event_feed"] = json!({"bus_arn": "arn:aws:events:us-east-1:666666666666:event-bus/x", "organization_id": "E"});
    let e = parse_request(&b, None, &Refs { policies: &p, credentials: &c }).unwrap_err();
    assert_eq!(fields(&e), ["event_feed"], "not a field of a create");
    b.as_object_mut().unwrap().remove("event_feed");
    let spec = parse_request(&b, None, &Refs { policies: &p, credentials: &c }).unwrap().spec;
    assert_eq!(spec.event_feed, None);
    let mut d = blank(&spec);
    d.apply(spec);
    d.event_feed = Some(EventFeed {
        bus_arn: "arn:aws:events:us-east-1:123456789012:event-bus/garrison-org-e".into(),
        organization_id: "E".into(),
    });
    let mut update = json!({"name": "renamed", "event_feed": null, "version": 1});
    let kept = parse_request(&update, Some(&d), &Refs { policies: &p, credentials: &c }).unwrap().spec;
    assert_eq!(kept.event_feed, d.event_feed, "sent back (even changed) on an update: ignored");
    update["event_feed"] = json!({"bus_arn": "arn:aws:events:us-east-1:666666666666:event-bus/x"});
    let kept = parse_request(&update, Some(&d), &Refs { policies: &p, credentials: &c }).unwrap().spec;
    d.apply(kept);
    assert_eq!(d.event_feed.unwrap().organization_id, "E");
}

#[test]
fn policy_required_for_automatic_but_not_readonly() {
    let (p, c) = refs_data();
    let mut b = reference_body();
    b["scope"] = json!({"include": [{"type": "region", "key": "/aws/us-east-1"}]});
    let e = parse_request(&b, None, &Refs { policies: &p, credentials: &c }).unwrap_err();
    assert_eq!(fields(&e), ["scope.include[0].policy"]);
    b["mode"] = json!("readonly");
    assert!(parse_request(&b, None, &Refs { policies: &p, credentials: &c }).is_ok());
}

#[test]
fn discover_role_must_be_in_the_platform_account() {
    let (p, c) = refs_data();
    let mut b = reference_body();
    b["credentials"] = json!([{"id": "cred-x", "purpose": "discover"}]);
    let e = parse_request(&b, None, &Refs { policies: &p, credentials: &c }).unwrap_err();
    assert_eq!(fields(&e), ["credentials[0].id"]);
    assert!(e.errors[0].found.contains("999999999999"));
}

#[test]
fn update_merges_and_keeps_the_rest() {
    let (p, c) = refs_data();
    let refs = Refs { policies: &p, credentials: &c };
    let spec = parse_request(&reference_body(), None, &refs).unwrap().spec;
    let mut d = Deployment { version: 3, ..blank(&spec) };
    d.apply(spec);
    let req = parse_request(
        &json!({"name": "Renamed", "version": 3, "id": "D", "status": {"status": "ok"}}),
        Some(&d),
        &refs,
    )
    .unwrap();
    assert_eq!(req.version, Some(3));
    assert_eq!(req.spec.name, "Renamed");
    assert_eq!(req.spec.scope, d.scope);
    let e = parse_request(&json!({"platform": {"type": "aws", "id": "555555555555"}}), Some(&d), &refs).unwrap_err();
    assert_eq!(fields(&e), ["platform.id", "credentials[0].id"]);
}

#[test]
fn monitor_rules() {
    let (p, c) = refs_data();
    let refs = Refs { policies: &p, credentials: &c };
    let mut b = reference_body();
    b["platform"]["monitor"] = json!({"enabled": true});
    assert_eq!(fields(&parse_request(&b, None, &refs).unwrap_err()), ["platform.monitor.ct_install_region"]);
    b["platform"]["monitor"] = json!({"enabled": true, "ct_install_region": "eu-west-1"});
    let s = parse_request(&b, None, &refs).unwrap().spec;
    assert_eq!(s.platform.monitor.ct_install_region.as_deref(), Some("eu-west-1"));
}

#[test]
fn every_reason_has_its_code_and_a_policy() {
    for r in Reason::ALL {
        assert_eq!(serde_json::to_value(r).unwrap(), r.as_str(), "{r:?}: the code on the wire is as_str");
        let _ = r.retry();
    }
    assert_eq!(Reason::Converged.retry(), Retry::Resync);
    assert_eq!(Reason::AwsUnavailable.retry(), Retry::Backoff);
    assert_eq!(Reason::RoleUnsafe.retry(), Retry::WaitForChange);
    assert_eq!(Reason::NoAwsCredentials.retry(), Retry::WaitForChange);
}

proptest::proptest! {
    #[test]
    fn backoff_doubles_from_five_seconds_and_stops_at_the_cap(failures in 1u32..10_000, cap_s in 1u64..100_000) {
        let cap = std::time::Duration::from_secs(cap_s);
        let base = std::time::Duration::from_secs(5);
        let b = backoff(failures, base, cap);
        proptest::prop_assert!(b <= cap);
        proptest::prop_assert!(b >= std::time::Duration::from_secs(5).min(cap));
        proptest::prop_assert!(backoff(failures + 1, base, cap) >= b, "never shorter after another failure");
        if failures < 10 && cap_s > 5 * 1024 {
            proptest::prop_assert_eq!(b, std::time::Duration::from_secs(5 << (failures - 1)));
        }
    }
}

/// The shape `JSON_FORMAT` names: the schema of `Deployment` and of every type it holds.
/// When it changes, stored bodies of the old shape must not be answered as they are.
#[test]
fn the_json_shape_is_pinned() {
    use utoipa::{PartialSchema, ToSchema};
    let mut schemas = vec![];
    <Deployment as ToSchema>::schemas(&mut schemas);
    schemas.sort_by(|a, b| a.0.cmp(&b.0));
    let text = serde_json::to_string(&(Deployment::schema(), &schemas)).unwrap();
    // FNV-1a: stable across Rust releases, unlike the standard library's hasher.
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    // The types it holds are in it (a scope's items, a credential's purpose), not only their names.
    for field in ["\"event_feed\"", "\"include\"", "\"purpose\"", "\"cloud_defender\""] {
        assert!(text.contains(field), "{field} is not in the pinned shape");
    }
    const PINNED: (i64, u64) = (1, 0x5836_8670_358b_64cc);
    assert_eq!(
        (JSON_FORMAT, hash),
        PINNED,
        "the JSON shape of Deployment changed (its schema hashes to {hash:#x}): raise JSON_FORMAT, then pin \
         (JSON_FORMAT, {hash:#x}) here, so that bodies stored in the old shape are parsed and written again"
    );
}
