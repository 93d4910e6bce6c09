//! Organization enrollments: stored whole as JSON like deployments, versioned, per tenant;
//! the status (what the last reconciliation did per account) is written by the engine.

use garrison_model::Stamp;
use garrison_model::enrollment::{Enrollment, EnrollmentSpec, EnrollmentStatus};
use sqlx::Row;

use crate::db::{Store, StoreError, now};

fn to_json(e: &Enrollment) -> Result<String, StoreError> {
    serde_json::to_string(e).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json(s: &str) -> Result<Enrollment, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn apply(e: &mut Enrollment, spec: EnrollmentSpec) {
    e.name = spec.name;
    e.credential_id = spec.credential_id;
    e.include = spec.selection.include;
    e.exclude_units = spec.selection.exclude_units;
    e.exclude_accounts = spec.selection.exclude_accounts;
    e.template = spec.template;
    e.stack_set = spec.stack_set;
    e.event_feed = spec.event_feed;
}

impl Store {
    pub async fn create_enrollment(
        &self,
        account_id: &str,
        spec: EnrollmentSpec,
        by: &str,
    ) -> Result<Enrollment, StoreError> {
        let t = now();
        let mut e = Enrollment {
            id: crate::db::new_id(),
            account_id: account_id.into(),
            name: String::new(),
            version: 1,
            credential_id: String::new(),
            include: vec![],
            exclude_units: vec![],
            exclude_accounts: vec![],
            template: serde_json::Value::Null,
            stack_set: String::new(),
            event_feed: Default::default(),
            created: Stamp { at: t, by: by.into() },
            modified: Stamp { at: t, by: by.into() },
            status: EnrollmentStatus::default(),
            deleting: false,
        };
        apply(&mut e, spec);
        sqlx::query("INSERT INTO enrollments (id, account_id, version, body) VALUES ($1, $2, $3, $4)")
            .bind(&e.id)
            .bind(account_id)
            .bind(e.version)
            .bind(to_json(&e)?)
            .execute(&self.pool)
            .await?;
        Ok(e)
    }

    pub async fn list_enrollments(&self, account_id: &str) -> Result<Vec<Enrollment>, StoreError> {
        let rows = sqlx::query("SELECT body FROM enrollments WHERE account_id = $1 ORDER BY id")
            .bind(account_id)
            .fetch_all(&self.pool)
            .await?;
        let all: Result<Vec<Enrollment>, StoreError> =
            rows.iter().map(|r| from_json(&r.try_get::<String, _>("body")?)).collect();
        Ok(all?.into_iter().filter(|e| !e.deleting).collect())
    }

    /// Every tenant's enrollments, those being deleted too (the engine acts for all).
    pub async fn all_enrollments(&self) -> Result<Vec<Enrollment>, StoreError> {
        let rows = sqlx::query("SELECT body FROM enrollments ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter().map(|r| from_json(&r.try_get::<String, _>("body")?)).collect()
    }

    pub async fn get_enrollment(&self, account_id: &str, id: &str) -> Result<Option<Enrollment>, StoreError> {
        Ok(self.enrollment_record(account_id, id).await?.filter(|e| !e.deleting))
    }

    async fn enrollment_record(&self, account_id: &str, id: &str) -> Result<Option<Enrollment>, StoreError> {
        sqlx::query("SELECT body FROM enrollments WHERE account_id = $1 AND id = $2")
            .bind(account_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| from_json(&r.try_get::<String, _>("body")?))
            .transpose()
    }

    /// Deletes an enrollment as its owner sees it: gone from the API at once; the engine
    /// removes what it made in the management account, then the record (`forget_enrollment`).
    pub async fn delete_enrollment(&self, account_id: &str, id: &str) -> Result<bool, StoreError> {
        let Some(mut e) = self.get_enrollment(account_id, id).await? else { return Ok(false) };
        e.deleting = true;
        let r = sqlx::query("UPDATE enrollments SET body = $1 WHERE id = $2 AND account_id = $3")
            .bind(to_json(&e)?)
            .bind(id)
            .bind(account_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Replaces what `spec` sets, at `base_version` (else a conflict).
    pub async fn update_enrollment(
        &self,
        account_id: &str,
        id: &str,
        base_version: i64,
        spec: EnrollmentSpec,
        by: &str,
    ) -> Result<Enrollment, StoreError> {
        let mut e = self.get_enrollment(account_id, id).await?.ok_or(StoreError::NotFound)?;
        if e.version != base_version {
            return Err(StoreError::Conflict(format!(
                "the enrollment is at version {}, not {base_version}",
                e.version
            )));
        }
        let before = e.clone();
        apply(&mut e, spec);
        if e == before {
            return Ok(before);
        }
        e.version = base_version + 1;
        e.modified = Stamp { at: now(), by: by.into() };
        let r = sqlx::query(
            "UPDATE enrollments SET version = $1, body = $2 WHERE id = $3 AND account_id = $4 AND version = $5",
        )
        .bind(e.version)
        .bind(to_json(&e)?)
        .bind(id)
        .bind(account_id)
        .bind(base_version)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!("the enrollment changed after version {base_version}")));
        }
        Ok(e)
    }

    /// Writes the status of the last reconciliation (the version does not move: the status
    /// is garrison's, not the user's).
    pub async fn set_enrollment_status(&self, id: &str, status: &EnrollmentStatus) -> Result<(), StoreError> {
        let Some(row) =
            sqlx::query("SELECT body FROM enrollments WHERE id = $1").bind(id).fetch_optional(&self.pool).await?
        else {
            return Ok(());
        };
        let mut e = from_json(&row.try_get::<String, _>("body")?)?;
        if &e.status == status {
            return Ok(());
        }
        e.status = status.clone();
        sqlx::query("UPDATE enrollments SET body = $1 WHERE id = $2 AND version = $3")
            .bind(to_json(&e)?)
            .bind(id)
            .bind(e.version)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The record goes (after the engine removed what the enrollment made).
    pub async fn forget_enrollment(&self, account_id: &str, id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM enrollments WHERE account_id = $1 AND id = $2")
            .bind(account_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }
}
