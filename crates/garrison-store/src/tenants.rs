//! aims data: accounts (tenants and their managed children), users, access keys.

use garrison_model::Stamp;
use garrison_model::account::{AccessKey, Account, LOCATION, User};
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Store, StoreError, now};

/// What an access key id resolves to at authentication time.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub access_key_id: String,
    pub user_id: String,
    pub account_id: String,
    secret_hash: String,
}

impl KeyRecord {
    /// Constant-time comparison of the presented secret's hash.
    pub fn verify(&self, secret: &str) -> bool {
        let presented = hash_secret(secret);
        presented.len() == self.secret_hash.len()
            && presented.bytes().zip(self.secret_hash.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// The root tenant created on first start.
#[derive(Debug, Clone)]
pub struct NewRoot {
    pub account_id: String,
    pub name: String,
    pub access_key_id: String,
    pub secret_key: String,
}

fn hash_secret(secret: &str) -> String {
    // Secrets are 256-bit random values, so a plain hash suffices (no password stretching).
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// A fresh 16-hex-character access key id and 64-hex-character secret, the reference's shapes.
pub fn new_key_pair() -> (String, String) {
    (random_hex(8), random_hex(32))
}

fn stamp(r: &AnyRow, at: &str, by: &str) -> Stamp {
    Stamp { at: r.get(at), by: r.get(by) }
}

fn account_from(r: &AnyRow) -> Account {
    Account {
        id: r.get("id"),
        name: r.get("name"),
        active: r.get::<i64, _>("active") != 0,
        version: r.get("version"),
        accessible_locations: vec![LOCATION.into()],
        default_location: LOCATION.into(),
        created: stamp(r, "created_at", "created_by"),
        modified: stamp(r, "modified_at", "modified_by"),
    }
}

impl Store {
    /// Creates the root tenant with its first user and access key when the store has no account.
    /// Returns `None` when a root exists already (nothing is printed twice).
    pub async fn init_root(
        &self,
        account_id: Option<String>,
        key: Option<(String, String)>,
    ) -> Result<Option<NewRoot>, StoreError> {
        let existing: i64 =
            sqlx::query("SELECT COUNT(*) FROM accounts WHERE parent_id IS NULL").fetch_one(&self.pool).await?.get(0);
        if existing > 0 {
            return Ok(None);
        }
        let account = self.insert_account(account_id, "root", None, "system").await?;
        let user = self.create_user(&account.id, "root", "root@garrison.local", "system").await?;
        let (key_id, secret) = key.unwrap_or_else(new_key_pair);
        self.insert_key(&key_id, &secret, &user.id, &account.id, Some("root"), "system").await?;
        Ok(Some(NewRoot { account_id: account.id, name: account.name, access_key_id: key_id, secret_key: secret }))
    }

    async fn insert_account(
        &self,
        id: Option<String>,
        name: &str,
        parent: Option<&str>,
        by: &str,
    ) -> Result<Account, StoreError> {
        let t = now();
        for attempt in 0..20 {
            let id = match (&id, attempt) {
                (Some(id), 0) => id.clone(),
                (Some(_), _) => return Err(StoreError::Conflict("account id taken".into())),
                (None, _) => format!("{:08}", rand::rng().random_range(10_000_000..100_000_000u32)),
            };
            let external_id = random_hex(16);
            let sealed = self.sealer.seal(&format!("account:{id}:external_id"), external_id.as_bytes());
            let res = sqlx::query(
                "INSERT INTO accounts (id, name, parent_id, sealed_external_id, active, version, created_at, created_by, modified_at, modified_by) VALUES ($1, $2, $3, $4, 1, 1, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&id)
            .bind(name)
            .bind(parent)
            .bind(&sealed)
            .bind(t)
            .bind(by)
            .bind(t)
            .bind(by)
            .execute(&self.pool)
            .await?;
            if res.rows_affected() == 1 {
                return self.get_account(&id).await?.ok_or(StoreError::NotFound);
            }
        }
        Err(StoreError::Conflict("could not find a free account id".into()))
    }

    pub async fn create_child_account(&self, parent: &str, name: &str, by: &str) -> Result<Account, StoreError> {
        self.insert_account(None, name, Some(parent), by).await
    }

    pub async fn get_account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        Ok(sqlx::query("SELECT * FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| account_from(&r)))
    }

    pub async fn account_parent(&self, id: &str) -> Result<Option<Option<String>>, StoreError> {
        Ok(sqlx::query("SELECT parent_id FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.get::<Option<String>, _>(0)))
    }

    pub async fn list_children(&self, id: &str) -> Result<Vec<Account>, StoreError> {
        Ok(sqlx::query("SELECT * FROM accounts WHERE parent_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(account_from)
            .collect())
    }

    /// The tenant's ExternalId, unsealed.
    pub async fn external_id(&self, account_id: &str) -> Result<String, StoreError> {
        let sealed: String = sqlx::query("SELECT sealed_external_id FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?
            .get(0);
        Ok(self.sealer.open_string(&format!("account:{account_id}:external_id"), &sealed)?)
    }

    pub async fn create_user(&self, account_id: &str, name: &str, email: &str, by: &str) -> Result<User, StoreError> {
        let id = uuid::Uuid::new_v4().to_string().to_uppercase();
        let t = now();
        let res = sqlx::query(
            "INSERT INTO users (id, account_id, name, email, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (email) DO NOTHING",
        )
        .bind(&id)
        .bind(account_id)
        .bind(name)
        .bind(email)
        .bind(t)
        .bind(by)
        .execute(&self.pool)
        .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("a user with email {email:?} exists")));
        }
        self.get_user(account_id, &id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn get_user(&self, account_id: &str, id: &str) -> Result<Option<User>, StoreError> {
        Ok(sqlx::query("SELECT * FROM users WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| user_from(&r)))
    }

    pub async fn list_users(&self, account_id: &str) -> Result<Vec<User>, StoreError> {
        Ok(sqlx::query("SELECT * FROM users WHERE account_id = $1 ORDER BY created_at, id")
            .bind(account_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(user_from)
            .collect())
    }

    async fn insert_key(
        &self,
        key_id: &str,
        secret: &str,
        user_id: &str,
        account_id: &str,
        label: Option<&str>,
        by: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO access_keys (id, user_id, account_id, secret_hash, label, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(key_id)
            .bind(user_id)
            .bind(account_id)
            .bind(hash_secret(secret))
            .bind(label)
            .bind(now())
            .bind(by)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Creates a key for a user; the secret is returned here and never again.
    pub async fn create_access_key(
        &self,
        account_id: &str,
        user_id: &str,
        label: Option<&str>,
        by: &str,
    ) -> Result<AccessKey, StoreError> {
        let count: i64 = sqlx::query("SELECT COUNT(*) FROM access_keys WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?
            .get(0);
        if count >= 5 {
            return Err(StoreError::Conflict("limit_exceeded: a user has at most 5 access keys".into()));
        }
        let (key_id, secret) = new_key_pair();
        self.insert_key(&key_id, &secret, user_id, account_id, label, by).await?;
        let mut k = self.get_access_key(user_id, &key_id).await?.ok_or(StoreError::NotFound)?;
        k.secret_key = Some(secret);
        Ok(k)
    }

    pub async fn get_access_key(&self, user_id: &str, key_id: &str) -> Result<Option<AccessKey>, StoreError> {
        Ok(sqlx::query("SELECT * FROM access_keys WHERE id = $1 AND user_id = $2")
            .bind(key_id)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| key_from(&r)))
    }

    pub async fn list_access_keys(&self, user_id: &str) -> Result<Vec<AccessKey>, StoreError> {
        Ok(sqlx::query("SELECT * FROM access_keys WHERE user_id = $1 ORDER BY created_at, id")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(key_from)
            .collect())
    }

    pub async fn delete_access_key(&self, user_id: &str, key_id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM access_keys WHERE id = $1 AND user_id = $2")
            .bind(key_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Looks up an access key for authentication.
    pub async fn find_key(&self, key_id: &str) -> Result<Option<KeyRecord>, StoreError> {
        Ok(sqlx::query("SELECT id, user_id, account_id, secret_hash FROM access_keys WHERE id = $1")
            .bind(key_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| KeyRecord {
                access_key_id: r.get("id"),
                user_id: r.get("user_id"),
                account_id: r.get("account_id"),
                secret_hash: r.get("secret_hash"),
            }))
    }
}

fn user_from(r: &AnyRow) -> User {
    let email: String = r.get("email");
    User {
        id: r.get("id"),
        account_id: r.get("account_id"),
        name: r.get("name"),
        username: email.clone(),
        email,
        active: true,
        locked: false,
        version: 1,
        created: stamp(r, "created_at", "created_by"),
        modified: stamp(r, "created_at", "created_by"),
    }
}

fn key_from(r: &AnyRow) -> AccessKey {
    AccessKey {
        access_key_id: r.get("id"),
        user_id: r.get("user_id"),
        account_id: r.get("account_id"),
        label: r.get("label"),
        created: stamp(r, "created_at", "created_by"),
        modified: stamp(r, "created_at", "created_by"),
        secret_key: None,
    }
}
