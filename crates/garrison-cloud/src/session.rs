//! SDK configuration from the standard AWS chain (environment, profiles, instance roles),
//! `AWS_ENDPOINT_URL` included, so the emulator needs no special code path; clients that
//! count their calls and retry throttling and server errors with the SDK's standard mode;
//! and sessions in customer accounts through AssumeRole with the tenant's ExternalId,
//! cached until shortly before they expire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};

use crate::CloudError;
use crate::calls::{CallLog, Counter};
use crate::limiter::Limiter;

/// Attempts per call, the first included (the SDK's standard retry mode).
pub const MAX_ATTEMPTS: u32 = 4;

#[derive(Clone, Debug)]
pub struct Aws {
    /// The SDK configuration and the SDK clients made from it are this crate's own: the
    /// rest of garrison calls AWS through this crate's functions. Tests and the testkit set
    /// up emulator state with them directly (feature `testing`).
    #[cfg(feature = "testing")]
    pub config: SdkConfig,
    #[cfg(not(feature = "testing"))]
    config: SdkConfig,
    pub calls: CallLog,
    pub limiter: Arc<Limiter>,
    /// The AWS account these credentials act in, when known.
    pub account: String,
    /// What may be reused between runs (see `reuse`); None: everything is read every time.
    pub reuse: Option<Arc<crate::reuse::Reuse>>,
    /// When these credentials expire, for an assumed role's session.
    pub expires: Option<SystemTime>,
    /// The SDK clients made for `config` (private: a copy with another configuration must
    /// not inherit them; see `with_config`).
    clients: Arc<Clients>,
}

/// The SDK clients made for one configuration, kept while it lives: making one is costly
/// (the SDK sets up and checks its HTTP stack, TLS roots included, for each client), and a
/// run used to make one per call. Also this configuration's copies in other regions.
#[derive(Default)]
struct Clients {
    made: Mutex<HashMap<std::any::TypeId, Box<dyn std::any::Any + Send + Sync>>>,
    regions: Mutex<HashMap<String, (SdkConfig, Arc<Clients>)>>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clients")
    }
}

macro_rules! client {
    ($name:ident, $krate:ident) => {
        client!(@vis $name, $krate, #[cfg(feature = "testing")], pub);
        client!(@vis $name, $krate, #[cfg(not(feature = "testing"))], pub(crate));
    };
    (@vis $name:ident, $krate:ident, #[$cfg:meta], $vis:vis) => {
        #[$cfg]
        $vis fn $name(&self) -> $krate::Client {
            self.cached(|| {
                let conf = $krate::config::Builder::from(&self.config).interceptor(Counter(self.calls.clone())).build();
                $krate::Client::from_conf(conf)
            })
        }
    };
}

/// The SDK's default HTTPS client (rustls with aws-lc, proxy settings from the environment),
/// made once: its connection pool and TLS setup serve every account's sessions.
fn shared_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::{Builder, ConnectorBuilder, tls};
    static CLIENT: std::sync::LazyLock<aws_smithy_runtime_api::client::http::SharedHttpClient> =
        std::sync::LazyLock::new(|| {
            Builder::new().build_with_connector_fn(|settings, components| {
                let mut conn = ConnectorBuilder::default()
                    .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc));
                conn.set_connector_settings(settings.cloned());
                if let Some(c) = components {
                    conn.set_sleep_impl(c.sleep_impl());
                }
                conn.set_proxy_config(Some(ProxyConfig::from_env()));
                conn.build()
            })
        });
    CLIENT.clone()
}

impl Aws {
    /// The standard chain; `profile` selects a named profile.
    /// The standard AWS configuration; with `profile`, that profile's credentials even when
    /// the environment holds others (the AWS CLI's precedence: an explicit profile wins over
    /// `AWS_ACCESS_KEY_ID`; the default chain reads the environment first).
    pub async fn from_env(profile: Option<&str>) -> Aws {
        // from_config sets the retry policy, for every way an Aws is made.
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(p) = profile {
            let credentials = aws_config::profile::ProfileFileCredentialsProvider::builder().profile_name(p).build();
            loader = loader.profile_name(p).credentials_provider(credentials);
        }
        Aws::from_config(loader.load().await)
    }

