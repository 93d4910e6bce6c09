//! Tuning options (otis) per account, keyed by their derived id.

use garrison_model::otis::TuningOption;
use sqlx::Row;

use crate::db::{Store, StoreError};

fn parse(s: &str) -> Result<TuningOption, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("option: {e}")))
}

impl Store {
    /// Stores a new option; `false` when the account already has one of that name and
    /// scope (the same id).
    pub async fn create_option(&self, account_id: &str, o: &TuningOption) -> Result<bool, StoreError> {
        let body = serde_json::to_string(o).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let r = sqlx::query(
            "INSERT INTO tuning_options (account_id, id, name, body) VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, id) DO NOTHING",
        )
        .bind(account_id)
        .bind(&o.id)
        .bind(&o.name)
        .bind(body)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Replaces an option's value; `false` when the account has no such option.
    pub async fn update_option(&self, account_id: &str, o: &TuningOption) -> Result<bool, StoreError> {
        let body = serde_json::to_string(o).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let r = sqlx::query("UPDATE tuning_options SET body = $1 WHERE account_id = $2 AND id = $3")
            .bind(body)
            .bind(account_id)
            .bind(&o.id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The account's options (of `name` when given), by name then id.
    pub async fn list_options(&self, account_id: &str, name: Option<&str>) -> Result<Vec<TuningOption>, StoreError> {
        let rows = match name {
            Some(n) => {
                sqlx::query("SELECT body FROM tuning_options WHERE account_id = $1 AND name = $2 ORDER BY name, id")
                    .bind(account_id)
                    .bind(n)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT body FROM tuning_options WHERE account_id = $1 ORDER BY name, id")
                    .bind(account_id)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(|r| parse(&r.get::<String, _>(0))).collect()
    }

    pub async fn get_option(&self, account_id: &str, id: &str) -> Result<Option<TuningOption>, StoreError> {
        sqlx::query("SELECT body FROM tuning_options WHERE account_id = $1 AND id = $2")
            .bind(account_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| parse(&r.get::<String, _>(0)))
            .transpose()
    }

    pub async fn delete_option(&self, account_id: &str, id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM tuning_options WHERE account_id = $1 AND id = $2")
            .bind(account_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }
}
