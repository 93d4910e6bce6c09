//! Re-sealing every secret under a new key, in one transaction: the tenants' external ids,
//! the credentials' role secrets, the webhook connections' secrets, and the sealed entries of `meta` (the key check, the token
//! signing key). Run with the servers stopped; they start again with the new key.

use sqlx::Row;

use crate::db::{Store, StoreError};
use crate::seal::{SealKey, Sealer};

/// How many sealed values were re-sealed, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotated {
    pub external_ids: usize,
    pub credentials: usize,
    /// Webhook connections' signing secrets and Authorization headers.
    pub connections: usize,
    pub meta: usize,
}

impl Store {
    /// Opens every sealed value with this store's key and seals it again under `new`. All
    /// or nothing: a value that does not open aborts the rotation and nothing changes.
    pub async fn rotate_key(&self, new: &SealKey) -> Result<Rotated, StoreError> {
        let next = Sealer::new(new);
        let mut out = Rotated::default();
        let mut tx = self.write_tx().await?;
        let reseal = |ctx: &str, sealed: &str| -> Result<String, StoreError> {
            let plain = self.sealer.open(ctx, sealed)?;
            Ok(next.seal(ctx, &plain))
        };
        let accounts: Vec<(String, String)> = sqlx::query("SELECT id, sealed_external_id FROM accounts")
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        for (id, sealed) in accounts {
            let value = reseal(&format!("account:{id}:external_id"), &sealed)?;
            sqlx::query("UPDATE accounts SET sealed_external_id = $1 WHERE id = $2")
                .bind(value)
                .bind(&id)
                .execute(&mut **tx)
                .await?;
            out.external_ids += 1;
        }
        let creds: Vec<(String, String, String)> = sqlx::query("SELECT id, account_id, sealed_secret FROM credentials")
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        for (id, account, sealed) in creds {
            let value = reseal(&crate::objects::secret_ctx(&account, &id), &sealed)?;
            sqlx::query("UPDATE credentials SET sealed_secret = $1 WHERE id = $2")
                .bind(value)
                .bind(&id)
                .execute(&mut **tx)
                .await?;
            out.credentials += 1;
        }
        let conns: Vec<(String, String, String)> = sqlx::query("SELECT id, account_id, sealed FROM connections")
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        for (id, account, sealed) in conns {
            let value = reseal(&crate::notify::connection_ctx(&account, &id), &sealed)?;
            sqlx::query("UPDATE connections SET sealed = $1 WHERE id = $2")
                .bind(value)
                .bind(&id)
                .execute(&mut **tx)
                .await?;
            out.connections += 1;
        }
        let metas: Vec<(String, String)> =
            sqlx::query("SELECT key, value FROM meta WHERE key = 'seal_check' OR key LIKE 'secret:%'")
                .fetch_all(&mut **tx)
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
        for (key, sealed) in metas {
            let value = reseal(&format!("meta:{key}"), &sealed)?;
            sqlx::query("UPDATE meta SET value = $1 WHERE key = $2").bind(value).bind(&key).execute(&mut **tx).await?;
            out.meta += 1;
        }
        tx.commit().await?;
        Ok(out)
    }
}
