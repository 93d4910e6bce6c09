use proptest::prelude::*;

use super::*;

const MIN: i64 = 60_000;

fn seen(launched: i64) -> Seen {
    Seen { launched_ms: launched, registered_ms: None, last_heartbeat_ms: None, previous_work: None, work: None }
}

#[test]
fn an_appliance_goes_from_launching_to_healthy_and_falls_silent() {
    let t = Timing::default();
    let mut s = seen(0);
    assert_eq!(judge(&s, &t, 4 * MIN), State::Launching);
    assert_eq!(judge(&s, &t, 5 * MIN + 1), State::Silent, "not registered five minutes after launch");
    s.registered_ms = Some(2 * MIN);
    assert_eq!(judge(&s, &t, 3 * MIN), State::Registered);
    s.last_heartbeat_ms = Some(3 * MIN);
    s.work = Some(Work::Ids { packets: 10, alerts: 0 });
    assert_eq!(judge(&s, &t, 4 * MIN), State::Healthy);
    assert_eq!(judge(&s, &t, 6 * MIN), State::Healthy, "two missed heartbeats are tolerated");
    assert_eq!(judge(&s, &t, 6 * MIN + 1), State::Silent, "three are not");
    // An IDS sensor whose packets stopped counting sees nothing.
    s.previous_work = Some(Work::Ids { packets: 10, alerts: 0 });
    s.last_heartbeat_ms = Some(4 * MIN);
    assert_eq!(judge(&s, &t, 4 * MIN), State::Degraded);
    s.work = Some(Work::Ids { packets: 11, alerts: 0 });
    assert_eq!(judge(&s, &t, 4 * MIN), State::Healthy);
    // A scanner is healthy while it beats.
    s.previous_work = Some(Work::Scan { last_scan_ms: None });
    s.work = Some(Work::Scan { last_scan_ms: None });
    assert_eq!(judge(&s, &t, 4 * MIN), State::Healthy);
}

#[test]
fn replacements_stop_after_two_that_never_registered() {
    let failed = Attempt { at_ms: 0, registered: false };
    let worked = Attempt { at_ms: 0, registered: true };
    assert_eq!(decide(State::Healthy, &[failed, failed], false), Decision::Keep);
    assert_eq!(decide(State::Silent, &[], false), Decision::Replace);
    assert_eq!(decide(State::Silent, &[], true), Decision::Wait, "one at a time");
    assert_eq!(decide(State::Silent, &[failed], false), Decision::Replace);
    assert!(
        matches!(decide(State::Silent, &[failed, failed], false), Decision::GiveUp(why) if why.contains("2 replacement"))
    );
    assert_eq!(
        decide(State::Silent, &[failed, failed, worked], false),
        Decision::Replace,
        "a registered one ends the row"
    );
}

#[test]
fn items_open_update_conclude_and_reopen() {
    let mut items = BTreeMap::new();
    let silent = Cause::ApplianceSilent { appliance: "i-1".into() };
    let denied = Cause::RegionDenied { region: "eu-west-3".into() };
    assert_eq!(
        reconcile(&mut items, &[silent.clone(), denied.clone(), silent.clone()], 1),
        vec![Change::Opened("appliance_silent/i-1".into()), Change::Opened("region_denied/eu-west-3".into()),]
    );
    assert!(items["appliance_silent/i-1"].remedy.contains("replacing it"));
    assert_eq!(reconcile(&mut items, &[silent.clone(), denied.clone()], 2), vec![], "seen again: nothing new");
    let gave_up = Cause::ReplacementGivenUp { appliance: "i-1".into(), why: "2 replacement(s)".into() };
    let changes = reconcile(&mut items, std::slice::from_ref(&gave_up), 3);
    assert_eq!(
        changes,
        vec![
            Change::Opened("replacement_given_up/i-1".into()),
            Change::Concluded("appliance_silent/i-1".into()),
            Change::Concluded("region_denied/eu-west-3".into()),
        ]
    );
    assert_eq!(items["region_denied/eu-west-3"].concluded_ms, Some(3));
    let again = reconcile(&mut items, &[gave_up, denied], 4);
    assert_eq!(again, vec![Change::Opened("region_denied/eu-west-3".into())], "a cause back reopens its item");
    assert_eq!(items["region_denied/eu-west-3"].opened_ms, 4);
}

