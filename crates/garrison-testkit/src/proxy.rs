//! A loopback proxy in front of the emulator that makes it behave like a far-away, less
//! reliable AWS: latency added to every call; chosen regions or services refused with each
//! protocol's real access-denied error; and, at configured rates, each service's real
//! throttling error, 5xx answers, and connections reset (before the request reaches the
//! emulator, or after it was carried out, so the answer is lost). Tests and benchmarks
//! point the SDK at it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

#[derive(Debug, Default)]
pub struct Faults {
    /// Added before each request is forwarded.
    pub latency: Mutex<Duration>,
    /// Regions whose every call is refused.
    pub deny_regions: Mutex<BTreeSet<String>>,
    /// Services (signing names, e.g. "ec2") refused in every region.
    pub deny_services: Mutex<BTreeSet<String>>,
    /// The next this-many calls are answered with the service's throttling error.
    pub throttle_next: AtomicU64,
    /// Operations (`DescribeInstances`, …) throttled on every call: retries never get through.
    pub throttle_always: Mutex<BTreeSet<String>>,
    /// Random faults, each call drawing once (deterministic for a seed).
    pub rates: Mutex<Rates>,
    pub requests: AtomicU64,
    /// Client connections accepted (a client that keeps its connections opens few).
    pub connections: AtomicU64,
    pub denied: AtomicU64,
    pub throttled: AtomicU64,
    pub server_errors: AtomicU64,
    pub resets: AtomicU64,
    draws: AtomicU64,
}

/// Shares of calls answered with a fault; the rest go through.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    /// The service's throttling error (EC2 RequestLimitExceeded, Throttling, SlowDown, …).
    pub throttle: f64,
    /// 500 or 503 with the service's error shape.
    pub server_error: f64,
    /// The connection is closed without an answer; half of these after the emulator has
    /// carried the request out.
    pub reset: f64,
    pub seed: u64,
}

enum Draw {
    Pass,
    Throttle,
    ServerError(bool),
    ResetBefore,
    ResetAfter,
}

impl Faults {
    /// splitmix64 over a counter: the n-th call's fault is fixed by the seed.
    fn uniform(&self, seed: u64) -> f64 {
        let mut z = seed.wrapping_add(self.draws.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn draw(&self) -> Draw {
        let r = *self.rates.lock().expect("faults");
        if r == Rates::default() {
            return Draw::Pass;
        }
        let x = self.uniform(r.seed);
        if x < r.throttle {
            Draw::Throttle
        } else if x < r.throttle + r.server_error {
            Draw::ServerError(self.uniform(r.seed) < 0.5)
        } else if x < r.throttle + r.server_error + r.reset {
            if self.uniform(r.seed) < 0.5 { Draw::ResetBefore } else { Draw::ResetAfter }
        } else {
            Draw::Pass
        }
    }

    /// Every fault injected so far: throttles, server errors, resets.
    pub fn injected(&self) -> (u64, u64, u64) {
        (
            self.throttled.load(Ordering::Relaxed),
            self.server_errors.load(Ordering::Relaxed),
            self.resets.load(Ordering::Relaxed),
        )
    }
}

/// A 500 (InternalError) or 503 (ServiceUnavailable) in the service's error shape.
fn server_error(service: &str, unavailable: bool) -> Response<Full<Bytes>> {
    let (status, code) = if unavailable {
        (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable")
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
    };
    let (body, json_type) = match service {
        "ec2" => (
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code><Message>injected</Message></Error></Errors><RequestID>garrison-proxy</RequestID></Response>"
            ),
            None,
        ),
        "iam" | "sts" | "sns" | "sqs" => (
            format!(
                "<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code><Message>injected</Message></Error><RequestId>garrison-proxy</RequestId></ErrorResponse>"
            ),
            None,
        ),
        "s3" => (format!("<Error><Code>{code}</Code><Message>injected</Message></Error>"), None),
        _ => {
            let t = if unavailable { "ServiceUnavailableException" } else { "InternalFailure" };
            (format!("{{\"__type\":\"{t}\",\"message\":\"injected\"}}"), Some(t))
        }
    };
    aws_error(status, body, json_type)
}

pub struct Proxy {
    pub url: String,
    pub faults: Arc<Faults>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// (region, service) from the SigV4 credential scope of the Authorization header.
fn scope(req: &Request<Incoming>) -> (String, String) {
    let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let cred = auth.split("Credential=").nth(1).unwrap_or_default();
    let parts: Vec<&str> = cred.split(',').next().unwrap_or_default().split('/').collect();
    (parts.get(2).unwrap_or(&"").to_string(), parts.get(3).unwrap_or(&"").to_string())
}

/// An error answer in the protocol's shape: JSON protocols name the type in a header.
fn aws_error(status: StatusCode, body: String, json_type: Option<&str>) -> Response<Full<Bytes>> {
    let r = Response::builder().status(status);
    let r = match json_type {
        Some(t) => r.header("x-amzn-errortype", t).header("content-type", "application/x-amz-json-1.1"),
        None => r.header("content-type", "text/xml"),
    };
    r.body(Full::new(Bytes::from(body))).expect("response")
}

fn throttled(service: &str) -> Response<Full<Bytes>> {
    let (status, body, json_type) = match service {
        "ec2" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>injected: request limit exceeded</Message></Error></Errors><RequestID>garrison-proxy</RequestID></Response>".to_string(),
            None,
        ),
        "iam" | "sts" | "sns" | "sqs" => (
            StatusCode::BAD_REQUEST,
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>injected: rate exceeded</Message></Error><RequestId>garrison-proxy</RequestId></ErrorResponse>".to_string(),
            None,
        ),
        "s3" => (StatusCode::SERVICE_UNAVAILABLE, "<Error><Code>SlowDown</Code><Message>injected: slow down</Message></Error>".to_string(), None),
        _ => (
            StatusCode::BAD_REQUEST,
            "{\"__type\":\"ThrottlingException\",\"message\":\"injected: rate exceeded\"}".to_string(),
            Some("ThrottlingException"),
        ),
    };
    aws_error(status, body, json_type)
}

fn denied(service: &str, region: &str) -> Response<Full<Bytes>> {
    let msg = format!("injected: access to {service} in {region} is denied");
    let (body, json_type) = match service {
        "ec2" => (
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>{msg}</Message></Error></Errors><RequestID>garrison-proxy</RequestID></Response>"
            ),
            None,
        ),
        "iam" | "sts" | "sns" | "sqs" => (
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{msg}</Message></Error><RequestId>garrison-proxy</RequestId></ErrorResponse>"
            ),
            None,
        ),
        "s3" => (format!("<Error><Code>AccessDenied</Code><Message>{msg}</Message></Error>"), None),
        _ => (format!("{{\"__type\":\"AccessDeniedException\",\"message\":\"{msg}\"}}"), Some("AccessDeniedException")),
    };
    aws_error(StatusCode::FORBIDDEN, body, json_type)
}

