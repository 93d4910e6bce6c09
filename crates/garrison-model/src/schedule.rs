//! Scan schedules (the scan_scheduler v2 service): when a deployment's scanners may run.
//! A schedule has a scope (all assets, or asset keys, CIDRs, IP addresses and ranges, tags),
//! a time zone and windows; a scanner runs while one of the schedules covering its VPC has a
//! window open (no windows: always), or while a scan is expedited, and not after a stop
//! until that window has closed. Pure: the planner asks `open_at`.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{FieldError, ValidationError, describe};

pub const TYPES: &[&str] = &["vulnerability", "external", "discovery", "abs"];
pub const FREQUENCIES: &[&str] = &["automatic", "daily", "weekly", "fortnightly", "monthly", "quarterly", "once"];
const ASSET_TYPES: &[&str] =
    &["deployment", "region", "network", "vpc", "subnet", "host", "external-ip", "external-dns-name", "agent"];
const WINDOW_TYPES: &[&str] = &[
    "days_of_week",
    "days_of_month",
    "weekly_period",
    "monthly_period",
    "specific_date",
    "quarterly",
    "weekday_of_month",
];
/// Items per scope, bounded.
pub const MAX_ITEMS: usize = 100;
/// Windows per schedule, bounded (each is evaluated minute by minute when a stop is judged).
pub const MAX_WINDOWS: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Stamp {
    pub at: i64,
    pub by: String,
}

/// A stored schedule, in the reference's shape (windows and scope as given, checked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Schedule {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub default: bool,
    pub enabled: bool,
    pub type_of_scan: String,
    #[serde(default)]
    pub timezone: Option<String>,
    pub scan_frequency: String,
    /// None (no windows: whenever there is something to scan) is left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub scan_windows: Option<Vec<Value>>,
    #[schema(value_type = Object)]
    pub scan_scope: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub scan_options: Option<Value>,
    /// Set by `stop_scan_schedule`: the window open then stays shut until it closes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Stamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<Stamp>,
}

/// A clock time of day, minutes since midnight.
type Minute = u32;

/// A window, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Window {
    DaysOfWeek { start: Minute, end: Minute, days: Vec<u8> },
    DaysOfMonth { start: Minute, end: Minute, days: Vec<u8> },
    WeeklyPeriod { start_day: u8, start: Minute, end_day: u8, end: Minute },
    MonthlyPeriod { start_day: u8, start: Minute, end_day: u8, end: Minute },
    SpecificDate { from: DateTime, to: DateTime },
    Quarterly { month: u8, start_day: u8, start: Minute, end_day: u8, end: Minute },
    WeekdayOfMonth { weekday: u8, nth: u8, start: Minute, end: Minute },
}

fn minute(t: &DateTime) -> Minute {
    t.hour() as u32 * 60 + t.minute() as u32
}

fn last_day(d: &DateTime) -> u8 {
    d.date().days_in_month() as u8
}

/// Day `n` of `d`'s month, `31` (or any day past its end) being its last day.
fn clamp_day(n: u8, d: &DateTime) -> u8 {
    n.min(last_day(d))
}

/// Whether `at` lies in a daily stretch from `start` to `end` (past midnight when
/// `end <= start`) that begins on a day `begins` accepts.
fn daily(at: &DateTime, start: Minute, end: Minute, begins: impl Fn(&DateTime) -> bool) -> bool {
    let m = minute(at);
    if start < end {
        return begins(at) && m >= start && m < end;
    }
    (begins(at) && m >= start) || (m < end && at.yesterday().is_ok_and(|y| begins(&y)))
}

/// Whether `pos` is in `[s, e)`, wrapping past the period's end when `s > e`.
fn in_period(pos: u32, s: u32, e: u32) -> bool {
    if s <= e { pos >= s && pos < e } else { pos >= s || pos < e }
}

