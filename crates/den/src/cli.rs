//! The commands. Each returns the process exit code.

pub(crate) mod doctor;
pub(crate) mod keys;
pub(crate) mod serve;
pub(crate) mod user;

use std::process::ExitCode;

use anyhow::Context;
use den_store::Store;

use crate::config::{Settings, ensure_private_dir};

/// Opens the store (creating the data dir and master key on first use), without migrating.
pub(crate) async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    ensure_private_dir(&settings.data_dir)?;
    let (keyring, _) = crate::keys::load_or_create(&settings.master_key_file())?;
    Store::connect_without_migrating(&settings.database_url(), keyring)
        .await
        .context("opening the database")
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
