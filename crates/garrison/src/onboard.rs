//! `garrison onboard`: the reference's five manual steps as one command. With the customer's
//! AWS credentials (standard chain, `--profile`): get the role from garrison → create (or
//! find, or upgrade) the CloudFormation stack → read the role ARN → wait until garrison can
//! assume and validate it → store the credential → create the deployment → follow the first
//! reconcile until the account is protected, or say what failed. Every step finds and reuses
//! what a previous run made, so running it again changes nothing.
//!
//! `--organization` enrolls an organization once, and garrison keeps it from then on: the
//! management account gets its own role (a `ci_organization` stack), garrison a credential
//! for it and an organization enrollment (units, exclusions, the deployment template the
//! flags make), and the enrollment loop gives every account of the units garrison's role
//! (a service-managed StackSet), a credential and a deployment, now and as accounts join,
//! move or leave. The command waits until the units' accounts are enrolled and protected.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use garrison_catalog::policies::{ENTERPRISE, ESSENTIALS, PROFESSIONAL};
use garrison_cloud::{Aws, stacks};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::client::{CallError, Client, Overrides, resolve};

mod follow;
mod organization;
use follow::{describe_outcome, follow, outcome};
use organization::organization;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "garrison onboard",
    about = "Connect an AWS account (or an organization's accounts) to garrison in one command"
)]
pub struct Args {
    /// AWS profile of the customer account; it wins over credentials in the environment, as
    /// with the AWS CLI (without it: the standard chain: environment, ~/.aws, instance role)
    #[arg(long)]
    profile: Option<String>,
    /// Refuse to write unless the AWS credentials are this 12-digit account's (the
    /// management account's with --organization)
    #[arg(long = "expect-account")]
    expect_account: Option<String>,
    /// Region of the CloudFormation stack or StackSet instances (IAM is global; default: the AWS configuration's, else us-east-1)
    #[arg(long = "stack-region")]
    stack_region: Option<String>,
    /// Name of the CloudFormation stack (with --organization: of the StackSet, the
    /// management account's stack being NAME-management)
    #[arg(long = "stack-name", default_value = "garrison")]
    stack_name: String,
    /// Deployment name (default: "aws <account id>")
    #[arg(long)]
    name: Option<String>,
    /// Deployment mode: automatic (role ci_full), manual (ci_manual) or readonly (ci_readonly)
    #[arg(long, default_value = "automatic", value_parser = ["automatic", "manual", "readonly"])]
    mode: String,
    /// A region to protect (repeat the flag for several)
    #[arg(long = "region")]
    regions: Vec<String>,
    /// One VPC to protect, as REGION/VPC-ID (repeatable)
    #[arg(long = "vpc")]
    vpcs: Vec<String>,
    /// Scope by VPC tag: in each --region, the VPCs carrying KEY (with VALUE, when given)
    /// rather than every VPC, e.g. --tag garrison:protect=true
    #[arg(long = "tag")]
    tag: Option<String>,
    /// A scope key to exclude: /aws/REGION[/vpc|subnet|host/ID] (repeatable)
    #[arg(long = "exclude")]
    excludes: Vec<String>,
    /// Protection level of everything in scope
    #[arg(long, default_value = "professional", value_parser = ["essentials", "professional", "enterprise"])]
    level: String,
    /// How long to wait, in seconds, for the stack, the role and the first reconcile each
    #[arg(long, default_value_t = 600)]
    wait: u64,
    /// Stop once the deployment exists instead of following its first reconcile
    #[arg(long = "no-follow")]
    no_follow: bool,
    /// Onboard the accounts of organizational units through a StackSet (run with the management account's credentials)
    #[arg(long)]
    organization: bool,
    /// An organizational unit whose accounts to enroll, with its child units (repeatable; with --organization)
    #[arg(long = "organizational-unit")]
    units: Vec<String>,
    /// An account of those units to leave alone (repeatable; with --organization)
    #[arg(long = "exclude-account")]
    exclude_accounts: Vec<String>,
    /// A child unit of those units to leave alone (repeatable; with --organization)
    #[arg(long = "exclude-unit")]
    exclude_units: Vec<String>,
    /// Where the accounts' management events go (with --organization): a bus and queue in
    /// each account, or one bus in the management account and one queue for all
    #[arg(long = "event-feed", default_value = "per_account", value_parser = ["per_account", "organization"])]
    event_feed: String,
    /// json: print the outcome as one JSON document on stdout (progress goes to stderr either way)
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    output: String,
    /// garrison endpoint (else GARRISON_ENDPOINT, ALERTLOGIC_ENDPOINT, ~/.garrison/config)
    #[arg(long)]
    endpoint: Option<String>,
    /// garrison access key id
    #[arg(long = "access_key_id")]
    access_key_id: Option<String>,
    /// garrison secret key
    #[arg(long = "secret_key")]
    secret_key: Option<String>,
    /// garrison profile in ~/.garrison/config (--profile is the AWS one)
    #[arg(long = "garrison-profile")]
    garrison_profile: Option<String>,
}

