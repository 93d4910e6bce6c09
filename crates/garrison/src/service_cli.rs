//! `garrison <service> <operation> --param value …`, built from the operation table in
//! the alcli grammar: path, query and top-level body properties are flags; JSON or
//! `file://` values; `--query` JMESPath; `--output json|table`. Any HTTP error is printed
//! to stderr and exits non-zero (unlike alcli, which exits 0).

use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command};
use garrison_model::ops::{self, In, Operation};
use serde_json::{Map, Value};

use crate::client::{CallError, Client, Overrides, resolve};
use crate::output;
use garrison_model::cli_args::{self as args, ArgError};

/// Global options and whether they take a value.
const GLOBALS: &[&str] = &[
    "--endpoint",
    "--global_endpoint",
    "--access_key_id",
    "--secret_key",
    "--profile",
    "--query",
    "--output",
    "--residency",
];

/// The first argument that is neither a global option nor its value.
pub fn first_word(args: &[String]) -> Option<String> {
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if GLOBALS.contains(&a.as_str()) {
            i += 2;
        } else if GLOBALS.iter().any(|g| a.starts_with(&format!("{g}="))) {
            i += 1;
        } else {
            return Some(a.clone());
        }
    }
    None
}

pub const EXIT_HTTP: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_UNREACHABLE: u8 = 3;

fn global(name: &'static str, help: &'static str) -> Arg {
    Arg::new(name).long(name).global(true).value_name("VALUE").help(help)
}

pub fn command() -> Command {
    let mut cmd = Command::new("garrison")
        .version(env!("CARGO_PKG_VERSION"))
        .about("garrison: protect AWS accounts automatically (Alert Logic MDR-compatible API and CLI)")
        .subcommand_required(true)
        .arg(
            global("endpoint", "garrison server URL (env GARRISON_ENDPOINT or ALERTLOGIC_ENDPOINT)")
                .alias("global_endpoint"),
        )
        .arg(global("access_key_id", "access key id (env GARRISON_ACCESS_KEY_ID or ALERTLOGIC_ACCESS_KEY_ID)"))
        .arg(global("secret_key", "secret key (env GARRISON_SECRET_KEY or ALERTLOGIC_SECRET_KEY)"))
        .arg(global("profile", "profile in ~/.garrison/config (env GARRISON_PROFILE)"))
        .arg(
            global(
                "ca-bundle",
                "PEM file of CAs to trust for an https endpoint, besides the system's (env GARRISON_CA_BUNDLE)",
            )
            .alias("ca_bundle"),
        )
        .arg(global("query", "JMESPath expression applied to the result"))
        .arg(global("output", "json (default) or table").value_parser(["json", "table"]))
        .arg(global("residency", "accepted for alcli compatibility; garrison has one residency").hide(true));
    // The commands besides the services, each parsed by its own module (`garrison X --help`).
    for (name, about) in [
        ("serve", "Run the API server (garrison serve --help)"),
        ("worker", "Run the reconcile loop and the collector alone, beside `serve --no-worker` (PostgreSQL)"),
        ("demo", "Run the reference workflow end to end against a private server"),
        ("onboard", "Create the role in an AWS account (or an organization's units) and connect it in one command"),
        ("publish-templates", "Put every role template in an S3 bucket for CloudFormation's TemplateURL"),
        ("rotate-seal-key", "Re-seal every stored secret under a new seal key (servers and workers stopped)"),
    ] {
        cmd = cmd.subcommand(Command::new(name).about(about).disable_help_flag(true).allow_external_subcommands(true));
    }
    for service in ops::services() {
        let mut s = Command::new(service).subcommand_required(true).about(format!("{service} service operations"));
        for op in ops::OPERATIONS.iter().filter(|o| o.service == service) {
            let mut c = Command::new(op.name).about(op.summary);
            for p in op.params {
                let required = p.required && p.name != "account_id";
                let help = if p.name == "account_id" {
                    format!("{} [default: the authenticated account]", p.help)
                } else {
                    p.help.to_string()
                };
                c = c.arg(
                    Arg::new(p.name)
                        .long(p.name)
                        .required(required)
                        .value_name(kind_name(p.kind))
                        .help(help)
                        .action(ArgAction::Set),
                );
            }
            s = s.subcommand(c);
        }
        cmd = cmd.subcommand(s);
    }
    cmd
}

