//! The HTTP client side: where the server is, which key to use, authentication, calls.

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine as _;
use serde_json::Value;

/// Where to connect and with which key, after every source is merged.
#[derive(Clone)]
pub struct Connection {
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_key: String,
    pub account_id: Option<String>,
    /// PEM CA certificates to trust besides the system's (a private CA's server).
    pub ca_bundle: Option<PathBuf>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Default, Debug)]
pub struct Overrides {
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_key: Option<String>,
    pub profile: Option<String>,
    pub ca_bundle: Option<String>,
}

/// Reads one `[profile]` section of an INI file (the alcli config format).
fn profile_section(path: &PathBuf, profile: &str) -> HashMap<String, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return HashMap::new();
    };
    let mut out = HashMap::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.split([';', '#']).next().unwrap_or("").trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == profile;
        } else if inside && let Some((k, v)) = line.split_once('=') {
            out.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    out
}

fn env(names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

fn config_files() -> Vec<PathBuf> {
    let mut files = vec![];
    if let Some(p) = env(&["GARRISON_CONFIG_FILE"]) {
        files.push(PathBuf::from(p));
    }
    if let Some(home) = env(&["HOME"]) {
        files.push(PathBuf::from(&home).join(".garrison").join("config"));
    }
    if let Some(p) = env(&["ALERTLOGIC_CONFIG"]) {
        files.push(PathBuf::from(p));
    } else if let Some(home) = env(&["HOME"]) {
        files.push(PathBuf::from(home).join(".alertlogic").join("config"));
    }
    files
}

/// Flags, then GARRISON_*, then ALERTLOGIC_*, then the profile file.
pub fn resolve(o: &Overrides) -> Result<Connection, String> {
    let profile = o
        .profile
        .clone()
        .or_else(|| env(&["GARRISON_PROFILE", "ALERTLOGIC_PROFILE"]))
        .unwrap_or_else(|| "default".into());
    let file: HashMap<String, String> =
        config_files().iter().map(|p| profile_section(p, &profile)).find(|m| !m.is_empty()).unwrap_or_default();
    let endpoint = o
        .endpoint
        .clone()
        .or_else(|| env(&["GARRISON_ENDPOINT", "ALERTLOGIC_ENDPOINT"]))
        .or_else(|| file.get("endpoint").or_else(|| file.get("global_endpoint")).cloned())
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(format!("endpoint: expected a URL such as http://127.0.0.1:8080, found {endpoint:?}"));
    }
    let key_id = o
        .access_key_id
        .clone()
        .or_else(|| env(&["GARRISON_ACCESS_KEY_ID", "ALERTLOGIC_ACCESS_KEY_ID"]))
        .or_else(|| file.get("access_key_id").cloned());
    let secret = o
        .secret_key
        .clone()
        .or_else(|| env(&["GARRISON_SECRET_KEY", "ALERTLOGIC_SECRET_KEY"]))
        .or_else(|| file.get("secret_key").cloned());
    let (Some(access_key_id), Some(secret_key)) = (key_id, secret) else {
        return Err("no access key: pass --access_key_id and --secret_key, set GARRISON_ACCESS_KEY_ID and GARRISON_SECRET_KEY, or add them to a profile in ~/.garrison/config".into());
    };
    let ca_bundle = o
        .ca_bundle
        .clone()
        .or_else(|| env(&["GARRISON_CA_BUNDLE"]))
        .or_else(|| file.get("ca_bundle").cloned())
        .map(PathBuf::from);
    Ok(Connection {
        endpoint: endpoint.trim_end_matches('/').to_string(),
        access_key_id,
        secret_key,
        account_id: file.get("account_id").cloned(),
        ca_bundle,
    })
}

#[derive(Debug)]
pub enum CallError {
    /// The server answered with an error status; the body is what it said.
    Http { status: u16, body: Value },
    /// No answer at all.
    Transport(String),
}

pub struct Client {
    /// Or why there is none (a CA bundle that cannot be read): every call says so.
    http: Result<reqwest::Client, String>,
    pub conn: Connection,
    token: Option<String>,
    pub account_id: Option<String>,
}

fn body_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// The HTTP client: the system's CAs (and webpki's), and the bundle's when given.
fn http_client(ca_bundle: Option<&PathBuf>) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder().user_agent(concat!("garrison/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_bundle {
        let pem = std::fs::read(path).map_err(|e| format!("--ca-bundle {}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("--ca-bundle {}: expected PEM certificates: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("--ca-bundle {}: expected PEM certificates, found none", path.display()));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| format!("HTTP client: {e}"))
}

/// Why a request got no answer, in words: an untrusted certificate says how to trust it.
fn unreachable(endpoint: &str, e: &reqwest::Error) -> String {
    let mut chain = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    let detail = chain.join(": ");
    if chain.iter().any(|m| m.contains("certificate") || m.contains("UnknownIssuer")) {
        format!(
            "cannot reach {endpoint}: its TLS certificate is not trusted ({}); pass --ca-bundle FILE (or set GARRISON_CA_BUNDLE) with the CA that signed it",
            chain.last().map(String::as_str).unwrap_or("")
        )
    } else {
        format!("cannot reach {endpoint}: {detail}")
    }
}

impl Client {
    pub fn new(conn: Connection) -> Client {
        let http = http_client(conn.ca_bundle.as_ref());
        Client { http, account_id: conn.account_id.clone(), conn, token: None }
    }

    fn http(&self) -> Result<&reqwest::Client, CallError> {
        self.http.as_ref().map_err(|e| CallError::Transport(e.clone()))
    }

    /// POST /aims/v1/authenticate with the access key; keeps the token and default account.
    pub async fn authenticate(&mut self) -> Result<Value, CallError> {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.conn.access_key_id, self.conn.secret_key));
        let resp = self
            .http()?
            .post(format!("{}/aims/v1/authenticate", self.conn.endpoint))
            .header("authorization", format!("Basic {basic}"))
            .send()
            .await
            .map_err(|e| CallError::Transport(unreachable(&self.conn.endpoint, &e)))?;
        let status = resp.status().as_u16();
        let body = body_of(&resp.text().await.unwrap_or_default());
        if status != 200 {
            return Err(CallError::Http { status, body });
        }
        self.token = body["authentication"]["token"].as_str().map(str::to_string);
        if self.account_id.is_none() {
            self.account_id = body["authentication"]["account"]["id"].as_str().map(str::to_string);
        }
        Ok(body)
    }

    /// One call; returns the status and the parsed body (JSON, or the text as a string).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<(u16, Value), CallError> {
        let m = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| CallError::Transport(e.to_string()))?;
        let mut req = self.http()?.request(m, format!("{}{path}", self.conn.endpoint));
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(t) = &self.token {
            req = req.header("x-aims-auth-token", t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| CallError::Transport(unreachable(&self.conn.endpoint, &e)))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body = if text.is_empty() { Value::Null } else { body_of(&text) };
        if status >= 400 { Err(CallError::Http { status, body }) } else { Ok((status, body)) }
    }
}