/// Stops before the first write when the credentials are not the expected account's.
fn expected(a: &Args, actual: &str) -> Result<(), Failure> {
    match &a.expect_account {
        Some(want) if want != actual => Err(fail(format!(
            "the AWS credentials{} are for account {actual}, not {want} (--expect-account): nothing was written",
            a.profile.as_ref().map(|p| format!(" (profile {p})")).unwrap_or_default()
        ))),
        _ => Ok(()),
    }
}

/// A step's failure: what was being done and why it failed; exit status 1 unless usage.
struct Failure {
    what: String,
    usage: bool,
}

fn fail(what: impl Into<String>) -> Failure {
    Failure { what: what.into(), usage: false }
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Failure {
        match e {
            CallError::Http { status, body } => fail(format!("garrison answered HTTP {status}: {body}")),
            CallError::Transport(t) => fail(t),
        }
    }
}

impl From<garrison_cloud::CloudError> for Failure {
    fn from(e: garrison_cloud::CloudError) -> Failure {
        fail(format!("AWS {} {}: {}: {}", e.service, e.operation, e.code, e.message))
    }
}

/// What a step did: made something, found it as wanted, or changed it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Action {
    Created,
    Reused,
    Updated,
}

impl Action {
    fn word(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Reused => "reused",
            Action::Updated => "updated",
        }
    }
}

struct Ui;

impl Ui {
    fn step(&self, text: &str) {
        eprintln!("{text}");
    }

    fn spinner(&self, text: &str) -> ProgressBar {
        // indicatif draws only on a terminal; elsewhere the step lines are the record.
        let pb = ProgressBar::new_spinner();
        pb.set_style(ProgressStyle::with_template("  {spinner} {msg} [{elapsed}]").expect("static template"));
        pb.enable_steady_tick(Duration::from_millis(120));
        pb.set_message(text.to_string());
        pb
    }
}

fn role_type(mode: &str) -> &'static str {
    match mode {
        "manual" => "ci_manual",
        "readonly" => "ci_readonly",
        _ => "ci_full",
    }
}

