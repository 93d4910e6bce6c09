use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::finding::{Source, observe};

fn finding(score: f64) -> Finding {
    let e = crate::finding::tests::guardduty_event("abc", score, false, 1);
    Finding::new("D1", observe(&e, Source::Guardduty).unwrap())
}

fn subscription(kind: &str, options: Value, filters: Value) -> Subscription {
    let spec = parse_subscription(
        &json!({"name": "s", "class": "event", "notification_type": kind, "options": options, "filters": filters,
                "subscribers": [{"subscriber": "C1", "subscriber_type": "connection"}, {"subscriber": "U1", "subscriber_type": "user"}]}),
        None,
    )
    .unwrap();
    spec.into_subscription("S1".into(), "10000001", Stamp { at: 0, by: "u".into() })
}

#[test]
fn a_subscription_takes_its_type_at_or_above_its_severity_for_its_deployment() {
    let high = finding_notice("N1", "10000001", &finding(8.0), true, 1_000);
    let low = finding_notice("N2", "10000001", &finding(2.0), true, 1_000);
    let s = subscription("findings/opened", json!({"min_severity": "high"}), json!({}));
    assert!(s.wants(&high));
    assert!(!s.wants(&low), "below its minimum");
    assert!(!subscription("findings/resolved", json!({}), json!({})).wants(&high), "another type");
    assert!(!subscription("findings/opened", json!({}), json!({"deployment_id": "D2"})).wants(&high));
    assert!(subscription("findings/opened", json!({}), json!({"deployment_id": "D1"})).wants(&low));
    assert_eq!(s.connections().collect::<Vec<_>>(), ["C1"], "users get no webhook");
    let mut off = s.clone();
    off.active = false;
    assert!(!off.wants(&high));
}

#[test]
fn a_finding_notice_is_herald_shaped_and_names_its_asset() {
    let n = finding_notice("N1", "10000001", &finding(8.0), true, 1_700_000_000_000);
    assert_eq!(n.body["type"], "findings/opened");
    assert_eq!(n.body["notification_data"]["threat_level"], "high");
    assert_eq!(n.body["notification_data"]["detection_source"], "guardduty");
    assert_eq!(n.body["notification_data"]["targets"], json!(["/aws/us-east-1/host/i-0123456789abcdef0"]));
    assert_eq!(n.body["asset_data"]["deployment_id"], "D1");
    assert_eq!(n.body["payload"]["finding"]["id"], "gd-abc");
    assert_eq!(n.body["created"]["at"], 1_700_000_000);
    let resolved = finding_notice("N2", "10000001", &finding(8.0), false, 0);
    assert_eq!(resolved.kind, NoticeType::FindingResolved);
    let slack = render(ConnectionKind::Slack, &n.body);
    assert!(slack["text"].as_str().unwrap().starts_with("[high] GuardDuty finding opened"), "{slack}");
    assert_eq!(render(ConnectionKind::Msteams, &n.body)["@type"], "MessageCard");
    assert_eq!(render(ConnectionKind::Webhook, &n.body), n.body);
}

#[test]
fn a_connection_body_is_checked_field_by_field() {
    let ok = parse_connection(
        &json!({"name": "sec", "type": "webhook", "target_url": "https://hooks.example.com/x?y=1",
                "headers": "X-Team: sec, X-Env: prod", "payload_conversion_type": "default", "payload_template": ""}),
        false,
    )
    .unwrap();
    assert_eq!((ok.method.as_str(), ok.payload_type.as_str()), ("POST", "observation"));
    assert_eq!(parse_headers(ok.headers.as_deref().unwrap()).unwrap().len(), 2);
    let bad = parse_connection(
        &json!({"name": "", "type": "email", "target_url": "ftp://x", "method": "GET", "headers": "Authorization: x",
                "payload_conversion_type": "jq", "colour": 1}),
        false,
    )
    .unwrap_err();
    let fields: Vec<&str> = bad.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["colour", "name", "type", "target_url", "method", "headers", "payload_conversion_type"]);
}

#[test]
fn targets_on_metadata_and_private_addresses_are_refused() {
    for u in [
        "http://169.254.169.254/latest/meta-data",
        "http://2852039166/latest/meta-data",
        "http://0xa9fea9fe/",
        "http://[fe80::1]/",
        "http://0.0.0.0:80/",
        "https://user:pw@example.com/",
        "file:///etc/passwd",
        "http://",
        "http://:80/",
    ] {
        assert!(check_target(u, true).is_err(), "{u}");
    }
    for u in [
        "http://127.0.0.1:9000/hook",
        "http://localhost/",
        "http://10.1.2.3/",
        "http://[::1]:8080/",
        "http://100.64.0.1/",
        "http://LOCALHOST./",
        // Other spellings of loopback an HTTP client reads as 127.0.0.1.
        "http://2130706433/",
        "http://0x7f000001/",
        "http://127.1/",
        "http://0177.0.0.1/",
        "http://[::ffff:127.0.0.1]/",
    ] {
        let e = check_target(u, false).unwrap_err();
        assert!(e.hint.unwrap().contains("allow_private_webhooks"), "{u}");
        assert!(check_target(u, true).is_ok(), "{u} allowed when the server says so");
    }
    assert!(check_target("https://hooks.slack.com/services/T/B/X", false).is_ok());
    // What a name resolves to is held to the same rule (mapped IPv4 included).
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    assert!(!address_allowed(ip("::ffff:169.254.169.254"), true));
    assert!(!address_allowed(ip("169.254.170.2"), true));
    assert!(!address_allowed(ip("::ffff:127.0.0.1"), false) && address_allowed(ip("::ffff:127.0.0.1"), true));
    assert!(!address_allowed(ip("192.168.1.10"), false) && !address_allowed(ip("fd00::1"), false));
    assert!(address_allowed(ip("93.184.216.34"), false) && address_allowed(ip("2606:2800:220:1::1"), false));
}

#[test]
fn a_subscription_body_is_checked_and_an_update_keeps_what_it_does_not_name() {
    let bad = parse_subscription(
        &json!({"name": "s", "class": "schedule", "notification_type": "incidents/alerts",
                "options": {"min_severity": "severe"}, "filters": {"region": "x"},
                "subscribers": [{"subscriber": "C1", "subscriber_type": "pager"}]}),
        None,
    )
    .err()
    .unwrap();
    let fields: Vec<&str> = bad.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["notification_type", "class", "options.min_severity", "filters.region", "subscribers[0].subscriber_type"]
    );
    let base = subscription("findings/opened", json!({"min_severity": "high"}), json!({}));
    let upd = parse_subscription(&json!({"active": false}), Some(&base)).ok().unwrap();
    assert_eq!((upd.name.as_str(), upd.active, upd.subscribers.is_none()), ("s", false, true));
    assert_eq!(upd.options["min_severity"], "high");
}

proptest! {
    // Whatever a client sends, the parsers answer (never a panic), and an accepted target
    // is never link-local.
    #[test]
    fn any_connection_body_is_answered(name in ".{0,20}", url in "(https?://)?[a-z0-9.:\\[\\]@/-]{0,40}", headers in "[ -~]{0,40}") {
        let body = json!({"name": name, "type": "webhook", "target_url": url, "headers": headers});
        if let Ok(spec) = parse_connection(&body, true) {
            prop_assert!(!spec.target_url.contains("169.254."));
            prop_assert!(spec.headers.as_deref().is_none_or(|h| parse_headers(h).is_ok()));
        }
        let _ = parse_subscription(&json!({"name": name, "class": url, "notification_type": headers}), None);
    }
}
