//! What arrives on the audit queue: an SNS envelope around an S3 event notification (the
//! bucket notifies the topic), an SNS envelope around CloudTrail's own notification (a trail
//! with an SNS topic), a raw S3 event (raw message delivery, or S3 → SQS directly) — each
//! names log objects, and only CloudTrail log files are worth fetching — or an EventBridge
//! event forwarded by the event feed, whose `detail` is one CloudTrail record.

use garrison_model::error::describe;
use serde::Deserialize;
use serde_json::Value;

/// One object a message names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
}

/// What a message body means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// CloudTrail log files to read (others in the bucket — digests, Config, flow logs — left out).
    Logs(Vec<ObjectRef>),
    /// One CloudTrail record delivered by EventBridge (`detail-type` "AWS API Call via
    /// CloudTrail"): `detail` is the record's JSON, read by the same parser as a log file's.
    Event { id: String, detail: String },
    /// A GuardDuty or Inspector finding (its whole EventBridge event, read by
    /// `garrison_model::finding::observe`).
    Finding { source: garrison_model::finding::Source, event: Value },
    /// Well-formed and nothing to do (S3's test event, a delete, only non-CloudTrail objects).
    Ignore(&'static str),
}

/// Why a body cannot be used; the message is set aside with this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Envelopes inside envelopes are not something AWS sends; two levels is the most.
const MAX_DEPTH: usize = 2;

pub fn parse(body: &str) -> Result<Message, Malformed> {
    parse_at(body, 0)
}

fn parse_at(body: &str, depth: usize) -> Result<Message, Malformed> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| Malformed(format!("message body is not JSON: expected an object, {e}")))?;
    let Value::Object(o) = &v else {
        return Err(Malformed(format!("message body: expected a JSON object, found {}", describe(&v))));
    };
    if o.get("Type").and_then(Value::as_str) == Some("Notification") {
        if depth >= MAX_DEPTH {
            return Err(Malformed("SNS envelope nested too deeply".into()));
        }
        let inner = o
            .get("Message")
            .and_then(Value::as_str)
            .ok_or_else(|| Malformed("SNS envelope: field Message: expected a string".into()))?;
        return parse_at(inner, depth + 1);
    }
    if matches!(o.get("Type").and_then(Value::as_str), Some("SubscriptionConfirmation" | "UnsubscribeConfirmation")) {
        return Ok(Message::Ignore("SNS subscription confirmation"));
    }
    if o.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Message::Ignore("S3 test event"));
    }
    if let Some(records) = o.get("Records") {
        return s3_event(records);
    }
    if let Some(kind) = o.get("detail-type") {
        return eventbridge(o, kind);
    }
    if o.contains_key("s3Bucket") || o.contains_key("s3ObjectKey") {
        return cloudtrail_notification(&v);
    }
    let keys: Vec<&str> = o.keys().map(String::as_str).take(5).collect();
    Err(Malformed(format!(
        "message body: expected an SNS envelope, an S3 event (Records), a CloudTrail notification (s3Bucket, s3ObjectKey) or an EventBridge event (detail-type, detail), found an object with keys {keys:?}"
    )))
}

/// The detail type of the management events CloudTrail hands to EventBridge.
pub const API_CALL: &str = "AWS API Call via CloudTrail";

fn eventbridge(o: &serde_json::Map<String, Value>, kind: &Value) -> Result<Message, Malformed> {
    let Value::String(kind) = kind else {
        return Err(Malformed(format!(
            "EventBridge event: field detail-type: expected a string, found {}",
            describe(kind)
        )));
    };
    if kind != API_CALL {
        let event = Value::Object(o.clone());
        if let Some(source) = garrison_model::finding::source_of(&event) {
            return Ok(Message::Finding { source, event });
        }
        return Ok(Message::Ignore("an EventBridge event garrison does not act on"));
    }
    let detail = o.get("detail").ok_or_else(|| Malformed("EventBridge event: field detail: missing".into()))?;
    if !detail.is_object() {
        return Err(Malformed(format!(
            "EventBridge event: field detail: expected the CloudTrail record as an object, found {}",
            describe(detail)
        )));
    }
    let id = o.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    Ok(Message::Event { id, detail: detail.to_string() })
}