    pub fn from_config(config: SdkConfig) -> Aws {
        // One HTTP client for every SDK client of the process, unless one was given. Left
        // unset, each service client made its own: a new connection per call and the TLS
        // root store parsed again (measured: a third of a worker's CPU was allocation for it).
        let config = match config.http_client() {
            Some(_) => config,
            None => config.to_builder().http_client(shared_http_client()).build(),
        };
        // A call that hangs must not hang its reconcile: bounded attempts, bounded calls.
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(30))
            .operation_timeout(Duration::from_secs(120))
            .build();
        let config = config
            .to_builder()
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .timeout_config(timeouts)
            .build();
        Aws {
            config,
            calls: CallLog::default(),
            limiter: Arc::new(Limiter::default()),
            account: String::new(),
            reuse: None,
            expires: None,
            clients: Arc::default(),
        }
    }

    /// The same, acting through `config` (its own SDK clients).
    pub fn with_config(&self, config: SdkConfig) -> Aws {
        Aws { config, clients: Arc::default(), ..self.clone() }
    }

    /// The client of type `C` made for this configuration, made now if it is the first.
    fn cached<C: Clone + Send + Sync + 'static>(&self, make: impl FnOnce() -> C) -> C {
        let key = std::any::TypeId::of::<C>();
        let mut made = self.clients.made.lock().expect("clients");
        if let Some(c) = made.get(&key).and_then(|c| c.downcast_ref::<C>()) {
            return c.clone();
        }
        let c = make();
        made.insert(key, Box::new(c.clone()));
        c
    }

    /// The same, with the SDK's retries starting after `initial` instead of a second: for
    /// tests against an emulator that injects faults, where waiting proves nothing.
    pub fn with_retry_backoff(&self, initial: Duration) -> Aws {
        let retry = RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS).with_initial_backoff(initial);
        self.with_config(self.config.to_builder().retry_config(retry).build())
    }

    /// The same identity in another region (made once per region, with its clients).
    pub fn in_region(&self, region: &str) -> Aws {
        if self.config.region().map(|r| r.as_ref()) == Some(region) {
            return self.clone();
        }
        let (config, clients) = self
            .clients
            .regions
            .lock()
            .expect("clients")
            .entry(region.to_string())
            .or_insert_with(|| {
                (self.config.to_builder().region(Region::new(region.to_string())).build(), Arc::default())
            })
            .clone();
        Aws { config, clients, ..self.clone() }
    }

    /// S3 against a custom endpoint (the emulator) needs path-style addressing.
    #[cfg(feature = "testing")]
    pub fn s3(&self) -> aws_sdk_s3::Client {
        self.s3_client()
    }

    #[cfg(not(feature = "testing"))]
    pub(crate) fn s3(&self) -> aws_sdk_s3::Client {
        self.s3_client()
    }

    fn s3_client(&self) -> aws_sdk_s3::Client {
        self.cached(|| {
            let conf = aws_sdk_s3::config::Builder::from(&self.config)
                .force_path_style(self.config.endpoint_url().is_some())
                .interceptor(Counter(self.calls.clone()))
                .build();
            aws_sdk_s3::Client::from_conf(conf)
        })
    }

    client!(iam, aws_sdk_iam);
    client!(cloudformation, aws_sdk_cloudformation);
    client!(sts, aws_sdk_sts);
    client!(ec2, aws_sdk_ec2);
    client!(cloudtrail, aws_sdk_cloudtrail);
    client!(guardduty, aws_sdk_guardduty);
    client!(inspector2, aws_sdk_inspector2);
    client!(configservice, aws_sdk_config);
    client!(ecs, aws_sdk_ecs);
    client!(eks, aws_sdk_eks);
    client!(sns, aws_sdk_sns);
    client!(sqs, aws_sdk_sqs);
    client!(events, aws_sdk_eventbridge);
    client!(kms, aws_sdk_kms);
    client!(organizations, aws_sdk_organizations);

    /// The region the configuration names, if it names one (`region` falls back to us-east-1).
    pub fn configured_region(&self) -> Option<String> {
        self.config.region().map(|r| r.to_string())
    }

    pub fn region(&self) -> String {
        self.config.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into())
    }

    /// Waits for this (account, region, service)'s rate budget.
    pub async fn pace(&self, service: &'static str) {
        self.limiter.acquire(&self.account, &self.region(), service).await;
    }

    /// Waits for a write's budget in this account and region (EC2: the action's own).
    pub async fn pace_write(&self, service: &'static str, action: &'static str) {
        self.limiter.acquire_write(&self.account, &self.region(), service, action).await;
    }
}

