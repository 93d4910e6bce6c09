//! `garrison demo`: the reference workflow end to end against a private server with
//! embedded SQLite in a fresh temporary directory, then a summary.

use std::process::ExitCode;

use serde_json::{Value, json};

use crate::client::{CallError, Client, Connection};
use crate::serve::{self, ServeArgs};

/// The AWS account the demo's role lives in (the emulator's default account).
const DEMO_AWS_ACCOUNT: &str = "123456789012";

struct Demo {
    client: Client,
    account: String,
    step: usize,
}

impl Demo {
    async fn call(
        &mut self,
        what: &str,
        cli: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        self.step += 1;
        println!("\n[{}] {what}\n    $ garrison {cli}", self.step);
        match self.client.call(method, path, &[], body.as_ref()).await {
            Ok((_, v)) => Ok(v),
            Err(CallError::Http { status, body }) => anyhow::bail!("{what}: HTTP {status}: {body}"),
            Err(CallError::Transport(e)) => anyhow::bail!("{what}: {e}"),
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("garrison-demo-{}-{}", std::process::id(), rand::random::<u32>()));
    let settings = serve::resolve(ServeArgs {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.clone()),
        ..Default::default()
    })?;
    let key = (format!("{:016x}", rand::random::<u64>()), hex::encode(rand::random::<[u8; 32]>()));
    let (addr, handle, stop) = serve::start(&settings, Some(key.clone())).await?;
    let endpoint = format!("http://{addr}");
    println!("garrison demo: server on {endpoint}, embedded SQLite in {}", dir.display());

    let mut client = Client::new(Connection {
        endpoint: endpoint.clone(),
        access_key_id: key.0,
        secret_key: key.1,
        account_id: None,
    });
    client.authenticate().await.map_err(|e| anyhow::anyhow!("authenticate: {e:?}"))?;
    let account = client.account_id.clone().unwrap_or_default();
    let mut d = Demo { client, account: account.clone(), step: 0 };
    let a = d.account.clone();

    let role = d
        .call(
            "Get the role garrison needs (automatic mode)",
            &format!("themis get_role --account_id {a} --platform_type aws --role_type ci_full --role_version latest"),
            "GET",
            &format!("/themis/v1/{a}/roles/aws/ci_full/latest"),
            None,
        )
        .await?;
    println!(
        "    role ci_full version {}, trust AWS account {}, external id {}…, template {}",
        role["version"],
        role["aws_account_id"],
        &role["external_id"].as_str().unwrap_or("").chars().take(6).collect::<String>(),
        role["cft"]["s3_url"]
    );
    let arn = format!("arn:aws:iam::{DEMO_AWS_ACCOUNT}:role/garrison-ci-full");
    println!("    (the customer creates the role from that template; the demo uses {arn})");

    let cred = d
        .call(
            "Store the role as a credential",
            &format!("credentials create_credential --account_id {a} --name demo-role --secrets '{{\"type\": \"aws_iam_role\", \"arn\": \"{arn}\"}}'"),
            "POST",
            &format!("/credentials/v2/{a}/credentials"),
            Some(json!({"name": "demo-role", "secrets": {"type": "aws_iam_role", "arn": arn}})),
        )
        .await?;
    let cred_id = cred["id"].as_str().unwrap_or_default().to_string();
    println!("    credential {cred_id}");

    let policies = d
        .call(
            "List protection policies",
            &format!("policies list_policies --account_id {a}"),
            "GET",
            &format!("/policies/v1/{a}/policies"),
            None,
        )
        .await?;
    let pro = policies
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "Professional"))
        .and_then(|p| p["id"].as_str())
        .unwrap_or_default()
        .to_string();
    println!("    Professional = {pro}");

    let scope = json!({"include": [{"type": "region", "key": "/aws/us-east-1", "policy": {"id": pro}}], "exclude": []});
    let dep = d
        .call(
            "Create the deployment (automatic mode, Professional in us-east-1)",
            &format!("deployments create_deployment --account_id {a} --name demo --platform '{{\"type\": \"aws\", \"id\": \"{DEMO_AWS_ACCOUNT}\"}}' --mode automatic --credentials '[{{\"id\": \"{cred_id}\", \"purpose\": \"discover\"}}]' --scope '{scope}'"),
            "POST",
            &format!("/deployments/v1/{a}/deployments"),
            Some(json!({"name": "demo", "platform": {"type": "aws", "id": DEMO_AWS_ACCOUNT}, "mode": "automatic",
                        "credentials": [{"id": cred_id, "purpose": "discover"}], "scope": scope})),
        )
        .await?;
    let dep_id = dep["id"].as_str().unwrap_or_default().to_string();
    let got = d
        .call(
            "Read it back",
            &format!("deployments get_deployment --account_id {a} --deployment_id {dep_id}"),
            "GET",
            &format!("/deployments/v1/{a}/deployments/{dep_id}"),
            None,
        )
        .await?;

    println!("\nSummary");
    println!("  account            {account}");
    println!("  deployment         {} ({}), version {}", got["name"].as_str().unwrap_or(""), dep_id, got["version"]);
    println!("  AWS account        {}", got["platform"]["id"].as_str().unwrap_or(""));
    println!("  mode               {}", got["mode"].as_str().unwrap_or(""));
    for it in got["scope"]["include"].as_array().into_iter().flatten() {
        let level = policies
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["id"] == it["policy"]["id"]))
            .and_then(|p| p["name"].as_str())
            .unwrap_or("?");
        println!(
            "  in scope           {} {} → {level}",
            it["type"].as_str().unwrap_or(""),
            it["key"].as_str().unwrap_or("")
        );
    }
    println!(
        "  audit source       CloudTrail in {}",
        got["platform"]["monitor"]["ct_install_region"].as_str().unwrap_or("")
    );
    println!("  status             {}", got["status"]["status"].as_str().unwrap_or(""));
    println!("  protection         recorded; garrison's AWS layer installs appliances in a later release of this demo");

    let _ = stop.send(());
    let _ = handle.await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

pub async fn main(_argv: Vec<String>) -> ExitCode {
    serve::init_tracing();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("garrison demo: {e:#}");
            ExitCode::from(1)
        }
    }
}
