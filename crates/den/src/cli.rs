//! The commands. Each returns the process exit code.

pub(crate) mod doctor;
pub(crate) mod keys;
pub(crate) mod serve;
pub(crate) mod sessions;
pub(crate) mod snapshots;
pub(crate) mod user;

use std::process::ExitCode;

use anyhow::Context;
use den_store::Store;

use crate::config::{Settings, ensure_data_dir};

/// Opens the store (creating the data dir and master key on first use), without migrating.
pub(crate) async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    ensure_data_dir(&settings.data_dir)?;
    let (keyring, _) = crate::keys::load_or_create(&settings.master_key_file())?;
    let store = Store::connect_without_migrating(&settings.database_url(), keyring)
        .await
        .context("opening the database")?;
    make_database_private(settings);
    Ok(store)
}

/// SQLite creates its files with the process umask; den's database holds hashes and sealed
/// secrets, so only its owner may read it. (The WAL and shared-memory files take the
/// database's mode.)
fn make_database_private(settings: &Settings) {
    use std::os::unix::fs::PermissionsExt;
    if settings.database_url.is_some() {
        return;
    }
    for name in ["den.db", "den.db-wal", "den.db-shm"] {
        let path = settings.data_dir.join(name);
        if path.exists() {
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        }
    }
}

/// Opens the store and applies pending migrations.
pub(crate) async fn open_migrated_store(settings: &Settings) -> anyhow::Result<Store> {
    let store = open_store(settings).await?;
    store.migrate().await.context("migrating the database")?;
    Ok(store)
}

/// `den migrate`.
pub(crate) async fn migrate(settings: Settings) -> anyhow::Result<ExitCode> {
    let store = open_store(&settings).await?;
    let applied = store.migrate().await.context("migrating the database")?;
    println!(
        "applied {applied} migration(s) to the {} database",
        store.backend_name()
    );
    Ok(ExitCode::SUCCESS)
}
