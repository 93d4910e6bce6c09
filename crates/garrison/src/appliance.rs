//! `garrison appliance run`: the agent on a scan or IDS appliance. At first boot it
//! registers with the one-time bootstrap token its user data carries and keeps the
//! credential it gets (0600 in its state directory); after a restart it registers again
//! with that credential. Then it sends a heartbeat every interval garrison tells it: its
//! version, uptime and what it is doing (IDS: its sensor's packet and alert counters; scan:
//! when the last scan finished). A credential garrison revoked (the appliance was removed or
//! replaced) ends it: exit code 3, and the service manager's restarts meet the same answer.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use garrison_model::health::Work;
use garrison_model::health::wire::{Config, Registered};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(name = "garrison appliance run", about = "The agent on a garrison appliance: register, then send heartbeats")]
struct Args {
    /// garrison's URL for appliances (the user data's GARRISON_ENDPOINT)
    #[arg(long, env = "GARRISON_ENDPOINT")]
    endpoint: String,
    /// The one-time bootstrap token (first boot only; afterwards the stored credential is used)
    #[arg(long, env = "GARRISON_BOOTSTRAP_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// ids or scan
    #[arg(long, env = "GARRISON_APPLIANCE_ROLE")]
    role: String,
    /// This instance's id [default: asked of the instance metadata service, IMDSv2]
    #[arg(long = "instance-id", env = "GARRISON_INSTANCE_ID")]
    instance_id: Option<String>,
    /// Where the credential is kept
    #[arg(long = "state-dir", env = "GARRISON_STATE_DIR", default_value = "/var/lib/garrison-appliance")]
    state_dir: PathBuf,
    /// IDS: the sensor's counters as JSON {"packets": N, "alerts": N} [default: the packets the interface received, 0 alerts]
    #[arg(long = "sensor-stats", env = "GARRISON_SENSOR_STATS")]
    sensor_stats: Option<PathBuf>,
    /// IDS: the interface the mirrored traffic arrives on
    #[arg(long, env = "GARRISON_SENSOR_INTERFACE", default_value = "eth0")]
    interface: String,
    /// Scan: the scanner's state as JSON {"last_scan_ms": N}
    #[arg(long = "scan-stats", env = "GARRISON_SCAN_STATS")]
    scan_stats: Option<PathBuf>,
}

/// What the agent ends with when garrison refuses it for good.
struct Refused(String);

fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