/// The deployment scope the flags ask for, or what is wrong with them.
fn scope_from(a: &Args) -> Result<Value, Failure> {
    let usage = |what: String| Failure { what, usage: true };
    let policy = match a.level.as_str() {
        "essentials" => ESSENTIALS,
        "enterprise" => ENTERPRISE,
        _ => PROFESSIONAL,
    };
    if a.regions.is_empty() && a.vpcs.is_empty() {
        return Err(usage("scope: expected at least one --region REGION or --vpc REGION/VPC-ID, found neither".into()));
    }
    if a.tag.is_some() && a.regions.is_empty() {
        return Err(usage("--tag: expected at least one --region whose VPCs it selects, found none".into()));
    }
    let mut include = vec![];
    for r in &a.regions {
        let item = match &a.tag {
            Some(tag) => json!({"type": "tag", "key": format!("/aws/{r}/tag/{tag}"), "policy": {"id": policy}}),
            None => json!({"type": "region", "key": format!("/aws/{r}"), "policy": {"id": policy}}),
        };
        include.push(item);
    }
    for v in &a.vpcs {
        let Some((region, vpc)) = v.split_once('/').filter(|(r, v)| !r.is_empty() && v.starts_with("vpc-")) else {
            return Err(usage(format!("--vpc: expected REGION/VPC-ID such as us-east-1/vpc-0abc, found {v:?}")));
        };
        include.push(json!({"type": "vpc", "key": format!("/aws/{region}/vpc/{vpc}"), "policy": {"id": policy}}));
    }
    let mut exclude = vec![];
    for k in &a.excludes {
        let parts: Vec<&str> = k.trim_start_matches('/').split('/').collect();
        let kind = match parts.as_slice() {
            ["aws", _] => "region",
            ["aws", _, kind @ ("vpc" | "subnet" | "host"), _] => kind,
            _ => {
                return Err(usage(format!(
                    "--exclude: expected /aws/REGION or /aws/REGION/vpc|subnet|host/ID, found {k:?}"
                )));
            }
        };
        exclude.push(json!({"type": kind, "key": k}));
    }
    Ok(json!({"include": include, "exclude": exclude}))
}

async fn call(c: &Client, method: &str, path: &str, body: Option<Value>) -> Result<Value, Failure> {
    Ok(c.call(method, path, &[], body.as_ref()).await?.1)
}

/// The role version a stack was made from, read off its description.
fn stack_version(description: &str) -> Option<&str> {
    description.split("version ").nth(1).and_then(|s| s.split(':').next())
}

/// Polls themis validate_credentials until the role validates, telling a role that is not
/// assumable yet (IAM propagation) apart from one that is wrong (which fails at once).
async fn validate(ui: &Ui, c: &Client, rt: &str, arn: &str, ext: &str, wait: Duration) -> Result<Value, Failure> {
    let pb = ui.spinner(&format!("validating {arn}"));
    let start = Instant::now();
    let body = json!({"credential": {"platform_type": "aws", "role_type": rt, "arn": arn, "external_id": ext}});
    let result = loop {
        match c.call("POST", &format!("/themis/v1/validate/aws/{rt}"), &[], Some(&body)).await {
            Ok((_, v)) => break Ok(v),
            Err(CallError::Http { status: 400, body: v }) if v["status"] == "not_assumable_yet" => {
                if start.elapsed() > wait {
                    break Err(fail(format!(
                        "the role {arn} could still not be assumed after {}s (IAM propagation takes up to a minute; check the trust policy): {}",
                        wait.as_secs(),
                        v["message"].as_str().unwrap_or_default()
                    )));
                }
                pb.set_message(format!("waiting for IAM to propagate {arn}"));
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(CallError::Http { status: 400, body: v }) => {
                let mut why = format!("the role {arn} is not usable: {}", v["message"].as_str().unwrap_or_default());
                let missing = &v["validation"]["capabilities"];
                if let Some(m) = missing.as_object() {
                    for (cap, r) in m.iter().filter(|(_, r)| r["ok"] == false) {
                        why.push_str(&format!("\n    {cap}: missing {}", r["missing"]));
                    }
                }
                for t in v["validation"]["trust_problems"].as_array().into_iter().flatten() {
                    why.push_str(&format!("\n    trust: {}", t.as_str().unwrap_or_default()));
                }
                break Err(fail(why));
            }
            Err(e) => break Err(e.into()),
        }
    };
    pb.finish_and_clear();
    result
}

/// The credential for `arn`: one that holds it already, else a new one.
async fn credential(c: &Client, a: &str, arn: &str, name: &str) -> Result<(String, Action), Failure> {
    let list = call(c, "GET", &format!("/credentials/v2/{a}/credentials"), None).await?;
    if let Some(found) = list.as_array().into_iter().flatten().find(|x| x["secrets"]["arn"] == arn) {
        return Ok((found["id"].as_str().unwrap_or_default().to_string(), Action::Reused));
    }
    let made = call(
        c,
        "POST",
        &format!("/credentials/v2/{a}/credentials"),
        Some(json!({"name": name, "secrets": {"type": "aws_iam_role", "arn": arn}})),
    )
    .await?;
    Ok((made["id"].as_str().unwrap_or_default().to_string(), Action::Created))
}

/// Scopes compared as the API normalises them: the same items in any order.
fn same_scope(a: &Value, b: &Value) -> bool {
    let items = |v: &Value, k: &str| {
        let mut x: Vec<(String, String, String)> = v[k]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                (
                    i["type"].as_str().unwrap_or_default().to_string(),
                    i["key"].as_str().unwrap_or_default().to_string(),
                    i["policy"]["id"].as_str().unwrap_or_default().to_uppercase(),
                )
            })
            .collect();
        x.sort();
        x
    };
    items(a, "include") == items(b, "include") && items(a, "exclude") == items(b, "exclude")
}

