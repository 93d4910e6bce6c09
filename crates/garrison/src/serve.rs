//! `garrison serve`: configuration (flags > env > TOML file > defaults), store, root
//! account bootstrap, HTTP server with graceful shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;
use garrison_api::{ApiConfig, AppState};
use garrison_store::{SealKey, Store};
use serde::Deserialize;

#[derive(Parser, Debug, Default)]
#[command(name = "garrison serve", about = "Run the garrison API server")]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "GARRISON_LISTEN")]
    pub listen: Option<String>,
    /// Directory for the embedded database and generated keys [default: ./.garrison]
    #[arg(long = "data-dir", env = "GARRISON_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL (postgres://…) or SQLite (sqlite://…) URL [default: SQLite in the data dir]
    #[arg(long = "database-url", env = "GARRISON_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// File holding the 32-byte seal key as 64 hex characters [default: <data-dir>/seal.key, created if absent]
    #[arg(long = "seal-key-file", env = "GARRISON_SEAL_KEY_FILE")]
    pub seal_key_file: Option<PathBuf>,
    /// URL clients reach this server at [default: http://<listen>]
    #[arg(long = "public-url", env = "GARRISON_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// AWS principal garrison runs as: 12-digit account id or role ARN [default: 123456789012, the emulator's]
    #[arg(long = "aws-principal", env = "GARRISON_AWS_PRINCIPAL")]
    pub aws_principal: Option<String>,
    /// S3 bucket the role templates are published to (themis cft.s3_url points there)
    #[arg(long = "template-bucket", env = "GARRISON_TEMPLATE_BUCKET")]
    pub template_bucket: Option<String>,
    /// Lifetime of aims tokens in seconds [default: 21600]
    #[arg(long = "token-ttl", env = "GARRISON_TOKEN_TTL")]
    pub token_ttl: Option<i64>,
    /// Seconds between full discovery resyncs of every deployment [default: 300]
    #[arg(long = "resync-interval", env = "GARRISON_RESYNC_INTERVAL")]
    pub resync_interval: Option<u64>,
    /// Seconds between checks that the audit path (queue, subscription, bucket notification) is intact [default: 60]
    #[arg(long = "audit-check-interval", env = "GARRISON_AUDIT_CHECK_INTERVAL")]
    pub audit_check_interval: Option<u64>,
    /// Seconds the collector long-polls each audit queue per receive, 1 to 20 [default: 20]
    #[arg(long = "collector-wait", env = "GARRISON_COLLECTOR_WAIT")]
    pub collector_wait: Option<i32>,
    /// Serve the API only; run no worker in this process (another process runs `garrison worker`)
    #[arg(long = "no-worker", env = "GARRISON_NO_WORKER")]
    pub no_worker: bool,
    /// With PostgreSQL: seconds a worker's lease on a deployment lasts unrenewed; another worker takes it over after [default: 30]
    #[arg(long = "lease-ttl", env = "GARRISON_LEASE_TTL")]
    pub lease_ttl: Option<u64>,
    /// With PostgreSQL: deployments one worker reconciles at once [default: 8]
    #[arg(long = "parallel", env = "GARRISON_PARALLEL")]
    pub parallel: Option<usize>,
    /// `garrison worker` only: serve the worker's /metrics on this address (e.g. 0.0.0.0:9100)
    #[arg(long = "metrics-listen", env = "GARRISON_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// JSON price table (shape of crates/garrison-catalog/data/prices/*.json) the planner picks appliance types with [default: built in]
    #[arg(long = "price-table", env = "GARRISON_PRICE_TABLE")]
    pub price_table: Option<PathBuf>,
    /// JSON appliance image table ({"scan": {"default": "ami-…", "<region>": …}, "ids": {…}}) [default: built in]
    #[arg(long = "appliance-images", env = "GARRISON_APPLIANCE_IMAGES")]
    pub appliance_images: Option<PathBuf>,
    /// Accept webhook connections whose target is on loopback or a private network (an on-premises receiver, a test); link-local targets are always refused
    #[arg(long = "allow-private-webhooks", env = "GARRISON_ALLOW_PRIVATE_WEBHOOKS")]
    pub allow_private_webhooks: bool,
    /// Seconds before a failed notification is sent again; each next wait doubles, up to an hour [default: 10]
    #[arg(long = "notify-backoff", env = "GARRISON_NOTIFY_BACKOFF")]
    pub notify_backoff: Option<f64>,
    /// The URL appliances reach garrison at (rendered into their user data: they register and send heartbeats there); without it appliances are launched without the agent and their health is not watched
    #[arg(long = "appliance-endpoint", env = "GARRISON_APPLIANCE_ENDPOINT")]
    pub appliance_endpoint: Option<String>,
    /// Where an appliance's first boot downloads the garrison binary from (https://…); without it the image must hold /usr/local/bin/garrison
    #[arg(long = "agent-url", env = "GARRISON_AGENT_URL")]
    pub agent_url: Option<String>,
    /// Seconds between an appliance's heartbeats; 3 missed make it silent [default: 60]
    #[arg(long = "heartbeat-interval", env = "GARRISON_HEARTBEAT_INTERVAL")]
    pub heartbeat_interval: Option<u64>,
    /// Seconds an appliance has to register after its launch before it counts as silent [default: 300]
    #[arg(long = "register-within", env = "GARRISON_REGISTER_WITHIN")]
    pub register_within: Option<u64>,
    /// PEM certificate chain to serve over TLS (1.2 and 1.3 only) with --tls-key; read again on SIGHUP. `garrison worker`: for --metrics-listen
    #[arg(long = "tls-cert", env = "GARRISON_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert
    #[arg(long = "tls-key", env = "GARRISON_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// TOML file with any of the settings above (keys with underscores)
    /// OpenID Connect issuer URL: the dashboard signs in through this provider (needs
    /// --oidc-client-id and --oidc-mapping)
    #[arg(long = "oidc-issuer", env = "GARRISON_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// The client id garrison is registered with at the provider
    #[arg(long = "oidc-client-id", env = "GARRISON_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    /// The client's secret (none for a public client)
    #[arg(long = "oidc-client-secret", env = "GARRISON_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,
    /// Where the provider sends the browser back [default: <public-url>/auth/callback]
    #[arg(long = "oidc-redirect-url", env = "GARRISON_OIDC_REDIRECT_URL")]
    pub oidc_redirect_url: Option<String>,
    /// TOML file mapping a claim's values (groups by default) to an account and a role
    #[arg(long = "oidc-mapping", env = "GARRISON_OIDC_MAPPING")]
    pub oidc_mapping: Option<PathBuf>,
    /// Seconds a dashboard session lasts, 60 to 86400 [default: 3600]
    #[arg(long = "session-ttl", env = "GARRISON_SESSION_TTL")]
    pub session_ttl: Option<u64>,
    #[arg(long, env = "GARRISON_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    seal_key_file: Option<PathBuf>,
    public_url: Option<String>,
    aws_principal: Option<String>,
    template_bucket: Option<String>,
    token_ttl: Option<i64>,
    resync_interval: Option<u64>,
    audit_check_interval: Option<u64>,
    collector_wait: Option<i32>,
    no_worker: Option<bool>,
    lease_ttl: Option<u64>,
    parallel: Option<usize>,
    price_table: Option<PathBuf>,
    appliance_images: Option<PathBuf>,
    allow_private_webhooks: Option<bool>,
    notify_backoff: Option<f64>,
    appliance_endpoint: Option<String>,
    agent_url: Option<String>,
    heartbeat_interval: Option<u64>,
    register_within: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    oidc_issuer: Option<String>,
    oidc_client_id: Option<String>,
    oidc_client_secret: Option<String>,
    oidc_redirect_url: Option<String>,
    oidc_mapping: Option<PathBuf>,
    session_ttl: Option<u64>,
}

