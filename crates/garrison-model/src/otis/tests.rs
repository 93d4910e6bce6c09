use proptest::prelude::*;
use serde_json::json;

use super::*;

const D: &str = "AAAAAAAA-AAAA-AAAA-AAAA-AAAAAAAAAAAA";

fn scope(d: Option<&str>, r: Option<&str>, v: Option<&str>) -> OptionScope {
    OptionScope { deployment_id: d.map(Into::into), region_key: r.map(Into::into), vpc_key: v.map(Into::into) }
}

fn opt(value: i64, s: OptionScope) -> TuningOption {
    TuningOption {
        id: option_id("max_vulnerability_scan_jobs", &s),
        name: "max_vulnerability_scan_jobs".into(),
        scope: s,
        value: json!(value),
    }
}

#[test]
fn the_reference_example_resolves_to_the_deployment_value() {
    // The reference's table: 1 the account's, 2 the deployment's, 3 the deployment's region's.
    let opts = [
        opt(1, scope(None, None, None)),
        opt(2, scope(Some(D), None, None)),
        opt(3, scope(Some(D), Some("/aws/us-east-1"), None)),
    ];
    assert_eq!(resolve(&opts, &scope(Some(D), None, None)).unwrap().value, 2);
    assert_eq!(resolve(&opts, &scope(Some(D), Some("/aws/us-east-1"), None)).unwrap().value, 3);
    assert_eq!(
        resolve(&opts, &scope(Some(D), Some("/aws/eu-west-1"), None)).unwrap().value,
        2,
        "another region: the deployment's"
    );
    assert_eq!(
        resolve(&opts, &scope(Some("other"), None, None)).unwrap().value,
        1,
        "another deployment: the account's"
    );
    assert_eq!(resolve(&opts, &scope(None, None, None)).unwrap().value, 1);
    // A VPC value beats the region's for that VPC.
    let vpc = "/aws/us-east-1/vpc/vpc-00000000000000001";
    let mut with_vpc = opts.to_vec();
    with_vpc.push(opt(4, scope(Some(D), None, Some(vpc))));
    let target = scope(Some(D), Some("/aws/us-east-1"), Some(vpc));
    assert_eq!(resolve(&with_vpc, &target).unwrap().value, 4);
    assert_eq!(
        resolve(&with_vpc, &scope(Some(D), Some("/aws/us-east-1"), Some("/aws/us-east-1/vpc/vpc-2"))).unwrap().value,
        3
    );
    assert!(resolve(&[], &target).is_none());
}

#[test]
fn an_id_is_its_name_and_scope() {
    let a = option_id("security_resource_tags", &scope(Some(D), None, None));
    assert_eq!(a, option_id("security_resource_tags", &scope(Some(D), None, None)));
    assert_ne!(a, option_id("security_resource_tags", &scope(Some(D), Some("/aws/us-east-1"), None)));
    assert_ne!(a, option_id("ids_security_resource_tags", &scope(Some(D), None, None)));
    assert_eq!(a.len(), 36);
    assert!(regex::Regex::new("^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$").unwrap().is_match(&a));
}

