//! The latest discovery snapshot of each deployment, and deployment status updates made
//! by the engine (which do not count as user edits: `version` stays).

use garrison_model::deployment::{Deployment, Status};
use garrison_model::snapshot::Snapshot;
use sqlx::Row;

use crate::db::{Store, StoreError};

impl Store {
    pub async fn put_snapshot(&self, account_id: &str, deployment_id: &str, snap: &Snapshot) -> Result<(), StoreError> {
        let body = serde_json::to_string(snap).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO snapshots (deployment_id, account_id, taken_at, body) VALUES ($1, $2, $3, $4) ON CONFLICT (deployment_id) DO UPDATE SET taken_at = excluded.taken_at, body = excluded.body",
        )
        .bind(deployment_id)
        .bind(account_id)
        .bind(snap.taken_at)
        .bind(body)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get_snapshot(&self, account_id: &str, deployment_id: &str) -> Result<Option<Snapshot>, StoreError> {
        sqlx::query("SELECT body FROM snapshots WHERE deployment_id = $1 AND account_id = $2")
            .bind(deployment_id)
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| {
                serde_json::from_str(&r.get::<String, _>(0)).map_err(|e| StoreError::Corrupt(format!("snapshot: {e}")))
            })
            .transpose()
    }

    /// Sets a deployment's status; a user edit in between is kept (the status is applied
    /// to the new version). `false` when the deployment is gone.
    pub async fn set_status(&self, account_id: &str, id: &str, status: Status) -> Result<bool, StoreError> {
        for _ in 0..8 {
            let Some(mut d) = self.get_deployment_fresh(account_id, id).await? else { return Ok(false) };
            if d.status.status == status.status
                && d.status.message == status.message
                && d.status.reason == status.reason
            {
                return Ok(true);
            }
            let previous = d.status.status;
            d.status = status.clone();
            let body = serde_json::to_string(&d).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let mut tx = self.write_tx().await?;
            let r = sqlx::query(
                "UPDATE deployments SET body = $1, format = $5 WHERE id = $2 AND account_id = $3 AND version = $4",
            )
            .bind(body.as_str())
            .bind(id)
            .bind(account_id)
            .bind(d.version)
            .bind(garrison_model::deployment::JSON_FORMAT)
            .execute(&mut **tx)
            .await?;
            if r.rows_affected() == 1 {
                // A change of state (not of message) is told to subscribers.
                if previous != d.status.status {
                    let n =
                        garrison_model::notify::status_notice(&crate::db::new_id(), &d, previous, crate::db::now_ms());
                    self.enqueue_in(&mut tx, &n).await?;
                }
                let generation = crate::objects::bump(&mut tx).await?;
                tx.commit().await?;
                self.cache.wrote(generation, id, Some(crate::cache::Cached::stored(account_id, body)));
                return Ok(true);
            }
        }
        Err(StoreError::Conflict("the deployment kept changing".into()))
    }

    /// Every deployment of every account (the engine's schedule).
    pub async fn all_deployments(&self) -> Result<Vec<Deployment>, StoreError> {
        sqlx::query("SELECT body FROM deployments ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                serde_json::from_str(&r.get::<String, _>(0))
                    .map_err(|e| StoreError::Corrupt(format!("deployment body: {e}")))
            })
            .collect()
    }
}
