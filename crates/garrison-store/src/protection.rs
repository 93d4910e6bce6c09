//! Protection state: the records of what garrison owns or adopted per deployment, the
//! audit log of every AWS write, the per-deployment generation that fences stale
//! executors, the latest protection report, and deployments waiting to be uninstalled.

use garrison_model::deployment::Deployment;
use garrison_model::protection::{Owned, OwnedItem};
use garrison_model::report::Report;
use sqlx::Row;

use crate::db::{Store, StoreError, now};

pub use garrison_model::audit::AuditEntry;

/// A query that reads `AuditEntry` columns in `audit_entry`'s order, then `$rest`.
macro_rules! audit_select {
    ($rest:literal) => {
        concat!("SELECT at_ms, deployment_id, generation, region, call, resource, item_key, outcome, message", $rest)
    };
}

fn audit_entry(r: &sqlx::any::AnyRow) -> AuditEntry {
    AuditEntry {
        at_ms: r.get(0),
        deployment_id: r.get(1),
        generation: r.get(2),
        region: r.get(3),
        call: r.get(4),
        resource: r.get(5),
        key: r.get(6),
        outcome: r.get(7),
        message: r.get(8),
    }
}

fn corrupt(what: &str, e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

impl Store {
    pub async fn owned(&self, deployment_id: &str) -> Result<Owned, StoreError> {
        let rows = sqlx::query("SELECT body FROM owned_resources WHERE deployment_id = $1")
            .bind(deployment_id)
            .fetch_all(&self.pool)
            .await?;
        let mut owned = Owned::default();
        for r in rows {
            let item: OwnedItem = serde_json::from_str(&r.get::<String, _>(0)).map_err(|e| corrupt("owned", e))?;
            owned.items.insert(item.key.clone(), item);
        }
        Ok(owned)
    }

    /// Every deployment that owns an item under `key`, with that item: one statement, by the
    /// `owned_resources_key` index, whatever the number of deployments without one.
    pub async fn deployments_owning(&self, key: &str) -> Result<Vec<(Deployment, OwnedItem)>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.body, o.body FROM owned_resources o JOIN deployments d ON d.id = o.deployment_id WHERE o.key = $1 ORDER BY o.deployment_id",
        )
        .bind(key)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let d: Deployment =
                    serde_json::from_str(&r.get::<String, _>(0)).map_err(|e| corrupt("deployment body", e))?;
                let item: OwnedItem = serde_json::from_str(&r.get::<String, _>(1)).map_err(|e| corrupt("owned", e))?;
                Ok((d, item))
            })
            .collect()
    }

    pub async fn put_owned(&self, account_id: &str, deployment_id: &str, item: &OwnedItem) -> Result<(), StoreError> {
        let body = serde_json::to_string(item).map_err(|e| corrupt("owned", e))?;
        sqlx::query(
            "INSERT INTO owned_resources (deployment_id, key, account_id, body) VALUES ($1, $2, $3, $4) ON CONFLICT (deployment_id, key) DO UPDATE SET body = excluded.body",
        )
        .bind(deployment_id)
        .bind(&item.key)
        .bind(account_id)
        .bind(body)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn remove_owned(&self, deployment_id: &str, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM owned_resources WHERE deployment_id = $1 AND key = $2")
            .bind(deployment_id)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Starts a new executor generation for the deployment; older executors see they are stale.
    pub async fn claim_generation(&self, account_id: &str, deployment_id: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO protection (deployment_id, account_id, generation, updated) VALUES ($1, $2, 1, $3) ON CONFLICT (deployment_id) DO UPDATE SET generation = protection.generation + 1 RETURNING generation",
        )
        .bind(deployment_id)
        .bind(account_id)
        .bind(now())
        .fetch_one(&self.pool)
        .await?
        .get(0))
    }

    pub async fn generation(&self, deployment_id: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT generation FROM protection WHERE deployment_id = $1")
            .bind(deployment_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.get(0))
            .unwrap_or(0))
    }

    /// Stores the latest protection report (JSON) for the deployment.
    pub async fn put_report(&self, account_id: &str, deployment_id: &str, report: &Report) -> Result<(), StoreError> {
        let body = serde_json::to_string(report).map_err(|e| corrupt("report", e))?;
        sqlx::query(
            "INSERT INTO protection (deployment_id, account_id, generation, updated, body) VALUES ($1, $2, 0, $3, $4) ON CONFLICT (deployment_id) DO UPDATE SET updated = excluded.updated, body = excluded.body",
        )
        .bind(deployment_id)
        .bind(account_id)
        .bind(now())
        .bind(body)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get_report(&self, account_id: &str, deployment_id: &str) -> Result<Option<Report>, StoreError> {
        let row = sqlx::query("SELECT body FROM protection WHERE deployment_id = $1 AND account_id = $2")
            .bind(deployment_id)
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?;
        // One an earlier release wrote in another shape counts as none: the next run writes it again.
        Ok(row.and_then(|r| r.get::<Option<String>, _>(0)).and_then(|b| garrison_model::report::read_stored(&b)))
    }

    pub async fn append_audit(&self, account_id: &str, entries: &[AuditEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for e in entries {
            insert_audit(&mut tx, account_id, e).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a write before it is made (its outcome `pending`); returns the entry's id
    /// for `audit_outcome`. Committed before this returns: the caller makes the call only
    /// once its record is durable.
    pub async fn audit_intent(&self, account_id: &str, entry: &AuditEntry) -> Result<String, StoreError> {
        let mut tx = self.write_tx().await?;
        let id = insert_audit(&mut tx, account_id, entry).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Completes a write-ahead entry with how the call ended. Only a `pending` entry
    /// changes: an outcome is never rewritten.
    pub async fn audit_outcome(
        &self,
        account_id: &str,
        id: &str,
        outcome: &str,
        message: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE audit_log SET outcome = $1, message = $2 WHERE id = $3 AND account_id = $4 AND outcome = $5",
        )
        .bind(outcome)
        .bind(message)
        .bind(id)
        .bind(account_id)
        .bind(garrison_model::audit::PENDING)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A page of the audit log, newest first: at most `limit` entries older than `before`
    /// (the `(at_ms, entry id)` of the last entry of the previous page), each with its id.
    pub async fn audit_page(
        &self,
        account_id: &str,
        deployment_id: &str,
        before: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<(String, AuditEntry)>, StoreError> {
        let (at, id) = before.unwrap_or((i64::MAX, ""));
        let rows = sqlx::query(audit_select!(
            ", id FROM audit_log \
             WHERE account_id = $1 AND deployment_id = $2 AND (at_ms < $3 OR (at_ms = $3 AND id < $4)) \
             ORDER BY at_ms DESC, id DESC LIMIT $5"
        ))
        .bind(account_id)
        .bind(deployment_id)
        .bind(at)
        .bind(id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(9), audit_entry(r))).collect())
    }

    /// The audit log of a deployment (also after it was removed), oldest first.
    pub async fn audit_log(
        &self,
        account_id: &str,
        deployment_id: &str,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(audit_select!(
            " FROM audit_log WHERE account_id = $1 AND deployment_id = $2 ORDER BY at_ms, id LIMIT $3"
        ))
        .bind(account_id)
        .bind(deployment_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(audit_entry).collect())
    }

    /// Whether the account has (or had, for its audit log) a deployment of this id: a live
    /// one, one being removed, or one whose AWS writes are in the audit log.
    pub async fn deployment_known(&self, account_id: &str, id: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "SELECT 1 FROM deployments WHERE id = $1 AND account_id = $2 \
             UNION ALL SELECT 1 FROM removals WHERE deployment_id = $1 AND account_id = $2 \
             UNION ALL SELECT 1 FROM audit_log WHERE deployment_id = $1 AND account_id = $2",
        )
        .bind(id)
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?
        .is_some())
    }

    /// Moves a deployment to the removal queue: it disappears from the API at once, its
    /// credentials stay in use until the uninstall is verified, and any executor still at
    /// work on it is fenced off. `false` when there is no such deployment.
    pub async fn request_removal(&self, account_id: &str, id: &str, by: &str) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let Some(row) = sqlx::query("SELECT body FROM deployments WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .fetch_optional(&mut **tx)
            .await?
        else {
            return Ok(false);
        };
        let body: String = row.get(0);
        sqlx::query(
            "INSERT INTO removals (deployment_id, account_id, requested_at, requested_by, body) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (deployment_id) DO NOTHING",
        )
        .bind(id)
        .bind(account_id)
        .bind(now())
        .bind(by)
        .bind(body)
        .execute(&mut **tx)
        .await?;
        sqlx::query("DELETE FROM deployments WHERE id = $1").bind(id).execute(&mut **tx).await?;
        sqlx::query(
            "INSERT INTO protection (deployment_id, account_id, generation, updated) VALUES ($1, $2, 1, $3) ON CONFLICT (deployment_id) DO UPDATE SET generation = protection.generation + 1",
        )
        .bind(id)
        .bind(account_id)
        .bind(now())
        .execute(&mut **tx)
        .await?;
        let generation = crate::objects::bump(&mut tx).await?;
        tx.commit().await?;
        self.cache.wrote(generation, id, None);
        Ok(true)
    }

    /// Deployments waiting for their uninstall.
    pub async fn removals(&self) -> Result<Vec<Deployment>, StoreError> {
        sqlx::query("SELECT body FROM removals ORDER BY requested_at, deployment_id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| serde_json::from_str(&r.get::<String, _>(0)).map_err(|e| corrupt("removal", e)))
            .collect()
    }

    pub async fn pending_removals(&self, account_id: &str) -> Result<Vec<Deployment>, StoreError> {
        Ok(self.removals().await?.into_iter().filter(|d| d.account_id == account_id).collect())
    }

    /// The uninstall is verified: forget the deployment entirely (its audit log stays).
    pub async fn finish_removal(&self, deployment_id: &str) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        for q in [
            "DELETE FROM removals WHERE deployment_id = $1",
            "DELETE FROM deployment_credentials WHERE deployment_id = $1",
            "DELETE FROM owned_resources WHERE deployment_id = $1",
            "DELETE FROM protection WHERE deployment_id = $1",
            "DELETE FROM snapshots WHERE deployment_id = $1",
            // Its findings: a deployment made again later starts from what AWS says then.
            "DELETE FROM findings WHERE deployment_id = $1",
            "DELETE FROM scan_schedules WHERE deployment_id = $1",
            "DELETE FROM scan_controls WHERE deployment_id = $1",
            // Its appliances are gone: their tokens and credentials with them.
            "DELETE FROM appliance_bootstraps WHERE deployment_id = $1",
            "DELETE FROM appliances WHERE deployment_id = $1",
            "DELETE FROM appliance_refusals WHERE deployment_id = $1",
            "DELETE FROM health_items WHERE deployment_id = $1",
            "DELETE FROM appliance_replacements WHERE deployment_id = $1",
            // Its queue's lease (the queue is gone); the deployment's own lease is released
            // by the run that removed it.
            "DELETE FROM leases WHERE deployment_id = 'collect:' || $1",
        ] {
            sqlx::query(q).bind(deployment_id).execute(&mut **tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn insert_audit(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    account_id: &str,
    e: &AuditEntry,
) -> Result<String, StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO audit_log (id, at_ms, account_id, deployment_id, generation, region, call, resource, item_key, outcome, message) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&id)
    .bind(e.at_ms)
    .bind(account_id)
    .bind(&e.deployment_id)
    .bind(e.generation)
    .bind(&e.region)
    .bind(&e.call)
    .bind(&e.resource)
    .bind(&e.key)
    .bind(&e.outcome)
    .bind(&e.message)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}
