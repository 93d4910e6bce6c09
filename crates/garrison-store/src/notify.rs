//! Notifications: webhook connections (their signing secret and Authorization header
//! sealed), subscriptions, and the delivery outbox. A notice is put in the outbox in the
//! transaction of the change it tells (a finding recorded, a status set), so a change
//! committed is a notice owed: delivered at least once, or dead-lettered with its error.

use garrison_model::Stamp;
use garrison_model::notify::{Connection, ConnectionSpec, Notice, Subscription, SubscriptionSpec};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::db::{Store, StoreError, new_id, now, now_ms};

/// A connection's sealed parts.
#[derive(Clone, Serialize, Deserialize)]
pub struct ConnectionSecrets {
    /// The HMAC key of the signature header.
    pub signing_secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_header: Option<String>,
}

impl std::fmt::Debug for ConnectionSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionSecrets(sealed)")
    }
}

/// One notice owed to one connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The receipt handle of a dead letter.
    pub id: String,
    pub notification_id: String,
    pub account_id: String,
    pub connection_id: String,
    pub notification_type: String,
    pub body: serde_json::Value,
    /// pending | sent | dead
    pub state: String,
    pub attempts: i64,
    pub next_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_ms: i64,
}

pub(crate) fn connection_ctx(account_id: &str, id: &str) -> String {
    format!("connection:{account_id}:{id}")
}

fn json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn parse<T: for<'de> Deserialize<'de>>(s: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

const DELIVERY_COLUMNS: &str =
    "id, notice_id, account_id, connection_id, notice_type, body, state, attempts, next_ms, last_error, created_ms";

fn delivery(r: &sqlx::any::AnyRow) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: r.get(0),
        notification_id: r.get(1),
        account_id: r.get(2),
        connection_id: r.get(3),
        notification_type: r.get(4),
        body: parse(&r.get::<String, _>(5), "delivery body")?,
        state: r.get(6),
        attempts: r.get(7),
        next_ms: r.get(8),
        last_error: r.get(9),
        created_ms: r.get(10),
    })
}

impl Store {
    /// Creates a connection; its signing secret is returned this once.
    pub async fn create_connection(
        &self,
        account_id: &str,
        spec: ConnectionSpec,
        by: &str,
    ) -> Result<(Connection, String), StoreError> {
        let id = new_id();
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let signing_secret = format!("gsec_{}", hex::encode(raw));
        let stamp = Stamp { at: now(), by: by.into() };
        let auth_header = spec.auth_header.clone().filter(|a| !a.is_empty());
        let c = spec.into_connection(&id, account_id, auth_header.is_some(), stamp.clone(), stamp);
        let secrets = ConnectionSecrets { signing_secret: signing_secret.clone(), auth_header };
        let sealed = self.sealer.seal(&connection_ctx(account_id, &id), json(&secrets)?.as_bytes());
        sqlx::query("INSERT INTO connections (id, account_id, body, sealed) VALUES ($1, $2, $3, $4)")
            .bind(&id)
            .bind(account_id)
            .bind(json(&c)?)
            .bind(sealed)
            .execute(&self.pool)
            .await?;
        Ok((c, signing_secret))
    }

    pub async fn list_connections(&self, account_id: &str) -> Result<Vec<Connection>, StoreError> {
        sqlx::query("SELECT body FROM connections WHERE account_id = $1 ORDER BY id")
            .bind(account_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| parse(&r.get::<String, _>(0), "connection"))
            .collect()
    }

    pub async fn get_connection(&self, account_id: &str, id: &str) -> Result<Option<Connection>, StoreError> {
        Ok(self.connection_row(account_id, id).await?.map(|(c, _)| c))
    }

    /// A connection with its opened secrets (for sending).
    pub async fn connection_row(
        &self,
        account_id: &str,
        id: &str,
    ) -> Result<Option<(Connection, ConnectionSecrets)>, StoreError> {
        let Some(r) = sqlx::query("SELECT body, sealed FROM connections WHERE account_id = $1 AND id = $2")
            .bind(account_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let c: Connection = parse(&r.get::<String, _>(0), "connection")?;
        let plain = self.sealer.open(&connection_ctx(account_id, id), &r.get::<String, _>(1))?;
        let secrets: ConnectionSecrets =
            serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt(format!("connection secrets: {e}")))?;
        Ok(Some((c, secrets)))
    }

