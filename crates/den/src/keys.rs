//! The master key: from `DEN_MASTER_KEY`, or a key file den creates (mode 0600) in the data dir.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use den_store::Keyring;

/// Where the keyring came from (rotation can only rewrite a file).
pub(crate) enum KeySource {
    Environment,
    File,
}

/// Loads the keyring, creating the key file on first run.
pub(crate) fn load_or_create(key_file: &Path) -> anyhow::Result<(Keyring, KeySource)> {
    if let Ok(text) = std::env::var("DEN_MASTER_KEY") {
        let keyring = Keyring::parse(&text).context("DEN_MASTER_KEY")?;
        return Ok((keyring, KeySource::Environment));
    }
    if key_file.exists() {
        let text = std::fs::read_to_string(key_file)
            .with_context(|| format!("reading {}", key_file.display()))?;
        let keyring =
            Keyring::parse(&text).with_context(|| format!("key file {}", key_file.display()))?;
        return Ok((keyring, KeySource::File));
    }
    let keyring = Keyring::generate()?;
    write_key_file(key_file, &keyring)?;
    tracing::info!(file = %key_file.display(), "created a new master key");
    Ok((keyring, KeySource::File))
}

/// Writes the keyring atomically (temp file + rename), readable by the owner only.
pub(crate) fn write_key_file(key_file: &Path, keyring: &Keyring) -> anyhow::Result<()> {
    let temp = key_file.with_extension("key.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .with_context(|| format!("creating {}", temp.display()))?;
    file.write_all(keyring.to_text().as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temp, key_file).with_context(|| format!("writing {}", key_file.display()))?;
    Ok(())
}
