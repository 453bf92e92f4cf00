//! The one error type of this crate. Messages are written for the person running den: each says
//! what was wrong and, where there is one, what to change.

use std::path::PathBuf;

use crate::spec::SandboxId;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The spec asks for something this host cannot give or that makes no sense.
    #[error("invalid sandbox spec: {0}")]
    InvalidSpec(String),
    #[error("workspace source {} does not exist or is not a directory", path.display())]
    MissingWorkspace { path: PathBuf },
    #[error("sandbox {id} not found")]
    NotFound { id: SandboxId },
    #[error("sandbox {id} is not running")]
    NotRunning { id: SandboxId },
    #[error("port {port} is not exposed by sandbox {id}")]
    PortNotExposed { id: SandboxId, port: u16 },
    #[error("artifact {} does not exist", path.display())]
    MissingArtifact { path: PathBuf },
    /// Nothing of the sandbox is left behind when this is returned.
    #[error("artifact {} is corrupt or not a den snapshot: {reason}", path.display())]
    CorruptArtifact { path: PathBuf, reason: String },
    #[error("invalid artifact key {0:?}: use letters, digits, '.', '_' and '-' only")]
    InvalidArtifactKey(String),
    /// The runtime's configuration or the host is unusable (missing tools, no cgroup2, ...).
    #[error("sandbox host setup: {0}")]
    Host(String),
    /// The system call filter could not be built or handed to the sandbox.
    #[error("sandbox seccomp filter: {0}")]
    Seccomp(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} timed out after {secs} s")]
    Timeout { what: String, secs: u64 },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
}

pub type Result<T, E = SandboxError> = std::result::Result<T, E>;

/// Attaches "what we were doing" to an io error, which on its own says only "No such file".
pub(crate) trait IoContext<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| SandboxError::Io {
            what: what(),
            source,
        })
    }
}

impl<T> IoContext<T> for nix::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|errno| SandboxError::Io {
            what: what(),
            source: std::io::Error::from(errno),
        })
    }
}