/// The deployment of AWS account `aws_account`: the existing one (updated when mode, scope
/// or credential differ), else a new one; with an update, the generation of the last report
/// (the update waits for a later one).
async fn deployment(
    c: &Client,
    a: &str,
    aws_account: &str,
    name: &str,
    mode: &str,
    scope: &Value,
    cred_id: &str,
) -> Result<(Value, Action, Option<i64>), Failure> {
    let list = call(c, "GET", &format!("/deployments/v1/{a}/deployments"), None).await?;
    let creds = json!([{"id": cred_id, "purpose": "discover"}]);
    let existing = list.as_array().into_iter().flatten().find(|d| d["platform"]["id"] == aws_account).cloned();
    match existing {
        Some(d) => {
            let same = d["mode"] == mode
                && same_scope(&d["scope"], scope)
                && d["credentials"].as_array().is_some_and(|cs| cs.iter().any(|x| x["id"] == cred_id));
            if same {
                return Ok((d, Action::Reused, None));
            }
            let id = d["id"].as_str().unwrap_or_default();
            // The last finished reconcile's generation: the update waits for a later one.
            let prior = c
                .call("GET", &format!("/deployments/v1/{a}/deployments/{id}/protection"), &[], None)
                .await
                .map_or(Some(0), |(_, r)| r["generation"].as_i64());
            let updated = call(
                c,
                "PUT",
                &format!("/deployments/v1/{a}/deployments/{id}"),
                Some(json!({"mode": mode, "scope": scope, "credentials": creds, "version": d["version"]})),
            )
            .await?;
            Ok((updated, Action::Updated, prior))
        }
        None => {
            let made = call(
                c,
                "POST",
                &format!("/deployments/v1/{a}/deployments"),
                Some(json!({"name": name, "platform": {"type": "aws", "id": aws_account}, "mode": mode,
                            "credentials": creds, "scope": scope})),
            )
            .await?;
            Ok((made, Action::Created, None))
        }
    }
}

/// One run's settings: where garrison is, the flags, the tenant account, the scope.
#[derive(Clone, Copy)]
struct Onboarding<'a> {
    ui: &'a Ui,
    c: &'a Client,
    a: &'a Args,
    account: &'a str,
    scope: &'a Value,
}

