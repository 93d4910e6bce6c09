//! Notification delivery: each notice owed to a connection (the store's outbox) is sent as
//! one signed HTTP request, retried with backoff while the receiver fails or cannot be
//! reached, and dead-lettered with its last error when the receiver refuses it for good or
//! the attempts run out. Delivery is at least once: a receiver deduplicates by the
//! `X-Garrison-Notification-Id` header (the same for every attempt).

use std::time::Duration;

use garrison_model::notify::{Connection, parse_headers, render};
use garrison_store::{ConnectionSecrets, Delivery, Store};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "X-Garrison-Signature";
pub const NOTIFICATION_ID_HEADER: &str = "X-Garrison-Notification-Id";
pub const ATTEMPT_HEADER: &str = "X-Garrison-Attempt";
/// The most of a receiver's answer kept (in a dry run's result or a dead letter's error).
const ANSWER_CHARS: usize = 512;

#[derive(Debug, Clone)]
pub struct Options {
    /// The first retry's wait; each next one doubles, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Attempts before a notice that keeps failing is dead-lettered.
    pub max_attempts: i64,
    /// One request's time limit (connect and answer).
    pub timeout: Duration,
    /// How often the outbox is read when idle.
    pub poll: Duration,
    /// Deliveries sent at once.
    pub parallel: usize,
    /// Targets on loopback or private networks may be reached (never link-local ones).
    pub allow_private: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(3600),
            max_attempts: 10,
            timeout: Duration::from_secs(10),
            poll: Duration::from_secs(1),
            parallel: 8,
            allow_private: false,
        }
    }
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the connection's secret>`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a signature header as a receiver would (the tests' receiver does exactly this).
pub fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&v1).is_ok()
}

/// A request as sent and the answer it got: connectors' `ActualRequest` (a dry run's
/// result). The signature and Authorization values are not echoed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ActualRequest {
    pub request: SentRequest,
    pub response: Answer,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SentRequest {
    pub body: String,
    pub headers: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Answer {
    pub body: String,
    pub code: u16,
    pub headers: serde_json::Map<String, Value>,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 2xx.
    Sent(ActualRequest),
    /// Worth another try: 408, 429, 5xx, no connection, no answer in time.
    Failed(String),
    /// Refused for good (another 4xx, a redirect): retrying will not help.
    Refused(String),
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Sent(_) => "sent",
            Outcome::Failed(_) => "failed",
            Outcome::Refused(_) => "refused",
        }
    }
}

#[derive(Clone)]
pub struct Sender {
    http: reqwest::Client,
    opts: Options,
}

fn clip(s: &str) -> String {
    garrison_model::error::clip(s, ANSWER_CHARS)
}

