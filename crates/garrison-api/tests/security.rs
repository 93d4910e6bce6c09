//! Security hardening, probed as an attacker and a careless operator would: who may act for
//! whom, revocation, foreign ids under one's own account, paging cursors, hostile clients and
//! the framework's own error answers. On SQLite and PostgreSQL.

mod harness;

use garrison_model::account::{ADMINISTRATOR_ROLE_ID, READ_ONLY_ROLE_ID};
use harness::{Server, deployment_body};
use reqwest::Method;
use serde_json::{Value, json};

both_backends!(only_administrators_act_for_others, |s: Server| async move {
    let (root, a) = s.login(&s.root).await;
    let root_uid = s.get("/aims/v1/token_info", &root).await.body["user"]["id"].as_str().unwrap().to_string();
    // A plain user (Power User by default) of the root's own account.
    let (bob, bob_key) = s.user(&root, &a, "bob", None).await;
    let (tb, _) = s.login(&bob_key).await;
    let info = s.get("/aims/v1/token_info", &tb).await.body;
    assert_eq!(info["roles"][0]["name"], "Power User");
    // Bob cannot touch the root user's keys, nor sign in as root through a key he made. The
    // reference's Power User reads its account (key ids and labels: never a secret) and every
    // aims write is refused, naming the permission it needs and his role.
    let root_keys = format!("/aims/v1/{a}/users/{root_uid}/access_keys");
    let listed = s.get(&format!("{root_keys}?out=full"), &tb).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(listed.body["access_keys"].as_array().unwrap().iter().all(|k| k.get("secret_key").is_none()));
    for (method, path, permission) in [
        (Method::POST, root_keys.clone(), "aims:own:create:access_key"),
        (Method::DELETE, format!("{root_keys}/{}", s.root.id), "aims:own:delete:access_key"),
        (Method::POST, format!("/aims/v1/{a}/users"), "aims:own:create:user"),
        (Method::POST, format!("/aims/v1/{a}/managed_accounts"), "aims:own:create:account"),
        (Method::POST, format!("/aims/v1/{a}/users/{root_uid}"), "aims:own:update:user"),
        (Method::DELETE, format!("/aims/v1/{a}/users/{root_uid}"), "aims:own:delete:user"),
        (Method::PUT, format!("/aims/v1/{a}/users/{root_uid}/roles/{READ_ONLY_ROLE_ID}"), "aims:own:grant:role"),
    ] {
        let body = (method == Method::POST).then(|| json!({"name": "x", "email": "x@example.com"}));
        let r = s.req(method.clone(), &path, &tb, body).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
        let message = r.body["message"].as_str().unwrap();
        assert!(message.contains(permission) && message.contains("Power User"), "{}", r.body);
    }
    assert_eq!(s.sign_in_status(&s.root).await, 200, "root's key is untouched");
    // His own keys he manages.
    let mine = format!("/aims/v1/{a}/users/{bob}/access_keys");
    let k2 = s.req(Method::POST, &mine, &tb, None).await;
    assert_eq!(k2.status, 201, "{}", k2.body);
    let k2id = k2.body["access_key_id"].as_str().unwrap().to_string();
    assert_eq!(s.get(&mine, &tb).await.body["access_keys"].as_array().unwrap().len(), 2);
    assert_eq!(s.req(Method::DELETE, &format!("{mine}/{k2id}"), &tb, None).await.status, 204);
    // He may rename himself, not enable or disable himself.
    let r = s.req(Method::POST, &format!("/aims/v1/{a}/users/{bob}"), &tb, Some(json!({"name": "Robert"}))).await;
    assert_eq!((r.status.as_u16(), r.body["name"].as_str()), (200, Some("Robert")));
    let r = s.req(Method::POST, &format!("/aims/v1/{a}/users/{bob}"), &tb, Some(json!({"active": true}))).await;
    assert_eq!(r.status, 403);

    // role_id is honoured: a bad one is named; Read Only reads and nothing else.
    let r = s
        .req(
            Method::POST,
            &format!("/aims/v1/{a}/users"),
            &root,
            Some(json!({"name": "x", "email": "x@example.com", "role_id": "NOT-A-ROLE"})),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.body["field"].as_str()), (400, Some("role_id")));
    assert!(r.body["expected"].as_str().unwrap().contains(ADMINISTRATOR_ROLE_ID));
    let (_, ro_key) = s.user(&root, &a, "reader", Some(READ_ONLY_ROLE_ID)).await;
    let (tr, _) = s.login(&ro_key).await;
    assert_eq!(s.get(&format!("/deployments/v1/{a}/deployments"), &tr).await.status, 200);
    let r = s
        .req(
            Method::POST,
            &format!("/credentials/v2/{a}/credentials"),
            &tr,
            Some(json!({"name": "r", "secrets": {"type": "aws_iam_role", "arn": "arn:aws:iam::123412341234:role/x"}})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("credentials:own:create:credential"), "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("Read Only"));

    // A second Administrator may manage bob; the last Administrator cannot be removed.
    let (carol, carol_key) = s.user(&root, &a, "carol", Some(ADMINISTRATOR_ROLE_ID)).await;
    let (tc, _) = s.login(&carol_key).await;
    assert_eq!(s.get(&mine, &tc).await.status, 200);
    let r = s.req(Method::DELETE, &format!("/aims/v1/{a}/users/{carol}"), &tc, None).await;
    assert_eq!((r.status.as_u16(), r.body["field"].as_str()), (400, Some("user_id")), "no self-delete");
    assert_eq!(s.req(Method::DELETE, &format!("/aims/v1/{a}/users/{carol}"), &root, None).await.status, 204);
    assert_eq!(s.get("/aims/v1/token_info", &tc).await.status, 401, "a deleted user's token ends at once");
    assert_eq!(s.sign_in_status(&carol_key).await, 401);
    let r = s.req(Method::POST, &format!("/aims/v1/{a}/users/{root_uid}"), &root, Some(json!({"active": false}))).await;
    assert_eq!(r.status, 403, "nobody disables themselves: {}", r.body);

    // Disabling bob ends his token at once and his sign-in; enabling lets him back.
    let r = s.req(Method::POST, &format!("/aims/v1/{a}/users/{bob}"), &root, Some(json!({"active": false}))).await;
    assert_eq!((r.status.as_u16(), r.body["active"].as_bool()), (200, Some(false)));
    let r = s.get(&format!("/deployments/v1/{a}/deployments"), &tb).await;
    assert_eq!(r.status, 401);
    assert!(r.body["message"].as_str().unwrap().contains("deleted or its user disabled"));
    assert_eq!(s.sign_in_status(&bob_key).await, 401);
    let r = s.req(Method::POST, &format!("/aims/v1/{a}/users/{bob}"), &root, Some(json!({"active": true}))).await;
    assert_eq!(r.status, 200);
    assert_eq!(s.sign_in_status(&bob_key).await, 200);
    // An update that changes nothing keeps the version.
    let before = s.get(&format!("/aims/v1/{a}/users/{bob}"), &root).await.body["version"].clone();
    s.req(Method::POST, &format!("/aims/v1/{a}/users/{bob}"), &root, Some(json!({"name": "Robert"}))).await;
    assert_eq!(s.get(&format!("/aims/v1/{a}/users/{bob}"), &root).await.body["version"], before);

    // A managed account's users are managed by its parent's Administrators, not its Power Users.
    let (kc, child) = s.child(&root, &a, "kid").await;
    let (tk, _) = s.login(&kc).await;
    let kid_uid = s.get("/aims/v1/token_info", &tk).await.body["user"]["id"].as_str().unwrap().to_string();
    assert_eq!(s.get(&format!("/aims/v1/{child}/users/{kid_uid}/access_keys"), &root).await.status, 200);
    // Bob (Power User) reads the managed account, writes nothing there.
    assert_eq!(s.get(&format!("/aims/v1/{child}/users/{kid_uid}/access_keys"), &tb).await.status, 200);
    let r = s.req(Method::POST, &format!("/aims/v1/{child}/users/{kid_uid}/access_keys"), &tb, None).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("aims:managed:create:access_key"), "{}", r.body);
    // An email is unique within an account, and says nothing about other accounts.
    let r = s
        .req(
            Method::POST,
            &format!("/aims/v1/{child}/users"),
            &root,
            Some(json!({"name": "b", "email": "bob@example.com"})),
        )
        .await;
    assert_eq!(r.status, 201, "another account's email is no conflict: {}", r.body);
});

