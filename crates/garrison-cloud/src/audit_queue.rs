//! Reading the audit source: messages from the deployment's SQS queue (long polling), and
//! the log objects they name from its S3 bucket. Reads only; nothing here is journalled.

use crate::{Aws, CloudError};

/// One message taken from the queue; invisible to others until deleted or its visibility
/// timeout ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub id: String,
    pub receipt: String,
    pub body: String,
    /// How many times it has been received (1 the first time).
    pub receives: u32,
    /// When SQS accepted it, in milliseconds since the epoch (0 when not said).
    pub sent_ms: i64,
}

/// Up to 10 messages; waits up to `wait_secs` for the first (SQS long polling).
pub async fn receive(aws: &Aws, queue_url: &str, wait_secs: i32) -> Result<Vec<QueueMessage>, CloudError> {
    aws.pace("sqs").await;
    let out = aws
        .sqs()
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_secs)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp)
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("sqs", "ReceiveMessage", e))?;
    Ok(out
        .messages()
        .iter()
        .map(|m| QueueMessage {
            id: m.message_id().unwrap_or_default().to_string(),
            receipt: m.receipt_handle().unwrap_or_default().to_string(),
            body: m.body().unwrap_or_default().to_string(),
            receives: m
                .attributes()
                .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            sent_ms: m
                .attributes()
                .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        })
        .collect())
}

/// Deletes handled messages, ten per call.
pub async fn delete(aws: &Aws, queue_url: &str, receipts: &[String]) -> Result<(), CloudError> {
    for chunk in receipts.chunks(10) {
        let entries: Vec<_> = chunk
            .iter()
            .enumerate()
            .filter_map(|(n, r)| {
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(n.to_string())
                    .receipt_handle(r)
                    .build()
                    .ok()
            })
            .collect();
        aws.pace("sqs").await;
        let out = aws
            .sqs()
            .delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| CloudError::from_sdk("sqs", "DeleteMessageBatch", e))?;
        if let Some(f) = out.failed().first() {
            return Err(CloudError::terminal(
                "sqs",
                "DeleteMessageBatch",
                f.code(),
                f.message().unwrap_or("a message could not be deleted"),
            ));
        }
    }
    Ok(())
}

/// The region a bucket is in (S3 answers GetBucketLocation from any region; an empty
/// constraint is us-east-1, "EU" the old name of eu-west-1).
pub async fn bucket_region(aws: &Aws, bucket: &str) -> Result<String, CloudError> {
    aws.pace("s3").await;
    let out = aws
        .s3()
        .get_bucket_location()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("s3", "GetBucketLocation", e))?;
    Ok(match out.location_constraint().map(|c| c.as_str()) {
        None | Some("") => "us-east-1".to_string(),
        Some("EU") => "eu-west-1".to_string(),
        Some(r) => r.to_string(),
    })
}

/// An object's bytes, refused past `max` (a log file is small; this is not one).
pub async fn get_object(aws: &Aws, bucket: &str, key: &str, max: u64) -> Result<Vec<u8>, CloudError> {
    aws.pace("s3").await;
    let out = aws
        .s3()
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("s3", "GetObject", e))?;
    if out.content_length().is_some_and(|n| n as u64 > max) {
        return Err(CloudError::terminal("s3", "GetObject", "TooLarge", &format!("larger than {max} bytes")));
    }
    let bytes = out.body.collect().await.map_err(|e| CloudError {
        class: crate::error::Class::Retryable,
        ..CloudError::terminal("s3", "GetObject", "ReadBody", &e.to_string())
    })?;
    Ok(bytes.into_bytes().to_vec())
}

/// Writes a log file into the audit bucket as CloudTrail would (the emulator never does).
/// Its bucket-policy conditions deny every object write there, so the policy is set aside
/// for the write and put back as it was. For tests and benchmarks on the emulator only.
pub async fn deliver_as_cloudtrail(aws: &Aws, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), CloudError> {
    let s3 = aws.s3();
    let policy = s3.get_bucket_policy().bucket(bucket).send().await.ok().and_then(|p| p.policy().map(str::to_string));
    if policy.is_some() {
        s3.delete_bucket_policy()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| CloudError::from_sdk("s3", "DeleteBucketPolicy", e))?;
    }
    let put = s3.put_object().bucket(bucket).key(key).body(body.into()).send().await;
    if let Some(p) = policy {
        s3.put_bucket_policy()
            .bucket(bucket)
            .policy(p)
            .send()
            .await
            .map_err(|e| CloudError::from_sdk("s3", "PutBucketPolicy", e))?;
    }
    put.map(|_| ()).map_err(|e| CloudError::from_sdk("s3", "PutObject", e))
}

/// Puts a CloudTrail record on the default bus of its region as EventBridge delivers a
/// management event ("AWS API Call via CloudTrail", source `aws.<service>`, the record as
/// `detail`): what AWS does for every call a trail records and the emulator never does.
/// For tests and benchmarks on the emulator only.
pub async fn deliver_as_eventbridge(aws: &Aws, record: &serde_json::Value) -> Result<(), CloudError> {
    let region = record["awsRegion"].as_str().unwrap_or("us-east-1");
    let service = record["eventSource"].as_str().unwrap_or_default().trim_end_matches(".amazonaws.com");
    deliver_event(&aws.in_region(region), &format!("aws.{service}"), "AWS API Call via CloudTrail", record).await
}

/// Puts one event on the default bus of `aws`'s region, as an AWS service does (source
/// `aws.…`). For tests and benchmarks on the emulator only.
pub async fn deliver_event(
    aws: &Aws,
    source: &str,
    detail_type: &str,
    detail: &serde_json::Value,
) -> Result<(), CloudError> {
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .source(source)
        .detail_type(detail_type)
        .detail(detail.to_string())
        .build();
    let out = aws
        .events()
        .put_events()
        .entries(entry)
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("events", "PutEvents", e))?;
    match out.entries().first().and_then(|e| e.error_code()) {
        Some(code) => Err(CloudError::terminal("events", "PutEvents", code, "the event was not accepted")),
        None => Ok(()),
    }
}

/// Sends `bodies` to the queue as they are (in batches of ten), as a delivering service
/// would. For tests and benchmarks on the emulator only.
pub async fn send_bodies(aws: &Aws, queue_url: &str, bodies: &[String]) -> Result<(), CloudError> {
    for (c, chunk) in bodies.chunks(10).enumerate() {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, b)| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(format!("m{c}-{i}"))
                    .message_body(b)
                    .build()
                    .map_err(|e| CloudError::terminal("sqs", "SendMessageBatch", "Build", &e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        aws.sqs()
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| CloudError::from_sdk("sqs", "SendMessageBatch", e))?;
    }
    Ok(())
}
