//! Reading an AWS organization from its management account: the organization, its root,
//! every unit under it and every account with its state. Reads only.

use std::collections::VecDeque;

use garrison_model::organization::{AccountState, MAX_DEPTH, OrgAccount, OrgTree};

use crate::{Aws, CloudError};

fn err<E, R>(op: &'static str) -> impl Fn(aws_sdk_organizations::error::SdkError<E, R>) -> CloudError
where
    E: aws_sdk_organizations::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    move |e| CloudError::from_sdk("organizations", op, e)
}

/// The whole tree, breadth first from the root (Organizations is a global service, read
/// through us-east-1 as AWS documents).
pub async fn tree(aws: &Aws) -> Result<OrgTree, CloudError> {
    let aws = aws.in_region("us-east-1");
    let org = aws.organizations();
    aws.pace("organizations").await;
    let described = org.describe_organization().send().await.map_err(err("DescribeOrganization"))?;
    let o = described.organization();
    let mut t = OrgTree {
        id: o.and_then(|o| o.id()).unwrap_or_default().to_string(),
        management_account: o.and_then(|o| o.master_account_id()).unwrap_or_default().to_string(),
        ..Default::default()
    };
    aws.pace("organizations").await;
    let roots = org.list_roots().send().await.map_err(err("ListRoots"))?;
    t.root = roots.roots().first().and_then(|r| r.id()).unwrap_or_default().to_string();
    let mut queue = VecDeque::from([(t.root.clone(), 0usize)]);
    while let Some((parent, depth)) = queue.pop_front() {
        let mut next = None;
        loop {
            aws.pace("organizations").await;
            let page = org
                .list_accounts_for_parent()
                .parent_id(&parent)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(err("ListAccountsForParent"))?;
            for a in page.accounts() {
                let state = a
                    .state()
                    .map(|s| s.as_str().to_string())
                    .or_else(|| a.status().map(|s| s.as_str().to_string()))
                    .unwrap_or_default();
                t.accounts.insert(
                    a.id().unwrap_or_default().to_string(),
                    OrgAccount {
                        parent: parent.clone(),
                        name: a.name().unwrap_or_default().to_string(),
                        state: AccountState::parse(&state),
                    },
                );
            }
            next = page.next_token().map(str::to_string);
            if next.is_none() {
                break;
            }
        }
        if depth >= MAX_DEPTH {
            continue;
        }
        loop {
            aws.pace("organizations").await;
            let page = org
                .list_organizational_units_for_parent()
                .parent_id(&parent)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(err("ListOrganizationalUnitsForParent"))?;
            for u in page.organizational_units() {
                let id = u.id().unwrap_or_default().to_string();
                if !t.units.contains_key(&id) {
                    t.units.insert(id.clone(), parent.clone());
                    queue.push_back((id, depth + 1));
                }
            }
            next = page.next_token().map(str::to_string);
            if next.is_none() {
                break;
            }
        }
    }
    Ok(t)
}

/// Whether the organization runs AWS Control Tower: its landing zone leaves the
/// `AWSControlTowerAdmin` role in the management account (read with that account's role).
pub async fn runs_control_tower(aws: &Aws) -> Result<bool, CloudError> {
    aws.pace("iam").await;
    match aws.iam().get_role().role_name("AWSControlTowerAdmin").send().await {
        Ok(_) => Ok(true),
        Err(e) => {
            let e = CloudError::from_sdk("iam", "GetRole", e);
            if crate::writes::absent(&e.code) { Ok(false) } else { Err(e) }
        }
    }
}
