//! `garrison rotate-seal-key --new-key-file F`: re-seals every secret in the store (external
//! ids, credentials, the token signing key) under a new key, in one transaction. Run it with
//! the servers and workers stopped, then start them with `--seal-key-file F`. The new key is
//! written (0600, never over an existing file) before the store changes, so it cannot be lost.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use garrison_store::{SealKey, Store};

use crate::serve::{self, ServeArgs};

#[derive(Parser, Debug)]
#[command(name = "garrison rotate-seal-key", about = "Re-seal every stored secret under a new key")]
struct Args {
    /// Where to write the new key (must not exist)
    #[arg(long = "new-key-file")]
    new_key_file: PathBuf,
    #[command(flatten)]
    store: ServeArgs,
}

async fn run(a: Args) -> anyhow::Result<String> {
    let settings = serve::resolve(a.store)?;
    let old_path = settings.seal_key_file.clone().unwrap_or_else(|| settings.data_dir.join("seal.key"));
    if std::env::var("GARRISON_SEAL_KEY").is_err() && !old_path.exists() {
        anyhow::bail!("seal key file {}: not found; the current key is needed to open the store", old_path.display());
    }
    // A running server would keep sealing with the old key meanwhile: refuse while one holds
    // an embedded store (PostgreSQL: the operator stops them, as the help says).
    if settings.database_url.starts_with("sqlite:") {
        serve::lock_sqlite_store(&settings)?;
    }
    let old = serve::seal_key(&settings)?;
    let store = Store::open(&settings.database_url, &old).await.context("opening the store with the current key")?;
    let new = SealKey::generate();
    serve::write_private(&a.new_key_file, &new.to_hex())?;
    match store.rotate_key(&new).await {
        Ok(r) => Ok(format!(
            "re-sealed {} external id(s), {} credential(s), {} webhook connection(s), {} other secret(s) under the key in {}; start garrison with --seal-key-file {} (the old key no longer opens the store)",
            r.external_ids,
            r.credentials,
            r.connections,
            r.meta,
            a.new_key_file.display(),
            a.new_key_file.display()
        )),
        Err(e) => {
            // Nothing changed: the new key is of no use.
            let _ = std::fs::remove_file(&a.new_key_file);
            Err(anyhow::anyhow!("rotation failed, nothing changed: {e}"))
        }
    }
}

pub async fn main(argv: Vec<String>) -> ExitCode {
    serve::init_tracing_default("warn");
    let pos = argv.iter().position(|a| a == "rotate-seal-key").unwrap_or(1);
    let args = Args::parse_from(
        std::iter::once("garrison rotate-seal-key".to_string()).chain(argv[pos + 1..].iter().cloned()),
    );
    match run(args).await {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("garrison rotate-seal-key: {e:#}");
            ExitCode::from(1)
        }
    }
}
