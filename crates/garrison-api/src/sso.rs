//! Single sign-on for the dashboard: OpenID Connect's authorization code flow with PKCE
//! (the `openidconnect` crate: discovery, JWKS, ID token checks — issuer, audience, expiry,
//! nonce, signature), a claim (`groups` by default) mapped to an account and a role by a small
//! mapping file, and a server-side session behind an `HttpOnly`, `SameSite=Lax` cookie
//! (`Secure` under TLS) whose state-changing requests carry a CSRF token.
//!
//! The provider's discovery document and keys are cached for `METADATA_TTL` and fetched again
//! at once when a token names a key they do not hold (the provider rotated its keys).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use garrison_model::account::GlobalRole;
use garrison_model::ops::OPERATIONS;
use garrison_model::permission::Scope;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, TokenResponse,
};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::RwLock;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

/// The session cookie's name.
pub const COOKIE: &str = "garrison_session";
/// The cookie that binds a sign-in in progress to the browser that started it (so that an
/// attacker's own sign-in cannot be finished in a victim's browser).
pub const STATE_COOKIE: &str = "garrison_sso_state";
/// The header a cookie-authenticated request that changes something must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long the provider's discovery document and keys are trusted before being read again.
pub const METADATA_TTL: Duration = Duration::from_secs(3600);

/// The mapping file: which claim value gives which account and role.
///
/// ```toml
/// claim = "groups"            # the ID token claim read (default groups)
/// scopes = ["email", "groups"] # scopes asked besides openid (default email, profile)
/// [[map]]
/// value = "security-admins"
/// account_id = "12345678"
/// role = "Administrator"      # a global role's name or id, or one of the account's role ids
/// ```
/// The first entry (in file order) whose value the user's claim holds wins.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    #[serde(default = "default_claim")]
    pub claim: String,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub map: Vec<MapEntry>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapEntry {
    pub value: String,
    pub account_id: String,
    pub role: String,
}

fn default_claim() -> String {
    "groups".into()
}

fn default_scopes() -> Vec<String> {
    vec!["email".into(), "profile".into()]
}

impl Mapping {
    /// Reads and checks a mapping file: every entry names an 8-digit account and a role (a
    /// global role by name or id, or an id of the account's own roles, checked at sign-in).
    pub fn parse(text: &str) -> Result<Mapping, String> {
        let m: Mapping = toml::from_str(text).map_err(|e| e.to_string())?;
        if m.claim.trim().is_empty() {
            return Err("claim: expected a claim name such as groups, found an empty string".into());
        }
        if m.map.is_empty() {
            return Err("map: expected at least one [[map]] entry (value, account_id, role), found none".into());
        }
        for (i, e) in m.map.iter().enumerate() {
            if !garrison_model::account::is_account_id(&e.account_id) {
                return Err(format!("map[{i}].account_id: expected 8 digits, found {:?}", e.account_id));
            }
            if e.value.is_empty() || e.role.trim().is_empty() {
                return Err(format!("map[{i}]: expected a value and a role, found an empty one"));
            }
        }
        Ok(m)
    }

    /// The entry for a user whose claim is `claim` (a string or an array of strings).
    pub fn pick(&self, claim: Option<&Value>) -> Option<&MapEntry> {
        let values: Vec<&str> = match claim {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        self.map.iter().find(|e| values.contains(&e.value.as_str()))
    }
}

/// A mapping's role: a global role's id (by name or id), or the text as an account role id.
pub fn role_id_of(role: &str) -> String {
    GlobalRole::ALL
        .into_iter()
        .find(|g| g.name().eq_ignore_ascii_case(role) || g.id().eq_ignore_ascii_case(role))
        .map(|g| g.id().to_string())
        .unwrap_or_else(|| role.to_uppercase())
}

#[derive(Debug, Clone)]
pub struct SsoConfig {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_url: String,
    pub mapping: Mapping,
    pub session_ttl: Duration,
}

/// The client as discovery makes it: the authorization endpoint set, the token and user-info
/// endpoints as the provider's metadata says.
type Client = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

pub struct Sso {
    pub config: SsoConfig,
    http: openidconnect::reqwest::Client,
    metadata: RwLock<Option<(CoreProviderMetadata, Instant)>>,
}

impl Sso {
    pub fn new(config: SsoConfig) -> Result<Sso, String> {
        IssuerUrl::new(config.issuer.clone()).map_err(|e| format!("--oidc-issuer: {e}"))?;
        RedirectUrl::new(config.redirect_url.clone()).map_err(|e| format!("--oidc-redirect-url: {e}"))?;
        let http = openidconnect::reqwest::Client::builder()
            // Following redirects would let a provider's answer send garrison anywhere.
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Sso { config, http, metadata: RwLock::new(None) })
    }

