use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

use std::sync::Arc;

use crate::cache::{DeploymentCache, read_generation, spawn_poller};
use crate::migrations::MIGRATIONS;
use crate::seal::{SealError, SealKey, Sealer};

/// A database failure, kept opaque: no caller outside the store names sqlx.
#[derive(Debug)]
pub struct DbError(sqlx::Error);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Db(DbError(e))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(DbError),
    #[error("the seal key does not open this store's secrets (it was created with another key)")]
    WrongKey,
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    /// Input refused before anything was written (operator-given values at start).
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub(crate) sealer: Sealer,
    pub(crate) backend: Backend,
    pub(crate) cache: Arc<DeploymentCache>,
    /// The write turn on SQLite (`write_tx`).
    pub(crate) writer: Arc<tokio::sync::Mutex<()>>,
}

/// How often the SQLite log is copied back into the database (`spawn_checkpointer`).
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Checkpoints the SQLite write-ahead log off the request path while the store is open
/// (`alive`: its cache, dropped with the last handle). PASSIVE: it copies what no reader
/// still needs and never waits for a writer, so writers never wait for it; with automatic
/// checkpoints off, the log would otherwise grow without end.
fn spawn_checkpointer(pool: AnyPool, alive: std::sync::Weak<DeploymentCache>) {
    crate::cache::every(CHECKPOINT_EVERY, alive, move |_| {
        let pool = pool.clone();
        async move {
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
                tracing::warn!(error = %e, "SQLite checkpoint failed; it is tried again");
            }
        }
    });
}

const WRITE_TURN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A writing transaction, holding the process's write turn on SQLite until it ends.
pub(crate) struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::Transaction<'static, sqlx::Any>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

pub(crate) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A new object id: an upper-case UUID, as the reference's ids are.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

/// The file of a `sqlite://PATH?…` URL (`None` for in-memory databases).
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

