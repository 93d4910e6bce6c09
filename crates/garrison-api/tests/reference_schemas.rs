//! Our responses, checked against the reference OpenAPI schemas (copies in
//! tests/reference-specs/). The checker covers the JSON Schema subset those specs use:
//! `$ref`, type, properties, required, items, enum, oneOf, anyOf.

mod harness;

use harness::{Server, deployment_body};
use reqwest::Method;
use serde_json::{Value, json};

fn spec(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference-specs").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap()
}

fn resolve<'a>(root: &'a Value, s: &'a Value) -> &'a Value {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let ptr = r.strip_prefix('#').expect("local $ref");
            resolve(root, root.pointer(ptr).unwrap_or_else(|| panic!("dangling $ref {r}")))
        }
        None => s,
    }
}

fn check(root: &Value, schema: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    let s = resolve(root, schema);
    // The reference specs use oneOf where the alternatives overlap (AWS-Credential and
    // Azure-AD-User require nothing), so it is checked as "at least one"; exact shapes are
    // checked against the named component schema where it matters.
    if let Some(alts) = s.get("oneOf").and_then(Value::as_array)
        && !alts.iter().any(|a| {
            let mut e = vec![];
            check(root, a, v, at, &mut e);
            e.is_empty()
        })
    {
        errs.push(format!("{at}: matches none of the oneOf alternatives"));
    }
    if let Some(alts) = s.get("anyOf").and_then(Value::as_array)
        && !alts.iter().any(|a| {
            let mut e = vec![];
            check(root, a, v, at, &mut e);
            e.is_empty()
        })
    {
        errs.push(format!("{at}: matches none of anyOf"));
    }
    if let Some(t) = s.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "number" => v.is_number(),
            "integer" => v.is_i64() || v.is_u64(),
            "boolean" => v.is_boolean(),
            _ => true,
        };
        if !ok {
            errs.push(format!("{at}: expected {t}, found {v}"));
            return;
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        errs.push(format!("{at}: {v} not in enum {e:?}"));
    }
    if let (Some(props), Some(obj)) = (s.get("properties").and_then(Value::as_object), v.as_object()) {
        for (k, ps) in props {
            if let Some(x) = obj.get(k) {
                check(root, ps, x, &format!("{at}.{k}"), errs);
            }
        }
        for r in s.get("required").and_then(Value::as_array).into_iter().flatten() {
            if !obj.contains_key(r.as_str().unwrap()) {
                errs.push(format!("{at}: required {r} missing"));
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            check(root, items, x, &format!("{at}[{i}]"), errs);
        }
    }
}

/// Checks `body` against the schema the spec declares for (path, method, status).
fn conforms(spec_name: &str, path: &str, method: &str, status: u16, body: &Value) {
    let root = spec(spec_name);
    let resp = &root["paths"][path][method]["responses"][status.to_string()];
    assert!(!resp.is_null(), "{spec_name}: no response {status} for {method} {path}");
    let schema = resp
        .pointer("/content/application~1json/schema")
        .unwrap_or_else(|| panic!("{spec_name}: {method} {path} {status} has no JSON schema"));
    conforms_to(&root, schema, body, &format!("{spec_name} {method} {path} {status}"));
}

fn conforms_to(root: &Value, schema: &Value, body: &Value, what: &str) {
    let mut errs = vec![];
    check(root, schema, body, "$", &mut errs);
    assert!(errs.is_empty(), "{what}:\n  {}\nbody: {body}", errs.join("\n  "));
}

fn component(spec_name: &str, name: &str, body: &Value) {
    let root = spec(spec_name);
    let schema = root["components"]["schemas"][name].clone();
    assert!(!schema.is_null(), "{spec_name}: no schema {name}");
    conforms_to(&root, &schema, body, &format!("{spec_name} {name}"));
}

#[test]
fn the_checker_rejects_what_it_should() {
    let root = spec("policies.v1.yaml");
    let schema = &root["components"]["schemas"]["Policy"];
    let mut errs = vec![];
    check(&root, schema, &json!({"id": 1, "features": [{"type": true}]}), "$", &mut errs);
    assert_eq!(errs.len(), 2, "{errs:?}");
}

