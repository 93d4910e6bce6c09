//! Shared pieces of the benchmarks: a closed-loop HTTP/1.1 load generator with keep-alive
//! connections and exact latency percentiles, and a protected-deployment fixture.

pub mod fixture;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
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

/// `connections` loops, each sending GET `path` back to back on one connection for `secs`.
pub async fn run(
    addr: &str,
    path: &str,
    headers: &[(&str, String)],
    connections: usize,
    secs: f64,
) -> anyhow::Result<LoadResult> {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = vec![];
    for _ in 0..connections {
        let (addr, path) = (addr.to_string(), path.to_string());
        let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&addr).await?;
            stream.set_nodelay(true)?;
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut lat: Vec<u32> = Vec::with_capacity(200_000);
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let mut req = Request::get(&path).header("host", &addr);
                for (k, v) in &headers {
                    req = req.header(k, v);
                }
                let t = Instant::now();
                let resp = send.send_request(req.body(Empty::<Bytes>::new())?).await?;
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
