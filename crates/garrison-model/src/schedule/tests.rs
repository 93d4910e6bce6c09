use proptest::prelude::*;
use serde_json::json;

use super::*;

fn ms(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn sched(windows: Value, tz: Option<&str>) -> Schedule {
    let mut body = json!({"name": "nightly", "type_of_scan": "vulnerability", "scan_frequency": "weekly",
        "scan_windows": windows, "scan_scope": {"include_all_assets": true}});
    if let Some(tz) = tz {
        body["timezone"] = json!(tz);
    }
    parse(&body, "S", false).unwrap()
}

#[test]
fn each_kind_of_window_opens_and_closes_when_it_says() {
    // Mondays and Wednesdays 22:00 → 02:00 (past midnight), UTC. 2027-01-04 is a Monday.
    let s = sched(
        json!([{"type": "days_of_week", "start_time": "22:00", "end_time": "02:00", "days_of_week": [1, 3]}]),
        None,
    );
    assert!(!s.open_at(ms("2027-01-04T21:59:00Z")));
    assert!(s.open_at(ms("2027-01-04T22:00:00Z")));
    assert!(s.open_at(ms("2027-01-05T01:59:00Z")), "Tuesday morning continues Monday's window");
    assert!(!s.open_at(ms("2027-01-05T02:00:00Z")));
    assert!(!s.open_at(ms("2027-01-05T23:00:00Z")), "not on Tuesday");
    // The same in New York: 22:00 local is 03:00 UTC in winter.
    let ny = sched(
        json!([{"type": "days_of_week", "start_time": "22:00", "end_time": "23:00", "days_of_week": [1]}]),
        Some("America/New_York"),
    );
    assert!(ny.open_at(ms("2027-01-05T03:30:00Z")) && !ny.open_at(ms("2027-01-04T22:30:00Z")));
    // Summer time observed: 22:00 local is 02:00 UTC in July (2027-07-05 is a Monday).
    assert!(ny.open_at(ms("2027-07-06T02:30:00Z")));
    // Day 31 of a month is its last day: 2027-02-28.
    let eom = sched(
        json!([{"type": "days_of_month", "start_time": "01:00", "end_time": "03:00", "days_of_month": [31]}]),
        None,
    );
    assert!(eom.open_at(ms("2027-02-28T02:00:00Z")) && !eom.open_at(ms("2027-02-27T02:00:00Z")));
    // Friday 18:00 to Monday 07:00, wrapping the week's end.
    let wk = sched(
        json!([{"type": "weekly_period", "start_day": 5, "start_time": "18:00", "end_day": 1, "end_time": "07:00"}]),
        None,
    );
    assert!(wk.open_at(ms("2027-01-09T12:00:00Z")), "Saturday");
    assert!(wk.open_at(ms("2027-01-11T06:59:00Z")) && !wk.open_at(ms("2027-01-11T07:00:00Z")));
    assert!(!wk.open_at(ms("2027-01-08T17:59:00Z")) && wk.open_at(ms("2027-01-08T18:00:00Z")));
    let mp = sched(
        json!([{"type": "monthly_period", "start_day": 28, "start_time": "00:00", "end_day": 2, "end_time": "00:00"}]),
        None,
    );
    assert!(
        mp.open_at(ms("2027-01-30T00:00:00Z"))
            && mp.open_at(ms("2027-02-01T10:00:00Z"))
            && !mp.open_at(ms("2027-02-02T00:00:00Z"))
    );
    let once = sched(
        json!([{"type": "specific_date", "start_date": "2027.06.27", "start_time": "07:00", "end_date": "2027.06.28", "end_time": "10:00"}]),
        None,
    );
    assert!(
        once.open_at(ms("2027-06-28T09:59:00Z"))
            && !once.open_at(ms("2027-06-28T10:00:00Z"))
            && !once.open_at(ms("2027-06-27T06:00:00Z"))
    );
    // Second month of each quarter, days 10 to 12: May 11th, not April 11th.
    let q = sched(
        json!([{"type": "quarterly", "month_of_quarter": 2, "start_day": 10, "start_time": "00:00", "end_day": 12, "end_time": "00:00"}]),
        None,
    );
    assert!(q.open_at(ms("2027-05-11T00:00:00Z")) && !q.open_at(ms("2027-04-11T00:00:00Z")));
    // The second Tuesday of the month, 08:00 to 18:00: 2027-01-12.
    let nth = sched(
        json!([{"type": "weekday_of_month", "day_of_week": 2, "nth_week": 2, "start_time": "08:00", "end_time": "18:00"}]),
        None,
    );
    assert!(nth.open_at(ms("2027-01-12T12:00:00Z")) && !nth.open_at(ms("2027-01-05T12:00:00Z")));
    // No windows: always; disabled: never.
    let always = sched(json!(null), None);
    assert!(always.open_at(ms("2027-01-01T00:00:00Z")));
    assert!(!Schedule { enabled: false, ..always }.open_at(ms("2027-01-01T00:00:00Z")));
}

#[test]
fn a_stop_shuts_the_open_window_until_it_closes_and_the_next_one_opens() {
    let mut s = sched(
        json!([{"type": "days_of_week", "start_time": "22:00", "end_time": "02:00", "days_of_week": [1, 2, 3, 4, 5, 6, 7]}]),
        None,
    );
    s.stopped_at = Some(ms("2027-01-04T23:00:00Z"));
    assert!(!s.open_at(ms("2027-01-05T01:00:00Z")), "stopped in this window");
    assert!(s.open_at(ms("2027-01-05T22:30:00Z")), "the next window runs");
    assert_eq!(s.next_open(ms("2027-01-05T01:00:00Z"), 86_400_000), Some(ms("2027-01-05T22:00:00Z")));
    // Without windows a stop lasts one SLA period (weekly).
    let mut a = sched(json!([]), None);
    a.stopped_at = Some(ms("2027-01-04T00:00:00Z"));
    assert!(!a.open_at(ms("2027-01-10T00:00:00Z")) && a.open_at(ms("2027-01-11T00:00:00Z")));
}

#[test]
fn bad_schedules_name_each_field() {
    let body = json!({"name": "", "type_of_scan": "deep", "scan_frequency": "hourly", "timezone": "Mars/Olympus",
        "scan_windows": [{"type": "days_of_week", "start_time": "25:00", "end_time": "02:00", "days_of_week": [0]},
                         {"type": "fortnightly"},
                         {"type": "specific_date", "start_date": "2027.06.27", "start_time": "10:00", "end_time": "09:00"}],
        "scan_scope": {"include": [{"type": "cidr", "value": "10.0.0.0/33"}]}, "colour": 1});
    let e = parse(&body, "S", false).unwrap_err();
    let fields: Vec<&str> = e.errors.iter().map(|f| f.field.as_str()).collect();
    for f in [
        "colour",
        "name",
        "type_of_scan",
        "scan_frequency",
        "timezone",
        "scan_windows[0].start_time",
        "scan_windows[1].type",
        "scan_windows[2].end_time",
        "scan_scope.include[0]",
    ] {
        assert!(fields.contains(&f), "{f} not named: {fields:?}");
    }
}

#[test]
fn the_scope_reaches_a_vpc_by_key_address_or_tag() {
    let tags: crate::snapshot::Tags = [("env".to_string(), "prod".to_string())].into();
    let p = VpcPlace {
        region: "us-east-1",
        vpc: "vpc-0000000a",
        cidr: "10.1.0.0/16",
        tags: &tags,
        subnets: vec!["subnet-000000a1"],
        hosts: vec!["i-000000a1"],
    };
    let with = |scope: Value| Schedule { scan_scope: scope, ..sched(json!(null), None) };
    assert!(with(json!({"include_all_assets": true})).covers(&p));
    assert!(
        with(json!({"include": [{"type": "asset", "asset_type": "vpc", "key": "/aws/us-east-1/vpc/vpc-0000000a"}]}))
            .covers(&p)
    );
    assert!(
        with(json!({"include": [{"type": "asset", "asset_type": "host", "key": "/aws/us-east-1/host/i-000000a1"}]}))
            .covers(&p)
    );
    assert!(with(json!({"include": [{"type": "cidr", "value": "10.1.200.0/24"}]})).covers(&p));
    assert!(
        with(json!({"include": [{"type": "ip_range", "from_ip": "10.0.255.250", "to_ip": "10.1.0.3"}]})).covers(&p)
    );
    assert!(with(json!({"include": [{"type": "tag", "key": "env", "value": "prod"}]})).covers(&p));
    assert!(!with(json!({"include": [{"type": "tag", "key": "env", "value": "dev"}]})).covers(&p));
    assert!(!with(json!({"include": [{"type": "cidr", "value": "10.2.0.0/16"}]})).covers(&p));
    assert!(!with(json!({"include": [{"type": "asset", "asset_type": "region", "key": "/aws/eu-west-1"}]})).covers(&p));
    assert!(!with(json!({"include_all_assets": true, "exclude": [{"type": "asset", "key": "/aws/us-east-1/vpc/vpc-0000000a"}]})).covers(&p));
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[0-9:.a-z_]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_string()),
                    Just("start_time".to_string()),
                    Just("end_time".to_string()),
                    Just("days_of_week".to_string()),
                    Just("start_day".to_string()),
                    Just("end_day".to_string()),
                    Just("nth_week".to_string()),
                    Just("start_date".to_string())
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// Any body is answered (a schedule or errors naming fields), and any accepted window
    /// is evaluated at any time without panicking.
    #[test]
    fn any_body_is_answered_and_any_time_evaluated(w in any_json(), t in -2_000_000_000_000i64..4_000_000_000_000i64) {
        let body = json!({"name": "n", "scan_windows": [w]});
        match parse(&body, "S", false) {
            Ok(s) => { s.open_at(t); }
            Err(e) => prop_assert!(!e.errors.is_empty()),
        }
    }
}

