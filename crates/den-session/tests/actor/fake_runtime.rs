//! A sandbox runtime that starts nothing: each "sandbox" is the fake OpenCode's socket, and a
//! snapshot is a small file. It counts what den asked of it and can be told to fail or hold
//! snapshots.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use den_sandbox::{
    ArtifactInfo, BoxFuture, BoxStream, ExecOutput, ExecRequest, ProgressSender, SandboxError,
    SandboxHandle, SandboxId, SandboxRuntime, SandboxSpec, SandboxStatus,
};
use den_session::agent_sandbox::OPENCODE_PORT;
use tokio::sync::{Semaphore, watch};

/// More snapshots than any test takes at once.
const PERMITS: u32 = 1 << 20;

#[derive(Default)]
pub struct Counts {
    pub creates: usize,
    pub restores: Vec<PathBuf>,
    pub snapshots: usize,
    pub destroys: usize,
}

pub struct FakeRuntime {
    agent_socket: PathBuf,
    counts: Mutex<Counts>,
    fail_snapshots: Mutex<bool>,
    /// Each snapshot takes a permit: none available holds snapshots until the test adds some.
    snapshot_permits: Arc<Semaphore>,
    sandboxes: Mutex<BTreeMap<SandboxId, watch::Sender<SandboxStatus>>>,
}

impl FakeRuntime {
    pub fn new(agent_socket: &Path) -> Arc<Self> {
        Arc::new(Self {
            agent_socket: agent_socket.to_owned(),
            counts: Mutex::default(),
            fail_snapshots: Mutex::new(false),
            snapshot_permits: Arc::new(Semaphore::new(PERMITS as usize)),
            sandboxes: Mutex::default(),
        })
    }

    pub fn counts<T>(&self, read: impl FnOnce(&Counts) -> T) -> T {
        read(&self.counts.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn fail_snapshots(&self, fail: bool) {
        *self
            .fail_snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = fail;
    }

    /// Holds every snapshot from now on until [`Self::release_snapshots`].
    pub async fn hold_snapshots(&self) {
        let all = self.snapshot_permits.acquire_many(PERMITS).await.unwrap();
        all.forget();
    }

    pub fn release_snapshots(&self) {
        self.snapshot_permits.add_permits(PERMITS as usize);
    }

    fn start(&self) -> SandboxHandle {
        let id = SandboxId::new();
        let (status, watch) = watch::channel(SandboxStatus::Running);
        self.sandboxes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), status);
        SandboxHandle {
            id,
            endpoints: BTreeMap::from([(OPENCODE_PORT, self.agent_socket.clone())]),
            status: watch,
            start_slot: Default::default(),
        }
    }
}

impl SandboxRuntime for FakeRuntime {
    fn create(
        &self,
        _spec: SandboxSpec,
        _progress: Option<ProgressSender>,
    ) -> BoxFuture<'_, den_sandbox::Result<SandboxHandle>> {
        Box::pin(async move {
            self.counts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .creates += 1;
            Ok(self.start())
        })
    }

    fn restore<'a>(
        &'a self,
        artifact: &'a Path,
        _spec: SandboxSpec,
        _progress: Option<ProgressSender>,
    ) -> BoxFuture<'a, den_sandbox::Result<SandboxHandle>> {
        Box::pin(async move {
            if !artifact.is_file() {
                return Err(SandboxError::MissingArtifact {
                    path: artifact.to_owned(),
                });
            }
            self.counts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .restores
                .push(artifact.to_owned());
            Ok(self.start())
        })
    }

    fn attach_workspace<'a>(
        &'a self,
        id: &'a SandboxId,
        workspace: &'a Path,
        _home_files: Vec<den_sandbox::HomeFile>,
    ) -> BoxFuture<'a, den_sandbox::Result<()>> {
        Box::pin(async move {
            if !workspace.is_dir() {
                return Err(SandboxError::MissingWorkspace {
                    path: workspace.to_owned(),
                });
            }
            if !self
                .sandboxes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains_key(id)
            {
                return Err(SandboxError::NotFound { id: id.clone() });
            }
            Ok(())
        })
    }

    fn status(&self, _id: &SandboxId) -> den_sandbox::Result<SandboxStatus> {
        Ok(SandboxStatus::Running)
    }

    fn watch(&self, id: &SandboxId) -> den_sandbox::Result<watch::Receiver<SandboxStatus>> {
        self.sandboxes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .map(watch::Sender::subscribe)
            .ok_or_else(|| SandboxError::NotRunning { id: id.clone() })
    }

    fn connect<'a>(
        &'a self,
        id: &'a SandboxId,
        _port: u16,
    ) -> BoxFuture<'a, den_sandbox::Result<BoxStream>> {
        Box::pin(async move { Err(SandboxError::NotRunning { id: id.clone() }) })
    }

    fn freeze<'a>(&'a self, _id: &'a SandboxId) -> BoxFuture<'a, den_sandbox::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn thaw<'a>(&'a self, _id: &'a SandboxId) -> BoxFuture<'a, den_sandbox::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn snapshot<'a>(
        &'a self,
        id: &'a SandboxId,
        dest: &'a Path,
    ) -> BoxFuture<'a, den_sandbox::Result<ArtifactInfo>> {
        Box::pin(async move {
            let _permit = self.snapshot_permits.acquire().await.unwrap();
            let fail = *self
                .fail_snapshots
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if fail {
                return Err(SandboxError::NotRunning { id: id.clone() });
            }
            let n = {
                let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
                counts.snapshots += 1;
                counts.snapshots
            };
            tokio::fs::write(dest, format!("snapshot {n}"))
                .await
                .unwrap();
            Ok(ArtifactInfo {
                path: dest.to_owned(),
                size_bytes: 10,
            })
        })
    }

    fn stop<'a>(&'a self, _id: &'a SandboxId) -> BoxFuture<'a, den_sandbox::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn destroy<'a>(&'a self, id: &'a SandboxId) -> BoxFuture<'a, den_sandbox::Result<()>> {
        Box::pin(async move {
            self.counts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .destroys += 1;
            self.sandboxes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(id);
            Ok(())
        })
    }

    fn exec<'a>(
        &'a self,
        id: &'a SandboxId,
        _request: ExecRequest,
    ) -> BoxFuture<'a, den_sandbox::Result<ExecOutput>> {
        Box::pin(async move { Err(SandboxError::NotRunning { id: id.clone() }) })
    }

    fn logs<'a>(
        &'a self,
        _id: &'a SandboxId,
        _max_bytes: usize,
    ) -> BoxFuture<'a, den_sandbox::Result<Vec<u8>>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}
