//! Security findings as garrison keeps them: what GuardDuty ("GuardDuty Finding") and
//! Inspector ("Inspector2 Finding") put on a region's default bus, read from the
//! EventBridge event (`observe`), and the finding a store keeps per deployment, updated
//! in place when the provider says it again (`Finding::update`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Guardduty,
    Inspector2,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Guardduty => "guardduty",
            Source::Inspector2 => "inspector2",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        [Source::Guardduty, Source::Inspector2].into_iter().find(|x| x.as_str() == s)
    }

    /// The EventBridge source and detail-type of its findings.
    pub fn event(self) -> (&'static str, &'static str) {
        match self {
            Source::Guardduty => ("aws.guardduty", "GuardDuty Finding"),
            Source::Inspector2 => ("aws.inspector2", "Inspector2 Finding"),
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Source::Guardduty => "gd",
            Source::Inspector2 => "in",
        }
    }
}

/// The severity in words, from the provider's number or label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] =
        [Severity::Informational, Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "informational",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|x| x.as_str().eq_ignore_ascii_case(s))
    }

    /// Its rank for ordering and filtering (0 = informational … 4 = critical).
    pub fn rank(self) -> i64 {
        self as i64
    }

    /// GuardDuty's scale: 1.0–3.9 low, 4.0–6.9 medium, 7.0–8.9 high, 9.0–10.0 critical
    /// (as its console labels them).
    pub fn of_guardduty(score: f64) -> Severity {
        match score {
            s if s >= 9.0 => Severity::Critical,
            s if s >= 7.0 => Severity::High,
            s if s >= 4.0 => Severity::Medium,
            s if s >= 1.0 => Severity::Low,
            _ => Severity::Informational,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FindingStatus {
    Active,
    /// Archived (GuardDuty) or closed/suppressed (Inspector).
    Resolved,
}

impl FindingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingStatus::Active => "active",
            FindingStatus::Resolved => "resolved",
        }
    }
}

/// What a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FindingResource {
    /// instance | security_group | vpc | … (the provider's type, in garrison's words where known)
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    /// The asset's key in the asset model (`/aws/<region>/host/<id>`, `…/vpc/<id>`) where the
    /// resource is one of its assets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
}

/// One finding as garrison keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Finding {
    /// garrison's id: the source's prefix and the provider's finding id.
    pub id: String,
    pub deployment_id: String,
    pub source: Source,
    /// The provider's own id (GuardDuty's finding id, Inspector's finding ARN).
    pub provider_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    /// The provider's number (GuardDuty 1–10, Inspector's score when it gives one).
    pub severity_score: f64,
    pub severity: Severity,
    pub aws_account: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<FindingResource>,
    /// Milliseconds since the epoch.
    pub first_seen: i64,
    pub last_seen: i64,
    /// How many times it was seen (GuardDuty's own count where it gives one, else the
    /// deliveries garrison received).
    pub count: i64,
    pub status: FindingStatus,
}

/// A finding as one event tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub id: String,
    pub source: Source,
    pub provider_id: String,
    pub kind: String,
    pub title: String,
    pub severity_score: f64,
    pub severity: Severity,
    pub aws_account: String,
    pub region: String,
    pub resource: Option<FindingResource>,
    pub first_seen: i64,
    pub last_seen: i64,
    /// The provider's count, when it keeps one (GuardDuty).
    pub count: Option<i64>,
    pub status: FindingStatus,
}

/// Why an event cannot be read as a finding (the message is set aside with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which finding source an EventBridge event is, if any.
pub fn source_of(event: &Value) -> Option<Source> {
    let (src, dt) = (event["source"].as_str()?, event["detail-type"].as_str()?);
    [Source::Guardduty, Source::Inspector2].into_iter().find(|s| s.event() == (src, dt))
}

fn text<'a>(v: &'a Value, path: &str) -> Result<&'a str, Malformed> {
    let mut cur = v;
    for p in path.split('.') {
        cur = &cur[p];
    }
    cur.as_str().filter(|s| !s.is_empty()).ok_or_else(|| Malformed(format!("field detail.{path}: expected a string")))
}

/// RFC 3339 (as AWS writes it: `2026-12-06T10:00:00Z`, `…00.123Z`) to milliseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let rest = &s[19..];
    let (frac, tz) = match rest.strip_prefix('.') {
        Some(r) => {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            let digits = &r[..n];
            let ms = format!("{digits:0<3}")[..3].parse::<i64>().ok()?;
            (ms, &r[n..])
        }
        None => (0, rest),
    };
    if tz != "Z" && tz != "+00:00" {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + frac)
}

