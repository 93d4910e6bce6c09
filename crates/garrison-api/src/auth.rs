//! Tokens (HMAC-signed, expiring, naming the access key they came from) and the rules of
//! who may act: a caller may act on its own account and on the accounts it manages, directly
//! or not; the key behind a token must still exist and its user be active (checked per
//! request, cached for `REVOCATION_TTL`); and its role must allow the permission the
//! operation table declares for the route (`garrison_model::permission`), in the target
//! account's scope (`own` or `managed`).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use garrison_model::ops::{By, OPERATIONS, Operation};
use garrison_model::permission::{GlobalRole, Permissions, Scope, needed};
use garrison_store::KeyState;

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams};
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::AppState;
use crate::error::ApiError;

type HmacSha256 = Hmac<Sha256>;

pub const TOKEN_HEADER: &str = "x-aims-auth-token";

/// Who is calling, from a verified token whose key and user are still good.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account_id: String,
    pub user_id: String,
    /// The access key the token was issued for.
    pub key_id: String,
    /// The role the user holds (a global role's id, one of the account's, or empty: none).
    pub role_id: String,
    pub permissions: Permissions,
    pub expires: i64,
}

impl Caller {
    /// The permissions of a user's role: a global role's, an account role's as stored, or none.
    pub fn permissions_of(role_id: &str, custom: Option<&str>) -> Permissions {
        match (GlobalRole::from_id(role_id), custom) {
            (Some(g), _) => g.permissions(),
            (None, Some(text)) => Permissions::from_stored(text),
            (None, None) => Permissions::none(),
        }
    }

    /// How the role is named in refusals.
    fn role_label(&self) -> String {
        match GlobalRole::from_id(&self.role_id) {
            Some(g) => format!("the {} role", g.name()),
            None if self.role_id.is_empty() => "no role".into(),
            None => format!("role {}", self.role_id),
        }
    }

    /// Where `account_id` stands from the caller (tenancy itself is `AppState::authorize`'s).
    pub fn scope_of(&self, account_id: &str) -> Scope {
        if account_id == self.account_id { Scope::Own } else { Scope::Managed }
    }
}

/// The operation a matched route serves.
fn operation(method: &axum::http::Method, path: &str) -> Option<&'static Operation> {
    static BY_ROUTE: std::sync::LazyLock<HashMap<(&'static str, &'static str), &'static Operation>> =
        std::sync::LazyLock::new(|| OPERATIONS.iter().map(|o| ((o.method, o.path), o)).collect());
    BY_ROUTE.get(&(method.as_str(), path)).copied()
}

/// The claims of a token whose signature and expiry checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub account_id: String,
    pub user_id: String,
    pub key_id: String,
    pub expires: i64,
}

/// How long a process trusts what it last read about a token's key: a key deleted or a user
/// disabled through another process stops working within this time (and at once through
/// this one).
pub const REVOCATION_TTL: Duration = Duration::from_secs(1);

pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

pub struct Tokens {
    key: Vec<u8>,
    pub ttl_secs: i64,
}

impl Tokens {
    pub fn new(key: Vec<u8>, ttl_secs: i64) -> Tokens {
        Tokens { key, ttl_secs }
    }

