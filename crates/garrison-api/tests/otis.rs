//! otis v3 over HTTP, on SQLite and on PostgreSQL: options created, listed, read, updated
//! and deleted; ids derived from name and scope; every bad value named; deployments of
//! other tenants refused; the cross-network views.

mod harness;

use harness::{Server, deployment_body};
use reqwest::Method;
use serde_json::{Value, json};

both_backends!(options_are_stored_checked_and_listed, |s: Server| async move {
    let (t, a) = s.login(&s.root).await;
    let cred = s.credential(&t, &a, "123412341234").await;
    let d = s.req(Method::POST, &format!("/deployments/v1/{a}/deployments"), &t, Some(deployment_body(&cred))).await;
    let dep = d.body["id"].as_str().unwrap().to_string();
    let base = format!("/otis/v3/{a}/options");
    let vpc = "/aws/us-east-1/vpc/vpc-0a1b2c3d";

    // Created: the id is the name and scope's; the answer says what garrison does with it.
    let tags = json!({"name": "security_resource_tags", "scope": {"deployment_id": dep}, "value": [{"key": "CostCenter", "value": "sec"}]});
    let c = s.req(Method::POST, &base, &t, Some(tags.clone())).await;
    assert_eq!(c.status, 201, "{}", c.body);
    let id = c.body["id"].as_str().unwrap().to_string();
    let scope = garrison_model::otis::OptionScope { deployment_id: Some(dep.clone()), ..Default::default() };
    assert_eq!(id, garrison_model::otis::option_id("security_resource_tags", &scope));
    assert_eq!(c.body["value"], json!([{"key": "CostCenter", "value": "sec"}]));
    assert_eq!(c.body["applied"], true);
    assert!(c.body.get("not_applied_reason").is_none(), "{}", c.body);
    // An option garrison has no use for is stored and says why it is not applied.
    let routing = json!({"name": "custom_routing", "scope": {"deployment_id": dep}, "value": true});
    let n = s.req(Method::POST, &base, &t, Some(routing)).await;
    assert_eq!((n.status.as_u16(), &n.body["applied"]), (201, &json!(false)), "{}", n.body);
    assert!(n.body["not_applied_reason"].as_str().unwrap().contains("routing"));
    assert_eq!(
        s.req(Method::DELETE, &format!("{base}/{}", n.body["id"].as_str().unwrap()), &t, None).await.status,
        204
    );
    // The test IDS type takes any name, but not one known to be too small for an appliance.
    let small =
        json!({"name": "ids_appliance_instance_type_test", "scope": {"deployment_id": dep}, "value": "m3.medium"});
    let r = s.req(Method::POST, &base, &t, Some(small)).await;
    assert_eq!((r.status.as_u16(), r.body["errors"][0]["field"].as_str()), (400, Some("value")), "{}", r.body);
    assert!(r.body["errors"][0]["found"].as_str().unwrap().contains("1 vCPU and 3.75 GiB"), "{}", r.body);
    // The same name and scope again: a 409 naming the id to update.
    let again = s.req(Method::POST, &base, &t, Some(tags)).await;
    assert_eq!(again.status, 409);
    assert!(again.body["message"].as_str().unwrap().contains(&id), "{}", again.body);
    // Another scope of the same option is another option.
    let vpc_tags =
        json!({"name": "security_resource_tags", "scope": {"deployment_id": dep, "vpc_key": vpc}, "value": []});
    assert_eq!(s.req(Method::POST, &base, &t, Some(vpc_tags)).await.status, 201);
    let placement = json!({"name": "ids_appliances_placement", "scope": {"deployment_id": dep, "region_key": "/aws/us-east-1"},
        "value": {"policy": "automatic", "max_zones": 1}});
    assert_eq!(s.req(Method::POST, &base, &t, Some(placement)).await.status, 201);
    let listed = s.get(&base, &t).await;
    let names: Vec<&str> = listed.body.as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ids_appliances_placement", "security_resource_tags", "security_resource_tags"]);

    // Bad values, each named; nothing stored.
    let bad = s
        .req(
            Method::POST,
            &base,
            &t,
            Some(json!({"name": "ids_appliances_scaling", "scope": {"deployment_id": dep},
            "value": {"policy": "automatic", "min_instances": 6, "max_instances": 2}})),
        )
        .await;
    assert_eq!(
        (bad.status.as_u16(), bad.body["errors"][0]["field"].as_str()),
        (400, Some("value.min_instances")),
        "{}",
        bad.body
    );
    let bad =
        s.req(Method::POST, &base, &t, Some(json!({"name": "ids_appliance_instance_type", "value": "t2.nano"}))).await;
    assert_eq!(bad.body["errors"][0]["field"], "value");
    assert!(bad.body["errors"][0]["expected"].as_str().unwrap().contains("c5.large"));
    let bad = s.req(Method::POST, &base, &t, Some(json!({"name": "nope", "value": 1}))).await;
    assert_eq!(bad.body["errors"][0]["field"], "name");
    let bad = s
        .req(
            Method::POST,
            &base,
            &t,
            Some(json!({"name": "span_port_enabled", "scope": {"deployment_id": "NOT-MINE"}, "value": true})),
        )
        .await;
    assert_eq!((bad.status.as_u16(), bad.body["errors"][0]["field"].as_str()), (400, Some("scope.deployment_id")));
    assert_eq!(s.get(&base, &t).await.body.as_array().unwrap().len(), 3);

    // Updated: the value changes, the id stays; moving it to another scope is refused.
    let one = format!("{base}/{id}");
    let u = s.req(Method::PUT, &one, &t, Some(json!({"value": [{"key": "CostCenter", "value": "ops"}]}))).await;
    assert_eq!(u.status, 200, "{}", u.body);
    assert_eq!(s.get(&one, &t).await.body["value"][0]["value"], "ops");
    let moved = s.req(Method::PUT, &one, &t, Some(json!({"scope": {}, "value": []}))).await;
    assert_eq!((moved.status.as_u16(), moved.body["errors"][0]["field"].as_str()), (400, Some("name")));
    let badval = s.req(Method::PUT, &one, &t, Some(json!({"value": [{"key": "AlertLogic-x", "value": "v"}]}))).await;
    assert_eq!(badval.body["errors"][0]["field"], "value[0].key");

    // Cross-network protection: both views.
    let hub = "/aws/us-east-1/vpc/vpc-0f0e0d0c";
    let spoke = json!({"name": "cross_network_protection", "scope": {"deployment_id": dep, "vpc_key": vpc},
        "value": {"deployment_id": dep, "vpc_key": hub}});
    let c = s.req(Method::POST, &base, &t, Some(spoke)).await;
    assert_eq!(c.status, 201, "{}", c.body);
    let protected = s.get(&format!("/otis/v3/{a}/cross_protected_networks?vpc_key={vpc}"), &t).await;
    assert_eq!(protected.body[0]["protecting_network"]["vpc_key"], hub, "{}", protected.body);
    assert_eq!(protected.body[0]["option_id"], c.body["id"]);
    let protecting = s.get(&format!("/otis/v3/{a}/cross_protecting_networks"), &t).await;
    assert_eq!(protecting.body[0]["vpc_key"], hub);
    assert_eq!(protecting.body[0]["protected_network"]["vpc_key"], vpc);
    assert!(
        s.get(&format!("/otis/v3/{a}/cross_protected_networks?vpc_key={hub}"), &t)
            .await
            .body
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Deleted.
    assert_eq!(s.req(Method::DELETE, &one, &t, None).await.status, 204);
    assert_eq!(s.get(&one, &t).await.status, 404);
    assert_eq!(s.req(Method::DELETE, &one, &t, None).await.status, 404);
    let _: Value = s.get(&base, &t).await.body;
});
