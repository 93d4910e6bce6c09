//! The event feed: EventBridge rules on each in-scope region's default bus forward the
//! management events garrison acts on to one bus of garrison's, whose rule sends them to
//! the audit queue. From another region a rule needs a role to put events on that bus;
//! the queue's policy admits that one rule.

use aws_sdk_eventbridge::types::{Tag, Target};
use garrison_model::protection::{event_role_policy, event_role_trust, feed_statement, with_feed_statement};
use serde_json::json;

use super::{Created, Ctx, absent, gone_ok};
use crate::CloudError;

/// The one target id of every rule garrison owns.
const TARGET_ID: &str = "garrison";
const ROLE_POLICY: &str = "garrison-feed";

fn tags(c: &Ctx<'_>) -> Vec<Tag> {
    c.tags.iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect()
}

pub async fn bus(c: &Ctx<'_>, name: &str) -> Result<Created, CloudError> {
    let ev = c.aws.events();
    let arn = match c
        .call("events", "CreateEventBus", name, ev.create_event_bus().name(name).set_tags(Some(tags(c))).send())
        .await
    {
        Ok(out) => out.event_bus_arn().map(str::to_string),
        // Ours from an earlier attempt whose outcome was lost.
        Err(e) if e.code == "ResourceAlreadyExistsException" => None,
        Err(e) => return Err(e),
    };
    let arn = arn.unwrap_or_else(|| format!("arn:aws:events:{}:{}:event-bus/{name}", c.region, c.account));
    Ok(Created { id: name.into(), arn: Some(arn) })
}

pub async fn delete_bus(c: &Ctx<'_>, name: &str) -> Result<(), CloudError> {
    gone_ok(
        c.call("events", "DeleteEventBus", name, c.aws.events().delete_event_bus().name(name).send()).await.map(|_| ()),
    )
}

pub async fn bus_exists(c: &Ctx<'_>, name: &str) -> Result<bool, CloudError> {
    c.aws.pace("events").await;
    match c.aws.events().describe_event_bus().name(name).send().await {
        Ok(_) => Ok(true),
        Err(e) => {
            let e = CloudError::from_sdk("events", "DescribeEventBus", e);
            if absent(&e.code) { Ok(false) } else { Err(e) }
        }
    }
}

/// A rule's (bus, name) from its ARN: `rule/<name>` on the default bus, `rule/<bus>/<name>`.
fn rule_parts(arn: &str) -> (Option<&str>, &str) {
    let path = arn.split_once(":rule/").map(|(_, p)| p).unwrap_or(arn);
    match path.split_once('/') {
        Some((bus, name)) => (Some(bus), name),
        None => (None, path),
    }
}

pub async fn rule(
    c: &Ctx<'_>,
    name: &str,
    bus: Option<&str>,
    pattern: &str,
    target_arn: &str,
    role_arn: Option<&str>,
) -> Result<Created, CloudError> {
    let ev = c.aws.events();
    let out = c
        .call(
            "events",
            "PutRule",
            name,
            ev.put_rule()
                .name(name)
                .set_event_bus_name(bus.map(str::to_string))
                .event_pattern(pattern)
                .state(aws_sdk_eventbridge::types::RuleState::Enabled)
                .description("garrison: management events garrison acts on")
                .set_tags(Some(tags(c)))
                .send(),
        )
        .await?;
    let arn = out.rule_arn().map(str::to_string).unwrap_or_else(|| match bus {
        Some(b) => format!("arn:aws:events:{}:{}:rule/{b}/{name}", c.region, c.account),
        None => format!("arn:aws:events:{}:{}:rule/{name}", c.region, c.account),
    });
    let target = Target::builder()
        .id(TARGET_ID)
        .arn(target_arn)
        .set_role_arn(role_arn.map(str::to_string))
        .build()
        .map_err(|e| CloudError::terminal("events", "PutTargets", "Build", &e.to_string()))?;
    let put = c
        .call(
            "events",
            "PutTargets",
            name,
            ev.put_targets().rule(name).set_event_bus_name(bus.map(str::to_string)).targets(target).send(),
        )
        .await?;
    if let Some(f) = put.failed_entries().first() {
        return Err(CloudError::terminal(
            "events",
            "PutTargets",
            f.error_code().unwrap_or("FailedEntry"),
            f.error_message().unwrap_or("the target was not added"),
        ));
    }
    Ok(Created { id: arn.clone(), arn: Some(arn) })
}

pub async fn delete_rule(c: &Ctx<'_>, arn: &str) -> Result<(), CloudError> {
    let (bus, name) = rule_parts(arn);
    let ev = c.aws.events();
    gone_ok(
        c.call(
            "events",
            "RemoveTargets",
            arn,
            ev.remove_targets().rule(name).set_event_bus_name(bus.map(str::to_string)).ids(TARGET_ID).send(),
        )
        .await
        .map(|_| ()),
    )?;
    gone_ok(
        c.call(
            "events",
            "DeleteRule",
            arn,
            ev.delete_rule().name(name).set_event_bus_name(bus.map(str::to_string)).send(),
        )
        .await
        .map(|_| ()),
    )
}

