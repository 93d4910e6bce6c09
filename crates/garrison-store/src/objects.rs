//! credentials and deployments of a tenant.

use std::collections::HashMap;

use garrison_model::Stamp;
use garrison_model::credential::{Credential, CredentialSecrets, NewCredential, RoleSecret, arn_account};
use garrison_model::deployment::{Deployment, DeploymentSpec, JSON_FORMAT, Status, StatusKind};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::db::{Store, StoreError, now};
use crate::leases::NEW_LEASE;

pub(crate) fn secret_ctx(account_id: &str, id: &str) -> String {
    format!("credential:{account_id}:{id}")
}

impl Store {
    pub async fn create_credential(
        &self,
        account_id: &str,
        c: &NewCredential,
        by: &str,
    ) -> Result<Credential, StoreError> {
        let id = crate::db::new_id();
        let secret = serde_json::to_vec(&c.secret).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let sealed = self.sealer.seal(&secret_ctx(account_id, &id), &secret);
        let aws_account = arn_account(&c.secret.arn).unwrap_or_default();
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO credentials (id, account_id, name, aws_account_id, sealed_secret, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&id)
            .bind(account_id)
            .bind(&c.name)
            .bind(aws_account)
            .bind(&sealed)
            .bind(now())
            .bind(by)
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        self.get_credential(account_id, &id).await?.ok_or(StoreError::NotFound)
    }

    pub(crate) async fn credential_from(&self, r: &AnyRow, external_id: &str) -> Result<Credential, StoreError> {
        let id: String = r.get("id");
        let account_id: String = r.get("account_id");
        let sealed: String = r.get("sealed_secret");
        let secret: RoleSecret = serde_json::from_slice(&self.sealer.open(&secret_ctx(&account_id, &id), &sealed)?)
            .map_err(|e| StoreError::Corrupt(format!("credential {id}: {e}")))?;
        Ok(Credential {
            id,
            name: r.get("name"),
            secrets: CredentialSecrets {
                kind: "aws_iam_role".into(),
                arn: secret.arn,
                external_id: external_id.to_string(),
            },
            created: Stamp { at: r.get("created_at"), by: r.get("created_by") },
        })
    }