    /// The provider's metadata and keys, from memory unless stale or `fresh` is asked.
    async fn metadata(&self, fresh: bool) -> ApiResult<CoreProviderMetadata> {
        if !fresh
            && let Some((m, at)) = &*self.metadata.read().await
            && at.elapsed() < METADATA_TTL
        {
            return Ok(m.clone());
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone()).expect("checked in Sso::new");
        let m = CoreProviderMetadata::discover_async(issuer, &self.http).await.map_err(|e| {
            tracing::warn!(error = %e, "OpenID provider discovery failed");
            ApiError::Upstream(format!("the identity provider {} could not be read: {e}", self.config.issuer))
        })?;
        *self.metadata.write().await = Some((m.clone(), Instant::now()));
        Ok(m)
    }

    fn client(&self, m: CoreProviderMetadata) -> Client {
        CoreClient::from_provider_metadata(
            m,
            ClientId::new(self.config.client_id.clone()),
            self.config.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new(self.config.redirect_url.clone()).expect("checked in Sso::new"))
    }
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    B64.encode(b)
}

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/auth/session", get(session))
        .route("/auth/logout", post(logout))
}

fn sso(s: &AppState) -> ApiResult<&Arc<Sso>> {
    s.sso.get().ok_or_else(|| ApiError::NotFound("single sign-on is not configured on this server".into()))
}

/// Starts a sign-in: remembers the state, nonce and PKCE verifier, and sends the browser to
/// the provider.
async fn login(State(s): State<AppState>) -> ApiResult<Response> {
    let sso = sso(&s)?;
    let client = sso.client(sso.metadata(false).await?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req =
        client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random);
    for scope in &sso.config.mapping.scopes {
        req = req.add_scope(openidconnect::Scope::new(scope.clone()));
    }
    let (url, state, nonce) = req.set_pkce_challenge(challenge).url();
    s.store.begin_sso_login(state.secret(), nonce.secret(), verifier.secret()).await?;
    let mut res = Redirect::to(url.as_str()).into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie(&s, STATE_COOKIE, "/auth", state.secret(), 600));
    Ok(res)
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// A refusal of a sign-in: a 4xx page-less JSON answer naming why (logged without secrets).
fn refused(status: StatusCode, why: impl Into<String>) -> Response {
    let why = why.into();
    tracing::warn!(reason = %why, "single sign-on refused");
    (status, Json(json!({"error": "sign_in_refused", "message": why}))).into_response()
}