/// The database holds sealed secrets and key hashes: readable by the owner only. SQLite
/// gives its WAL and shared-memory files the mode of the database file, so creating that
/// one 0600 covers them; files left wider by an older release are narrowed.
fn private_sqlite_files(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if !path.exists() {
        std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(path)?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let p = std::path::PathBuf::from(p);
        if let Ok(meta) = std::fs::metadata(&p)
            && meta.permissions().mode() & 0o077 != 0
        {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

/// Connections to an SQLite store: each is a thread of its own with its own page cache, and
/// reads run in parallel only as far as there are cores. Two per core, four at least, eight
/// at most: on two cores four served pages of deployments as fast as eight did, with less
/// memory (bench/api).
fn sqlite_connections() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    (2 * cores).clamp(4, 8)
}

const SEAL_CHECK: &str = "garrison seal check";

impl Store {
    /// Opens (creating if needed) the database at `url` (`sqlite://…` or `postgres://…`),
    /// applies pending migrations and checks that `key` opens this store's secrets.
    pub async fn open(url: &str, key: &SealKey) -> Result<Store, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("postgres") { Backend::Postgres } else { Backend::Sqlite };
        if backend == Backend::Sqlite
            && let Some(path) = sqlite_path(url)
        {
            private_sqlite_files(&path).map_err(|e| StoreError::Invalid(format!("{}: {e}", path.display())))?;
        }
        let max = if backend == Backend::Sqlite { sqlite_connections() } else { 16 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
                        // With WAL, NORMAL keeps the database consistent and skips an fsync per commit.
                        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                        // 256 KiB of page cache per connection (SQLite's default is 2 MiB):
                        // the operating system caches the file too, so a page missed here is
                        // a copy, not a disk read; at 1 MiB the caches were a ninth of the
                        // API server's memory and pages were no faster (bench/api).
                        sqlx::query("PRAGMA cache_size = -256").execute(&mut *conn).await?;
                        // No commit copies the log back into the database itself (the
                        // fsyncs of a checkpoint put 5 ms on one commit in a hundred):
                        // `spawn_checkpointer` does it beside them.
                        sqlx::query("PRAGMA wal_autocheckpoint = 0").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        let store = Store { pool, sealer: Sealer::new(key), backend, cache: Arc::default(), writer: Arc::default() };
        store.migrate().await?;
        store.check_key().await?;
        store.cache.wrote(read_generation(&store.pool).await?, "", None);
        spawn_poller(store.pool.clone(), Arc::downgrade(&store.cache));
        if backend == Backend::Sqlite {
            spawn_checkpointer(store.pool.clone(), Arc::downgrade(&store.cache));
        }
        Ok(store)
    }

    /// A transaction that will write. On SQLite it takes the write lock at once (BEGIN
    /// IMMEDIATE): a deferred transaction that reads first and writes later fails with
    /// SQLITE_BUSY, without waiting out the busy timeout, when another connection
    /// committed in between — which concurrent API requests do.
    ///
    /// On SQLite, writers also take their turn in this process first: SQLite lets one
    /// writer in at a time and makes the others sleep and retry (1, 2, 5, 10, 15 … ms), which
    /// put 34 ms on the 99th percentile of concurrent creates (bench/api); waiting on a
    /// queue here costs only the writes ahead. One process owns an SQLite store (`serve`'s
    /// file lock), so the queue is every writer there is.
    pub(crate) async fn write_tx(&self) -> Result<WriteTx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => {
                // As long as SQLite's own busy timeout: a writer that never ends is an error
                // here as it was there, not a hang.
                let turn = tokio::time::timeout(WRITE_TURN_TIMEOUT, self.writer.clone().lock_owned())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)?;
                Ok(WriteTx { tx: self.pool.begin_with("BEGIN IMMEDIATE").await?, _turn: Some(turn) })
            }
            Backend::Postgres => Ok(WriteTx { tx: self.pool.begin().await?, _turn: None }),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, applied_at BIGINT NOT NULL)")
            .execute(&self.pool)
            .await?;
        for (version, description, statements) in MIGRATIONS {
            let mut tx = self.write_tx().await?;
            // Concurrent starters (several servers on one PostgreSQL) race here; the
            // primary key makes exactly one of them apply each migration.
            let done: Option<i64> = sqlx::query("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(*version)
                .fetch_optional(&mut **tx)
                .await?
                .map(|r| r.get(0));
            if done.is_some() {
                continue;
            }
            sqlx::query("INSERT INTO schema_migrations (version, description, applied_at) VALUES ($1, $2, $3)")
                .bind(*version)
                .bind(*description)
                .bind(now())
                .execute(&mut **tx)
                .await?;
            for st in *statements {
                let st = match st.strip_prefix(crate::migrations::POSTGRES_ONLY) {
                    Some(_) if self.backend != Backend::Postgres => continue,
                    Some(pg) => pg,
                    None => st,
                };
                sqlx::query(st).execute(&mut **tx).await?;
            }
            tx.commit().await?;
            tracing::info!(version, description, "migration applied");
        }
        Ok(())
    }

    async fn check_key(&self) -> Result<(), StoreError> {
        match self.meta("seal_check").await? {
            Some(sealed) => match self.sealer.open("meta:seal_check", &sealed) {
                Ok(v) if v == SEAL_CHECK.as_bytes() => Ok(()),
                _ => Err(StoreError::WrongKey),
            },
            None => {
                let sealed = self.sealer.seal("meta:seal_check", SEAL_CHECK.as_bytes());
                self.put_meta_if_absent("seal_check", &sealed).await?;
                // Another starter may have won the race with another key.
                Box::pin(self.check_key()).await
            }
        }
    }

    pub(crate) async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.get(0)))
    }

    pub(crate) async fn put_meta_if_absent(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A sealed random secret kept in the store (e.g. the token signing key), created on first use.
    pub async fn sealed_secret(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let key = format!("secret:{name}");
        let ctx = format!("meta:{key}");
        if self.meta(&key).await?.is_none() {
            let fresh = SealKey::generate().to_hex();
            self.put_meta_if_absent(&key, &self.sealer.seal(&ctx, fresh.as_bytes())).await?;
        }
        let sealed = self.meta(&key).await?.ok_or_else(|| StoreError::Corrupt(key.clone()))?;
        let hexed = self.sealer.open_string(&ctx, &sealed)?;
        hex::decode(hexed).map_err(|_| StoreError::Corrupt(key))
    }

    /// Liveness probe for /health.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_gets_four_to_eight_connections() {
        let n = sqlite_connections();
        assert!((4..=8).contains(&n), "{n}");
        let cores = std::thread::available_parallelism().unwrap().get() as u32;
        assert_eq!(n, (2 * cores).clamp(4, 8));
    }

    #[tokio::test]
    async fn every_sqlite_connection_has_the_small_page_cache() {
        let dir =
            std::env::temp_dir().join(format!("garrison-pragmas-{}-{:x}", std::process::id(), rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("s.db").display());
        let store = Store::open(&url, &SealKey::generate()).await.unwrap();
        assert_eq!(store.pool.options().get_max_connections(), sqlite_connections());
        // Hold every connection at once, so each one the pool makes is asked.
        let mut held = vec![];
        for _ in 0..sqlite_connections() {
            held.push(store.pool.acquire().await.unwrap());
        }
        for conn in &mut held {
            let size: i64 = sqlx::query_scalar("PRAGMA cache_size").fetch_one(&mut **conn).await.unwrap();
            assert_eq!(size, -256, "KiB of page cache (negative: KiB, not pages)");
        }
        drop(held);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
