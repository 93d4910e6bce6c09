//! Shared pieces of the benchmarks: a closed-loop HTTP/1.1 load generator with keep-alive
//! connections and exact latency percentiles, and a protected-deployment fixture.

pub mod fixture;
pub mod pgwire;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

/// A child process killed when dropped (servers under measurement).
pub struct Proc(pub std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").map(|l| l.local_addr().map(|a| a.port()).unwrap_or(0)).unwrap_or(0)
}

/// Waits until something listens on `port` (30 s at most).
pub fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server on {port} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[derive(Debug, Clone)]
pub struct LoadResult {
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub p50_us: u64,
    pub p99_us: u64,
}

impl LoadResult {
    /// From every request's latency in microseconds.
    pub fn of(mut latencies: Vec<u32>, errors: u64, seconds: f64) -> LoadResult {
        latencies.sort_unstable();
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0) as u64
        };
        LoadResult { requests: latencies.len() as u64, errors, seconds, p50_us: pct(0.50), p99_us: pct(0.99) }
    }

    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// A keep-alive HTTP/1.1 connection to `addr` (Nagle off), its driver spawned.
async fn keep_alive(
    addr: &str,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<http_body_util::Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(send)
}

/// `connections` loops, each sending GET `path` back to back on one connection for `secs`.
pub async fn run(
    addr: &str,
    path: &str,
    headers: &[(&str, String)],
    connections: usize,
    secs: f64,
) -> anyhow::Result<LoadResult> {
    run_paths(addr, std::sync::Arc::new(vec![path.to_string()]), headers, connections, secs).await
}

/// `connections` loops, each sending GETs back to back on one connection for `secs`, going
/// round `paths` (each connection from its own place in it).
pub async fn run_paths(
    addr: &str,
    paths: std::sync::Arc<Vec<String>>,
    headers: &[(&str, String)],
    connections: usize,
    secs: f64,
) -> anyhow::Result<LoadResult> {
    anyhow::ensure!(!paths.is_empty(), "no path to request");
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = vec![];
    for c in 0..connections {
        let (addr, paths) = (addr.to_string(), paths.clone());
        let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        tasks.push(tokio::spawn(async move {
            let mut send = keep_alive(&addr).await?;
            let mut lat: Vec<u32> = Vec::with_capacity(200_000);
            let mut errors = 0u64;
            let mut i = c * paths.len() / connections.max(1);
            while Instant::now() < deadline {
                let mut req = Request::get(&paths[i % paths.len()]).header("host", &addr);
                i += 1;
                for (k, v) in &headers {
                    req = req.header(k, v);
                }
                let t = Instant::now();
                let resp = send.send_request(req.body(Full::new(Bytes::new()))?).await?;
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
    let mut all: Vec<u32> = vec![];
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await??;
        all.extend(lat);
        errors += e;
    }
    Ok(LoadResult::of(all, errors, started.elapsed().as_secs_f64()))
}

/// `connections` loops sending the POSTs `body(i)` to `path(i)` for i in 0..n, each request
/// on the loop's keep-alive connection; every response's status, JSON body and latency (µs)
/// in the order of i, and the wall time.
pub async fn post_all(
    addr: &str,
    n: usize,
    connections: usize,
    headers: &[(&str, String)],
    request: std::sync::Arc<dyn Fn(usize) -> (String, serde_json::Value) + Send + Sync>,
) -> anyhow::Result<(Vec<(u16, serde_json::Value, u32)>, f64)> {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = vec![];
    for _ in 0..connections {
        let (addr, next, request) = (addr.to_string(), next.clone(), request.clone());
        let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        tasks.push(tokio::spawn(async move {
            let mut send = keep_alive(&addr).await?;
            let mut out = vec![];
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let (path, body) = request(i);
                let mut req = Request::post(&path).header("host", &addr).header("content-type", "application/json");
                for (k, v) in &headers {
                    req = req.header(k, v);
                }
                let t = Instant::now();
                let resp = send.send_request(req.body(Full::new(Bytes::from(body.to_string())))?).await?;
                let status = resp.status().as_u16();
                let bytes = resp.into_body().collect().await?.to_bytes();
                let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
                out.push((i, status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null), us));
            }
            anyhow::Ok(out)
        }));
    }
    let mut all = vec![];
    for t in tasks {
        all.extend(t.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_by_key(|r| r.0);
    Ok((all.into_iter().map(|(_, s, b, us)| (s, b, us)).collect(), secs))
}

/// A process's resident memory in MiB: all of it, its peak, and the part that is its own
/// data (anonymous) rather than mapped files (the binary's code, the database's shared pages).
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss: f64,
    pub peak: f64,
    pub anon: f64,
    pub file: f64,
}

pub fn memory_mib(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    Memory { rss: field("VmRSS:"), peak: field("VmHWM:"), anon: field("RssAnon:"), file: field("RssFile:") }
}

/// With `BENCH_SMAPS=<dir>`, keeps a copy of the process's memory map (`/proc/PID/smaps`)
/// as `<dir>/<name>.smaps`, to see which mappings hold the memory `memory_mib` reports.
pub fn keep_smaps(pid: u32, name: &str) {
    if let Some(dir) = std::env::var_os("BENCH_SMAPS") {
        let dir = std::path::PathBuf::from(dir);
        let _ = std::fs::create_dir_all(&dir);
        if let Err(e) = std::fs::copy(format!("/proc/{pid}/smaps"), dir.join(format!("{name}.smaps"))) {
            eprintln!("BENCH_SMAPS: {e}");
        }
    }
}

/// CPU time a process has spent, user and system, all its threads (live and exited), in
/// seconds: /proc's clock ticks, which are 1/100 s on Linux whatever the kernel's HZ.
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is the first, utime the 12th.
    let fields: Vec<&str> = stat.rsplit_once(") ").map(|(_, r)| r.split(' ').collect()).unwrap_or_default();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// One request on a fresh connection: its status and JSON body (Null when not JSON).
pub async fn call(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Option<serde_json::Value>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req =
        Request::builder().method(method).uri(path).header("host", addr).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let resp = send.send_request(req.body(Full::new(Bytes::from(bytes)))?).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null)))
}
