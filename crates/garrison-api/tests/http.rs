//! The HTTP contract of every route, on SQLite and on PostgreSQL: exact bodies on success,
//! 401 without or with a bad token, 403/404 across tenants, 400 naming each bad field,
//! 409 on a stale version.

mod harness;

use harness::{ESSENTIALS, PRINCIPAL, PROFESSIONAL, Server, deployment_body};
use reqwest::Method;
use serde_json::{Value, json};

both_backends!(authenticate_and_tokens, |s: Server| async move {
    let (token, account) = s.login(&s.root).await;
    assert_eq!(account, "10000001");
    let bad = s
        .http
        .post(format!("{}/aims/v1/authenticate", s.base))
        .basic_auth(&s.root.id, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let none = s.http.post(format!("{}/aims/v1/authenticate", s.base)).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let info = s.get("/aims/v1/token_info", &token).await;
    assert_eq!(info.status, 200);
    assert_eq!(info.body["account"]["id"], "10000001");
    assert_eq!(info.body["entity_type"], "user");
    // No token, a malformed one, a forged one, an expired one.
    let r = s.raw(Method::GET, "/deployments/v1/10000001/deployments", None, None).await;
    assert_eq!(r.status, 401);
    assert!(r.body["message"].as_str().unwrap().contains("missing x-aims-auth-token"));
    assert_eq!(s.get("/deployments/v1/10000001/deployments", "garbage").await.status, 401);
    let forged = format!("{}x", &token[..token.len() - 1]);
    assert_eq!(s.get("/deployments/v1/10000001/deployments", &forged).await.status, 401);
    let (expired, _) = s.state.tokens.mint_until("10000001", "u", &s.root.id, 1);
    let r = s.get("/deployments/v1/10000001/deployments", &expired).await;
    assert_eq!(r.status, 401);
    assert!(r.body["message"].as_str().unwrap().contains("expired"));
});

both_backends!(tenants_and_children, |s: Server| async move {
    let (root, _) = s.login(&s.root).await;
    let (ka, a) = s.child(&root, "10000001", "alpha").await;
    let (kb, b) = s.child(&root, "10000001", "beta").await;
    let (ta, _) = s.login(&ka).await;
    let (tb, _) = s.login(&kb).await;
    // A parent may act on its children, a child not on its parent nor a sibling.
    assert_eq!(s.get(&format!("/deployments/v1/{a}/deployments"), &root).await.status, 200);
    assert_eq!(s.get(&format!("/deployments/v1/{a}/deployments"), &ta).await.status, 200);
    assert_eq!(s.get("/deployments/v1/10000001/deployments", &ta).await.status, 403);
    let r = s.get(&format!("/deployments/v1/{b}/deployments"), &ta).await;
    assert_eq!(r.status, 403);
    assert!(!r.body.to_string().contains("beta"));
    assert_eq!(s.get("/deployments/v1/99999999/deployments", &tb).await.status, 403);
    // Grandchildren are reachable from the top.
    let (_, grand) = s.child(&ta, &a, "gamma").await;
    assert_eq!(s.get(&format!("/aims/v1/{grand}/account"), &root).await.status, 200);
    assert_eq!(s.get(&format!("/aims/v1/{grand}/account"), &tb).await.status, 403);
    let managed = s.get("/aims/v1/10000001/accounts/managed", &root).await;
    let names: Vec<&str> =
        managed.body["accounts"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"alpha") && names.contains(&"beta"));
    let managing = s.get(&format!("/aims/v1/{a}/accounts/managing"), &root).await;
    assert_eq!(managing.body["accounts"][0]["id"], "10000001");
    assert_eq!(s.get(&format!("/aims/v1/{a}/accounts/bogus"), &root).await.body["field"], "relationship");
    // Each tenant has its own external id.
    let ea = s.get(&format!("/themis/v1/{a}/roles/aws/ci_full/latest"), &ta).await.body["external_id"].clone();
    let eb = s.get(&format!("/themis/v1/{b}/roles/aws/ci_full/latest"), &tb).await.body["external_id"].clone();
    assert_ne!(ea, eb);
    // Access keys: list shows ids only by default, never secrets.
    let users = s.get(&format!("/aims/v1/{a}/users"), &root).await;
    let uid = users.body["users"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{:?} {:?}", users.status, users.body))
        .to_string();
    let keys = s.get(&format!("/aims/v1/{a}/users/{uid}/access_keys"), &root).await;
    assert_eq!(keys.body, json!({"access_keys": [ka.id]}));
    let full = s.get(&format!("/aims/v1/{a}/users/{uid}/access_keys?out=full"), &root).await;
    assert!(full.body["access_keys"][0].get("secret_key").is_none());
    let del = s.req(Method::DELETE, &format!("/aims/v1/{a}/users/{uid}/access_keys/{}", ka.id), &root, None).await;
    assert_eq!(del.status, 204);
    let again = s
        .http
        .post(format!("{}/aims/v1/authenticate", s.base))
        .basic_auth(&ka.id, Some(&ka.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);
});

both_backends!(themis_roles_and_templates, |s: Server| async move {
    let (t, _) = s.login(&s.root).await;
    let r = s.get("/themis/v1/10000001/roles/aws/ci_full/latest", &t).await;
    assert_eq!(r.status, 200);
    let b = &r.body;
    let keys: Vec<&str> = b.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(keys, ["type", "platform_type", "policy_document", "external_id", "aws_account_id", "version", "cft"]);
    assert_eq!(b["type"], "ci_full");
    assert_eq!(b["version"], "2026-12-07");
    assert_eq!(b["aws_account_id"], PRINCIPAL);
    let ext = b["external_id"].as_str().unwrap();
    assert_eq!(ext.len(), 32);
    assert_ne!(ext, "10000001");
    assert_eq!(
        s.get("/themis/v1/10000001/roles/aws/ci_full/latest", &t).await.body["external_id"],
        ext,
        "stable per tenant"
    );
    assert_eq!(b["cft"]["s3_key"], "ci_full/2026-12-07");
    let url = b["cft"]["s3_url"].as_str().unwrap().to_string();
    assert_eq!(url, format!("{}/themis/v1/templates/aws/ci_full/2026-12-07", s.base));
    // The template is public and trusts our principal with the ExternalId parameter.
    let tpl: Value = s.http.get(&url).send().await.unwrap().json().await.unwrap();
    let trust = &tpl["Resources"]["GarrisonRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0];
    assert_eq!(trust["Principal"]["AWS"], format!("arn:aws:iam::{PRINCIPAL}:root"));
    assert_eq!(trust["Condition"]["StringEquals"]["sts:ExternalId"], json!({"Ref": "ExternalId"}));
    assert!(tpl["Resources"]["GarrisonPolicy2"].is_object(), "ci_full splits into two managed policies");
    assert!(tpl["Outputs"]["RoleARN"].is_object() && tpl["Outputs"]["IAMRole"].is_object());
    assert_eq!(s.get("/themis/v1/10000001/roles/aws/ci_full/2020-01-10", &t).await.body["version"], "2020-01-10");
    let missing = s.get("/themis/v1/10000001/roles/aws/ci_full/2001-01-01", &t).await;
    assert_eq!(missing.status, 404);
    assert!(
        missing.body["message"]
            .as_str()
            .unwrap()
            .contains("2020-01-10, 2026-11-30, 2026-12-06, 2026-12-06.2, 2026-12-06.3, 2026-12-07")
    );
    assert_eq!(s.get("/themis/v1/10000001/roles/aws/cd_full/latest", &t).await.status, 404);
    let bad = s.get("/themis/v1/10000001/roles/aws/ci_fulll/latest", &t).await;
    assert_eq!((bad.status.as_u16(), bad.body["field"].as_str()), (400, Some("role_type")));
    let all = s.get("/themis/v1/10000001/roles?platform_type=aws", &t).await;
    let types: Vec<&str> = all.body.as_array().unwrap().iter().map(|r| r["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["ci_essentials", "ci_full", "ci_manual", "ci_organization", "ci_readonly", "ci_x_account_ct"]);
    assert_eq!(s.get("/themis/v1/10000001/roles?platform_type=azure", &t).await.body, json!([]));
    // validate_credentials, from stored data.
    let cred = json!({"credential": {"platform_type": "aws", "role_type": "ci_full", "arn": "arn:aws:iam::123412341234:role/garrison", "external_id": ext}});
    let v = s.req(Method::POST, "/themis/v1/validate/aws/ci_full", &t, Some(cred.clone())).await;
    assert_eq!(v.body, json!({"status": "latest", "message": "Validation successful", "version": "2026-12-07"}));
    let mut old = cred.clone();
    old["credential"]["role_version"] = json!("2020-01-10");
    assert_eq!(s.req(Method::POST, "/themis/v1/validate/aws/ci_full", &t, Some(old)).await.body["status"], "outdated");
    let mut wrong = cred.clone();
    wrong["credential"]["external_id"] = json!("10000001");
    let w = s.req(Method::POST, "/themis/v1/validate/aws/ci_full", &t, Some(wrong)).await;
    assert_eq!((w.status.as_u16(), w.body["field"].as_str()), (400, Some("credential.external_id")));
    // The role as Terraform: HCL text, with the same trust principal; the format is checked.
    let tf = s
        .http
        .get(format!("{}/themis/v1/10000001/roles/aws/ci_full/latest?format=terraform", s.base))
        .header("x-aims-auth-token", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(tf.status(), 200);
    assert_eq!(tf.headers()["content-type"], "text/plain; charset=utf-8");
    let hcl = tf.text().await.unwrap();
    assert!(hcl.starts_with("# garrison ci_full role, version 2026-12-07"), "{hcl}");
    assert!(
        hcl.contains("resource \"aws_iam_role\" \"garrison\"")
            && hcl.contains(&format!("arn:aws:iam::{PRINCIPAL}:root")),
        "{hcl}"
    );
    assert!(!hcl.contains(ext), "the external id is a variable, not in the text");
    let r = s.get("/themis/v1/10000001/roles/aws/ci_full/latest?format=hcl", &t).await;
    assert_eq!(
        (r.status.as_u16(), r.body["field"].as_str(), r.body["expected"].as_str()),
        (400, Some("format"), Some("one of [json, terraform]"))
    );
    assert_eq!(
        s.raw(Method::GET, "/themis/v1/10000001/roles/aws/ci_full/latest?format=terraform", None, None).await.status,
        401
    );
});

both_backends!(dashboard_assets, |s: Server| async move {
    for (path, kind) in
        [("/", "text/html"), ("/dashboard/app.js", "text/javascript"), ("/dashboard/style.css", "text/css")]
    {
        let r = s.http.get(format!("{}{path}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert!(h["content-type"].to_str().unwrap().starts_with(kind), "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
    }
    let page = s.http.get(format!("{}/", s.base)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<script src=\"/dashboard/app.js\" defer></script>") && !page.contains("<script>"));
    // The script puts data on the page as text only.
    let js = s.http.get(format!("{}/dashboard/app.js", s.base)).send().await.unwrap().text().await.unwrap();
    assert!(!js.contains("innerHTML") && !js.contains("eval("), "no HTML injection sinks");
});

both_backends!(credentials_crud, |s: Server| async move {
    let (t, _) = s.login(&s.root).await;
    let ext = s.get("/themis/v1/10000001/roles/aws/ci_full/latest", &t).await.body["external_id"].clone();
    let user = s.get("/aims/v1/token_info", &t).await.body["entity_id"].clone();
    let body =
        json!({"name": "IAM policy", "secrets": {"arn": "arn:aws:iam::123412341234:role/x", "type": "aws_iam_role"}});
    let c = s.req(Method::POST, "/credentials/v2/10000001/credentials", &t, Some(body)).await;
    assert_eq!(c.status, 200);
    let id = c.body["id"].as_str().unwrap().to_string();
    let at = c.body["created"]["at"].clone();
    assert_eq!(
        c.body,
        json!({"id": id, "name": "IAM policy", "secrets": {"type": "aws_iam_role", "arn": "arn:aws:iam::123412341234:role/x", "external_id": ext}, "created": {"at": at, "by": user}})
    );
    assert_eq!(s.get(&format!("/credentials/v2/10000001/credentials/{id}"), &t).await.body, c.body);
    assert_eq!(s.get("/credentials/v2/10000001/credentials", &t).await.body, json!([c.body]));
    for (bad, field) in [
        (json!({"name": "x", "secrets": {"type": "aws_iam_role", "arn": "arn:aws:iam::1234:role/x"}}), "secrets.arn"),
        (
            json!({"name": "x", "secrets": {"type": "keypair", "arn": "arn:aws:iam::123412341234:role/x"}}),
            "secrets.type",
        ),
        (json!({"secrets": {"arn": "arn:aws:iam::123412341234:role/x"}}), "name"),
        (json!({"name": "x"}), "secrets"),
        (json!({"name": "x", "secrets": {"arn": "arn:aws:iam::123412341234:role/x"}, "extra": 1}), "extra"),
    ] {
        let r = s.req(Method::POST, "/credentials/v2/10000001/credentials", &t, Some(bad.clone())).await;
        assert_eq!((r.status.as_u16(), r.body["field"].as_str()), (400, Some(field)), "{bad}");
        assert!(r.body["expected"].is_string() && r.body["found"].is_string());
    }
    assert_eq!(
        s.get("/credentials/v2/10000001/credentials", &t).await.body.as_array().unwrap().len(),
        1,
        "nothing half-written"
    );
    // Another tenant: its path is refused, and our id under its path is not found.
    let (kc, other) = s.child(&t, "10000001", "other").await;
    let (tc, _) = s.login(&kc).await;
    assert_eq!(s.get(&format!("/credentials/v2/10000001/credentials/{id}"), &tc).await.status, 403);
    assert_eq!(s.get(&format!("/credentials/v2/{other}/credentials/{id}"), &tc).await.status, 404);
    // In use by a deployment → 409; after the deployment is gone → 204, then 404.
    let cred = s.credential(&t, "10000001", "123412341234").await;
    let d = s.req(Method::POST, "/deployments/v1/10000001/deployments", &t, Some(deployment_body(&cred))).await;
    let did = d.body["id"].as_str().unwrap().to_string();
    let r = s.req(Method::DELETE, &format!("/credentials/v2/10000001/credentials/{cred}"), &t, None).await;
    assert_eq!(r.status, 409);
    assert!(r.body["message"].as_str().unwrap().contains(&did));
    assert_eq!(
        s.req(Method::DELETE, &format!("/deployments/v1/10000001/deployments/{did}"), &t, None).await.status,
        204
    );
    assert_eq!(
        s.req(Method::DELETE, &format!("/credentials/v2/10000001/credentials/{cred}"), &t, None).await.status,
        204
    );
    assert_eq!(s.get(&format!("/credentials/v2/10000001/credentials/{cred}"), &t).await.status, 404);
});

both_backends!(organization_enrollments, |s: Server| async move {
    let (t, _) = s.login(&s.root).await;
    let cred = s.credential(&t, "10000001", "123412341234").await;
    let base = "/deployments/v1/10000001/organizations";
    let body = json!({"name": "acme", "credential_id": cred,
        "include": [{"unit": "ou-ab12-cd34ef56", "children": true}], "exclude_accounts": ["111122223333"],
        "template": {"mode": "automatic", "platform": {"type": "aws", "monitor": {"enabled": true, "ct_install_region": "us-east-1"}},
            "scope": {"include": [{"type": "region", "key": "/aws/us-east-1", "policy": {"id": "A8E8B104-8F45-411D-A240-A30EA5FE25B0"}}]}}});
    let c = s.req(Method::POST, base, &t, Some(body.clone())).await;
    assert_eq!(c.status, 201, "{}", c.body);
    let id = c.body["id"].as_str().unwrap().to_string();
    assert_eq!((c.body["version"].as_i64(), c.body["stack_set"].as_str()), (Some(1), Some("garrison-role")));
    assert_eq!(c.body["include"], json!([{"unit": "ou-ab12-cd34ef56", "children": true}]));
    assert_eq!(s.get(&format!("{base}/{id}"), &t).await.body, c.body);
    assert_eq!(s.get(base, &t).await.body, json!([c.body]));
    // Every bad field named; nothing written.
    for (patch, field) in [
        (json!({"credential_id": "nope"}), "credential_id"),
        (json!({"include": []}), "include"),
        (json!({"include": [{"unit": "sales"}]}), "include[0]"),
        (json!({"exclude_accounts": ["12"]}), "exclude_accounts[0]"),
        (json!({"template": {"mode": "sometimes"}}), "template.mode"),
        (json!({"template": {"platform": {"type": "aws", "id": "123412341234"}}}), "template.platform.id"),
        (json!({"template": {"credentials": []}}), "template.credentials"),
        (json!({"stack_set": "no spaces"}), "stack_set"),
        (json!({"owner": "me"}), "owner"),
    ] {
        let mut bad = body.clone();
        for (k, v) in patch.as_object().unwrap() {
            bad[k] = v.clone();
        }
        let r = s.req(Method::POST, base, &t, Some(bad)).await;
        assert_eq!(r.status, 400, "{patch}: {}", r.body);
        let fields: Vec<&str> = r.body["errors"]
            .as_array()
            .map(|e| e.iter().filter_map(|x| x["field"].as_str()).collect())
            .unwrap_or_else(|| vec![r.body["field"].as_str().unwrap_or_default()]);
        assert!(fields.contains(&field), "{patch}: {}", r.body);
    }
    assert_eq!(s.get(base, &t).await.body.as_array().unwrap().len(), 1, "nothing half-written");
    // Update: given fields replace; a stale version is refused.
    let u = s.req(Method::PUT, &format!("{base}/{id}"), &t, Some(json!({"name": "acme-2", "version": 1}))).await;
    assert_eq!(
        (u.status.as_u16(), u.body["version"].as_i64(), u.body["name"].as_str()),
        (200, Some(2), Some("acme-2"))
    );
    assert_eq!(u.body["include"], c.body["include"], "the rest stays");
    let stale = s.req(Method::PUT, &format!("{base}/{id}"), &t, Some(json!({"name": "x", "version": 1}))).await;
    assert_eq!(stale.status, 409);
    // Another tenant: refused, and our id under its own path is not found.
    let (kc, other) = s.child(&t, "10000001", "other-org").await;
    let (tc, _) = s.login(&kc).await;
    assert_eq!(s.get(&format!("{base}/{id}"), &tc).await.status, 403);
    assert_eq!(s.get(&format!("/deployments/v1/{other}/organizations/{id}"), &tc).await.status, 404);
    // Its own audit log: empty until the engine writes for it; bad paging named.
    let log = s.get(&format!("{base}/{id}/audit"), &t).await;
    assert_eq!((log.status.as_u16(), &log.body["entries"]), (200, &json!([])), "{}", log.body);
    let bad = s.get(&format!("{base}/{id}/audit?limit=0"), &t).await;
    assert_eq!((bad.status.as_u16(), bad.body["field"].as_str()), (400, Some("limit")));
    assert_eq!(s.get(&format!("{base}/nope/audit"), &t).await.status, 404);
    // Its credential cannot be deleted while it is in use.
    let r = s.req(Method::DELETE, &format!("/credentials/v2/10000001/credentials/{cred}"), &t, None).await;
    assert_eq!(r.status, 409);
    assert!(r.body["message"].as_str().unwrap().contains(&id), "{}", r.body);
    assert_eq!(s.req(Method::DELETE, &format!("{base}/{id}"), &t, None).await.status, 204);
    assert_eq!(s.get(&format!("{base}/{id}"), &t).await.status, 404);
    assert_eq!(
        s.req(Method::DELETE, &format!("/credentials/v2/10000001/credentials/{cred}"), &t, None).await.status,
        204
    );
});

both_backends!(policies_and_endpoints, |s: Server| async move {
    let (t, _) = s.login(&s.root).await;
    let p = s.get("/policies/v1/10000001/policies", &t).await;
    assert_eq!(
        p.body[1],
        json!({"id": PROFESSIONAL, "name": "Professional", "product_family": "detect", "features": [{"type": "scan"}, {"type": "config_assessment"}, {"type": "ids"}, {"type": "log"}]})
    );
    let ids: Vec<&str> = p.body.as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [ESSENTIALS, PROFESSIONAL, "EC735B49-2517-4D98-BB9D-BEBC1E75D56D"]);
    assert_eq!(s.get(&format!("/policies/v1/10000001/policies/{ESSENTIALS}"), &t).await.body["name"], "Essentials");
    assert_eq!(s.get("/policies/v1/10000001/policies/nope", &t).await.status, 404);
    let host = s.base.trim_start_matches("http://");
    let e = s.get("/endpoints/v1/10000001/residency/default/services/deployments/endpoint", &t).await;
    assert_eq!(e.body, json!({"deployments": host}));
    assert_eq!(
        s.get("/endpoints/v1/10000001/residency/mars/services/deployments/endpoint", &t).await.body["field"],
        "residency"
    );
    let m = s
        .req(Method::POST, "/endpoints/v1/10000001/residency/us/endpoints", &t, Some(json!(["themis", "credentials"])))
        .await;
    assert_eq!(m.body, json!({"themis": host, "credentials": host}));
});

both_backends!(deployments_lifecycle, |s: Server| async move {
    let (t, _) = s.login(&s.root).await;
    let user = s.get("/aims/v1/token_info", &t).await.body["entity_id"].clone();
    let cred = s.credential(&t, "10000001", "123412341234").await;
    let c = s.req(Method::POST, "/deployments/v1/10000001/deployments", &t, Some(deployment_body(&cred))).await;
    assert_eq!(c.status, 201, "{:?}", c.body);
    let id = c.body["id"].as_str().unwrap().to_string();
    let at = c.body["created"]["at"].clone();
    let expected = json!({
        "id": id, "account_id": "10000001", "name": "My Deployment",
        "platform": {"type": "aws", "id": "123412341234", "monitor": {"enabled": true, "ct_install_region": "us-east-1"}},
        "mode": "automatic", "enabled": true, "discover": true, "scan": true,
        "scope": {"include": [{"type": "region", "key": "/aws/us-east-1", "policy": {"id": PROFESSIONAL}}], "exclude": []},
        "cloud_defender": {"enabled": false},
        "credentials": [{"id": cred, "purpose": "discover"}],
        "status": {"status": "new", "updated": at},
        "created": {"at": at, "by": user}, "modified": {"at": at, "by": user},
        "version": 1, "is_control_tower": false
    });
    assert_eq!(c.body, expected);
    assert_eq!(s.get(&format!("/deployments/v1/10000001/deployments/{id}"), &t).await.body, expected);
    assert_eq!(s.get("/deployments/v1/10000001/deployments", &t).await.body, json!([expected]));

    // Update: fields given replace, others stay; version goes up.
    let u = s
        .req(
            Method::PUT,
            &format!("/deployments/v1/10000001/deployments/{id}"),
            &t,
            Some(json!({"name": "Renamed", "version": 1})),
        )
        .await;
    assert_eq!(u.status, 200, "{:?}", u.body);
    assert_eq!((u.body["name"].as_str(), u.body["version"].as_i64()), (Some("Renamed"), Some(2)));
    assert_eq!(u.body["scope"], expected["scope"]);
    // GET, edit, PUT the whole object back works.
    let mut whole = s.get(&format!("/deployments/v1/10000001/deployments/{id}"), &t).await.body;
    whole["scope"]["exclude"] = json!([{"type": "vpc", "key": "/aws/us-east-1/vpc/vpc-0123abcd"}]);
    let u = s.req(Method::PUT, &format!("/deployments/v1/10000001/deployments/{id}"), &t, Some(whole)).await;
    assert_eq!((u.status.as_u16(), u.body["version"].as_i64()), (200, Some(3)));
    // Stale version → 409 and nothing changes.
    let stale = s
        .req(
            Method::PUT,
            &format!("/deployments/v1/10000001/deployments/{id}"),
            &t,
            Some(json!({"name": "Lost", "version": 1})),
        )
        .await;
    assert_eq!(stale.status, 409);
    assert!(stale.body["message"].as_str().unwrap().contains("version 3"));
    assert_eq!(s.get(&format!("/deployments/v1/10000001/deployments/{id}"), &t).await.body["name"], "Renamed");
    // Another tenant cannot see or touch it.
    let (kc, other) = s.child(&t, "10000001", "other").await;
    let (tc, _) = s.login(&kc).await;
    assert_eq!(s.get(&format!("/deployments/v1/10000001/deployments/{id}"), &tc).await.status, 403);
    assert_eq!(s.get(&format!("/deployments/v1/{other}/deployments/{id}"), &tc).await.status, 404);
    assert_eq!(
        s.req(Method::DELETE, &format!("/deployments/v1/{other}/deployments/{id}"), &tc, None).await.status,
        404
    );
    // Delete.
    assert_eq!(
        s.req(Method::DELETE, &format!("/deployments/v1/10000001/deployments/{id}"), &t, None).await.status,
        204
    );
    assert_eq!(s.get(&format!("/deployments/v1/10000001/deployments/{id}"), &t).await.status, 404);
    assert_eq!(
        s.req(Method::PUT, &format!("/deployments/v1/10000001/deployments/{id}"), &t, Some(json!({"name": "x"})))
            .await
            .status,
        404
    );
});

both_backends!(deployment_validation, |s: Server| async move {
    let (t, _) = s.login(&s.root).await;
    let cred = s.credential(&t, "10000001", "123412341234").await;
    let foreign = s.credential(&t, "10000001", "999999999999").await;
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (Box::new(|b: &mut Value| b["credentials"] = json!({"id": "x", "purpose": "discover"})), "credentials"),
        (Box::new(|b: &mut Value| b["mode"] = json!("bogus")), "mode"),
        (Box::new(|b: &mut Value| b["name"] = json!(42)), "name"),
        (
            Box::new(|b: &mut Value| {
                b.as_object_mut().unwrap().remove("platform");
            }),
            "platform",
        ),
        (Box::new(|b: &mut Value| b["platform"]["id"] = json!(123412341234u64)), "platform.id"),
        (Box::new(|b: &mut Value| b["platform"]["type"] = json!("azure")), "platform.type"),
        (Box::new(|b: &mut Value| b["scope"]["include"][0]["type"] = json!("subnet")), "scope.include[0].type"),
        (
            Box::new(|b: &mut Value| b["scope"]["include"][0]["key"] = json!("/aws/us-east-1/vpc/nope")),
            "scope.include[0].key",
        ),
        (
            Box::new(|b: &mut Value| {
                b["scope"]["include"][0]["policy"]["id"] = json!("00000000-0000-0000-0000-000000000000")
            }),
            "scope.include[0].policy.id",
        ),
        (
            Box::new(|b: &mut Value| b["scope"]["exclude"] = json!([{"type": "deployment", "key": "/aws"}])),
            "scope.exclude[0].type",
        ),
        (Box::new(|b: &mut Value| b["credentials"][0]["id"] = json!("no-such-credential")), "credentials[0].id"),
        (Box::new(|b: &mut Value| b["credentials"][0]["purpose"] = json!("spy")), "credentials[0].purpose"),
        (Box::new(move |b: &mut Value| b["credentials"][0]["id"] = json!(foreign.clone())), "credentials[0].id"),
        (Box::new(|b: &mut Value| b["cloud_defender"] = json!({"enabled": true})), "cloud_defender.enabled"),
        (Box::new(|b: &mut Value| b["enabled"] = json!("perhaps")), "enabled"),
        (Box::new(|b: &mut Value| b["surprise"] = json!(true)), "surprise"),
    ];
    for (mutate, field) in cases {
        let mut b = deployment_body(&cred);
        mutate(&mut b);
        let r = s.req(Method::POST, "/deployments/v1/10000001/deployments", &t, Some(b.clone())).await;
        assert_eq!(r.status, 400, "{field}: {b}");
        assert_eq!(r.body["field"], field, "{:?}", r.body);
        assert!(r.body["expected"].as_str().is_some_and(|e| !e.is_empty()));
        assert!(r.body["found"].as_str().is_some());
    }
    let r = s
        .req(
            Method::POST,
            "/deployments/v1/10000001/deployments",
            &t,
            Some(json!({"credentials": {"id": "x", "purpose": "discover"}})),
        )
        .await;
    assert!(r.body["errors"].as_array().unwrap().len() >= 2, "all problems are reported at once");
    assert!(r.body["message"].as_str().unwrap().contains("wrap it in brackets"));
    assert_eq!(s.get("/deployments/v1/10000001/deployments", &t).await.body, json!([]), "nothing half-written");
});

both_backends!(hostile_bodies, |s: Server| async move {
    let (t, _) = s.login(&s.root).await;
    let r = s
        .raw(Method::POST, "/deployments/v1/10000001/deployments", Some(&t), Some(b"{\"name\": \"x\",".to_vec()))
        .await;
    assert_eq!((r.status.as_u16(), r.body["field"].as_str()), (400, Some("body")));
    assert!(r.body["found"].as_str().unwrap().contains("line 1 column"));
    let r = s.raw(Method::POST, "/deployments/v1/10000001/deployments", Some(&t), Some(Vec::new())).await;
    assert_eq!(r.status, 400);
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let r = s.raw(Method::POST, "/deployments/v1/10000001/deployments", Some(&t), Some(deep.into_bytes())).await;
    assert_eq!(r.status, 400);
    // Oversized: refused from the Content-Length alone, before the body is read. A raw
    // connection reads that answer without racing the server's close against the upload.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /deployments/v1/10000001/deployments HTTP/1.1\r\nhost: {addr}\r\nx-aims-auth-token: {t}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        2 * 1024 * 1024
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 512];
    let n = conn.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
});

both_backends!(concurrent_updates_one_wins, |s: Server| async move {
    let (t, _) = s.login(&s.root).await;
    let cred = s.credential(&t, "10000001", "123412341234").await;
    let d = s.req(Method::POST, "/deployments/v1/10000001/deployments", &t, Some(deployment_body(&cred))).await;
    let id = d.body["id"].as_str().unwrap().to_string();
    let s = std::sync::Arc::new(s);
    let mut tasks = vec![];
    for i in 0..20 {
        let (s, t, id) = (s.clone(), t.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            s.req(
                Method::PUT,
                &format!("/deployments/v1/10000001/deployments/{id}"),
                &t,
                Some(json!({"name": format!("n{i}"), "version": 1})),
            )
            .await
            .status
            .as_u16()
        }));
    }
    let mut codes = vec![];
    for task in tasks {
        codes.push(task.await.unwrap());
    }
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 409).count(), 19, "{codes:?}");
    let now = s.get(&format!("/deployments/v1/10000001/deployments/{id}"), &t).await.body;
    assert_eq!(now["version"], 2);
    // The one that succeeded is what is stored: no update lost, none applied twice.
    let winner = codes.iter().position(|c| *c == 200).unwrap();
    assert_eq!(now["name"], format!("n{winner}"));
});