/// Settings after merging every source.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub seal_key_file: Option<PathBuf>,
    pub api: ApiConfig,
    pub resync: std::time::Duration,
    pub collector: garrison_engine::collect::Options,
    pub worker: bool,
    pub lease_ttl: std::time::Duration,
    pub parallel: usize,
    pub prices: Option<garrison_catalog::prices::PriceTable>,
    pub images: Option<garrison_catalog::appliances::Images>,
    pub notify: garrison_notify::Options,
    pub appliances: Option<garrison_engine::appliances::Channel>,
    /// The certificate and key served over TLS, checked (read) at start.
    pub tls: Option<std::sync::Arc<garrison_api::tls::Tls>>,
    /// Single sign-on for the dashboard; an empty redirect URL means `<public URL>/auth/callback`.
    pub sso: Option<garrison_api::sso::SsoConfig>,
}

pub const DEFAULT_PRINCIPAL: &str = "123456789012";

pub fn resolve(a: ServeArgs) -> anyhow::Result<Settings> {
    let file: FileConfig = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading config file {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("config file {}", p.display()))?
        }
        None => FileConfig::default(),
    };
    let listen = a.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:8080".into());
    listen
        .parse::<SocketAddr>()
        .with_context(|| format!("--listen: expected HOST:PORT such as 127.0.0.1:8080, found {listen:?}"))?;
    let data_dir = a.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from(".garrison"));
    let database_url = match a.database_url.or(file.database_url) {
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") || u.starts_with("sqlite:") => u,
        Some(u) => bail!(
            "--database-url: expected postgres://… or sqlite://…, found a URL starting {:?}",
            u.split(':').next().unwrap_or("")
        ),
        None => format!("sqlite://{}?mode=rwc", data_dir.join("garrison.db").display()),
    };
    let principal = a.aws_principal.or(file.aws_principal).unwrap_or_else(|| DEFAULT_PRINCIPAL.into());
    let principal_ok = (principal.len() == 12 && principal.bytes().all(|b| b.is_ascii_digit()))
        || (principal.starts_with("arn:aws") && principal.split(':').nth(4).is_some_and(|a| a.len() == 12));
    if !principal_ok {
        bail!("--aws-principal: expected a 12-digit AWS account id or an IAM ARN, found {principal:?}");
    }
    let notify_backoff = a.notify_backoff.or(file.notify_backoff).unwrap_or(10.0);
    if !(0.01..=3600.0).contains(&notify_backoff) {
        bail!("--notify-backoff: expected 0.01 to 3600 seconds, found {notify_backoff}");
    }
    let allow_private_webhooks = a.allow_private_webhooks || file.allow_private_webhooks.unwrap_or(false);
    let notify = garrison_notify::Options {
        backoff: std::time::Duration::from_secs_f64(notify_backoff),
        allow_private: allow_private_webhooks,
        ..garrison_notify::Options::default()
    };
    let token_ttl_secs = a.token_ttl.or(file.token_ttl).unwrap_or(6 * 3600);
    if !(60..=7 * 24 * 3600).contains(&token_ttl_secs) {
        bail!("--token-ttl: expected 60 to 604800 seconds, found {token_ttl_secs}");
    }
    // Empty means "the address actually bound", filled in by `start`.
    let public_url = a.public_url.or(file.public_url).unwrap_or_default();
    let resync = a.resync_interval.or(file.resync_interval).unwrap_or(300);
    if resync == 0 {
        bail!("--resync-interval: expected at least 1 second, found 0");
    }
    let audit_check = a.audit_check_interval.or(file.audit_check_interval).unwrap_or(60);
    if audit_check == 0 {
        bail!("--audit-check-interval: expected at least 1 second, found 0");
    }
    let collector_wait = a.collector_wait.or(file.collector_wait).unwrap_or(20);
    if !(1..=20).contains(&collector_wait) {
        bail!("--collector-wait: expected 1 to 20 seconds (SQS long polling), found {collector_wait}");
    }
    let lease_ttl = a.lease_ttl.or(file.lease_ttl).unwrap_or(30);
    if !(2..=3600).contains(&lease_ttl) {
        bail!("--lease-ttl: expected 2 to 3600 seconds, found {lease_ttl}");
    }
    let parallel = a.parallel.or(file.parallel).unwrap_or(8);
    if !(1..=256).contains(&parallel) {
        bail!("--parallel: expected 1 to 256, found {parallel}");
    }
    let collector = garrison_engine::collect::Options {
        wait_secs: collector_wait,
        audit_check: std::time::Duration::from_secs(audit_check),
        ..Default::default()
    };
    let read = |flag: &str, p: &PathBuf| {
        std::fs::read_to_string(p).with_context(|| format!("{flag}: reading {}", p.display()))
    };
    let prices = match a.price_table.or(file.price_table) {
        Some(p) => Some(
            garrison_catalog::prices::PriceTable::from_json(&read("--price-table", &p)?)
                .map_err(|e| anyhow::anyhow!("--price-table {}: {e}", p.display()))?,
        ),
        None => None,
    };
    let images = match a.appliance_images.or(file.appliance_images) {
        Some(p) => Some(
            garrison_catalog::appliances::Images::from_json(&read("--appliance-images", &p)?)
                .map_err(|e| anyhow::anyhow!("--appliance-images {}: {e}", p.display()))?,
        ),
        None => None,
    };
    let heartbeat = a.heartbeat_interval.or(file.heartbeat_interval).unwrap_or(60);
    if !(1..=3600).contains(&heartbeat) {
        bail!("--heartbeat-interval: expected 1 to 3600 seconds, found {heartbeat}");
    }
    let register_within = a.register_within.or(file.register_within).unwrap_or(300);
    if !(1..=86_400).contains(&register_within) {
        bail!("--register-within: expected 1 to 86400 seconds, found {register_within}");
    }
    let url = |flag: &str, u: String| -> anyhow::Result<String> {
        match reqwest::Url::parse(&u) {
            Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => {
                Ok(u.trim_end_matches('/').to_string())
            }
            _ => bail!("{flag}: expected an http(s) URL such as https://garrison.example.com, found {u:?}"),
        }
    };
    let agent_url = a.agent_url.or(file.agent_url).map(|u| url("--agent-url", u)).transpose()?;
    let appliances = match a.appliance_endpoint.or(file.appliance_endpoint) {
        Some(u) => Some(garrison_engine::appliances::Channel {
            endpoint: url("--appliance-endpoint", u)?,
            agent_url,
            timing: garrison_model::health::Timing {
                register_within_ms: register_within as i64 * 1000,
                heartbeat_ms: heartbeat as i64 * 1000,
                missed: 3,
            },
        }),
        None if agent_url.is_some() => {
            bail!("--agent-url: needs --appliance-endpoint (the agent it installs reports there)")
        }
        None => None,
    };
    let tls = match (a.tls_cert.or(file.tls_cert), a.tls_key.or(file.tls_key)) {
        (Some(cert), Some(key)) => Some(garrison_api::tls::Tls::load(&cert, &key).map_err(|e| anyhow::anyhow!(e))?),
        (None, None) => None,
        (Some(_), None) => bail!("--tls-key: expected the PEM private key of --tls-cert, found nothing"),
        (None, Some(_)) => bail!("--tls-cert: expected the PEM certificate chain of --tls-key, found nothing"),
    };
    let session_ttl = a.session_ttl.or(file.session_ttl).unwrap_or(3600);
    if !(60..=86_400).contains(&session_ttl) {
        bail!("--session-ttl: expected 60 to 86400 seconds, found {session_ttl}");
    }
    let sso = match (a.oidc_issuer.or(file.oidc_issuer), a.oidc_client_id.or(file.oidc_client_id)) {
        (Some(issuer), Some(client_id)) => {
            let path = a.oidc_mapping.or(file.oidc_mapping).ok_or_else(|| {
                anyhow::anyhow!(
                    "--oidc-mapping: expected the file mapping claim values to accounts and roles, found nothing"
                )
            })?;
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("--oidc-mapping: reading {}", path.display()))?;
            let mapping = garrison_api::sso::Mapping::parse(&text)
                .map_err(|e| anyhow::anyhow!("--oidc-mapping {}: {e}", path.display()))?;
            Some(garrison_api::sso::SsoConfig {
                issuer,
                client_id,
                client_secret: a.oidc_client_secret.or(file.oidc_client_secret),
                redirect_url: a.oidc_redirect_url.or(file.oidc_redirect_url).unwrap_or_default(),
                mapping,
                session_ttl: std::time::Duration::from_secs(session_ttl),
            })
        }
        (None, None) => None,
        (Some(_), None) => bail!("--oidc-client-id: expected the client id registered at --oidc-issuer, found nothing"),
        (None, Some(_)) => {
            bail!("--oidc-issuer: expected the provider's issuer URL for --oidc-client-id, found nothing")
        }
    };
    Ok(Settings {
        sso,
        tls,
        appliances,
        prices,
        images,
        resync: std::time::Duration::from_secs(resync),
        collector,
        worker: !(a.no_worker || file.no_worker.unwrap_or(false)),
        lease_ttl: std::time::Duration::from_secs(lease_ttl),
        parallel,
        listen,
        data_dir,
        database_url,
        seal_key_file: a.seal_key_file.or(file.seal_key_file),
        api: ApiConfig {
            public_url,
            aws_principal: principal,
            template_bucket: a.template_bucket.or(file.template_bucket),
            token_ttl_secs,
            allow_private_webhooks,
            heartbeat_s: heartbeat,
        },
        notify,
    })
}

