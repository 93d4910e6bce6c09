//! `--organization`: the role as a service-managed StackSet over organizational units, then
//! each account connected like a single one.

use super::*;

/// The StackSet's template: the role template with a fixed role name, so each account's
/// role ARN follows from its id.
pub(super) fn named_role_template(template: &Value, rt: &str) -> (String, String) {
    let name = garrison_catalog::cft::stack_set_role_name(rt);
    let mut t = template.clone();
    t["Resources"]["GarrisonRole"]["Properties"]["RoleName"] = Value::String(name.clone());
    (t.to_string(), name)
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
    let rt = role_type(&a.mode);
    let management = stacks::caller_account(aws).await?;
    ui.step(&format!("[2/6] organization management account {management}, units {}", a.units.join(", ")));
    expected(a, &management)?;
    let role = call(c, "GET", &format!("/themis/v1/{account}/roles/aws/{rt}/latest"), None).await?;
    let (ext, version) =
        (role["external_id"].as_str().unwrap_or_default(), role["version"].as_str().unwrap_or_default());
    ui.step(&format!("[3/6] role {rt} version {version}"));
    let template = call(c, "GET", &format!("/themis/v1/templates/aws/{rt}/{version}"), None).await?;
    let (body, role_name) = named_role_template(&template, rt);
    let created = stacksets::ensure(aws, &a.stack_name, &body, ext).await?;
    let pb = ui.spinner(&format!("StackSet {}: deploying to {}", a.stack_name, a.units.join(", ")));
    let deployed = stacksets::deploy(aws, &a.stack_name, &a.units, &aws.region(), Duration::from_secs(a.wait)).await;
    pb.finish_and_clear();
    deployed?;
    let instances = stacksets::instances(aws, &a.stack_name).await?;
    let in_units: Vec<&stacksets::Instance> =
        instances.iter().filter(|i| i.unit.as_ref().is_none_or(|u| a.units.contains(u))).collect();
    ui.step(&format!(
        "[4/6] StackSet {} {}: {} account(s)",
        a.stack_name,
        if created { "created" } else { "reused" },
        in_units.len()
    ));
    let mut records = vec![];
    let mut ids = vec![];
    ui.step("[5/6] connecting the accounts");
    for i in &in_units {
        if i.status != "CURRENT" {
            records
                .push(json!({"aws_account": i.account, "error": format!("stack instance {}: {}", i.status, i.reason)}));
            ui.step(&format!("  {}: stack instance {} ({}), skipped", i.account, i.status, i.reason));
            continue;
        }
        ui.step(&format!("  account {}", i.account));
        let arn = format!("arn:aws:iam::{}:role/{role_name}", i.account);
        let (record, id, wait_since) =
            connect_account(&Onboarding { ui, c, a, account, scope }, &i.account, &arn, ext).await?;
        records.push(record);
        ids.push((id, wait_since));
    }
    ui.step("[6/6] protection");
    let outcomes = follow_and_report(ui, c, a, account, &ids).await?;
    for (r, o) in records.iter_mut().filter(|r| r.get("deployment").is_some()).zip(outcomes) {
        r["outcome"] = o;
    }
    Ok(
        json!({"stack_set": {"name": a.stack_name, "action": if created { "created" } else { "reused" }}, "accounts": records}),
    )
}
