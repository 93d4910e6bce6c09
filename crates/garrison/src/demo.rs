//! `garrison demo`: the reference workflow end to end on the AWS emulator (moto on a free
//! loopback port) with embedded SQLite in a fresh temporary directory: a customer account
//! (estate S) is built, garrison hands out its role, the customer creates it with
//! CloudFormation, garrison validates it, stores it, takes a deployment in automatic mode,
//! and its worker discovers and protects the account; the summary shows what protects each
//! VPC (appliances, types, state, cost) and the audit source.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use garrison_cloud::emulator::Moto;
use garrison_cloud::estate::{self, EstateSpec};
use garrison_cloud::{Aws, Sessions};
use serde_json::{Value, json};

use crate::client::{CallError, Client, Connection};
use crate::serve::{self, ServeArgs};

struct Demo {
    client: Client,
    step: usize,
}

impl Demo {
    fn say(&mut self, what: &str, cli: &str) {
        self.step += 1;
        println!("\n[{}] {what}\n    $ {cli}", self.step);
    }

    async fn call(
        &mut self,
        what: &str,
        cli: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        self.say(what, &format!("garrison {cli}"));
        self.quiet(method, path, body).await
    }

    async fn quiet(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        match self.client.call(method, path, &[], body.as_ref()).await {
            Ok((_, v)) => Ok(v),
            Err(CallError::Http { status, body }) => anyhow::bail!("{method} {path}: HTTP {status}: {body}"),
            Err(CallError::Transport(e)) => anyhow::bail!("{method} {path}: {e}"),
        }
    }
}