/// Everything garrison needs per account once its role exists: validate, credential,
/// deployment. Returns the step record and, when this run changed the deployment, the
/// status time to wait past.
async fn connect_account(
    o: &Onboarding<'_>,
    aws_account: &str,
    arn: &str,
    ext: &str,
) -> Result<(Value, String, Option<Option<i64>>), Failure> {
    let Onboarding { ui, c, a, account, scope } = *o;
    let rt = role_type(&a.mode);
    let v = validate(ui, c, rt, arn, ext, Duration::from_secs(a.wait)).await?;
    ui.step(&format!("  role {arn} validated: {}", v["message"].as_str().unwrap_or_default()));
    let (cred, cred_action) = credential(c, account, arn, &format!("garrison role in {aws_account}")).await?;
    ui.step(&format!("  credential {cred}: {}", cred_action.word()));
    let name = a.name.clone().unwrap_or_else(|| format!("aws {aws_account}"));
    let (d, d_action, prior) = deployment(c, account, aws_account, &name, &a.mode, scope, &cred).await?;
    let id = d["id"].as_str().unwrap_or_default().to_string();
    ui.step(&format!("  deployment {id} ({name}): {}", d_action.word()));
    let wait_since = match d_action {
        Action::Created => Some(None),
        Action::Updated => Some(prior),
        Action::Reused => None,
    };
    let record = json!({"aws_account": aws_account, "role_arn": arn,
                        "credential": {"id": cred, "action": cred_action.word()},
                        "deployment": {"id": id, "action": d_action.word()}});
    Ok((record, id, wait_since))
}

async fn follow_and_report(
    ui: &Ui,
    c: &Client,
    a: &Args,
    account: &str,
    ids: &[(String, Option<Option<i64>>)],
) -> Result<Vec<Value>, Failure> {
    let waiting: Vec<(String, Option<i64>)> =
        ids.iter().filter_map(|(id, w)| w.map(|since| (id.clone(), since))).collect();
    if !waiting.is_empty() && !a.no_follow {
        ui.step(&format!("following the first reconcile of {} deployment(s)", waiting.len()));
        follow(ui, c, account, waiting, Duration::from_secs(a.wait)).await?;
    }
    let mut outcomes = vec![];
    for (id, _) in ids {
        let d = call(c, "GET", &format!("/deployments/v1/{account}/deployments/{id}"), None).await?;
        outcomes.push(outcome(c, account, &d).await?);
    }
    Ok(outcomes)
}

/// The stack of garrison's role of type `rt` in the AWS account of `aws`, made, reused or
/// upgraded to the latest version; waits for it. Returns the role ARN, the external id and
/// what was done.
async fn role_stack(
    ui: &Ui,
    c: &Client,
    aws: &Aws,
    a: &Args,
    account: &str,
    rt: &str,
    stack_name: &str,
) -> Result<(String, String, Action), Failure> {
    let role = call(c, "GET", &format!("/themis/v1/{account}/roles/aws/{rt}/latest"), None).await?;
    let (ext, version) =
        (role["external_id"].as_str().unwrap_or_default(), role["version"].as_str().unwrap_or_default());
    ui.step(&format!(
        "[3/6] role {rt} version {version}, trusting AWS account {}",
        role["aws_account_id"].as_str().unwrap_or_default()
    ));
    let template = call(c, "GET", &format!("/themis/v1/templates/aws/{rt}/{version}"), None).await?.to_string();
    let found = stacks::find_stack(aws, stack_name).await?;
    let stack_action = match &found {
        None => {
            stacks::start_create(aws, stack_name, &template, ext).await?;
            Action::Created
        }
        Some(f)
            if f.role.is_some()
                && f.external_id.as_deref() == Some(ext)
                && stack_version(&f.description) == Some(version) =>
        {
            Action::Reused
        }
        Some(f) if f.role.is_some() => {
            stacks::start_update(aws, stack_name, &template, ext).await?;
            Action::Updated
        }
        Some(f) if f.status.ends_with("_IN_PROGRESS") => Action::Reused,
        Some(f) => {
            return Err(fail(format!(
                "the stack {stack_name} exists in state {}: delete it (aws cloudformation delete-stack --stack-name {stack_name}) or pass --stack-name",
                f.status
            )));
        }
    };
    let pb = ui.spinner(&format!("stack {stack_name}"));
    let made = stacks::wait_stack(aws, stack_name, Duration::from_secs(a.wait), |status, n| {
        pb.set_message(format!("stack {stack_name}: {status}, {n} resource(s) complete"))
    })
    .await;
    pb.finish_and_clear();
    let made = made?;
    ui.step(&format!("[4/6] stack {stack_name} {}: role {}", stack_action.word(), made.role_arn));
    Ok((made.role_arn, ext.to_string(), stack_action))
}