impl Window {
    /// Whether the window is open at local time `at`.
    pub fn open(&self, at: &DateTime) -> bool {
        let weekday = at.weekday().to_monday_one_offset() as u8;
        match self {
            Window::DaysOfWeek { start, end, days } => {
                daily(at, *start, *end, |d| days.contains(&(d.weekday().to_monday_one_offset() as u8)))
            }
            Window::DaysOfMonth { start, end, days } => {
                daily(at, *start, *end, |d| days.iter().any(|n| clamp_day(*n, d) == d.day() as u8))
            }
            Window::WeeklyPeriod { start_day, start, end_day, end } => {
                let pos = (weekday as u32 - 1) * 1440 + minute(at);
                in_period(pos, (*start_day as u32 - 1) * 1440 + start, (*end_day as u32 - 1) * 1440 + end)
            }
            Window::MonthlyPeriod { start_day, start, end_day, end } => {
                let pos = (at.day() as u32 - 1) * 1440 + minute(at);
                let s = (clamp_day(*start_day, at) as u32 - 1) * 1440 + start;
                let e = (clamp_day(*end_day, at) as u32 - 1) * 1440 + end;
                in_period(pos, s, e)
            }
            Window::SpecificDate { from, to } => at >= from && at < to,
            Window::Quarterly { month, start_day, start, end_day, end } => {
                if (at.month() as u8 - 1) % 3 + 1 != *month {
                    return false;
                }
                let pos = (at.day() as u32 - 1) * 1440 + minute(at);
                let s = (clamp_day(*start_day, at) as u32 - 1) * 1440 + start;
                let e = (clamp_day(*end_day, at) as u32 - 1) * 1440 + end;
                pos >= s && pos < e
            }
            Window::WeekdayOfMonth { weekday: w, nth, start, end } => daily(at, *start, *end, |d| {
                d.weekday().to_monday_one_offset() as u8 == *w && (d.day() as u8 - 1) / 7 + 1 == *nth
            }),
        }
    }
}

fn hm(m: &Map<String, Value>, k: &str, at: &str, out: &mut Vec<FieldError>) -> Option<Minute> {
    let v = m.get(k);
    let parsed = v.and_then(Value::as_str).and_then(|s| {
        let (h, mi) = s.split_once(':')?;
        if h.len() != 2 || mi.len() != 2 {
            return None;
        }
        let (h, mi): (u32, u32) = (h.parse().ok()?, mi.parse().ok()?);
        (h < 24 && mi < 60).then_some(h * 60 + mi)
    });
    if parsed.is_none() {
        out.push(FieldError::new(
            format!("{at}.{k}"),
            "a time of day HH:MM (24h), e.g. 17:00",
            v.map_or("nothing".into(), describe),
        ));
    }
    parsed
}

fn int(
    m: &Map<String, Value>,
    k: &str,
    range: std::ops::RangeInclusive<u8>,
    at: &str,
    out: &mut Vec<FieldError>,
) -> Option<u8> {
    let v = m.get(k);
    let n = v.and_then(Value::as_u64).filter(|n| *n <= 255 && range.contains(&(*n as u8))).map(|n| n as u8);
    if n.is_none() {
        out.push(FieldError::new(
            format!("{at}.{k}"),
            format!("an integer from {} to {}", range.start(), range.end()),
            v.map_or("nothing".into(), describe),
        ));
    }
    n
}

fn days(m: &Map<String, Value>, k: &str, max: u8, at: &str, out: &mut Vec<FieldError>) -> Option<Vec<u8>> {
    let v = m.get(k);
    let list: Option<Vec<u8>> = v
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty() && a.len() <= 31)
        .and_then(|a| a.iter().map(|x| x.as_u64().filter(|n| (1..=max as u64).contains(n)).map(|n| n as u8)).collect());
    if list.is_none() {
        out.push(FieldError::new(
            format!("{at}.{k}"),
            format!("a list of 1 to 31 integers from 1 to {max}"),
            v.map_or("nothing".into(), describe),
        ));
    }
    list
}

fn date(m: &Map<String, Value>, k: &str, at: &str, out: &mut Vec<FieldError>) -> Option<Date> {
    let v = m.get(k);
    let d = v.and_then(Value::as_str).and_then(|s| {
        let p: Vec<&str> = s.split('.').collect();
        match p.as_slice() {
            [y, mo, d] if y.len() == 4 && mo.len() == 2 && d.len() == 2 => {
                Date::new(y.parse().ok()?, mo.parse().ok()?, d.parse().ok()?).ok()
            }
            _ => None,
        }
    });
    if d.is_none() {
        out.push(FieldError::new(
            format!("{at}.{k}"),
            "a date YYYY.MM.DD, e.g. 2027.06.27",
            v.map_or("nothing".into(), describe),
        ));
    }
    d
}