async fn instance_id(http: &reqwest::Client, given: &Option<String>) -> anyhow::Result<String> {
    if let Some(id) = given {
        return Ok(id.clone());
    }
    // IMDSv2: a session token first, then the id (only on a real instance).
    let imds = "http://169.254.169.254/latest";
    let token = http
        .put(format!("{imds}/api/token"))
        .header("X-aws-ec2-metadata-token-ttl-seconds", "300")
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .context("the instance metadata service (give --instance-id off EC2)")?
        .text()
        .await?;
    Ok(http
        .get(format!("{imds}/meta-data/instance-id"))
        .header("X-aws-ec2-metadata-token", token)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

fn work(a: &Args) -> anyhow::Result<Work> {
    let read = |p: &Path| -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
            .with_context(|| format!("{}: not JSON", p.display()))
    };
    Ok(match a.role.as_str() {
        "ids" => match &a.sensor_stats {
            Some(p) => {
                let v = read(p)?;
                Work::Ids { packets: v["packets"].as_u64().unwrap_or(0), alerts: v["alerts"].as_u64().unwrap_or(0) }
            }
            None => {
                let p = format!("/sys/class/net/{}/statistics/rx_packets", a.interface);
                let packets = std::fs::read_to_string(&p).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
                Work::Ids { packets, alerts: 0 }
            }
        },
        _ => Work::Scan {
            last_scan_ms: a.scan_stats.as_deref().map(read).transpose()?.and_then(|v| v["last_scan_ms"].as_i64()),
        },
    })
}

/// The answer's error body in one line (garrison's JSON errors name what was wrong).
async fn failure(r: reqwest::Response) -> String {
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    format!("{status}: {}", body.chars().take(300).collect::<String>())
}

async fn register(
    http: &reqwest::Client,
    a: &Args,
    instance: &str,
) -> anyhow::Result<Result<(String, Config), Refused>> {
    let file = a.state_dir.join("credential");
    let stored = std::fs::read_to_string(&file).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let mut req = http.post(format!("{}/appliances/v1/register", a.endpoint));
    let body = match &stored {
        Some(c) => {
            req = req.bearer_auth(c);
            json!({"instance_id": instance, "role": a.role, "version": version()})
        }
        None => {
            let Some(token) = &a.token else {
                bail!(
                    "no stored credential in {} and no bootstrap token (--token, GARRISON_BOOTSTRAP_TOKEN)",
                    file.display()
                )
            };
            json!({"token": token, "instance_id": instance, "role": a.role, "version": version()})
        }
    };
    let r = req.json(&body).send().await.context("registering")?;
    if r.status() == reqwest::StatusCode::UNAUTHORIZED {
        return Ok(Err(Refused(failure(r).await)));
    }
    if !r.status().is_success() {
        bail!("registration failed: {}", failure(r).await);
    }
    let reg: Registered = r.json().await.context("the registration's answer")?;
    let credential = match (reg.credential, stored) {
        (Some(c), _) => {
            let tmp = a.state_dir.join("credential.new");
            let _ = std::fs::remove_file(&tmp);
            crate::serve::write_private(&tmp, &c)?;
            std::fs::rename(&tmp, &file).with_context(|| format!("keeping the credential in {}", file.display()))?;
            c
        }
        (None, Some(c)) => c,
        (None, None) => bail!("garrison registered this appliance without giving it a credential"),
    };
    Ok(Ok((credential, reg.config)))
}

async fn run(a: Args) -> anyhow::Result<Result<(), Refused>> {
    if a.role != "ids" && a.role != "scan" {
        bail!("--role: expected ids or scan, found {:?}", a.role);
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let instance = instance_id(&http, &a.instance_id).await?;
    let started = Instant::now();
    // garrison may not be reachable yet at first boot: try again, a little longer each time.
    let mut pause = Duration::from_secs(1);
    let (credential, mut config) = loop {
        match register(&http, &a, &instance).await {
            Ok(Ok(r)) => break r,
            Ok(Err(refused)) => return Ok(Err(refused)),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot register yet");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(60));
            }
        }
    };
    tracing::info!(appliance = %config.appliance_id, key = %config.key, "registered");
    loop {
        let beat = json!({"version": version(), "uptime_s": started.elapsed().as_secs(), "work": work(&a)?});
        match http
            .post(format!("{}/appliances/v1/heartbeat", a.endpoint))
            .bearer_auth(&credential)
            .json(&beat)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => match r.json::<Config>().await {
                Ok(c) => config = c,
                Err(e) => tracing::warn!(error = %e, "heartbeat answer unreadable"),
            },
            Ok(r) if r.status() == reqwest::StatusCode::UNAUTHORIZED => return Ok(Err(Refused(failure(r).await))),
            Ok(r) => tracing::warn!(answer = %failure(r).await, "heartbeat refused"),
            Err(e) => tracing::warn!(error = %e, "heartbeat not delivered"),
        }
        tokio::time::sleep(Duration::from_secs(config.heartbeat_interval_s.max(1))).await;
    }
}

pub async fn main(argv: Vec<String>) -> ExitCode {
    crate::serve::init_tracing_default("info");
    let pos = argv.iter().position(|a| a == "appliance").unwrap_or(1);
    if argv.get(pos + 1).map(String::as_str) != Some("run") {
        eprintln!(
            "garrison appliance: expected `garrison appliance run --endpoint URL --role ids|scan …` (see --help)"
        );
        return ExitCode::from(2);
    }
    let args =
        Args::parse_from(std::iter::once("garrison appliance run".to_string()).chain(argv[pos + 2..].iter().cloned()));
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("garrison appliance run: {e}");
            return ExitCode::from(1);
        }
    };
    tokio::select! {
        r = run(args) => match r {
            Ok(Ok(())) => ExitCode::SUCCESS,
            Ok(Err(Refused(why))) => {
                eprintln!("garrison appliance run: refused by garrison: {why}");
                ExitCode::from(3)
            }
            Err(e) => {
                eprintln!("garrison appliance run: {e:#}");
                ExitCode::from(1)
            }
        },
        _ = term.recv() => ExitCode::SUCCESS,
    }
}