#[tokio::test]
async fn responses_match_the_reference_specs() {
    let s: Server = harness::start(harness::Db::Sqlite).await.unwrap();
    let (t, a) = s.login(&s.root).await;

    let auth: Value = s
        .http
        .post(format!("{}/aims/v1/authenticate", s.base))
        .basic_auth(&s.root.id, Some(&s.root.secret))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    conforms("aims.v1.yaml", "/aims/v1/authenticate", "post", 200, &auth);
    conforms("aims.v1.yaml", "/aims/v1/token_info", "get", 200, &s.get("/aims/v1/token_info", &t).await.body);
    conforms(
        "aims.v1.yaml",
        "/aims/v1/{account_id}/account",
        "get",
        200,
        &s.get(&format!("/aims/v1/{a}/account"), &t).await.body,
    );
    let (_, child) = s.child(&t, &a, "c").await;
    conforms(
        "aims.v1.yaml",
        "/aims/v1/{account_id}/accounts/{relationship}",
        "get",
        200,
        &s.get(&format!("/aims/v1/{a}/accounts/managed"), &t).await.body,
    );
    let users = s.get(&format!("/aims/v1/{child}/users"), &t).await.body;
    conforms("aims.v1.yaml", "/aims/v1/{account_id}/users", "get", 200, &users);
    let uid = users["users"][0]["id"].as_str().unwrap();
    let key = s
        .req(Method::POST, &format!("/aims/v1/{child}/users/{uid}/access_keys"), &t, Some(json!({"label": "x"})))
        .await
        .body;
    conforms("aims.v1.yaml", "/aims/v1/{account_id}/users/{user_id}/access_keys", "post", 201, &key);
    conforms(
        "aims.v1.yaml",
        "/aims/v1/{account_id}/users/{user_id}/access_keys",
        "get",
        200,
        &s.get(&format!("/aims/v1/{child}/users/{uid}/access_keys?out=full"), &t).await.body,
    );

    conforms(
        "endpoints.v1.yaml",
        "/endpoints/v1/{account_id}/residency/{residency}/services/{service_name}/endpoint",
        "get",
        200,
        &s.get(&format!("/endpoints/v1/{a}/residency/default/services/themis/endpoint"), &t).await.body,
    );

    let role = s.get(&format!("/themis/v1/{a}/roles/aws/ci_full/latest"), &t).await.body;
    conforms(
        "themis.v1.yaml",
        "/themis/v1/{account_id}/roles/{platform_type}/{role_type}/{role_version}",
        "get",
        200,
        &role,
    );
    conforms(
        "themis.v1.yaml",
        "/themis/v1/{account_id}/roles",
        "get",
        200,
        &s.get(&format!("/themis/v1/{a}/roles"), &t).await.body,
    );
    let cred_info = json!({"credential": {"platform_type": "aws", "role_type": "ci_full", "arn": "arn:aws:iam::123412341234:role/x", "external_id": role["external_id"]}});
    let v = s.req(Method::POST, "/themis/v1/validate/aws/ci_full", &t, Some(cred_info)).await;
    conforms("themis.v1.yaml", "/themis/v1/validate/{platform_type}/{role_type}", "post", 200, &v.body);
    let bad =
        s.req(Method::POST, "/themis/v1/validate/aws/ci_full", &t, Some(json!({"credential": {"arn": "x"}}))).await;
    conforms("themis.v1.yaml", "/themis/v1/validate/{platform_type}/{role_type}", "post", 400, &bad.body);

    let cred = s
        .req(
            Method::POST,
            &format!("/credentials/v2/{a}/credentials"),
            &t,
            Some(json!({"name": "n", "secrets": {"type": "aws_iam_role", "arn": "arn:aws:iam::123412341234:role/x"}})),
        )
        .await
        .body;
    component("credentials.v2.yaml", "AWS-Credential", &cred);
    let cid = cred["id"].as_str().unwrap();
    conforms(
        "credentials.v2.yaml",
        "/credentials/v2/{account_id}/credentials",
        "get",
        200,
        &s.get(&format!("/credentials/v2/{a}/credentials"), &t).await.body,
    );
    conforms(
        "credentials.v2.yaml",
        "/credentials/v2/{account_id}/credentials/{credential_id}",
        "get",
        200,
        &s.get(&format!("/credentials/v2/{a}/credentials/{cid}"), &t).await.body,
    );

    conforms(
        "policies.v1.yaml",
        "/policies/v1/{account_id}/policies",
        "get",
        200,
        &s.get(&format!("/policies/v1/{a}/policies"), &t).await.body,
    );
    conforms(
        "policies.v1.yaml",
        "/policies/v1/{account_id}/policies/{policy_id}",
        "get",
        200,
        &s.get(&format!("/policies/v1/{a}/policies/D12D5E67-166C-474F-87AA-6F86FC9FB9BC"), &t).await.body,
    );

    let d = s.req(Method::POST, &format!("/deployments/v1/{a}/deployments"), &t, Some(deployment_body(cid))).await;
    for spec_name in ["deployments.v1.yaml", "deployments.v1.at-a95a404.yaml"] {
        conforms(spec_name, "/deployments/v1/{account_id}/deployments", "post", 201, &d.body);
    }
    // The older revision's Deployment schema still describes `scope`, which we return.
    let old = spec("deployments.v1.at-a95a404.yaml");
    assert!(old["components"]["schemas"]["Deployment"]["properties"]["scope"].is_object());
    let id = d.body["id"].as_str().unwrap();
    conforms(
        "deployments.v1.yaml",
        "/deployments/v1/{account_id}/deployments",
        "get",
        200,
        &s.get(&format!("/deployments/v1/{a}/deployments"), &t).await.body,
    );
    conforms(
        "deployments.v1.yaml",
        "/deployments/v1/{account_id}/deployments/{deployment_id}",
        "get",
        200,
        &s.get(&format!("/deployments/v1/{a}/deployments/{id}"), &t).await.body,
    );
    let u = s
        .req(
            Method::PUT,
            &format!("/deployments/v1/{a}/deployments/{id}"),
            &t,
            Some(json!({"name": "r", "version": 1})),
        )
        .await;
    conforms("deployments.v1.yaml", "/deployments/v1/{account_id}/deployments/{deployment_id}", "put", 200, &u.body);
}
