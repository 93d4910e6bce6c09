//! An AWS organization on the emulator, made as its management account would: the
//! organization, units and accounts moved into them.

use garrison_cloud::Aws;

/// Creates the organization (all features) of `aws`'s account; its root id.
pub async fn create(aws: &Aws) -> anyhow::Result<String> {
    let org = aws.organizations();
    org.create_organization().feature_set("ALL".into()).send().await?;
    let roots = org.list_roots().send().await?;
    Ok(roots.roots().first().and_then(|r| r.id()).unwrap_or_default().to_string())
}

/// A unit under `parent`; its id.
pub async fn unit(aws: &Aws, parent: &str, name: &str) -> anyhow::Result<String> {
    let made = aws.organizations().create_organizational_unit().parent_id(parent).name(name).send().await?;
    Ok(made.organizational_unit().and_then(|u| u.id()).unwrap_or_default().to_string())
}

/// A new account, moved from the root into `unit`; its id.
pub async fn account(aws: &Aws, root: &str, unit: &str, name: &str) -> anyhow::Result<String> {
    let org = aws.organizations();
    let made = org.create_account().account_name(name).email(format!("{name}@example.com")).send().await?;
    let id = made.create_account_status().and_then(|s| s.account_id()).unwrap_or_default().to_string();
    org.move_account().account_id(&id).source_parent_id(root).destination_parent_id(unit).send().await?;
    Ok(id)
}

/// Organizations' `CreateAccountResult` for `account`, on the management account's default
/// bus in us-east-1, as AWS sends it when an account creation completes ("AWS Service Event
/// via CloudTrail", the CloudTrail record as `detail`).
pub async fn announce_created(aws: &Aws, management: &str, account: &str, name: &str) -> anyhow::Result<()> {
    let detail = serde_json::json!({
        "eventVersion": "1.08",
        "userIdentity": {"accountId": management, "invokedBy": "AWS Internal"},
        "eventTime": "2026-12-06T10:00:00Z",
        "eventSource": "organizations.amazonaws.com",
        "eventName": "CreateAccountResult",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "AWS Internal",
        "userAgent": "AWS Internal",
        "requestParameters": null,
        "responseElements": null,
        "eventID": format!("{account}-created"),
        "readOnly": false,
        "eventType": "AwsServiceEvent",
        "managementEvent": true,
        "recipientAccountId": management,
        "serviceEventDetails": {"createAccountStatus": {"id": format!("car-{account}"), "state": "SUCCEEDED",
            "accountName": name, "accountId": account}},
        "eventCategory": "Management"
    });
    garrison_cloud::audit_queue::deliver_event(
        &aws.in_region("us-east-1"),
        "aws.organizations",
        "AWS Service Event via CloudTrail",
        &detail,
    )
    .await?;
    Ok(())
}
