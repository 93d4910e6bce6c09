//! Scan schedules and scan controls (expedite, stop) per deployment.

use garrison_model::schedule::{ScanControl, Schedule};
use sqlx::Row;

use crate::db::{Store, StoreError};

fn parse<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("scan schedule: {e}")))
}

fn text<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store {
    /// Stores a schedule, new or replacing the one of its id.
    pub async fn put_schedule(&self, account_id: &str, deployment_id: &str, s: &Schedule) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO scan_schedules (deployment_id, id, account_id, body) VALUES ($1, $2, $3, $4) ON CONFLICT (deployment_id, id) DO UPDATE SET body = excluded.body",
        )
        .bind(deployment_id)
        .bind(&s.id)
        .bind(account_id)
        .bind(text(s)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The deployment's stored schedules, by id.
    pub async fn list_schedules(&self, account_id: &str, deployment_id: &str) -> Result<Vec<Schedule>, StoreError> {
        let rows =
            sqlx::query("SELECT body FROM scan_schedules WHERE account_id = $1 AND deployment_id = $2 ORDER BY id")
                .bind(account_id)
                .bind(deployment_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| parse(&r.get::<String, _>(0))).collect()
    }

    pub async fn delete_schedule(&self, account_id: &str, deployment_id: &str, id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM scan_schedules WHERE account_id = $1 AND deployment_id = $2 AND id = $3")
            .bind(account_id)
            .bind(deployment_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records an expedite or a stop for an asset (replacing what was there for it).
    pub async fn put_scan_control(&self, deployment_id: &str, c: &ScanControl) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO scan_controls (deployment_id, asset_key, body) VALUES ($1, $2, $3) ON CONFLICT (deployment_id, asset_key) DO UPDATE SET body = excluded.body",
        )
        .bind(deployment_id)
        .bind(&c.key)
        .bind(text(c)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn scan_controls(&self, deployment_id: &str) -> Result<Vec<ScanControl>, StoreError> {
        let rows = sqlx::query("SELECT body FROM scan_controls WHERE deployment_id = $1 ORDER BY asset_key")
            .bind(deployment_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| parse(&r.get::<String, _>(0))).collect()
    }
}
