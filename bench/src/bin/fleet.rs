//! bench/fleet: a steady-state pass over many deployments by `garrison worker` processes on
//! one PostgreSQL. Each deployment is an automatic one in its own emulated AWS account with
//! nothing to build (CloudTrail monitoring off, no instances), so a pass is what a resync costs
//! when nothing changed: validate the role (trust policy read; permissions reused), discover
//! the region, plan nothing. The accounts are spread over emulator processes (one per core,
//! more when they are many) behind a proxy that keeps each account in one of them. For one
//! worker and for three, the
//! processes stay up for a warm-up pass (their caches filled, as a long-running worker's
//! are) and a measured one: wall time until every deployment is done, AWS calls per
//! deployment (from the workers' /metrics), and the workers' peak resident memory. Baselines
//! in the same run: the smallest size (growth should be linear) and one worker.
//! BENCH_SIZES (default 250,500,1000), BENCH_PARALLEL (runs per worker, default 16),
//! BENCH_EMULATORS (emulator processes at least, accounts spread over them; default 2, one per
//! core), BENCH_ACCOUNTS_PER_EMULATOR (at most, default 250: more processes when needed),
//! BENCH_WORKERS (worker counts to measure, default 1,3).

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use garrison_bench::free_port;
use garrison_catalog::{Catalog, cft};
use garrison_cloud::emulator::{Moto, sdk_config};
use garrison_cloud::{Aws, Sessions};
use garrison_model::credential::{NewCredential, RoleSecret};
use garrison_model::deployment::{Refs, parse_request};
use garrison_store::{SealKey, Store};
use garrison_testkit::proxy::{Proxy, Shard};
use garrison_testkit::tenants::GARRISON;
use serde_json::json;

fn peak_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A worker's AWS call attempts by "service operation", from its /metrics.
fn calls(port: u16) -> HashMap<String, f64> {
    use std::io::{Read, Write};
    let mut out = HashMap::new();
    let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return out };
    let _ = c.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let mut text = String::new();
    let _ = c.read_to_string(&mut text);
    for l in text.lines().filter(|l| l.starts_with("garrison_aws_calls_total{")) {
        let label =
            |k: &str| l.split(&format!("{k}=\"")).nth(1).and_then(|r| r.split('"').next()).unwrap_or("").to_string();
        let n: f64 = l.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        *out.entry(format!("{} {}", label("service"), label("operation"))).or_default() += n;
    }
    out
}

