//! bench/fleet: a steady-state pass over many deployments by `garrison worker` processes on
//! one PostgreSQL, and what garrison itself spends on it per deployment. Each deployment is an
//! automatic one in its own emulated AWS account with nothing to build (CloudTrail monitoring
//! off, no instances), so a pass is what a resync costs when nothing changed: validate the
//! role (trust policy read; permissions reused), discover the region, plan nothing. The
//! accounts are spread over emulator processes (at most BENCH_ACCOUNTS_PER_EMULATOR in one)
//! behind a proxy that keeps each account in one of them; the workers reach PostgreSQL
//! through a relay that counts the statements the server completes and the rows they wrote
//! (`garrison_bench::pgwire`). For each worker count, the processes stay up for a warm-up
//! pass (their caches filled, as a long-running worker's are) and a measured one.
//!
//! Per measured pass: wall time until every deployment is done; per deployment the workers'
//! CPU, the statements and rows written, the workers' resident memory above an idle worker's,
//! AWS calls; and where the time goes: the emulator's share of the machine's CPU and the calls
//! it served per second. Baselines in the same run: the smallest size (per-deployment figures
//! should stay flat: target within 1.2× from 1,000 to 10,000) and one worker.
//!
//! BENCH_SIZES (default 1000,5000,10000), BENCH_WORKERS (default 1; e.g. 1,3), BENCH_PARALLEL
//! (runs per worker, default 16), BENCH_EMULATORS (at least, default 2),
//! BENCH_ACCOUNTS_PER_EMULATOR (at most, default 250).

#[path = "fleet/setup.rs"]
mod setup;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use garrison_bench::pgwire::{Counts, PgCounter, Share};
use garrison_bench::{cpu_secs, free_port, memory_mib};
use garrison_cloud::emulator::{Moto, sdk_config};
use garrison_cloud::{Aws, Sessions};
use garrison_store::{SealKey, Store};
use garrison_testkit::proxy::{Proxy, Shard};
use garrison_testkit::tenants::GARRISON;

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

fn list(var: &str, default: &str) -> Vec<usize> {
    std::env::var(var).unwrap_or_else(|_| default.into()).split(',').filter_map(|s| s.trim().parse().ok()).collect()
}