fn at_minute(d: Date, m: Minute) -> DateTime {
    d.to_datetime(Time::new((m / 60) as i8, (m % 60) as i8, 0, 0).unwrap_or(Time::midnight()))
}

/// One window of a request, checked (`at` names it in errors).
pub fn window(v: &Value, at: &str, out: &mut Vec<FieldError>) -> Option<Window> {
    let Some(m) = v.as_object() else {
        out.push(FieldError::new(at, "a scan window object with a type", describe(v)));
        return None;
    };
    let before = out.len();
    let w = match m.get("type").and_then(Value::as_str) {
        Some("days_of_week") => Window::DaysOfWeek {
            start: hm(m, "start_time", at, out)?,
            end: hm(m, "end_time", at, out)?,
            days: days(m, "days_of_week", 7, at, out)?,
        },
        Some("days_of_month") => Window::DaysOfMonth {
            start: hm(m, "start_time", at, out)?,
            end: hm(m, "end_time", at, out)?,
            days: days(m, "days_of_month", 31, at, out)?,
        },
        Some("weekly_period") => Window::WeeklyPeriod {
            start_day: int(m, "start_day", 1..=7, at, out)?,
            start: hm(m, "start_time", at, out)?,
            end_day: int(m, "end_day", 1..=7, at, out)?,
            end: hm(m, "end_time", at, out)?,
        },
        Some("monthly_period") => Window::MonthlyPeriod {
            start_day: int(m, "start_day", 1..=31, at, out)?,
            start: hm(m, "start_time", at, out)?,
            end_day: int(m, "end_day", 1..=31, at, out)?,
            end: hm(m, "end_time", at, out)?,
        },
        Some("quarterly") => {
            let w = Window::Quarterly {
                month: int(m, "month_of_quarter", 1..=3, at, out)?,
                start_day: int(m, "start_day", 1..=31, at, out)?,
                start: hm(m, "start_time", at, out)?,
                end_day: int(m, "end_day", 1..=31, at, out)?,
                end: hm(m, "end_time", at, out)?,
            };
            if let Window::Quarterly { start_day, start, end_day, end, .. } = &w
                && (end_day, end) <= (start_day, start)
            {
                out.push(FieldError::new(
                    format!("{at}.end_day"),
                    "an end after the start, within the month",
                    format!("{end_day}"),
                ));
                return None;
            }
            w
        }
        Some("specific_date") => {
            let start_date = date(m, "start_date", at, out)?;
            let start = hm(m, "start_time", at, out)?;
            let end_date = match m.get("end_date") {
                None | Some(Value::Null) => start_date,
                Some(_) => date(m, "end_date", at, out)?,
            };
            let end = hm(m, "end_time", at, out)?;
            let (from, to) = (at_minute(start_date, start), at_minute(end_date, end));
            if to <= from {
                out.push(FieldError::new(
                    format!("{at}.end_time"),
                    "an end after the start",
                    format!("{to} (starting {from})"),
                ));
                return None;
            }
            Window::SpecificDate { from, to }
        }
        Some("weekday_of_month") => {
            let start = hm(m, "start_time", at, out)?;
            Window::WeekdayOfMonth {
                weekday: int(m, "day_of_week", 1..=7, at, out)?,
                nth: int(m, "nth_week", 1..=4, at, out)?,
                start,
                end: match m.get("end_time") {
                    None | Some(Value::Null) => 24 * 60,
                    Some(_) => hm(m, "end_time", at, out)?,
                },
            }
        }
        other => {
            out.push(FieldError::new(
                format!("{at}.type"),
                format!("one of [{}]", WINDOW_TYPES.join(", ")),
                other.map_or("nothing".into(), |s| format!("{s:?}")),
            ));
            return None;
        }
    };
    (out.len() == before).then_some(w)
}

/// The time zone named by a schedule (`None`: UTC).
pub fn zone(name: Option<&str>) -> Option<TimeZone> {
    match name {
        None => Some(TimeZone::UTC),
        Some(n) => TimeZone::get(n).ok(),
    }
}

/// The time zones a schedule may name.
pub fn timezones() -> Vec<String> {
    let mut v: Vec<String> = jiff::tz::db().available().map(|n| n.as_str().to_string()).collect();
    v.sort();
    v
}