/// The provider's answer: the state taken (once), the code exchanged with the PKCE verifier,
/// the ID token checked, the claim mapped to an account and role, the user found or made, and a
/// session opened.
async fn callback(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> ApiResult<Response> {
    let sso = sso(&s)?.clone();
    if let Some(e) = q.error {
        let d = q.error_description.unwrap_or_default();
        return Ok(refused(StatusCode::FORBIDDEN, format!("the identity provider refused the sign-in: {e} {d}")));
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return Ok(refused(StatusCode::BAD_REQUEST, "code and state: expected both from the identity provider"));
    };
    let Some((nonce, verifier)) = s.store.take_sso_login(&state).await? else {
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            "state: this sign-in was already used or has expired (or did not start here); sign in again",
        ));
    };
    let bound = named_cookie(&headers, STATE_COOKIE).unwrap_or_default();
    if !crate::auth::same_secret(bound.as_bytes(), state.as_bytes()) {
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            "state: this sign-in did not start in this browser; sign in again",
        ));
    }
    let client = sso.client(sso.metadata(false).await?);
    let exchange = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| ApiError::Upstream(format!("the identity provider has no token endpoint: {e}")))?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&sso.http)
        .await;
    let tokens = match exchange {
        Ok(t) => t,
        Err(e) => return Ok(refused(StatusCode::FORBIDDEN, format!("the code was not accepted: {e}"))),
    };
    let Some(id_token) = tokens.id_token() else {
        return Ok(refused(StatusCode::FORBIDDEN, "the identity provider returned no ID token"));
    };
    let nonce = Nonce::new(nonce);
    let claims = match verify(&sso, &client, id_token, &nonce).await {
        Ok(c) => c,
        Err(why) => return Ok(refused(StatusCode::FORBIDDEN, format!("the ID token was refused: {why}"))),
    };
    let mapping = &sso.config.mapping;
    let Some(entry) = mapping.pick(claims.get(&mapping.claim)) else {
        return Ok(refused(
            StatusCode::FORBIDDEN,
            format!(
                "no garrison role for this identity: its {:?} claim matches no entry of the mapping",
                mapping.claim
            ),
        ));
    };
    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}@{}", claims["sub"].as_str().unwrap_or("user"), host_of(&sso.config.issuer)));
    let name = claims.get("name").and_then(Value::as_str).unwrap_or(&email).to_string();
    let role_id = role_id_of(&entry.role);
    if GlobalRole::from_id(&role_id).is_none() && s.store.get_role(&entry.account_id, &role_id).await?.is_none() {
        return Ok(refused(
            StatusCode::FORBIDDEN,
            format!("the mapping's role {:?} is not a role of account {}", entry.role, entry.account_id),
        ));
    }
    if s.store.get_account(&entry.account_id).await?.is_none() {
        return Ok(refused(
            StatusCode::FORBIDDEN,
            format!("the mapping's account {} does not exist", entry.account_id),
        ));
    }
    // The mapping is the source of truth for a signed-in user's role.
    let user_id = match s.store.find_user_by_email(&entry.account_id, &email).await? {
        Some(id) => id,
        None => s.store.create_user(&entry.account_id, &name, &email, Some(&role_id), "sso").await?.id,
    };
    let user = s.store.get_user(&entry.account_id, &user_id).await?.ok_or(ApiError::NotFound("user".into()))?;
    if !user.active {
        return Ok(refused(StatusCode::FORBIDDEN, "this garrison user is disabled"));
    }
    if user.role_ids.first().map(String::as_str) != Some(role_id.as_str()) {
        let change = garrison_store::UserChange { role: Some(role_id.clone()), ..Default::default() };
        s.store.update_user(&entry.account_id, &user_id, &change, "sso").await?;
        s.key_states.forget_all();
    }
    let session = random_token();
    let csrf = random_token();
    let ttl = sso.config.session_ttl;
    s.store.create_web_session(&session, &entry.account_id, &user_id, &csrf, ttl.as_millis() as i64).await?;
    tracing::info!(account = %entry.account_id, user = %user_id, "signed in through single sign-on");
    let mut res = Redirect::to("/").into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie(&s, COOKIE, "/", &session, ttl.as_secs()));
    res.headers_mut().append(header::SET_COOKIE, cookie(&s, STATE_COOKIE, "/auth", "", 0));
    Ok(res)
}

fn host_of(url: &str) -> String {
    url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_else(|| "sso".into())
}

/// The verified claims of an ID token, as JSON. A token signed by a key the cached set does
/// not hold is checked again against keys read afresh (rotation); anything else refused stays
/// refused.
async fn verify(sso: &Sso, client: &Client, token: &CoreIdToken, nonce: &Nonce) -> Result<Value, String> {
    match token.claims(&client.id_token_verifier(), nonce) {
        Ok(_) => {}
        Err(ClaimsVerificationError::SignatureVerification(
            openidconnect::SignatureVerificationError::NoMatchingKey,
        )) => {
            let fresh = sso.client(sso.metadata(true).await.map_err(|e| format!("{e:?}"))?);
            token.claims(&fresh.id_token_verifier(), nonce).map_err(|e| e.to_string())?;
        }
        Err(e) => return Err(e.to_string()),
    }
    // The signature is verified: its payload is what the provider said.
    let text = token.to_string();
    let payload = text.split('.').nth(1).ok_or("not a compact JWT")?;
    let bytes = B64.decode(payload.trim_end_matches('=')).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// A cookie garrison sets: never readable by scripts, not sent on other sites' POSTs,
/// `Secure` when garrison is served over TLS.
fn cookie(s: &AppState, name: &str, path: &str, value: &str, max_age: u64) -> HeaderValue {
    HeaderValue::from_str(&cookie_text(name, path, s.config.public_url.starts_with("https://"), value, max_age))
        .expect("cookie text is ASCII")
}

fn cookie_text(name: &str, path: &str, secure: bool, value: &str, max_age: u64) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; HttpOnly; SameSite=Lax; Path={path}; Max-Age={max_age}{secure}")
}