    pub async fn get_credential(&self, account_id: &str, id: &str) -> Result<Option<Credential>, StoreError> {
        let Some(r) = sqlx::query("SELECT id, account_id, name, sealed_secret, created_at, created_by FROM credentials WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let ext = self.external_id(account_id).await?;
        Ok(Some(self.credential_from(&r, &ext).await?))
    }

    pub async fn list_credentials(&self, account_id: &str) -> Result<Vec<Credential>, StoreError> {
        let rows = sqlx::query("SELECT id, account_id, name, sealed_secret, created_at, created_by FROM credentials WHERE account_id = $1 ORDER BY created_at, id")
            .bind(account_id)
            .fetch_all(&self.pool)
            .await?;
        let ext = self.external_id(account_id).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.credential_from(r, &ext).await?);
        }
        Ok(out)
    }

    /// Credential id → AWS account of its role, for deployment validation (no unsealing).
    pub async fn credential_accounts(&self, account_id: &str) -> Result<HashMap<String, String>, StoreError> {
        Ok(sqlx::query("SELECT id, aws_account_id FROM credentials WHERE account_id = $1")
            .bind(account_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    /// Credential id → AWS account of its role, for the ids named only: what validating a
    /// deployment or enrollment needs, at a cost that does not grow with the account's
    /// credentials (an organization's account holds one per member).
    pub async fn credential_accounts_of(
        &self,
        account_id: &str,
        ids: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut out = HashMap::new();
        for chunk in ids.chunks(100) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT id, aws_account_id FROM credentials WHERE account_id = $1 AND id IN ({})",
                marks.join(", ")
            );
            // Only placeholders are formatted in; the ids are bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(account_id);
            for id in chunk {
                q = q.bind(*id);
            }
            out.extend(q.fetch_all(&self.pool).await?.iter().map(|r| (r.get(0), r.get(1))));
        }
        Ok(out)
    }

    /// Deletes a credential unless a deployment refers to it (then `Conflict` naming them).
    pub async fn delete_credential(&self, account_id: &str, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        // Another tenant's credential is "not found", before anything about its use is said.
        let mine = sqlx::query("SELECT 1 FROM credentials WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .fetch_optional(&mut **tx)
            .await?;
        if mine.is_none() {
            return Ok(false);
        }
        // Only this account's deployments can use its credential (also those queued for removal,
        // whose rows have left `deployments`).
        let users: Vec<String> = sqlx::query(
            "SELECT deployment_id FROM deployment_credentials WHERE credential_id = $1 ORDER BY deployment_id",
        )
        .bind(id)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
        if !users.is_empty() {
            return Err(StoreError::Conflict(format!("credential is used by deployment(s) {}", users.join(", "))));
        }
        // Nor while an organization enrollment reads its organization through it.
        let enrolling: Vec<String> = sqlx::query("SELECT id, body FROM enrollments WHERE account_id = $1 ORDER BY id")
            .bind(account_id)
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .filter(|r| {
                // A deleted one still needs it to take away what it made, if it made anything.
                serde_json::from_str::<serde_json::Value>(&r.get::<String, _>(1)).is_ok_and(|b| {
                    b["credential_id"].as_str() == Some(id)
                        && !(b["deleting"] == true && b["status"]["events"].is_null())
                })
            })
            .map(|r| r.get(0))
            .collect();
        if !enrolling.is_empty() {
            return Err(StoreError::Conflict(format!(
                "credential is used by organization enrollment(s) {}",
                enrolling.join(", ")
            )));
        }
        let r = sqlx::query("DELETE FROM credentials WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn create_deployment(
        &self,
        account_id: &str,
        spec: DeploymentSpec,
        by: &str,
    ) -> Result<Deployment, StoreError> {
        let t = now();
        let id = crate::db::new_id();
        let mut d = Deployment {
            id: id.clone(),
            account_id: account_id.into(),
            name: String::new(),
            platform: spec.platform.clone(),
            mode: spec.mode,
            enabled: true,
            discover: true,
            scan: true,
            scope: Default::default(),
            features: None,
            cloud_defender: Default::default(),
            credentials: vec![],
            status: Status { status: StatusKind::New, updated: t, message: None, reason: None },
            created: Stamp { at: t, by: by.into() },
            modified: Stamp { at: t, by: by.into() },
            version: 1,
            is_control_tower: false,
            control_tower: None,
            event_feed: None,
        };
        d.apply(spec);
        let body = to_json(&d)?;
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO deployments (id, account_id, version, body, format) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id)
            .bind(account_id)
            .bind(d.version)
            .bind(body.as_str())
            .bind(JSON_FORMAT)
            .execute(&mut **tx)
            .await?;
        // Its work lease, free and due (never reconciled): what workers claim (`claim_next`).
        sqlx::query(NEW_LEASE).bind(&id).execute(&mut **tx).await?;
        link_credentials(&mut tx, &d).await?;
        let generation = bump(&mut tx).await?;
        tx.commit().await?;
        self.cache.wrote(generation, &id, Some(crate::cache::Cached::stored(account_id, body)));
        Ok(d)
    }

    /// A deployment, from the read cache when it holds it (see `cache`).
    pub async fn get_deployment(&self, account_id: &str, id: &str) -> Result<Option<Deployment>, StoreError> {
        if let Some(c) = self.cache.get(id) {
            return if *c.account_id == *account_id { from_json_bytes(&c.json).map(Some) } else { Ok(None) };
        }
        let seen = self.cache.generation();
        let d = self.get_deployment_fresh(account_id, id).await?;
        if let Some(d) = &d {
            self.cache.fill(seen, id, crate::cache::Cached::of(d));
        }
        Ok(d)
    }

    /// A deployment's JSON as GET answers it, from the read cache when it holds it: a cached
    /// deployment is sent without being parsed or written again.
    pub async fn get_deployment_json(&self, account_id: &str, id: &str) -> Result<Option<bytes::Bytes>, StoreError> {
        if let Some(c) = self.cache.get(id) {
            return Ok((*c.account_id == *account_id).then_some(c.json));
        }
        let seen = self.cache.generation();
        let row = sqlx::query("SELECT format, body FROM deployments WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let c = crate::cache::Cached { account_id: account_id.into(), json: current_json(row.get(0), row.get(1))? };
        let json = c.json.clone();
        self.cache.fill(seen, id, c);
        Ok(Some(json))
    }

    /// A deployment read from the database, bypassing the cache (for read-modify-write).
    /// A deployment by id alone (workers act for every tenant), read from the database.
    pub async fn deployment_by_id(&self, id: &str) -> Result<Option<Deployment>, StoreError> {
        sqlx::query("SELECT body FROM deployments WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| from_json(&r.get::<String, _>(0)))
            .transpose()
    }

    pub async fn get_deployment_fresh(&self, account_id: &str, id: &str) -> Result<Option<Deployment>, StoreError> {
        sqlx::query("SELECT body FROM deployments WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| from_json(&r.get::<String, _>(0)))
            .transpose()
    }

    pub async fn list_deployments(&self, account_id: &str) -> Result<Vec<Deployment>, StoreError> {
        sqlx::query("SELECT body FROM deployments WHERE account_id = $1 ORDER BY id")
            .bind(account_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| from_json(&r.get::<String, _>(0)))
            .collect()
    }

    /// Replaces the spec of a deployment if it is still at `base_version`; the version goes up
    /// by one. A deployment that moved on meanwhile gives `Conflict` and nothing is written.
    /// An update that changes nothing writes nothing: the version stays (and no reconcile is
    /// set off by an empty PUT).
    pub async fn update_deployment(
        &self,
        account_id: &str,
        id: &str,
        base_version: i64,
        spec: DeploymentSpec,
        by: &str,
    ) -> Result<Deployment, StoreError> {
        let mut d = self.get_deployment_fresh(account_id, id).await?.ok_or(StoreError::NotFound)?;
        if d.version != base_version {
            return Err(StoreError::Conflict(format!(
                "the deployment is at version {}, not {base_version}",
                d.version
            )));
        }
        let before = d.clone();
        d.apply(spec);
        if d == before {
            return Ok(before);
        }
        d.version = base_version + 1;
        d.modified = Stamp { at: now(), by: by.into() };
        let body = to_json(&d)?;
        let mut tx = self.write_tx().await?;
        let r = sqlx::query(
            "UPDATE deployments SET version = $1, body = $2, format = $6 WHERE id = $3 AND account_id = $4 AND version = $5",
        )
        .bind(d.version)
        .bind(body.as_str())
        .bind(id)
        .bind(account_id)
        .bind(base_version)
        .bind(JSON_FORMAT)
        .execute(&mut **tx)
        .await?;
        if r.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!("the deployment changed after version {base_version}")));
        }
        sqlx::query("DELETE FROM deployment_credentials WHERE deployment_id = $1").bind(id).execute(&mut **tx).await?;
        link_credentials(&mut tx, &d).await?;
        let generation = bump(&mut tx).await?;
        tx.commit().await?;
        self.cache.wrote(generation, id, Some(crate::cache::Cached::stored(account_id, body)));
        Ok(d)
    }

    pub async fn delete_deployment(&self, account_id: &str, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let r = sqlx::query("DELETE FROM deployments WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .execute(&mut **tx)
            .await?;
        if r.rows_affected() == 1 {
            for q in [
                "DELETE FROM deployment_credentials WHERE deployment_id = $1",
                "DELETE FROM snapshots WHERE deployment_id = $1",
                // An executor still at work on it stops at its next action.
                "UPDATE protection SET generation = generation + 1 WHERE deployment_id = $1",
            ] {
                sqlx::query(q).bind(id).execute(&mut **tx).await?;
            }
            let generation = bump(&mut tx).await?;
            tx.commit().await?;
            self.cache.wrote(generation, id, None);
            return Ok(true);
        }
        tx.commit().await?;
        Ok(false)
    }
}

/// Bumps the deployments generation inside the writing transaction (see `cache`).
pub(crate) async fn bump(tx: &mut Transaction<'_, Any>) -> Result<i64, StoreError> {
    Ok(sqlx::query(
        "UPDATE change_counters SET generation = generation + 1 WHERE name = 'deployments' RETURNING generation",
    )
    .fetch_one(&mut **tx)
    .await?
    .get(0))
}

async fn link_credentials(tx: &mut Transaction<'_, Any>, d: &Deployment) -> Result<(), StoreError> {
    let mut ids: Vec<&str> = d.credentials.iter().map(|c| c.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    for cid in ids {
        sqlx::query("INSERT INTO deployment_credentials (deployment_id, credential_id) VALUES ($1, $2)")
            .bind(&d.id)
            .bind(cid)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

fn to_json(d: &Deployment) -> Result<String, StoreError> {
    serde_json::to_string(d).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A stored body as the API answers it: as stored when written in the current shape
/// (`JSON_FORMAT`), else parsed and written again (a row from an older release may lack
/// fields the current shape has).
pub(crate) fn current_json(format: i64, body: String) -> Result<bytes::Bytes, StoreError> {
    if format == JSON_FORMAT {
        return Ok(body.into_bytes().into());
    }
    Ok(to_json(&from_json(&body)?)?.into_bytes().into())
}

pub(crate) fn from_json(s: &str) -> Result<Deployment, StoreError> {
    from_json_bytes(s.as_bytes())
}

fn from_json_bytes(b: &[u8]) -> Result<Deployment, StoreError> {
    serde_json::from_slice(b).map_err(|e| StoreError::Corrupt(format!("deployment body: {e}")))
}
