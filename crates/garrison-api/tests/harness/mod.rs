//! Test harness: a real server on a loopback port over SQLite (temp file) or a fresh
//! PostgreSQL database (when GARRISON_TEST_DATABASE_URL is set), and a small client.

#![allow(dead_code)]

use garrison_api::{ApiConfig, AppState};
use garrison_store::{SealKey, Store};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const PRINCIPAL: &str = "210987654321";
pub const ESSENTIALS: &str = "A8E8B104-8F45-411D-A240-A30EA5FE25B0";
pub const PROFESSIONAL: &str = "D12D5E67-166C-474F-87AA-6F86FC9FB9BC";

#[derive(Clone, Copy, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct Server {
    pub base: String,
    pub state: AppState,
    pub root: Key,
    pub http: reqwest::Client,
    _dir: Option<TempDir>,
}

#[derive(Clone, Debug)]
pub struct Key {
    pub id: String,
    pub secret: String,
}

pub struct TempDir(pub std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn temp_dir(tag: &str) -> TempDir {
    let d =
        std::env::temp_dir().join(format!("garrison-test-{tag}-{}-{:x}", std::process::id(), rand::random::<u64>()));
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

/// `None` when the test should not run on this backend here (PostgreSQL not configured).
pub async fn start(db: Db) -> Option<Server> {
    let (url, dir) = match db {
        Db::Sqlite => {
            let dir = temp_dir("api");
            (format!("sqlite://{}?mode=rwc", dir.0.join("g.db").display()), Some(dir))
        }
        Db::Postgres => {
            let Ok(admin) = std::env::var("GARRISON_TEST_DATABASE_URL") else {
                eprintln!(
                    "NOTE: GARRISON_TEST_DATABASE_URL is not set; the PostgreSQL variant of this test did not run"
                );
                return None;
            };
            (garrison_testkit::postgres::fresh_postgres(&admin).await.expect("create test database"), None)
        }
    };
    let store = Store::open(&url, &SealKey::generate()).await.expect("open store");
    let root = store.init_root(Some("10000001".into()), None).await.unwrap().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let config = ApiConfig {
        public_url: base.clone(),
        aws_principal: PRINCIPAL.into(),
        template_bucket: None,
        token_ttl_secs: 3600,
        allow_private_webhooks: true,
        heartbeat_s: 60,
    };
    let state = AppState::new(store, config).await.unwrap();
    let app = garrison_api::router(state.clone());
    tokio::spawn(async move { axum_serve(listener, app).await });
    Some(Server {
        base,
        state,
        root: Key { id: root.access_key_id, secret: root.secret_key },
        http: reqwest::Client::new(),
        _dir: dir,
    })
}

async fn axum_serve(listener: tokio::net::TcpListener, app: axum::Router) {
    garrison_api::server::serve(listener, app, Default::default(), std::future::pending()).await.unwrap();
}

/// Another API server process, as far as the API can tell: its own state (token checks,
/// caches) over the same store, on its own port.
pub async fn twin(s: &Server) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = ApiConfig {
        public_url: base.clone(),
        aws_principal: PRINCIPAL.into(),
        template_bucket: None,
        token_ttl_secs: 3600,
        allow_private_webhooks: true,
        heartbeat_s: 60,
    };
    let state = AppState::new(s.state.store.clone(), config).await.unwrap();
    let app = garrison_api::router(state);
    tokio::spawn(async move { axum_serve(listener, app).await });
    base
}

pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
    /// The `Link` header's `rel="next"` target, when a page names one.
    pub next: Option<String>,
}

impl Server {
    pub async fn login(&self, key: &Key) -> (String, String) {
        let r = self
            .http
            .post(format!("{}/aims/v1/authenticate", self.base))
            .basic_auth(&key.id, Some(&key.secret))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        (
            v["authentication"]["token"].as_str().unwrap().to_string(),
            v["authentication"]["account"]["id"].as_str().unwrap().to_string(),
        )
    }

