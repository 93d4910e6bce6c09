//! Shared pieces of the benchmarks: a closed-loop HTTP/1.1 load generator with keep-alive
//! connections and exact latency percentiles, and a protected-deployment fixture.

pub mod fixture;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;

#[derive(Debug, Clone)]
pub struct LoadResult {
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub p50_us: u64,
    pub p99_us: u64,
}

impl LoadResult {
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
    let seconds = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0) as u64
    };
    Ok(LoadResult { requests: all.len() as u64, errors, seconds, p50_us: pct(0.50), p99_us: pct(0.99) })
}
