//! The appliance channel's records: one-time bootstrap tokens (minted at launch, bound to
//! the instance once it exists), the appliances that registered with their credentials, the
//! refusals (a token replayed, expired or used from another instance), and each deployment's
//! health items. Tokens and credentials are kept as SHA-256 hashes only: a 256-bit random
//! secret needs no slow hash, and nothing garrison holds (not even the seal key) turns a row
//! back into a usable secret.

use std::collections::BTreeMap;

use garrison_model::health::{Change, Item, Work};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::db::{Store, StoreError, new_id};

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn secret(prefix: &str) -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    format!("{prefix}_{}", hex::encode(raw))
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("appliance record: {e}"))
}

/// Refusals kept per deployment (the newest).
pub const KEPT_REFUSALS: i64 = 100;

/// Heartbeats closer together than this are answered but not written.
pub const MIN_HEARTBEAT_GAP_MS: i64 = 250;

/// A registered appliance as garrison knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appliance {
    pub id: String,
    pub account_id: String,
    pub deployment_id: String,
    /// Its key in the protection plan.
    pub key: String,
    pub instance_id: String,
    pub role: String,
    pub registered_ms: i64,
    pub last_heartbeat_ms: Option<i64>,
    pub version: String,
    pub uptime_s: u64,
    pub previous_work: Option<Work>,
    pub work: Option<Work>,
}

/// A launch garrison made with a bootstrap token: when, for which key and instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub key: String,
    pub instance_id: Option<String>,
    pub minted_ms: i64,
    pub used: bool,
}

/// Why a registration was refused (recorded, counted, never with the token itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refused {
    /// No such token (or no such credential).
    Unknown,
    /// The token was used already.
    Replayed,
    Expired,
    /// The token was minted for another instance.
    ForeignInstance,
    /// The credential's appliance was removed or replaced.
    Revoked,
}

impl Refused {
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Unknown => "unknown",
            Refused::Replayed => "replayed",
            Refused::Expired => "expired",
            Refused::ForeignInstance => "foreign_instance",
            Refused::Revoked => "revoked",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub at_ms: i64,
    pub instance_id: String,
    pub reason: Refused,
}

/// A silent appliance being replaced: the instance to replace now (the original, or a
/// replacement that never registered), how many replacements were launched, and whether
/// garrison gave up (then it keeps what runs and reports why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    pub key: String,
    pub old_instance_id: String,
    pub tries: i64,
    pub given_up: bool,
    pub updated_ms: i64,
}

/// An appliance launch a bootstrap token is minted for: the tenant and deployment, its key
/// in the plan and role, and the launch's idempotency token (RunInstances' ClientToken).
#[derive(Debug, Clone, Copy)]
pub struct NewLaunch<'a> {
    pub account_id: &'a str,
    pub deployment_id: &'a str,
    pub key: &'a str,
    pub role: &'a str,
    pub launch_token: &'a str,
}

const APPLIANCE_COLUMNS: &str =
    "id, account_id, deployment_id, appliance_key, instance_id, role, registered_ms, last_heartbeat_ms, body";

#[derive(Serialize, Deserialize, Default)]
struct Body {
    version: String,
    uptime_s: u64,
    previous_work: Option<Work>,
    work: Option<Work>,
}

fn appliance(r: &sqlx::any::AnyRow) -> Result<Appliance, StoreError> {
    let body: Body = serde_json::from_str(&r.get::<String, _>(8)).map_err(corrupt)?;
    Ok(Appliance {
        id: r.get(0),
        account_id: r.get(1),
        deployment_id: r.get(2),
        key: r.get(3),
        instance_id: r.get(4),
        role: r.get(5),
        registered_ms: r.get(6),
        last_heartbeat_ms: r.get(7),
        version: body.version,
        uptime_s: body.uptime_s,
        previous_work: body.previous_work,
        work: body.work,
    })
}