both_backends!(revocation_reaches_every_process, |s: Server| async move {
    let (root, a) = s.login(&s.root).await;
    let other = harness::twin(&s).await;
    let (uid, key) = s.user(&root, &a, "dave", None).await;
    let (t, _) = s.login(&key).await;
    let list = format!("/deployments/v1/{a}/deployments");
    // Both processes accept the token (and remember that).
    assert_eq!(s.get(&list, &t).await.status, 200);
    assert_eq!(s.raw_at(&other, Method::GET, &list, Some(&t), None).await.status, 200);
    // The key is deleted through the first process: the token ends there at once, and on
    // the other process within the revocation period.
    let del = s.req(Method::DELETE, &format!("/aims/v1/{a}/users/{uid}/access_keys/{}", key.id), &root, None).await;
    assert_eq!(del.status, 204);
    let at = std::time::Instant::now();
    assert_eq!(s.get(&list, &t).await.status, 401);
    // A revoked token cannot mint keys either.
    let r = s.req(Method::POST, &format!("/aims/v1/{a}/users/{uid}/access_keys"), &t, None).await;
    assert_eq!(r.status, 401);
    loop {
        let r = s.raw_at(&other, Method::GET, &list, Some(&t), None).await;
        if r.status == 401 {
            break;
        }
        assert!(at.elapsed() < std::time::Duration::from_secs(5), "the other process still accepts the token");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let took = at.elapsed();
    // Within the revocation period, plus request time on a loaded machine.
    assert!(took <= garrison_api::auth::REVOCATION_TTL + std::time::Duration::from_millis(1500), "{took:?}");
    println!("revoked on the other process after {took:?}");
});

// Every route with an object id, called by tenant A under its own account with tenant B's
// ids: 404 (or a 400 that names only what A sent), never B's data, never a 409 about B's
// objects; and A's requests that refer to B's objects in bodies are refused the same way.
both_backends!(foreign_ids_under_my_account, |s: Server| async move {
    let tt = harness::TwoTenants::new(&s).await;
    let (a, ta, b, tb) = (tt.a.clone(), tt.ta.clone(), tt.b.clone(), tt.tb.clone());
    let (cred, dep, user) = (tt.cred.clone(), tt.dep.clone(), tt.user.clone());
    let mut checked = 0;
    for op in garrison_model::ops::OPERATIONS.iter().filter(|o| o.path.contains("{account_id}")) {
        let ids = [
            "{deployment_id}",
            "{credential_id}",
            "{user_id}",
            "{access_key_id}",
            "{finding_id}",
            "{id}",
            "{subscription_id}",
            "{option_id}",
        ];
        if !ids.iter().any(|i| op.path.contains(i)) {
            continue;
        }
        let path = tt.fill(op.path, &a);
        // Required query parameters given, so that the id is what is judged.
        let path = if op.name == "query_deployment_assets" { format!("{path}?asset_types=host") } else { path };
        let method = Method::from_bytes(op.method.as_bytes()).unwrap();
        let body = matches!(op.method, "POST" | "PUT").then(|| b"{\"name\": \"x\"}".to_vec());
        let r = s.raw(method, &path, Some(&ta), body).await;
        assert_eq!(r.status, 404, "{} {path}: {}", op.name, r.body);
        tt.assert_no_leak(op.name, &path, &r.body);
        checked += 1;
    }
    assert!(checked >= 25, "covered {checked} routes");
    // The in-use credential of B, deleted from A's account: 404, not B's 409 and deployment id.
    let r = s.req(Method::DELETE, &format!("/credentials/v2/{a}/credentials/{cred}"), &ta, None).await;
    assert_eq!(r.status, 404);
    assert!(!r.body.to_string().contains(&dep));
    // B's credential named in A's deployment: a 400 about the credential A sent, no more.
    let r = s.req(Method::POST, &format!("/deployments/v1/{a}/deployments"), &ta, Some(deployment_body(&cred))).await;
    assert_eq!(r.status, 400, "{}", r.body);
    for secret in [&b, &dep, &user] {
        assert!(!r.body.to_string().contains(secret.as_str()), "{}", r.body);
    }
    // The owner still sees its objects.
    assert_eq!(s.get(&format!("/deployments/v1/{b}/deployments/{dep}"), &tb).await.status, 200);
    println!("foreign ids: {checked} routes answered 404 without a leak");
});

both_backends!(paging_cursors_are_bound_and_checked, |s: Server| async move {
    let (t, a) = s.login(&s.root).await;
    let cred = s.credential(&t, &a, "123412341234").await;
    let d = s.req(Method::POST, &format!("/deployments/v1/{a}/deployments"), &t, Some(deployment_body(&cred))).await;
    let id = d.body["id"].as_str().unwrap().to_string();
    s.state.store.put_snapshot(&a, &id, &harness::synthetic_snapshot()).await.unwrap();
    // The deployment route pages like the account route.
    let dep_assets = format!("/assets_query/v1/{a}/deployments/{id}/assets");
    let p1 = s.get(&format!("{dep_assets}?asset_types=h:host&page_size=2"), &t).await;
    assert_eq!((p1.body["rows"].as_u64(), p1.body["total_assets"].as_u64()), (Some(2), Some(3)), "{}", p1.body);
    let next = p1.body["continue"].as_str().unwrap().to_string();
    let p2 = s.get(&format!("{dep_assets}?continue={next}"), &t).await;
    assert_eq!((p2.body["rows"].as_u64(), p2.body.get("continue")), (Some(1), None));
    // The same with the same parameters repeated is fine; other parameters are not.
    assert_eq!(s.get(&format!("{dep_assets}?asset_types=host&continue={next}"), &t).await.status, 200);
    for bad in [
        format!("{dep_assets}?asset_types=vpc&continue={next}"),
        format!("{dep_assets}?asset_types=host&scope=true&continue={next}"),
        format!("{dep_assets}?continue={next}&page_size=10000"),
        // Another route, another account's route, a forged and a truncated one.
        format!("/assets_query/v1/{a}/assets?continue={next}"),
        format!("{dep_assets}?continue={}", forge(&next)),
        format!("{dep_assets}?continue={}", &next[..next.len() - 2]),
        format!("{dep_assets}?continue=MTg0NDY3NDQwNzM3MDk1NTE2MTUuMTg0NDY3NDQwNzM3MDk1NTE2MTU"),
        format!("{dep_assets}?continue={}", "A".repeat(5000)),
    ] {
        let r = s.get(&bad, &t).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(matches!(r.body["field"].as_str(), Some("continue") | Some("page_size")), "{bad}: {}", r.body);
    }
    let (kc, child) = s.child(&t, &a, "kid").await;
    let (tc, _) = s.login(&kc).await;
    let r = s.get(&format!("/assets_query/v1/{child}/deployments/{id}/assets?continue={next}"), &tc).await;
    assert_eq!((r.status.as_u16(), r.body["field"].as_str()), (400, Some("continue")), "{}", r.body);
});

/// A cursor with its page altered (offset made huge) but the MAC kept.
fn forge(cursor: &str) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    let (body, tag) = cursor.split_once('.').unwrap();
    let text = String::from_utf8(B64.decode(body).unwrap()).unwrap();
    let rest = text.split_once('.').unwrap().1;
    format!("{}.{tag}", B64.encode(format!("18446744073709551615.{rest}")))
}

