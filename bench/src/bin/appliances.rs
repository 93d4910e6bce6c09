//! bench/appliances: heartbeats per second that `garrison serve` (release, embedded SQLite)
//! takes from 10,000 registered appliances — each request another appliance's credential,
//! checked and its heartbeat written — with p50/p99, against a minimal axum handler on the
//! same route shape answering the same bytes (no lookup, no write), in the same run. The
//! appliances register through the API first (registrations per second are printed too).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use garrison_bench::{LoadResult, Proc, call, free_port, wait_port};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::json;

async fn ceiling_server(port: u16) -> anyhow::Result<()> {
    let config = Bytes::from(
        json!({"appliance_id": "A", "deployment_id": "D", "key": "us-east-1/vpc-1/us-east-1a/ids", "role": "ids", "heartbeat_interval_s": 60})
            .to_string(),
    );
    let app = axum::Router::new().route(
        "/appliances/v1/heartbeat",
        axum::routing::post(move |_body: Bytes| {
            let c = config.clone();
            async move { ([("content-type", "application/json")], c) }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// `connections` loops, each posting to `path` back to back on one keep-alive connection for
/// `secs`, each request with the next appliance's credential (round-robin over `credentials`).
async fn load(
    addr: &str,
    path: &str,
    credentials: Arc<Vec<String>>,
    connections: usize,
    secs: f64,
) -> anyhow::Result<LoadResult> {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = vec![];
    for c in 0..connections {
        let (addr, path, credentials) = (addr.to_string(), path.to_string(), credentials.clone());
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&addr).await?;
            stream.set_nodelay(true)?;
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let (mut lat, mut errors, mut i, mut packets) = (Vec::<u32>::with_capacity(200_000), 0u64, c, 0u64);
            while Instant::now() < deadline {
                packets += 1;
                let body = json!({"version": "bench", "uptime_s": packets, "work": {"role": "ids", "packets": packets, "alerts": 0}});
                let req = Request::post(&path)
                    .header("host", &addr)
                    .header("content-type", "application/json")
                    .header("authorization", format!("Bearer {}", credentials[i % credentials.len()]))
                    .body(Full::new(Bytes::from(body.to_string())))?;
                i += connections;
                let t = Instant::now();
                let resp = send.send_request(req).await?;
                let ok = resp.status().is_success();
                resp.into_body().collect().await?;
                lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                if !ok {
                    errors += 1;
                }
            }
            anyhow::Ok((lat, errors))
        }));
    }
    let (mut all, mut errors) = (vec![], 0);
    for t in tasks {
        let (lat, e) = t.await??;
        all.extend(lat);
        errors += e;
    }
    Ok(LoadResult::of(all, errors, started.elapsed().as_secs_f64()))
}

