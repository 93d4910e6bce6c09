//! Publishing rendered role templates to the operator's S3 bucket, where CloudFormation's
//! `TemplateURL` (and themis `cft.s3_url`) can reach them.

use aws_sdk_s3::primitives::ByteStream;

use crate::{Aws, CloudError};

/// Puts each `(key, JSON body)`; returns the keys written.
pub async fn publish(aws: &Aws, bucket: &str, objects: Vec<(String, Vec<u8>)>) -> Result<Vec<String>, CloudError> {
    let s3 = aws.s3();
    let mut written = vec![];
    for (key, body) in objects {
        s3.put_object()
            .bucket(bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| CloudError::from_sdk("s3", "PutObject", e))?;
        tracing::info!(bucket, key, "template published");
        written.push(key);
    }
    Ok(written)
}

/// The URL CloudFormation resolves for a key in a bucket.
pub fn template_url(bucket: &str, key: &str) -> String {
    format!("https://{bucket}.s3.amazonaws.com/{key}")
}