/// A request body checked into a schedule (`id`, `default` and stamps are the caller's).
pub fn parse(body: &Value, id: &str, default: bool) -> Result<Schedule, ValidationError> {
    let mut errors = ValidationError::default();
    let Some(o) = body.as_object() else {
        return Err(ValidationError::one(FieldError::new("body", "a JSON object (a scan schedule)", describe(body))));
    };
    // `id`, `default`, `created` and `modified` are the server's: accepted and ignored.
    const FIELDS: &[&str] = &[
        "created",
        "modified",
        "id",
        "name",
        "default",
        "enabled",
        "type_of_scan",
        "timezone",
        "scan_frequency",
        "scan_windows",
        "scan_scope",
        "scan_options",
    ];
    for k in o.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        errors.push(FieldError::new(
            k.clone(),
            format!("one of the fields [{}]", FIELDS.join(", ")),
            "an unknown field",
        ));
    }
    let text = |k: &str, allowed: &[&str], dflt: Option<&str>, errors: &mut ValidationError| -> Option<String> {
        match o.get(k) {
            None | Some(Value::Null) if dflt.is_some() => dflt.map(str::to_string),
            Some(Value::String(s)) if allowed.is_empty() && !s.trim().is_empty() && s.chars().count() <= 256 => {
                Some(s.clone())
            }
            Some(Value::String(s)) if allowed.contains(&s.as_str()) => Some(s.clone()),
            other => {
                let expected = if allowed.is_empty() {
                    "1 to 256 characters".to_string()
                } else {
                    format!("one of [{}]", allowed.join(", "))
                };
                errors.push(FieldError::new(k, expected, other.map_or("nothing".into(), describe)));
                None
            }
        }
    };
    let name = text("name", &[], None, &mut errors);
    let type_of_scan = text("type_of_scan", TYPES, Some("vulnerability"), &mut errors);
    let scan_frequency = text("scan_frequency", FREQUENCIES, Some("automatic"), &mut errors);
    let enabled = match o.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            errors.push(FieldError::new("enabled", "true or false", describe(other)));
            true
        }
    };
    let timezone = match o.get("timezone") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if zone(Some(s)).is_some() => Some(s.clone()),
        Some(other) => {
            errors.push(FieldError::new(
                "timezone",
                "a time zone of GET /scheduler/v2/timezones, e.g. Europe/London",
                describe(other),
            ));
            None
        }
    };
    let scan_windows = match o.get("scan_windows") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) if a.len() <= MAX_WINDOWS => {
            let mut out = vec![];
            for (i, w) in a.iter().enumerate() {
                window(w, &format!("scan_windows[{i}]"), &mut out);
            }
            for e in out {
                errors.push(e);
            }
            Some(a.clone())
        }
        Some(other) => {
            errors.push(FieldError::new(
                "scan_windows",
                format!("a list of at most {MAX_ITEMS} scan windows, or null"),
                describe(other),
            ));
            None
        }
    };
    let scan_scope = o.get("scan_scope").cloned().unwrap_or_else(|| serde_json::json!({"include_all_assets": true}));
    for e in check_scope(&scan_scope) {
        errors.push(e);
    }
    if let Some(opts) = o.get("scan_options")
        && !(opts.is_array() || opts.is_null())
    {
        errors.push(FieldError::new("scan_options", "a list of scan options", describe(opts)));
    }
    match (name, type_of_scan, scan_frequency) {
        (Some(name), Some(type_of_scan), Some(scan_frequency)) if errors.is_empty() => Ok(Schedule {
            id: id.into(),
            name,
            default,
            enabled,
            type_of_scan,
            timezone,
            scan_frequency,
            scan_windows,
            scan_scope,
            scan_options: o.get("scan_options").filter(|v| !v.is_null()).cloned(),
            stopped_at: None,
            created: None,
            modified: None,
        }),
        _ => Err(errors),
    }
}

