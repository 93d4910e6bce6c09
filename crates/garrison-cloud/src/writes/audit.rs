//! The audit source: an S3 bucket CloudTrail (and flow logs, and Config) deliver to, an
//! SNS topic the bucket notifies on each new object, an SQS queue that accepts messages
//! only from that topic, and the multi-region trail.

use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, Event, NotificationConfiguration, Tagging, TopicConfiguration,
};
use garrison_model::protection::{bucket_policy, queue_policy, topic_policy};
use serde_json::json;

use super::{Created, Ctx, absent, gone_ok};
use crate::CloudError;

pub async fn bucket(c: &Ctx<'_>, name: &str) -> Result<Created, CloudError> {
    let s3 = c.aws.s3();
    let mut req = s3.create_bucket().bucket(name);
    if c.region != "us-east-1" {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(c.region.as_str()))
                .build(),
        );
    }
    match c.call("s3", "CreateBucket", name, req.send()).await {
        Ok(_) => {}
        // Ours from an earlier attempt whose outcome was lost.
        Err(e) if e.code == "BucketAlreadyOwnedByYou" => {}
        Err(e) => return Err(e),
    }
    c.call(
        "s3",
        "PutBucketPolicy",
        name,
        s3.put_bucket_policy().bucket(name).policy(bucket_policy(name, &c.account).to_string()).send(),
    )
    .await?;
    let tagging = Tagging::builder()
        .set_tag_set(Some(
            c.tags.iter().filter_map(|(k, v)| aws_sdk_s3::types::Tag::builder().key(k).value(v).build().ok()).collect(),
        ))
        .build()
        .map_err(|e| CloudError::terminal("s3", "PutBucketTagging", "Build", &e.to_string()))?;
    c.call("s3", "PutBucketTagging", name, s3.put_bucket_tagging().bucket(name).tagging(tagging).send()).await?;
    Ok(Created { id: name.into(), arn: Some(format!("arn:aws:s3:::{name}")) })
}

pub async fn topic(c: &Ctx<'_>, name: &str, bucket: &str) -> Result<Created, CloudError> {
    let sns = c.aws.sns();
    let tags: Vec<aws_sdk_sns::types::Tag> =
        c.tags.iter().filter_map(|(k, v)| aws_sdk_sns::types::Tag::builder().key(k).value(v).build().ok()).collect();
    let out = c.call("sns", "CreateTopic", name, sns.create_topic().name(name).set_tags(Some(tags)).send()).await?;
    let arn = out.topic_arn().ok_or_else(|| CloudError::terminal("sns", "CreateTopic", "EmptyResponse", "no ARN"))?;
    let policy = topic_policy(json!(arn), bucket, &c.account).to_string();
    c.call(
        "sns",
        "SetTopicAttributes",
        arn,
        sns.set_topic_attributes().topic_arn(arn).attribute_name("Policy").attribute_value(policy).send(),
    )
    .await?;
    Ok(Created { id: arn.into(), arn: Some(arn.into()) })
}

/// The audit queue; with a topic, its policy admits that topic (the event feed's rule is
/// admitted by its own `QueuePolicy` resource).
pub async fn queue(c: &Ctx<'_>, name: &str, topic_arn: Option<&str>) -> Result<Created, CloudError> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let arn = format!("arn:aws:sqs:{}:{}:{name}", c.region, c.account);
    let mut req =
        c.aws.sqs().create_queue().queue_name(name).attributes(QueueAttributeName::MessageRetentionPeriod, "1209600");
    if let Some(topic) = topic_arn {
        req = req.attributes(QueueAttributeName::Policy, queue_policy(json!(arn), json!(topic)).to_string());
    }
    for (k, v) in &c.tags {
        req = req.tags(k, v);
    }
    let out = c.call("sqs", "CreateQueue", name, req.send()).await?;
    let url = out.queue_url().ok_or_else(|| CloudError::terminal("sqs", "CreateQueue", "EmptyResponse", "no URL"))?;
    Ok(Created { id: url.into(), arn: Some(arn) })
}