    fn sign(&self, payload: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload.as_bytes());
        B64.encode(mac.finalize().into_bytes())
    }

    pub fn mint(&self, account_id: &str, user_id: &str, key_id: &str) -> (String, i64) {
        self.mint_until(account_id, user_id, key_id, unix_now() + self.ttl_secs)
    }

    pub fn mint_until(&self, account_id: &str, user_id: &str, key_id: &str, expires: i64) -> (String, i64) {
        let payload = B64.encode(format!("2|{account_id}|{user_id}|{key_id}|{expires}"));
        let sig = self.sign(&payload);
        (format!("{payload}.{sig}"), expires)
    }

    /// A MAC over `data` under the token key, for other opaque values handed to clients
    /// (paging cursors), with a domain label so that no value passes for another kind.
    pub fn mac(&self, domain: &str, data: &[u8]) -> Vec<u8> {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    /// Whether `tag` is the first bytes of `mac(domain, data)`, compared in constant time.
    pub fn verify_mac(&self, domain: &str, data: &[u8], tag: &[u8]) -> bool {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(data);
        !tag.is_empty() && mac.verify_truncated_left(tag).is_ok()
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let bad = || {
            ApiError::Unauthorized("the x-aims-auth-token is not valid; authenticate again (aims authenticate)".into())
        };
        let (payload, sig) = token.split_once('.').ok_or_else(bad)?;
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload.as_bytes());
        let sig = B64.decode(sig).map_err(|_| bad())?;
        mac.verify_slice(&sig).map_err(|_| bad())?;
        let text = String::from_utf8(B64.decode(payload).map_err(|_| bad())?).map_err(|_| bad())?;
        let parts: Vec<&str> = text.split('|').collect();
        // Version 1 tokens named no key, so they could not be revoked: no longer accepted.
        let ["2", account_id, user_id, key_id, exp] = parts.as_slice() else {
            return Err(bad());
        };
        let expires: i64 = exp.parse().map_err(|_| bad())?;
        if expires <= unix_now() {
            return Err(ApiError::Unauthorized("the x-aims-auth-token has expired; authenticate again".into()));
        }
        Ok(Claims {
            account_id: account_id.to_string(),
            user_id: user_id.to_string(),
            key_id: key_id.to_string(),
            expires,
        })
    }
}

/// What this process last read about access keys, for `REVOCATION_TTL`.
#[derive(Default)]
pub struct KeyStates {
    seen: RwLock<HashMap<String, (Instant, Option<KeyState>)>>,
}

/// Keys remembered at most; past it the memory is dropped and read again (bounded memory
/// whatever a client sends).
const KEY_STATES_MAX: usize = 10_000;

impl KeyStates {
    /// Forgets a key at once (this process deleted it, or changed its user).
    pub fn forget(&self, key_id: &str) {
        self.seen.write().expect("lock").remove(key_id);
    }

    pub fn forget_all(&self) {
        self.seen.write().expect("lock").clear();
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if !parts.headers.contains_key(TOKEN_HEADER)
            && let Some(id) = crate::sso::session_cookie(&parts.headers)
        {
            return Caller::from_session(parts, state, &id).await;
        }
        let token = parts
            .headers
            .get(TOKEN_HEADER)
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "missing x-aims-auth-token header; authenticate first (aims authenticate)".into(),
                )
            })?
            .to_str()
            .map_err(|_| ApiError::Unauthorized("the x-aims-auth-token header is not valid text".into()))?;
        let claims = state.tokens.verify(token)?;
        let key = state.key_state(&claims.key_id).await?;
        let revoked = || {
            ApiError::Unauthorized(
                "this token's access key was deleted or its user disabled; authenticate again with a valid key".into(),
            )
        };
        let key = key.ok_or_else(revoked)?;
        if !key.active || key.user_id != claims.user_id || key.account_id != claims.account_id {
            return Err(revoked());
        }
        let caller = Caller {
            permissions: Caller::permissions_of(&key.role_id, key.custom_permissions.as_deref()),
            account_id: claims.account_id,
            user_id: claims.user_id,
            key_id: claims.key_id,
            role_id: key.role_id,
            expires: claims.expires,
        };
        caller.check_permission(parts, state).await?;
        Ok(caller)
    }
}

impl Caller {
    /// A caller signed in to the dashboard through single sign-on: its session must be live
    /// and its user active (read on every request: ending a session or disabling the user
    /// takes effect at once), and anything but a read must carry the session's CSRF token
    /// from this server's own pages.
    async fn from_session(parts: &mut Parts, state: &AppState, id: &str) -> Result<Caller, ApiError> {
        let ws =
            state.store.web_session(id).await?.filter(|w| w.active).ok_or_else(|| {
                ApiError::Unauthorized("this dashboard session ended or expired; sign in again".into())
            })?;
        if !matches!(parts.method, axum::http::Method::GET | axum::http::Method::HEAD) {
            check_csrf(state, &parts.headers, &ws.csrf)?;
        }
        let caller = Caller {
            permissions: Caller::permissions_of(&ws.role_id, ws.custom_permissions.as_deref()),
            account_id: ws.account_id,
            user_id: ws.user_id,
            key_id: "session".into(),
            role_id: ws.role_id,
            expires: ws.expires_ms / 1000,
        };
        caller.check_permission(parts, state).await?;
        Ok(caller)
    }