async fn single(ui: &Ui, c: &Client, aws: &Aws, a: &Args, account: &str, scope: &Value) -> Result<Value, Failure> {
    let rt = role_type(&a.mode);
    let aws_account = stacks::caller_account(aws).await?;
    ui.step(&format!("[2/6] AWS account {aws_account} (stack region {})", aws.region()));
    expected(a, &aws_account)?;
    let (role_arn, ext, stack_action) = role_stack(ui, c, aws, a, account, rt, &a.stack_name).await?;
    let ext = ext.as_str();
    ui.step("[5/6] connecting the account");
    let (mut record, id, wait_since) =
        connect_account(&Onboarding { ui, c, a, account, scope }, &aws_account, &role_arn, ext).await?;
    record["stack"] = json!({"name": a.stack_name, "action": stack_action.word()});
    ui.step("[6/6] protection");
    let outcomes = follow_and_report(ui, c, a, account, &[(id, wait_since)]).await?;
    record["outcome"] = outcomes[0].clone();
    Ok(json!({"accounts": [record]}))
}

async fn run(a: Args) -> Result<Value, Failure> {
    let ui = Ui;
    let scope = scope_from(&a)?;
    if let Some(want) = &a.expect_account
        && !(want.len() == 12 && want.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(Failure {
            what: format!("--expect-account: expected a 12-digit AWS account id, found {want:?}"),
            usage: true,
        });
    }
    let conn = resolve(&Overrides {
        endpoint: a.endpoint.clone(),
        access_key_id: a.access_key_id.clone(),
        secret_key: a.secret_key.clone(),
        profile: a.garrison_profile.clone(),
        ca_bundle: None,
    })
    .map_err(|what| Failure { what, usage: true })?;
    let mut c = Client::new(conn);
    c.authenticate().await?;
    let account = c.account_id.clone().unwrap_or_default();
    ui.step(&format!("[1/6] garrison at {}, account {account}", c.conn.endpoint));
    let mut aws = Aws::from_env(a.profile.as_deref()).await;
    if let Some(r) = &a.stack_region {
        aws = aws.in_region(r);
    } else if aws.configured_region().is_none() {
        aws = aws.in_region("us-east-1");
    }
    if a.organization {
        organization(&ui, &c, &aws, &a, &account, &scope).await
    } else {
        single(&ui, &c, &aws, &a, &account, &scope).await
    }
}