fn cause() -> impl Strategy<Value = Cause> {
    (0..4u8, 0..3u8).prop_map(|(k, n)| match k {
        0 => Cause::ApplianceSilent { appliance: format!("i-{n}") },
        1 => Cause::ApplianceDegraded { appliance: format!("i-{n}") },
        2 => Cause::RegionDenied { region: format!("r-{n}") },
        _ => Cause::WritesFailing { what: format!("w-{n}") },
    })
}

proptest! {
    /// Over any sequence of observations: exactly the causes seen last are unhealthy, one
    /// item per cause, every other item concluded; an item is never opened twice in a row
    /// without a conclusion between.
    #[test]
    fn items_follow_their_causes(rounds in prop::collection::vec(prop::collection::vec(cause(), 0..6), 1..12)) {
        let mut items = BTreeMap::new();
        let mut open: std::collections::BTreeSet<String> = Default::default();
        for (i, causes) in rounds.iter().enumerate() {
            for ch in reconcile(&mut items, causes, i as i64) {
                match ch {
                    Change::Opened(k) => prop_assert!(open.insert(k), "opened twice"),
                    Change::Concluded(k) => prop_assert!(open.remove(&k), "concluded without being open"),
                    Change::Updated(k) => prop_assert!(open.contains(&k)),
                }
            }
            let now: std::collections::BTreeSet<String> = causes.iter().map(Cause::key).collect();
            prop_assert_eq!(&open, &now);
            for (k, it) in &items {
                prop_assert_eq!(it.status == ItemStatus::Unhealthy, now.contains(k));
            }
        }
    }

    /// Judging never panics and a heartbeat within the interval is never silent.
    #[test]
    fn a_recent_heartbeat_is_never_silent(launched in 0i64..1_000_000, reg in 0i64..1_000_000, beat in 0i64..1_000_000, gap in 0i64..180_000) {
        let s = Seen { launched_ms: launched, registered_ms: Some(launched + reg), last_heartbeat_ms: Some(launched + reg + beat),
            previous_work: None, work: None };
        prop_assert_ne!(judge(&s, &Timing::default(), launched + reg + beat + gap), State::Silent);
    }
}

#[test]
fn a_runs_failures_open_their_causes() {
    let report = |reason: &str, trail: bool, queue: bool, failed: &[&str]| -> crate::report::Report {
        let outcomes: Vec<serde_json::Value> = failed
            .iter()
            .map(|k| serde_json::json!({"key": k, "op": "create", "result": "failed", "error": "AWS said no"}))
            .chain([serde_json::json!({"key": "ok", "op": "create", "result": "done"})])
            .collect();
        let item = serde_json::json!({"id": "t", "arn": null, "region": "us-east-1", "adopted": false});
        serde_json::from_value(serde_json::json!({
            "deployment_id": "d", "mode": "automatic", "at": 0, "generation": 1, "reason": reason,
            "plan": {"actions": [], "problems": []}, "outcomes": outcomes,
            "audit_source": {"trail": if trail { item.clone() } else { serde_json::Value::Null }, "bucket": null,
                "topic": if queue { item.clone() } else { serde_json::Value::Null },
                "queue": if queue { item.clone() } else { serde_json::Value::Null },
                "detectors": [], "recorders": [], "flow_logs": 0},
            "vpcs": [], "scope": [], "monthly_appliance_usd": 0.0
        }))
        .unwrap()
    };
    assert_eq!(
        run_causes(&report("converged", true, true, &[]), Some(crate::deployment::Reason::Converged), &[]),
        vec![],
        "a converged run with a live feed"
    );
    let gap = |region: &str, code: &str| crate::snapshot::Gap {
        region: region.into(),
        kind: crate::snapshot::Kind::Vpcs,
        code: code.into(),
        message: "m".into(),
    };
    let causes = run_causes(
        &report("actions_failed", true, false, &["us-east-1/vpc-1/ids"]),
        Some(crate::deployment::Reason::RolePermissions),
        &[gap("eu-west-1", "AccessDenied"), gap("eu-west-1", "UnauthorizedOperation"), gap("us-west-2", "Throttling")],
    );
    assert_eq!(
        causes,
        vec![
            Cause::WritesFailing { what: "us-east-1/vpc-1/ids".into() },
            Cause::TrailWithoutLiveFeed { trail: "t".into() },
            Cause::RoleMissingPermissions { capability: "automatic mode".into() },
            Cause::RegionDenied { region: "eu-west-1".into() },
        ],
        "one item per region denied; a throttled read is not a denial"
    );
    assert!(causes.iter().all(|c| !c.remedy().is_empty()));
}
