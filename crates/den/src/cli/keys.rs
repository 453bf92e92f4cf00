//! `den keys rotate`: a new master key, and every secret re-sealed with it.

use std::process::ExitCode;

use crate::config::Settings;
use crate::keys::{KeySource, load_or_create, write_key_file};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum KeysCommand {
    /// Add a new master key, re-seal every secret with it, then drop the old key.
    Rotate,
}

pub(crate) async fn run(settings: Settings, command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Rotate => rotate(settings).await,
    }
}

async fn rotate(settings: Settings) -> anyhow::Result<ExitCode> {
    let key_file = settings.master_key_file();
    let (keyring, source) = load_or_create(&key_file)?;
    if let KeySource::Environment = source {
        anyhow::bail!(
            "the master key comes from DEN_MASTER_KEY, which den cannot rewrite; \
             rotate by unsetting it and using the key file, or set DEN_MASTER_KEY to \
             'NEW_VERSION:NEW_KEY,OLD_VERSION:OLD_KEY' yourself and run this again"
        );
    }
    let rotated = keyring.with_new_key()?;
    // Both keys are on disk before any record changes, so a crash part way leaves every
    // record readable, and running the command again finishes the job.
    write_key_file(&key_file, &rotated)?;
    let store = super::open_migrated_store(&settings)
        .await?
        .with_keyring(rotated.clone());
    let resealed = store.reseal_secrets(&rotated).await?;
    write_key_file(&key_file, &rotated.current_only())?;
    println!(
        "master key rotated to version {}; {resealed} secret(s) re-sealed",
        rotated.current_version()
    );
    Ok(ExitCode::SUCCESS)
}