/// The operation a request calls: `Action=` of the query protocols, else the JSON target.
fn operation(headers: &hyper::HeaderMap, body: &[u8]) -> String {
    if let Some(t) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return t.rsplit('.').next().unwrap_or_default().to_string();
    }
    let text = std::str::from_utf8(body).unwrap_or_default();
    text.split('&').find_map(|kv| kv.strip_prefix("Action=")).unwrap_or_default().to_string()
}

async fn forward(
    upstream: SocketAddr,
    parts: hyper::http::request::Parts,
    body: Bytes,
) -> anyhow::Result<Response<Full<Bytes>>> {
    // The emulator closes every connection after one answer (its server sends
    // `Connection: close`), so there is nothing to keep between calls on this side.
    let stream = tokio::net::TcpStream::connect(upstream).await?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let resp = send.send_request(Request::from_parts(parts, Full::new(body))).await?;
    let (mut parts, body) = resp.into_parts();
    // A hop-by-hop header: the client's connection to the proxy stays open, as one to AWS does.
    parts.headers.remove(hyper::header::CONNECTION);
    Ok(Response::from_parts(parts, Full::new(body.collect().await?.to_bytes())))
}

/// How a sharded proxy spreads calls over its emulators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shard {
    /// Each region in one emulator, assigned in turn as regions are first seen.
    ByRegion,
    /// Each AWS account in one emulator (its number modulo the shards). An emulator knows
    /// which account a session's keys belong to only if it issued them, so AssumeRole goes
    /// to the role's account's shard, the keys in its answer are remembered, and every call
    /// signed with them follows. Calls with other keys (the base identity) go to shard 0.
    ByAccount,
}

/// The account of an AssumeRole request's `RoleArn` (form-encoded body).
fn assumed_account(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    if !text.split('&').any(|kv| kv == "Action=AssumeRole") {
        return None;
    }
    let arn = text.split('&').find_map(|kv| kv.strip_prefix("RoleArn="))?.replace("%3A", ":").replace("%3a", ":");
    arn.split(':').nth(4)?.parse().ok()
}

/// The access key id a request is signed with.
fn access_key(headers: &hyper::HeaderMap) -> String {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    auth.split("Credential=").nth(1).and_then(|c| c.split('/').next()).unwrap_or_default().to_string()
}

