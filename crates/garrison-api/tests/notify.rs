//! Notifications end to end, on SQLite and on PostgreSQL: connections (connectors) and
//! subscriptions (herald) made over the API, findings and a status change recorded through
//! the store's real path, and garrison's delivery loop sending to a real HTTP receiver on
//! loopback that checks every signature, fails for a while, refuses one connection for good
//! (its notice dead-lettered, then redelivered once it accepts).

mod harness;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use garrison_model::deployment::{Reason, Status, StatusKind};
use garrison_model::finding::FindingStatus;
use harness::{Server, deployment_body};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Got {
    route: String,
    headers: HeaderMap,
    body: Vec<u8>,
    answered: u16,
}

#[derive(Default)]
struct Receiver {
    got: Vec<Got>,
    /// 500s still to answer on /hook.
    fail_hook: usize,
    /// /refuse answers 410 while true.
    refuse: bool,
}

type Shared = Arc<Mutex<Receiver>>;

async fn receive(
    State(r): State<Shared>,
    Path(route): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let mut r = r.lock().unwrap();
    let code = match route.as_str() {
        "hook" if r.fail_hook > 0 => {
            r.fail_hook -= 1;
            500
        }
        "refuse" if r.refuse => 410,
        _ => 200,
    };
    r.got.push(Got { route, headers, body: body.to_vec(), answered: code });
    StatusCode::from_u16(code).unwrap()
}

async fn receiver() -> (String, Shared) {
    let shared: Shared = Arc::new(Mutex::new(Receiver { refuse: true, ..Default::default() }));
    let app = axum::Router::new().route("/{route}", axum::routing::post(receive)).with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, shared)
}