    pub async fn raw(&self, method: Method, path: &str, token: Option<&str>, body: Option<Vec<u8>>) -> Resp {
        self.raw_at(&self.base, method, path, token, body).await
    }

    /// `raw` against another server (a `twin`).
    pub async fn raw_at(
        &self,
        base: &str,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Resp {
        let mut req = self.http.request(method, format!("{base}{path}"));
        if let Some(t) = token {
            req = req.header("x-aims-auth-token", t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let next = r.headers().get("link").and_then(|l| l.to_str().ok()).map(|l| {
            let (target, rel) = l.split_once(">; ").expect("a Link header as <target>; rel=\"next\"");
            assert_eq!(rel, "rel=\"next\"", "{l}");
            target.strip_prefix('<').expect("<target>").to_string()
        });
        let text = r.text().await.unwrap();
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Resp { status, body, next }
    }

    pub async fn req(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Resp {
        self.raw(method, path, Some(token), body.map(|b| serde_json::to_vec(&b).unwrap())).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.req(Method::GET, path, token, None).await
    }

    /// Creates a user in `account` (as `token`'s user) with a key; returns the user id and key.
    pub async fn user(&self, token: &str, account: &str, name: &str, role_id: Option<&str>) -> (String, Key) {
        let mut body = serde_json::json!({"name": name, "email": format!("{name}@example.com")});
        if let Some(r) = role_id {
            body["role_id"] = serde_json::json!(r);
        }
        let u = self.req(Method::POST, &format!("/aims/v1/{account}/users"), token, Some(body)).await;
        assert_eq!(u.status, 201, "{:?}", u.body);
        let uid = u.body["id"].as_str().unwrap().to_string();
        let k = self.req(Method::POST, &format!("/aims/v1/{account}/users/{uid}/access_keys"), token, None).await;
        assert_eq!(k.status, 201, "{:?}", k.body);
        (
            uid,
            Key {
                id: k.body["access_key_id"].as_str().unwrap().into(),
                secret: k.body["secret_key"].as_str().unwrap().into(),
            },
        )
    }

    /// The status of a sign-in with `key`.
    pub async fn sign_in_status(&self, key: &Key) -> u16 {
        self.http
            .post(format!("{}/aims/v1/authenticate", self.base))
            .basic_auth(&key.id, Some(&key.secret))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Creates a child account of `parent` with a user and key; returns the key and account id.
    pub async fn child(&self, token: &str, parent: &str, name: &str) -> (Key, String) {
        let a = self
            .req(
                Method::POST,
                &format!("/aims/v1/{parent}/managed_accounts"),
                token,
                Some(serde_json::json!({"name": name})),
            )
            .await;
        assert_eq!(a.status, 201, "{:?}", a.body);
        let id = a.body["id"].as_str().unwrap().to_string();
        let u = self
            .req(
                Method::POST,
                &format!("/aims/v1/{id}/users"),
                token,
                Some(serde_json::json!({"name": name, "email": format!("{name}-{id}@example.com")})),
            )
            .await;
        assert_eq!(u.status, 201, "{:?}", u.body);
        let uid = u.body["id"].as_str().unwrap();
        let k = self
            .req(
                Method::POST,
                &format!("/aims/v1/{id}/users/{uid}/access_keys"),
                token,
                Some(serde_json::json!({"label": "test"})),
            )
            .await;
        assert_eq!(k.status, 201, "{:?}", k.body);
        (
            Key {
                id: k.body["access_key_id"].as_str().unwrap().into(),
                secret: k.body["secret_key"].as_str().unwrap().into(),
            },
            id,
        )
    }

    pub async fn credential(&self, token: &str, account: &str, aws_account: &str) -> String {
        let r = self
            .req(Method::POST, &format!("/credentials/v2/{account}/credentials"), token,
                Some(serde_json::json!({"name": "role", "secrets": {"type": "aws_iam_role", "arn": format!("arn:aws:iam::{aws_account}:role/garrison")}})))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }
}

pub fn deployment_body(cred: &str) -> Value {
    serde_json::json!({
        "name": "My Deployment", "platform": {"type": "aws", "id": "123412341234"}, "mode": "automatic",
        "credentials": [{"id": cred, "purpose": "discover"}],
        "scope": {"include": [{"type": "region", "key": "/aws/us-east-1", "policy": {"id": PROFESSIONAL}}], "exclude": []}
    })
}

/// Runs a test body against SQLite and against PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let s = harness::start(harness::Db::Sqlite).await.unwrap();
                ($body)(s).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(s) = harness::start(harness::Db::Postgres).await {
                    ($body)(s).await;
                }
            }
        }
    };
}

/// A snapshot of two VPCs with three hosts in us-east-1.
pub fn synthetic_snapshot() -> garrison_model::snapshot::Snapshot {
    use garrison_model::snapshot::*;
    let mut r = RegionSnapshot::default();
    for (v, n) in [("vpc-0000000a", 2), ("vpc-0000000b", 1)] {
        r.vpcs.push(Vpc { id: v.into(), cidr: "10.0.0.0/16".into(), is_default: false, tags: Tags::new() });
        let sid = v.replace("vpc", "subnet");
        r.subnets.push(Subnet {
            id: sid.clone(),
            vpc_id: v.into(),
            zone: "us-east-1a".into(),
            cidr: "10.0.0.0/24".into(),
            tags: Tags::new(),
        });
        for k in 0..n {
            r.instances.push(Instance {
                id: format!("i-{}{k}", &v[4..]),
                vpc_id: Some(v.into()),
                subnet_id: Some(sid.clone()),
                zone: "us-east-1a".into(),
                state: "running".into(),
                instance_type: "t3.micro".into(),
                private_ip: None,
                interfaces: vec![],
                security_groups: vec![],
                tags: Tags::new(),
            });
        }
    }
    Snapshot { aws_account: "123412341234".into(), taken_at: 100, regions: [("us-east-1".to_string(), r)].into() }
}

/// A GuardDuty finding (`id` its provider id) on a host of account 123412341234.
pub fn observation(id: &str, score: f64) -> garrison_model::finding::Observation {
    use garrison_model::finding::*;
    Observation {
        id: format!("gd-{id}"),
        source: Source::Guardduty,
        provider_id: id.into(),
        kind: "Recon:EC2/PortProbeUnprotectedPort".into(),
        title: format!("finding {id}"),
        severity_score: score,
        severity: Severity::of_guardduty(score),
        aws_account: "123412341234".into(),
        region: "us-east-1".into(),
        resource: Some(FindingResource {
            kind: "instance".into(),
            id: "i-0123456789abcdef0".into(),
            asset_key: Some("/aws/us-east-1/host/i-0123456789abcdef0".into()),
            vpc_id: None,
        }),
        first_seen: 1_000,
        last_seen: 2_000 + (score * 10.0) as i64,
        count: None,
        status: FindingStatus::Active,
    }
}

/// Two child tenants of the root, alpha and beta, with beta's objects that nobody else may
/// see (a credential, a deployment, its user and key), for the authorization tests.
pub struct TwoTenants {
    pub a: String,
    pub ta: String,
    pub b: String,
    pub tb: String,
    pub kb: Key,
    pub cred: String,
    pub dep: String,
    pub user: String,
    /// A finding of beta's deployment.
    pub finding: String,
    /// Beta's webhook connection and a subscription naming it.
    pub connection: String,
    pub subscription: String,
    /// A tuning option of beta's deployment.
    pub option: String,
    /// Beta's ids and names: no answer to anyone else may carry them.
    pub secrets: Vec<String>,
}

impl TwoTenants {
    pub async fn new(s: &Server) -> TwoTenants {
        let (root, _) = s.login(&s.root).await;
        let (ka, a) = s.child(&root, "10000001", "alpha").await;
        let (kb, b) = s.child(&root, "10000001", "beta-secret-name").await;
        let (ta, _) = s.login(&ka).await;
        let (tb, _) = s.login(&kb).await;
        let cred = s.credential(&tb, &b, "123412341234").await;
        let d =
            s.req(Method::POST, &format!("/deployments/v1/{b}/deployments"), &tb, Some(deployment_body(&cred))).await;
        let dep = d.body["id"].as_str().unwrap().to_string();
        let users = s.get(&format!("/aims/v1/{b}/users"), &tb).await;
        let user = users.body["users"][0]["id"].as_str().unwrap().to_string();
        let (f, _) = s.state.store.record_finding(&b, &dep, observation("beta-finding", 7.0)).await.unwrap();
        let finding = f.id;
        let c = s
            .req(Method::POST, &format!("/v1/{b}/connections"), &tb,
                Some(json!({"name": "beta-hook", "type": "webhook", "target_url": "https://hooks.example.com/beta-hook-path"})))
            .await;
        assert_eq!(c.status, 201, "{}", c.body);
        let connection = c.body["id"].as_str().unwrap().to_string();
        let signing = c.body["signing_secret"].as_str().unwrap().to_string();
        let sub = s
            .req(
                Method::POST,
                &format!("/herald/v2/{b}/subscriptions"),
                &tb,
                Some(json!({"name": "beta-subscription", "class": "event", "notification_type": "findings/opened",
                    "subscribers": [{"subscriber": connection, "subscriber_type": "connection"}]})),
            )
            .await;
        assert_eq!(sub.status, 201, "{}", sub.body);
        let subscription = sub.body["id"].as_str().unwrap().to_string();
        let opt = s
            .req(
                Method::POST,
                &format!("/otis/v3/{b}/options"),
                &tb,
                Some(json!({"name": "security_resource_tags", "scope": {"deployment_id": dep},
                    "value": [{"key": "beta-tag-key", "value": "beta-tag-value"}]})),
            )
            .await;
        assert_eq!(opt.status, 201, "{}", opt.body);
        let option = opt.body["id"].as_str().unwrap().to_string();
        let secrets = vec![
            connection.clone(),
            subscription.clone(),
            signing,
            "beta-hook-path".to_string(),
            option.clone(),
            "beta-tag-value".to_string(),
            b.clone(),
            cred.clone(),
            dep.clone(),
            user.clone(),
            "beta-secret-name".to_string(),
            kb.id.clone(),
            finding.clone(),
        ];
        TwoTenants { a, ta, b, tb, kb, cred, dep, user, finding, connection, subscription, option, secrets }
    }

