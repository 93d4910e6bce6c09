//! Tokens (HMAC-signed, expiring, no store lookup per request) and the tenant rule:
//! a caller may act on its own account and on the accounts it manages, directly or not.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::AppState;
use crate::error::ApiError;

type HmacSha256 = Hmac<Sha256>;

pub const TOKEN_HEADER: &str = "x-aims-auth-token";

/// Who is calling, from a verified token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account_id: String,
    pub user_id: String,
    pub expires: i64,
}

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

    pub fn mint(&self, account_id: &str, user_id: &str) -> (String, i64) {
        self.mint_until(account_id, user_id, unix_now() + self.ttl_secs)
    }

    pub fn mint_until(&self, account_id: &str, user_id: &str, expires: i64) -> (String, i64) {
        let payload = B64.encode(format!("1|{account_id}|{user_id}|{expires}"));
        let sig = self.sign(&payload);
        (format!("{payload}.{sig}"), expires)
    }

    pub fn verify(&self, token: &str) -> Result<Caller, ApiError> {
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
        let ["1", account_id, user_id, exp] = parts.as_slice() else {
            return Err(bad());
        };
        let expires: i64 = exp.parse().map_err(|_| bad())?;
        if expires <= unix_now() {
            return Err(ApiError::Unauthorized("the x-aims-auth-token has expired; authenticate again".into()));
        }
        Ok(Caller { account_id: account_id.to_string(), user_id: user_id.to_string(), expires })
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
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
        state.tokens.verify(token)
    }
}

/// Parent links of accounts. Accounts never move, so a cached link stays true.
#[derive(Default)]
pub struct Ancestry {
    parents: RwLock<HashMap<String, Option<String>>>,
}

impl AppState {
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