/// The session cookie of a request, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    named_cookie(headers, COOKIE)
}

fn named_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The signed-in session: who, the role, the CSRF token the dashboard sends back, and the
/// operations the role allows in its own account (the dashboard shows only those buttons).
/// Not signed in is an answer, not an error: `{"signed_in": false}`.
async fn session(State(s): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let out = json!({"signed_in": false, "sso": s.sso.get().is_some()});
    let Some(id) = session_cookie(&headers) else { return Ok(Json(out)) };
    let Some(ws) = s.store.web_session(&id).await?.filter(|w| w.active) else { return Ok(Json(out)) };
    let perms = Caller::permissions_of(&ws.role_id, ws.custom_permissions.as_deref());
    let may: Vec<&str> =
        OPERATIONS.iter().filter(|o| o.needs_token && perms.allows_op(o, Scope::Own)).map(|o| o.name).collect();
    let user = s.store.get_user(&ws.account_id, &ws.user_id).await?;
    let account = s.store.get_account(&ws.account_id).await?;
    let role = GlobalRole::from_id(&ws.role_id).map(|g| g.name().to_string()).unwrap_or(ws.role_id.clone());
    Ok(Json(json!({
        "signed_in": true, "sso": true, "account": account, "user": user, "role": {"id": ws.role_id, "name": role},
        "csrf_token": ws.csrf, "expires": ws.expires_ms / 1000, "may": may,
    })))
}

/// Ends the session (a state-changing request: it needs the CSRF token too).
async fn logout(State(s): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let id = session_cookie(&headers).ok_or_else(|| ApiError::Unauthorized("not signed in".into()))?;
    let ws = s.store.web_session(&id).await?.ok_or_else(|| ApiError::Unauthorized("no such session".into()))?;
    crate::auth::check_csrf(&s, &headers, &ws.csrf)?;
    s.store.end_web_session(&id).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie(&s, COOKIE, "/", "", 0));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_mapping_picks_the_first_matching_entry() {
        let m = Mapping::parse(
            r#"
            claim = "groups"
            [[map]]
            value = "admins"
            account_id = "12345678"
            role = "Administrator"
            [[map]]
            value = "readers"
            account_id = "12345678"
            role = "read only"
            "#,
        )
        .unwrap();
        assert_eq!(m.scopes, ["email", "profile"]);
        assert_eq!(m.pick(Some(&json!(["x", "readers", "admins"]))).unwrap().value, "admins", "file order wins");
        assert_eq!(m.pick(Some(&json!("readers"))).unwrap().role, "read only");
        assert!(m.pick(Some(&json!(["nobody"]))).is_none());
        assert!(m.pick(None).is_none());
        assert_eq!(role_id_of("read only"), garrison_model::account::READ_ONLY_ROLE_ID);
        assert_eq!(role_id_of("abc-def"), "ABC-DEF");
        for (text, field) in [
            ("", "map"),
            ("[[map]]\nvalue = \"a\"\naccount_id = \"1\"\nrole = \"User\"", "map[0].account_id"),
            ("claim = \"\"\n[[map]]\nvalue = \"a\"\naccount_id = \"12345678\"\nrole = \"User\"", "claim"),
            ("[[map]]\nvalue = \"a\"\naccount_id = \"12345678\"\nrole = \"User\"\nextra = 1", "extra"),
        ] {
            let e = Mapping::parse(text).unwrap_err();
            assert!(e.contains(field), "{text:?}: {e}");
        }
    }

    #[test]
    fn the_cookie_is_secure_under_tls_only() {
        assert_eq!(
            cookie_text(COOKIE, "/", true, "v", 60),
            "garrison_session=v; HttpOnly; SameSite=Lax; Path=/; Max-Age=60; Secure"
        );
        assert!(!cookie_text(COOKIE, "/", false, "v", 60).contains("Secure"));
    }

    #[test]
    fn the_session_cookie_is_read_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; garrison_session=abc; b=2"));
        assert_eq!(session_cookie(&h).as_deref(), Some("abc"));
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }

    proptest! {
        #[test]
        fn any_mapping_text_is_checked_without_panicking(text in "\\PC{0,200}") {
            let _ = Mapping::parse(&text);
        }
    }
}