impl Store {
    /// A one-time bootstrap token for the appliance about to be launched, valid `ttl_ms`.
    /// Returned this once, in the clear.
    pub async fn mint_bootstrap(&self, l: &NewLaunch<'_>, now_ms: i64, ttl_ms: i64) -> Result<String, StoreError> {
        let NewLaunch { account_id, deployment_id, key, role, launch_token } = *l;
        let token = secret("gbt");
        sqlx::query(
            "INSERT INTO appliance_bootstraps (token_hash, account_id, deployment_id, appliance_key, role, launch_token, instance_id, minted_ms, expires_ms, used_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, NULL)",
        )
        .bind(hash(&token))
        .bind(account_id)
        .bind(deployment_id)
        .bind(key)
        .bind(role)
        .bind(launch_token)
        .bind(now_ms)
        .bind(now_ms + ttl_ms)
        .execute(&self.pool)
        .await?;
        Ok(token)
    }

    /// The launch made with `launch_token` is instance `instance_id`: its tokens (one per
    /// try; a retried RunInstances returns the instance of the first) are bound to it.
    pub async fn bind_bootstrap(
        &self,
        deployment_id: &str,
        launch_token: &str,
        instance_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE appliance_bootstraps SET instance_id = $3 WHERE deployment_id = $1 AND launch_token = $2 AND instance_id IS NULL",
        )
        .bind(deployment_id)
        .bind(launch_token)
        .bind(instance_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The launches of a deployment garrison minted tokens for, by instance (bound ones).
    pub async fn launches(&self, deployment_id: &str) -> Result<Vec<Launch>, StoreError> {
        let rows = sqlx::query(
            "SELECT appliance_key, instance_id, minted_ms, used_ms FROM appliance_bootstraps WHERE deployment_id = $1 AND instance_id IS NOT NULL ORDER BY minted_ms",
        )
        .bind(deployment_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Launch {
                key: r.get(0),
                instance_id: r.get(1),
                minted_ms: r.get(2),
                used: r.get::<Option<i64>, _>(3).is_some(),
            })
            .collect())
    }

