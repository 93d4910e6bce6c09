//! When the collector last received input for a deployment, per path: the freshness a
//! status reports (a live event feed, trail files only, or the resync alone).

use sqlx::Row;

use crate::db::{Store, StoreError};

/// How a change reached garrison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedPath {
    /// An EventBridge event (the event feed).
    Events,
    /// A CloudTrail log file named by a notification.
    TrailFiles,
}

impl FeedPath {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedPath::Events => "events",
            FeedPath::TrailFiles => "trail_files",
        }
    }
}

/// The newest input seen per path, in milliseconds since the epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedSeen {
    pub events_ms: Option<i64>,
    pub trail_files_ms: Option<i64>,
}

impl Store {
    /// Records input on `path` at `at_ms` (an older time never replaces a newer one).
    pub async fn note_feed_input(
        &self,
        account_id: &str,
        deployment_id: &str,
        path: FeedPath,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO feed_seen (deployment_id, path, account_id, at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (deployment_id, path) DO UPDATE SET at_ms = CASE WHEN excluded.at_ms > feed_seen.at_ms THEN excluded.at_ms ELSE feed_seen.at_ms END",
        )
        .bind(deployment_id)
        .bind(path.as_str())
        .bind(account_id)
        .bind(at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn feed_seen(&self, account_id: &str, deployment_id: &str) -> Result<FeedSeen, StoreError> {
        let rows = sqlx::query("SELECT path, at_ms FROM feed_seen WHERE account_id = $1 AND deployment_id = $2")
            .bind(account_id)
            .bind(deployment_id)
            .fetch_all(&self.pool)
            .await?;
        let mut out = FeedSeen::default();
        for r in rows {
            let path: String = r.try_get("path")?;
            let at: i64 = r.try_get("at_ms")?;
            match path.as_str() {
                "events" => out.events_ms = Some(at),
                "trail_files" => out.trail_files_ms = Some(at),
                _ => {}
            }
        }
        Ok(out)
    }
}