#[test]
fn values_are_checked_per_option_and_every_bad_field_is_named() {
    let ok = |b: Value| parse(&b).unwrap_or_else(|e| panic!("{b}: {e}"));
    let vpc = "/aws/us-east-1/vpc/vpc-0a1b2c3d";
    ok(
        json!({"name": "ids_appliance_instance_type", "scope": {"deployment_id": D, "vpc_key": vpc}, "value": "c5.large"}),
    );
    ok(
        json!({"name": "ids_appliances_placement", "scope": {"deployment_id": D}, "value": {"policy": "automatic", "max_zones": 1}}),
    );
    ok(json!({"name": "ids_appliances_placement", "scope": {"deployment_id": D, "vpc_key": vpc},
              "value": {"policy": "constant", "zone_keys": ["/aws/us-east-1/zone/us-east-1a", "/aws/us-east-1/zone/us-east-1b"]}}));
    ok(
        json!({"name": "scan_appliances_scaling", "scope": {"deployment_id": D}, "value": {"policy": "constant", "num_instances": 0}}),
    );
    ok(json!({"name": "security_resource_tags", "value": [{"key": "CostCenter", "value": "sec"}]}));
    ok(
        json!({"name": "scan_security_subnet_cidr_block", "scope": {"deployment_id": D, "vpc_key": vpc}, "value": "10.0.1.0/28"}),
    );
    ok(json!({"name": "discovery_scan_frequency", "value": "automatic"}));
    ok(json!({"name": "cross_network_protection", "scope": {"deployment_id": D, "region_key": "/aws/us-east-1"},
              "value": {"deployment_id": D, "vpc_key": vpc}}));
    let fields = |b: Value| -> Vec<String> { parse(&b).unwrap_err().errors.into_iter().map(|e| e.field).collect() };
    assert_eq!(fields(json!({"name": "colour", "value": 1, "x": 2})), ["x", "name"]);
    assert_eq!(fields(json!({"name": "ids_appliance_instance_type", "value": "t2.nano"})), ["value"]);
    assert_eq!(
        fields(
            json!({"name": "ids_appliances_scaling", "scope": {"deployment_id": D}, "value": {"policy": "automatic", "min_instances": 5, "max_instances": 2}})
        ),
        ["value.min_instances"]
    );
    assert_eq!(
        fields(
            json!({"name": "ids_appliances_placement", "value": {"policy": "constant", "zone_keys": ["us-east-1a"]}})
        ),
        ["value.zone_keys[0]"]
    );
    assert_eq!(
        fields(
            json!({"name": "security_resource_tags", "value": [{"key": "AlertLogic-x", "value": ""}, {"key": "garrison-key", "value": "x"}, {"key": "a", "value": "1"}, {"key": "a", "value": "2"}]})
        ),
        ["value[0].key", "value[1].key", "value[3].key"]
    );
    assert_eq!(
        fields(
            json!({"name": "scan_security_subnet_cidr_block", "scope": {"deployment_id": D}, "value": "10.0.1.0/29"})
        ),
        ["scope.vpc_key", "value"]
    );
    assert_eq!(
        fields(json!({"name": "span_port_enabled", "scope": {"region_key": "/aws/us-east-1"}, "value": true})),
        ["scope.deployment_id"]
    );
    assert_eq!(
        fields(
            json!({"name": "span_port_enabled", "scope": {"deployment_id": D, "region_key": "/aws/eu-west-1", "vpc_key": vpc}, "value": true})
        ),
        ["scope.vpc_key"]
    );
    assert_eq!(
        fields(json!({"name": "span_port_enabled", "scope": {"host_key": "x"}, "value": true})),
        ["scope.host_key"]
    );
}

#[test]
fn every_option_says_whether_garrison_applies_it() {
    for (name, e) in OPTIONS {
        if let Effect::NotApplied(why) = e {
            assert!(!why.is_empty(), "{name}");
        }
    }
    assert_eq!(effect("ids_appliances_placement"), Some(Effect::Applied));
    assert_eq!(effect("span_port_enabled"), Some(Effect::Applied), "VPC Traffic Mirroring");
    let o = parse(&json!({"name": "custom_routing", "value": true})).unwrap();
    assert_eq!(shown(&o)["applied"], false);
    assert!(shown(&o)["not_applied_reason"].as_str().unwrap().contains("routing"));
}

fn any_scope() -> impl Strategy<Value = OptionScope> {
    (
        proptest::option::of(prop_oneof![Just(D.to_string()), Just("BBBB".to_string())]),
        proptest::option::of(prop_oneof![Just("/aws/us-east-1".to_string()), Just("/aws/eu-west-1".to_string())]),
        proptest::option::of(prop_oneof![
            Just("/aws/us-east-1/vpc/vpc-1".to_string()),
            Just("/aws/us-east-1/vpc/vpc-2".to_string())
        ]),
    )
        .prop_map(|(d, r, v)| OptionScope { deployment_id: d, region_key: r, vpc_key: v })
}

proptest! {
    // Whatever the option set, the value resolved for a target never asks for a narrower
    // scope than the target, and none that fits beats it.
    #[test]
    fn resolution_picks_the_most_specific_fit(scopes in proptest::collection::vec(any_scope(), 0..8), target in any_scope()) {
        let opts: Vec<TuningOption> = scopes.into_iter().enumerate().map(|(i, s)| opt(i as i64, s)).collect();
        match resolve(&opts, &target) {
            Some(won) => {
                let rank = won.scope.fit(&target).expect("the winner fits");
                for o in &opts {
                    if let Some(r) = o.scope.fit(&target) {
                        prop_assert!(r <= rank);
                    }
                }
            }
            None => prop_assert!(opts.iter().all(|o| o.scope.fit(&target).is_none())),
        }
    }

    // Any body is answered, never a panic; an accepted one's id is its name and scope.
    #[test]
    fn any_option_body_is_answered(name in prop_oneof![Just("security_resource_tags"), Just("ids_appliances_placement"), Just("scan_security_subnet_cidr_block"), Just("x")],
                                   value in prop_oneof![Just(json!(null)), Just(json!("10.0.0.0/28")), Just(json!({"policy": "automatic"})), Just(json!([{"key": "k", "value": "v"}])), ".{0,8}".prop_map(|s| json!(s))],
                                   scope in any_scope()) {
        let body = json!({"name": name, "scope": scope, "value": value});
        if let Ok(o) = parse(&body) {
            prop_assert_eq!(o.id, option_id(name, &o.scope));
        }
    }
}