    /// Replaces a connection's settings; its signing secret stays, and its Authorization
    /// header unless the request names one (`""` removes it).
    pub async fn update_connection(
        &self,
        account_id: &str,
        id: &str,
        spec: ConnectionSpec,
        by: &str,
    ) -> Result<Option<Connection>, StoreError> {
        let Some((old, mut secrets)) = self.connection_row(account_id, id).await? else { return Ok(None) };
        if let Some(a) = &spec.auth_header {
            secrets.auth_header = Some(a.clone()).filter(|a| !a.is_empty());
        }
        let c = spec.into_connection(
            id,
            account_id,
            secrets.auth_header.is_some(),
            old.created,
            Stamp { at: now(), by: by.into() },
        );
        let sealed = self.sealer.seal(&connection_ctx(account_id, id), json(&secrets)?.as_bytes());
        sqlx::query("UPDATE connections SET body = $1, sealed = $2 WHERE account_id = $3 AND id = $4")
            .bind(json(&c)?)
            .bind(sealed)
            .bind(account_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(Some(c))
    }

    /// Deletes a connection and what it was still owed (its dead letters with it).
    pub async fn delete_connection(&self, account_id: &str, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let r = sqlx::query("DELETE FROM connections WHERE account_id = $1 AND id = $2")
            .bind(account_id)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM deliveries WHERE account_id = $1 AND connection_id = $2 AND state <> 'sent'")
            .bind(account_id)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn create_subscription(
        &self,
        account_id: &str,
        spec: SubscriptionSpec,
        by: &str,
    ) -> Result<Subscription, StoreError> {
        let stamp = Stamp { at: now(), by: by.into() };
        let s = spec.into_subscription(new_id(), account_id, stamp);
        sqlx::query("INSERT INTO subscriptions (id, account_id, notification_type, body) VALUES ($1, $2, $3, $4)")
            .bind(&s.id)
            .bind(account_id)
            .bind(&s.notification_type)
            .bind(json(&s)?)
            .execute(&self.pool)
            .await?;
        Ok(s)
    }

    /// Writes a changed subscription back (same id and account).
    pub async fn put_subscription(&self, s: &Subscription) -> Result<bool, StoreError> {
        let r =
            sqlx::query("UPDATE subscriptions SET notification_type = $1, body = $2 WHERE account_id = $3 AND id = $4")
                .bind(&s.notification_type)
                .bind(json(s)?)
                .bind(&s.account_id)
                .bind(&s.id)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn list_subscriptions(
        &self,
        account_id: &str,
        notification_type: Option<&str>,
    ) -> Result<Vec<Subscription>, StoreError> {
        let rows = match notification_type {
            Some(t) => {
                sqlx::query(
                    "SELECT body FROM subscriptions WHERE account_id = $1 AND notification_type = $2 ORDER BY id",
                )
                .bind(account_id)
                .bind(t)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query("SELECT body FROM subscriptions WHERE account_id = $1 ORDER BY id")
                    .bind(account_id)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(|r| parse(&r.get::<String, _>(0), "subscription")).collect()
    }

    pub async fn get_subscription(&self, account_id: &str, id: &str) -> Result<Option<Subscription>, StoreError> {
        sqlx::query("SELECT body FROM subscriptions WHERE account_id = $1 AND id = $2")
            .bind(account_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| parse(&r.get::<String, _>(0), "subscription"))
            .transpose()
    }

    /// Deletes the subscriptions of `ids` the account has, all or none: the ids it does
    /// not have are returned and nothing is deleted.
    pub async fn delete_subscriptions(&self, account_id: &str, ids: &[String]) -> Result<Vec<String>, StoreError> {
        let mut tx = self.write_tx().await?;
        let mut missing = vec![];
        for id in ids {
            let r = sqlx::query("DELETE FROM subscriptions WHERE account_id = $1 AND id = $2")
                .bind(account_id)
                .bind(id)
                .execute(&mut **tx)
                .await?;
            if r.rows_affected() == 0 {
                missing.push(id.clone());
            }
        }
        if missing.is_empty() {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(missing)
    }

    /// Puts `n` in the outbox of every connection a matching subscription names, inside
    /// the caller's transaction. Returns how many deliveries it owes.
    pub(crate) async fn enqueue_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        n: &Notice,
    ) -> Result<usize, StoreError> {
        let subs: Vec<Subscription> =
            sqlx::query("SELECT body FROM subscriptions WHERE account_id = $1 AND notification_type = $2 ORDER BY id")
                .bind(&n.account_id)
                .bind(n.kind.as_str())
                .fetch_all(&mut **tx)
                .await?
                .iter()
                .map(|r| parse(&r.get::<String, _>(0), "subscription"))
                .collect::<Result<_, _>>()?;
        let mut targets: Vec<String> =
            subs.iter().filter(|s| s.wants(n)).flat_map(|s| s.connections().map(str::to_string)).collect();
        targets.sort();
        targets.dedup();
        let mut owed = 0;
        let (at, body) = (now_ms(), json(&n.body)?);
        for c in targets {
            // A connection deleted since the subscription named it gets nothing.
            let r = sqlx::query(
                "INSERT INTO deliveries (id, notice_id, account_id, connection_id, notice_type, body, state, attempts, next_ms, created_ms) \
                 SELECT $1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7 FROM connections WHERE account_id = $3 AND id = $4",
            )
            .bind(new_id())
            .bind(&n.id)
            .bind(&n.account_id)
            .bind(&c)
            .bind(n.kind.as_str())
            .bind(&body)
            .bind(at)
            .execute(&mut **tx)
            .await?;
            owed += r.rows_affected() as usize;
        }
        Ok(owed)
    }

    /// Up to `limit` deliveries due at `now_ms`, each claimed for `lease_ms` (another
    /// worker does not take it meanwhile; if this one dies, it is due again after).
    pub async fn claim_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = 'pending' AND next_ms <= $1 ORDER BY next_ms, id LIMIT {limit}"
        );
        let due: Vec<Delivery> = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(delivery)
            .collect::<Result<_, _>>()?;
        let mut claimed = vec![];
        for mut d in due {
            let r =
                sqlx::query("UPDATE deliveries SET next_ms = $1 WHERE id = $2 AND state = 'pending' AND next_ms = $3")
                    .bind(now_ms + lease_ms)
                    .bind(&d.id)
                    .bind(d.next_ms)
                    .execute(&self.pool)
                    .await?;
            if r.rows_affected() == 1 {
                d.next_ms = now_ms + lease_ms;
                claimed.push(d);
            }
        }
        Ok(claimed)
    }

    /// The outcome of one attempt: `sent`, or `pending` again at `next_ms`, or `dead`.
    pub async fn delivery_attempted(
        &self,
        id: &str,
        state: &str,
        next_ms: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE deliveries SET state = $1, attempts = attempts + 1, next_ms = $2, last_error = $3, done_ms = $4 WHERE id = $5",
        )
        .bind(state)
        .bind(next_ms)
        .bind(error)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The account's deliveries in `state` (oldest first), at most `max`.
    pub async fn deliveries(&self, account_id: &str, state: &str, max: usize) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE account_id = $1 AND state = $2 ORDER BY created_ms, id LIMIT {max}"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(account_id)
            .bind(state)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(delivery)
            .collect()
    }

    /// Puts up to `max` of the account's dead letters back in the outbox, due now, with
    /// their attempts counted afresh.
    pub async fn reenqueue_dead(&self, account_id: &str, max: usize) -> Result<usize, StoreError> {
        let dead = self.deliveries(account_id, "dead", max).await?;
        let mut tx = self.write_tx().await?;
        for d in &dead {
            sqlx::query(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_ms = $1 WHERE id = $2 AND state = 'dead'",
            )
            .bind(now_ms())
            .bind(&d.id)
            .execute(&mut **tx)
            .await?;
        }
        tx.commit().await?;
        Ok(dead.len())
    }

    /// Deletes the account's dead letters with these receipt handles; how many went.
    pub async fn delete_dead(&self, account_id: &str, ids: &[String]) -> Result<usize, StoreError> {
        let mut gone = 0;
        for id in ids {
            let r = sqlx::query("DELETE FROM deliveries WHERE account_id = $1 AND id = $2 AND state = 'dead'")
                .bind(account_id)
                .bind(id)
                .execute(&self.pool)
                .await?;
            gone += r.rows_affected() as usize;
        }
        Ok(gone)
    }

    /// How many deliveries are in each state, over every account (for /metrics).
    pub async fn delivery_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query("SELECT state, COUNT(*) FROM deliveries GROUP BY state ORDER BY state")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }
}