pub async fn subscribe(c: &Ctx<'_>, topic_arn: &str, queue_arn: &str) -> Result<Created, CloudError> {
    let out = c
        .call(
            "sns",
            "Subscribe",
            topic_arn,
            c.aws.sns().subscribe().topic_arn(topic_arn).protocol("sqs").endpoint(queue_arn).send(),
        )
        .await?;
    let arn = out.subscription_arn().unwrap_or_default().to_string();
    Ok(Created { id: arn.clone(), arn: Some(arn) })
}

pub async fn notify(c: &Ctx<'_>, bucket: &str, topic_arn: &str) -> Result<Created, CloudError> {
    let conf = NotificationConfiguration::builder()
        .topic_configurations(
            TopicConfiguration::builder()
                .id("garrison-audit")
                .topic_arn(topic_arn)
                .events(Event::S3ObjectCreated)
                .build()
                .map_err(|e| {
                    CloudError::terminal("s3", "PutBucketNotificationConfiguration", "Build", &e.to_string())
                })?,
        )
        .build();
    c.call(
        "s3",
        "PutBucketNotificationConfiguration",
        bucket,
        c.aws.s3().put_bucket_notification_configuration().bucket(bucket).notification_configuration(conf).send(),
    )
    .await?;
    Ok(Created { id: bucket.into(), arn: None })
}

pub async fn trail(c: &Ctx<'_>, name: &str, bucket: &str) -> Result<Created, CloudError> {
    let ct = c.aws.cloudtrail();
    let tags: Vec<aws_sdk_cloudtrail::types::Tag> = c
        .tags
        .iter()
        .filter_map(|(k, v)| aws_sdk_cloudtrail::types::Tag::builder().key(k).value(v).build().ok())
        .collect();
    let out = c
        .call(
            "cloudtrail",
            "CreateTrail",
            name,
            ct.create_trail()
                .name(name)
                .s3_bucket_name(bucket)
                .is_multi_region_trail(true)
                .include_global_service_events(true)
                .enable_log_file_validation(true)
                .set_tags_list(Some(tags))
                .send(),
        )
        .await?;
    let arn = out.trail_arn().map(str::to_string);
    c.call("cloudtrail", "StartLogging", name, ct.start_logging().name(name).send()).await?;
    Ok(Created { id: name.into(), arn })
}

pub async fn start_logging(c: &Ctx<'_>, name: &str) -> Result<(), CloudError> {
    c.call("cloudtrail", "StartLogging", name, c.aws.cloudtrail().start_logging().name(name).send()).await.map(|_| ())
}

pub async fn delete_trail(c: &Ctx<'_>, name_or_arn: &str) -> Result<(), CloudError> {
    gone_ok(
        c.call("cloudtrail", "DeleteTrail", name_or_arn, c.aws.cloudtrail().delete_trail().name(name_or_arn).send())
            .await
            .map(|_| ()),
    )
}

pub async fn unnotify(c: &Ctx<'_>, bucket: &str) -> Result<(), CloudError> {
    gone_ok(
        c.call(
            "s3",
            "PutBucketNotificationConfiguration",
            bucket,
            c.aws
                .s3()
                .put_bucket_notification_configuration()
                .bucket(bucket)
                .notification_configuration(NotificationConfiguration::builder().build())
                .send(),
        )
        .await
        .map(|_| ()),
    )
}

pub async fn unsubscribe(c: &Ctx<'_>, arn: &str) -> Result<(), CloudError> {
    gone_ok(c.call("sns", "Unsubscribe", arn, c.aws.sns().unsubscribe().subscription_arn(arn).send()).await.map(|_| ()))
}

pub async fn delete_queue(c: &Ctx<'_>, url: &str) -> Result<(), CloudError> {
    gone_ok(c.call("sqs", "DeleteQueue", url, c.aws.sqs().delete_queue().queue_url(url).send()).await.map(|_| ()))
}

pub async fn delete_topic(c: &Ctx<'_>, arn: &str) -> Result<(), CloudError> {
    gone_ok(c.call("sns", "DeleteTopic", arn, c.aws.sns().delete_topic().topic_arn(arn).send()).await.map(|_| ()))
}

