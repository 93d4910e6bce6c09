//! `--organization`: the management account's own role (a `ci_organization` stack), its
//! credential, and an organization enrollment made or brought up to date from the flags;
//! then the wait until every account the enrollment covers is enrolled and protected.
//! From then on garrison's enrollment loop keeps the organization with no person.

use std::collections::BTreeSet;

use garrison_model::organization::{Selection, UnitItem, enrolled};

use super::*;

/// The management account's role type.
const MANAGEMENT_ROLE: &str = "ci_organization";

/// The enrollment body the flags ask for.
fn enrollment_body(a: &Args, name: &str, credential: &str, scope: &Value) -> Value {
    let include: Vec<Value> = a.units.iter().map(|u| json!({"unit": u, "children": true})).collect();
    json!({"name": name, "credential_id": credential, "include": include,
           "exclude_units": a.exclude_units, "exclude_accounts": a.exclude_accounts,
           "template": {"mode": a.mode, "platform": {"type": "aws"}, "scope": scope},
           "stack_set": a.stack_name, "event_feed": a.event_feed})
}

/// Whether the stored enrollment already says what `want` says.
fn same_enrollment(have: &Value, want: &Value) -> bool {
    let set = |v: &Value| -> BTreeSet<String> { v.as_array().into_iter().flatten().map(|x| x.to_string()).collect() };
    ["credential_id", "stack_set", "name", "event_feed"].iter().all(|k| have[k] == want[k])
        && ["include", "exclude_units", "exclude_accounts"].iter().all(|k| set(&have[k]) == set(&want[k]))
        && have["template"]["mode"] == want["template"]["mode"]
        && same_scope(&have["template"]["scope"], &want["template"]["scope"])
}

/// The enrollment of this StackSet (one StackSet per enrollment): made, updated or reused.
async fn enrollment(c: &Client, account: &str, want: &Value) -> Result<(Value, Action), Failure> {
    let base = format!("/deployments/v1/{account}/organizations");
    let list = call(c, "GET", &base, None).await?;
    let found = list["organizations"]
        .as_array()
        .or(list.as_array())
        .into_iter()
        .flatten()
        .find(|e| e["stack_set"] == want["stack_set"])
        .cloned();
    match found {
        Some(have) if same_enrollment(&have, want) => Ok((have, Action::Reused)),
        Some(have) => {
            let id = have["id"].as_str().unwrap_or_default();
            let mut body = want.clone();
            body["version"] = have["version"].clone();
            Ok((call(c, "PUT", &format!("{base}/{id}"), Some(body)).await?, Action::Updated))
        }
        None => Ok((call(c, "POST", &base, Some(want.clone())).await?, Action::Created)),
    }
}

pub(super) async fn organization(
    ui: &Ui,
    c: &Client,
    aws: &Aws,
    a: &Args,
    account: &str,
    scope: &Value,
) -> Result<Value, Failure> {
    if a.units.is_empty() {
        return Err(Failure {
            what:
                "--organizational-unit: expected at least one OU id (ou-xxxx-yyyyyyyy) with --organization, found none"
                    .into(),
            usage: true,
        });
    }
    let management = stacks::caller_account(aws).await?;
    ui.step(&format!("[2/6] organization management account {management}, units {}", a.units.join(", ")));
    expected(a, &management)?;
    let stack_name = format!("{}-management", a.stack_name);
    let (arn, ext, stack_action) = role_stack(ui, c, aws, a, account, MANAGEMENT_ROLE, &stack_name).await?;
    let v = validate(ui, c, MANAGEMENT_ROLE, &arn, &ext, Duration::from_secs(a.wait)).await?;
    ui.step(&format!("  role {arn} validated: {}", v["message"].as_str().unwrap_or_default()));
    let (cred, cred_action) = credential(c, account, &arn, &format!("organization {management}")).await?;
    let name = a.name.clone().unwrap_or_else(|| format!("organization {management}"));
    let want = enrollment_body(a, &name, &cred, scope);
    let (en, en_action) = enrollment(c, account, &want).await?;
    let id = en["id"].as_str().unwrap_or_default().to_string();
    ui.step(&format!("[5/6] organization enrollment {id} ({name}): {}", en_action.word()));

    // The accounts it covers, as the organization stands now.
    let tree = garrison_cloud::organizations::tree(aws).await?;
    let selection = Selection {
        include: a.units.iter().map(|u| UnitItem { unit: u.clone(), children: true }).collect(),
        exclude_units: a.exclude_units.clone(),
        exclude_accounts: a.exclude_accounts.clone(),
    };
    let covered = enrolled(&tree, &selection);
    let status = if a.no_follow {
        en["status"].clone()
    } else {
        wait_enrolled(ui, c, account, &id, &covered, Duration::from_secs(a.wait)).await?
    };
    let members: Vec<Value> = status["members"].as_array().cloned().unwrap_or_default();
    ui.step("[6/6] protection");
    let ids: Vec<(String, Option<Option<i64>>)> =
        members.iter().filter_map(|m| m["deployment_id"].as_str()).map(|d| (d.to_string(), Some(None))).collect();
    let outcomes = follow_and_report(ui, c, a, account, &ids).await?;
    let mut outcomes = outcomes.into_iter();
    let accounts: Vec<Value> = members
        .iter()
        .map(|m| {
            let mut r = json!({"aws_account": m["aws_account"], "state": m["state"]});
            if let Some(d) = m["deployment_id"].as_str() {
                r["deployment"] = json!({"id": d});
                r["credential"] = json!({"id": m["credential_id"]});
                r["outcome"] = outcomes.next().unwrap_or(Value::Null);
            }
            if let Some(why) = m["reason"].as_str() {
                r["reason"] = json!(why);
            }
            r
        })
        .collect();
    Ok(json!({
        "management": {"aws_account": management, "role_arn": arn,
                       "stack": {"name": stack_name, "action": stack_action.word()},
                       "credential": {"id": cred, "action": cred_action.word()}},
        "enrollment": {"id": id, "name": name, "action": en_action.word(), "stack_set": a.stack_name},
        "accounts": accounts,
        "excluded": status["excluded"],
    }))
}

/// Until every covered account is a member that is enrolled or failed (a failure is
/// reported, not waited on); the enrollment's status then.
async fn wait_enrolled(
    ui: &Ui,
    c: &Client,
    account: &str,
    id: &str,
    covered: &BTreeSet<String>,
    wait: Duration,
) -> Result<Value, Failure> {
    let pb = ui.spinner(&format!("enrolling {} account(s)", covered.len()));
    let start = Instant::now();
    let result = loop {
        let en = call(c, "GET", &format!("/deployments/v1/{account}/organizations/{id}"), None).await?;
        let st = en["status"].clone();
        let settled: BTreeSet<String> = st["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["state"] == "enrolled" || m["state"] == "failed")
            .filter_map(|m| m["aws_account"].as_str().map(str::to_string))
            .collect();
        if st["updated"].as_i64().unwrap_or(0) > 0 && covered.is_subset(&settled) {
            break Ok(st);
        }
        if start.elapsed() > wait {
            let missing: Vec<&String> = covered.difference(&settled).collect();
            break Err(fail(format!(
                "the enrollment {id} has not enrolled {missing:?} after {}s: {}",
                wait.as_secs(),
                st["message"].as_str().unwrap_or("no pass yet")
            )));
        }
        pb.set_message(format!("{} of {} account(s) enrolled", settled.intersection(covered).count(), covered.len()));
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    pb.finish_and_clear();
    result
}