/// The receiver's own check, as a customer would write it: HMAC-SHA256 over "<t>.<body>".
fn signed_by(secret: &str, g: &Got) -> bool {
    let h = g.headers.get("x-garrison-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let t = h.split(',').find_map(|p| p.strip_prefix("t=")).unwrap_or_default();
    let v1 = h.split(',').find_map(|p| p.strip_prefix("v1=")).unwrap_or_default();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&g.body);
    hex::encode(mac.finalize().into_bytes()) == v1
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(std::time::Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn header<'a>(g: &'a Got, name: &str) -> &'a str {
    g.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

both_backends!(notifications_are_signed_retried_dead_lettered_and_redelivered, |s: Server| async move {
    let (t, a) = s.login(&s.root).await;
    let (rx_base, rx) = receiver().await;
    let cred = s.credential(&t, &a, "123412341234").await;
    let d = s.req(Method::POST, &format!("/deployments/v1/{a}/deployments"), &t, Some(deployment_body(&cred))).await;
    let dep = d.body["id"].as_str().unwrap().to_string();
    let conns = format!("/v1/{a}/connections");

    // Bad connections are refused field by field; the metadata service is never a target.
    let bad = s
        .req(
            Method::POST,
            &conns,
            &t,
            Some(json!({"name": "x", "type": "email", "target_url": "http://169.254.169.254/latest", "method": "GET"})),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let fields: Vec<&str> =
        bad.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["type", "target_url", "method"]);

    // A dry run sends the sample to the target and returns what it answered; nothing is kept.
    let hook = json!({"name": "sec-hook", "type": "webhook", "target_url": format!("{rx_base}/hook"),
        "headers": "X-Team: security", "auth_header": "Bearer receiver-token", "payload_conversion_type": "default", "payload_template": ""});
    let dry = s.req(Method::POST, &format!("{conns}?dry_run=true"), &t, Some(hook.clone())).await;
    assert_eq!(dry.status, 200, "{}", dry.body);
    assert_eq!(dry.body["response"]["code"], 200);
    assert_eq!(dry.body["request"]["headers"]["X-Team"], "security");
    assert_eq!(dry.body["request"]["headers"]["Authorization"], "(sealed)", "the auth header is not echoed");
    let sample: Value = serde_json::from_str(dry.body["request"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(sample["notification_data"]["subject"], "garrison test notification (dry run)");
    assert!(s.get(&conns, &t).await.body.as_array().unwrap().is_empty(), "a dry run stores nothing");
    {
        let r = rx.lock().unwrap();
        assert_eq!(
            (r.got.len(), header(&r.got[0], "authorization"), header(&r.got[0], "x-team")),
            (1, "Bearer receiver-token", "security")
        );
    }
    // A dry run against a target that refuses: a 400 naming target_url with its answer.
    let refuse = json!({"name": "refuser", "type": "webhook", "target_url": format!("{rx_base}/refuse")});
    let dry = s.req(Method::POST, &format!("{conns}?dry_run=true"), &t, Some(refuse.clone())).await;
    assert_eq!(
        (dry.status.as_u16(), dry.body["errors"][0]["field"].as_str()),
        (400, Some("target_url")),
        "{}",
        dry.body
    );
    assert!(dry.body["errors"][0]["found"].as_str().unwrap().contains("HTTP 410"), "{}", dry.body);

    // Created: the signing secret shown once, never again; the auth header never.
    let c = s.req(Method::POST, &conns, &t, Some(hook)).await;
    assert_eq!(c.status, 201, "{}", c.body);
    let (hook_id, secret) =
        (c.body["id"].as_str().unwrap().to_string(), c.body["signing_secret"].as_str().unwrap().to_string());
    assert_eq!(c.body["auth_header_set"], true);
    let again = s.get(&format!("{conns}/{hook_id}"), &t).await;
    assert_eq!(again.status, 200);
    assert!(
        again.body.get("signing_secret").is_none() && !again.body.to_string().contains("receiver-token"),
        "{}",
        again.body
    );
    let r = s.req(Method::POST, &conns, &t, Some(refuse)).await;
    let (refuse_id, refuse_secret) =
        (r.body["id"].as_str().unwrap().to_string(), r.body["signing_secret"].as_str().unwrap().to_string());

    // herald: the types, subscriptions checked against the account's connections.
    let types = s.get("/herald/v2/notification_types", &t).await;
    let names: Vec<&str> = types.body["notification_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["notification_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["findings/opened", "findings/resolved", "deployments/status", "health/opened", "health/concluded"]
    );
    let subs = format!("/herald/v2/{a}/subscriptions");
    let unknown = s
        .req(
            Method::POST,
            &subs,
            &t,
            Some(json!({"name": "x", "class": "event", "notification_type": "findings/opened",
            "subscribers": [{"subscriber": "NOPE", "subscriber_type": "connection"}]})),
        )
        .await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.body["errors"][0]["field"].as_str()),
        (400, Some("subscribers[0].subscriber"))
    );
    let to = |id: &str| json!({"subscriber": id, "subscriber_type": "connection"});
    let opened = s
        .req(
            Method::POST,
            &subs,
            &t,
            Some(json!({"name": "high findings", "class": "event", "notification_type": "findings/opened",
            "options": {"min_severity": "high"}, "subscribers": [to(&hook_id)]})),
        )
        .await;
    assert_eq!(opened.status, 201, "{}", opened.body);
    let opened_id = opened.body["id"].as_str().unwrap().to_string();
    let added = s.req(Method::POST, &format!("{subs}/{opened_id}/subscribers"), &t, Some(to(&refuse_id))).await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(
        s.req(Method::POST, &format!("{subs}/{opened_id}/subscribers"), &t, Some(to(&refuse_id))).await.status,
        409
    );
    for kind in ["findings/resolved", "deployments/status"] {
        let r = s
            .req(
                Method::POST,
                &subs,
                &t,
                Some(json!({"name": kind, "class": "event", "notification_type": kind, "subscribers": [to(&hook_id)]})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let listed = s.get(&format!("{subs}?notification_type=findings/opened&include_subscribers=true"), &t).await;
    assert_eq!(listed.body["subscriptions"][0]["subscribers"].as_array().unwrap().len(), 2);
    // All or none: one unknown id deletes nothing.
    let del = s.req(Method::POST, &format!("{subs}/batch/delete"), &t, Some(json!({"ids": [opened_id, "NOPE"]}))).await;
    assert_eq!(del.status, 400);
    assert_eq!(s.get(&subs, &t).await.body["subscriptions"].as_array().unwrap().len(), 3);

    // What happens: a high finding opened (to both connections), a low one (below the
    // minimum: nobody), the high one again (no change: nobody), then archived (resolved),
    // and the deployment's status changing (told), then only its message (not told).
    rx.lock().unwrap().fail_hook = 3;
    let store = &s.state.store;
    store.record_finding(&a, &dep, harness::observation("high", 8.0)).await.unwrap();
    store.record_finding(&a, &dep, harness::observation("low", 2.0)).await.unwrap();
    store.record_finding(&a, &dep, harness::observation("high", 8.0)).await.unwrap();
    let mut archived = harness::observation("high", 8.0);
    archived.status = FindingStatus::Resolved;
    store.record_finding(&a, &dep, archived).await.unwrap();
    let st = |m: &str| Status::new(StatusKind::Error, Reason::RoleNotAssumable, 1, m.into());
    store.set_status(&a, &dep, st("the role cannot be assumed")).await.unwrap();
    store.set_status(&a, &dep, st("the role still cannot be assumed")).await.unwrap();

    let opts = garrison_notify::Options {
        backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        poll: Duration::from_millis(50),
        timeout: Duration::from_secs(5),
        allow_private: true,
        ..Default::default()
    };
    let loop_ = tokio::spawn(garrison_notify::run(store.clone(), garrison_notify::Sender::new(opts)));

    // The hook gets each of the three notices once it recovers; every request signed.
    let ok_ids = |r: &Receiver, route: &str| -> Vec<String> {
        let mut ids: Vec<String> = r
            .got
            .iter()
            .filter(|g| {
                g.route == route
                    && g.answered == 200
                    && header(g, "x-garrison-notification-id") != "00000000-0000-0000-0000-000000000000"
            })
            .map(|g| header(g, "x-garrison-notification-id").to_string())
            .collect();
        ids.sort();
        ids
    };
    wait_for("three notices delivered to the hook", || ok_ids(&rx.lock().unwrap(), "hook").len() >= 3).await;
    let dlq = "/v1/connections/management/dlq_messages/notifications".to_string();
    let mut dead = Value::Null;
    for _ in 0..200 {
        dead = s.get(&dlq, &t).await.body;
        if dead["count"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    {
        let r = rx.lock().unwrap();
        let delivered: Vec<&Got> = r.got.iter().filter(|g| g.route == "hook" && g.answered == 200).skip(1).collect();
        assert_eq!(
            delivered.len(),
            3,
            "each notice delivered exactly once after the failures: {:?}",
            ok_ids(&r, "hook")
        );
        let failures = r.got.iter().filter(|g| g.route == "hook" && g.answered == 500).count();
        assert_eq!(failures, 3);
        let mut types = vec![];
        for g in &delivered {
            assert!(signed_by(&secret, g), "signature of {}", header(g, "x-garrison-notification-id"));
            assert!(!signed_by(&refuse_secret, g), "signed with its own connection's secret only");
            assert_eq!(header(g, "content-type"), "application/json");
            assert_eq!(header(g, "authorization"), "Bearer receiver-token");
            let n: Value = serde_json::from_slice(&g.body).unwrap();
            assert_eq!(n["id"].as_str(), Some(header(g, "x-garrison-notification-id")));
            assert_eq!(
                (n["account_id"].as_str(), n["asset_data"]["deployment_id"].as_str()),
                (Some(a.as_str()), Some(dep.as_str()))
            );
            types.push(n["type"].as_str().unwrap().to_string());
            match n["type"].as_str().unwrap() {
                "findings/opened" | "findings/resolved" => {
                    assert_eq!(n["payload"]["finding"]["id"], "gd-high");
                    assert_eq!(n["notification_data"]["threat_level"], "high");
                    assert_eq!(n["notification_data"]["targets"], json!(["/aws/us-east-1/host/i-0123456789abcdef0"]));
                }
                "deployments/status" => {
                    assert_eq!(n["notification_data"]["status"], "error");
                    assert_eq!(n["notification_data"]["reason"], "role_not_assumable");
                    assert_eq!(n["payload"]["deployment"]["id"], dep.as_str());
                }
                other => panic!("unexpected notice {other}"),
            }
        }
        types.sort();
        assert_eq!(types, ["deployments/status", "findings/opened", "findings/resolved"]);
        // A retried request says which attempt it is.
        assert!(
            r.got.iter().any(|g| g.route == "hook" && g.answered == 200 && header(g, "x-garrison-attempt") != "1"),
            "attempts counted"
        );
        // The refusing connection was tried once: a 410 is for good.
        assert_eq!(
            r.got.iter().filter(|g| g.route == "refuse" && g.answered == 410).count(),
            2,
            "the dry run and one attempt"
        );
    }

    // Its notice is a dead letter with the reason; another tenant sees none of it.
    assert_eq!(dead["count"], 1, "{dead}");
    let letter = &dead["messages"][0];
    assert_eq!((letter["connection_id"].as_str(), letter["attempts"].as_i64()), (Some(refuse_id.as_str()), Some(1)));
    assert!(letter["last_error"].as_str().unwrap().starts_with("HTTP 410"), "{letter}");
    assert_eq!(letter["body"]["type"], "findings/opened");
    let (root, _) = s.login(&s.root).await;
    let (kother, other) = s.child(&root, "10000001", "other-tenant").await;
    let (tother, _) = s.login(&kother).await;
    assert_eq!(s.get(&dlq, &tother).await.body["count"], 0, "{other}: not its dead letters");
    let none = s
        .req(Method::POST, "/v1/connections/management/reenqueue", &tother, Some(json!({"key": "notifications"})))
        .await;
    assert_eq!(none.body["reenqueued_num"], 0);
    let bad_key =
        s.req(Method::POST, "/v1/connections/management/reenqueue", &t, Some(json!({"key": "audit_messages"}))).await;
    assert_eq!((bad_key.status.as_u16(), bad_key.body["errors"][0]["field"].as_str()), (400, Some("key")));

    // The receiver accepts again: re-enqueued, delivered, and the dead letters are empty.
    rx.lock().unwrap().refuse = false;
    let re =
        s.req(Method::POST, "/v1/connections/management/reenqueue", &t, Some(json!({"key": "notifications"}))).await;
    assert_eq!(re.body["reenqueued_num"], 1, "{}", re.body);
    wait_for("the dead letter redelivered", || ok_ids(&rx.lock().unwrap(), "refuse").len() == 1).await;
    {
        let r = rx.lock().unwrap();
        let g = r.got.iter().rfind(|g| g.route == "refuse").unwrap();
        assert!(signed_by(&refuse_secret, g));
        assert_eq!(
            header(g, "x-garrison-notification-id"),
            letter["notification_id"].as_str().unwrap(),
            "the same notice"
        );
    }
    assert_eq!(s.get(&dlq, &t).await.body["count"], 0);

    // Counted by outcome.
    let text = s.http.get(format!("{}/metrics", s.base)).send().await.unwrap().text().await.unwrap();
    for outcome in ["sent", "retry", "dead"] {
        assert!(text.lines().any(|l| l.starts_with("garrison_notifications_total") && l.contains(&format!("outcome=\"{outcome}\""))), "{outcome}: {text}");
    }
    loop_.abort();

    // A deleted connection takes what it was owed with it; a dead letter can be dropped.
    rx.lock().unwrap().refuse = true;
    store.record_finding(&a, &dep, harness::observation("later", 9.0)).await.unwrap();
    assert_eq!(store.deliveries(&a, "pending", 10).await.unwrap().len(), 2);
    assert_eq!(s.req(Method::DELETE, &format!("{conns}/{hook_id}"), &t, None).await.status, 204);
    assert_eq!(store.deliveries(&a, "pending", 10).await.unwrap().len(), 1, "the hook's pending notice went with it");
    assert_eq!(s.get(&format!("{conns}/{hook_id}"), &t).await.status, 404);
    let pending = store.deliveries(&a, "pending", 10).await.unwrap();
    store.delivery_attempted(&pending[0].id, "dead", 0, Some("HTTP 410")).await.unwrap();
    let drop = s
        .req(
            Method::DELETE,
            "/v1/connections/management/delete_message",
            &t,
            Some(json!({"key": "notifications", "receipt_handles": [pending[0].id]})),
        )
        .await;
    assert_eq!(drop.status, 204, "{}", drop.body);
    assert_eq!(s.get(&dlq, &t).await.body["count"], 0);

    // An account has at most 100 connections; the 101st is a 409 that says why.
    let have = s.get(&conns, &t).await.body.as_array().unwrap().len();
    let hook = json!({"name": "n", "type": "webhook", "target_url": "https://hooks.example.com/n"});
    for _ in have..garrison_api::services::connectors::MAX_CONNECTIONS {
        assert_eq!(s.req(Method::POST, &conns, &t, Some(hook.clone())).await.status, 201);
    }
    let full = s.req(Method::POST, &conns, &t, Some(hook)).await;
    assert_eq!(full.status, 409, "{}", full.body);
    assert!(full.body["message"].as_str().unwrap().contains("100 connections"), "{}", full.body);
});
