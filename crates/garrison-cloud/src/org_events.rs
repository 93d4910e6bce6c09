//! An organization enrollment's lifecycle feed in the management account: an SQS queue, an
//! EventBridge rule on the default bus matching the lifecycle events (in us-east-1, where
//! Organizations delivers them), and the queue policy statement admitting that rule only.
//! With an organization feed, also a bus of the same name whose policy admits principals of
//! the organization only: the enrolled accounts' feed rules put their management events
//! there, and its rule sends them to the same queue (one queue for the organization).
//! Each `ensure` reads first and writes only what is missing or different, through the
//! enrollment's write-ahead journal; `remove` takes it all away.

use aws_sdk_eventbridge::types::{RuleState, Target};
use aws_sdk_sqs::types::QueueAttributeName;
use garrison_model::protection::{FEED_SID, feed_statement, with_feed_statement};
use serde_json::json;

use crate::writes::Journal;
use crate::{Aws, CloudError};

/// Organizations publishes its events in us-east-1.
pub const REGION: &str = "us-east-1";
const TARGET_ID: &str = "garrison";
const KEY: &str = "organization/lifecycle";

/// Where the lifecycle events of an enrollment arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    pub queue_url: String,
    pub rule_arn: String,
    /// The organization's feed bus, when asked for.
    pub bus_arn: Option<String>,
}

/// The organization feed to make beside the lifecycle rule: the organization's id (the
/// bus admits its principals only) and the pattern of the events garrison acts on.
pub struct OrgFeed<'a> {
    pub organization_id: &'a str,
    pub pattern: &'a str,
}

/// The statement id of the bus policy.
pub const BUS_SID: &str = "GarrisonOrganizationAccounts";

