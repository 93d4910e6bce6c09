//! An organization enrollment's lifecycle feed in the management account: an SQS queue, an
//! EventBridge rule on the default bus matching the lifecycle events (in us-east-1, where
//! Organizations delivers them), and the queue policy statement admitting that rule only.
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
}

fn absent(e: &CloudError) -> bool {
    crate::writes::absent(&e.code) || e.code.contains("DoesNotExist")
}

/// Makes (or finds) the queue, the rule and its target, and the queue's statement.
pub async fn ensure(aws: &Aws, journal: &Journal, name: &str, pattern: &str) -> Result<Feed, CloudError> {
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
    let ev = aws.events();
    let rule = ev.describe_rule().name(name).send().await;
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
                .event_pattern(pattern)
                .state(RuleState::Enabled)
                .description("garrison: organization lifecycle events for an enrollment");
            let out = journal.write(&aws, KEY, "events", "PutRule", name, put.send()).await?;
            out.rule_arn().unwrap_or_default().to_string()
        }
    };
    let targets = ev
        .list_targets_by_rule()
        .rule(name)
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("events", "ListTargetsByRule", e))?;
    if !targets.targets().iter().any(|t| t.id() == TARGET_ID && t.arn() == queue_arn) {
        let target = Target::builder()
            .id(TARGET_ID)
            .arn(&queue_arn)
            .build()
            .map_err(|e| CloudError::terminal("events", "PutTargets", "Build", &e.to_string()))?;
        journal
            .write(&aws, KEY, "events", "PutTargets", name, ev.put_targets().rule(name).targets(target).send())
            .await?;
    }
    let statement = feed_statement(json!(queue_arn), json!(rule_arn));
    let has = policy.as_deref().is_some_and(|p| p.contains(FEED_SID) && p.contains(&rule_arn));
    if !has {
        let doc = with_feed_statement(policy.as_deref(), Some(statement)).to_string();
        let set = sqs.set_queue_attributes().queue_url(&queue_url).attributes(QueueAttributeName::Policy, doc);
        journal.write(&aws, KEY, "sqs", "SetQueueAttributes", &queue_url, set.send()).await?;
    }
    Ok(Feed { queue_url, rule_arn })
}

/// Takes the rule (its target first) and the queue away; what is already gone is fine.
pub async fn remove(aws: &Aws, journal: &Journal, name: &str) -> Result<(), CloudError> {
    let aws = aws.in_region(REGION);
    let ev = aws.events();
    let ok = |r: Result<(), CloudError>| match r {
        Err(e) if absent(&e) => Ok(()),
        other => other,
    };
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
