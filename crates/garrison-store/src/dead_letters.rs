//! Input the collector could not use (a malformed message, an unreadable log object, a
//! record of an unknown shape), kept with the reason so that an operator can look, while
//! the queue moves on.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::db::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    pub deployment_id: String,
    /// The queue message id, or `s3://bucket/key` of a log object.
    pub source: String,
    pub reason: String,
    /// The start of the input, for a human to recognise it.
    pub excerpt: String,
}

/// Kept per entry: enough to recognise the input, not a copy of it.
pub const EXCERPT_CHARS: usize = 512;

impl Store {
    pub async fn add_dead_letter(&self, account_id: &str, d: &DeadLetter) -> Result<(), StoreError> {
        let excerpt: String = d.excerpt.chars().take(EXCERPT_CHARS).collect();
        let reason: String = d.reason.chars().take(2000).collect();
        sqlx::query(
            "INSERT INTO dead_letters (id, at_ms, account_id, deployment_id, source, reason, excerpt) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(d.at_ms)
        .bind(account_id)
        .bind(&d.deployment_id)
        .bind(&d.source)
        .bind(reason)
        .bind(excerpt)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest `limit` entries of a deployment, newest first.
    pub async fn dead_letters(
        &self,
        account_id: &str,
        deployment_id: &str,
        limit: i64,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_ms, deployment_id, source, reason, excerpt FROM dead_letters WHERE account_id = $1 AND deployment_id = $2 ORDER BY at_ms DESC, id LIMIT $3",
        )
        .bind(account_id)
        .bind(deployment_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| DeadLetter {
                at_ms: r.get(0),
                deployment_id: r.get(1),
                source: r.get(2),
                reason: r.get(3),
                excerpt: r.get(4),
            })
            .collect())
    }
}