both_backends!(framework_answers_are_json_and_small, |s: Server| async move {
    let (t, a) = s.login(&s.root).await;
    // No route, wrong method, a query string that does not parse: JSON, named.
    let r = s.get("/no/such/route", &t).await;
    assert_eq!((r.status.as_u16(), r.body["error"].as_str()), (404, Some("not_found")), "{}", r.body);
    let r = s.raw(Method::PATCH, &format!("/deployments/v1/{a}/deployments"), Some(&t), None).await;
    assert_eq!((r.status.as_u16(), r.body["error"].as_str()), (405, Some("method_not_allowed")), "{}", r.body);
    let cred = s.credential(&t, &a, "123412341234").await;
    let d = s.req(Method::POST, &format!("/deployments/v1/{a}/deployments"), &t, Some(deployment_body(&cred))).await;
    let id = d.body["id"].as_str().unwrap().to_string();
    let r = s.get(&format!("/deployments/v1/{a}/deployments/{id}/audit?limit=abc"), &t).await;
    assert_eq!((r.status.as_u16(), r.body["field"].as_str()), (400, Some("limit")), "{}", r.body);
    // Sub-routes of a deployment the account never had: 404, not an empty 200.
    for sub in ["audit", "dead_letters", "protection"] {
        let r = s.get(&format!("/deployments/v1/{a}/deployments/NOPE/{sub}"), &t).await;
        assert_eq!(r.status, 404, "{sub}: {}", r.body);
    }
    // nosniff on every answer, errors included.
    let r = s.http.get(format!("{}/deployments/v1/{a}/deployments", s.base)).send().await.unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    // A repeated key is refused, naming it.
    let r = s
        .raw(Method::POST, &format!("/credentials/v2/{a}/credentials"), Some(&t),
            Some(br#"{"name": "a", "name": "b", "secrets": {"type": "aws_iam_role", "arn": "arn:aws:iam::123412341234:role/x"}}"#.to_vec()))
        .await;
    assert_eq!((r.status.as_u16(), r.body["field"].as_str()), (400, Some("body")), "{}", r.body);
    assert!(r.body.to_string().contains("given twice"), "{}", r.body);
    // Only the aws partition: a GovCloud or China role is refused, and the message says so.
    for arn in ["arn:aws-us-gov:iam::123412341234:role/x", "arn:aws-cn:iam::123412341234:role/x"] {
        let r = s
            .req(
                Method::POST,
                &format!("/credentials/v2/{a}/credentials"),
                &t,
                Some(json!({"name": "r", "secrets": {"type": "aws_iam_role", "arn": arn}})),
            )
            .await;
        assert_eq!((r.status.as_u16(), r.body["field"].as_str()), (400, Some("secrets.arn")), "{}", r.body);
    }
    // A region key outside the aws partition's regions is refused, naming the region.
    let mut body = deployment_body(&cred);
    body["scope"]["include"][0]["key"] = json!("/aws/xx-nowhere-9");
    let r = s.req(Method::POST, &format!("/deployments/v1/{a}/deployments"), &t, Some(body)).await;
    assert_eq!((r.status.as_u16(), r.body["field"].as_str()), (400, Some("scope.include[0].key")), "{}", r.body);
    assert!(
        r.body["found"].as_str().unwrap().contains("xx-nowhere-9")
            && r.body["hint"].as_str().unwrap().contains("us-east-1")
    );
    // An update that changes nothing keeps the version.
    let dep = format!("/deployments/v1/{a}/deployments/{id}");
    let before = s.get(&dep, &t).await.body["version"].clone();
    for body in [json!({}), json!({"name": "My Deployment"})] {
        let r = s.req(Method::PUT, &dep, &t, Some(body)).await;
        assert_eq!((r.status.as_u16(), &r.body["version"]), (200, &before), "{}", r.body);
    }
    let r = s.req(Method::PUT, &dep, &t, Some(json!({"name": "renamed"}))).await;
    assert_eq!(r.body["version"], before.as_i64().unwrap() + 1);
    // 10,000 bad scope items: the answer lists 20 and counts the rest.
    let mut body = deployment_body(&cred);
    let items: Vec<Value> =
        (0..10_000).map(|i| json!({"type": "region", "key": format!("/aws/nowhere-{i}")})).collect();
    body["scope"]["include"] = json!(items);
    let r = s.req(Method::POST, &format!("/deployments/v1/{a}/deployments"), &t, Some(body)).await;
    assert_eq!(r.status, 400);
    let size = r.body.to_string().len();
    assert!(size < 16 * 1024, "error body of {size} bytes");
    assert_eq!(r.body["errors"].as_array().unwrap().len(), 20);
    assert!(r.body["errors_omitted"].as_u64().unwrap() >= 9_980, "{}", r.body["errors_omitted"]);
});

/// Slow and idle clients are cut off by the timeouts; past the connection cap new
/// connections are closed at once; a normal client is served throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = harness::start(harness::Db::Sqlite).await.unwrap();
    let limits = garrison_api::server::Limits {
        header_timeout: Duration::from_secs(2),
        body_timeout: Duration::from_secs(2),
        max_connections: 64,
        drain: Duration::from_secs(1),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = garrison_api::router(s.state.clone());
    tokio::spawn(garrison_api::server::serve(listener, app, limits, std::future::pending()));
    let start = Instant::now();
    // 40 connections that send half a request line and stop; 20 that send headers and a
    // part of the body they announced.
    let mut slow = vec![];
    for i in 0..60 {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        if i < 40 {
            c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        } else {
            c.write_all(b"POST /aims/v1/authenticate HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"a\":")
                .await
                .unwrap();
        }
        slow.push(c);
    }
    // The cap: 4 free slots are left; a burst past them is closed at once.
    let mut refused = 0;
    for _ in 0..10 {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(300), c.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => refused += 1,
            _ => {}
        }
        slow.push(c);
    }
    assert!(refused >= 4, "only {refused} of 10 connections past the cap were closed");
    // Every slow connection is closed by the server within the timeouts (plus slack).
    let mut closed_header = 0;
    let mut timed_out_bodies = 0;
    for (i, c) in slow.iter_mut().enumerate().take(60) {
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(8), c.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Err(_) => panic!("connection {i} still open after {:?}", start.elapsed()),
            }
        }
        if i < 40 {
            closed_header += 1;
        } else if String::from_utf8_lossy(&got).contains("408") {
            timed_out_bodies += 1;
        }
    }
    assert_eq!((closed_header, timed_out_bodies), (40, 20));
    let took = start.elapsed();
    // Closed by the timeouts (2 s), not by anything slower, even on a loaded machine.
    assert!(took < Duration::from_secs(6), "closing took {took:?}");
    // An idle keep-alive connection is closed after the header timeout too.
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = c.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let idle = Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(8), c.read(&mut buf)).await.expect("idle connection kept");
    assert!(matches!(end, Ok(0) | Err(_)));
    assert!(
        idle.elapsed() < Duration::from_secs(5) && idle.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        idle.elapsed()
    );
    // Slots are free again: a normal client is served.
    let r = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert_eq!(r.status(), 200);
    println!("slow clients: 60 closed in {took:?}, {refused}/10 refused past the cap");
}