struct Run {
    size: usize,
    workers: usize,
    secs: f64,
    peak_mib: f64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "250,500,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let worker_counts: Vec<usize> = std::env::var("BENCH_WORKERS")
        .unwrap_or_else(|_| "1,3".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let parallel: usize = std::env::var("BENCH_PARALLEL").ok().and_then(|v| v.parse().ok()).unwrap_or(16);
    let admin = std::env::var("GARRISON_TEST_DATABASE_URL")
        .map_err(|_| anyhow::anyhow!("GARRISON_TEST_DATABASE_URL (PostgreSQL) is needed"))?;
    let garrison = std::env::var("GARRISON_BIN").unwrap_or_else(|_| "target/debug/garrison".into());
    // The AWS accounts are spread over emulator processes (Shard::ByAccount): at least one
    // per core, and no more than BENCH_ACCOUNTS_PER_EMULATOR accounts in one. The emulator
    // finds the account of every request by scanning all the accounts it holds (moto's
    // `get_account_id_from`), so one process holding 500 accounts spends several ms more per
    // call than one holding 30 (measured; README) — a cost of the emulator, not of AWS or of
    // garrison. More processes on the same two cores add no compute.
    let min_shards: usize = std::env::var("BENCH_EMULATORS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let per_shard: usize =
        std::env::var("BENCH_ACCOUNTS_PER_EMULATOR").ok().and_then(|v| v.parse().ok()).unwrap_or(250);
    let full = Catalog::builtin().get("aws", "ci_full", "latest")?.clone();
    let policies: std::collections::HashSet<String> =
        garrison_catalog::policies::all().into_iter().map(|p| p.id).collect();
    let mut runs = vec![];
    for &size in &sizes {
        let shards = min_shards.max(size.div_ceil(per_shard.max(1))).max(1);
        let motos: Vec<Moto> = (0..shards).map(|_| Moto::start()).collect::<Result<_, _>>()?;
        let proxy =
            Proxy::start_sharded_by(&motos.iter().map(|m| m.url.clone()).collect::<Vec<_>>(), Shard::ByAccount).await?;
        let direct = Aws::from_config(sdk_config(&proxy.url, "us-east-1").await);
        let sessions = Sessions::new(direct.clone());
        let db = garrison_testkit::postgres::fresh_postgres(&admin).await?;
        let key = SealKey::generate();
        let store = Store::open(&db, &key).await?;
        let root = store.init_root(None, None).await?.ok_or_else(|| anyhow::anyhow!("fresh store"))?;
        let ext = store.external_id(&root.account_id).await?;
        let t = Instant::now();
        for i in 0..size {
            let acct = format!("{}", 220_000_000_000u64 + i as u64);
            let there = sessions.assume(&format!("arn:aws:iam::{acct}:role/admin"), "setup").await?;
            let arn = garrison_cloud::estate::create_role(
                &there,
                "garrison",
                &cft::trust_policy(GARRISON, json!(ext)),
                &cft::split_policy(&full.policy_document, cft::MANAGED_POLICY_LIMIT),
            )
            .await?;
            let cred = store
                .create_credential(
                    &root.account_id,
                    &NewCredential { name: acct.clone(), secret: RoleSecret { arn } },
                    "b",
                )
                .await?;
            let creds: HashMap<String, String> = [(cred.id.clone(), acct.clone())].into();
            let body = json!({"name": acct, "platform": {"type": "aws", "id": acct, "monitor": {"enabled": false}}, "mode": "automatic",
                "credentials": [{"id": cred.id, "purpose": "discover"}],
                "scope": {"include": [{"type": "region", "key": "/aws/us-east-1", "policy": {"id": garrison_catalog::policies::ESSENTIALS}}]}});
            let spec = parse_request(&body, None, &Refs { policies: &policies, credentials: &creds })
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .spec;
            store.create_deployment(&root.account_id, spec, "b").await?;
        }
        println!(
            "bench/fleet: {size} accounts (in {shards} emulator processes) and deployments set up in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        // Each configuration's workers stay up for two passes: the first (unmeasured) fills
        // their caches — sessions, policy versions — as a long-running worker's are, and on
        // the first configuration makes the emulator create each new account's default
        // network; the second, measured, is the steady state a periodic resync costs.
        for &workers in &worker_counts {
            let dir = std::env::temp_dir().join(format!("garrison-bench-fleet-{}", std::process::id()));
            let ports: Vec<u16> = (0..workers).map(|_| free_port()).collect();
            let mut procs: Vec<Child> = (0..workers)
                .map(|w| {
                    Command::new(&garrison)
                        .args(["worker", "--data-dir"])
                        .arg(dir.join(format!("w{w}")))
                        .args(["--database-url", &db, "--aws-principal", GARRISON, "--resync-interval", "3600"])
                        .args(["--parallel", &parallel.to_string()])
                        .args(["--metrics-listen", &format!("127.0.0.1:{}", ports[w])])
                        .env("GARRISON_SEAL_KEY", key.to_hex())
                        .env("HOSTNAME", format!("w{w}"))
                        .env("AWS_ENDPOINT_URL", &proxy.url)
                        .env("AWS_ACCESS_KEY_ID", "testing")
                        .env("AWS_SECRET_ACCESS_KEY", "testing")
                        .env("AWS_REGION", "us-east-1")
                        .env("AWS_EC2_METADATA_DISABLED", "true")
                        .env("GARRISON_LOG", "error")
                        .stdout(Stdio::null())
                        .spawn()
                })
                .collect::<Result<_, _>>()?;
            let mut peak = vec![0u64; workers];
            let mut before: HashMap<String, f64> = HashMap::new();
            for measured in [false, true] {
                store.make_all_due().await?;
                let t = Instant::now();
                loop {
                    for (i, p) in procs.iter().enumerate() {
                        peak[i] = peak[i].max(peak_kib(p.id()));
                    }
                    // Version 1 of every deployment reconciled (make_all_due marks none done).
                    if store.leases_done(1).await? >= size as i64 {
                        break;
                    }
                    anyhow::ensure!(t.elapsed() < Duration::from_secs(900), "not done in 15 minutes");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let secs = t.elapsed().as_secs_f64();
                let mut by_op: HashMap<String, f64> = HashMap::new();
                for p in &ports {
                    for (k, v) in calls(*p) {
                        *by_op.entry(k).or_default() += v;
                    }
                }
                let failed = {
                    let mut n = 0;
                    for d in store.all_deployments().await? {
                        if d.status.status != garrison_model::deployment::StatusKind::Ok {
                            n += 1;
                        }
                    }
                    n
                };
                anyhow::ensure!(failed == 0, "{failed} deployment(s) not ok after the pass");
                if !measured {
                    println!("bench/fleet: {size} deployments, {workers} worker(s), warm-up pass: {secs:.1} s");
                    before = by_op;
                    continue;
                }
                // This pass's calls: the counters minus the warm-up's.
                for (k, v) in &before {
                    *by_op.entry(k.clone()).or_default() -= v;
                }
                by_op.retain(|_, v| *v > 0.0);
                let peak_mib = peak.iter().copied().max().unwrap_or(0) as f64 / 1024.0;
                let total: f64 = by_op.values().sum();
                let mut top: Vec<(&String, &f64)> = by_op.iter().collect();
                top.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
                let top: Vec<String> =
                    top.iter().take(6).map(|(k, v)| format!("{k} {:.1}", **v / size as f64)).collect();
                println!(
                    "bench/fleet: {size} deployments, {workers} worker(s): {secs:.1} s, peak RSS {peak_mib:.0} MiB per worker; {:.1} AWS calls per deployment ({}, …)",
                    total / size as f64,
                    top.join(", ")
                );
                runs.push(Run { size, workers, secs, peak_mib });
            }
            for p in &mut procs {
                let _ = p.kill();
                let _ = p.wait();
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    let base = |w: usize| runs.iter().find(|r| r.workers == w).map(|r| (r.size as f64, r.secs));
    println!(
        "\n| deployments | workers | pass | per deployment | vs smallest size (linear = 1.0) | vs 1 worker | peak RSS per worker |\n|---|---|---|---|---|---|---|"
    );
    for r in &runs {
        let (s0, t0) = base(r.workers).unwrap_or((1.0, 1.0));
        let growth = (r.secs / t0) / (r.size as f64 / s0);
        let one = runs.iter().find(|x| x.size == r.size && x.workers == 1).map(|x| x.secs / r.secs).unwrap_or(1.0);
        println!(
            "| {} | {} | {:.1} s | {:.1} ms | {:.2} | {:.2}x | {:.0} MiB |",
            r.size,
            r.workers,
            r.secs,
            r.secs * 1000.0 / r.size as f64,
            growth,
            one,
            r.peak_mib
        );
    }
    if let Some(r) = runs.iter().find(|r| r.size == 1000 && r.workers == 1) {
        println!(
            "\ntarget: 1,000 deployments in <= 60 s with one worker: {:.1} s ({})",
            r.secs,
            if r.secs <= 60.0 { "met" } else { "not met" }
        );
    }
    Ok(())
}