fn check_scope(v: &Value) -> Vec<FieldError> {
    let mut out = vec![];
    let Some(m) = v.as_object() else {
        return vec![FieldError::new("scan_scope", "an object {include_all_assets?, include?}", describe(v))];
    };
    for k in m.keys().filter(|k| !["include_all_assets", "include", "exclude"].contains(&k.as_str())) {
        out.push(FieldError::new(
            format!("scan_scope.{k}"),
            "one of include_all_assets, include, exclude",
            "an unknown property",
        ));
    }
    if let Some(b) = m.get("include_all_assets")
        && !b.is_boolean()
    {
        out.push(FieldError::new("scan_scope.include_all_assets", "true or false", describe(b)));
    }
    for list in ["include", "exclude"] {
        let Some(items) = m.get(list) else { continue };
        let Some(a) = items.as_array().filter(|a| a.len() <= MAX_ITEMS) else {
            out.push(FieldError::new(
                format!("scan_scope.{list}"),
                format!("a list of at most {MAX_ITEMS} items"),
                describe(items),
            ));
            continue;
        };
        for (i, it) in a.iter().enumerate() {
            let at = format!("scan_scope.{list}[{i}]");
            let s = |k: &str| it.get(k).and_then(Value::as_str);
            let ok = match s("type") {
                Some("asset") => {
                    s("key").is_some_and(|k| k.starts_with('/'))
                        && s("asset_type").is_none_or(|t| ASSET_TYPES.contains(&t))
                }
                Some("cidr") => s("value").and_then(|c| c.parse::<crate::cidr::Ipv4Net>().ok()).is_some(),
                Some("ip_address") => s("value").and_then(|c| c.parse::<std::net::Ipv4Addr>().ok()).is_some(),
                Some("ip_range") => {
                    s("from_ip").and_then(|c| c.parse::<std::net::Ipv4Addr>().ok()).is_some()
                        && s("to_ip").and_then(|c| c.parse::<std::net::Ipv4Addr>().ok()).is_some()
                }
                Some("tag") => s("key").is_some_and(|k| !k.is_empty()),
                _ => false,
            };
            if !ok {
                out.push(FieldError::new(
                    at,
                    "{type: asset, asset_type, key} | {type: cidr, value} | {type: ip_address, value} | {type: ip_range, from_ip, to_ip} | {type: tag, key, value}",
                    describe(it),
                ));
            }
        }
    }
    out
}

impl Schedule {
    pub fn windows(&self) -> Vec<Window> {
        let mut ignore = vec![];
        self.scan_windows.iter().flatten().filter_map(|w| window(w, "", &mut ignore)).collect()
    }

    /// Its windows and time zone, parsed once for repeated questions.
    pub fn compile(&self) -> Compiled {
        Compiled { windows: self.windows(), tz: zone(self.timezone.as_deref()) }
    }

    /// Whether one of its windows is open at `ms` (no windows: always), ignoring stops.
    pub fn window_open(&self, ms: i64) -> bool {
        self.compile().open(ms)
    }

    /// Whether a stop made at `at` still holds at `ms`: the windows open then have not closed
    /// since (searched minute by minute, at most 93 days: no window stays open longer but an
    /// always-open schedule, which a stop shuts for one SLA period).
    pub fn stopped(&self, c: &Compiled, at: i64, ms: i64) -> bool {
        if at > ms {
            return false;
        }
        if c.windows.is_empty() {
            return ms - at < sla_ms(&self.scan_frequency);
        }
        c.closes(at, ms.min(at + STOP_HORIZON_MS)).is_none_or(|closed| closed > ms)
    }

    /// Whether scanners may run at `ms` under this schedule: enabled, a window open, and not
    /// stopped during the window open now.
    pub fn open_at(&self, ms: i64) -> bool {
        let c = self.compile();
        self.enabled && c.open(ms) && !self.stopped_at.is_some_and(|at| self.stopped(&c, at, ms))
    }

    /// When its next window opens after `ms`, within `horizon_ms` (None: none opens in it, or
    /// it is open now).
    pub fn next_open(&self, ms: i64, horizon_ms: i64) -> Option<i64> {
        if !self.enabled || self.open_at(ms) {
            return None;
        }
        let c = self.compile();
        // A stop holds until the window open at it closes: look from there.
        let mut from = ms;
        if let Some(at) = self.stopped_at.filter(|at| *at <= ms && c.open(ms)) {
            from = c.closes(at, at + STOP_HORIZON_MS)?.max(ms);
        }
        let start = from - from.rem_euclid(60_000) + 60_000;
        (0..horizon_ms / 60_000).map(|i| start + i * 60_000).find(|t| c.open(*t))
    }
}

/// How far a stop is followed.
const STOP_HORIZON_MS: i64 = 93 * 86_400_000;