// The audit log pages newest first with a cursor bound to the deployment; no entry is
// skipped or repeated, also when entries are added while paging.
both_backends!(audit_log_pages_newest_first, |s: Server| async move {
    let (t, a) = s.login(&s.root).await;
    let cred = s.credential(&t, &a, "123412341234").await;
    let d = s.req(Method::POST, &format!("/deployments/v1/{a}/deployments"), &t, Some(deployment_body(&cred))).await;
    let id = d.body["id"].as_str().unwrap().to_string();
    let entry = |at_ms: i64, n: usize| garrison_store::AuditEntry {
        at_ms,
        deployment_id: id.clone(),
        generation: 1,
        region: "us-east-1".into(),
        call: format!("ec2:Call{n}"),
        resource: format!("r-{n}"),
        outcome: "ok".into(),
        key: None,
        message: None,
    };
    // Seven entries, two of them at the same millisecond.
    let entries: Vec<_> = (0..7).map(|n| entry(1000 + (n as i64).min(5) * 10, n)).collect();
    s.state.store.append_audit(&a, &entries).await.unwrap();
    let base = format!("/deployments/v1/{a}/deployments/{id}/audit");
    let mut seen = vec![];
    let mut next = format!("{base}?limit=3");
    let mut pages = 0;
    loop {
        let r = s.get(&next, &t).await;
        assert_eq!(r.status, 200, "{}", r.body);
        pages += 1;
        let got = r.body["entries"].as_array().unwrap();
        assert!(got.len() <= 3);
        seen.extend(got.iter().map(|e| (e["at_ms"].as_i64().unwrap(), e["call"].as_str().unwrap().to_string())));
        if pages == 1 {
            // Written meanwhile: newer than every page, so never in a later one.
            s.state.store.append_audit(&a, &[entry(5000, 99)]).await.unwrap();
        }
        match r.body["continue"].as_str() {
            Some(c) => next = format!("{base}?continue={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 7, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].0 >= w[1].0), "newest first: {seen:?}");
    assert_eq!(seen.iter().map(|(_, c)| c).collect::<std::collections::BTreeSet<_>>().len(), 7, "none twice");
    // The newest entry leads the next first page.
    let r = s.get(&format!("{base}?limit=1"), &t).await;
    assert_eq!(r.body["entries"][0]["call"], "ec2:Call99");
    // A cursor of this deployment's log is no good for another route, or with another limit.
    let c = r.body["continue"].as_str().unwrap().to_string();
    let r = s.get(&format!("{base}?continue={c}&limit=5"), &t).await;
    assert_eq!((r.status.as_u16(), r.body["field"].as_str()), (400, Some("continue")));
    let r = s.get(&format!("/assets_query/v1/{a}/assets?continue={c}"), &t).await;
    assert_eq!((r.status.as_u16(), r.body["field"].as_str()), (400, Some("continue")));
    let r = s.get(&format!("/deployments/v1/{a}/deployments/{id}/dead_letters?continue={c}"), &t).await;
    assert_eq!((r.status.as_u16(), r.body["field"].as_str()), (400, Some("continue")));
});
