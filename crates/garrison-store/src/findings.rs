//! Security findings per deployment, keyed by garrison's finding id: a finding said again
//! is updated in place (one row, its count grows), never duplicated.

use garrison_model::finding::{Finding, FindingStatus, Observation, Severity, Source};
use sqlx::Row;

use crate::db::{Store, StoreError};

/// What recording an observation changed, for notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingChange {
    /// First seen, active.
    Opened,
    /// Seen again; its status did not change.
    Updated,
    /// Archived or closed since.
    Resolved,
    /// Active again after it was resolved.
    Reopened,
}

/// The filters of a findings list.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FindingFilter {
    pub deployment_id: Option<String>,
    /// This severity and above.
    pub severity: Option<Severity>,
    pub status: Option<FindingStatus>,
    pub source: Option<Source>,
    /// Last seen at or after, in milliseconds since the epoch.
    pub since_ms: Option<i64>,
}

fn to_json(f: &Finding) -> Result<String, StoreError> {
    serde_json::to_string(f).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json(s: &str) -> Result<Finding, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store {
    /// Records what an event says of a finding of `deployment_id` (tenant `account_id`).
    pub async fn record_finding(
        &self,
        account_id: &str,
        deployment_id: &str,
        o: Observation,
    ) -> Result<(Finding, FindingChange), StoreError> {
        let mut tx = self.write_tx().await?;
        let lock = if self.backend() == crate::Backend::Postgres { " FOR UPDATE" } else { "" };
        let sql = format!("SELECT body FROM findings WHERE deployment_id = $1 AND id = $2{lock}");
        let had: Option<String> = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(deployment_id)
            .bind(&o.id)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.get(0));
        let (f, change) = match had {
            Some(body) => {
                let mut f = from_json(&body)?;
                let was = f.status;
                f.update(o);
                let change = match (was, f.status) {
                    (FindingStatus::Active, FindingStatus::Resolved) => FindingChange::Resolved,
                    (FindingStatus::Resolved, FindingStatus::Active) => FindingChange::Reopened,
                    _ => FindingChange::Updated,
                };
                sqlx::query(
                    "UPDATE findings SET severity = $3, status = $4, last_seen_ms = $5, body = $6 WHERE deployment_id = $1 AND id = $2",
                )
                .bind(deployment_id)
                .bind(&f.id)
                .bind(f.severity.rank())
                .bind(f.status.as_str())
                .bind(f.last_seen)
                .bind(to_json(&f)?)
                .execute(&mut **tx)
                .await?;
                (f, change)
            }
            None => {
                let f = Finding::new(deployment_id, o);
                sqlx::query(
                    "INSERT INTO findings (deployment_id, id, account_id, source, severity, status, last_seen_ms, body) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(deployment_id)
                .bind(&f.id)
                .bind(account_id)
                .bind(f.source.as_str())
                .bind(f.severity.rank())
                .bind(f.status.as_str())
                .bind(f.last_seen)
                .bind(to_json(&f)?)
                .execute(&mut **tx)
                .await?;
                let change =
                    if f.status == FindingStatus::Active { FindingChange::Opened } else { FindingChange::Resolved };
                (f, change)
            }
        };
        if change != FindingChange::Updated {
            let opened = change != FindingChange::Resolved;
            let n = garrison_model::notify::finding_notice(
                &crate::db::new_id(),
                account_id,
                &f,
                opened,
                crate::db::now_ms(),
            );
            self.enqueue_in(&mut tx, &n).await?;
        }
        tx.commit().await?;
        Ok((f, change))
    }

    /// The tenant's findings that pass `filter`, highest severity first, then the most
    /// recently seen: `limit` of them from `offset`, and how many pass in all.
    pub async fn list_findings(
        &self,
        account_id: &str,
        filter: &FindingFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Finding>, usize), StoreError> {
        let mut clauses = vec!["account_id = $1".to_string()];
        let mut n = 1;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if filter.deployment_id.is_some() {
            clauses.push(format!("deployment_id = {}", next()));
        }
        if filter.severity.is_some() {
            clauses.push(format!("severity >= {}", next()));
        }
        if filter.status.is_some() {
            clauses.push(format!("status = {}", next()));
        }
        if filter.source.is_some() {
            clauses.push(format!("source = {}", next()));
        }
        if filter.since_ms.is_some() {
            clauses.push(format!("last_seen_ms >= {}", next()));
        }
        let cond = clauses.join(" AND ");
        macro_rules! bind_all {
            ($q:expr) => {{
                let mut q = $q.bind(account_id);
                if let Some(d) = &filter.deployment_id {
                    q = q.bind(d.clone());
                }
                if let Some(s) = filter.severity {
                    q = q.bind(s.rank());
                }
                if let Some(s) = filter.status {
                    q = q.bind(s.as_str());
                }
                if let Some(s) = filter.source {
                    q = q.bind(s.as_str());
                }
                if let Some(t) = filter.since_ms {
                    q = q.bind(t);
                }
                q
            }};
        }
        let count_sql = format!("SELECT COUNT(*) FROM findings WHERE {cond}");
        let total: i64 = bind_all!(sqlx::query(sqlx::AssertSqlSafe(count_sql))).fetch_one(&self.pool).await?.get(0);
        let sql = format!(
            "SELECT body FROM findings WHERE {cond} ORDER BY severity DESC, last_seen_ms DESC, deployment_id, id LIMIT {} OFFSET {}",
            limit.min(10_000),
            offset.min(i64::MAX as usize)
        );
        let rows = bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql))).fetch_all(&self.pool).await?;
        let list = rows.iter().map(|r| from_json(&r.get::<String, _>(0))).collect::<Result<Vec<_>, _>>()?;
        Ok((list, total.max(0) as usize))
    }

    /// One finding of the tenant by garrison's id (the first deployment's, should two of
    /// its deployments watch the same AWS account).
    pub async fn get_finding(&self, account_id: &str, id: &str) -> Result<Option<Finding>, StoreError> {
        let row =
            sqlx::query("SELECT body FROM findings WHERE account_id = $1 AND id = $2 ORDER BY deployment_id LIMIT 1")
                .bind(account_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| from_json(&r.get::<String, _>(0))).transpose()
    }

    /// Findings per (source, severity, status), for the metrics.
    pub async fn finding_counts(&self) -> Result<Vec<(String, String, String, i64)>, StoreError> {
        let rows =
            sqlx::query("SELECT source, severity, status, COUNT(*) FROM findings GROUP BY source, severity, status")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let rank: i64 = r.get(1);
                let severity = Severity::ALL.get(rank as usize).map_or("unknown", |s| s.as_str());
                (r.get(0), severity.to_string(), r.get(2), r.get(3))
            })
            .collect())
    }
}