/// A role's credentials from AssumeRole: a few hundred bytes, kept until shortly before
/// they expire whatever the fleet's size.
struct Cached {
    creds: Credentials,
    account: String,
    expires: SystemTime,
}

/// Sessions in customer accounts, from garrison's own identity.
pub struct Sessions {
    pub base: Aws,
    cache: Mutex<HashMap<(String, String), Cached>>,
    /// Sessions with their SDK clients made, for the roles used most recently: a session's
    /// clients hold ~100 KiB, so a worker of 10,000 accounts keeping them all held ~3 GiB
    /// (bench/fleet). Beyond `CLIENTS_KEPT`, this set starts over; a session made again
    /// from its cached credentials costs its clients' construction, not an AWS call.
    made: Mutex<HashMap<(String, String), Aws>>,
    /// Managed policy documents by (policy ARN and unique id, version id): immutable, so
    /// kept, each distinct document once (`documents`).
    policy_versions: Mutex<HashMap<(String, String), Arc<serde_json::Value>>>,
    /// Policy documents by their text: a fleet's roles come from one template, so 10,000
    /// roles' documents are a handful of distinct ones.
    documents: Mutex<HashMap<String, Arc<serde_json::Value>>>,
}

/// Policy versions kept at most; beyond, the cache starts over (a fleet has a few per account).
const POLICY_VERSIONS_KEPT: usize = 50_000;

/// Distinct policy documents kept at most; beyond, the set starts over.
const DOCUMENTS_KEPT: usize = 4_096;

/// Sessions kept with their SDK clients (see `Sessions::made`): twice a worker's default
/// parallelism many times over, so the runs in flight and the roles used again soon (the
/// collector's, a deployment's retries) keep theirs.
pub const CLIENTS_KEPT: usize = 512;

/// Credentials kept at most; beyond, the expired ones are dropped first.
const CREDENTIALS_KEPT: usize = 100_000;

/// Renewed this long before the credentials expire.
const EARLY: Duration = Duration::from_secs(300);

impl Sessions {
    pub fn new(base: Aws) -> Sessions {
        Sessions {
            base,
            cache: Mutex::new(HashMap::new()),
            made: Mutex::new(HashMap::new()),
            policy_versions: Mutex::new(HashMap::new()),
            documents: Mutex::new(HashMap::new()),
        }
    }

    /// How many sessions are kept with their SDK clients (at most `CLIENTS_KEPT`).
    pub fn with_clients(&self) -> usize {
        self.made.lock().expect("sessions").len()
    }

    /// The one shared copy of the policy document `text` (IAM's URL-encoded form or JSON).
    pub fn document(&self, text: &str) -> Arc<serde_json::Value> {
        if let Some(d) = self.documents.lock().expect("documents").get(text) {
            return d.clone();
        }
        let doc = Arc::new(crate::role_check::decode(text));
        let mut m = self.documents.lock().expect("documents");
        if m.len() >= DOCUMENTS_KEPT {
            m.clear();
        }
        m.entry(text.to_string()).or_insert(doc).clone()
    }

    /// A managed policy version's document read before, if any.
    pub fn policy_version(&self, policy_arn: &str, version_id: &str) -> Option<Arc<serde_json::Value>> {
        self.policy_versions.lock().expect("policies").get(&(policy_arn.to_string(), version_id.to_string())).cloned()
    }