/// A schedule's windows and time zone, parsed.
pub struct Compiled {
    windows: Vec<Window>,
    tz: Option<TimeZone>,
}

impl Compiled {
    /// Whether a window is open at `ms` (no windows: always; an unknown zone: never).
    pub fn open(&self, ms: i64) -> bool {
        if self.windows.is_empty() {
            return true;
        }
        let (Some(tz), Ok(ts)) = (&self.tz, jiff::Timestamp::from_millisecond(ms)) else { return false };
        let local = tz.to_datetime(ts);
        self.windows.iter().any(|w| w.open(&local))
    }

    /// The first minute from `from` to `until` at which no window is open.
    fn closes(&self, from: i64, until: i64) -> Option<i64> {
        let mut t = from;
        while t <= until {
            if !self.open(t) {
                return Some(t);
            }
            t += 60_000;
        }
        None
    }
}

/// A VPC as a schedule's scope sees it.
pub struct VpcPlace<'a> {
    pub region: &'a str,
    pub vpc: &'a str,
    pub cidr: &'a str,
    pub tags: &'a crate::snapshot::Tags,
    pub subnets: Vec<&'a str>,
    pub hosts: Vec<&'a str>,
}

impl<'a> VpcPlace<'a> {
    /// VPC `v` of region `rs` as discovery read it.
    pub fn of(region: &'a str, rs: &'a crate::snapshot::RegionSnapshot, v: &'a crate::snapshot::Vpc) -> VpcPlace<'a> {
        VpcPlace {
            region,
            vpc: &v.id,
            cidr: &v.cidr,
            tags: &v.tags,
            subnets: rs.subnets.iter().filter(|x| x.vpc_id == v.id).map(|x| x.id.as_str()).collect(),
            hosts: rs.instances.iter().filter(|i| i.vpc_id.as_deref() == Some(&v.id)).map(|i| i.id.as_str()).collect(),
        }
    }
}

fn ip(s: &str) -> Option<u32> {
    s.parse::<std::net::Ipv4Addr>().ok().map(u32::from)
}

/// A scan expedited or stopped for an asset (`expedite_scan`, `stop_scan_assets`): an
/// expedite runs the scanners reaching it until `until`; a stop shuts them from `stopped_at`
/// until the windows open then have closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScanControl {
    pub key: String,
    pub asset_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expedite_until: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<i64>,
}

/// How long an expedited scan keeps the scanners running.
pub const EXPEDITE_MS: i64 = 4 * 3_600_000;

/// The asset item of an expedite or stop request, checked: `{type: asset, asset_type, key}`
/// naming the deployment, a region, VPC (network), subnet or host.
pub fn control_item(body: &Value) -> Result<(String, String), ValidationError> {
    let s = |k: &str| body.get(k).and_then(Value::as_str);
    let mut errors = ValidationError::default();
    let asset_type = match s("asset_type") {
        Some(t @ ("deployment" | "region" | "network" | "vpc" | "subnet" | "host")) => Some(t.to_string()),
        other => {
            errors.push(FieldError::new(
                "asset_type",
                "one of [deployment, region, network, vpc, subnet, host]",
                other.map_or("nothing".into(), |o| format!("{o:?}")),
            ));
            None
        }
    };
    let key = match s("key") {
        Some(k) if k.starts_with('/') && k.len() <= 256 => Some(k.to_string()),
        other => {
            errors.push(FieldError::new(
                "key",
                "an asset key, e.g. /aws/us-east-1/vpc/vpc-0a1b2c3d",
                other.map_or("nothing".into(), |o| format!("{o:?}")),
            ));
            None
        }
    };
    if let Some(t) = s("type")
        && t != "asset"
    {
        errors.push(FieldError::new("type", "asset", format!("{t:?}")));
    }
    match (asset_type, key) {
        (Some(t), Some(k)) if errors.is_empty() => Ok((t, k)),
        _ => Err(errors),
    }
}

