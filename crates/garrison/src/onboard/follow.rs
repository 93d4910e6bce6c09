//! Following the first reconcile of onboarded deployments and saying how it went.

use super::*;

/// Follows deployments until each has been reconciled since `since` (the generation of its
/// last report before this run's change; None: any status but new).
pub(super) async fn follow(
    ui: &Ui,
    c: &Client,
    a: &str,
    waiting: Vec<(String, Option<i64>)>,
    wait: Duration,
) -> Result<Vec<Value>, Failure> {
    let pb = ui.spinner("waiting for the first reconcile");
    let start = Instant::now();
    let mut done: Vec<Option<Value>> = vec![None; waiting.len()];
    while done.iter().any(Option::is_none) {
        for (i, (id, since)) in waiting.iter().enumerate() {
            if done[i].is_some() {
                continue;
            }
            let d = call(c, "GET", &format!("/deployments/v1/{a}/deployments/{id}"), None).await?;
            let st = d["status"]["status"].as_str().unwrap_or("new");
            let fresh = match since {
                None => true,
                Some(g) => c
                    .call("GET", &format!("/deployments/v1/{a}/deployments/{id}/protection"), &[], None)
                    .await
                    .is_ok_and(|(_, r)| r["generation"].as_i64().unwrap_or(0) > *g),
            };
            if st != "new" && fresh {
                done[i] = Some(d);
            } else {
                pb.set_message(format!(
                    "{} of {} reconciled; {}: {}",
                    done.iter().flatten().count(),
                    waiting.len(),
                    d["name"].as_str().unwrap_or(id),
                    d["status"]["message"].as_str().unwrap_or(st)
                ));
            }
        }
        if done.iter().any(Option::is_none) {
            if start.elapsed() > wait {
                pb.finish_and_clear();
                return Err(fail(format!(
                    "not reconciled within {}s: is a garrison worker running (garrison serve or garrison worker)?",
                    wait.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    pb.finish_and_clear();
    Ok(done.into_iter().flatten().collect())
}

/// What protects the deployment now, and what failed when it is not ok.
pub(super) async fn outcome(c: &Client, a: &str, d: &Value) -> Result<Value, Failure> {
    let id = d["id"].as_str().unwrap_or_default();
    let status = d["status"]["status"].as_str().unwrap_or_default();
    let mut out = json!({"deployment_id": id, "name": d["name"], "aws_account": d["platform"]["id"],
                         "status": status, "message": d["status"]["message"]});
    if let Ok((_, p)) = c.call("GET", &format!("/deployments/v1/{a}/deployments/{id}/protection"), &[], None).await {
        let vpcs = p["vpcs"].as_array().cloned().unwrap_or_default();
        out["protected_vpcs"] =
            vpcs.iter().filter(|v| v["appliances"].as_array().is_some_and(|x| !x.is_empty())).count().into();
        out["appliances"] = vpcs.iter().map(|v| v["appliances"].as_array().map_or(0, Vec::len)).sum::<usize>().into();
        out["monthly_appliance_usd"] = p["monthly_appliance_usd"].clone();
        out["audit_trail"] = p["audit_source"]["trail"]["id"].clone();
    }
    if status != "ok" {
        let log = call(c, "GET", &format!("/deployments/v1/{a}/deployments/{id}/audit?limit=100000"), None).await?;
        let failed: Vec<Value> =
            log["entries"].as_array().into_iter().flatten().filter(|e| e["outcome"] != "ok").cloned().collect();
        // The audit log comes newest first: the ten most recent failures.
        let failed = failed[..failed.len().min(10)].to_vec();
        out["failed_writes"] = Value::Array(failed);
    }
    Ok(out)
}

pub(super) fn describe_outcome(o: &Value) -> String {
    let mut s = format!(
        "  deployment {} ({}), AWS account {}: {}",
        o["name"].as_str().unwrap_or_default(),
        o["deployment_id"].as_str().unwrap_or_default(),
        o["aws_account"].as_str().unwrap_or_default(),
        o["status"].as_str().unwrap_or_default()
    );
    if let Some(m) = o["message"].as_str() {
        s.push_str(&format!(": {m}"));
    }
    if o.get("appliances").is_some() {
        s.push_str(&format!(
            "\n    {} VPC(s) with appliances, {} appliance(s), ${:.2}/month; audit trail {}",
            o["protected_vpcs"],
            o["appliances"],
            o["monthly_appliance_usd"].as_f64().unwrap_or(0.0),
            o["audit_trail"].as_str().unwrap_or("-")
        ));
    }
    for f in o["failed_writes"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "\n    failed: {} {} {} {}: {}",
            f["region"].as_str().unwrap_or_default(),
            f["call"].as_str().unwrap_or_default(),
            f["resource"].as_str().unwrap_or_default(),
            f["outcome"].as_str().unwrap_or_default(),
            f["message"].as_str().unwrap_or_default()
        ));
    }
    s
}