fn time(v: &Value, path: &str) -> Result<i64, Malformed> {
    let s = text(v, path)?;
    parse_time(s).ok_or_else(|| Malformed(format!("field detail.{path}: expected an RFC 3339 time, found {s:?}")))
}

/// A provider id fit for garrison's id (and a URL): letters, digits, '-', at most 128.
fn provider_token(s: &str) -> Result<&str, Malformed> {
    if !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Ok(s)
    } else {
        Err(Malformed(format!("the finding id {s:?}: expected letters, digits and '-', at most 128")))
    }
}

fn host(region: &str, id: &str, vpc: Option<String>) -> FindingResource {
    FindingResource {
        kind: "instance".into(),
        id: id.into(),
        asset_key: Some(format!("/aws/{region}/host/{id}")),
        vpc_id: vpc,
    }
}

fn account(s: &str, field: &str) -> Result<String, Malformed> {
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s.into())
    } else {
        Err(Malformed(format!("field detail.{field}: expected a 12-digit account id, found {s:?}")))
    }
}

fn guardduty(d: &Value) -> Result<Observation, Malformed> {
    let provider_id = provider_token(text(d, "id")?)?.to_string();
    let region = text(d, "region")?.to_string();
    let score = d["severity"].as_f64().ok_or_else(|| Malformed("field detail.severity: expected a number".into()))?;
    if !(0.0..=10.0).contains(&score) {
        return Err(Malformed(format!("field detail.severity: expected 0 to 10, found {score}")));
    }
    let r = &d["resource"];
    let resource = match r["resourceType"].as_str() {
        Some("Instance") => {
            let id = text(d, "resource.instanceDetails.instanceId")?;
            let vpc = r["instanceDetails"]["networkInterfaces"][0]["vpcId"].as_str().map(str::to_string);
            Some(host(&region, id, vpc))
        }
        Some(other) => Some(FindingResource {
            kind: other.to_ascii_lowercase(),
            id: r["accessKeyDetails"]["userName"]
                .as_str()
                .or(r["s3BucketDetails"][0]["name"].as_str())
                .unwrap_or_default()
                .to_string(),
            asset_key: None,
            vpc_id: None,
        }),
        None => None,
    };
    let service = &d["service"];
    // The activity's own times where GuardDuty gives them (a bad one is named), else the
    // finding's.
    let when = |activity: &str, finding: &str, key: &str| {
        if service[key].is_null() { time(d, finding) } else { time(d, activity) }
    };
    let first_seen = when("service.eventFirstSeen", "createdAt", "eventFirstSeen")?;
    let last_seen = when("service.eventLastSeen", "updatedAt", "eventLastSeen")?;
    Ok(Observation {
        id: format!("{}-{provider_id}", Source::Guardduty.prefix()),
        source: Source::Guardduty,
        provider_id,
        kind: text(d, "type")?.to_string(),
        title: text(d, "title")?.to_string(),
        severity_score: score,
        severity: Severity::of_guardduty(score),
        aws_account: account(text(d, "accountId")?, "accountId")?,
        region,
        resource,
        first_seen,
        last_seen,
        count: service["count"].as_i64().filter(|n| *n > 0),
        status: if service["archived"].as_bool() == Some(true) {
            FindingStatus::Resolved
        } else {
            FindingStatus::Active
        },
    })
}

fn inspector(d: &Value, event_region: &str) -> Result<Observation, Malformed> {
    let arn = text(d, "findingArn")?;
    let token = arn
        .strip_prefix("arn:aws:inspector2:")
        .and_then(|rest| rest.rsplit_once("finding/"))
        .map(|(_, id)| id)
        .ok_or_else(|| {
            Malformed(format!("field detail.findingArn: expected arn:aws:inspector2:…:finding/<id>, found {arn:?}"))
        })?;
    let token = provider_token(token)?;
    let label = text(d, "severity")?;
    let severity = match label {
        "UNTRIAGED" => Severity::Informational,
        other => Severity::parse(other)
            .ok_or_else(|| Malformed(format!("field detail.severity: expected LOW, MEDIUM, HIGH, CRITICAL, INFORMATIONAL or UNTRIAGED, found {other:?}")))?,
    };
    let r = &d["resources"][0];
    let region = r["region"].as_str().unwrap_or(event_region).to_string();
    let resource = match (r["type"].as_str(), r["id"].as_str()) {
        (Some("AWS_EC2_INSTANCE"), Some(id)) => {
            Some(host(&region, id, r["details"]["awsEc2Instance"]["vpcId"].as_str().map(str::to_string)))
        }
        (Some(kind), Some(id)) => Some(FindingResource {
            kind: kind.trim_start_matches("AWS_").to_ascii_lowercase(),
            id: id.into(),
            asset_key: None,
            vpc_id: None,
        }),
        _ => None,
    };
    let status = match text(d, "status")? {
        "ACTIVE" => FindingStatus::Active,
        "CLOSED" | "SUPPRESSED" => FindingStatus::Resolved,
        other => {
            return Err(Malformed(format!(
                "field detail.status: expected ACTIVE, SUPPRESSED or CLOSED, found {other:?}"
            )));
        }
    };
    Ok(Observation {
        id: format!("{}-{token}", Source::Inspector2.prefix()),
        source: Source::Inspector2,
        provider_id: arn.to_string(),
        kind: text(d, "type")?.to_string(),
        title: text(d, "title")?.to_string(),
        severity_score: d["inspectorScore"].as_f64().unwrap_or(0.0),
        severity,
        aws_account: account(text(d, "awsAccountId")?, "awsAccountId")?,
        region,
        resource,
        first_seen: time(d, "firstObservedAt")?,
        last_seen: time(d, "lastObservedAt")?,
        count: None,
        status,
    })
}

