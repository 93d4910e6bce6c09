//! The shared rate budget (see `garrison_model::budget`): one row per bucket, taken from
//! in one statement. The row lock orders concurrent takers, and the database's clock
//! refills the bucket, so workers on machines whose clocks differ still agree.

use std::time::Duration;

use garrison_model::budget::{SharedBudget, TakeFuture};
use sqlx::Row;

use crate::db::{Backend, Store, StoreError};

const POSTGRES: &str = "INSERT INTO rate_budgets (key, tokens, at_ms) \
     VALUES ($1, $2 - 1, CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS DOUBLE PRECISION)) \
     ON CONFLICT (key) DO UPDATE SET \
       tokens = LEAST($2, rate_budgets.tokens + GREATEST(0, CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS DOUBLE PRECISION) - rate_budgets.at_ms) * $3 / 1000.0) - 1, \
       at_ms = GREATEST(rate_budgets.at_ms, CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS DOUBLE PRECISION)) \
     RETURNING tokens";

const SQLITE: &str = "INSERT INTO rate_budgets (key, tokens, at_ms) \
     VALUES ($1, $2 - 1, (julianday('now') - 2440587.5) * 86400000.0) \
     ON CONFLICT (key) DO UPDATE SET \
       tokens = min($2, rate_budgets.tokens + max(0, (julianday('now') - 2440587.5) * 86400000.0 - rate_budgets.at_ms) * $3 / 1000.0) - 1, \
       at_ms = max(rate_budgets.at_ms, (julianday('now') - 2440587.5) * 86400000.0) \
     RETURNING tokens";

impl Store {
    /// Takes a token from bucket `key`; the wait before the caller's call.
    pub async fn take_token(&self, key: &str, rate_per_sec: f64, burst: f64) -> Result<Duration, StoreError> {
        let sql = if self.backend == Backend::Postgres { POSTGRES } else { SQLITE };
        let left: f64 =
            sqlx::query(sql).bind(key).bind(burst).bind(rate_per_sec).fetch_one(&self.pool).await?.try_get(0)?;
        Ok(if left >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-left / rate_per_sec) })
    }
}

impl Store {
    /// The buckets in use (account/region/service), for tests and operators.
    pub async fn rate_budget_keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query("SELECT key FROM rate_budgets ORDER BY key")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }
}

impl SharedBudget for Store {
    fn take<'a>(&'a self, key: &'a str, rate_per_sec: f64, burst: f64) -> TakeFuture<'a> {
        Box::pin(async move { self.take_token(key, rate_per_sec, burst).await.map_err(|e| e.to_string()) })
    }
}