/// The bus policy: `events:PutEvents` for principals of the organization only.
pub fn bus_policy(bus_arn: &str, organization_id: &str) -> serde_json::Value {
    json!({"Version": "2012-10-17", "Statement": [{
        "Sid": BUS_SID, "Effect": "Allow", "Principal": "*", "Action": "events:PutEvents", "Resource": bus_arn,
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": organization_id}}}]})
}

/// The rule `name` (on `bus`, or the default bus) with `pattern`, sending to `queue_arn`:
/// its ARN; written only where missing or different.
async fn ensure_rule(
    aws: &Aws,
    journal: &Journal,
    name: &str,
    bus: Option<&str>,
    pattern: &str,
    queue_arn: &str,
) -> Result<String, CloudError> {
    let ev = aws.events();
    let bus_name = bus.map(str::to_string);
    let rule = ev.describe_rule().name(name).set_event_bus_name(bus_name.clone()).send().await;
    let rule_arn = match rule {
        Ok(r) if r.event_pattern() == Some(pattern) && r.state() == Some(&RuleState::Enabled) => {
            r.arn().unwrap_or_default().to_string()
        }
        other => {
            if let Err(e) = other {
                let e = CloudError::from_sdk("events", "DescribeRule", e);
                if !absent(&e) {
                    return Err(e);
                }
            }
            let put = ev
                .put_rule()
                .name(name)
                .set_event_bus_name(bus_name.clone())
                .event_pattern(pattern)
                .state(RuleState::Enabled)
                .description("garrison: organization events for an enrollment");
            let out = journal.write(aws, KEY, "events", "PutRule", name, put.send()).await?;
            out.rule_arn().unwrap_or_default().to_string()
        }
    };
    let targets = ev
        .list_targets_by_rule()
        .rule(name)
        .set_event_bus_name(bus_name.clone())
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("events", "ListTargetsByRule", e))?;
    if !targets.targets().iter().any(|t| t.id() == TARGET_ID && t.arn() == queue_arn) {
        let target = Target::builder()
            .id(TARGET_ID)
            .arn(queue_arn)
            .build()
            .map_err(|e| CloudError::terminal("events", "PutTargets", "Build", &e.to_string()))?;
        let put = ev.put_targets().rule(name).set_event_bus_name(bus_name).targets(target).send();
        journal.write(aws, KEY, "events", "PutTargets", name, put).await?;
    }
    Ok(rule_arn)
}

/// The organization's bus `name` with its policy: its ARN.
async fn ensure_bus(aws: &Aws, journal: &Journal, name: &str, organization_id: &str) -> Result<String, CloudError> {
    let ev = aws.events();
    let (arn, policy) = match ev.describe_event_bus().name(name).send().await {
        Ok(b) => (b.arn().unwrap_or_default().to_string(), b.policy().map(str::to_string)),
        Err(e) => {
            let e = CloudError::from_sdk("events", "DescribeEventBus", e);
            if !absent(&e) {
                return Err(e);
            }
            let made = journal
                .write(aws, KEY, "events", "CreateEventBus", name, ev.create_event_bus().name(name).send())
                .await?;
            (made.event_bus_arn().unwrap_or_default().to_string(), None)
        }
    };
    let want = bus_policy(&arn, organization_id);
    let have: Option<serde_json::Value> = policy.as_deref().and_then(|p| serde_json::from_str(p).ok());
    let holds = have.as_ref().and_then(|h| h["Statement"].as_array()).is_some_and(|st| {
        st.iter().any(|s| s["Sid"] == BUS_SID && s["Condition"] == want["Statement"][0]["Condition"])
    });
    if !holds {
        let put = ev.put_permission().event_bus_name(name).policy(want.to_string()).send();
        journal.write(aws, KEY, "events", "PutPermission", name, put).await?;
    }
    Ok(arn)
}

fn absent(e: &CloudError) -> bool {
    crate::writes::absent(&e.code) || e.code.contains("DoesNotExist")
}

/// A removal's outcome, with "already gone" as done.
fn ok(r: Result<(), CloudError>) -> Result<(), CloudError> {
    match r {
        Err(e) if absent(&e) => Ok(()),
        other => other,
    }
}

/// Makes (or finds) the queue, the rule and its target, the organization's bus and its
/// rule when `org` asks for them, and the queue's statement admitting those rules.
pub async fn ensure(
    aws: &Aws,
    journal: &Journal,
    name: &str,
    pattern: &str,
    org: Option<OrgFeed<'_>>,
) -> Result<Feed, CloudError> {
    let aws = aws.in_region(REGION);
    let sqs = aws.sqs();
    let queue_url = match sqs.get_queue_url().queue_name(name).send().await {
        Ok(o) => o.queue_url().unwrap_or_default().to_string(),
        Err(e) => {
            let e = CloudError::from_sdk("sqs", "GetQueueUrl", e);
            if !absent(&e) {
                return Err(e);
            }
            let made =
                sqs.create_queue().queue_name(name).attributes(QueueAttributeName::MessageRetentionPeriod, "1209600");
            let out = journal.write(&aws, KEY, "sqs", "CreateQueue", name, made.send()).await?;
            out.queue_url().unwrap_or_default().to_string()
        }
    };
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .attribute_names(QueueAttributeName::Policy)
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("sqs", "GetQueueAttributes", e))?;
    let attr = |k: QueueAttributeName| attrs.attributes().and_then(|a| a.get(&k)).cloned();
    let queue_arn = attr(QueueAttributeName::QueueArn).unwrap_or_default();
    let policy = attr(QueueAttributeName::Policy);
    let rule_arn = ensure_rule(&aws, journal, name, None, pattern, &queue_arn).await?;
    let (bus_arn, bus_rule) = match &org {
        Some(o) => {
            let bus = ensure_bus(&aws, journal, name, o.organization_id).await?;
            (Some(bus), Some(ensure_rule(&aws, journal, name, Some(name), o.pattern, &queue_arn).await?))
        }
        // Asked for no more: its bus goes (the accounts' rules were moved back first).
        None => {
            remove_bus(&aws, journal, name).await?;
            (None, None)
        }
    };
    let rules: Vec<String> = std::iter::once(rule_arn.clone()).chain(bus_rule).collect();
    // One rule: its ARN as a string, as a statement of one source has always been written.
    let sources = if rules.len() == 1 { json!(rules[0]) } else { json!(rules) };
    let statement = feed_statement(json!(queue_arn), sources);
    let have: Option<serde_json::Value> = policy.as_deref().and_then(|p| serde_json::from_str(p).ok());
    let has = have
        .as_ref()
        .and_then(|h| h["Statement"].as_array())
        .is_some_and(|st| st.iter().any(|s| s["Sid"] == FEED_SID && s["Condition"] == statement["Condition"]));
    if !has {
        let doc = with_feed_statement(policy.as_deref(), Some(statement)).to_string();
        let set = sqs.set_queue_attributes().queue_url(&queue_url).attributes(QueueAttributeName::Policy, doc);
        journal.write(&aws, KEY, "sqs", "SetQueueAttributes", &queue_url, set.send()).await?;
    }
    Ok(Feed { queue_url, rule_arn, bus_arn })
}

/// The organization's bus `name` and its rule, if there (`aws` in `REGION`).
async fn remove_bus(aws: &Aws, journal: &Journal, name: &str) -> Result<(), CloudError> {
    let ev = aws.events();
    if ev.describe_event_bus().name(name).send().await.is_err() {
        return Ok(());
    }
    if ev.describe_rule().name(name).event_bus_name(name).send().await.is_ok() {
        let rm = ev.remove_targets().rule(name).event_bus_name(name).ids(TARGET_ID).send();
        ok(journal.write(aws, KEY, "events", "RemoveTargets", name, rm).await.map(|_| ()))?;
        let del = ev.delete_rule().name(name).event_bus_name(name).send();
        ok(journal.write(aws, KEY, "events", "DeleteRule", name, del).await.map(|_| ()))?;
    }
    let del = ev.delete_event_bus().name(name).send();
    ok(journal.write(aws, KEY, "events", "DeleteEventBus", name, del).await.map(|_| ()))
}

/// Takes the rules (their targets first), the organization's bus and the queue away; what
/// is already gone is fine.
pub async fn remove(aws: &Aws, journal: &Journal, name: &str) -> Result<(), CloudError> {
    let aws = aws.in_region(REGION);
    let ev = aws.events();
    remove_bus(&aws, journal, name).await?;
    if ev.describe_rule().name(name).send().await.is_ok() {
        ok(journal
            .write(&aws, KEY, "events", "RemoveTargets", name, ev.remove_targets().rule(name).ids(TARGET_ID).send())
            .await
            .map(|_| ()))?;
        ok(journal
            .write(&aws, KEY, "events", "DeleteRule", name, ev.delete_rule().name(name).send())
            .await
            .map(|_| ()))?;
    }
    if let Ok(q) = aws.sqs().get_queue_url().queue_name(name).send().await {
        let url = q.queue_url().unwrap_or_default().to_string();
        ok(journal
            .write(&aws, KEY, "sqs", "DeleteQueue", &url, aws.sqs().delete_queue().queue_url(&url).send())
            .await
            .map(|_| ()))?;
    }
    Ok(())
}