/// The finding an EventBridge event of `source` tells.
pub fn observe(event: &Value, source: Source) -> Result<Observation, Malformed> {
    let d = &event["detail"];
    if !d.is_object() {
        return Err(Malformed("field detail: expected an object".into()));
    }
    match source {
        Source::Guardduty => guardduty(d),
        Source::Inspector2 => inspector(d, event["region"].as_str().unwrap_or_default()),
    }
}

impl Finding {
    /// A new finding of deployment `deployment_id`.
    pub fn new(deployment_id: &str, o: Observation) -> Finding {
        Finding {
            id: o.id,
            deployment_id: deployment_id.into(),
            source: o.source,
            provider_id: o.provider_id,
            kind: o.kind,
            title: o.title,
            severity_score: o.severity_score,
            severity: o.severity,
            aws_account: o.aws_account,
            region: o.region,
            resource: o.resource,
            first_seen: o.first_seen,
            last_seen: o.last_seen,
            count: o.count.unwrap_or(1),
            status: o.status,
        }
    }

    /// Said again: the provider's latest word on severity, title, resource and status; seen
    /// once more (or the provider's count); the first sighting kept.
    pub fn update(&mut self, o: Observation) {
        self.count = o.count.unwrap_or(self.count + 1).max(self.count);
        self.first_seen = self.first_seen.min(o.first_seen);
        if o.last_seen >= self.last_seen {
            self.last_seen = o.last_seen;
            self.severity_score = o.severity_score;
            self.severity = o.severity;
            self.title = o.title;
            self.kind = o.kind;
            self.resource = o.resource.or(self.resource.take());
            self.status = o.status;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    pub fn guardduty_event(id: &str, severity: f64, archived: bool, count: i64) -> Value {
        json!({"version": "0", "id": "e1", "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
            "account": "111122223333", "time": "2026-12-06T10:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {"schemaVersion": "2.0", "accountId": "111122223333", "region": "us-east-1", "partition": "aws",
                "id": id, "arn": format!("arn:aws:guardduty:us-east-1:111122223333:detector/d1/finding/{id}"),
                "type": "UnauthorizedAccess:EC2/SSHBruteForce",
                "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0123456789abcdef0",
                    "networkInterfaces": [{"vpcId": "vpc-0a1b2c3d", "subnetId": "subnet-0a1b2c3d"}]}},
                "service": {"serviceName": "guardduty", "detectorId": "d1", "archived": archived, "count": count,
                    "eventFirstSeen": "2026-12-06T09:00:00.000Z", "eventLastSeen": "2026-12-06T09:59:00.000Z"},
                "severity": severity, "createdAt": "2026-12-06T09:00:00.000Z", "updatedAt": "2026-12-06T09:59:00.000Z",
                "title": "SSH brute force against i-0123456789abcdef0", "description": "…"}})
    }

    #[test]
    fn a_guardduty_finding_is_read_with_its_asset() {
        let e = guardduty_event("6ab0c1d2e3f4a5b6c7d8e9f0a1b2c3d4", 8.0, false, 2);
        assert_eq!(source_of(&e), Some(Source::Guardduty));
        let o = observe(&e, Source::Guardduty).unwrap();
        assert_eq!(o.id, "gd-6ab0c1d2e3f4a5b6c7d8e9f0a1b2c3d4");
        assert_eq!((o.severity, o.status, o.count), (Severity::High, FindingStatus::Active, Some(2)));
        let r = o.resource.unwrap();
        assert_eq!(r.asset_key.as_deref(), Some("/aws/us-east-1/host/i-0123456789abcdef0"));
        assert_eq!(r.vpc_id.as_deref(), Some("vpc-0a1b2c3d"));
        assert_eq!(o.first_seen, parse_time("2026-12-06T09:00:00Z").unwrap());
    }

    #[test]
    fn an_inspector_finding_is_read_and_a_closed_one_is_resolved() {
        let mut e = json!({"version": "0", "id": "e2", "detail-type": "Inspector2 Finding", "source": "aws.inspector2",
            "account": "111122223333", "time": "2026-12-06T10:00:00Z", "region": "eu-west-1", "resources": [],
            "detail": {"awsAccountId": "111122223333", "description": "…",
                "findingArn": "arn:aws:inspector2:eu-west-1:111122223333:finding/0f1e2d3c4b5a69788796a5b4c3d2e1f0",
                "firstObservedAt": "2026-12-06T08:00:00.000Z", "lastObservedAt": "2026-12-06T09:00:00.000Z",
                "inspectorScore": 9.8, "severity": "CRITICAL", "status": "ACTIVE", "title": "CVE-2026-0001 - openssl",
                "type": "PACKAGE_VULNERABILITY",
                "resources": [{"id": "i-0fedcba9876543210", "type": "AWS_EC2_INSTANCE", "region": "eu-west-1",
                    "details": {"awsEc2Instance": {"vpcId": "vpc-0f0f0f0f"}}}]}});
        let o = observe(&e, source_of(&e).unwrap()).unwrap();
        assert_eq!(o.id, "in-0f1e2d3c4b5a69788796a5b4c3d2e1f0");
        assert_eq!((o.severity, o.severity_score), (Severity::Critical, 9.8));
        assert_eq!(o.resource.as_ref().unwrap().asset_key.as_deref(), Some("/aws/eu-west-1/host/i-0fedcba9876543210"));
        e["detail"]["status"] = json!("CLOSED");
        assert_eq!(observe(&e, Source::Inspector2).unwrap().status, FindingStatus::Resolved);
        e["detail"]["severity"] = json!("SEVERE");
        assert!(observe(&e, Source::Inspector2).unwrap_err().0.contains("detail.severity"));
    }

    #[test]
    fn the_same_finding_again_counts_and_an_archived_one_resolves() {
        let first = observe(&guardduty_event("abc", 5.0, false, 0), Source::Guardduty).unwrap();
        let mut f = Finding::new("D", first.clone());
        assert_eq!((f.count, f.severity), (1, Severity::Medium));
        f.update(first.clone());
        f.update(first);
        assert_eq!(f.count, 3, "delivered three times, no count from the provider");
        f.update(observe(&guardduty_event("abc", 7.5, true, 0), Source::Guardduty).unwrap());
        assert_eq!((f.count, f.status, f.severity), (4, FindingStatus::Resolved, Severity::High));
    }

    #[test]
    fn malformed_findings_say_which_field() {
        let mut e = guardduty_event("abc", 5.0, false, 1);
        e["detail"]["id"] = json!("../../etc");
        assert!(observe(&e, Source::Guardduty).unwrap_err().0.contains("finding id"));
        let mut e = guardduty_event("abc", 11.0, false, 1);
        assert!(observe(&e, Source::Guardduty).unwrap_err().0.contains("detail.severity"));
        e["detail"] = json!("x");
        assert!(observe(&e, Source::Guardduty).unwrap_err().0.contains("field detail"));
        let mut e = guardduty_event("abc", 5.0, false, 1);
        e["detail"]["service"]["eventFirstSeen"] = json!("yesterday");
        e["detail"]["createdAt"] = json!(null);
        assert!(observe(&e, Source::Guardduty).unwrap_err().0.contains("RFC 3339"));
    }

    #[test]
    fn times_are_read_as_aws_writes_them() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("2026-12-06T10:00:00.5Z"), Some(1_796_551_200_500));
        assert_eq!(parse_time("2026-12-06T10:00:00+00:00"), Some(1_796_551_200_000));
        assert_eq!(parse_time("2026-13-06T10:00:00Z"), None);
        assert_eq!(parse_time("2026-12-06 10:00:00Z"), None);
    }

    proptest! {
        #[test]
        fn observing_any_event_never_panics(s in "\\PC{0,200}", score in -5.0f64..20.0) {
            let mut e = guardduty_event("abc", score, false, 1);
            e["detail"]["title"] = json!(s.clone());
            let _ = observe(&e, Source::Guardduty);
            e["detail"]["id"] = json!(s.clone());
            let _ = observe(&e, Source::Guardduty);
            let _ = parse_time(&s);
            let _ = observe(&json!({"detail": {"findingArn": s}}), Source::Inspector2);
        }
    }
}
