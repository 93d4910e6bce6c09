//! An account's deployments and credentials a batch at a time, in a fixed order, each batch
//! starting after the last row of the one before (keyset paging): a page costs the same at the
//! start of a list of 10,000 as at its end, and nobody holds the whole list in memory.

use garrison_model::credential::Credential;
use sqlx::Row;

use crate::db::{Backend, Store, StoreError};
use crate::objects::current_json;

/// A deployment as a list answers it: its id (where the list goes on from) and its JSON,
/// as stored when it was written in the current shape (`objects::current_json`), so that a
/// page of deployments is sent without parsing them.
#[derive(Debug, Clone)]
pub struct ListedDeployment {
    pub id: String,
    pub json: bytes::Bytes,
}

/// Where a credential list continues: the last row's creation time and id (credentials are
/// listed in creation order, as they always were).
pub fn credential_position(c: &Credential) -> String {
    format!("{}|{}", c.created.at, c.id)
}

impl Store {
    /// At most `limit` of the account's deployments in id order, after the id `after`.
    pub async fn deployments_after(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ListedDeployment>, StoreError> {
        if self.backend == Backend::Sqlite {
            return self.deployments_after_joined(account_id, after, limit).await;
        }
        sqlx::query("SELECT id, format, body FROM deployments WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3")
            .bind(account_id)
            .bind(after.unwrap_or(""))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| Ok(ListedDeployment { id: r.get(0), json: current_json(r.get(1), r.get(2))? }))
            .collect()
    }

    /// `deployments_after` on SQLite, as one row: SQLite's rows cross from its connection's
    /// thread to the async side one at a time, each a thread wake-up — perf over bench/api's
    /// pages of 100 put 29% of the server's CPU in wake-ups and context switches. Joined
    /// with a separator JSON cannot hold unescaped (U+001E) and ids never do, the page
    /// crosses once.
    async fn deployments_after_joined(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ListedDeployment>, StoreError> {
        const SEP: char = '\u{1e}';
        let row = sqlx::query(
            "SELECT group_concat(id, char(30) ORDER BY id), group_concat(format, char(30) ORDER BY id), \
             group_concat(body, char(30) ORDER BY id) FROM (SELECT id, format, body FROM deployments \
             WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3)",
        )
        .bind(account_id)
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
        .fetch_one(&self.pool)
        .await?;
        let (Some(ids), Some(formats), Some(bodies)) =
            (row.get::<Option<String>, _>(0), row.get::<Option<String>, _>(1), row.get::<Option<String>, _>(2))
        else {
            return Ok(vec![]);
        };
        let (ids, formats, bodies): (Vec<&str>, Vec<&str>, Vec<&str>) =
            (ids.split(SEP).collect(), formats.split(SEP).collect(), bodies.split(SEP).collect());
        if ids.len() != formats.len() || ids.len() != bodies.len() {
            return Err(StoreError::Corrupt("a deployment body holds the list separator U+001E".into()));
        }
        ids.into_iter()
            .zip(formats)
            .zip(bodies)
            .map(|((id, format), body)| {
                let format =
                    format.parse().map_err(|_| StoreError::Corrupt(format!("deployment {id}: format {format}")))?;
                Ok(ListedDeployment { id: id.to_string(), json: current_json(format, body.to_string())? })
            })
            .collect()
    }

    /// At most `limit` of the account's credentials in creation order, after the position
    /// `after` (`credential_position` of the last one seen). A position garrison did not make
    /// is `NotFound`.
    pub async fn credentials_after(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Credential>, StoreError> {
        let (at, id) = match after {
            None => (i64::MIN, String::new()),
            Some(p) => {
                let (at, id) = p.split_once('|').ok_or(StoreError::NotFound)?;
                (at.parse().map_err(|_| StoreError::NotFound)?, id.to_string())
            }
        };
        let rows = sqlx::query(
            "SELECT id, account_id, name, sealed_secret, created_at, created_by FROM credentials \
             WHERE account_id = $1 AND (created_at > $2 OR (created_at = $2 AND id > $3)) ORDER BY created_at, id LIMIT $4",
        )
        .bind(account_id)
        .bind(at)
        .bind(&id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(vec![]);
        }
        let ext = self.external_id(account_id).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.credential_from(r, &ext).await?);
        }
        Ok(out)
    }
}
