//! The appliance channel over HTTP, on SQLite and PostgreSQL: bad bodies are 400s naming the
//! field; a token works once and only for its instance; a credential answers its own routes
//! (restart, heartbeat, config) and nothing of the tenant's; a revoked one is refused; the
//! deployment's health lists the refusals and the appliance.

mod harness;

use garrison_store::NewLaunch;
use harness::{Server, deployment_body};
use reqwest::Method;
use serde_json::{Value, json};

async fn post(s: &Server, route: &str, bearer: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = s.http.post(format!("{}/appliances/v1/{route}", s.base)).json(&body);
    if let Some(b) = bearer {
        r = r.bearer_auth(b);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

both_backends!(the_appliance_channel_answers_only_its_own_appliances, |s: Server| async move {
    let (t, a) = s.login(&s.root).await;
    let cred = s.credential(&t, &a, "123412341234").await;
    let d = s.req(Method::POST, &format!("/deployments/v1/{a}/deployments"), &t, Some(deployment_body(&cred))).await;
    let dep = d.body["id"].as_str().unwrap().to_string();
    let store = &s.state.store;
    let launch = NewLaunch {
        account_id: &a,
        deployment_id: &dep,
        key: "us-east-1/vpc-1/us-east-1a/ids",
        role: "ids",
        launch_token: "l1",
    };
    let token = store.mint_bootstrap(&launch, garrison_engine::now_ms(), 60_000).await.unwrap();
    store.bind_bootstrap(&dep, "l1", "i-0abc").await.unwrap();

    // Bad bodies: every field named.
    let (st, body) = post(&s, "register", None, json!({"token": token, "instance_id": "web-1", "role": "dns"})).await;
    assert_eq!(st, 400, "{body}");
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["instance_id", "role", "version"], "{body}");
    let (st, body) = post(&s, "register", None, json!({"instance_id": "i-0abc", "role": "ids", "version": "1"})).await;
    assert_eq!((st, body["field"].as_str()), (400, Some("token")), "{body}");
    // Foreign instance, then the right one, then a replay.
    let reg = |i: &'static str| json!({"token": token, "instance_id": i, "role": "ids", "version": "1"});
    assert_eq!(post(&s, "register", None, reg("i-0def")).await.0, 401);
    let (st, body) = post(&s, "register", None, reg("i-0abc")).await;
    assert_eq!(st, 200, "{body}");
    let credential = body["credential"].as_str().unwrap().to_string();
    assert_eq!(body["config"]["key"], "us-east-1/vpc-1/us-east-1a/ids");
    assert_eq!(body["config"]["heartbeat_interval_s"], 60);
    assert_eq!(post(&s, "register", None, reg("i-0abc")).await.0, 401, "a token works once");
    // A restart: the credential, no token; from another instance it is refused.
    let again = json!({"instance_id": "i-0abc", "role": "ids", "version": "2"});
    let (st, body) = post(&s, "register", Some(&credential), again).await;
    assert_eq!((st, body.get("credential")), (200, None), "{body}");
    assert_eq!(
        post(&s, "register", Some(&credential), json!({"instance_id": "i-0fff", "role": "ids", "version": "2"}))
            .await
            .0,
        401
    );
    // Heartbeats: validated, the role its own.
    let beat = |role: &str| json!({"version": "2", "uptime_s": 5, "work": {"role": role, "packets": 10, "alerts": 1}});
    let (st, body) = post(
        &s,
        "heartbeat",
        Some(&credential),
        json!({"version": "2", "uptime_s": 5, "work": {"role": "ids", "packets": 10, "alerts": 1}}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = post(&s, "heartbeat", Some(&credential), beat("scan")).await;
    assert_eq!((st, body["field"].as_str()), (400, Some("work.packets")), "scan work has no packets: {body}");
    let scan = json!({"version": "2", "uptime_s": 5, "work": {"role": "scan", "last_scan_ms": null}});
    let (st, body) = post(&s, "heartbeat", Some(&credential), scan).await;
    assert_eq!(
        (st, body["field"].as_str(), body["expected"].as_str()),
        (400, Some("work.role"), Some("ids")),
        "{body}"
    );
    assert_eq!(post(&s, "heartbeat", None, beat("ids")).await.0, 401, "no credential");
    let cfg = s.http.get(format!("{}/appliances/v1/config", s.base)).bearer_auth(&credential).send().await.unwrap();
    assert_eq!(cfg.status(), 200);
    // The credential is no tenant token, and a tenant token no appliance credential.
    let r = s
        .http
        .get(format!("{}/deployments/v1/{a}/deployments", s.base))
        .header("x-aims-auth-token", &credential)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(post(&s, "heartbeat", Some(&t), beat("ids")).await.0, 401);
    // The deployment's health: the refusals (without the token) — foreign, replayed, foreign.
    let h = s.get(&format!("/deployments/v1/{a}/deployments/{dep}/health"), &t).await;
    assert_eq!(h.status, 200, "{:?}", h.body);
    let reasons: Vec<&str> =
        h.body["refusals"].as_array().unwrap().iter().map(|r| r["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons.len(), 3, "{:?}", h.body);
    assert!(reasons.contains(&"replayed") && reasons.contains(&"foreign_instance"), "{reasons:?}");
    assert!(!h.body.to_string().contains(&token) && !h.body.to_string().contains(&credential));
    // Revoked: refused everywhere.
    store.revoke_instance(&dep, "i-0abc", garrison_engine::now_ms()).await.unwrap();
    let (st, body) = post(&s, "heartbeat", Some(&credential), beat("ids")).await;
    assert_eq!(st, 401);
    assert!(body.to_string().contains("removed or replaced"), "{body}");
});