impl Sender {
    pub fn new(opts: Options) -> Sender {
        let http = reqwest::Client::builder()
            // A redirect could lead the request where the target check would not allow.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout)
            .user_agent(concat!("garrison-notify/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(std::sync::Arc::new(Guarded { allow_private: opts.allow_private }))
            .build()
            .expect("a TLS client builds");
        Sender { http, opts }
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Sends herald notification `notice` (its `id` in the id header) over connection `c`.
    pub async fn send(&self, c: &Connection, secrets: &ConnectionSecrets, notice: &Value, attempt: i64) -> Outcome {
        // Checked again at each send: the operator may have withdrawn private targets since.
        if let Err(e) = garrison_model::notify::check_target(&c.target_url, self.opts.allow_private) {
            return Outcome::Refused(format!("target_url: expected {}", e.expected));
        }
        let body = serde_json::to_vec(&render(c.kind, notice)).unwrap_or_default();
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let method = if c.method == "PUT" { reqwest::Method::PUT } else { reqwest::Method::POST };
        let id = notice["id"].as_str().unwrap_or_default().to_string();
        let mut shown = serde_json::Map::new();
        let mut req = self.http.request(method, &c.target_url).header("Content-Type", "application/json");
        shown.insert("Content-Type".into(), "application/json".into());
        for (n, v) in c.headers.as_deref().map(parse_headers).and_then(Result::ok).unwrap_or_default() {
            req = req.header(&n, &v);
            shown.insert(n, v.into());
        }
        if let Some(a) = &secrets.auth_header {
            req = req.header("Authorization", a);
            shown.insert("Authorization".into(), "(sealed)".into());
        }
        req = req
            .header(SIGNATURE_HEADER, sign(&secrets.signing_secret, t, &body))
            .header(NOTIFICATION_ID_HEADER, &id)
            .header(ATTEMPT_HEADER, attempt.to_string());
        shown.insert(SIGNATURE_HEADER.into(), format!("t={t},v1=…").into());
        shown.insert(NOTIFICATION_ID_HEADER.into(), id.into());
        shown.insert(ATTEMPT_HEADER.into(), attempt.to_string().into());
        let sent = SentRequest { body: String::from_utf8_lossy(&body).into_owned(), headers: shown };
        let r = match req.body(body).send().await {
            Ok(r) => r,
            // reqwest's text names the URL and the cause (refused, timed out, TLS), no secret.
            Err(e) => return Outcome::Failed(format!("no answer: {}", clip(&error_chain(&e)))),
        };
        let code = r.status().as_u16();
        let headers = r
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), Value::String(v.to_string()))))
            .collect();
        let text = read_capped(r).await;
        let answer = Answer { body: clip(&text), code, headers };
        match code {
            200..=299 => Outcome::Sent(ActualRequest { request: sent, response: answer }),
            408 | 429 | 500..=599 => Outcome::Failed(format!("HTTP {code}: {}", answer.body)),
            300..=399 => Outcome::Refused(format!("HTTP {code}: redirects are not followed")),
            _ => Outcome::Refused(format!("HTTP {code}: {}", answer.body)),
        }
    }

    /// The wait before attempt `attempts + 1`, after `attempts` failed ones.
    pub fn backoff(&self, attempts: i64) -> Duration {
        let shift = attempts.clamp(1, 30) as u32 - 1;
        self.opts.backoff.saturating_mul(1u32 << shift.min(20)).min(self.opts.max_backoff)
    }

    /// One attempt at a claimed delivery, its outcome written back; the outcome's name.
    pub async fn deliver(&self, store: &Store, d: &Delivery) -> &'static str {
        let attempt = d.attempts + 1;
        let outcome = match store.connection_row(&d.account_id, &d.connection_id).await {
            Ok(Some((c, secrets))) => self.send(&c, &secrets, &d.body, attempt).await,
            Ok(None) => Outcome::Refused("the connection was deleted".into()),
            Err(e) => {
                tracing::warn!(delivery = %d.id, error = %e, "notify: cannot read the connection; tried again later");
                return "later";
            }
        };
        let now = now_ms();
        let (state, next, error, word) = match &outcome {
            Outcome::Sent(_) => ("sent", now, None, "sent"),
            Outcome::Failed(e) if attempt < self.opts.max_attempts => {
                ("pending", now + self.backoff(attempt).as_millis() as i64, Some(e.clone()), "retry")
            }
            Outcome::Failed(e) => ("dead", now, Some(format!("{e} (gave up after {attempt} attempts)")), "dead"),
            Outcome::Refused(e) => ("dead", now, Some(e.clone()), "dead"),
        };
        if let Err(e) = store.delivery_attempted(&d.id, state, next, error.as_deref()).await {
            tracing::warn!(delivery = %d.id, error = %e, "notify: cannot record the outcome; it will be sent again");
        }
        metrics::counter!("garrison_notifications_total", "outcome" => word, "type" => d.notification_type.clone())
            .increment(1);
        tracing::info!(delivery = %d.id, connection = %d.connection_id, attempt, outcome = word,
            error = error.as_deref().unwrap_or(""), "notification");
        word
    }
}

/// Name resolution that drops the addresses a webhook may not reach (link-local always,
/// private unless allowed): a name that resolves only to those fails like an unknown one.
struct Guarded {
    allow_private: bool,
}

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let allowed: Vec<std::net::SocketAddr> =
                found.filter(|a| garrison_model::notify::address_allowed(a.ip(), allow_private)).collect();
            if allowed.is_empty() {
                return Err(format!("{} resolves to no address garrison may send to", name.as_str()).into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// At most `ANSWER_CHARS` × 4 bytes of a receiver's answer are read: a receiver cannot make
/// garrison hold a large body.
async fn read_capped(mut r: reqwest::Response) -> String {
    let cap = ANSWER_CHARS * 4;
    let mut buf = Vec::new();
    while buf.len() < cap {
        match r.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c[..c.len().min(cap - buf.len())]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Delivers what the outbox owes, forever: at most `parallel` requests at once, each
/// claimed for longer than it can take so that another worker does not send it too.
pub async fn run(store: Store, sender: Sender) {
    let lease = (sender.opts.timeout * 3).as_millis() as i64 + 5_000;
    loop {
        let due = match store.claim_deliveries(now_ms(), lease, sender.opts.parallel * 4).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "notify: cannot read the outbox");
                vec![]
            }
        };
        if due.is_empty() {
            tokio::time::sleep(sender.opts.poll).await;
            continue;
        }
        let mut set = tokio::task::JoinSet::new();
        for d in due {
            while set.len() >= sender.opts.parallel {
                set.join_next().await;
            }
            let (s, st) = (sender.clone(), store.clone());
            set.spawn(async move {
                s.deliver(&st, &d).await;
            });
        }
        while set.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let s = Sender::new(Options {
            backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(60),
            ..Options::default()
        });
        let waits: Vec<u64> = (1..=5).map(|a| s.backoff(a).as_secs()).collect();
        assert_eq!(waits, [10, 20, 40, 60, 60]);
        assert_eq!(s.backoff(i64::MAX).as_secs(), 60);
    }

    proptest! {
        // A signature verifies for its own body and secret only.
        #[test]
        fn a_signature_binds_body_and_secret(body in proptest::collection::vec(any::<u8>(), 0..200), t in 0i64..2_000_000_000, flip in 0usize..200) {
            let h = sign("gsec_a", t, &body);
            prop_assert!(verify("gsec_a", &h, &body));
            prop_assert!(!verify("gsec_b", &h, &body));
            if !body.is_empty() {
                let mut other = body.clone();
                other[flip % body.len()] ^= 1;
                prop_assert!(!verify("gsec_a", &h, &other));
            }
        }
    }
}