async fn run(keep_serving: bool) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("garrison-demo-{}-{}", std::process::id(), rand::random::<u32>()));
    println!("garrison demo: starting the AWS emulator (moto) on loopback");
    let moto = Moto::start()?;
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    let spec = EstateSpec::s();
    let built = estate::build(&Sessions::new(aws.clone()), &spec).await?;
    let acct = &built.accounts[0];
    println!(
        "garrison demo: customer AWS account {} — {} regions, {} VPCs (one empty), {} instances (every 5th stopped), its own trail, GuardDuty detector and Config recorder",
        acct.account,
        spec.regions.len(),
        spec.vpcs,
        spec.instances
    );

    let settings = serve::resolve(ServeArgs {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.clone()),
        resync_interval: Some(60),
        // The demo's receivers, if any, are on this machine.
        allow_private_webhooks: true,
        ..Default::default()
    })?;
    let key = (format!("{:016x}", rand::random::<u64>()), hex::encode(rand::random::<[u8; 32]>()));
    let (addr, handle, stop) = serve::start_with(&settings, Some(key.clone()), Some(aws.clone())).await?;
    let endpoint = format!("http://{addr}");
    println!("garrison demo: server on {endpoint}, embedded SQLite in {}", dir.display());
    let mut client = Client::new(Connection {
        endpoint,
        access_key_id: key.0,
        secret_key: key.1,
        account_id: None,
        ca_bundle: None,
    });
    client.authenticate().await.map_err(|e| anyhow::anyhow!("authenticate: {e:?}"))?;
    let a = client.account_id.clone().unwrap_or_default();
    let mut d = Demo { client, step: 0 };

    let role = d
        .call(
            "Get the role garrison needs (automatic mode)",
            &format!("themis get_role --account_id {a} --platform_type aws --role_type ci_full --role_version latest"),
            "GET",
            &format!("/themis/v1/{a}/roles/aws/ci_full/latest"),
            None,
        )
        .await?;
    let ext = role["external_id"].as_str().unwrap_or_default().to_string();
    println!(
        "    ci_full version {}, trusting AWS account {}, template {}",
        role["version"], role["aws_account_id"], role["cft"]["s3_url"]
    );

    d.say(
        "The customer creates the role with CloudFormation",
        "aws cloudformation create-stack --stack-name garrison --template-body file://ci_full.json --parameters ParameterKey=ExternalId,ParameterValue=<external_id> --capabilities CAPABILITY_IAM",
    );
    let template = d
        .quiet(
            "GET",
            &format!("/themis/v1/templates/aws/ci_full/{}", role["version"].as_str().unwrap_or("latest")),
            None,
        )
        .await?;
    let stack = garrison_cloud::stacks::create_role_stack(
        &aws,
        "garrison",
        &template.to_string(),
        &ext,
        Duration::from_secs(60),
    )
    .await?;
    let arn = stack.role_arn.clone();
    println!("    stack complete, output RoleARN {arn}");

    let v = d
        .call(
            "Validate the role (trust policy, ExternalId, permissions)",
            &format!("themis validate_credentials --platform_type aws --role_type ci_full --credential '{{\"platform_type\": \"aws\", \"role_type\": \"ci_full\", \"arn\": \"{arn}\", \"external_id\": \"…\"}}'"),
            "POST",
            "/themis/v1/validate/aws/ci_full",
            Some(json!({"credential": {"platform_type": "aws", "role_type": "ci_full", "arn": arn, "external_id": ext}})),
        )
        .await?;
    println!("    {}: {}", v["status"], v["message"]);

    let cred = d
        .call(
            "Store the role as a credential",
            &format!("credentials create_credential --account_id {a} --name customer-role --secrets '{{\"type\": \"aws_iam_role\", \"arn\": \"{arn}\"}}'"),
            "POST",
            &format!("/credentials/v2/{a}/credentials"),
            Some(json!({"name": "customer-role", "secrets": {"type": "aws_iam_role", "arn": arn}})),
        )
        .await?;
    let cred_id = cred["id"].as_str().unwrap_or_default().to_string();

    let pro = "D12D5E67-166C-474F-87AA-6F86FC9FB9BC";
    let ess = "A8E8B104-8F45-411D-A240-A30EA5FE25B0";
    let scope = json!({"include": [
        {"type": "region", "key": "/aws/us-east-1", "policy": {"id": pro}},
        {"type": "region", "key": "/aws/us-west-2", "policy": {"id": ess}}], "exclude": []});
    let dep = d
        .call(
            "Create the deployment: automatic mode, Professional in us-east-1, Essentials in us-west-2",
            &format!("deployments create_deployment --account_id {a} --name demo --platform '{{\"type\": \"aws\", \"id\": \"{}\"}}' --mode automatic --credentials '[{{\"id\": \"{cred_id}\", \"purpose\": \"discover\"}}]' --scope '{scope}'", acct.account),
            "POST",
            &format!("/deployments/v1/{a}/deployments"),
            Some(json!({"name": "demo", "platform": {"type": "aws", "id": acct.account}, "mode": "automatic",
                        "credentials": [{"id": cred_id, "purpose": "discover"}], "scope": scope})),
        )
        .await?;
    let dep_id = dep["id"].as_str().unwrap_or_default().to_string();

    d.say(
        "Wait for the worker to discover the account and protect it",
        &format!("garrison deployments get_protection --account_id {a} --deployment_id {dep_id}"),
    );
    let t = Instant::now();
    let report = loop {
        if let Ok(r) = d.quiet("GET", &format!("/deployments/v1/{a}/deployments/{dep_id}/protection"), None).await
            && r["mode"] == "automatic"
        {
            break r;
        }
        if t.elapsed() > Duration::from_secs(180) {
            anyhow::bail!("the worker did not protect the account within 180 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let got = d.quiet("GET", &format!("/deployments/v1/{a}/deployments/{dep_id}"), None).await?;
    println!(
        "    {} after {:.1}s: {}",
        got["status"]["status"],
        t.elapsed().as_secs_f64(),
        got["status"]["message"].as_str().unwrap_or("")
    );
    let again = d
        .call(
            "Preview the next reconcile: nothing left to do",
            &format!("deployments plan_deployment --account_id {a} --deployment_id {dep_id} --query counts"),
            "GET",
            &format!("/deployments/v1/{a}/deployments/{dep_id}/plan"),
            None,
        )
        .await?;
    println!("    {} action(s) planned", again["actions"].as_array().map(|x| x.len()).unwrap_or(0));
    let audit = d
        .call(
            "Read the audit log of AWS writes",
            &format!("deployments list_audit_log --account_id {a} --deployment_id {dep_id} --limit 100000"),
            "GET",
            &format!("/deployments/v1/{a}/deployments/{dep_id}/audit?limit=100000"),
            None,
        )
        .await?;
    let entries = audit["entries"].as_array().cloned().unwrap_or_default();
    let failed = entries.iter().filter(|e| e["outcome"] != "ok").count();
    println!("    {} write(s), {} failed", entries.len(), failed);

    println!("\nSummary");
    println!(
        "  deployment   {} ({dep_id}), AWS account {}, mode {}",
        got["name"].as_str().unwrap_or(""),
        acct.account,
        got["mode"].as_str().unwrap_or("")
    );
    println!("  role         {arn}: {}", v["status"].as_str().unwrap_or(""));
    println!("  status       {}", got["status"]["status"].as_str().unwrap_or(""));
    let vpcs = report["vpcs"].as_array().cloned().unwrap_or_default();
    for v in &built.accounts[0].vpcs {
        let running = v.instances.iter().filter(|i| i.running).count();
        let level = if v.region == "us-east-1" { "Professional" } else { "Essentials" };
        println!(
            "  {:<10} {:<22} {:>2} host(s) running, {:>2} stopped, {level}",
            v.region,
            v.id,
            running,
            v.instances.len() - running
        );
        let here = vpcs.iter().find(|x| x["vpc_id"] == v.id.as_str());
        match here.and_then(|x| x["appliances"].as_array()) {
            Some(apps) => {
                for ap in apps {
                    println!(
                        "      {:<4} {:<20} {:<11} {:<12} {:<8} ${:.2}/month",
                        if ap["role"] == "ids" { "IDS" } else { "scan" },
                        ap["instance_id"].as_str().unwrap_or(""),
                        ap["instance_type"].as_str().unwrap_or(""),
                        ap["zone"].as_str().unwrap_or(""),
                        ap["state"].as_str().unwrap_or(""),
                        ap["monthly_usd"].as_f64().unwrap_or(0.0)
                    );
                }
            }
            None => println!("      no appliance: nothing running to protect"),
        }
    }
    let src = &report["audit_source"];
    let trail = &src["trail"];
    println!(
        "  audit source trail {} ({}), bucket {}, queue {}",
        trail["id"].as_str().unwrap_or("-"),
        if trail["adopted"] == true { "the customer's, adopted and left as it is" } else { "created by garrison" },
        src["bucket"]["id"].as_str().unwrap_or("-"),
        src["queue"]["id"].as_str().unwrap_or("- (the adopted trail publishes no notifications)"),
    );
    for det in src["detectors"].as_array().into_iter().flatten() {
        println!(
            "  GuardDuty    {} detector {} ({})",
            det["region"].as_str().unwrap_or(""),
            det["id"].as_str().unwrap_or(""),
            if det["adopted"] == true { "adopted" } else { "created" }
        );
    }
    for rec in src["recorders"].as_array().into_iter().flatten() {
        println!(
            "  Config       {} recorder {} ({})",
            rec["region"].as_str().unwrap_or(""),
            rec["name"].as_str().unwrap_or(""),
            if rec["adopted"] == true { "adopted" } else { "created" }
        );
    }
    println!("  flow logs    {} VPC(s)", src["flow_logs"]);
    println!("  cost         ${:.2}/month in appliances", report["monthly_appliance_usd"].as_f64().unwrap_or(0.0));
    if keep_serving {
        println!("\nThe dashboard: {}/ (sign in with the access key below)", d.client.conn.endpoint);
        println!("GARRISON_ENDPOINT={}", d.client.conn.endpoint);
        println!("GARRISON_ACCESS_KEY_ID={}", d.client.conn.access_key_id);
        println!("GARRISON_SECRET_KEY={}", d.client.conn.secret_key);
        // The emulator's address, for what AWS would do meanwhile (a finding, a new host).
        println!("GARRISON_DEMO_AWS_ENDPOINT={}", moto.url);
        println!("Serving until Ctrl-C (or end of input).");
        wait_for_stop().await;
    }
    let _ = stop.send(());
    let _ = handle.await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Ctrl-C, SIGTERM or the end of standard input (a test that holds the pipe and drops it):
/// each ends the demo with its cleanup (the emulator, the temporary directory).
async fn wait_for_stop() {
    use tokio::io::AsyncReadExt;
    let eof = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = eof => {}
        _ = term => {}
    }
}

pub async fn main(argv: Vec<String>) -> ExitCode {
    // The demo's own narration is the output; the server's log is kept to warnings.
    serve::init_tracing_default("warn");
    let keep_serving = argv.iter().any(|a| a == "--serve");
    if let Some(other) = argv.iter().skip_while(|a| *a != "demo").skip(1).find(|a| *a != "--serve") {
        eprintln!(
            "garrison demo: unknown option {other:?}; the only option is --serve (keep the server and dashboard up afterwards)"
        );
        return ExitCode::from(2);
    }
    match run(keep_serving).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("garrison demo: {e:#}");
            ExitCode::from(1)
        }
    }
}
