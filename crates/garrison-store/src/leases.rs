//! Work leases: a worker holds a deployment for a while before reconciling it, renews the
//! lease as it goes and releases it when done; a lease nobody renews expires and another
//! worker takes it over. Each claim bumps the lease's fence, so a worker that lost its lease
//! (paused past expiry) finds out at its next renewal. One conditional statement per claim:
//! PostgreSQL's row lock re-checks the condition, so of concurrent claimers exactly one wins.

use sqlx::Row;

use crate::db::{Backend, Store, StoreError};

/// A free lease row for deployment `$1`, never claimed and due (nothing reconciled yet); none
/// written if it has one.
pub(crate) const NEW_LEASE: &str = "INSERT INTO leases (deployment_id, holder, previous_holder, expires_at_ms, fence, done_version, next_due_ms) \
     VALUES ($1, '', NULL, 0, 0, -1, 0) ON CONFLICT (deployment_id) DO NOTHING";

/// A lease won: its fence, and the worker it was taken from when that one let it expire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub deployment_id: String,
    pub fence: i64,
    pub taken_from: Option<String>,
}

impl Store {
    /// Claims `deployment_id` for `holder` until `now_ms + ttl_ms`, if nobody else holds an
    /// unexpired lease on it (the holder itself may claim again). None when someone does.
    pub async fn claim_lease(
        &self,
        deployment_id: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Option<Lease>, StoreError> {
        self.claim(deployment_id, holder, now_ms, ttl_ms, None).await
    }

    /// Like `claim_lease`, and only when the deployment is due: its `version` has not been
    /// reconciled yet (see `finish_lease`), or its next periodic run has come.
    pub async fn claim_due(
        &self,
        deployment_id: &str,
        version: i64,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Option<Lease>, StoreError> {
        self.claim(deployment_id, holder, now_ms, ttl_ms, Some(version)).await
    }

    async fn claim(
        &self,
        deployment_id: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
        due_version: Option<i64>,
    ) -> Result<Option<Lease>, StoreError> {
        sqlx::query(NEW_LEASE).bind(deployment_id).execute(&self.pool).await?;
        let due = if due_version.is_some() { " AND (done_version <> $5 OR next_due_ms <= $4)" } else { "" };
        let sql = format!(
            "UPDATE leases SET {} WHERE deployment_id = $1 AND (holder = $2 OR expires_at_ms <= $4){due} {WON}",
            take("$2", "$3")
        );
        let mut q =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(deployment_id).bind(holder).bind(now_ms + ttl_ms).bind(now_ms);
        if let Some(v) = due_version {
            q = q.bind(v);
        }
        Ok(q.fetch_optional(&self.pool).await?.map(|r| won(&r, holder)))
    }

    /// Ends a run: `version` is reconciled, the next periodic run is due at `next_due_ms`,
    /// and the lease is free at once. False when the lease was lost meanwhile.
    pub async fn finish_lease(
        &self,
        lease: &Lease,
        holder: &str,
        version: i64,
        next_due_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE leases SET expires_at_ms = 0, done_version = $4, next_due_ms = $5 WHERE deployment_id = $1 AND holder = $2 AND fence = $3",
        )
        .bind(&lease.deployment_id)
        .bind(holder)
        .bind(lease.fence)
        .bind(version)
        .bind(next_due_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Extends a lease still held under `fence`; false when it was lost (taken over).
    pub async fn renew_lease(&self, lease: &Lease, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE leases SET expires_at_ms = $4 WHERE deployment_id = $1 AND holder = $2 AND fence = $3")
                .bind(&lease.deployment_id)
                .bind(holder)
                .bind(lease.fence)
                .bind(now_ms + ttl_ms)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a lease up at once (expired as of now), if still held under `fence`.
    pub async fn release_lease(&self, lease: &Lease, holder: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE leases SET expires_at_ms = 0 WHERE deployment_id = $1 AND holder = $2 AND fence = $3")
            .bind(&lease.deployment_id)
            .bind(holder)
            .bind(lease.fence)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl Store {
    /// Every lease: (deployment, holder, the holder the last claim took it over from, expiry in ms).
    pub async fn leases(&self) -> Result<Vec<(String, String, Option<String>, i64)>, StoreError> {
        Ok(sqlx::query(
            "SELECT deployment_id, holder, previous_holder, expires_at_ms FROM leases ORDER BY deployment_id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
    }
}

/// The order a worker takes due deployments in: runs a dead worker left (a lease that
/// lapsed rather than being given back) first, then changed ones (a version not reconciled
/// yet), then those it ran last (its caches are warm for them, and the other workers look
/// first at theirs), then the longest overdue.
const DUE_ORDER: &str = "ORDER BY CASE WHEN l.expires_at_ms > 0 THEN 0 ELSE 1 END, \
     CASE WHEN l.done_version <> d.version THEN 0 ELSE 1 END, \
     CASE WHEN l.holder = $1 THEN 0 ELSE 1 END, l.next_due_ms, l.deployment_id";

/// What a claim writes, for `holder` until `expires` (SQL expressions). SET reads the row as
/// it was: previous_holder gets the holder being replaced, when it let the lease expire (a
/// finished or released lease has expiry 0: handed over).
fn take(holder: &str, expires: &str) -> String {
    format!(
        "previous_holder = CASE WHEN expires_at_ms = 0 THEN NULL ELSE holder END, holder = {holder}, expires_at_ms = {expires}, fence = fence + 1"
    )
}

/// What a claim returns, read by `won`.
const WON: &str = "RETURNING deployment_id, fence, previous_holder";

/// The lease a claim's row says `holder` won. Fence 1 is the first claim ever: whoever
/// inserted the row held nothing.
fn won(r: &sqlx::any::AnyRow, holder: &str) -> Lease {
    let (fence, previous): (i64, Option<String>) = (r.get(1), r.get(2));
    Lease { deployment_id: r.get(0), fence, taken_from: previous.filter(|p| p != holder && fence > 1) }
}

impl Store {
    /// Claims for `holder`, until `now_ms + ttl_ms`, up to `limit` deployments that are due
    /// and free at `now_ms` (see `DUE_ORDER`), in one statement however large the fleet.
    /// On PostgreSQL the due rows are locked `FOR UPDATE SKIP LOCKED`: concurrent workers
    /// each get different ones rather than racing for the head of the same list, and none
    /// waits on another's claim. Each lease bumps its fence like `claim_lease`.
    pub async fn claim_next(
        &self,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
        limit: i64,
    ) -> Result<Vec<Lease>, StoreError> {
        let lock = if self.backend == Backend::Postgres { " FOR UPDATE OF l SKIP LOCKED" } else { "" };
        // The outer `expires_at_ms <= $3` is the guard of last resort: PostgreSQL re-checks it
        // on a row changed under it, so a row another claimer took between the choice and the
        // update is never taken twice. Every deployment has its lease row from its creation.
        let sql = format!(
            "UPDATE leases SET {} \
             WHERE expires_at_ms <= $3 AND deployment_id IN (SELECT l.deployment_id FROM leases l JOIN deployments d ON d.id = l.deployment_id \
               WHERE l.expires_at_ms <= $3 AND (l.done_version <> d.version OR l.next_due_ms <= $3) {DUE_ORDER} LIMIT $4{lock}) {WON}",
            take("$1", "$2")
        );
        self.claim_many(sql, holder, now_ms, ttl_ms, limit).await
    }

    /// Claims for `holder` up to `limit` runs a worker left unfinished: leases that lapsed
    /// (not finished, not given back) by `now_ms`, due or not, the longest lapsed first. A
    /// worker takes these over even when its slots are full (see `worker::run_leased`): a run
    /// cut off half-way leaves an account half-built, and it must not wait behind routine resyncs.
    pub async fn claim_lapsed(
        &self,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
        limit: i64,
    ) -> Result<Vec<Lease>, StoreError> {
        let lock = if self.backend == Backend::Postgres { " FOR UPDATE OF l SKIP LOCKED" } else { "" };
        // Deployments only (the join): audit-queue leases and removals are claimed elsewhere.
        let sql = format!(
            "UPDATE leases SET {} WHERE expires_at_ms > 0 AND expires_at_ms <= $3 AND deployment_id IN \
             (SELECT l.deployment_id FROM leases l JOIN deployments d ON d.id = l.deployment_id \
              WHERE l.expires_at_ms > 0 AND l.expires_at_ms <= $3 ORDER BY l.expires_at_ms, l.deployment_id LIMIT $4{lock}) {WON}",
            take("$1", "$2")
        );
        self.claim_many(sql, holder, now_ms, ttl_ms, limit).await
    }

    /// Runs a claim statement of many leases (`$1` holder, `$2` expiry, `$3` now, `$4` limit).
    async fn claim_many(
        &self,
        sql: String,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
        limit: i64,
    ) -> Result<Vec<Lease>, StoreError> {
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(holder)
            .bind(now_ms + ttl_ms)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| won(r, holder))
            .collect())
    }

    /// Makes these deployments due now (a lease held stays held: its run ends first).
    pub async fn make_due(&self, ids: &[String]) -> Result<(), StoreError> {
        for id in ids {
            sqlx::query("UPDATE leases SET next_due_ms = 0 WHERE deployment_id = $1")
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// The single worker of an embedded store (no leases claimed there): the deployments
    /// made due since it last asked (`make_due`: an option, a schedule or the health watch
    /// changed what they need), marked as taken.
    pub async fn take_made_due(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query("UPDATE leases SET next_due_ms = 1 WHERE next_due_ms = 0 RETURNING deployment_id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// Makes every deployment due and free at once (benchmarks: one full pass on demand).
    pub async fn make_all_due(&self) -> Result<(), StoreError> {
        sqlx::query("UPDATE leases SET next_due_ms = 0, expires_at_ms = 0, done_version = -1")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// How many deployments have had `version` (or later) reconciled.
    pub async fn leases_done(&self, version: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM leases WHERE done_version >= $1")
            .bind(version)
            .fetch_one(&self.pool)
            .await?
            .get(0))
    }
}