/// The seal key: `GARRISON_SEAL_KEY` (hex), else the key file, else a new key file in the
/// data dir (created 0600). A key that does not open the store fails at open, loudly.
pub fn seal_key(s: &Settings) -> anyhow::Result<SealKey> {
    if let Ok(hexed) = std::env::var("GARRISON_SEAL_KEY") {
        return SealKey::from_hex(&hexed).map_err(|e| anyhow::anyhow!("GARRISON_SEAL_KEY: {e}"));
    }
    let path = s.seal_key_file.clone().unwrap_or_else(|| s.data_dir.join("seal.key"));
    match std::fs::read_to_string(&path) {
        Ok(text) => SealKey::from_hex(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && s.seal_key_file.is_none() => {
            let key = SealKey::generate();
            write_private(&path, &key.to_hex())?;
            tracing::warn!(path = %path.display(), "generated a new seal key; back it up: without it the stored secrets cannot be opened");
            Ok(key)
        }
        Err(e) => Err(anyhow::anyhow!("reading seal key file {}: {e}", path.display())),
    }
}

pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// The data directory, created (or narrowed) to 0700: it holds the seal key and the
/// embedded database.
fn private_data_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating data dir {}", dir.display()))?;
    }
    let mode = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making data dir {} private (0700)", dir.display()))?;
    }
    Ok(())
}