#[derive(Deserialize)]
struct S3Record {
    #[serde(rename = "eventName")]
    event_name: Option<String>,
    s3: S3Entity,
}

#[derive(Deserialize)]
struct S3Entity {
    bucket: S3Bucket,
    object: S3Object,
}

#[derive(Deserialize)]
struct S3Bucket {
    name: String,
}

#[derive(Deserialize)]
struct S3Object {
    key: String,
}

fn s3_event(records: &Value) -> Result<Message, Malformed> {
    let Value::Array(list) = records else {
        return Err(Malformed(format!("S3 event: field Records: expected an array, found {}", describe(records))));
    };
    let mut out = vec![];
    for (n, r) in list.iter().enumerate() {
        let r: S3Record = serde_json::from_value(r.clone()).map_err(|e| {
            Malformed(format!("S3 event: Records[{n}]: expected s3.bucket.name and s3.object.key, {e}"))
        })?;
        if r.event_name.as_deref().is_some_and(|e| !e.starts_with("ObjectCreated")) {
            continue;
        }
        let key = url_decode(&r.s3.object.key)
            .ok_or_else(|| Malformed(format!("S3 event: Records[{n}].s3.object.key: bad URL encoding")))?;
        if is_trail_log(&key) {
            out.push(ObjectRef { bucket: r.s3.bucket.name, key });
        }
    }
    Ok(if out.is_empty() { Message::Ignore("no CloudTrail log file in the event") } else { Message::Logs(out) })
}

fn cloudtrail_notification(v: &Value) -> Result<Message, Malformed> {
    let bucket = v
        .get("s3Bucket")
        .and_then(Value::as_str)
        .ok_or_else(|| Malformed("CloudTrail notification: field s3Bucket: expected a string".into()))?;
    let keys = v
        .get("s3ObjectKey")
        .and_then(Value::as_array)
        .ok_or_else(|| Malformed("CloudTrail notification: field s3ObjectKey: expected an array of strings".into()))?;
    let mut out = vec![];
    for (n, k) in keys.iter().enumerate() {
        let k = k.as_str().ok_or_else(|| {
            Malformed(format!("CloudTrail notification: s3ObjectKey[{n}]: expected a string, found {}", describe(k)))
        })?;
        if is_trail_log(k) {
            out.push(ObjectRef { bucket: bucket.to_string(), key: k.to_string() });
        }
    }
    Ok(if out.is_empty() { Message::Ignore("no CloudTrail log file in the notification") } else { Message::Logs(out) })
}

/// CloudTrail writes `AWSLogs/<account>/CloudTrail/<region>/…/<name>.json.gz`; digests go
/// under `CloudTrail-Digest/`, Config and flow logs under their own prefixes.
pub fn is_trail_log(key: &str) -> bool {
    key.contains("/CloudTrail/") && key.ends_with(".json.gz")
}