fn number(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Counters read at one moment; a pass is the difference of two.
struct Sample {
    at: Instant,
    pg: Counts,
    worker_cpu: f64,
    emulator_cpu: f64,
    driver_cpu: f64,
    calls: HashMap<String, f64>,
    by_sql: HashMap<Arc<str>, Share>,
}

fn sample(pg: &PgCounter, workers: &[Child], ports: &[u16], motos: &[Moto]) -> Sample {
    let mut by_op: HashMap<String, f64> = HashMap::new();
    for p in ports {
        for (k, v) in calls(*p) {
            *by_op.entry(k).or_default() += v;
        }
    }
    Sample {
        at: Instant::now(),
        pg: pg.counts(),
        worker_cpu: workers.iter().map(|w| cpu_secs(w.id())).sum(),
        emulator_cpu: motos.iter().map(|m| cpu_secs(m.pid())).sum(),
        driver_cpu: cpu_secs(std::process::id()),
        calls: by_op,
        by_sql: pg.by_statement(),
    }
}

struct Run {
    size: usize,
    workers: usize,
    secs: f64,
    /// Per deployment: worker CPU ms, statements, rows written, rows read, KiB above idle, AWS calls.
    cpu_ms: f64,
    statements: f64,
    written: f64,
    read: f64,
    kib: f64,
    calls: f64,
    peak_mib: f64,
    after_mib: f64,
    /// Shares of the machine's CPU during the pass.
    emulator_share: f64,
    worker_share: f64,
    driver_share: f64,
    calls_per_sec: f64,
    emulator_mib: f64,
}

struct Workers {
    procs: Vec<Child>,
    ports: Vec<u16>,
    dir: std::path::PathBuf,
}

impl Drop for Workers {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.kill();
            let _ = p.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_workers(
    n: usize,
    garrison: &str,
    db: &str,
    key: &SealKey,
    aws: &str,
    parallel: usize,
) -> anyhow::Result<Workers> {
    let dir = std::env::temp_dir().join(format!("garrison-bench-fleet-{}-{}", std::process::id(), free_port()));
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let procs = (0..n)
        .map(|w| {
            Command::new(garrison)
                .args(["worker", "--data-dir"])
                .arg(dir.join(format!("w{w}")))
                .args(["--database-url", db, "--aws-principal", GARRISON, "--resync-interval", "3600"])
                .args(["--parallel", &parallel.to_string()])
                .args(["--metrics-listen", &format!("127.0.0.1:{}", ports[w])])
                .env("GARRISON_SEAL_KEY", key.to_hex())
                .env("HOSTNAME", format!("w{w}"))
                .env("AWS_ENDPOINT_URL", aws)
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_REGION", "us-east-1")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env("GARRISON_LOG", "error")
                .stdout(Stdio::null())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    Ok(Workers { procs, ports, dir })
}

/// Waits until every worker answers on its metrics port.
async fn wait_metrics(ports: &[u16]) -> anyhow::Result<()> {
    let t = Instant::now();
    for p in ports {
        while std::net::TcpStream::connect(("127.0.0.1", *p)).is_err() {
            anyhow::ensure!(t.elapsed() < Duration::from_secs(60), "worker metrics on {p} did not answer in 60 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let sizes = list("BENCH_SIZES", "1000,5000,10000");
    let worker_counts = list("BENCH_WORKERS", "1");
    let parallel = number("BENCH_PARALLEL", 16);
    let admin = std::env::var("GARRISON_TEST_DATABASE_URL")
        .map_err(|_| anyhow::anyhow!("GARRISON_TEST_DATABASE_URL (PostgreSQL) is needed"))?;
    let garrison = std::env::var("GARRISON_BIN").unwrap_or_else(|_| "target/release/garrison".into());
    // The AWS accounts are spread over emulator processes (Shard::ByAccount): at least one
    // per core, and no more than BENCH_ACCOUNTS_PER_EMULATOR accounts in one. The emulator
    // finds the account of every request by scanning all the accounts it holds (moto's
    // `get_account_id_from`), so one process holding 500 accounts spends several ms more per
    // call than one holding 30 (measured; README) — a cost of the emulator, not of AWS or of
    // garrison. More processes on the same two cores add no compute.
    let min_shards = number("BENCH_EMULATORS", 2);
    let per_shard = number("BENCH_ACCOUNTS_PER_EMULATOR", 250).max(1);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    let mut runs = vec![];
    for &size in &sizes {
        let shards = min_shards.max(size.div_ceil(per_shard)).max(1);
        // Without the emulator's public AMI catalogue, which it loads into every account's
        // region on first use (~5 MiB an account, measured: 1,000 accounts held 5.2 GiB);
        // nothing here launches an instance.
        let motos: Vec<Moto> = (0..shards)
            .map(|_| Moto::start_with(&[("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")]))
            .collect::<Result<_, _>>()?;
        let proxy =
            Proxy::start_sharded_by(&motos.iter().map(|m| m.url.clone()).collect::<Vec<_>>(), Shard::ByAccount).await?;
        let sessions = Arc::new(Sessions::new(Aws::from_config(sdk_config(&proxy.url, "us-east-1").await)));
        let db = garrison_testkit::postgres::fresh_postgres(&admin).await?;
        let key = SealKey::generate();
        let store = Store::open(&db, &key).await?;
        let root = store.init_root(None, None).await?.ok_or_else(|| anyhow::anyhow!("fresh store"))?;
        let pg = PgCounter::start(PgCounter::upstream_of(&db)).await?;
        let relayed = pg.url(&db);
        // An idle worker's memory, before there is anything to do: the base the fleet adds to.
        let idle_mib = {
            let w = start_workers(1, &garrison, &relayed, &key, &proxy.url, parallel)?;
            wait_metrics(&w.ports).await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            memory_mib(w.procs[0].id()).rss
        };
        let t = Instant::now();
        setup::fleet(sessions.clone(), &store, &root.account_id, size, parallel).await?;
        println!(
            "bench/fleet: {size} accounts (in {shards} emulator processes) and deployments set up in {:.1} s; an idle worker holds {idle_mib:.0} MiB",
            t.elapsed().as_secs_f64()
        );
        // Each configuration's workers stay up for two passes: the first (unmeasured) fills
        // their caches — sessions, policy versions — as a long-running worker's are, and on
        // the first configuration makes the emulator create each new account's default
        // network; the second, measured, is the steady state a periodic resync costs.
        for &workers in &worker_counts {
            let w = start_workers(workers, &garrison, &relayed, &key, &proxy.url, parallel)?;
            wait_metrics(&w.ports).await?;
            let mut peak = vec![0.0f64; workers];
            for measured in [false, true] {
                store.make_all_due().await?;
                let before = sample(&pg, &w.procs, &w.ports, &motos);
                loop {
                    for (i, p) in w.procs.iter().enumerate() {
                        peak[i] = peak[i].max(memory_mib(p.id()).rss);
                    }
                    // Version 1 of every deployment reconciled (make_all_due marks none done).
                    if store.leases_done(1).await? >= size as i64 {
                        break;
                    }
                    anyhow::ensure!(before.at.elapsed() < Duration::from_secs(1800), "not done in 30 minutes");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let after = sample(&pg, &w.procs, &w.ports, &motos);
                let secs = after.at.duration_since(before.at).as_secs_f64();
                let failed = store
                    .all_deployments()
                    .await?
                    .iter()
                    .filter(|d| d.status.status != garrison_model::deployment::StatusKind::Ok)
                    .count();
                anyhow::ensure!(failed == 0, "{failed} deployment(s) not ok after the pass");
                if !measured {
                    println!("bench/fleet: {size} deployments, {workers} worker(s), warm-up pass: {secs:.1} s");
                    continue;
                }
                let n = size as f64;
                let mut by_op: Vec<(String, f64)> = after
                    .calls
                    .iter()
                    .map(|(k, v)| (k.clone(), v - before.calls.get(k).copied().unwrap_or(0.0)))
                    .filter(|(_, v)| *v > 0.0)
                    .collect();
                by_op.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                let total_calls: f64 = by_op.iter().map(|(_, v)| v).sum();
                let pg_pass = after.pg - before.pg;
                anyhow::ensure!(pg_pass.statements > 0, "the relay saw no statement: are the workers using it?");
                let after_mib: f64 = w.procs.iter().map(|p| memory_mib(p.id()).rss).sum();
                let emulator_mib: f64 = motos.iter().map(|m| memory_mib(m.pid()).rss).sum();
                let run = Run {
                    size,
                    workers,
                    secs,
                    cpu_ms: (after.worker_cpu - before.worker_cpu) * 1000.0 / n,
                    statements: pg_pass.statements as f64 / n,
                    written: pg_pass.rows_written as f64 / n,
                    read: pg_pass.rows_read as f64 / n,
                    kib: (after_mib - idle_mib * workers as f64).max(0.0) * 1024.0 / n,
                    calls: total_calls / n,
                    peak_mib: peak.iter().copied().fold(0.0, f64::max),
                    after_mib,
                    emulator_share: (after.emulator_cpu - before.emulator_cpu) / (secs * cores),
                    worker_share: (after.worker_cpu - before.worker_cpu) / (secs * cores),
                    driver_share: (after.driver_cpu - before.driver_cpu) / (secs * cores),
                    calls_per_sec: total_calls / secs,
                    emulator_mib,
                };
                let top: Vec<String> = by_op.iter().take(6).map(|(k, v)| format!("{k} {:.1}", v / n)).collect();
                println!(
                    "bench/fleet: {size} deployments, {workers} worker(s): {secs:.1} s; per deployment {:.1} ms worker CPU, {:.1} statements, {:.1} rows written, {:.1} read, {:.0} KiB, {:.1} AWS calls ({}, …); {} failed statements",
                    run.cpu_ms,
                    run.statements,
                    run.written,
                    run.read,
                    run.kib,
                    run.calls,
                    top.join(", "),
                    pg_pass.errors
                );
                println!(
                    "bench/fleet:   CPU of the machine during the pass: emulator {:.0}%, workers {:.0}%, this driver (AWS proxy, PostgreSQL relay) {:.0}%; the emulator served {:.0} calls/s; emulator RSS {:.0} MiB",
                    run.emulator_share * 100.0,
                    run.worker_share * 100.0,
                    run.driver_share * 100.0,
                    run.calls_per_sec,
                    run.emulator_mib
                );
                // What the statements were: the most executed, per deployment.
                let mut sqls: Vec<(Arc<str>, f64, f64)> = after
                    .by_sql
                    .iter()
                    .map(|(k, a)| {
                        let b = before.by_sql.get(k).copied().unwrap_or_default();
                        (k.clone(), (a.executed - b.executed) as f64 / n, (a.rows - b.rows) as f64 / n)
                    })
                    .filter(|(_, e, _)| *e > 0.0)
                    .collect();
                sqls.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                for (sql, executed, rows) in sqls.iter().take(12) {
                    let short: String = sql.chars().take(90).collect();
                    println!("bench/fleet:   {executed:5.2} × ({rows:5.2} rows) {short}");
                }
                runs.push(run);
            }
        }
    }
    report(&runs);
    Ok(())
}

fn report(runs: &[Run]) {
    println!(
        "\n| deployments | workers | pass | per deployment | worker CPU / deployment | statements / deployment | rows written / deployment | worker memory: after pass, above idle / deployment, peak | AWS calls / deployment | calls/s served | CPU share: emulator, workers, driver |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for r in runs {
        println!(
            "| {} | {} | {:.1} s | {:.1} ms | {:.2} ms | {:.1} | {:.1} | {:.0} MiB, {:.0} KiB, {:.0} MiB | {:.1} | {:.0} | {:.0}%, {:.0}%, {:.0}% |",
            r.size,
            r.workers,
            r.secs,
            r.secs * 1000.0 / r.size as f64,
            r.cpu_ms,
            r.statements,
            r.written,
            r.after_mib,
            r.kib,
            r.peak_mib,
            r.calls,
            r.calls_per_sec,
            r.emulator_share * 100.0,
            r.worker_share * 100.0,
            r.driver_share * 100.0
        );
    }
    // Growth of each per-deployment figure against the smallest size of the same worker count.
    println!(
        "\n| deployments | workers | growth vs smallest: pass / deployment | worker CPU | statements | rows written | memory | target (each ≤ 1.2) |\n|---|---|---|---|---|---|---|---|"
    );
    for r in runs {
        let Some(b) = runs.iter().find(|b| b.workers == r.workers) else { continue };
        let g = |x: f64, y: f64| if y > 0.0 { x / y } else { 1.0 };
        let growth = [
            g(r.secs / r.size as f64, b.secs / b.size as f64),
            g(r.cpu_ms, b.cpu_ms),
            g(r.statements, b.statements),
            g(r.written, b.written),
            g(r.kib, b.kib),
        ];
        // The pass time is the emulator's as much as garrison's: the target is on what
        // garrison spends (CPU, statements, rows, memory).
        let met = growth[1..].iter().all(|x| *x <= 1.2);
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            r.size,
            r.workers,
            growth[0],
            growth[1],
            growth[2],
            growth[3],
            growth[4],
            if met { "met" } else { "not met" }
        );
    }
    if let Some(r) = runs.iter().find(|r| r.size == 1000 && r.workers == 1) {
        println!(
            "\ntarget: 1,000 deployments in <= 60 s with one worker: {:.1} s ({})",
            r.secs,
            if r.secs <= 60.0 { "met" } else { "not met" }
        );
    }
}
