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