/// Whether one scope item (or a control's asset) reaches a host of the VPC.
pub fn reaches(it: &Value, p: &VpcPlace<'_>) -> bool {
    let vpc_key = format!("/aws/{}/vpc/{}", p.region, p.vpc);
    let region_key = format!("/aws/{}", p.region);
    let net: Option<crate::cidr::Ipv4Net> = p.cidr.parse().ok();
    let span = net.map(|n| (n.addr, n.addr | u32::MAX.checked_shr(n.prefix as u32).unwrap_or(0)));
    let meets = |lo: u32, hi: u32| span.is_some_and(|(a, b)| lo <= b && a <= hi);
    let s = |k: &str| it.get(k).and_then(Value::as_str).unwrap_or_default();
    match s("type") {
        "asset" | "" => {
            let key = s("key");
            s("asset_type") == "deployment"
                || key == region_key
                || key == vpc_key
                || key.strip_prefix(&format!("/aws/{}/", p.region)).is_some_and(|rest| {
                    rest.strip_prefix("network/").is_some_and(|x| x == p.vpc)
                        || rest.strip_prefix("subnet/").is_some_and(|x| p.subnets.contains(&x))
                        || rest.strip_prefix("host/").is_some_and(|x| p.hosts.contains(&x))
                })
        }
        "cidr" => s("value")
            .parse::<crate::cidr::Ipv4Net>()
            .ok()
            .is_some_and(|c| meets(c.addr, c.addr | u32::MAX.checked_shr(c.prefix as u32).unwrap_or(0))),
        "ip_address" => ip(s("value")).is_some_and(|a| meets(a, a)),
        "ip_range" => match (ip(s("from_ip")), ip(s("to_ip"))) {
            (Some(a), Some(b)) => meets(a.min(b), a.max(b)),
            _ => false,
        },
        "tag" => p.tags.get(s("key")).is_some_and(|v| it.get("value").and_then(Value::as_str).is_none_or(|w| w == v)),
        _ => false,
    }
}

/// The deployment's default vulnerability schedule, as it is until someone changes it:
/// every asset, no windows (scanners run whenever there is something to scan), the
/// frequency the otis `vulnerability_scan_frequency` option gives (else automatic).
pub fn default_schedule(deployment_id: &str, frequency: Option<&str>) -> Schedule {
    Schedule {
        id: default_id(deployment_id),
        name: "Default vulnerability scan".into(),
        default: true,
        enabled: true,
        type_of_scan: "vulnerability".into(),
        timezone: None,
        scan_frequency: frequency.filter(|f| FREQUENCIES.contains(f)).unwrap_or("automatic").into(),
        scan_windows: None,
        scan_scope: serde_json::json!({"include_all_assets": true}),
        scan_options: None,
        stopped_at: None,
        created: None,
        modified: None,
    }
}

/// The default schedule's id: the deployment's, so that it is the same in every listing.
pub fn default_id(deployment_id: &str) -> String {
    crate::otis::option_id(
        "default-vulnerability-schedule",
        &crate::otis::OptionScope { deployment_id: Some(deployment_id.into()), ..Default::default() },
    )
}

impl Schedule {
    /// Whether the schedule's scope reaches a host of the VPC (all assets; the deployment;
    /// its region, VPC, a subnet or host of it; a CIDR, address or range meeting its CIDR; a
    /// tag it carries), and no exclude item names the VPC or its region.
    pub fn covers(&self, p: &VpcPlace<'_>) -> bool {
        let vpc_key = format!("/aws/{}/vpc/{}", p.region, p.vpc);
        let region_key = format!("/aws/{}", p.region);
        let list = |k: &str| self.scan_scope.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
        let excluded = list("exclude").iter().any(|it| {
            let key = it.get("key").and_then(Value::as_str).unwrap_or_default();
            key == vpc_key || key == region_key
        });
        let all = self.scan_scope.get("include_all_assets").and_then(Value::as_bool).unwrap_or(false);
        !excluded && (all || list("include").iter().any(|it| reaches(it, p)))
    }
}

/// An RFC 3339 time in milliseconds since the epoch.
pub fn parse_ms(rfc3339: &str) -> Option<i64> {
    rfc3339.parse::<jiff::Timestamp>().ok().map(|t| t.as_millisecond())
}

/// Milliseconds since the epoch as RFC 3339 (UTC).
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| t.to_string()).unwrap_or_default()
}

/// One SLA period of a frequency, in milliseconds.
pub fn sla_ms(frequency: &str) -> i64 {
    let days = match frequency {
        "daily" => 1,
        "fortnightly" => 14,
        "monthly" => 30,
        "quarterly" => 91,
        "once" => 3650,
        _ => 7,
    };
    days * 86_400_000
}

#[cfg(test)]
mod tests;