    pub fn keep_policy_version(&self, policy_arn: &str, version_id: &str, doc: &Arc<serde_json::Value>) {
        let mut m = self.policy_versions.lock().expect("policies");
        if m.len() >= POLICY_VERSIONS_KEPT {
            m.clear();
        }
        m.insert((policy_arn.to_string(), version_id.to_string()), doc.clone());
    }

    /// An `Aws` acting as `role_arn` (AssumeRole with `external_id`), sharing this
    /// process's call log and rate limits.
    pub async fn assume(&self, role_arn: &str, external_id: &str) -> Result<Aws, CloudError> {
        let key = (role_arn.to_string(), external_id.to_string());
        let fresh = |c: &Cached| c.expires > SystemTime::now() + EARLY;
        let cached = self
            .cache
            .lock()
            .expect("sessions")
            .get(&key)
            .filter(|c| fresh(c))
            .map(|c| (c.creds.clone(), c.account.clone(), c.expires));
        // The session made from these very credentials, if its clients are still kept.
        if let Some((_, _, expires)) = &cached
            && let Some(aws) = self.made.lock().expect("sessions").get(&key)
            && aws.expires == Some(*expires)
        {
            return Ok(aws.clone());
        }
        let (creds, account, expires) = match cached {
            Some(c) => c,
            None => {
                self.base.pace("sts").await;
                let out = self
                    .base
                    .sts()
                    .assume_role()
                    .role_arn(role_arn)
                    .role_session_name("garrison")
                    .external_id(external_id)
                    .duration_seconds(3600)
                    .send()
                    .await
                    .map_err(|e| CloudError::from_sdk("sts", "AssumeRole", e))?;
                let c = out.credentials().ok_or_else(|| {
                    CloudError::terminal("sts", "AssumeRole", "NoCredentials", "AssumeRole returned no credentials")
                })?;
                let expires = SystemTime::try_from(*c.expiration())
                    .unwrap_or_else(|_| SystemTime::now() + Duration::from_secs(900));
                let creds = Credentials::new(
                    c.access_key_id(),
                    c.secret_access_key(),
                    Some(c.session_token().to_string()),
                    Some(expires),
                    "garrison-assume-role",
                );
                let account = garrison_model::credential::arn_account(role_arn).unwrap_or_default().to_string();
                let mut m = self.cache.lock().expect("sessions");
                if m.len() >= CREDENTIALS_KEPT {
                    m.retain(|_, c| fresh(c));
                    if m.len() >= CREDENTIALS_KEPT {
                        m.clear();
                    }
                }
                m.insert(key.clone(), Cached { creds: creds.clone(), account: account.clone(), expires });
                (creds, account, expires)
            }
        };
        let config = self.base.config.to_builder().credentials_provider(SharedCredentialsProvider::new(creds)).build();
        // Kept with its clients while among the most recently used, so that they serve the
        // run's every call and the next runs of a small fleet.
        let session = Aws { account, expires: Some(expires), ..self.base.with_config(config) };
        let mut made = self.made.lock().expect("sessions");
        if made.len() >= CLIENTS_KEPT {
            made.clear();
        }
        made.insert(key, session.clone());
        Ok(session)
    }

    /// Forgets cached credentials of a role (after an access error, for instance).
    pub fn forget(&self, role_arn: &str) {
        self.cache.lock().expect("sessions").retain(|(r, _), _| r != role_arn);
        self.made.lock().expect("sessions").retain(|(r, _), _| r != role_arn);
        if let Some(r) = &self.base.reuse {
            r.forget_role(role_arn);
        }
    }

    /// The same sessions, reusing slow-changing facts for up to `max_age` (long-running
    /// workers; see `reuse`).
    pub fn reusing(mut self, max_age: Duration) -> Sessions {
        self.base.reuse = Some(Arc::new(crate::reuse::Reuse::new(max_age)));
        self
    }
}