pub async fn main(argv: Vec<String>) -> ExitCode {
    let pos = argv.iter().position(|a| a == "onboard").unwrap_or(1);
    let args = Args::parse_from(std::iter::once("garrison onboard".to_string()).chain(argv[pos + 1..].iter().cloned()));
    let json_out = args.output == "json";
    match run(args).await {
        Ok(v) => {
            let accounts = v["accounts"].as_array().cloned().unwrap_or_default();
            let changed = accounts.iter().any(|r| {
                ["stack", "credential", "deployment"]
                    .iter()
                    .any(|k| r[*k]["action"].as_str().is_some_and(|x| x != "reused"))
            }) || v["stack_set"]["action"] == "created";
            let bad = accounts.iter().any(|r| r.get("error").is_some() || r["outcome"]["status"] == "error");
            if json_out {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                println!("\nOnboarded{}", if changed { "" } else { ": nothing changed (everything was in place)" });
                for r in &accounts {
                    match r.get("error") {
                        Some(e) => println!("  AWS account {}: {}", r["aws_account"].as_str().unwrap_or_default(), e),
                        None => println!("{}", describe_outcome(&r["outcome"])),
                    }
                }
            }
            if bad { ExitCode::from(1) } else { ExitCode::SUCCESS }
        }
        Err(f) => {
            eprintln!("garrison onboard: {}", f.what);
            ExitCode::from(if f.usage { 2 } else { 1 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Args {
        Args::parse_from(std::iter::once("onboard").chain(a.iter().copied()))
    }

    #[test]
    fn the_flags_make_the_scope() {
        let s = scope_from(&args(&[
            "--region",
            "us-east-1",
            "--vpc",
            "eu-west-1/vpc-0abc",
            "--exclude",
            "/aws/us-east-1/subnet/subnet-1",
            "--level",
            "essentials",
        ]))
        .unwrap_or_else(|f| panic!("{}", f.what));
        assert_eq!(
            s,
            json!({"include": [
                {"type": "region", "key": "/aws/us-east-1", "policy": {"id": ESSENTIALS}},
                {"type": "vpc", "key": "/aws/eu-west-1/vpc/vpc-0abc", "policy": {"id": ESSENTIALS}}],
              "exclude": [{"type": "subnet", "key": "/aws/us-east-1/subnet/subnet-1"}]})
        );
        let tagged =
            scope_from(&args(&["--region", "us-east-1", "--region", "eu-west-1", "--tag", "garrison:protect=true"]))
                .unwrap_or_else(|f| panic!("{}", f.what));
        assert_eq!(
            tagged["include"],
            json!([{"type": "tag", "key": "/aws/us-east-1/tag/garrison:protect=true", "policy": {"id": PROFESSIONAL}},
                   {"type": "tag", "key": "/aws/eu-west-1/tag/garrison:protect=true", "policy": {"id": PROFESSIONAL}}])
        );
        for (flags, says) in [
            (&[][..], "at least one --region"),
            (&["--vpc", "vpc-1"][..], "--vpc: expected REGION/VPC-ID"),
            (&["--region", "us-east-1", "--exclude", "us-east-1"][..], "--exclude: expected /aws/REGION"),
            (&["--region", "us-east-1", "--exclude", "/aws/us-east-1/bucket/b"][..], "--exclude"),
            (
                &["--vpc", "us-east-1/vpc-0abc", "--tag", "garrison:protect=true"][..],
                "--tag: expected at least one --region",
            ),
        ] {
            let f = scope_from(&args(flags)).expect_err("refused");
            assert!(f.usage && f.what.contains(says), "{flags:?}: {}", f.what);
        }
    }

    #[test]
    fn scopes_compare_as_sets_with_policy_ids_in_any_case() {
        let a = json!({"include": [{"type": "region", "key": "/aws/a", "policy": {"id": "abc"}},
                                   {"type": "region", "key": "/aws/b", "policy": {"id": "abc"}}], "exclude": []});
        let b = json!({"include": [{"type": "region", "key": "/aws/b", "policy": {"id": "ABC"}},
                                   {"type": "region", "key": "/aws/a", "policy": {"id": "ABC"}}], "exclude": []});
        assert!(same_scope(&a, &b));
        let mut c = b.clone();
        c["exclude"] = json!([{"type": "vpc", "key": "/aws/a/vpc/vpc-1"}]);
        assert!(!same_scope(&a, &c));
    }

    #[test]
    fn the_stack_description_names_the_role_version() {
        assert_eq!(stack_version("garrison ci_full role, version 2026-11-30: Automatic mode"), Some("2026-11-30"));
        assert_eq!(stack_version("someone else's stack"), None);
    }
}
