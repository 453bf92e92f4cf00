//! The den a terminal signed in to: its URL and an API token, in a file only its owner can
//! read. Where the file lives is the caller's choice (the den binary uses the user's config
//! directory); this module never reads the environment.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The stored sign-in.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The den's base URL.
    pub url: String,
    /// An API token (`den_…`), sent as `Authorization: Bearer`.
    pub token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a den credentials file: {message}")]
    Malformed { path: String, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The stored sign-in, or `None` when there is no file.
pub fn load(path: &Path) -> Result<Option<Credentials>, CredentialsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CredentialsError::Read {
                path: path.display().to_string(),
                source,
            });
        }
    };
    toml::from_str(&text)
        .map(Some)
        .map_err(|err| CredentialsError::Malformed {
            path: path.display().to_string(),
            message: err.message().to_owned(),
        })
}

/// Writes the sign-in, readable by its owner only (the directory too, when it creates it).
/// The file is replaced whole, so a reader never sees half of it.
pub fn save(path: &Path, credentials: &Credentials) -> Result<(), CredentialsError> {
    let write_error = |source| CredentialsError::Write {
        path: path.display().to_string(),
        source,
    };
    let text = toml::to_string(credentials).map_err(|err| CredentialsError::Malformed {
        path: path.display().to_string(),
        message: err.to_string(),
    })?;
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(write_error)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(write_error)?;
    }
    let temporary = path.with_extension("toml.tmp");
    let _ = std::fs::remove_file(&temporary);
    // Created 0600, so the token is never readable by others, not even for a moment.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(write_error)?;
    file.write_all(text.as_bytes()).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    std::fs::rename(&temporary, path).map_err(write_error)?;
    Ok(())
}

/// Forgets the sign-in; true when there was one.
pub fn remove(path: &Path) -> Result<bool, CredentialsError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(CredentialsError::Write {
            path: path.display().to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_round_trip_in_a_file_only_the_owner_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("den").join("credentials.toml");
        assert_eq!(load(&path).unwrap(), None);
        let credentials = Credentials {
            url: "http://127.0.0.1:8787/".to_owned(),
            token: "den_abc".to_owned(),
        };
        save(&path, &credentials).unwrap();
        assert_eq!(load(&path).unwrap(), Some(credentials.clone()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert!(!format!("{credentials:?}").contains("den_abc"));
        assert!(remove(&path).unwrap());
        assert!(!remove(&path).unwrap());
        assert_eq!(load(&path).unwrap(), None);
    }

    #[test]
    fn a_malformed_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.toml");
        std::fs::write(&path, "url = 3\n").unwrap();
        let err = load(&path).unwrap_err();
        assert!(matches!(err, CredentialsError::Malformed { .. }), "{err}");
        assert!(err.to_string().contains("credentials.toml"), "{err}");
    }
}