    /// `path` with `account` and beta's object ids in their placeholders.
    pub fn fill(&self, path: &str, account: &str) -> String {
        path.replace("{account_id}", account)
            .replace("{deployment_id}", &self.dep)
            .replace("{credential_id}", &self.cred)
            .replace("{user_id}", &self.user)
            .replace("{access_key_id}", &self.kb.id)
            .replace("{finding_id}", &self.finding)
            .replace("{id}", &self.connection)
            .replace("{subscription_id}", &self.subscription)
            .replace("{subscriber_type}", "connection")
            .replace("{subscriber}", &self.connection)
            .replace("{key}", "notifications")
            .replace("{option_id}", &self.option)
    }

    /// `fill`, with the fixed placeholders of the public catalog routes too (relationship,
    /// residency, service, policy, role type and version).
    pub fn fill_all(&self, path: &str, account: &str) -> String {
        self.fill(path, account)
            .replace("{relationship}", "managed")
            .replace("{residency}", "default")
            .replace("{service_name}", "themis")
            .replace("{policy_id}", ESSENTIALS)
            .replace("{platform_type}", "aws")
            .replace("{role_type}", "ci_full")
            .replace("{role_version}", "latest")
    }

    /// Panics if `body` names any of beta's secrets that `path` itself does not carry.
    pub fn assert_no_leak(&self, what: &str, path: &str, body: &Value) {
        let text = body.to_string();
        for secret in &self.secrets {
            if !path.contains(secret.as_str()) {
                assert!(!text.contains(secret.as_str()), "{what} leaks {secret}: {text}");
            }
        }
    }
}