/// Whether the rule is there, enabled, and still sends to garrison's target.
pub async fn rule_exists(c: &Ctx<'_>, arn: &str) -> Result<bool, CloudError> {
    let (bus, name) = rule_parts(arn);
    let ev = c.aws.events();
    c.aws.pace("events").await;
    match ev.describe_rule().name(name).set_event_bus_name(bus.map(str::to_string)).send().await {
        Ok(r) if r.state() == Some(&aws_sdk_eventbridge::types::RuleState::Enabled) => {}
        Ok(_) => return Ok(false),
        Err(e) => {
            let e = CloudError::from_sdk("events", "DescribeRule", e);
            return if absent(&e.code) { Ok(false) } else { Err(e) };
        }
    }
    c.aws.pace("events").await;
    match ev.list_targets_by_rule().rule(name).set_event_bus_name(bus.map(str::to_string)).send().await {
        Ok(t) => Ok(t.targets().iter().any(|t| t.id() == TARGET_ID)),
        Err(e) => {
            let e = CloudError::from_sdk("events", "ListTargetsByRule", e);
            if absent(&e.code) { Ok(false) } else { Err(e) }
        }
    }
}

pub async fn role(c: &Ctx<'_>, name: &str, bus_arn: &str) -> Result<Created, CloudError> {
    let iam = c.aws.iam();
    let tags: Vec<aws_sdk_iam::types::Tag> =
        c.tags.iter().filter_map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().ok()).collect();
    let arn = match c
        .call(
            "iam",
            "CreateRole",
            name,
            iam.create_role()
                .role_name(name)
                .assume_role_policy_document(event_role_trust(&c.account).to_string())
                .description("garrison: EventBridge forwards management events to garrison's feed bus")
                .set_tags(Some(tags))
                .send(),
        )
        .await
    {
        Ok(out) => out.role().map(|r| r.arn().to_string()),
        Err(e) if e.code == "EntityAlreadyExists" => None,
        Err(e) => return Err(e),
    };
    c.call(
        "iam",
        "PutRolePolicy",
        name,
        iam.put_role_policy()
            .role_name(name)
            .policy_name(ROLE_POLICY)
            .policy_document(event_role_policy(json!(bus_arn)).to_string())
            .send(),
    )
    .await?;
    let arn = arn.unwrap_or_else(|| format!("arn:aws:iam::{}:role/{name}", c.account));
    Ok(Created { id: name.into(), arn: Some(arn) })
}

pub async fn delete_role(c: &Ctx<'_>, name: &str) -> Result<(), CloudError> {
    let iam = c.aws.iam();
    gone_ok(
        c.call(
            "iam",
            "DeleteRolePolicy",
            name,
            iam.delete_role_policy().role_name(name).policy_name(ROLE_POLICY).send(),
        )
        .await
        .map(|_| ()),
    )?;
    gone_ok(c.call("iam", "DeleteRole", name, iam.delete_role().role_name(name).send()).await.map(|_| ()))
}

pub async fn role_exists(c: &Ctx<'_>, name: &str) -> Result<bool, CloudError> {
    c.aws.pace("iam").await;
    match c.aws.iam().get_role().role_name(name).send().await {
        Ok(_) => Ok(true),
        Err(e) => {
            let e = CloudError::from_sdk("iam", "GetRole", e);
            if absent(&e.code) { Ok(false) } else { Err(e) }
        }
    }
}

async fn queue_policy_text(c: &Ctx<'_>, url: &str) -> Result<Option<String>, CloudError> {
    use aws_sdk_sqs::types::QueueAttributeName;
    c.aws.pace("sqs").await;
    let out = c
        .aws
        .sqs()
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::Policy)
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("sqs", "GetQueueAttributes", e))?;
    Ok(out.attributes().and_then(|a| a.get(&QueueAttributeName::Policy)).cloned())
}

async fn set_queue_policy(c: &Ctx<'_>, url: &str, policy: String) -> Result<(), CloudError> {
    use aws_sdk_sqs::types::QueueAttributeName;
    c.call(
        "sqs",
        "SetQueueAttributes",
        url,
        c.aws.sqs().set_queue_attributes().queue_url(url).attributes(QueueAttributeName::Policy, policy).send(),
    )
    .await
    .map(|_| ())
}

/// Puts the feed statement into the queue's policy (the topic's statement is kept). The id
/// is the queue's URL, the ARN the rule's (what the statement admits).
pub async fn allow_rule(c: &Ctx<'_>, url: &str, queue_arn: &str, rule_arn: &str) -> Result<Created, CloudError> {
    let current = queue_policy_text(c, url).await?;
    let doc = with_feed_statement(current.as_deref(), Some(feed_statement(json!(queue_arn), json!(rule_arn))));
    set_queue_policy(c, url, doc.to_string()).await?;
    Ok(Created { id: url.into(), arn: Some(rule_arn.into()) })
}

pub async fn disallow_rule(c: &Ctx<'_>, url: &str) -> Result<(), CloudError> {
    let current = match queue_policy_text(c, url).await {
        Ok(p) => p,
        Err(e) if absent(&e.code) => return Ok(()),
        Err(e) => return Err(e),
    };
    let doc = with_feed_statement(current.as_deref(), None);
    gone_ok(set_queue_policy(c, url, doc.to_string()).await)
}

/// Whether the queue's policy still has the feed statement.
pub async fn rule_allowed(c: &Ctx<'_>, url: &str) -> Result<bool, CloudError> {
    match queue_policy_text(c, url).await {
        Ok(p) => Ok(p.is_some_and(|p| p.contains(garrison_model::protection::FEED_SID))),
        Err(e) if absent(&e.code) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rule_arns_name_their_bus() {
        assert_eq!(super::rule_parts("arn:aws:events:eu-west-1:1:rule/garrison-feed-ab"), (None, "garrison-feed-ab"));
        assert_eq!(
            super::rule_parts("arn:aws:events:us-east-1:1:rule/garrison-feed-ab/garrison-feed-ab"),
            (Some("garrison-feed-ab"), "garrison-feed-ab")
        );
    }
}
