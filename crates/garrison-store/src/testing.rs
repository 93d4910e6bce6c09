//! Helpers for test suites: a fresh, empty PostgreSQL database per test.

use sqlx::Row;
use sqlx::any::{AnyPoolOptions, install_default_drivers};

/// Creates database `garrison_t_<random>` on the server of `admin_url` and returns its URL.
pub async fn fresh_postgres(admin_url: &str) -> Result<String, crate::StoreError> {
    install_default_drivers();
    let pool = AnyPoolOptions::new().max_connections(1).connect(admin_url).await?;
    let name = format!("garrison_t_{:016x}", rand::random::<u64>());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&pool).await?;
    pool.close().await;
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

/// Drops every database a test run created on that server.
pub async fn drop_test_databases(admin_url: &str) -> Result<usize, crate::StoreError> {
    install_default_drivers();
    let pool = AnyPoolOptions::new().max_connections(1).connect(admin_url).await?;
    let names: Vec<String> = sqlx::query("SELECT datname FROM pg_database WHERE datname LIKE 'garrison_t_%'")
        .fetch_all(&pool)
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for n in &names {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"))).execute(&pool).await?;
    }
    Ok(names.len())
}

/// Every row of every table of a PostgreSQL database as text (to look for plaintext).
pub async fn postgres_text(url: &str) -> Result<String, crate::StoreError> {
    install_default_drivers();
    let pool = AnyPoolOptions::new().max_connections(1).connect(url).await?;
    let tables: Vec<String> =
        sqlx::query("SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = 'public'")
            .fetch_all(&pool)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
    let mut out = String::new();
    for t in tables {
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT CAST(t AS TEXT) FROM \"{t}\" t"))).fetch_all(&pool).await?;
        for r in rows {
            out.push_str(&r.get::<String, _>(0));
            out.push('\n');
        }
    }
    pool.close().await;
    Ok(out)
}