fn line(name: &str, r: &LoadResult) -> String {
    format!(
        "| {name} | {:.0} | {:.2} | {:.2} | {} |",
        r.rps(),
        r.p50_us as f64 / 1000.0,
        r.p99_us as f64 / 1000.0,
        r.errors
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--ceiling-server") {
        return ceiling_server(args[2].parse()?).await;
    }
    let appliances: usize = std::env::var("BENCH_APPLIANCES").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let secs: f64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(8.0);
    let conns: usize = std::env::var("BENCH_CONNECTIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(32);
    let exe = std::env::current_exe()?;
    let garrison = exe.with_file_name("garrison");
    anyhow::ensure!(garrison.exists(), "{} not found: build it first (bench/appliances/run does)", garrison.display());
    let dir = std::env::temp_dir().join(format!("garrison-bench-appliances-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    // The launches garrison would have made: a bootstrap token each, bound to its instance,
    // minted in the store before the server opens it.
    let key = garrison_store::SealKey::generate();
    let url = format!("sqlite://{}?mode=rwc", dir.join("garrison.db").display());
    let t = Instant::now();
    let mut tokens = Vec::with_capacity(appliances);
    {
        let store = garrison_store::Store::open(&url, &key).await?;
        for n in 0..appliances {
            let (instance, launch) = (format!("i-{n:017x}"), format!("launch-{n}"));
            let l = garrison_store::NewLaunch {
                account_id: "12345678",
                deployment_id: "BENCH",
                key: &format!("us-east-1/vpc-{:08x}/us-east-1a/ids", n / 2),
                role: "ids",
                launch_token: &launch,
            };
            tokens.push((store.mint_bootstrap(&l, garrison_engine::now_ms(), 3_600_000).await?, instance.clone()));
            store.bind_bootstrap("BENCH", &launch, &instance).await?;
        }
    }
    let minted = t.elapsed();

    let gport = free_port();
    let _g = Proc(
        Command::new(&garrison)
            .args(["serve", "--no-worker", "--listen", &format!("127.0.0.1:{gport}"), "--data-dir"])
            .arg(&dir)
            .env("GARRISON_SEAL_KEY", key.to_hex())
            .env("GARRISON_ROOT_ACCESS_KEY_ID", "0123456789abcdef")
            .env("GARRISON_ROOT_SECRET_KEY", "b".repeat(64))
            .env("GARRISON_ROOT_ACCOUNT_ID", "12345678")
            .env("GARRISON_LOG", "error")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(Stdio::null())
            .spawn()?,
    );
    wait_port(gport);
    let gaddr = format!("127.0.0.1:{gport}");

    // Every appliance registers once, through the API (8 at a time).
    let t = Instant::now();
    let tokens = Arc::new(tokens);
    let mut tasks = vec![];
    for w in 0..8 {
        let (tokens, gaddr) = (tokens.clone(), gaddr.clone());
        tasks.push(tokio::spawn(async move {
            let mut got = vec![];
            for (token, instance) in tokens.iter().skip(w).step_by(8) {
                let body = json!({"token": token, "instance_id": instance, "role": "ids", "version": "bench"});
                let (st, r) = call(&gaddr, "POST", "/appliances/v1/register", &[], Some(body)).await?;
                anyhow::ensure!(st == 200, "register: {st} {r}");
                got.push(r["credential"].as_str().unwrap_or_default().to_string());
            }
            anyhow::Ok(got)
        }));
    }
    let mut credentials = vec![];
    for t in tasks {
        credentials.extend(t.await??);
    }
    let registered = t.elapsed();
    let credentials = Arc::new(credentials);

    let cport = free_port();
    let _c = Proc(Command::new(&exe).args(["--ceiling-server", &cport.to_string()]).spawn()?);
    wait_port(cport);
    let caddr = format!("127.0.0.1:{cport}");
    let path = "/appliances/v1/heartbeat";
    println!(
        "bench/appliances: {appliances} appliances registered ({:.0}/s through the API; tokens minted in {:.1}s); heartbeats over {conns} keep-alive connections, each request the next appliance's credential, {secs}s per round, 2 interleaved rounds, best kept",
        appliances as f64 / registered.as_secs_f64(),
        minted.as_secs_f64()
    );
    load(&caddr, path, credentials.clone(), conns, 1.0).await?;
    load(&gaddr, path, credentials.clone(), conns, 1.0).await?;
    let (mut best_c, mut best_g): (Option<LoadResult>, Option<LoadResult>) = (None, None);
    for _ in 0..2 {
        let c = load(&caddr, path, credentials.clone(), conns, secs).await?;
        let g = load(&gaddr, path, credentials.clone(), conns, secs).await?;
        if best_c.as_ref().is_none_or(|b| c.rps() > b.rps()) {
            best_c = Some(c);
        }
        if best_g.as_ref().is_none_or(|b| g.rps() > b.rps()) {
            best_g = Some(g);
        }
    }
    let (c, g) = (best_c.unwrap(), best_g.unwrap());
    let ratio = g.rps() / c.rps();
    let needed = appliances as f64 / 60.0;
    println!("\n| server | heartbeats/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|");
    println!("{}", line("minimal axum handler, same route (ceiling)", &c));
    println!("{}", line("garrison heartbeat (credential checked, heartbeat written, SQLite)", &g));
    println!(
        "\nratio garrison / ceiling: {ratio:.2}; {appliances} appliances beating every 60 s need {needed:.0}/s: headroom {:.0}x",
        g.rps() / needed
    );
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("out");
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("appliances.json"),
        serde_json::to_vec_pretty(&json!({
            "appliances": appliances, "connections": conns, "seconds": secs,
            "registrations_per_s": appliances as f64 / registered.as_secs_f64(),
            "ceiling": {"rps": c.rps(), "p50_ms": c.p50_us as f64 / 1e3, "p99_ms": c.p99_us as f64 / 1e3, "errors": c.errors},
            "garrison": {"rps": g.rps(), "p50_ms": g.p50_us as f64 / 1e3, "p99_ms": g.p99_us as f64 / 1e3, "errors": g.errors},
            "ratio": ratio, "headroom": g.rps() / needed,
        }))?,
    )?;
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(g.errors == 0 && c.errors == 0, "errors during the run");
    Ok(())
}
