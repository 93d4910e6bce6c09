//! garrison's HTTP API: the Alert Logic-compatible services (aims, endpoints, themis,
//! credentials, policies, deployments) over axum, with the OpenAPI document at /openapi.json.

pub mod auth;
pub mod body;
pub mod dashboard;
pub mod error;
pub mod limits;
pub mod listing;
pub mod metrics;
pub mod openapi;
pub mod paging;
pub mod server;
pub mod services;
pub mod sso;
pub mod tls;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use garrison_catalog::Catalog;
use garrison_store::Store;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

pub use auth::{Ancestry, Caller, Claims, KeyStates, Tokens};

/// Largest request body accepted (the reference's limit is 1 MB too).
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Base URL clients reach this server at, e.g. `http://127.0.0.1:8080`.
    pub public_url: String,
    /// The AWS principal garrison runs as: a 12-digit account id (trusted as `:root`) or a role ARN.
    pub aws_principal: String,
    /// Bucket the role templates are published to, when the operator set one.
    pub template_bucket: Option<String>,
    /// Lifetime of an aims token in seconds.
    pub token_ttl_secs: i64,
    /// Webhook targets on loopback or private networks are accepted (tests, the demo, an
    /// on-premises receiver); link-local ones (the metadata service) never are.
    pub allow_private_webhooks: bool,
    /// How often appliances are told to send a heartbeat, in seconds.
    pub heartbeat_s: u64,
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    /// The engine behind live checks and discovery; `None` only in tests of the API alone.
    pub engine: Option<Arc<garrison_engine::Engine>>,
    pub store: Store,
    pub catalog: Catalog,
    pub config: ApiConfig,
    pub tokens: Tokens,
    /// Sends a connection's dry run (the worker's delivery loop has its own).
    pub sender: garrison_notify::Sender,
    pub ancestry: Ancestry,
    pub key_states: KeyStates,
    /// Access keys whose secret this process verified, with the stored hash it matched and a
    /// SHA-256 of the secret: a repeated sign-in skips the slow hash while the stored one is
    /// unchanged (a deleted key is not found, so it is not accepted).
    pub verified_keys: std::sync::Mutex<std::collections::HashMap<String, (String, [u8; 32])>>,
    /// Single sign-on for the dashboard, when the operator configured a provider (set once,
    /// at start: `AppState::enable_sso`).
    pub sso: std::sync::OnceLock<Arc<sso::Sso>>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Tells the engine that deployments changed.
    pub fn wake_engine(&self) {
        if let Some(e) = &self.engine {
            e.wake.notify_one();
        }
    }

    /// Has the enrollment loop look at the enrollments now.
    pub fn wake_enrollments(&self) {
        if let Some(e) = &self.engine {
            e.enrollments_changed.notify_one();
        }
    }

    pub async fn new(store: Store, config: ApiConfig) -> Result<AppState, garrison_store::StoreError> {
        AppState::with_engine(store, config, None).await
    }

    pub async fn with_engine(
        store: Store,
        config: ApiConfig,
        engine: Option<Arc<garrison_engine::Engine>>,
    ) -> Result<AppState, garrison_store::StoreError> {
        let key = store.sealed_secret("token_signing_key").await?;
        Ok(AppState(Arc::new(Inner {
            engine,
            store,
            catalog: Catalog::builtin(),
            tokens: Tokens::new(key, config.token_ttl_secs),
            sender: garrison_notify::Sender::new(garrison_notify::Options {
                allow_private: config.allow_private_webhooks,
                ..garrison_notify::Options::default()
            }),
            config,
            ancestry: Ancestry::default(),
            key_states: KeyStates::default(),
            verified_keys: Default::default(),
            sso: std::sync::OnceLock::new(),
        })))
    }

    /// Turns on single sign-on (once; a second call changes nothing).
    pub fn enable_sso(&self, sso: sso::Sso) {
        let _ = self.sso.set(Arc::new(sso));
    }
}

/// All service routes with their OpenAPI description.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(services::aims::routes())
        .merge(services::endpoints::routes())
        .merge(services::themis::routes())
        .merge(services::credentials::routes())
        .merge(services::policies::routes())
        .merge(services::deployments::routes())
        .merge(services::organizations::routes())
        .merge(services::protection::routes())
        .merge(services::assets_query::routes())
        .merge(services::findings::routes())
        .merge(services::connectors::routes())
        .merge(services::herald::routes())
        .merge(services::otis::routes())
        .merge(services::scheduler::routes())
        .merge(services::health::routes())
}

pub fn router(state: AppState) -> Router {
    // Installed before any work runs, so that nothing counted is missed.
    let _ = metrics::handle();
    let (router, doc) = api_router().split_for_parts();
    let doc = Arc::new(doc);
    router
        .route("/health", get(services::health))
        .route("/metrics", get(metrics::scrape))
        .merge(services::appliance_channel::routes())
        .merge(sso::routes())
        .merge(dashboard::routes())
        .route(
            "/openapi.json",
            get(move || {
                let d = doc.clone();
                async move { axum::Json((*d).clone()) }
            }),
        )
        .layer(axum::middleware::from_fn(limits::finish))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