/// The access key id in an AssumeRole answer.
fn issued_key(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<AccessKeyId>")? + "<AccessKeyId>".len();
    let end = text[start..].find("</AccessKeyId>")? + start;
    Some(text[start..end].trim().to_string())
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream` (http://127.0.0.1:PORT).
    pub async fn start(upstream: &str) -> anyhow::Result<Proxy> {
        Proxy::start_sharded(&[upstream.to_string()]).await
    }

    /// Like `start`, with each region served by one of several emulators, assigned in turn
    /// as regions are first seen (global calls signed for us-east-1 go with us-east-1). Real AWS
    /// regions are independent services; one single-threaded emulator process is not.
    pub async fn start_sharded(upstreams: &[String]) -> anyhow::Result<Proxy> {
        Proxy::start_sharded_by(upstreams, Shard::ByRegion).await
    }

    /// Several emulators, calls spread as `how` says.
    pub async fn start_sharded_by(upstreams: &[String], how: Shard) -> anyhow::Result<Proxy> {
        let ups: Vec<SocketAddr> = upstreams
            .iter()
            .map(|u| u.trim_start_matches("http://").trim_end_matches('/').parse())
            .collect::<Result<_, _>>()?;
        anyhow::ensure!(!ups.is_empty(), "no upstream");
        let ups = Arc::new(ups);
        let assigned: Arc<Mutex<std::collections::HashMap<String, usize>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let faults = Arc::new(Faults::default());
        let f = faults.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                f.connections.fetch_add(1, Ordering::Relaxed);
                let (f, ups, assigned) = (f.clone(), ups.clone(), assigned.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (f, ups, assigned) = (f.clone(), ups.clone(), assigned.clone());
                        async move {
                            f.requests.fetch_add(1, Ordering::Relaxed);
                            let (region, service) = scope(&req);
                            let latency = *f.latency.lock().expect("faults");
                            if !latency.is_zero() {
                                tokio::time::sleep(latency).await;
                            }
                            let deny = f.deny_regions.lock().expect("faults").contains(&region)
                                || f.deny_services.lock().expect("faults").contains(&service);
                            if deny {
                                f.denied.fetch_add(1, Ordering::Relaxed);
                                return Ok::<_, std::io::Error>(denied(&service, &region));
                            }
                            let (parts, body) = req.into_parts();
                            let body = match body.collect().await {
                                Ok(b) => b.to_bytes(),
                                Err(e) => return Err(std::io::Error::other(e)),
                            };
                            let always = {
                                let set = f.throttle_always.lock().expect("faults");
                                !set.is_empty() && set.contains(&operation(&parts.headers, &body))
                            };
                            let throttle = always
                                || f.throttle_next
                                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                                    .is_ok();
                            let draw = if throttle { Draw::Throttle } else { f.draw() };
                            let reset = || std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected reset");
                            match draw {
                                Draw::Throttle => {
                                    f.throttled.fetch_add(1, Ordering::Relaxed);
                                    return Ok(throttled(&service));
                                }
                                Draw::ServerError(unavailable) => {
                                    f.server_errors.fetch_add(1, Ordering::Relaxed);
                                    return Ok(server_error(&service, unavailable));
                                }
                                Draw::ResetBefore => {
                                    f.resets.fetch_add(1, Ordering::Relaxed);
                                    return Err(reset());
                                }
                                Draw::ResetAfter | Draw::Pass => {}
                            }
                            let assuming = if how == Shard::ByAccount { assumed_account(&body) } else { None };
                            let shard = {
                                let mut a = assigned.lock().expect("shards");
                                match (how, assuming) {
                                    (Shard::ByRegion, _) => {
                                        let next = a.len() % ups.len();
                                        *a.entry(region.clone()).or_insert(next)
                                    }
                                    (Shard::ByAccount, Some(account)) => (account % ups.len() as u64) as usize,
                                    (Shard::ByAccount, None) => {
                                        a.get(&access_key(&parts.headers)).copied().unwrap_or(0)
                                    }
                                }
                            };
                            let mut answer = forward(ups[shard], parts, body).await.unwrap_or_else(|e| {
                                Response::builder()
                                    .status(StatusCode::BAD_GATEWAY)
                                    .body(Full::new(Bytes::from(e.to_string())))
                                    .expect("response")
                            });
                            if assuming.is_some() {
                                let (p, b) = answer.into_parts();
                                let bytes = b.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                                if let Some(key) = issued_key(&bytes) {
                                    assigned.lock().expect("shards").insert(key, shard);
                                }
                                answer = Response::from_parts(p, Full::new(bytes));
                            }
                            if matches!(draw, Draw::ResetAfter) {
                                // Carried out, answer lost: the client cannot tell it happened.
                                f.resets.fetch_add(1, Ordering::Relaxed);
                                return Err(reset());
                            }
                            Ok(answer)
                        }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        Ok(Proxy { url, faults, task })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_sharding_reads_the_role_account_and_the_issued_keys() {
        let body = b"Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A210000000007%3Arole%2Fgarrison&RoleSessionName=garrison";
        assert_eq!(assumed_account(body), Some(210_000_000_007));
        assert_eq!(assumed_account(b"Action=GetCallerIdentity&Version=2011-06-15"), None);
        assert_eq!(assumed_account(b"Action=AssumeRole&RoleArn=not-an-arn"), None);
        let answer = b"<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIAEXAMPLE123</AccessKeyId></Credentials></AssumeRoleResult></AssumeRoleResponse>";
        assert_eq!(issued_key(answer).as_deref(), Some("ASIAEXAMPLE123"));
        let mut h = hyper::HeaderMap::new();
        h.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE123/20261201/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0"
                .parse()
                .unwrap(),
        );
        assert_eq!(access_key(&h), "ASIAEXAMPLE123");
    }
}