#[tokio::test]
async fn openapi_matches_the_operation_table() {
    let s = harness::start(harness::Db::Sqlite).await.unwrap();
    let doc: Value = s.http.get(format!("{}/openapi.json", s.base)).send().await.unwrap().json().await.unwrap();
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.insert((method.to_uppercase(), path.clone(), op["operationId"].as_str().unwrap().to_string()));
        }
    }
    let table: std::collections::BTreeSet<_> = garrison_model::ops::OPERATIONS
        .iter()
        .map(|o| (o.method.to_string(), o.path.to_string(), o.name.to_string()))
        .collect();
    assert_eq!(documented, table);
    // Every documented operation has a live route (anything but 404/405 without a token).
    for (method, path, _) in &table {
        let concrete =
            path.split('/').map(|seg| if seg.starts_with('{') { "X" } else { seg }).collect::<Vec<_>>().join("/");
        let r = s.raw(Method::from_bytes(method.as_bytes()).unwrap(), &concrete, None, None).await;
        assert!(r.status != 404 && r.status != 405 || path.contains("templates"), "{method} {path}: {}", r.status);
    }
}

both_backends!(assets_query_shapes_and_paging, |s: Server| async move {
    let (t, _) = s.login(&s.root).await;
    let cred = s.credential(&t, "10000001", "123412341234").await;
    let mut body = deployment_body(&cred);
    body["scope"]["exclude"] = json!([{"type": "vpc", "key": "/aws/us-east-1/vpc/vpc-0000000b"}]);
    let d = s.req(Method::POST, "/deployments/v1/10000001/deployments", &t, Some(body)).await;
    let id = d.body["id"].as_str().unwrap().to_string();
    // Before discovery: no rows.
    let r = s.get(&format!("/assets_query/v1/10000001/deployments/{id}/assets?asset_types=v:vpc"), &t).await;
    assert_eq!(r.body, json!({"assets": [], "rows": 0}));
    s.state.store.put_snapshot("10000001", &id, &harness::synthetic_snapshot()).await.unwrap();

    let r = s.get(&format!("/assets_query/v1/10000001/deployments/{id}/assets?asset_types=r:region,v:vpc"), &t).await;
    assert_eq!(r.body["rows"], 2);
    let row = &r.body["assets"][0];
    assert_eq!(
        (row[0]["key"].as_str(), row[1]["key"].as_str()),
        (Some("/aws/us-east-1"), Some("/aws/us-east-1/vpc/vpc-0000000a"))
    );
    assert_eq!(row[1]["deployment_id"], id.as_str());
    assert_eq!(row[1]["account_id"], "10000001");
    assert_eq!(row[1]["type"], "vpc");
    let hosts = s
        .get(&format!("/assets_query/v1/10000001/deployments/{id}/assets?asset_types=h:host,s:subnet&scope=true"), &t)
        .await;
    assert_eq!(hosts.body["rows"], 2, "the excluded VPC's host is out of scope");
    assert_eq!(hosts.body["assets"][0][1]["key"], "/aws/us-east-1/subnet/subnet-0000000a");
    let bad = s.get(&format!("/assets_query/v1/10000001/deployments/{id}/assets?asset_types=v:vpcs"), &t).await;
    assert_eq!((bad.status.as_u16(), bad.body["field"].as_str()), (400, Some("asset_types")));
    assert_eq!(bad.body["error_type"], "invalid_asset_type");

    // Paging across the account: 3 hosts, 2 per page.
    let p1 = s.get("/assets_query/v1/10000001/assets?asset_types=h:host&page_size=2", &t).await;
    assert_eq!((p1.body["rows"].as_u64(), p1.body["total_assets"].as_u64()), (Some(2), Some(3)));
    let next = p1.body["continue"].as_str().unwrap();
    let p2 = s.get(&format!("/assets_query/v1/10000001/assets?continue={next}"), &t).await;
    assert_eq!(p2.body["rows"], 1);
    assert!(p2.body.get("continue").is_none());
    let keys: Vec<String> = [&p1, &p2]
        .iter()
        .flat_map(|p| p.body["assets"].as_array().unwrap().iter().map(|r| r[0]["key"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys.iter().collect::<std::collections::BTreeSet<_>>().len(), 3, "no row twice");
    assert_eq!(
        s.get("/assets_query/v1/10000001/assets?asset_types=host&page_size=10001", &t).await.body["field"],
        "page_size"
    );
    assert_eq!(s.get("/assets_query/v1/10000001/assets?continue=bogus", &t).await.body["field"], "continue");

    let topo = s.get(&format!("/assets_query/v1/10000001/deployments/{id}/topology"), &t).await;
    assert_eq!(topo.body["topology"]["rows"], 3);
    let first: Vec<&str> =
        topo.body["topology"]["assets"][0].as_array().unwrap().iter().map(|a| a["type"].as_str().unwrap()).collect();
    assert_eq!(first, ["region", "vpc", "subnet", "host"]);
    // Other tenants see nothing.
    let (kc, _) = s.child(&t, "10000001", "other").await;
    let (tc, _) = s.login(&kc).await;
    assert_eq!(s.get(&format!("/assets_query/v1/10000001/deployments/{id}/topology"), &tc).await.status, 403);
});

both_backends!(protection_extensions, |s: Server| async move {
    let (t, a) = s.login(&s.root).await;
    let cred = s.credential(&t, &a, "123412341234").await;
    let d = s.req(Method::POST, &format!("/deployments/v1/{a}/deployments"), &t, Some(deployment_body(&cred))).await;
    let id = d.body["id"].as_str().unwrap().to_string();
    let base = format!("/deployments/v1/{a}/deployments/{id}");
    // Not reconciled yet: no report; an empty audit log.
    let r = s.get(&format!("{base}/protection"), &t).await;
    assert_eq!(r.status, 404);
    assert!(r.body["message"].as_str().unwrap().contains("not reconciled yet"));
    let r = s.get(&format!("{base}/audit"), &t).await;
    assert_eq!((r.status.as_u16(), r.body["entries"].clone()), (200, json!([])));
    let r = s.get(&format!("{base}/audit?limit=0"), &t).await;
    assert_eq!(
        (r.status.as_u16(), r.body["field"].clone(), r.body["found"].clone()),
        (400, json!("limit"), json!("0"))
    );
    // Dead letters: none yet; the same limit rules; other tenants are refused.
    let r = s.get(&format!("{base}/dead_letters"), &t).await;
    assert_eq!((r.status.as_u16(), r.body["dead_letters"].clone()), (200, json!([])));
    let r = s.get(&format!("{base}/dead_letters?limit=100001"), &t).await;
    assert_eq!(
        (r.status.as_u16(), r.body["field"].clone(), r.body["expected"].clone()),
        (400, json!("limit"), json!("an integer from 1 to 100000"))
    );
    assert_eq!(s.get(&format!("/deployments/v1/99999999/deployments/{id}/dead_letters"), &t).await.status, 403);
    // Coverage: nothing to show before the first discovery, then every VPC of the snapshot
    // (in scope, nothing protected yet).
    let r = s.get(&format!("{base}/coverage"), &t).await;
    assert_eq!(r.status, 404);
    assert!(r.body["message"].as_str().unwrap().contains("not been discovered yet"), "{}", r.body);
    s.state.store.put_snapshot(&a, &id, &harness::synthetic_snapshot()).await.unwrap();
    let r = s.get(&format!("{base}/coverage"), &t).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let vpcs = r.body["regions"][0]["vpcs"].as_array().unwrap();
    assert_eq!(r.body["regions"][0]["region"], "us-east-1");
    assert_eq!(vpcs.len(), harness::synthetic_snapshot().regions["us-east-1"].vpcs.len());
    assert!(vpcs.iter().all(|v| v["appliances"] == json!([])), "{}", r.body);
    let total: u64 = r.body["counts"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(total as usize, vpcs.len());
    assert_eq!(s.get(&format!("/deployments/v1/99999999/deployments/{id}/coverage"), &t).await.status, 403);
    // Plan preview: the format is checked first; this server has no engine to plan with.
    let r = s.get(&format!("{base}/plan?format=yaml"), &t).await;
    assert_eq!((r.status.as_u16(), r.body["field"].clone()), (400, json!("format")));
    assert_eq!(r.body["expected"], "one of [json, cloudformation]");
    assert_eq!(s.get(&format!("{base}/plan"), &t).await.status, 503);
    assert_eq!(s.get(&format!("/deployments/v1/{a}/deployments/nope/plan"), &t).await.status, 404);
    // Nothing was built: delete is immediate, no removal queued, and the credential is free.
    assert_eq!(s.req(Method::DELETE, &base, &t, None).await.status, 204);
    assert_eq!(s.get(&base, &t).await.status, 404);
    let r = s.get(&format!("/deployments/v1/{a}/removals"), &t).await;
    assert_eq!(r.body, json!({"removals": []}));
    assert_eq!(s.req(Method::DELETE, &format!("/credentials/v2/{a}/credentials/{cred}"), &t, None).await.status, 204);
    // Another tenant sees none of it.
    assert_eq!(s.get("/deployments/v1/99999999/removals", &t).await.status, 403);
});

// Every operation of the route table × {no token, malformed token, expired token, another
// tenant's token, a child account's token on its parent}: refused with 401 or 403, and no
// answer or error carries the other tenant's data.
both_backends!(authorization_matrix, |s: Server| async move {
    let tt = harness::TwoTenants::new(&s).await;
    let (ta, tb, b) = (tt.ta.clone(), tt.tb.clone(), tt.b.clone());
    let (expired, _) = s.state.tokens.mint_until(&b, &tt.user, &tt.kb.id, 1);
    let fill = |path: &str, account: &str| tt.fill_all(path, account);
    let mut checked = 0;
    for op in garrison_model::ops::OPERATIONS.iter().filter(|o| o.needs_token) {
        let method = Method::from_bytes(op.method.as_bytes()).unwrap();
        let body = matches!(op.method, "POST" | "PUT").then(|| b"{}".to_vec());
        let scoped = op.path.contains("{account_id}");
        let mut cases: Vec<(&str, Option<String>, String, u16)> = vec![
            ("no token", None, fill(op.path, &b), 401),
            ("malformed token", Some("not-a-token".into()), fill(op.path, &b), 401),
            ("expired token", Some(expired.clone()), fill(op.path, &b), 401),
        ];
        if scoped {
            cases.push(("another tenant's token", Some(ta.clone()), fill(op.path, &b), 403));
            cases.push(("a child's token on its parent", Some(tb.clone()), fill(op.path, "10000001"), 403));
        }
        for (case, token, path, want) in cases {
            let r = s.raw(method.clone(), &path, token.as_deref(), body.clone()).await;
            assert_eq!(r.status.as_u16(), want, "{} {} {path} with {case}: {}", op.method, op.name, r.body);
            // The path itself may echo the caller's own request; nothing else may leak.
            tt.assert_no_leak(&format!("{} with {case}", op.name), &path, &r.body);
            checked += 1;
        }
    }
    assert!(checked >= 5 * 30, "the matrix covered {checked} cases");
    println!("authorization matrix: {checked} refused requests, no leak");
    // And the owner still gets its data: the refusals were about the caller, not the route.
    assert_eq!(s.get(&format!("/deployments/v1/{b}/deployments/{}", tt.dep), &tb).await.status, 200);
});

// findings v1: highest severity first, filters, `continue` paging bound to its filters, every
// bad parameter named, one finding by id; another tenant sees none of them.
both_backends!(findings_are_listed_filtered_and_paged_per_tenant, |s: Server| async move {
    use garrison_model::finding::FindingStatus;
    let tt = harness::TwoTenants::new(&s).await;
    let (b, tb) = (tt.b.clone(), tt.tb.clone());
    let store = &s.state.store;
    for (i, score) in [2.0, 5.0, 8.0, 9.5].into_iter().enumerate() {
        store.record_finding(&b, &tt.dep, harness::observation(&format!("f{i}"), score)).await.unwrap();
    }
    let mut resolved = harness::observation("f0", 2.0);
    resolved.status = FindingStatus::Resolved;
    resolved.last_seen = 9_000;
    store.record_finding(&b, &tt.dep, resolved).await.unwrap();
    let base = format!("/findings/v1/{b}/findings");
    let ids = |r: &Value| -> Vec<String> {
        r["findings"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_string()).collect()
    };
    let all = s.get(&base, &tb).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(ids(&all.body), ["gd-f3", "gd-f2", "gd-beta-finding", "gd-f1", "gd-f0"], "severity first");
    let f3 = &all.body["findings"][0];
    assert_eq!((f3["severity"].as_str(), f3["source"].as_str()), (Some("critical"), Some("guardduty")));
    assert_eq!(f3["resource"]["asset_key"], "/aws/us-east-1/host/i-0123456789abcdef0");
    let high = s.get(&format!("{base}?severity=high&status=active"), &tb).await;
    assert_eq!(ids(&high.body), ["gd-f3", "gd-f2", "gd-beta-finding"]);
    let resolved = s.get(&format!("{base}?status=resolved&deployment_id={}", tt.dep), &tb).await;
    assert_eq!(ids(&resolved.body), ["gd-f0"]);
    assert!(ids(&s.get(&format!("{base}?source=inspector2"), &tb).await.body).is_empty());
    assert_eq!(ids(&s.get(&format!("{base}?since=9000"), &tb).await.body), ["gd-f0"]);
    // Pages of two, the token carrying the filter; another filter with it is refused.
    let p1 = s.get(&format!("{base}?severity=low&page_size=2"), &tb).await;
    assert_eq!((ids(&p1.body).len(), p1.body["total"].as_u64()), (2, Some(5)));
    let token = p1.body["continue"].as_str().unwrap().to_string();
    let p2 = s.get(&format!("{base}?continue={token}"), &tb).await;
    let p3 = s.get(&format!("{base}?continue={}", p2.body["continue"].as_str().unwrap()), &tb).await;
    let mut seen = ids(&p1.body);
    seen.extend(ids(&p2.body));
    seen.extend(ids(&p3.body));
    assert_eq!(seen, ids(&all.body));
    assert!(p3.body.get("continue").is_none());
    let mixed = s.get(&format!("{base}?continue={token}&severity=critical"), &tb).await;
    assert_eq!((mixed.status.as_u16(), mixed.body["errors"][0]["field"].as_str()), (400, Some("continue")));
    // Bad parameters: each named.
    let bad = s.get(&format!("{base}?severity=severe&status=open&source=macie&since=yesterday"), &tb).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let fields: Vec<&str> =
        bad.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["severity", "status", "source", "since"]);
    assert_eq!(s.get(&format!("{base}?page_size=0"), &tb).await.status, 400);
    // One by id; unknown: 404.
    let one = s.get(&format!("{base}/gd-f2"), &tb).await;
    assert_eq!((one.status.as_u16(), one.body["severity"].as_str()), (200, Some("high")));
    assert_eq!(s.get(&format!("{base}/gd-nope"), &tb).await.status, 404);
    // Counted in /metrics by source, severity and status (series without findings at 0).
    let text = s.http.get(format!("{}/metrics", s.base)).send().await.unwrap().text().await.unwrap();
    let series = |labels: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("garrison_findings{{{labels}}}")))
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
    };
    assert_eq!(series(r#"source="guardduty",severity="critical",status="active""#).as_deref(), Some("1"), "{text}");
    assert_eq!(series(r#"source="guardduty",severity="low",status="resolved""#).as_deref(), Some("1"));
    assert_eq!(series(r#"source="inspector2",severity="high",status="active""#).as_deref(), Some("0"));
    // Alpha: its own list is empty; beta's account is not its own.
    let own = s.get(&format!("/findings/v1/{}/findings", tt.a), &tt.ta).await;
    assert_eq!((own.status.as_u16(), ids(&own.body).len()), (200, 0));
    assert_eq!(s.get(&base, &tt.ta).await.status, 403);
    assert_eq!(s.get(&format!("{base}/gd-f2"), &tt.ta).await.status, 403);
});

// Deployments and credentials of an account holding 1,000 of each (an enrolled organization's
// size, scaled down): the whole list comes as one array written as it is read (chunked, no
// Content-Length), exactly a multiple of the store's batch so the empty last batch is taken;
// pages of `limit` follow their `Link` to the same items in the same order; every bad
// parameter is a 400 naming it; a cursor works only for its own account and route.
both_backends!(long_lists_stream_whole_and_page_by_link, |s: Server| async move {
    use garrison_model::credential::NewCredential;
    use garrison_model::deployment::{Refs, parse_request};
    let tt = harness::TwoTenants::new(&s).await;
    let (a, ta, b, tb) = (tt.a.clone(), tt.ta.clone(), tt.b.clone(), tt.tb.clone());
    let store = &s.state.store;
    let policies = garrison_catalog::policies::all().into_iter().map(|p| p.id).collect();
    // 999 more of each in b (1,000 with the pair TwoTenants made), through the store: the
    // HTTP path of create is covered elsewhere, this test is about reading them back.
    for i in 0..999 {
        let arn = format!("arn:aws:iam::{:012}:role/garrison", 100_000_000_000u64 + i);
        let c = NewCredential::from_json(
            &json!({"name": format!("c{i}"), "secrets": {"type": "aws_iam_role", "arn": arn}}),
        )
        .unwrap();
        let c = store.create_credential(&b, &c, "test").await.unwrap();
        let mut body = deployment_body(&c.id);
        body["platform"]["id"] = json!(format!("{:012}", 100_000_000_000u64 + i));
        let creds = [(c.id.clone(), format!("{:012}", 100_000_000_000u64 + i))].into();
        let req = parse_request(&body, None, &Refs { policies: &policies, credentials: &creds }).unwrap();
        store.create_deployment(&b, req.spec, "test").await.unwrap();
    }
    for (path, key) in
        [(format!("/deployments/v1/{b}/deployments"), "id"), (format!("/credentials/v2/{b}/credentials"), "id")]
    {
        let raw = s.http.get(format!("{}{path}", s.base)).header("x-aims-auth-token", &tb).send().await.unwrap();
        assert_eq!((raw.status().as_u16(), raw.content_length()), (200, None), "{path}: written as read, not buffered");
        assert!(raw.headers().get("link").is_none(), "the whole list names no next page");
        let whole: Vec<Value> = raw.json().await.unwrap();
        let ids = |v: &[Value]| -> Vec<String> { v.iter().map(|d| d[key].as_str().unwrap().to_string()).collect() };
        let whole_ids = ids(&whole);
        assert_eq!(whole_ids.len(), 1000, "{path}");
        assert_eq!(whole_ids.iter().collect::<std::collections::HashSet<_>>().len(), 1000, "{path}: no item twice");
        if path.contains("deployments") {
            assert!(whole_ids.windows(2).all(|w| w[0] < w[1]), "deployments in id order, as before");
            assert_eq!(whole[0], s.get(&format!("{path}/{}", whole_ids[0]), &tb).await.body, "the same item as get");
            // Sent as the store holds them (not through a serializer): still JSON, and said to be.
            for url in [format!("{path}/{}", whole_ids[0]), format!("{path}?limit=2")] {
                let r = s.http.get(format!("{}{url}", s.base)).header("x-aims-auth-token", &tb).send().await.unwrap();
                assert_eq!(r.headers()["content-type"], "application/json", "{url}");
            }
        } else {
            let at: Vec<i64> = whole.iter().map(|c| c["created"]["at"].as_i64().unwrap()).collect();
            assert!(at.windows(2).all(|w| w[0] <= w[1]), "credentials oldest first, as before");
        }
        // Pages of 333: 333, 333, 333, 1, each naming the next until the last.
        let mut paged = vec![];
        let mut next = Some(format!("{path}?limit=333"));
        let mut pages = 0;
        while let Some(p) = next {
            let r = s.get(&p, &tb).await;
            assert_eq!(r.status, 200, "{p}: {}", r.body);
            paged.extend(ids(r.body.as_array().unwrap()));
            if let Some(n) = &r.next {
                assert!(n.starts_with(&format!("{path}?continue=")), "{n}");
            }
            next = r.next;
            pages += 1;
        }
        assert_eq!((pages, &paged), (4, &whole_ids), "{path}: the pages hold the whole list, in order");
        // A page past the end of an exact multiple names no next page.
        let first = s.get(&format!("{path}?limit=1000"), &tb).await;
        assert_eq!((first.body.as_array().unwrap().len(), first.next.is_none()), (1000, true), "{path}");
        // Bad parameters, each named.
        for (q, field) in
            [("limit=0", "limit"), ("limit=1001", "limit"), ("limit=-1", "limit"), ("continue=bogus", "continue")]
        {
            let r = s.get(&format!("{path}?{q}"), &tb).await;
            assert_eq!(r.status, 400, "{path}?{q}: {}", r.body);
            assert_eq!(
                r.body["errors"][0]["field"].as_str().or(r.body["field"].as_str()),
                Some(field),
                "{q}: {}",
                r.body
            );
        }
        let r = s.get(&format!("{path}?limit=abc"), &tb).await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.to_string().contains("limit"), "{}", r.body);
        let token = s.get(&format!("{path}?limit=10"), &tb).await.next.unwrap();
        let token = token.split_once("continue=").unwrap().1.to_string();
        let r = s.get(&format!("{path}?continue={token}&limit=20"), &tb).await;
        assert_eq!((r.status.as_u16(), r.body["errors"][0]["field"].as_str()), (400, Some("limit")), "{}", r.body);
        let r = s.get(&format!("{path}?continue={token}&limit=10"), &tb).await;
        assert_eq!((r.status.as_u16(), r.body.as_array().map(Vec::len)), (200, Some(10)));
        // Borrowed: another account's list, or the other route.
        let other = path.replace(&b, &a);
        let r = s.get(&format!("{other}?continue={token}"), &ta).await;
        assert_eq!((r.status.as_u16(), r.body["errors"][0]["field"].as_str()), (400, Some("continue")), "{}", r.body);
        let swapped = if path.contains("deployments") {
            format!("/credentials/v2/{b}/credentials")
        } else {
            format!("/deployments/v1/{b}/deployments")
        };
        let r = s.get(&format!("{swapped}?continue={token}"), &tb).await;
        assert_eq!((r.status.as_u16(), r.body["errors"][0]["field"].as_str()), (400, Some("continue")), "{}", r.body);
        // The other tenant sees none of them, whole or paged.
        let mine = s.get(&other, &ta).await;
        assert!(
            mine.body.as_array().unwrap().iter().all(|d| !whole_ids.contains(&d[key].as_str().unwrap().to_string()))
        );
    }
    // Validation looks up only the credentials a body names: b's credential named in a is
    // not one of a's.
    let r =
        s.req(Method::POST, &format!("/deployments/v1/{a}/deployments"), &ta, Some(deployment_body(&tt.cred))).await;
    assert_eq!(
        (r.status.as_u16(), r.body["errors"][0]["field"].as_str()),
        (400, Some("credentials[0].id")),
        "{}",
        r.body
    );
});