/// The one process that may use an embedded SQLite store: an exclusive lock on
/// `<data dir>/garrison.lock`, held for the life of the process (released by the OS when
/// it ends, however it ends). A second `serve` or `worker` on the same store would run a
/// second worker against the same deployments.
pub fn lock_sqlite_store(s: &Settings) -> anyhow::Result<()> {
    static HELD: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();
    if HELD.get().is_some() {
        return Ok(());
    }
    let dir = garrison_store::sqlite_path(&s.database_url)
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| s.data_dir.clone());
    let path = dir.join("garrison.lock");
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            let _ = HELD.set(file);
            Ok(())
        }
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another garrison process is using the SQLite store in {} (it holds {}); an embedded store serves one process — \
             stop the other one, or run several processes on PostgreSQL (--database-url postgres://…)",
            dir.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

/// Opens the store and makes sure the root tenant exists; prints its key once.
pub async fn open_store(s: &Settings, root_override: Option<(String, String)>) -> anyhow::Result<Store> {
    let root_id = std::env::var("GARRISON_ROOT_ACCOUNT_ID").ok();
    let root_key = match root_override {
        Some(k) => Some(k),
        None => match (std::env::var("GARRISON_ROOT_ACCESS_KEY_ID"), std::env::var("GARRISON_ROOT_SECRET_KEY")) {
            (Ok(id), Ok(secret)) => Some((id, secret)),
            (Ok(_), Err(_)) | (Err(_), Ok(_)) => {
                bail!("set both GARRISON_ROOT_ACCESS_KEY_ID and GARRISON_ROOT_SECRET_KEY, or neither")
            }
            _ => None,
        },
    };
    if let Some(id) = &root_id
        && !garrison_model::account::is_account_id(id)
    {
        bail!("GARRISON_ROOT_ACCOUNT_ID: expected 8 digits, found {id:?}");
    }
    // Checked before anything is created: a refused secret leaves no store behind.
    if let Some((_, secret)) = &root_key
        && secret.chars().count() < garrison_store::MIN_SECRET_LEN
    {
        bail!(
            "GARRISON_ROOT_SECRET_KEY: expected at least {} characters (a random value: openssl rand -hex 32), found {}",
            garrison_store::MIN_SECRET_LEN,
            secret.chars().count()
        );
    }
    if s.database_url.starts_with("sqlite:") {
        private_data_dir(&s.data_dir)?;
        if let Some(parent) =
            garrison_store::sqlite_path(&s.database_url).and_then(|p| p.parent().map(Path::to_path_buf))
            && !parent.as_os_str().is_empty()
        {
            private_data_dir(&parent)?;
        }
        lock_sqlite_store(s)?;
    }
    let key = seal_key(s)?;
    let store = Store::open(&s.database_url, &key).await.context("opening the store")?;
    let quiet = root_key.is_some();
    if let Some(root) = store.init_root(root_id, root_key).await? {
        if quiet {
            println!("garrison: created root account {} with the access key from the environment", root.account_id);
        } else {
            // Printed once, on stdout only; never logged.
            println!("garrison: created root account {}", root.account_id);
            println!("  access_key_id: {}", root.access_key_id);
            println!("  secret_key:    {}", root.secret_key);
            println!("  (shown once; keep it safe)");
        }
    }
    Ok(store)
}

pub type Running = (SocketAddr, tokio::task::JoinHandle<()>, tokio::sync::oneshot::Sender<()>);

pub async fn start(s: &Settings, root_override: Option<(String, String)>) -> anyhow::Result<Running> {
    start_with(s, root_override, None).await
}

/// `start`, with garrison's own AWS identity given instead of read from the standard chain.
pub async fn start_with(
    s: &Settings,
    root_override: Option<(String, String)>,
    aws: Option<garrison_cloud::Aws>,
) -> anyhow::Result<Running> {
    // Bound first: a server that cannot listen creates nothing and prints no root key.
    let listener = tokio::net::TcpListener::bind(&s.listen).await.with_context(|| format!("binding {}", s.listen))?;
    let addr = listener.local_addr()?;
    let store = open_store(s, root_override).await?;
    let mut api = s.api.clone();
    if api.public_url.is_empty() {
        let scheme = if s.tls.is_some() { "https" } else { "http" };
        api.public_url = format!("{scheme}://{addr}");
    }
    // AWS configuration comes from the standard chain; nothing is called until needed.
    let aws = match aws {
        Some(a) => a,
        None => garrison_cloud::Aws::from_env(None).await,
    };
    let sessions = sessions_for(&store, aws);
    let engine = std::sync::Arc::new(engine_for(s, store.clone(), sessions, api.aws_principal.clone()));
    if s.worker {
        tokio::spawn(garrison_engine::worker::run(engine.clone(), s.resync));
        tokio::spawn(garrison_engine::collect::run(engine.clone()));
        tokio::spawn(garrison_engine::enroll::run(engine.clone(), s.resync));
        tokio::spawn(garrison_engine::appliances::watch(engine.clone()));
        tokio::spawn(garrison_notify::run(store.clone(), garrison_notify::Sender::new(s.notify.clone())));
    }
    let public_url = api.public_url.clone();
    let state = AppState::with_engine(store, api, Some(engine)).await?;
    if let Some(cfg) = &s.sso {
        let mut cfg = cfg.clone();
        if cfg.redirect_url.is_empty() {
            cfg.redirect_url = format!("{}/auth/callback", public_url.trim_end_matches('/'));
        }
        state.enable_sso(garrison_api::sso::Sso::new(cfg).map_err(|e| anyhow::anyhow!(e))?);
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = garrison_api::router(state);
    let tls = s.tls.clone();
    if let Some(t) = &tls {
        reload_on_hangup(t.clone());
    }
    let h = tokio::spawn(async move {
        let shutdown = async {
            tokio::select! {
                _ = rx => {},
                _ = shutdown_signal() => {},
            }
        };
        if let Err(e) = garrison_api::server::serve_tls(listener, app, Default::default(), tls, shutdown).await {
            tracing::error!(error = %e, "server stopped");
        }
    });
    Ok((addr, h, tx))
}

/// The engine with the operator's price and image tables where given.
/// Sessions in customer accounts. On a shared store (PostgreSQL, several processes) the
/// per-account rate budgets are kept in the store, so they hold across every process.
fn sessions_for(store: &Store, mut aws: garrison_cloud::Aws) -> std::sync::Arc<garrison_cloud::Sessions> {
    if store.backend() == garrison_store::Backend::Postgres {
        let shared = garrison_cloud::limiter::Limiter::default().with_shared(std::sync::Arc::new(store.clone()));
        aws.limiter = std::sync::Arc::new(shared);
    }
    // A long-running process reuses slow-changing facts for an hour (garrison_cloud::reuse).
    std::sync::Arc::new(garrison_cloud::Sessions::new(aws).reusing(std::time::Duration::from_secs(3600)))
}

fn engine_for(
    s: &Settings,
    store: Store,
    sessions: std::sync::Arc<garrison_cloud::Sessions>,
    principal: String,
) -> garrison_engine::Engine {
    let mut e = garrison_engine::Engine::new(store, sessions, principal);
    e.collector = s.collector.clone();
    e.lease_ttl = s.lease_ttl;
    e.parallel_runs = s.parallel;
    if let Some(p) = &s.prices {
        e.prices = std::sync::Arc::new(p.clone());
    }
    if let Some(i) = &s.images {
        e.images = std::sync::Arc::new(i.clone());
    }
    e.appliances = s.appliances.clone();
    e
}

/// SIGHUP reads the certificate and key again (a renewed certificate is served on new
/// connections; open ones keep theirs); a bad file is logged and the one in use stays.
fn reload_on_hangup(tls: std::sync::Arc<garrison_api::tls::Tls>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!("TLS certificate read again"),
                Err(e) => tracing::error!(error = %e, "TLS certificate not reloaded; the one in use stays"),
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}

pub fn init_tracing() {
    init_tracing_default("info,sqlx=warn,tower_http=warn");
}

pub fn init_tracing_default(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GARRISON_LOG").unwrap_or_else(|_| default.into());
    let json = std::env::var("GARRISON_LOG_FORMAT").is_ok_and(|v| v == "json");
    // Colour codes only on a terminal: a log file or a journal gets plain text.
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    // A log that cannot be written is lost, never fatal: by default the subscriber reports
    // the failure with eprintln!, which panics when stderr itself is gone (a closed pipe, a
    // full disk), and the server died with its log reader.
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .log_internal_errors(false);
    let _ = if json { b.json().try_init() } else { b.try_init() };
}

pub async fn main(argv: Vec<String>) -> ExitCode {
    init_tracing();
    let pos = argv.iter().position(|a| a == "serve").unwrap_or(1);
    let args =
        ServeArgs::parse_from(std::iter::once("garrison serve".to_string()).chain(argv[pos + 1..].iter().cloned()));
    let settings = match resolve(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("garrison serve: {e:#}");
            return ExitCode::from(2);
        }
    };
    match start(&settings, None).await {
        Ok((addr, handle, _tx)) => {
            // On stdout so that scripts (and tests) binding port 0 learn the address.
            let scheme = if settings.tls.is_some() { "https" } else { "http" };
            {
                use std::io::Write;
                let mut out = std::io::stdout();
                let _ = writeln!(out, "garrison: listening on {scheme}://{addr}").and_then(|()| out.flush());
            }
            let dropped = crate::resident::drop_startup_pages();
            tracing::info!(%addr, startup_pages_dropped_kib = dropped >> 10, "garrison listening");
            let _ = handle.await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("garrison serve: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `garrison worker`: the reconcile loop and the collector alone, on the same store and settings as `serve`
/// (for running the API and the worker in separate processes).
pub async fn worker_main(argv: Vec<String>) -> ExitCode {
    init_tracing();
    let pos = argv.iter().position(|a| a == "worker").unwrap_or(1);
    let args =
        ServeArgs::parse_from(std::iter::once("garrison worker".to_string()).chain(argv[pos + 1..].iter().cloned()));
    let metrics_listen = args.metrics_listen.clone();
    let settings = match resolve(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("garrison worker: {e:#}");
            return ExitCode::from(2);
        }
    };
    let store = match open_store(&settings, None).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("garrison worker: {e:#}");
            return ExitCode::from(1);
        }
    };
    let _ = garrison_api::metrics::handle();
    if let Some(addr) = &metrics_listen {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("garrison worker: --metrics-listen {addr}: {e}");
                return ExitCode::from(2);
            }
        };
        let scheme = if settings.tls.is_some() { "https" } else { "http" };
        if let Ok(a) = listener.local_addr() {
            println!("garrison: metrics on {scheme}://{a}/metrics");
        }
        if let Some(t) = &settings.tls {
            reload_on_hangup(t.clone());
        }
        tokio::spawn(garrison_api::metrics::serve_worker(listener, settings.tls.clone()));
    }
    let sessions = sessions_for(&store, garrison_cloud::Aws::from_env(None).await);
    let engine =
        std::sync::Arc::new(engine_for(&settings, store.clone(), sessions, settings.api.aws_principal.clone()));
    tracing::info!("garrison worker running");
    tokio::select! {
        _ = garrison_notify::run(store, garrison_notify::Sender::new(settings.notify.clone())) => {},
        _ = garrison_engine::worker::run(engine.clone(), settings.resync) => {},
        _ = garrison_engine::collect::run(engine.clone()) => {},
        _ = garrison_engine::appliances::watch(engine.clone()) => {},
        _ = garrison_engine::enroll::run(engine, settings.resync) => {},
        _ = shutdown_signal() => {},
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = std::env::temp_dir().join(format!("garrison-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("garrison.toml");
        std::fs::write(&f, "listen = \"127.0.0.1:9000\"\ndata_dir = \"/var/lib/garrison\"\naws_principal = \"111122223333\"\ntoken_ttl = 600\n").unwrap();
        let s =
            resolve(ServeArgs { config: Some(f.clone()), listen: Some("127.0.0.1:9100".into()), ..Default::default() })
                .unwrap();
        assert_eq!(s.listen, "127.0.0.1:9100");
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/garrison"));
        assert_eq!(s.database_url, "sqlite:///var/lib/garrison/garrison.db?mode=rwc");
        assert_eq!((s.api.aws_principal.as_str(), s.api.token_ttl_secs), ("111122223333", 600));
        let d = resolve(ServeArgs::default()).unwrap();
        assert_eq!((d.listen.as_str(), d.api.aws_principal.as_str()), ("127.0.0.1:8080", DEFAULT_PRINCIPAL));
        std::fs::write(&f, "listen = \"127.0.0.1:9000\"\nlisten_port = 3\n").unwrap();
        let e = resolve(ServeArgs { config: Some(f.clone()), ..Default::default() }).unwrap_err();
        assert!(format!("{e:#}").contains("unknown field `listen_port`"), "{e:#}");
        for (args, needle) in [
            (ServeArgs { listen: Some("localhost".into()), ..Default::default() }, "--listen"),
            (ServeArgs { database_url: Some("mysql://x".into()), ..Default::default() }, "--database-url"),
            (ServeArgs { aws_principal: Some("12".into()), ..Default::default() }, "--aws-principal"),
            (ServeArgs { token_ttl: Some(1), ..Default::default() }, "--token-ttl"),
            (ServeArgs { price_table: Some("/nonexistent/prices.json".into()), ..Default::default() }, "--price-table"),
        ] {
            assert!(format!("{:#}", resolve(args).unwrap_err()).contains(needle), "{needle}");
        }
    }
}