    /// Refuses (403, naming the permission and the role) unless the caller's role allows what
    /// the route's operation needs where it acts. A route outside the operation table is
    /// refused: a handler cannot be reached without a declared permission.
    async fn check_permission(&self, parts: &mut Parts, state: &AppState) -> Result<(), ApiError> {
        let path = parts.extensions.get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_default();
        let Some(op) = operation(&parts.method, &path) else {
            return Err(ApiError::Forbidden("this route declares no permission; it is not open to tokens".into()));
        };
        let params = RawPathParams::from_request_parts(parts, state).await.ok();
        let param =
            |name: &str| params.as_ref().and_then(|p| p.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()));
        let account = param("account_id");
        let scope = account.as_deref().map_or(Scope::Own, |a| self.scope_of(a));
        if self.permissions.allows_op(op, scope) {
            return Ok(());
        }
        let own_user = scope == Scope::Own && param("user_id").as_deref() == Some(self.user_id.as_str());
        if op.need.by == By::RoleOrOwnUser && own_user {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!(
            "{} needs the permission {}, which {} does not allow",
            op.name,
            needed(op, scope),
            self.role_label()
        )))
    }
}

/// Parent links of accounts. Accounts never move, so a cached link stays true.
#[derive(Default)]
pub struct Ancestry {
    parents: RwLock<HashMap<String, Option<String>>>,
}

impl AppState {
    /// The key's current state, from this process's memory when it is recent enough.
    async fn key_state(&self, key_id: &str) -> Result<Option<KeyState>, ApiError> {
        if let Some((at, state)) = self.key_states.seen.read().expect("lock").get(key_id)
            && at.elapsed() < REVOCATION_TTL
        {
            return Ok(state.clone());
        }
        let state = self.store.key_state(key_id).await?;
        let mut seen = self.key_states.seen.write().expect("lock");
        if seen.len() >= KEY_STATES_MAX {
            seen.clear();
        }
        seen.insert(key_id.to_string(), (Instant::now(), state.clone()));
        Ok(state)
    }

    async fn parent_of(&self, id: &str) -> Result<Option<Option<String>>, ApiError> {
        if let Some(p) = self.ancestry.parents.read().expect("lock").get(id) {
            return Ok(Some(p.clone()));
        }
        let p = self.store.account_parent(id).await?;
        if let Some(p) = &p {
            self.ancestry.parents.write().expect("lock").insert(id.to_string(), p.clone());
        }
        Ok(p)
    }

    /// Refuses (403) unless `caller` is `account_id` or one of its managing ancestors.
    /// An account that does not exist is refused the same way, so probing tells nothing.
    pub async fn authorize(&self, caller: &Caller, account_id: &str) -> Result<(), ApiError> {
        let refused = || ApiError::Forbidden(format!("account {account_id:?} is not accessible with this token"));
        let mut current = account_id.to_string();
        for _ in 0..64 {
            if current == caller.account_id {
                return Ok(());
            }
            match self.parent_of(&current).await? {
                Some(Some(parent)) => current = parent,
                _ => return Err(refused()),
            }
        }
        Err(refused())
    }
}

/// Refuses (403) a state-changing request of a cookie session that does not carry the
/// session's CSRF token, or that comes from another origin than this server's.
pub fn check_csrf(state: &AppState, headers: &axum::http::HeaderMap, csrf: &str) -> Result<(), ApiError> {
    let refused = |why: &str| ApiError::Forbidden(format!("cross-site request refused: {why}"));
    if let Some(origin) = headers.get(axum::http::header::ORIGIN) {
        let public = state.config.public_url.trim_end_matches('/');
        if origin.to_str().ok() != Some(public) {
            return Err(refused("the request's Origin is not this server"));
        }
    }
    let sent = headers.get(crate::sso::CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if sent.is_empty() || !same_secret(sent.as_bytes(), csrf.as_bytes()) {
        return Err(refused("the x-csrf-token header does not match the session's"));
    }
    Ok(())
}

/// Whether two secrets are equal, compared in constant time (for equal lengths), so that a
/// token is not guessed byte by byte from response times.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
