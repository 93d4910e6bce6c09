//! bench/discovery: discovery of estate L (16 regions, 200 VPCs, 4,000 instances) on the
//! emulator behind a proxy adding 50 ms to every AWS call; garrison's concurrent discovery
//! against a sequential baseline (the same calls one after another, as a simple script
//! makes them) and against the critical-path bound, all in the same run.

use std::time::{Duration, Instant};

use garrison_cloud::emulator::{Moto, sdk_config};
use garrison_cloud::estate::{self, ESTATE_EXTERNAL_ID, EstateSpec};
use garrison_cloud::{Aws, Sessions, discovery};
use garrison_model::snapshot::Kind;
use garrison_testkit::proxy::Proxy;
use serde_json::json;

async fn run(
    sessions: &Sessions,
    proxy: &Proxy,
    role: &str,
    regions: &[String],
    sequential: bool,
) -> anyhow::Result<(Duration, u64, garrison_model::snapshot::Snapshot)> {
    let before = proxy.faults.requests.load(std::sync::atomic::Ordering::Relaxed);
    let t = Instant::now();
    // A fresh session each run: the AssumeRole call is part of the cost.
    sessions.forget(role);
    let aws = sessions.assume(role, ESTATE_EXTERNAL_ID).await?;
    let snap = if sequential {
        discovery::discover_sequential(&aws, regions, 0).await
    } else {
        discovery::discover(&aws, regions, 0).await
    };
    let wall = t.elapsed();
    let calls = proxy.faults.requests.load(std::sync::atomic::Ordering::Relaxed) - before;
    anyhow::ensure!(!snap.is_partial(), "partial: {:?}", snap.gaps());
    Ok((wall, calls, snap))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let latency =
        Duration::from_millis(std::env::var("BENCH_LATENCY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(50));
    let spec = match std::env::var("BENCH_ESTATE").as_deref() {
        Ok("M") => EstateSpec::m(),
        Ok("S") => EstateSpec::s(),
        _ => EstateSpec::l(),
    };
    // One emulator process per core: each region lives in one of them (see Proxy::start_sharded).
    let shards: usize = std::env::var("BENCH_SHARDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let motos: Vec<Moto> = (0..shards).map(|_| Moto::start()).collect::<Result<_, _>>()?;
    let proxy = Proxy::start_sharded(&motos.iter().map(|m| m.url.clone()).collect::<Vec<_>>()).await?;
    let sessions = Sessions::new(Aws::from_config(sdk_config(&proxy.url, "us-east-1").await));
    let t = Instant::now();
    let estate = estate::build(&sessions, &spec).await?;
    println!(
        "bench/discovery: estate {} built in {:.1}s ({} regions, {} VPCs, {} instances)",
        spec.name,
        t.elapsed().as_secs_f64(),
        spec.regions.len(),
        spec.vpcs,
        spec.instances
    );
    let role = estate.accounts[0].role_arn.clone();

    *proxy.faults.latency.lock().unwrap() = latency;
    let (g_wall, g_calls, snap) = run(&sessions, &proxy, &role, &spec.regions, false).await?;
    anyhow::ensure!(snap.count(Kind::Instances) == spec.instances, "saw {} instances", snap.count(Kind::Instances));
    let (s_wall, s_calls, _) = run(&sessions, &proxy, &role, &spec.regions, true).await?;
    // The emulator serves one request at a time (one Python process): its own compute for
    // these calls, measured without latency and one call after another, is a floor no
    // client can beat here, however concurrent.
    *proxy.faults.latency.lock().unwrap() = Duration::ZERO;
    let (floor, _, _) = run(&sessions, &proxy, &role, &spec.regions, true).await?;
    let (g0_wall, _, _) = run(&sessions, &proxy, &role, &spec.regions, false).await?;
    // Critical path: AssumeRole, then the longest chain of calls that depend on each other
    // inside one (region, kind): a trail's status after the trail list, a detector after the
    // detector list; with none of those in this estate, one call.
    let chain = if spec.existing_trail || spec.existing_detector || spec.existing_recorder { 2 } else { 1 };
    let bound = latency * (1 + chain);
    println!("\n| run | AWS calls | wall s | vs garrison |\n|---|---|---|---|");
    println!("| garrison (regions and kinds concurrent) | {g_calls} | {:.2} | 1.00 |", g_wall.as_secs_f64());
    println!(
        "| sequential baseline (one call after another) | {s_calls} | {:.2} | {:.1}x slower |",
        s_wall.as_secs_f64(),
        s_wall.as_secs_f64() / g_wall.as_secs_f64()
    );
    println!(
        "| critical-path bound ({} calls x {} ms) | - | {:.2} | garrison at {:.1}x the bound |",
        1 + chain,
        latency.as_millis(),
        bound.as_secs_f64(),
        g_wall.as_secs_f64() / bound.as_secs_f64()
    );
    println!(
        "| emulator compute (same calls, no latency, one after another) / {shards} processes | - | {:.2} | garrison at {:.2}x that floor |",
        floor.as_secs_f64() / shards as f64,
        g_wall.as_secs_f64() * shards as f64 / floor.as_secs_f64()
    );
    println!("| garrison without added latency | {g_calls} | {:.2} | - |", g0_wall.as_secs_f64());
    println!("\n{shards} emulator process(es), regions spread over them");
    println!(
        "\nestate {}: {} instances, {} VPCs seen; target: L in <= 5 s",
        spec.name,
        snap.count(Kind::Instances),
        snap.count(Kind::Vpcs)
    );
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("out");
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join(format!("discovery-{}.json", spec.name)),
        serde_json::to_vec_pretty(&json!({
            "estate": spec.name, "latency_ms": latency.as_millis() as u64, "emulator_processes": shards,
            "garrison": {"calls": g_calls, "wall_s": g_wall.as_secs_f64()},
            "sequential": {"calls": s_calls, "wall_s": s_wall.as_secs_f64()},
            "critical_path_bound_s": bound.as_secs_f64(),
            "emulator_floor_s": floor.as_secs_f64(),
            "garrison_no_latency_s": g0_wall.as_secs_f64(),
            "speedup_vs_sequential": s_wall.as_secs_f64() / g_wall.as_secs_f64(),
            "ratio_to_bound": g_wall.as_secs_f64() / bound.as_secs_f64(),
        }))?,
    )?;
    Ok(())
}