fn kind_name(k: ops::Kind) -> &'static str {
    match k {
        ops::Kind::String => "STRING",
        ops::Kind::Integer => "INTEGER",
        ops::Kind::Boolean => "BOOL",
        ops::Kind::Object => "JSON_OBJECT",
        ops::Kind::Array => "JSON_ARRAY",
        ops::Kind::Json => "JSON",
    }
}

/// A request ready to send, built only from valid arguments.
#[derive(Debug, PartialEq)]
pub struct Request {
    pub method: &'static str,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The request for `op` from its flags, or every bad flag at once (one line each).
pub fn build(op: &Operation, m: &ArgMatches, default_account: Option<&str>) -> Result<Request, ArgError> {
    let mut path = op.path.to_string();
    let mut query = vec![];
    let mut body = Map::new();
    let mut whole = None;
    let mut bad: Vec<String> = vec![];
    for p in op.params {
        let raw = m.get_one::<String>(p.name).cloned();
        let raw = match (raw, p.name) {
            (Some(v), _) => v,
            (None, "account_id") => match default_account {
                Some(a) => a.to_string(),
                None => {
                    bad.push("--account_id: required (the server did not say which account the key belongs to)".into());
                    continue;
                }
            },
            (None, _) => continue,
        };
        let step = (|| -> Result<(), ArgError> {
            match p.location {
                In::Path => {
                    let v = args::load(p.name, &raw)?;
                    if v.is_empty() {
                        return Err(ArgError(format!("--{}: expected a value, found an empty string", p.name)));
                    }
                    path = path.replace(&format!("{{{}}}", p.name), &encode(&v));
                }
                In::Query => query.push((p.name.to_string(), args::load(p.name, &raw)?)),
                In::Body => {
                    body.insert(p.name.to_string(), args::convert(p, &raw)?);
                }
                In::WholeBody => whole = Some(args::convert(p, &raw)?),
            }
            Ok(())
        })();
        if let Err(e) = step {
            bad.push(e.0);
        }
    }
    if !bad.is_empty() {
        return Err(ArgError(bad.join("\n")));
    }
    let body = whole.or_else(|| {
        if body.is_empty() && op.method != "POST" && op.method != "PUT" { None } else { Some(Value::Object(body)) }
    });
    Ok(Request { method: op.method, path, query, body })
}

fn print_http_error(op: &Operation, status: u16, body: &Value) {
    let summary = body.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or_default();
    eprintln!(
        "garrison {} {}: HTTP {status}{}",
        op.service,
        op.name,
        if summary.is_empty() { String::new() } else { format!(": {summary}") }
    );
    if !body.is_null() {
        eprintln!("{}", serde_json::to_string_pretty(body).unwrap_or_default());
    }
}

pub async fn main(argv: Vec<String>) -> ExitCode {
    let m = match command().try_get_matches_from(&argv) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    let Some((service, sm)) = m.subcommand() else {
        return ExitCode::from(EXIT_USAGE);
    };
    let Some((op_name, om)) = sm.subcommand() else {
        return ExitCode::from(EXIT_USAGE);
    };
    let Some(op) = ops::find(service, op_name) else {
        return ExitCode::from(EXIT_USAGE);
    };
    let get = |k: &str| om.get_one::<String>(k).cloned();
    let overrides = Overrides {
        endpoint: get("endpoint"),
        access_key_id: get("access_key_id"),
        secret_key: get("secret_key"),
        profile: get("profile"),
        ca_bundle: get("ca-bundle"),
    };
    let query = get("query");
    let format = get("output").unwrap_or_else(|| "json".into());

    // Arguments are checked before anything is sent.
    let explicit_account = om.try_get_one::<String>("account_id").ok().flatten().is_some();
    if let Err(e) = build(op, om, Some("00000000")) {
        eprintln!("garrison {service} {op_name}: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let conn = if op.needs_token || op.name == "authenticate" {
        match resolve(&overrides) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("garrison: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    } else {
        match resolve(&overrides) {
            Ok(c) => c,
            Err(_) => crate::client::Connection {
                endpoint: overrides
                    .endpoint
                    .clone()
                    .or_else(|| std::env::var("GARRISON_ENDPOINT").ok())
                    .unwrap_or_else(|| "http://127.0.0.1:8080".into()),
                access_key_id: String::new(),
                secret_key: String::new(),
                account_id: None,
                ca_bundle: overrides
                    .ca_bundle
                    .clone()
                    .or_else(|| std::env::var("GARRISON_CA_BUNDLE").ok())
                    .map(Into::into),
            },
        }
    };
    let mut client = Client::new(conn);
    let result = async {
        if op.needs_token || op.name == "authenticate" {
            let auth = client.authenticate().await?;
            if op.name == "authenticate" {
                return Ok((200, auth));
            }
        }
        let default_account = if explicit_account { None } else { client.account_id.clone() };
        let req = build(op, om, default_account.as_deref()).map_err(|e| CallError::Transport(e.0))?;
        client.call(req.method, &req.path, &req.query, req.body.as_ref()).await
    }
    .await;
    match result {
        Ok((204, _)) => ExitCode::SUCCESS,
        // A text answer (themis get_role --format terraform) prints as it came.
        Ok((_, Value::String(text))) if query.is_none() => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Ok((_, body)) => match output::apply_query(&body, query.as_deref()) {
            Ok(v) => {
                println!("{}", output::render(&v, &format));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("garrison: {e}");
                ExitCode::from(EXIT_USAGE)
            }
        },
        Err(CallError::Http { status, body }) => {
            print_http_error(op, status, &body);
            ExitCode::from(EXIT_HTTP)
        }
        Err(CallError::Transport(e)) => {
            eprintln!("garrison {service} {op_name}: {e}");
            ExitCode::from(EXIT_UNREACHABLE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_word_skips_globals() {
        let a: Vec<String> =
            ["--endpoint", "http://x", "--query=a", "deployments", "list"].iter().map(|s| s.to_string()).collect();
        assert_eq!(first_word(&a).as_deref(), Some("deployments"));
    }

    #[test]
    fn reference_create_deployment_builds_the_reference_request() {
        let argv = [
            "garrison",
            "deployments",
            "create_deployment",
            "--account_id",
            "12345678",
            "--name",
            "My Deployment",
            "--platform",
            "{\"type\": \"aws\", \"id\": \"123412341234\"}",
            "--credentials",
            "[{\"id\": \"ABC\", \"purpose\": \"discover\"}]",
            "--mode",
            "automatic",
            "--scope",
            "{\"include\": [{\"type\": \"region\", \"key\": \"/aws/us-east-1\"}], \"exclude\": []}",
        ];
        let m = command().try_get_matches_from(argv).unwrap();
        let (_, sm) = m.subcommand().unwrap();
        let (_, om) = sm.subcommand().unwrap();
        let r = build(ops::find("deployments", "create_deployment").unwrap(), om, None).unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/deployments/v1/12345678/deployments");
        let b = r.body.unwrap();
        assert_eq!(b["credentials"][0]["purpose"], "discover");
        assert_eq!(b["platform"]["id"], "123412341234");
        assert_eq!(b.as_object().unwrap().len(), 5, "no defaults injected: {b}");
    }

    #[test]
    fn path_values_are_encoded_and_account_defaults() {
        let m = command()
            .try_get_matches_from(["garrison", "credentials", "get_credential", "--credential_id", "a/b c"])
            .unwrap();
        let (_, sm) = m.subcommand().unwrap();
        let (_, om) = sm.subcommand().unwrap();
        let r = build(ops::find("credentials", "get_credential").unwrap(), om, Some("10000001")).unwrap();
        assert_eq!(r.path, "/credentials/v2/10000001/credentials/a%2Fb%20c");
        assert_eq!(r.body, None);
    }

    #[test]
    fn every_bad_flag_is_reported_not_only_the_first() {
        let m = command()
            .try_get_matches_from([
                "garrison",
                "deployments",
                "create_deployment",
                "--platform",
                "{not json",
                "--scope",
                "[1,",
                "--version",
                "seven",
            ])
            .unwrap();
        let (_, sm) = m.subcommand().unwrap();
        let (_, om) = sm.subcommand().unwrap();
        let e = build(ops::find("deployments", "create_deployment").unwrap(), om, Some("10000001")).unwrap_err();
        for flag in ["--platform", "--scope", "--version"] {
            assert!(e.0.contains(flag), "{flag} not reported: {}", e.0);
        }
    }

    #[test]
    fn every_operation_has_a_command() {
        let cmd = command();
        for op in ops::OPERATIONS {
            assert!(
                cmd.find_subcommand(op.service).and_then(|s| s.find_subcommand(op.name)).is_some(),
                "{}.{}",
                op.service,
                op.name
            );
        }
    }
}