/// S3 event keys are form-encoded: `+` for space, `%XX` for the rest.
fn url_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/30/111122223333_CloudTrail_us-east-1_20261130T1200Z_abc.json.gz";

    fn s3_event(key: &str) -> Value {
        json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {"key": key, "size": 10}}}]})
    }

    fn sns(inner: &Value) -> String {
        json!({"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": inner.to_string()})
            .to_string()
    }

    #[test]
    fn the_three_shapes_name_the_same_object() {
        let want = Message::Logs(vec![ObjectRef { bucket: "b".into(), key: KEY.into() }]);
        assert_eq!(parse(&sns(&s3_event(KEY))).unwrap(), want);
        assert_eq!(parse(&s3_event(KEY).to_string()).unwrap(), want);
        let ct = json!({"s3Bucket": "b", "s3ObjectKey": [KEY]});
        assert_eq!(parse(&sns(&ct)).unwrap(), want);
    }

    #[test]
    fn other_objects_and_events_are_ignored_not_rejected() {
        let digest = "AWSLogs/1/CloudTrail-Digest/us-east-1/2026/11/30/x.json.gz";
        assert!(matches!(parse(&sns(&s3_event(digest))).unwrap(), Message::Ignore(_)));
        let config = "AWSLogs/1/Config/us-east-1/2026/11/30/x.json.gz";
        assert!(matches!(parse(&s3_event(config).to_string()).unwrap(), Message::Ignore(_)));
        let test = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"});
        assert!(matches!(parse(&sns(&test)).unwrap(), Message::Ignore(_)));
        let mut removed = s3_event(KEY);
        removed["Records"][0]["eventName"] = json!("ObjectRemoved:Delete");
        assert!(matches!(parse(&removed.to_string()).unwrap(), Message::Ignore(_)));
    }

    #[test]
    fn an_eventbridge_event_carries_its_cloudtrail_record() {
        let record = json!({"eventVersion": "1.08", "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
            "awsRegion": "eu-west-1", "eventID": "e-1"});
        let event = json!({"version": "0", "id": "ev-1", "detail-type": API_CALL, "source": "aws.ec2",
            "account": "111122223333", "time": "2026-12-06T10:00:00Z", "region": "eu-west-1", "resources": [],
            "detail": record});
        let Message::Event { id, detail } = parse(&event.to_string()).unwrap() else { panic!() };
        assert_eq!(id, "ev-1");
        assert_eq!(serde_json::from_str::<Value>(&detail).unwrap(), record);
        let finding = json!({"detail-type": "GuardDuty Finding", "source": "aws.guardduty", "detail": {}});
        assert!(matches!(
            parse(&finding.to_string()).unwrap(),
            Message::Finding { source: garrison_model::finding::Source::Guardduty, .. }
        ));
        let other = json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}});
        assert!(matches!(parse(&other.to_string()).unwrap(), Message::Ignore(_)));
        for (body, needle) in [
            (json!({"detail-type": API_CALL}), "field detail: missing"),
            (json!({"detail-type": API_CALL, "detail": "x"}), "found string \"x\""),
            (json!({"detail-type": 3, "detail": {}}), "detail-type: expected a string"),
        ] {
            let e = parse(&body.to_string()).unwrap_err();
            assert!(e.0.contains(needle), "{body}: {e}");
        }
    }

    #[test]
    fn keys_are_url_decoded() {
        let enc = "AWSLogs/1/CloudTrail/us-east-1/a+b%3Dc.json.gz";
        let Message::Logs(v) = parse(&s3_event(enc).to_string()).unwrap() else { panic!() };
        assert_eq!(v[0].key, "AWSLogs/1/CloudTrail/us-east-1/a b=c.json.gz");
        assert!(parse(&s3_event("AWSLogs/1/CloudTrail/x%zz.json.gz").to_string()).is_err());
    }

    #[test]
    fn malformed_bodies_say_what_was_expected() {
        for (body, needle) in [
            ("not json", "not JSON"),
            ("[1,2]", "found an array"),
            (r#"{"Type":"Notification","Message":5}"#, "field Message"),
            (r#"{"hello":1}"#, "found an object with keys [\"hello\"]"),
            (r#"{"Records":{}}"#, "field Records: expected an array"),
            (r#"{"Records":[{"s3":{}}]}"#, "Records[0]"),
            (r#"{"s3Bucket":"b","s3ObjectKey":"k"}"#, "s3ObjectKey"),
            (r#"{"s3Bucket":"b","s3ObjectKey":[1]}"#, "s3ObjectKey[0]"),
        ] {
            let e = parse(body).unwrap_err();
            assert!(e.0.contains(needle), "{body}: {e}");
        }
        // An envelope in an envelope in an envelope.
        let deep = sns(&json!({"Type": "Notification", "Message": sns(&s3_event(KEY))}));
        assert!(parse(&deep).unwrap_err().0.contains("nested"));
    }
}
