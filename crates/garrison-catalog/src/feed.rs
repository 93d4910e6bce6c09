//! The event feed's rule pattern: the CloudTrail management events garrison acts on, as
//! EventBridge delivers them ("AWS API Call via CloudTrail" from each service's `aws.*`
//! source). Rendered from the collector's own table (`garrison_trail::acted_on`), once for
//! automatic mode's rules and manual mode's CloudFormation alike.

use std::collections::BTreeSet;

use serde_json::{Value, json};

/// EventBridge's limit on a rule's pattern (PutRule `EventPattern`, 4,096 characters).
pub const PATTERN_LIMIT: usize = 4096;

pub fn pattern_value() -> Value {
    let mut sources = BTreeSet::new();
    let mut event_sources = BTreeSet::new();
    let mut names = BTreeSet::new();
    for (event_source, name) in garrison_trail::acted_on() {
        let service = event_source.trim_end_matches(".amazonaws.com");
        sources.insert(format!("aws.{service}"));
        event_sources.insert(event_source);
        names.insert(name);
    }
    json!({
        "source": sources,
        "detail-type": [garrison_trail::message::API_CALL],
        "detail": {"eventSource": event_sources, "eventName": names},
    })
}

/// The pattern as PutRule and `AWS::Events::Rule` take it.
pub fn pattern() -> String {
    pattern_value().to_string()
}

/// The findings garrison keeps, as EventBridge delivers them on each region's default bus.
pub fn findings_pattern() -> String {
    use garrison_model::finding::Source;
    let (sources, kinds): (Vec<&str>, Vec<&str>) =
        [Source::Guardduty, Source::Inspector2].into_iter().map(|s| s.event()).unzip();
    json!({"source": sources, "detail-type": kinds}).to_string()
}

/// The pattern of the rule on garrison's own bus (which only garrison's rules put events
/// on): every source either of the region rules forwards.
pub fn bus_pattern() -> String {
    let mut sources: BTreeSet<String> = BTreeSet::new();
    for p in [pattern_value(), serde_json::from_str(&findings_pattern()).unwrap_or(Value::Null)] {
        for s in p["source"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            sources.insert(s.to_string());
        }
    }
    json!({"source": sources}).to_string()
}

/// The organization lifecycle events an enrollment acts on, as EventBridge delivers them in
/// the management account: accounts created, moved, removed or closed (Organizations), and
/// accounts made or updated by Control Tower's account factory.
pub const LIFECYCLE_EVENTS: &[(&str, &str)] = &[
    ("aws.organizations", "CreateAccountResult"),
    ("aws.organizations", "MoveAccount"),
    ("aws.organizations", "RemoveAccountFromOrganization"),
    ("aws.organizations", "CloseAccount"),
    ("aws.organizations", "AcceptHandshake"),
    ("aws.controltower", "CreateManagedAccount"),
    ("aws.controltower", "UpdateManagedAccount"),
];

/// The pattern of an enrollment's lifecycle rule.
pub fn lifecycle_pattern() -> String {
    let sources: BTreeSet<&str> = LIFECYCLE_EVENTS.iter().map(|(s, _)| *s).collect();
    let names: BTreeSet<&str> = LIFECYCLE_EVENTS.iter().map(|(_, n)| *n).collect();
    json!({
        "source": sources,
        "detail-type": ["AWS API Call via CloudTrail", "AWS Service Event via CloudTrail"],
        "detail": {"eventName": names},
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_names_every_event_acted_on_and_fits_a_rule() {
        let p = pattern_value();
        for (source, name) in garrison_trail::acted_on() {
            assert!(p["detail"]["eventName"].as_array().unwrap().iter().any(|n| n == name), "{name}");
            assert!(p["detail"]["eventSource"].as_array().unwrap().iter().any(|s| s == source), "{source}");
            let short = format!("aws.{}", source.trim_end_matches(".amazonaws.com"));
            assert!(p["source"].as_array().unwrap().iter().any(|s| *s == short), "{short}");
        }
        assert_eq!(p["detail-type"], json!(["AWS API Call via CloudTrail"]));
        assert!(pattern().len() < PATTERN_LIMIT, "{} characters", pattern().len());
        // Stable: the same text every time (rules are compared by it).
        assert_eq!(pattern(), pattern());
    }

    #[test]
    fn findings_reach_the_bus_and_its_rule_passes_both_kinds() {
        let f: Value = serde_json::from_str(&findings_pattern()).unwrap();
        assert_eq!(f["source"], json!(["aws.guardduty", "aws.inspector2"]));
        assert_eq!(f["detail-type"], json!(["GuardDuty Finding", "Inspector2 Finding"]));
        let bus: Value = serde_json::from_str(&bus_pattern()).unwrap();
        let sources = bus["source"].as_array().unwrap();
        for s in pattern_value()["source"].as_array().unwrap().iter().chain(f["source"].as_array().unwrap()) {
            assert!(sources.contains(s), "{s}");
        }
        assert!(bus_pattern().len() < PATTERN_LIMIT);
    }

    #[test]
    fn the_lifecycle_pattern_names_each_event_and_its_source() {
        let p: Value = serde_json::from_str(&lifecycle_pattern()).unwrap();
        for (source, name) in LIFECYCLE_EVENTS {
            assert!(p["source"].as_array().unwrap().iter().any(|s| s == source), "{source}");
            assert!(p["detail"]["eventName"].as_array().unwrap().iter().any(|n| n == name), "{name}");
        }
        assert_eq!(p["detail-type"], json!(["AWS API Call via CloudTrail", "AWS Service Event via CloudTrail"]));
    }
}
