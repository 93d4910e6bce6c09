//! aims data: accounts (tenants and their managed children), users, access keys.

use garrison_model::Stamp;
use garrison_model::account::{ADMINISTRATOR_ROLE_ID, AccessKey, Account, LOCATION, POWER_USER_ROLE_ID, User};
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
    /// The user may sign in (not disabled).
    pub active: bool,
    secret_hash: String,
}

/// How a stored secret hash compares with a presented secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Match,
    /// Matches, but stored in the old unsalted form: hash it again (`upgrade_key_hash`).
    MatchLegacy,
    NoMatch,
}

impl KeyRecord {
    /// Checks the presented secret against the stored argon2id hash (or, for keys stored
    /// before it, the unsalted SHA-256 in constant time).
    pub fn verify(&self, secret: &str) -> Verdict {
        if self.secret_hash.starts_with("$argon2") {
            return if crate::secret_hash::verify(secret, &self.secret_hash) {
                Verdict::Match
            } else {
                Verdict::NoMatch
            };
        }
        let presented = legacy_hash(secret);
        let same = presented.len() == self.secret_hash.len()
            && presented.bytes().zip(self.secret_hash.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if same { Verdict::MatchLegacy } else { Verdict::NoMatch }
    }

    /// A record no secret matches (its hash is of a random value), for spending the same
    /// time on an unknown key id as on a known one.
    pub fn dummy() -> KeyRecord {
        KeyRecord {
            access_key_id: String::new(),
            user_id: String::new(),
            account_id: String::new(),
            active: false,
            secret_hash: crate::secret_hash::hash(&random_hex(32)),
        }
    }

    /// The stored hash, so that a caller may remember a verified (key, hash) pair and skip
    /// the slow hash while the stored one has not changed.
    pub fn stored_hash(&self) -> &str {
        &self.secret_hash
    }
}

/// What a token's access key stands for now: checked on every request (cached briefly),
/// so that a deleted key or a disabled or deleted user ends the tokens issued through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyState {
    pub user_id: String,
    pub account_id: String,
    /// The user's role id (a global role's, one of the account's, or empty: none).
    pub role_id: String,
    /// The permissions of an account's own role, as stored (`None` for a global role or none).
    pub custom_permissions: Option<String>,
    pub active: bool,
}

/// Fields of a user that `update_user` may change; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub name: Option<String>,
    pub email: Option<String>,
    pub active: Option<bool>,
    /// A role id already checked by the caller; `Some("")` takes the role away.
    pub role: Option<String>,
}

/// The root tenant created on first start.
#[derive(Debug, Clone)]
pub struct NewRoot {
    pub account_id: String,
    pub name: String,
    pub access_key_id: String,
    pub secret_key: String,
}

