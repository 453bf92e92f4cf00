//! The backend-neutral interface den's session layer programs against. A Kubernetes backend will
//! implement the same trait; everything host-specific stays behind it.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};

use crate::error::Result;
use crate::exec::{ExecOutput, ExecRequest};
use crate::spec::{CreateProgress, SandboxId, SandboxSpec, SandboxStatus};

/// Boxed futures keep the trait object safe (`Arc<dyn SandboxRuntime>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A byte stream to a port inside a sandbox, usable as an HTTP connection.
pub trait SandboxStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> SandboxStream for T {}
pub type BoxStream = Box<dyn SandboxStream>;

pub type ProgressSender = mpsc::UnboundedSender<CreateProgress>;

/// What `create` and `restore` return.
#[derive(Debug, Clone)]
pub struct SandboxHandle {
    pub id: SandboxId,
    /// For each exposed port, a host unix socket bridged to `127.0.0.1:port` inside, for HTTP
    /// clients that take a unix socket path (e.g. `reqwest::ClientBuilder::unix_socket`).
    pub endpoints: BTreeMap<u16, PathBuf>,
    pub status: watch::Receiver<SandboxStatus>,
    /// This sandbox's slot in the create queue. Starting OpenCode is what costs CPU, so the slot
    /// is held past `create` until the caller says the service is ready (`mark_ready`), the
    /// sandbox exits, or the backend's hold time passes.
    pub start_slot: StartSlot,
}

/// See [`SandboxHandle::start_slot`].
#[derive(Clone, Default)]
pub struct StartSlot(pub(crate) Arc<Mutex<SlotState>>);

/// What the slot holds until it is released.
#[derive(Default)]
pub(crate) struct SlotState {
    pub(crate) permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Runs once, on release: the backend's "starting is over" step (e.g. the CPU limit).
    pub(crate) on_release: Option<Box<dyn FnOnce() + Send>>,
}

impl std::fmt::Debug for StartSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StartSlot")
    }
}

impl StartSlot {
    /// Frees the slot for the next queued create and ends the start. Idempotent.
    pub fn mark_ready(&self) {
        let release = {
            let mut state = lock(&self.0);
            state.permit.take();
            state.on_release.take()
        };
        if let Some(release) = release {
            release();
        }
    }
}

/// Takes a std mutex whoever held it before. The crate's mutexes guard plain tables changed
/// in single statements, so a panic while one was held cannot leave it half-written: the one
/// way this crate treats a poisoned lock is to go on with the data.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Metadata of a snapshot archive (tar + zstd of the sandbox's writable layers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactInfo {
    pub path: PathBuf,
    pub size_bytes: u64,
}

pub trait SandboxRuntime: Send + Sync {
    /// Starts a sandbox. Waits in the create queue first; `progress` hears the queue position.
    fn create(
        &self,
        spec: SandboxSpec,
        progress: Option<ProgressSender>,
    ) -> BoxFuture<'_, Result<SandboxHandle>>;

    /// Starts a fresh sandbox (new id, new uid) whose writable layers come from `artifact`.
    /// `spec.workspace` must be the same base checkout the snapshot was taken on. A missing or
    /// corrupt artifact is an error and leaves nothing behind.
    fn restore<'a>(
        &'a self,
        artifact: &'a Path,
        spec: SandboxSpec,
        progress: Option<ProgressSender>,
    ) -> BoxFuture<'a, Result<SandboxHandle>>;

    /// Gives a sandbox started with `SandboxSpec::workspace_later` its workspace: `workspace`
    /// (a prepared checkout, never written: seen through an overlay as at create) appears at
    /// `/workspace` inside the running sandbox, and `home_files` are written into its HOME
    /// (as its user; an existing file is replaced). The sandbox's lifetime starts again. Once
    /// only; a sandbox started with its workspace, or given one already, is refused.
    fn attach_workspace<'a>(
        &'a self,
        id: &'a SandboxId,
        workspace: &'a Path,
        home_files: Vec<crate::spec::HomeFile>,
    ) -> BoxFuture<'a, Result<()>>;

    fn status(&self, id: &SandboxId) -> Result<SandboxStatus>;

    fn watch(&self, id: &SandboxId) -> Result<watch::Receiver<SandboxStatus>>;

    /// A new connection to `127.0.0.1:port` inside the sandbox (the port must be exposed).
    fn connect<'a>(&'a self, id: &'a SandboxId, port: u16) -> BoxFuture<'a, Result<BoxStream>>;

    fn freeze<'a>(&'a self, id: &'a SandboxId) -> BoxFuture<'a, Result<()>>;

    fn thaw<'a>(&'a self, id: &'a SandboxId) -> BoxFuture<'a, Result<()>>;

    /// Archives the writable workspace layer and HOME into `dest` (the sandbox is frozen while
    /// it is read, then returned to its previous state).
    fn snapshot<'a>(
        &'a self,
        id: &'a SandboxId,
        dest: &'a Path,
    ) -> BoxFuture<'a, Result<ArtifactInfo>>;

    /// Kills everything in the sandbox; its files stay until `destroy`.
    fn stop<'a>(&'a self, id: &'a SandboxId) -> BoxFuture<'a, Result<()>>;

    /// Stops the sandbox and removes all it left on the host.
    fn destroy<'a>(&'a self, id: &'a SandboxId) -> BoxFuture<'a, Result<()>>;

    /// Runs a command inside the running sandbox, as its user, in its files, network and
    /// limits (for den's own steps such as the diff; never on the host). A frozen or exited
    /// sandbox is `NotRunning`.
    fn exec<'a>(
        &'a self,
        id: &'a SandboxId,
        request: ExecRequest,
    ) -> BoxFuture<'a, Result<ExecOutput>>;

    /// The last `max_bytes` of the command's stdout and stderr.
    fn logs<'a>(&'a self, id: &'a SandboxId, max_bytes: usize) -> BoxFuture<'a, Result<Vec<u8>>>;
}
