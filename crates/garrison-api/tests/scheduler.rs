//! scan_scheduler v2 over HTTP, on SQLite and on PostgreSQL: the default schedule listed
//! and changed but never deleted; schedules created, read, changed in part, stopped,
//! summarised and deleted; every bad field named; assets expedited and stopped; another
//! tenant's deployment refused.

mod harness;

use harness::{Server, deployment_body};
use reqwest::Method;
use serde_json::{Value, json};

both_backends!(schedules_are_stored_checked_and_controlled, |s: Server| async move {
    let (t, a) = s.login(&s.root).await;
    let cred = s.credential(&t, &a, "123412341234").await;
    let d = s.req(Method::POST, &format!("/deployments/v1/{a}/deployments"), &t, Some(deployment_body(&cred))).await;
    let dep = d.body["id"].as_str().unwrap().to_string();
    let base = format!("/scheduler/v2/{a}/{dep}/schedules");

    // The default schedule: every asset, no windows, listed first.
    let listed = s.get(&base, &t).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let default = listed.body[0].clone();
    assert_eq!((default["default"].as_bool(), default["type_of_scan"].as_str()), (Some(true), Some("vulnerability")));
    assert_eq!(default["scan_scope"], json!({"include_all_assets": true}));
    assert_eq!(default["id"], garrison_model::schedule::default_id(&dep));
    let default_url = format!("{base}/{}", default["id"].as_str().unwrap());
    let del = s.req(Method::DELETE, &default_url, &t, None).await;
    assert_eq!((del.status.as_u16(), del.body["errors"][0]["field"].as_str()), (400, Some("id")), "{}", del.body);
    // Changed in part: windows given, the rest stays.
    let nightly =
        json!([{"type": "days_of_week", "start_time": "22:00", "end_time": "02:00", "days_of_week": [1, 2, 3, 4, 5]}]);
    let u =
        s.req(Method::PUT, &default_url, &t, Some(json!({"scan_windows": nightly, "timezone": "Europe/London"}))).await;
    assert_eq!(u.status, 200, "{}", u.body);
    assert_eq!((u.body["default"].as_bool(), u.body["scan_windows"].clone()), (Some(true), nightly.clone()));
    assert_eq!(u.body["scan_scope"], json!({"include_all_assets": true}));
    assert!(u.body["modified"]["by"].is_string());

    // A schedule of its own; bad fields each named.
    let vpc_only = json!({"name": "prod VPC weekends", "scan_frequency": "weekly",
        "scan_windows": [{"type": "weekly_period", "start_day": 6, "start_time": "00:00", "end_day": 7, "end_time": "23:59"}],
        "scan_scope": {"include": [{"type": "asset", "asset_type": "vpc", "key": "/aws/us-east-1/vpc/vpc-0a1b2c3d"}]}});
    let c = s.req(Method::POST, &base, &t, Some(vpc_only)).await;
    assert_eq!(c.status, 201, "{}", c.body);
    let id = c.body["id"].as_str().unwrap().to_string();
    let bad = s
        .req(Method::POST, &base, &t, Some(json!({"name": "x", "timezone": "Mars/Olympus",
            "scan_windows": [{"type": "days_of_week", "start_time": "7pm", "end_time": "02:00", "days_of_week": [8]}]})))
        .await;
    assert_eq!(bad.status, 400);
    let fields: Vec<&str> =
        bad.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["timezone", "scan_windows[0].start_time"], "{}", bad.body);
    let one = format!("{base}/{id}");
    assert_eq!(s.get(&one, &t).await.body["name"], "prod VPC weekends");
    let names: Vec<Value> = s.get(&format!("{base}?return_fields=name"), &t).await.body.as_array().unwrap().clone();
    assert_eq!(names[1], json!({"id": id, "name": "prod VPC weekends"}));

    // Summary, stop, then delete.
    let sum = s.get(&format!("{one}/summary"), &t).await;
    assert!(["idle", "in_progress"].contains(&sum.body["status"].as_str().unwrap()), "{}", sum.body);
    assert_eq!(s.req(Method::PUT, &format!("{one}/stop"), &t, None).await.status, 200);
    let off = s.req(Method::PUT, &one, &t, Some(json!({"enabled": false}))).await;
    assert_eq!(off.body["enabled"], false);
    assert_eq!(
        s.get(&format!("{one}/summary?return_fields=status"), &t).await.body,
        json!({"id": id, "status": "disabled"})
    );
    assert_eq!(s.req(Method::DELETE, &one, &t, None).await.status, 204);
    assert_eq!(s.get(&one, &t).await.status, 404);

    // Scan control: an asset expedited and stopped; a bad item named.
    let scan = format!("/scheduler/v2/{a}/{dep}/scan");
    let ok = s
        .req(
            Method::PUT,
            &scan,
            &t,
            Some(json!({"type": "asset", "asset_type": "vpc", "key": "/aws/us-east-1/vpc/vpc-0a1b2c3d"})),
        )
        .await;
    assert_eq!((ok.status.as_u16(), ok.body["status"].as_str()), (200, Some("expedited")), "{}", ok.body);
    let stop = format!("/scheduler/v2/{a}/{dep}/stop");
    let st = s
        .req(
            Method::PUT,
            &stop,
            &t,
            Some(json!({"type": "asset", "asset_type": "host", "key": "/aws/us-east-1/host/i-0a1b2c3d"})),
        )
        .await;
    assert_eq!(st.body["status"], "stopped");
    let bad =
        s.req(Method::PUT, &scan, &t, Some(json!({"type": "asset", "asset_type": "planet", "key": "earth"}))).await;
    let fields: Vec<&str> =
        bad.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!((bad.status.as_u16(), fields), (400, vec!["asset_type", "key"]), "{}", bad.body);

    // Time zones; an unknown deployment.
    let tz = s.get("/scheduler/v2/timezones", &t).await;
    assert!(tz.body.as_array().unwrap().iter().any(|z| z["tz_name"] == "Europe/London"));
    assert_eq!(s.get(&format!("/scheduler/v2/{a}/NOT-A-DEPLOYMENT/schedules"), &t).await.status, 404);
});
