//! aims roles and permissions, on SQLite and PostgreSQL: the role dimension of the
//! authorization matrix (every operation × every global role, an account role and no role, in
//! the caller's own account and in one it manages: allowed or 403, as the operation table's
//! permission and the role's entries say), and the role routes themselves.

mod harness;

use garrison_model::account::{
    ADMINISTRATOR_ROLE_ID, GlobalRole, OWNER_ROLE_ID, POWER_USER_ROLE_ID, READ_ONLY_ROLE_ID, SUPPORT_ROLE_ID,
};
use garrison_model::ops::{By, OPERATIONS};
use garrison_model::permission::{Permissions, Scope};
use harness::Server;
use reqwest::Method;
use serde_json::{Value, json};

/// An account role of the matrix: deployments in full, reads of its own account.
fn deployer() -> Value {
    json!({"deployments:own:*:deployment": "allowed", "*:own:get:*": "allowed", "*:own:list:*": "allowed",
           "deployments:own:delete:*": "denied"})
}

both_backends!(role_matrix, |s: Server| async move {
    let tt = harness::TwoTenants::new(&s).await;
    let (b, tb) = (tt.b.clone(), tt.tb.clone());
    // Beta manages gamma; beta's target user is one no caller of the matrix is.
    let (kg, gamma) = s.child(&tb, &b, "gamma").await;
    let (tg, _) = s.login(&kg).await;
    let gamma_user = s.get("/aims/v1/token_info", &tg).await.body["user"]["id"].as_str().unwrap().to_string();
    let (target, _) = s.user(&tb, &b, "target", None).await;
    let r = s
        .req(
            Method::POST,
            &format!("/aims/v1/{b}/roles"),
            &tb,
            Some(json!({"name": "Deployer", "permissions": deployer()})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let deployer_id = r.body["id"].as_str().unwrap().to_string();
    // One caller per role, and one whose role was revoked.
    let mut callers: Vec<(String, String, String, harness::Key, Permissions)> = vec![];
    for g in GlobalRole::ALL {
        let (uid, key) = s.user(&tb, &b, &g.name().replace(' ', "-").to_lowercase(), Some(g.id())).await;
        callers.push((g.name().to_string(), s.login(&key).await.0, uid, key, g.permissions()));
    }
    let (uid, key) = s.user(&tb, &b, "deployer", Some(&deployer_id)).await;
    callers.push(("Deployer".into(), s.login(&key).await.0, uid, key, Permissions::parse(&deployer(), "p").unwrap()));
    let (uid, key) = s.user(&tb, &b, "nobody", Some(READ_ONLY_ROLE_ID)).await;
    let r = s.req(Method::DELETE, &format!("/aims/v1/{b}/users/{uid}/roles/{READ_ONLY_ROLE_ID}"), &tb, None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    callers.push(("no role".into(), s.login(&key).await.0, uid, key, Permissions::none()));

    let fill = |path: &str, account: &str, user: &str| {
        tt.fill_all(path, account).replace(&tt.user, user).replace("{role_id}", &deployer_id)
    };
    let (mut allowed, mut refused) = (0, 0);
    for (name, token, uid, key, perms) in &callers {
        for op in OPERATIONS.iter().filter(|o| o.needs_token) {
            let method = Method::from_bytes(op.method.as_bytes()).unwrap();
            let body = matches!(op.method, "POST" | "PUT").then(|| b"{}".to_vec());
            let mut places = vec![(Scope::Own, fill(op.path, &b, &target))];
            if op.path.contains("{account_id}") {
                places.push((Scope::Managed, fill(op.path, &gamma, &gamma_user)));
            }
            for (scope, path) in places {
                let want = perms.allows_op(op, scope);
                let r = s.raw(method.clone(), &path, Some(token), body.clone()).await;
                let what = format!("{name} {} {} ({}) {path}: {}", op.method, op.name, scope.as_str(), r.body);
                if want {
                    assert_ne!(r.status, 403, "allowed by the table, refused: {what}");
                    allowed += 1;
                } else {
                    assert_eq!(r.status, 403, "refused by the table, allowed: {what}");
                    let message = r.body["message"].as_str().unwrap();
                    let needed = garrison_model::permission::needed(op, scope).to_string();
                    assert!(message.contains(&needed), "the refusal names {needed}: {what}");
                    refused += 1;
                }
            }
            // Every caller keeps its own user: itself, its keys, its roles and permissions.
            if op.need.by == By::RoleOrOwnUser && op.method == "GET" {
                let path = fill(op.path, &b, uid).replace(&tt.kb.id, &key.id);
                let r = s.raw(method.clone(), &path, Some(token), None).await;
                assert_eq!(r.status, 200, "{name} on its own user: {} {path}: {}", op.name, r.body);
            }
        }
    }
    println!("role matrix: {allowed} allowed, {refused} refused");
    assert!(allowed > 300 && refused > 300, "{allowed} allowed, {refused} refused");
    // The table's own expectations hold where the console documents them.
    let ro = &callers.iter().find(|c| c.0 == "Read Only").unwrap().1;
    let r = s.req(Method::PUT, &format!("/deployments/v1/{b}/deployments/{}", tt.dep), ro, Some(json!({}))).await;
    assert_eq!(r.status, 403);
    assert!(r.body["message"].as_str().unwrap().contains("deployments:own:update:deployment"), "{}", r.body);
});

both_backends!(roles_are_listed_granted_and_revoked, |s: Server| async move {
    let (root, a) = s.login(&s.root).await;
    let root_uid = s.get("/aims/v1/token_info", &root).await.body["user"]["id"].as_str().unwrap().to_string();
    // Global roles: the reference's three with its ids and permissions, and the console's three.
    let g = s.get("/aims/v1/roles", &root).await;
    assert_eq!(g.status, 200);
    let names: Vec<&str> = g.body["roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Administrator", "Owner", "Power User", "User", "Read Only", "Support"]);
    let pu = s.get(&format!("/aims/v1/roles/{POWER_USER_ROLE_ID}"), &root).await;
    assert_eq!(
        pu.body["permissions"],
        json!({"*:own:*:*": "allowed", "aims:own:revoke:*": "denied", "aims:own:grant:*": "denied",
               "aims:own:delete:*": "denied", "aims:own:update:*": "denied", "aims:own:create:*": "denied",
               "*:managed:list:*": "allowed", "*:managed:get:*": "allowed"})
    );
    assert_eq!((pu.body["account_id"].as_str(), pu.body["global"].as_bool()), (Some("*"), Some(true)));
    assert_eq!(s.get("/aims/v1/roles/NOPE", &root).await.status, 404);

    // An account role: bad permissions are each named; a name is unique; global roles are fixed.
    let roles = format!("/aims/v1/{a}/roles");
    let r = s
        .req(
            Method::POST,
            &roles,
            &root,
            Some(json!({"name": "x", "permissions": {"deployments:own:fly:*": "allowed", "*:own:get:*": "maybe"}})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let fields: Vec<&str> = r.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields.len(), 2, "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("action: * or one of [list, get, create"), "{}", r.body);
    let r = s
        .req(
            Method::POST,
            &roles,
            &root,
            Some(json!({"name": "Auditor", "permissions": {"*:own:get:*": "allowed", "*:own:list:*": "allowed"}})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let auditor = r.body["id"].as_str().unwrap().to_string();
    assert_eq!((r.body["version"].as_i64(), r.body["account_id"].as_str()), (Some(1), Some(a.as_str())));
    let r = s
        .req(Method::POST, &roles, &root, Some(json!({"name": "Auditor", "permissions": {"*:own:get:*": "allowed"}})))
        .await;
    assert_eq!(r.status, 409);
    let r = s
        .req(Method::POST, &roles, &root, Some(json!({"name": "read only", "permissions": {"*:own:get:*": "allowed"}})))
        .await;
    assert_eq!(r.status, 409, "a global role's name: {}", r.body);
    let r = s.req(Method::POST, &format!("{roles}/{READ_ONLY_ROLE_ID}"), &root, Some(json!({"name": "Mine"}))).await;
    assert_eq!(r.status, 403);
    assert_eq!(s.req(Method::DELETE, &format!("{roles}/{ADMINISTRATOR_ROLE_ID}"), &root, None).await.status, 403);
    let listed = s.get(&roles, &root).await;
    assert_eq!(listed.body["roles"].as_array().unwrap().len(), 7);

    // Granted: it replaces the role held; the user's token follows at once.
    let (bob, bob_key) = s.user(&root, &a, "bob", None).await;
    let (tb, _) = s.login(&bob_key).await;
    let deployments = format!("/deployments/v1/{a}/deployments");
    let cred_body =
        json!({"name": "r", "secrets": {"type": "aws_iam_role", "arn": "arn:aws:iam::123412341234:role/x"}});
    assert!(
        s.req(Method::POST, &format!("/credentials/v2/{a}/credentials"), &tb, Some(cred_body.clone()))
            .await
            .status
            .is_success()
    );
    let grant = format!("/aims/v1/{a}/users/{bob}/roles/{auditor}");
    assert_eq!(s.req(Method::PUT, &grant, &root, None).await.status, 204);
    let ids = s.get(&format!("/aims/v1/{a}/users/{bob}/role_ids"), &tb).await;
    assert_eq!(ids.body, json!({"role_ids": [auditor]}), "bob reads his own roles");
    let assigned = s.get(&format!("/aims/v1/{a}/users/{bob}/roles"), &root).await;
    assert_eq!(assigned.body["roles"][0]["name"], "Auditor");
    let perms = s.get(&format!("/aims/v1/{a}/users/{bob}/permissions"), &tb).await;
    assert_eq!(perms.body, json!({"permissions": [{"*:own:get:*": "allowed"}, {"*:own:list:*": "allowed"}]}));
    assert_eq!(s.get(&deployments, &tb).await.status, 200);
    let r = s.req(Method::POST, &format!("/credentials/v2/{a}/credentials"), &tb, Some(cred_body.clone())).await;
    assert_eq!(r.status, 403, "the grant replaced Power User: {}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains(&format!("role {auditor}")), "{}", r.body);
    assert_eq!(s.get("/aims/v1/token_info", &tb).await.body["roles"][0]["id"], auditor.as_str());
    // A role changed reaches its holders: the auditor loses list.
    let r = s
        .req(
            Method::POST,
            &format!("{roles}/{auditor}"),
            &root,
            Some(json!({"permissions": {"*:own:get:*": "allowed"}})),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.body["version"].as_i64()), (200, Some(2)), "{}", r.body);
    assert_eq!(s.get(&deployments, &tb).await.status, 403);
    // A held role cannot be deleted.
    let r = s.req(Method::DELETE, &format!("{roles}/{auditor}"), &root, None).await;
    assert_eq!(r.status, 409, "{}", r.body);

    // Nobody grants or revokes their own role, nor what they do not hold.
    let r = s.req(Method::PUT, &format!("/aims/v1/{a}/users/{root_uid}/roles/{READ_ONLY_ROLE_ID}"), &root, None).await;
    assert_eq!((r.status.as_u16(), r.body["error_type"].as_str()), (400, Some("self_grant_error")));
    let r = s
        .req(Method::DELETE, &format!("/aims/v1/{a}/users/{root_uid}/roles/{ADMINISTRATOR_ROLE_ID}"), &root, None)
        .await;
    assert_eq!((r.status.as_u16(), r.body["error_type"].as_str()), (400, Some("self_revoke_error")));
    let r = s.req(Method::PUT, &format!("/aims/v1/{a}/users/{bob}/roles/NOT-A-ROLE"), &root, None).await;
    assert_eq!(
        (r.status.as_u16(), r.body["error_type"].as_str(), r.body["field"].as_str()),
        (400, Some("invalid_role_id"), Some("role_id"))
    );
    // An Owner manages its account but not its users; in a managed account it may make an
    // Owner, never an Administrator (it could not do all an Administrator does there).
    let (_, owner_key) = s.user(&root, &a, "olivia", Some(OWNER_ROLE_ID)).await;
    let (to, _) = s.login(&owner_key).await;
    let r = s.req(Method::PUT, &format!("/aims/v1/{a}/users/{bob}/roles/{READ_ONLY_ROLE_ID}"), &to, None).await;
    assert_eq!(r.status, 403);
    assert!(r.body["message"].as_str().unwrap().contains("aims:own:grant:role"), "{}", r.body);
    let (kc, child) = s.child(&root, &a, "kid").await;
    let (tk, _) = s.login(&kc).await;
    let kid = s.get("/aims/v1/token_info", &tk).await.body["user"]["id"].as_str().unwrap().to_string();
    let (kid2, _) = s.user(&root, &child, "kid2", None).await;
    assert_eq!(
        s.req(Method::PUT, &format!("/aims/v1/{child}/users/{kid2}/roles/{OWNER_ROLE_ID}"), &to, None).await.status,
        204
    );
    let r =
        s.req(Method::PUT, &format!("/aims/v1/{child}/users/{kid2}/roles/{ADMINISTRATOR_ROLE_ID}"), &to, None).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("would allow what this user may not do itself"), "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("aims:own:create:user"), "{}", r.body);
    // A role defined only with more than the creator holds is refused too.
    let r = s
        .req(
            Method::POST,
            &format!("/aims/v1/{child}/roles"),
            &to,
            Some(json!({"name": "Big", "permissions": {"*:own:*:*": "allowed"}})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);

    // The managed account inherits nothing: the parent's role is not the child's.
    let r = s.req(Method::PUT, &format!("/aims/v1/{child}/users/{kid2}/roles/{auditor}"), &root, None).await;
    assert_eq!((r.status.as_u16(), r.body["error_type"].as_str()), (400, Some("invalid_role_id")), "{}", r.body);
    assert_eq!(s.get(&format!("/aims/v1/{child}/roles/{auditor}"), &root).await.status, 404);
    assert_eq!(s.get(&format!("/aims/v1/{child}/roles"), &tk).await.body["roles"].as_array().unwrap().len(), 6);
    assert_eq!(s.get(&format!("/aims/v1/{a}/roles"), &tk).await.status, 403, "a child never reads its parent");
    // The child's Administrator (its first user) acts in the child only.
    assert_eq!(s.get(&format!("/aims/v1/{child}/users/{kid}/permissions"), &tk).await.status, 200);

    // Revoked: the user keeps its own user and nothing else; the last Administrator stays.
    let (sue, sue_key) = s.user(&root, &a, "sue", Some(SUPPORT_ROLE_ID)).await;
    let (ts, _) = s.login(&sue_key).await;
    assert_eq!(
        s.get(&format!("/deployments/v1/{child}/deployments"), &ts).await.status,
        200,
        "Support reads managed accounts"
    );
    assert_eq!(
        s.req(Method::DELETE, &format!("/aims/v1/{a}/users/{sue}/roles/{READ_ONLY_ROLE_ID}"), &root, None).await.status,
        404
    );
    assert_eq!(
        s.req(Method::DELETE, &format!("/aims/v1/{a}/users/{sue}/roles/{SUPPORT_ROLE_ID}"), &root, None).await.status,
        204
    );
    assert_eq!(s.get(&deployments, &ts).await.status, 403);
    assert_eq!(s.get(&format!("/aims/v1/{a}/users/{sue}/role_ids"), &ts).await.body, json!({"role_ids": []}));
    assert_eq!(s.req(Method::POST, &format!("/aims/v1/{a}/users/{sue}/access_keys"), &ts, None).await.status, 201);
    let (carol, carol_key) = s.user(&root, &a, "carol", Some(ADMINISTRATOR_ROLE_ID)).await;
    let (tc, _) = s.login(&carol_key).await;
    assert_eq!(
        s.req(Method::DELETE, &format!("/aims/v1/{a}/users/{root_uid}/roles/{ADMINISTRATOR_ROLE_ID}"), &tc, None)
            .await
            .status,
        204
    );
    let r =
        s.req(Method::DELETE, &format!("/aims/v1/{a}/users/{carol}/roles/{ADMINISTRATOR_ROLE_ID}"), &tc, None).await;
    assert_eq!(r.status, 400, "self revoke");
    let r = s.req(Method::PUT, &format!("/aims/v1/{a}/users/{carol}/roles/{READ_ONLY_ROLE_ID}"), &root, None).await;
    assert_eq!(r.status, 403, "root, no longer Administrator, grants nothing: {}", r.body);
    assert_eq!(
        s.req(Method::PUT, &format!("/aims/v1/{a}/users/{root_uid}/roles/{ADMINISTRATOR_ROLE_ID}"), &tc, None)
            .await
            .status,
        204
    );
    // Only now is a role with no holders deletable.
    assert_eq!(s.req(Method::PUT, &grant.replace(&auditor, READ_ONLY_ROLE_ID), &root, None).await.status, 204);
    assert_eq!(s.req(Method::DELETE, &format!("{roles}/{auditor}"), &root, None).await.status, 204);
    assert_eq!(s.get(&format!("{roles}/{auditor}"), &root).await.status, 404);
    // A notifications-only user holds no role; it cannot also be given one.
    let users = format!("/aims/v1/{a}/users");
    let r = s
        .req(
            Method::POST,
            &users,
            &root,
            Some(json!({"name": "n", "email": "n@example.com", "notifications_only": true})),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.body["role_ids"].clone()), (201, json!([])), "{}", r.body);
    let r = s
        .req(Method::POST, &users, &root, Some(json!({"name": "m", "email": "m@example.com", "notifications_only": true, "role_id": READ_ONLY_ROLE_ID})))
        .await;
    assert_eq!((r.status.as_u16(), r.body["field"].as_str()), (400, Some("role_id")));
});
