//! Single sign-on state: logins in progress (state, nonce, PKCE verifier), taken once, and
//! dashboard sessions. Only SHA-256 hashes of the state and of the session cookie are stored,
//! so a copy of the database opens no session.

use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::db::{Store, StoreError, now_ms};

fn hash(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// How long a login may take between garrison's redirect and the provider's answer.
pub const LOGIN_TTL_MS: i64 = 10 * 60 * 1000;

/// A session as a request needs it: whose it is, its CSRF token, and the user's current role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub account_id: String,
    pub user_id: String,
    pub csrf: String,
    pub expires_ms: i64,
    pub role_id: String,
    pub custom_permissions: Option<String>,
    pub active: bool,
}

impl Store {
    pub async fn begin_sso_login(&self, state: &str, nonce: &str, pkce_verifier: &str) -> Result<(), StoreError> {
        let t = now_ms();
        sqlx::query("DELETE FROM sso_logins WHERE created_ms < $1").bind(t - LOGIN_TTL_MS).execute(&self.pool).await?;
        sqlx::query("INSERT INTO sso_logins (state_hash, nonce, pkce_verifier, created_ms) VALUES ($1, $2, $3, $4)")
            .bind(hash(state))
            .bind(nonce)
            .bind(pkce_verifier)
            .bind(t)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The nonce and PKCE verifier of a login in progress, taken: a state answers once, and
    /// not after `LOGIN_TTL_MS`.
    pub async fn take_sso_login(&self, state: &str) -> Result<Option<(String, String)>, StoreError> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("SELECT nonce, pkce_verifier, created_ms FROM sso_logins WHERE state_hash = $1")
            .bind(hash(state))
            .fetch_optional(&mut **tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let taken = sqlx::query("DELETE FROM sso_logins WHERE state_hash = $1")
            .bind(hash(state))
            .execute(&mut **tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        let fresh = row.get::<i64, _>(2) >= now_ms() - LOGIN_TTL_MS;
        Ok((taken == 1 && fresh).then(|| (row.get(0), row.get(1))))
    }

    pub async fn create_web_session(
        &self,
        id: &str,
        account_id: &str,
        user_id: &str,
        csrf: &str,
        ttl_ms: i64,
    ) -> Result<(), StoreError> {
        let t = now_ms();
        sqlx::query("DELETE FROM web_sessions WHERE expires_ms < $1").bind(t).execute(&self.pool).await?;
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, account_id, user_id, csrf, created_ms, expires_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(hash(id))
        .bind(account_id)
        .bind(user_id)
        .bind(csrf)
        .bind(t)
        .bind(t + ttl_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A live session with its user's current state (`None`: unknown, ended or expired).
    pub async fn web_session(&self, id: &str) -> Result<Option<WebSession>, StoreError> {
        let row = sqlx::query(
            "SELECT s.account_id, s.user_id, s.csrf, s.expires_ms, u.role_id, r.permissions, u.active FROM web_sessions s \
             JOIN users u ON u.id = s.user_id AND u.account_id = s.account_id \
             LEFT JOIN roles r ON r.id = u.role_id AND r.account_id = u.account_id WHERE s.id_hash = $1",
        )
        .bind(hash(id))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .map(|r| WebSession {
                account_id: r.get(0),
                user_id: r.get(1),
                csrf: r.get(2),
                expires_ms: r.get(3),
                role_id: r.get(4),
                custom_permissions: r.get(5),
                active: r.get::<i64, _>(6) != 0,
            })
            .filter(|s| s.expires_ms > now_ms()))
    }

    pub async fn end_web_session(&self, id: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
            .bind(hash(id))
            .execute(&self.pool)
            .await?
            .rows_affected()
            == 1)
    }

    /// Ends every session of a user (signed out everywhere, disabled, deleted).
    pub async fn end_user_sessions(&self, account_id: &str, user_id: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM web_sessions WHERE account_id = $1 AND user_id = $2")
            .bind(account_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// A user of the account by email.
    pub async fn find_user_by_email(&self, account_id: &str, email: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query("SELECT id FROM users WHERE account_id = $1 AND email = $2")
            .bind(account_id)
            .bind(email)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.get(0)))
    }
}