    /// First registration: the token is spent (in the same transaction as the appliance it
    /// makes, so that of two concurrent uses one wins) and a credential returned this once.
    /// A previous registration of the same instance is revoked.
    pub async fn register_appliance(
        &self,
        token: &str,
        instance_id: &str,
        version: &str,
        now_ms: i64,
    ) -> Result<Result<(Appliance, String), Refused>, StoreError> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "SELECT account_id, deployment_id, appliance_key, role, instance_id, expires_ms, used_ms FROM appliance_bootstraps WHERE token_hash = $1",
        )
        .bind(hash(token))
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else { return Ok(Err(Refused::Unknown)) };
        let (account_id, deployment_id, key, role): (String, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let bound: Option<String> = row.get(4);
        let refused = if row.get::<Option<i64>, _>(6).is_some() {
            Some(Refused::Replayed)
        } else if bound.as_deref() != Some(instance_id) {
            Some(Refused::ForeignInstance)
        } else if row.get::<i64, _>(5) < now_ms {
            Some(Refused::Expired)
        } else {
            None
        };
        if let Some(r) = refused {
            drop(tx);
            self.record_refusal(&account_id, &deployment_id, instance_id, r, now_ms).await?;
            return Ok(Err(r));
        }
        let spent =
            sqlx::query("UPDATE appliance_bootstraps SET used_ms = $2 WHERE token_hash = $1 AND used_ms IS NULL")
                .bind(hash(token))
                .bind(now_ms)
                .execute(&mut **tx)
                .await?;
        if spent.rows_affected() != 1 {
            drop(tx);
            self.record_refusal(&account_id, &deployment_id, instance_id, Refused::Replayed, now_ms).await?;
            return Ok(Err(Refused::Replayed));
        }
        sqlx::query("UPDATE appliances SET revoked_ms = $3 WHERE deployment_id = $1 AND instance_id = $2 AND revoked_ms IS NULL")
            .bind(&deployment_id)
            .bind(instance_id)
            .bind(now_ms)
            .execute(&mut **tx)
            .await?;
        let credential = secret("gap");
        let a = Appliance {
            id: new_id(),
            account_id,
            deployment_id,
            key,
            instance_id: instance_id.into(),
            role,
            registered_ms: now_ms,
            last_heartbeat_ms: None,
            version: version.into(),
            uptime_s: 0,
            previous_work: None,
            work: None,
        };
        let body = Body { version: version.into(), ..Body::default() };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO appliances ({APPLIANCE_COLUMNS}, credential_hash, revoked_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9, NULL)"
        )))
        .bind(&a.id)
        .bind(&a.account_id)
        .bind(&a.deployment_id)
        .bind(&a.key)
        .bind(&a.instance_id)
        .bind(&a.role)
        .bind(now_ms)
        .bind(serde_json::to_string(&body).map_err(corrupt)?)
        .bind(hash(&credential))
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(Ok((a, credential)))
    }

    /// The live appliance a credential belongs to.
    pub async fn appliance_by_credential(&self, credential: &str) -> Result<Result<Appliance, Refused>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {APPLIANCE_COLUMNS}, revoked_ms FROM appliances WHERE credential_hash = $1"
        )))
        .bind(hash(credential))
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(Err(Refused::Unknown)),
            Some(r) if r.get::<Option<i64>, _>(9).is_some() => Ok(Err(Refused::Revoked)),
            Some(r) => Ok(Ok(appliance(&r)?)),
        }
    }

    /// A heartbeat: the work it reports becomes the last, the last the previous. One that
    /// comes within `MIN_HEARTBEAT_GAP_MS` of the last is answered and not written (an
    /// appliance beating too fast costs garrison no writes); false then.
    pub async fn heartbeat(
        &self,
        a: &Appliance,
        version: &str,
        uptime_s: u64,
        work: &Work,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        if a.last_heartbeat_ms.is_some_and(|last| now_ms - last < MIN_HEARTBEAT_GAP_MS) {
            return Ok(false);
        }
        let body = Body { version: version.into(), uptime_s, previous_work: a.work.clone(), work: Some(work.clone()) };
        sqlx::query("UPDATE appliances SET last_heartbeat_ms = $2, body = $3 WHERE id = $1 AND revoked_ms IS NULL")
            .bind(&a.id)
            .bind(now_ms)
            .bind(serde_json::to_string(&body).map_err(corrupt)?)
            .execute(&self.pool)
            .await?;
        Ok(true)
    }

    /// The live (not revoked) appliances of a deployment.
    pub async fn appliances(&self, deployment_id: &str) -> Result<Vec<Appliance>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {APPLIANCE_COLUMNS} FROM appliances WHERE deployment_id = $1 AND revoked_ms IS NULL ORDER BY appliance_key, registered_ms"
        )))
        .bind(deployment_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(appliance).collect()
    }

    /// Revokes the credentials of the deployment's appliances whose instances are not in
    /// `running` (terminated, replaced, the deployment removed: pass none); how many.
    pub async fn revoke_appliances(
        &self,
        deployment_id: &str,
        running: &[String],
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let mut revoked = 0;
        for a in self.appliances(deployment_id).await? {
            if !running.contains(&a.instance_id) {
                revoked += sqlx::query("UPDATE appliances SET revoked_ms = $2 WHERE id = $1 AND revoked_ms IS NULL")
                    .bind(&a.id)
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
            }
        }
        Ok(revoked)
    }

    /// Revokes the credential of the appliance on `instance_id` (terminated by garrison).
    pub async fn revoke_instance(&self, deployment_id: &str, instance_id: &str, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE appliances SET revoked_ms = $3 WHERE deployment_id = $1 AND instance_id = $2 AND revoked_ms IS NULL")
            .bind(deployment_id)
            .bind(instance_id)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn record_refusal(
        &self,
        account_id: &str,
        deployment_id: &str,
        instance_id: &str,
        reason: Refused,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO appliance_refusals (id, account_id, deployment_id, instance_id, reason, at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new_id())
        .bind(account_id)
        .bind(deployment_id)
        .bind(instance_id)
        .bind(reason.as_str())
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        // Whoever holds a spent token can replay it at will: the record keeps the latest
        // refusals of a deployment, not all of them.
        sqlx::query(
            "DELETE FROM appliance_refusals WHERE deployment_id = $1 AND id NOT IN \
             (SELECT id FROM appliance_refusals WHERE deployment_id = $1 ORDER BY at_ms DESC, id LIMIT $2)",
        )
        .bind(deployment_id)
        .bind(KEPT_REFUSALS)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The deployment's latest refusals, newest first.
    pub async fn refusals(&self, deployment_id: &str, limit: i64) -> Result<Vec<Refusal>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_ms, instance_id, reason FROM appliance_refusals WHERE deployment_id = $1 ORDER BY at_ms DESC, id LIMIT $2",
        )
        .bind(deployment_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let reason: String = r.get(2);
                let reason = serde_json::from_value(serde_json::Value::String(reason)).map_err(corrupt)?;
                Ok(Refusal { at_ms: r.get(0), instance_id: r.get(1), reason })
            })
            .collect()
    }

    /// The deployment's health items, by key (open and concluded).
    pub async fn health_items(&self, deployment_id: &str) -> Result<BTreeMap<String, Item>, StoreError> {
        let rows = sqlx::query("SELECT body FROM health_items WHERE deployment_id = $1 ORDER BY item_key")
            .bind(deployment_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let it: Item = serde_json::from_str(&r.get::<String, _>(0)).map_err(corrupt)?;
                Ok((it.key.clone(), it))
            })
            .collect()
    }

    /// Stores the items that changed; an item opened or concluded is told to its
    /// subscribers (health/opened, health/concluded) in the same transaction.
    pub async fn put_health_items(
        &self,
        account_id: &str,
        deployment_id: &str,
        changed: &[(&Item, &Change)],
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let now = crate::db::now_ms();
        for (it, change) in changed {
            sqlx::query(
                "INSERT INTO health_items (deployment_id, item_key, account_id, body) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (deployment_id, item_key) DO UPDATE SET body = excluded.body",
            )
            .bind(deployment_id)
            .bind(&it.key)
            .bind(account_id)
            .bind(serde_json::to_string(it).map_err(corrupt)?)
            .execute(&mut **tx)
            .await?;
            let opened = match change {
                Change::Opened(_) => true,
                Change::Concluded(_) => false,
                Change::Updated(_) => continue,
            };
            let n = garrison_model::notify::health_notice(&new_id(), account_id, deployment_id, it, opened, now);
            self.enqueue_in(&mut tx, &n).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The replacements of silent appliances in progress or given up, by appliance key.
    pub async fn replacements(&self, deployment_id: &str) -> Result<BTreeMap<String, Replacement>, StoreError> {
        let rows = sqlx::query(
            "SELECT appliance_key, old_instance_id, tries, state, updated_ms FROM appliance_replacements WHERE deployment_id = $1",
        )
        .bind(deployment_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let key: String = r.get(0);
                let state: String = r.get(3);
                (
                    key.clone(),
                    Replacement {
                        key,
                        old_instance_id: r.get(1),
                        tries: r.get(2),
                        given_up: state == "given_up",
                        updated_ms: r.get(4),
                    },
                )
            })
            .collect())
    }

    pub async fn put_replacement(
        &self,
        account_id: &str,
        deployment_id: &str,
        r: &Replacement,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO appliance_replacements (deployment_id, appliance_key, account_id, old_instance_id, tries, state, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (deployment_id, appliance_key) DO UPDATE SET old_instance_id = excluded.old_instance_id, tries = excluded.tries, state = excluded.state, updated_ms = excluded.updated_ms",
        )
        .bind(deployment_id)
        .bind(&r.key)
        .bind(account_id)
        .bind(&r.old_instance_id)
        .bind(r.tries)
        .bind(if r.given_up { "given_up" } else { "requested" })
        .bind(r.updated_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn drop_replacement(&self, deployment_id: &str, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM appliance_replacements WHERE deployment_id = $1 AND appliance_key = $2")
            .bind(deployment_id)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