/// A stop on a window that stays open for most of a month is judged in bounded time, and
/// the summary's next window after it too.
#[test]
fn a_long_window_and_a_stop_are_judged_quickly() {
    let mut s = sched(
        json!([{"type": "monthly_period", "start_day": 1, "start_time": "00:00", "end_day": 31, "end_time": "23:00"}]),
        None,
    );
    s.stopped_at = Some(ms("2027-01-01T01:00:00Z"));
    let t = std::time::Instant::now();
    assert!(!s.open_at(ms("2027-01-30T12:00:00Z")), "stopped until the window closes on the 31st at 23:00");
    assert!(s.open_at(ms("2027-02-01T00:00:00Z")), "the next month's window runs");
    assert_eq!(s.next_open(ms("2027-01-30T12:00:00Z"), 35 * 86_400_000), Some(ms("2027-02-01T00:00:00Z")));
    assert!(t.elapsed() < std::time::Duration::from_secs(5), "{:?}", t.elapsed());
}

proptest! {
    /// Any expedite or stop body is answered: an asset item, or errors naming its fields.
    #[test]
    fn any_control_body_is_answered(b in any_json()) {
        match control_item(&b) {
            Ok((t, k)) => prop_assert!(!t.is_empty() && k.starts_with('/')),
            Err(e) => prop_assert!(!e.errors.is_empty()),
        }
    }
}