/// The form access-key secrets were stored in before migration 10's release: kept only to
/// verify (and then re-hash) keys made before it.
fn legacy_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The shortest secret an operator may give for the root key.
pub const MIN_SECRET_LEN: usize = 32;

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
        if let Some((id, secret)) = &key {
            if secret.chars().count() < MIN_SECRET_LEN {
                return Err(StoreError::Invalid(format!(
                    "the root secret key must be at least {MIN_SECRET_LEN} characters, found {}",
                    secret.chars().count()
                )));
            }
            if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(StoreError::Invalid("the root access key id must be 1 to 64 letters or digits".into()));
            }
        }
        let account = self.insert_account(account_id, "root", None, "system").await?;
        let user = self.create_user(&account.id, "root", "root@garrison.local", None, "system").await?;
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
        Ok(sqlx::query("SELECT id, name, active, version, created_at, created_by, modified_at, modified_by FROM accounts WHERE id = $1")
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
        Ok(sqlx::query("SELECT id, name, active, version, created_at, created_by, modified_at, modified_by FROM accounts WHERE parent_id = $1 ORDER BY id")
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

    /// Creates a user. The first user of an account is its Administrator whatever was asked
    /// (the reference's rule); others get `role`, Power User by default.
    pub async fn create_user(
        &self,
        account_id: &str,
        name: &str,
        email: &str,
        role: Option<&str>,
        by: &str,
    ) -> Result<User, StoreError> {
        let id = crate::db::new_id();
        let t = now();
        let mut tx = self.write_tx().await?;
        let existing: i64 = sqlx::query("SELECT COUNT(*) FROM users WHERE account_id = $1")
            .bind(account_id)
            .fetch_one(&mut **tx)
            .await?
            .get(0);
        let role = if existing == 0 { ADMINISTRATOR_ROLE_ID } else { role.unwrap_or(POWER_USER_ROLE_ID) };
        let res = sqlx::query(
            "INSERT INTO users (id, account_id, name, email, role_id, active, version, created_at, created_by, modified_at, modified_by) \
             VALUES ($1, $2, $3, $4, $5, 1, 1, $6, $7, $8, $9) ON CONFLICT (account_id, email) DO NOTHING",
        )
        .bind(&id)
        .bind(account_id)
        .bind(name)
        .bind(email)
        .bind(role)
        .bind(t)
        .bind(by)
        .bind(t)
        .bind(by)
        .execute(&mut **tx)
        .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("a user with email {email:?} exists in this account")));
        }
        tx.commit().await?;
        self.get_user(account_id, &id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn get_user(&self, account_id: &str, id: &str) -> Result<Option<User>, StoreError> {
        Ok(sqlx::query("SELECT id, account_id, name, email, role_id, active, version, created_at, created_by, modified_at, modified_by FROM users WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| user_from(&r)))
    }

    pub async fn list_users(&self, account_id: &str) -> Result<Vec<User>, StoreError> {
        Ok(sqlx::query("SELECT id, account_id, name, email, role_id, active, version, created_at, created_by, modified_at, modified_by FROM users WHERE account_id = $1 ORDER BY created_at, id")
            .bind(account_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(user_from)
            .collect())
    }

    /// Active Administrators of an account other than `except`, read in `tx`.
    async fn other_admins(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        account_id: &str,
        except: &str,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM users WHERE account_id = $1 AND role_id = $2 AND active = 1 AND id <> $3")
            .bind(account_id)
            .bind(ADMINISTRATOR_ROLE_ID)
            .bind(except)
            .fetch_one(&mut **tx)
            .await?
            .get(0))
    }

    /// Changes a user. Disabling, or taking the Administrator role from, the account's last
    /// active Administrator is refused (nobody could manage the account's users after).
    /// An update that changes nothing keeps the version.
    pub async fn update_user(
        &self,
        account_id: &str,
        id: &str,
        change: &UserChange,
        by: &str,
    ) -> Result<User, StoreError> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("SELECT id, account_id, name, email, role_id, active, version, created_at, created_by, modified_at, modified_by FROM users WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let current = user_from(&row);
        let current_role: String = row.get("role_id");
        let name = change.name.clone().unwrap_or_else(|| current.name.clone());
        let email = change.email.clone().unwrap_or_else(|| current.email.clone());
        let active = change.active.unwrap_or(current.active);
        let role = change.role.clone().unwrap_or_else(|| current_role.clone());
        if name == current.name && email == current.email && active == current.active && role == current_role {
            return Ok(current);
        }
        let loses_admin =
            current_role == ADMINISTRATOR_ROLE_ID && current.active && (!active || role != ADMINISTRATOR_ROLE_ID);
        if loses_admin && Self::other_admins(&mut tx, account_id, id).await? == 0 {
            return Err(StoreError::Conflict(
                "this is the account's last active Administrator: make another user Administrator first".into(),
            ));
        }
        if email != current.email {
            let taken: i64 =
                sqlx::query("SELECT COUNT(*) FROM users WHERE account_id = $1 AND email = $2 AND id <> $3")
                    .bind(account_id)
                    .bind(&email)
                    .bind(id)
                    .fetch_one(&mut **tx)
                    .await?
                    .get(0);
            if taken > 0 {
                return Err(StoreError::Conflict(format!("a user with email {email:?} exists in this account")));
            }
        }
        sqlx::query(
            "UPDATE users SET name = $1, email = $2, active = $3, role_id = $4, version = version + 1, modified_at = $5, modified_by = $6 WHERE id = $7 AND account_id = $8",
        )
        .bind(&name)
        .bind(&email)
        .bind(if active { 1i64 } else { 0 })
        .bind(&role)
        .bind(now())
        .bind(by)
        .bind(id)
        .bind(account_id)
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        self.get_user(account_id, id).await?.ok_or(StoreError::NotFound)
    }

    /// Deletes a user and every access key of theirs, in one transaction; the account's last
    /// active Administrator is kept (`Conflict`).
    pub async fn delete_user(&self, account_id: &str, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let Some(row) = sqlx::query("SELECT role_id, active FROM users WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .fetch_optional(&mut **tx)
            .await?
        else {
            return Ok(false);
        };
        let is_admin = row.get::<String, _>(0) == ADMINISTRATOR_ROLE_ID && row.get::<i64, _>(1) != 0;
        if is_admin && Self::other_admins(&mut tx, account_id, id).await? == 0 {
            return Err(StoreError::Conflict(
                "this is the account's last active Administrator: make another user Administrator first".into(),
            ));
        }
        sqlx::query("DELETE FROM access_keys WHERE user_id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM users WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// What an access key stands for now (`None`: the key is gone).
    pub async fn key_state(&self, key_id: &str) -> Result<Option<KeyState>, StoreError> {
        Ok(sqlx::query(
            "SELECT k.user_id, k.account_id, u.role_id, u.active, r.permissions FROM access_keys k JOIN users u ON u.id = k.user_id AND u.account_id = k.account_id LEFT JOIN roles r ON r.id = u.role_id AND r.account_id = u.account_id WHERE k.id = $1",
        )
        .bind(key_id)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| KeyState {
            user_id: r.get(0),
            account_id: r.get(1),
            role_id: r.get(2),
            active: r.get::<i64, _>(3) != 0,
            custom_permissions: r.get(4),
        }))
    }

    /// Replaces a key's legacy hash by an argon2id one, after a successful sign-in with it.
    pub async fn upgrade_key_hash(&self, key_id: &str, secret: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE access_keys SET secret_hash = $1 WHERE id = $2")
            .bind(crate::secret_hash::hash(secret))
            .bind(key_id)
            .execute(&self.pool)
            .await?;
        Ok(())
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
            .bind(crate::secret_hash::hash(secret))
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
        let mut k = self.get_access_key(account_id, user_id, &key_id).await?.ok_or(StoreError::NotFound)?;
        k.secret_key = Some(secret);
        Ok(k)
    }

    pub async fn get_access_key(
        &self,
        account_id: &str,
        user_id: &str,
        key_id: &str,
    ) -> Result<Option<AccessKey>, StoreError> {
        Ok(sqlx::query("SELECT id, user_id, account_id, label, created_at, created_by FROM access_keys WHERE id = $1 AND user_id = $2 AND account_id = $3")
            .bind(key_id)
            .bind(user_id)
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| key_from(&r)))
    }

    pub async fn list_access_keys(&self, account_id: &str, user_id: &str) -> Result<Vec<AccessKey>, StoreError> {
        Ok(sqlx::query("SELECT id, user_id, account_id, label, created_at, created_by FROM access_keys WHERE user_id = $1 AND account_id = $2 ORDER BY created_at, id")
            .bind(user_id)
            .bind(account_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(key_from)
            .collect())
    }

    pub async fn delete_access_key(&self, account_id: &str, user_id: &str, key_id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM access_keys WHERE id = $1 AND user_id = $2 AND account_id = $3")
            .bind(key_id)
            .bind(user_id)
            .bind(account_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Looks up an access key for authentication.
    pub async fn find_key(&self, key_id: &str) -> Result<Option<KeyRecord>, StoreError> {
        Ok(sqlx::query(
            "SELECT k.id, k.user_id, k.account_id, k.secret_hash, u.active FROM access_keys k JOIN users u ON u.id = k.user_id AND u.account_id = k.account_id WHERE k.id = $1",
        )
        .bind(key_id)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| KeyRecord {
            access_key_id: r.get(0),
            user_id: r.get(1),
            account_id: r.get(2),
            secret_hash: r.get(3),
            active: r.get::<i64, _>(4) != 0,
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
        active: r.get::<i64, _>("active") != 0,
        locked: false,
        version: r.get("version"),
        role_ids: Some(r.get::<String, _>("role_id")).filter(|id| !id.is_empty()).into_iter().collect(),
        created: stamp(r, "created_at", "created_by"),
        modified: stamp(r, "modified_at", "modified_by"),
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