/// Removes the bucket's policy (a restrictive policy must not block its own removal),
/// empties it (the logs garrison had delivered there) and deletes it.
pub async fn delete_bucket(c: &Ctx<'_>, name: &str) -> Result<(), CloudError> {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let s3 = c.aws.s3();
    gone_ok(c.call("s3", "DeleteBucketPolicy", name, s3.delete_bucket_policy().bucket(name).send()).await.map(|_| ()))?;
    // Bounded: a page that cannot be deleted is an error, not a reason to loop.
    for _ in 0..10_000 {
        c.aws.pace("s3").await;
        let page = match s3.list_objects_v2().bucket(name).max_keys(1000).send().await {
            Ok(p) => p,
            Err(e) => {
                let e = CloudError::from_sdk("s3", "ListObjectsV2", e);
                return if absent(&e.code) { Ok(()) } else { Err(e) };
            }
        };
        let keys: Vec<ObjectIdentifier> =
            page.contents().iter().filter_map(|o| ObjectIdentifier::builder().key(o.key()?).build().ok()).collect();
        if keys.is_empty() {
            return gone_ok(
                c.call("s3", "DeleteBucket", name, s3.delete_bucket().bucket(name).send()).await.map(|_| ()),
            );
        }
        let del = Delete::builder()
            .set_objects(Some(keys))
            .quiet(true)
            .build()
            .map_err(|e| CloudError::terminal("s3", "DeleteObjects", "Build", &e.to_string()))?;
        let out = c.call("s3", "DeleteObjects", name, s3.delete_objects().bucket(name).delete(del).send()).await?;
        if let Some(err) = out.errors().first() {
            return Err(CloudError::terminal(
                "s3",
                "DeleteObjects",
                err.code().unwrap_or("Unknown"),
                &format!("{}: {}", err.key().unwrap_or_default(), err.message().unwrap_or_default()),
            ));
        }
    }
    Err(CloudError::terminal("s3", "DeleteBucket", "TooManyObjects", &format!("{name} could not be emptied")))
}

pub async fn bucket_exists(c: &Ctx<'_>, name: &str) -> Result<bool, CloudError> {
    c.aws.pace("s3").await;
    match c.aws.s3().head_bucket().bucket(name).send().await {
        Ok(_) => Ok(true),
        Err(e) => {
            let e = CloudError::from_sdk("s3", "HeadBucket", e);
            if absent(&e.code) { Ok(false) } else { Err(e) }
        }
    }
}

pub async fn topic_exists(c: &Ctx<'_>, arn: &str) -> Result<bool, CloudError> {
    c.aws.pace("sns").await;
    match c.aws.sns().get_topic_attributes().topic_arn(arn).send().await {
        Ok(_) => Ok(true),
        Err(e) => {
            let e = CloudError::from_sdk("sns", "GetTopicAttributes", e);
            if absent(&e.code) { Ok(false) } else { Err(e) }
        }
    }
}

pub async fn queue_exists(c: &Ctx<'_>, url: &str) -> Result<bool, CloudError> {
    c.aws.pace("sqs").await;
    match c.aws.sqs().get_queue_attributes().queue_url(url).send().await {
        Ok(_) => Ok(true),
        Err(e) => {
            let e = CloudError::from_sdk("sqs", "GetQueueAttributes", e);
            if absent(&e.code) { Ok(false) } else { Err(e) }
        }
    }
}

pub async fn subscription_exists(c: &Ctx<'_>, arn: &str) -> Result<bool, CloudError> {
    c.aws.pace("sns").await;
    match c.aws.sns().get_subscription_attributes().subscription_arn(arn).send().await {
        Ok(_) => Ok(true),
        Err(e) => {
            let e = CloudError::from_sdk("sns", "GetSubscriptionAttributes", e);
            if absent(&e.code) { Ok(false) } else { Err(e) }
        }
    }
}

/// Whether the bucket still notifies through garrison's configuration.
pub async fn notification_exists(c: &Ctx<'_>, bucket: &str) -> Result<bool, CloudError> {
    c.aws.pace("s3").await;
    match c.aws.s3().get_bucket_notification_configuration().bucket(bucket).send().await {
        Ok(out) => Ok(out.topic_configurations().iter().any(|t| t.id() == Some("garrison-audit"))),
        Err(e) => {
            let e = CloudError::from_sdk("s3", "GetBucketNotificationConfiguration", e);
            if absent(&e.code) { Ok(false) } else { Err(e) }
        }
    }
}
