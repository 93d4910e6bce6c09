//! An account's own aims roles (the global ones are `garrison_model::permission::GlobalRole`,
//! never stored). Permissions are kept in their wire form, checked by the caller.

use garrison_model::Stamp;
use garrison_model::account::RoleView;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Store, StoreError, new_id, now};

fn role_from(r: &AnyRow) -> Result<RoleView, StoreError> {
    let permissions: String = r.get("permissions");
    Ok(RoleView {
        id: r.get("id"),
        account_id: r.get("account_id"),
        name: r.get("name"),
        permissions: serde_json::from_str(&permissions).map_err(|e| StoreError::Corrupt(format!("role: {e}")))?,
        legacy_permissions: vec![],
        version: r.get("version"),
        global: None,
        created: Stamp { at: r.get("created_at"), by: r.get("created_by") },
        modified: Stamp { at: r.get("modified_at"), by: r.get("modified_by") },
    })
}

fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict(format!("a role named {name:?} exists in this account"))
}

impl Store {
    pub async fn create_role(
        &self,
        account_id: &str,
        name: &str,
        permissions: &serde_json::Value,
        by: &str,
    ) -> Result<RoleView, StoreError> {
        let id = new_id();
        let t = now();
        let r = sqlx::query(
            "INSERT INTO roles (id, account_id, name, permissions, version, created_at, created_by, modified_at, modified_by) \
             VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8) ON CONFLICT (account_id, name) DO NOTHING",
        )
        .bind(&id)
        .bind(account_id)
        .bind(name)
        .bind(permissions.to_string())
        .bind(t)
        .bind(by)
        .bind(t)
        .bind(by)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(name_taken(name));
        }
        self.get_role(account_id, &id).await?.ok_or(StoreError::NotFound)
    }

    /// One of the account's own roles (never another account's, even a parent's).
    pub async fn get_role(&self, account_id: &str, id: &str) -> Result<Option<RoleView>, StoreError> {
        sqlx::query("SELECT id, account_id, name, permissions, version, created_at, created_by, modified_at, modified_by FROM roles WHERE id = $1 AND account_id = $2")
            .bind(id.to_uppercase())
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| role_from(&r))
            .transpose()
    }

    pub async fn list_roles(&self, account_id: &str) -> Result<Vec<RoleView>, StoreError> {
        sqlx::query("SELECT id, account_id, name, permissions, version, created_at, created_by, modified_at, modified_by FROM roles WHERE account_id = $1 ORDER BY name, id")
            .bind(account_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(role_from)
            .collect()
    }

    /// Changes a role's name, permissions or both; a change of nothing keeps the version.
    /// Users holding it have the new permissions within the revocation period.
    pub async fn update_role(
        &self,
        account_id: &str,
        id: &str,
        name: Option<&str>,
        permissions: Option<&serde_json::Value>,
        by: &str,
    ) -> Result<RoleView, StoreError> {
        let current = self.get_role(account_id, id).await?.ok_or(StoreError::NotFound)?;
        let name = name.unwrap_or(&current.name);
        let permissions = permissions.unwrap_or(&current.permissions);
        if name == current.name && *permissions == current.permissions {
            return Ok(current);
        }
        let r = sqlx::query(
            "UPDATE roles SET name = $1, permissions = $2, version = version + 1, modified_at = $3, modified_by = $4 \
             WHERE id = $5 AND account_id = $6 AND NOT EXISTS (SELECT 1 FROM roles o WHERE o.account_id = $6 AND o.name = $1 AND o.id <> $5)",
        )
        .bind(name)
        .bind(permissions.to_string())
        .bind(now())
        .bind(by)
        .bind(&current.id)
        .bind(account_id)
        .execute(&self.pool)
        .await;
        match r {
            Ok(r) if r.rows_affected() == 1 => {}
            Ok(_) if self.get_role(account_id, id).await?.is_some() => return Err(name_taken(name)),
            Ok(_) => return Err(StoreError::NotFound),
            // A rename racing another: the unique index refuses it.
            Err(e) if e.as_database_error().is_some_and(|d| d.is_unique_violation()) => return Err(name_taken(name)),
            Err(e) => return Err(e.into()),
        }
        self.get_role(account_id, id).await?.ok_or(StoreError::NotFound)
    }

    /// Deletes one of the account's roles; refused (`Conflict`) while a user holds it, so
    /// that nobody loses access without being told. `false`: no such role.
    pub async fn delete_role(&self, account_id: &str, id: &str) -> Result<bool, StoreError> {
        let id = id.to_uppercase();
        let mut tx = self.write_tx().await?;
        let holders: i64 = sqlx::query("SELECT COUNT(*) FROM users WHERE account_id = $1 AND role_id = $2")
            .bind(account_id)
            .bind(&id)
            .fetch_one(&mut **tx)
            .await?
            .get(0);
        if holders > 0 {
            return Err(StoreError::Conflict(format!(
                "{holders} user(s) hold this role: grant them another role first"
            )));
        }
        let r = sqlx::query("DELETE FROM roles WHERE id = $1 AND account_id = $2")
            .bind(&id)
            .bind(account_id)
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }
}
