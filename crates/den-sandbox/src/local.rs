//! The local Linux backend: bubblewrap + network namespace + slirp4netns + nftables + cgroups +
//! overlayfs, as measured in the sandbox spike. Requires root (or CAP_SYS_ADMIN +
//! CAP_NET_ADMIN + CAP_SETUID/SETGID + CAP_CHOWN).
//!
//! All host state of one runtime lives under `LocalConfig::root_dir` and in cgroup directories
//! and an nftables table named `densbx-<instance>`, so the reaper can find what a crashed den left.

mod attach;
mod cgroup;
mod exec;
mod firewall;
mod instance;
mod launch;
mod mounts;
mod net;
mod queue;
mod reaper;
mod seccomp;
mod snapshot;
mod supervise;

use crate::runtime::lock;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::error::{IoContext, Result, SandboxError};
use crate::exec::{ExecOutput, ExecRequest};
use crate::runtime::{
    ArtifactInfo, BoxFuture, BoxStream, ProgressSender, SandboxHandle, SandboxRuntime, StartSlot,
};
use crate::spec::{
    CreateProgress, ExitReason, Limits, NetworkPolicy, SandboxId, SandboxSpec, SandboxStatus,
};
use cgroup::{Cgroup, CgroupLayout};
use launch::{Launch, Layout};
use supervise::{StopRequest, Supervised};

pub use reaper::ReapReport;

#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Holds every sandbox's directories. Its ancestors must be traversable by other users
    /// (o+x), because bubblewrap runs as the sandbox's unprivileged uid.
    pub root_dir: PathBuf,
    /// Distinguishes several runtimes on one host (e.g. parallel tests): names all host state.
    pub instance: String,
    /// Sandboxes run as host uids `uid_base .. uid_base + uid_count`, one each.
    pub uid_base: u32,
    pub uid_count: u32,
    /// How many sandboxes may be starting at once; more wait in the queue. A sandbox counts as
    /// starting until `SandboxHandle::start_slot.mark_ready()`, its exit, or `start_slot_hold`.
    pub max_concurrent_creates: usize,
    pub start_slot_hold: std::time::Duration,
    /// Lower layer of every sandbox's HOME (see scripts/install-opencode-home).
    pub home_template: Option<PathBuf>,
    pub bwrap: PathBuf,
    pub slirp4netns: PathBuf,
}

impl LocalConfig {
    pub fn new(root_dir: impl Into<PathBuf>) -> Self {
        Self {
            root_dir: root_dir.into(),
            instance: "den".into(),
            uid_base: 2_000_000,
            uid_count: 10_000,
            max_concurrent_creates: 2,
            start_slot_hold: std::time::Duration::from_secs(30),
            home_template: None,
            bwrap: "bwrap".into(),
            slirp4netns: "slirp4netns".into(),
        }
    }

    fn prefix(&self) -> String {
        format!("densbx-{}", self.instance)
    }
}

struct Live {
    uid: u32,
    layout: Layout,
    netns: Arc<OwnedFd>,
    cgroup: Arc<Cgroup>,
    stop: Arc<StopRequest>,
    status: watch::Receiver<SandboxStatus>,
    status_tx: watch::Sender<SandboxStatus>,
    expose: Vec<u16>,
    /// Started with `workspace_later` and not given its workspace yet.
    awaits_workspace: std::sync::atomic::AtomicBool,
    restart_lifetime: Arc<tokio::sync::Notify>,
}

pub struct LocalRuntime {
    cfg: LocalConfig,
    layout: CgroupLayout,
    prefix: String,
    queue: queue::CreateQueue,
    sandboxes: Mutex<HashMap<SandboxId, Arc<Live>>>,
    uids: Mutex<BTreeSet<u32>>,
    next_uid: std::sync::atomic::AtomicU32,
    host_cpus: u32,
    host_memory: u64,
    /// Held until shutdown (or the process dies): no second runtime of this instance.
    lock: Mutex<Option<instance::InstanceLock>>,
}

impl LocalRuntime {
    /// Checks the host, takes the instance's lock (refusing to start beside a live runtime
    /// of the same instance), reaps what a previous run of this instance left and what dead
    /// instances left, and installs the network guard. Returns the runtime and what the
    /// reaper removed.
    pub async fn start(cfg: LocalConfig) -> Result<(Arc<Self>, ReapReport)> {
        if cfg.instance.is_empty() || !cfg.instance.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SandboxError::Host(format!(
                "instance name {:?} must be non-empty alphanumeric",
                cfg.instance
            )));
        }
        std::fs::create_dir_all(cfg.root_dir.join("sandboxes"))
            .ctx(|| format!("create {}", cfg.root_dir.display()))?;
        check_traversable(&cfg.root_dir)?;
        let layout = CgroupLayout::detect()?;
        let prefix = cfg.prefix();
        let lock = instance::InstanceLock::acquire(&prefix, &cfg.instance).await?;
        let mut report = reaper::reap(&cfg.root_dir, &layout, &prefix).await?;
        if !report.is_empty() {
            tracing::warn!(?report, "reaper removed state left by an earlier run");
        }
        report.dead_instances = instance::sweep_dead(&layout, &prefix).await?;
        if report.dead_instances > 0 {
            tracing::warn!(
                count = report.dead_instances,
                "removed the cgroups and firewall tables of sandbox instances whose den is gone"
            );
        }
        layout.prepare_instance(&prefix)?;
        let slirp_dir = layout.slirp_dir(&prefix);
        std::fs::create_dir_all(&slirp_dir).ctx(|| format!("create {}", slirp_dir.display()))?;
        let (cg_path, level) = layout.nft_cgroup_ref(&slirp_dir)?;
        let table = firewall::table_name(&prefix);
        firewall::install(
            &table,
            &firewall::ruleset(&table, &cg_path, level, &firewall::resolvers()),
        )
        .await?;
        let empty = cfg.root_dir.join("empty");
        std::fs::create_dir_all(&empty).ctx(|| format!("create {}", empty.display()))?;
        let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let host_memory = host_memory_bytes();
        let rt = Self {
            queue: queue::CreateQueue::new(cfg.max_concurrent_creates),
            cfg,
            layout,
            prefix,
            sandboxes: Mutex::new(HashMap::new()),
            uids: Mutex::new(BTreeSet::new()),
            next_uid: std::sync::atomic::AtomicU32::new(0),
            host_cpus,
            host_memory,
            lock: Mutex::new(Some(lock)),
        };
        Ok((Arc::new(rt), report))
    }

    pub fn config(&self) -> &LocalConfig {
        &self.cfg
    }

    /// Stops and removes every sandbox, the network guard and the instance's cgroups.
    pub async fn shutdown(&self) -> Result<()> {
        let mut first_err = None;
        for id in self.live_ids() {
            if let Err(e) = self.destroy_inner(&id).await {
                first_err.get_or_insert(e);
            }
        }
        // The reaper removes whatever a failed destroy left (it kills by cgroup).
        let report = reaper::reap(&self.cfg.root_dir, &self.layout, &self.prefix).await?;
        if !report.left.is_empty() {
            first_err.get_or_insert(SandboxError::Host(format!(
                "shutting down left {}",
                report.left.join("; ")
            )));
        }
        lock(&self.sandboxes).clear();
        // Nothing of the instance is left: another runtime may take the name.
        if let Some(held) = lock(&self.lock).take() {
            held.remove();
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Names of host resources of this instance still present (for leak checks).
    pub async fn leftovers(&self) -> Vec<String> {
        reaper::leftovers(
            &self.cfg.root_dir,
            &self.layout,
            &self.prefix,
            self.cfg.uid_base..self.cfg.uid_base.saturating_add(self.cfg.uid_count),
        )
        .await
    }

    fn live_ids(&self) -> Vec<SandboxId> {
        lock(&self.sandboxes).keys().cloned().collect()
    }

    fn get(&self, id: &SandboxId) -> Result<Arc<Live>> {
        lock(&self.sandboxes)
            .get(id)
            .cloned()
            .ok_or_else(|| SandboxError::NotFound { id: id.clone() })
    }

    /// pids.current, OOM kills and pid-limit hits of a sandbox (tests and benchmarks).
    pub fn stats(&self, id: &SandboxId) -> Result<SandboxStats> {
        let live = self.get(id)?;
        let s = live.cgroup.stats();
        let rss_kb = live.cgroup.pids().iter().map(|p| rss_kb(*p)).sum();
        Ok(SandboxStats {
            pids: s.pids_current,
            pid_limit_hits: s.pids_max_hits,
            oom_kills: s.oom_kills,
            rss_kb,
            uid: live.uid,
            cpu_millicpus: live.cgroup.cpu_millicpus(),
        })
    }

    /// Round-robin over the range, so a just-freed uid is the last to be reused (a restored
    /// sandbox never gets the uid of the one it replaces while others are free).
    fn alloc_uid(&self) -> Result<u32> {
        let mut used = lock(&self.uids);
        let count = self.cfg.uid_count.max(1);
        let start = self
            .next_uid
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let uid = (0..count)
            .map(|i| self.cfg.uid_base + (start.wrapping_add(i) % count))
            .find(|u| !used.contains(u))
            .ok_or_else(|| SandboxError::Host("all sandbox uids are in use".into()))?;
        self.next_uid.store(
            uid - self.cfg.uid_base + 1,
            std::sync::atomic::Ordering::Relaxed,
        );
        used.insert(uid);
        Ok(uid)
    }

    fn free_uid(&self, uid: u32) {
        lock(&self.uids).remove(&uid);
    }

    async fn create_inner(
        &self,
        spec: SandboxSpec,
        artifact: Option<&Path>,
        progress: Option<ProgressSender>,
    ) -> Result<SandboxHandle> {
        spec.validate(self.host_cpus, self.host_memory)?;
        if let Some(a) = artifact
            && !a.is_file()
        {
            return Err(SandboxError::MissingArtifact {
                path: a.to_path_buf(),
            });
        }
        let permit = self.queue.acquire(progress.as_ref()).await;
        if let Some(p) = &progress {
            let _ = p.send(CreateProgress::Starting);
        }
        let id = SandboxId::new();
        let uid = self.alloc_uid()?;
        let layout = Layout {
            dir: self.cfg.root_dir.join("sandboxes").join(id.as_str()),
        };
        let mut cleanup = Cleanup {
            layout: Some(layout.clone()),
            cgroup: None,
        };
        let r = self
            .start_sandbox(&id, uid, &layout, &spec, artifact, &mut cleanup)
            .await;
        if r.is_err() {
            self.free_uid(uid);
            cleanup.run().await;
        }
        let handle = r?;
        let cgroup = lock(&self.sandboxes)
            .get(&id)
            .map(|live| live.cgroup.clone());
        let millicpus = spec.limits.millicpus;
        {
            let mut slot = lock(&handle.start_slot.0);
            slot.permit = Some(permit);
            slot.on_release = Some(Box::new(move || {
                // A sandbox that exited before it was ready has no cgroup left to limit.
                if let Some(cgroup) = cgroup
                    && cgroup.v2.exists()
                    && let Err(err) = cgroup.set_cpu(millicpus)
                {
                    tracing::warn!(error = %err, "cannot apply the CPU limit after start");
                }
            }));
        }
        let (slot, mut status, hold) = (
            handle.start_slot.clone(),
            handle.status.clone(),
            self.cfg.start_slot_hold,
        );
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(hold) => {}
                _ = status.wait_for(SandboxStatus::is_exited) => {}
            }
            slot.mark_ready();
        });
        if let Some(p) = &progress {
            let _ = p.send(CreateProgress::Started);
        }
        Ok(handle)
    }

    async fn start_sandbox(
        &self,
        id: &SandboxId,
        uid: u32,
        layout: &Layout,
        spec: &SandboxSpec,
        artifact: Option<&Path>,
        cleanup: &mut Cleanup,
    ) -> Result<SandboxHandle> {
        if let Some(a) = artifact {
            let (a, dir) = (a.to_path_buf(), layout.dir.clone());
            tokio::task::spawn_blocking(move || snapshot::unpack(&a, &dir, uid))
                .await
                .map_err(|e| SandboxError::Host(format!("restore task failed: {e}")))??;
        }
        layout.create(uid, spec)?;
        // While it starts (until its slot is released) a sandbox may use every CPU of the host:
        // OpenCode's boot is CPU-bound and parallel, and nothing of the agent runs yet (prompts
        // come after ready). The create queue bounds how many start at once; the spec's CPU
        // limit applies from release on (see `create`).
        let start_limits = Limits {
            millicpus: self
                .host_cpus
                .saturating_mul(1000)
                .max(spec.limits.millicpus),
            ..spec.limits
        };
        let cgroup = Arc::new(
            self.layout
                .create(&self.prefix, id.as_str(), &start_limits)?,
        );
        cleanup.cgroup = Some(cgroup.clone());
        let netns = Arc::new(net::create_netns().await?);
        let slirp = match spec.network {
            NetworkPolicy::Internet => {
                let procs = std::fs::OpenOptions::new()
                    .write(true)
                    .open(self.layout.slirp_dir(&self.prefix).join("cgroup.procs"))
                    .ctx(|| "open the slirp cgroup".into())?;
                let log = std::fs::File::create(layout.dir.join("slirp.log"))
                    .ctx(|| "create slirp.log".into())?;
                Some(
                    net::Slirp::start(&self.cfg.slirp4netns.to_string_lossy(), &netns, procs, log)
                        .await?,
                )
            }
            NetworkPolicy::None => None,
        };
        let mut bridges = JoinSet::new();
        for f in &spec.forwards {
            let l = net::listen(&netns, f.sandbox_port)
                .await
                .ctx(|| format!("listen on port {} inside the sandbox", f.sandbox_port))?;
            supervise::forward(&mut bridges, l, f.host_socket.clone());
        }
        let mut endpoints = BTreeMap::new();
        for port in &spec.expose {
            let path = layout.run().join(format!("{port}.sock"));
            let l =
                tokio::net::UnixListener::bind(&path).ctx(|| format!("bind {}", path.display()))?;
            supervise::expose(&mut bridges, l, netns.clone(), *port);
            endpoints.insert(*port, path);
        }
        let empty = self.cfg.root_dir.join("empty");
        let home_lower = self.cfg.home_template.as_deref().unwrap_or(&empty);
        let child = Launch {
            bwrap: &self.cfg.bwrap,
            layout,
            spec,
            home_lower,
            empty: &empty,
            uid,
            netns: &netns,
            cgroup_procs: cgroup.procs_files()?,
        }
        .spawn()?;
        let (status_tx, status) = watch::channel(SandboxStatus::Running);
        let stop = Arc::new(StopRequest::default());
        let restart_lifetime = Arc::new(tokio::sync::Notify::new());
        let live = Arc::new(Live {
            uid,
            layout: layout.clone(),
            netns,
            cgroup: cgroup.clone(),
            stop: stop.clone(),
            status: status.clone(),
            status_tx: status_tx.clone(),
            expose: spec.expose.clone(),
            awaits_workspace: std::sync::atomic::AtomicBool::new(spec.workspace_later),
            restart_lifetime: restart_lifetime.clone(),
        });
        tokio::spawn(
            Supervised {
                child,
                slirp,
                bridges,
                cgroup,
                lifetime: spec.lifetime,
                restart_lifetime,
                stop,
                status: status_tx,
            }
            .run(),
        );
        lock(&self.sandboxes).insert(id.clone(), live);
        cleanup.disarm();
        Ok(SandboxHandle {
            id: id.clone(),
            endpoints,
            status,
            start_slot: StartSlot::default(),
        })
    }

    async fn stop_inner(&self, id: &SandboxId) -> Result<()> {
        let live = self.get(id)?;
        live.stop.set(ExitReason::Stopped);
        live.cgroup.kill_all().await?;
        let mut rx = live.status.clone();
        let wait = rx.wait_for(SandboxStatus::is_exited);
        tokio::time::timeout(std::time::Duration::from_secs(30), wait)
            .await
            .map_err(|_| SandboxError::Timeout {
                what: format!("stopping {id}"),
                secs: 30,
            })?
            .map_err(|_| SandboxError::Host("sandbox supervisor vanished".into()))?;
        Ok(())
    }

    async fn destroy_inner(&self, id: &SandboxId) -> Result<()> {
        self.stop_inner(id).await?;
        let live = self.get(id)?;
        live.cgroup.remove().await?;
        let dir = live.layout.dir.clone();
        tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir))
            .await
            .map_err(|e| SandboxError::Host(format!("remove task failed: {e}")))?
            .ctx(|| format!("remove {}", live.layout.dir.display()))?;
        lock(&self.sandboxes).remove(id);
        self.free_uid(live.uid);
        Ok(())
    }

    async fn snapshot_inner(&self, id: &SandboxId, dest: &Path) -> Result<ArtifactInfo> {
        let live = self.get(id)?;
        let was = live.status.borrow().clone();
        if was == SandboxStatus::Running {
            self.freeze_inner(id).await?;
        }
        let (dir, dest_owned) = (live.layout.dir.clone(), dest.to_path_buf());
        let r = tokio::task::spawn_blocking(move || snapshot::pack(&dir, &dest_owned))
            .await
            .map_err(|e| SandboxError::Host(format!("snapshot task failed: {e}")));
        if was == SandboxStatus::Running {
            self.thaw_inner(id).await?;
        }
        r?
    }

    async fn freeze_inner(&self, id: &SandboxId) -> Result<()> {
        let live = self.get(id)?;
        if live.status.borrow().is_exited() {
            return Err(SandboxError::NotRunning { id: id.clone() });
        }
        live.cgroup.set_frozen(true).await?;
        live.status_tx
            .send_if_modified(|s| replace_if_live(s, SandboxStatus::Frozen));
        Ok(())
    }

    async fn thaw_inner(&self, id: &SandboxId) -> Result<()> {
        let live = self.get(id)?;
        if live.status.borrow().is_exited() {
            return Err(SandboxError::NotRunning { id: id.clone() });
        }
        live.cgroup.set_frozen(false).await?;
        live.status_tx
            .send_if_modified(|s| replace_if_live(s, SandboxStatus::Running));
        Ok(())
    }
}

fn replace_if_live(s: &mut SandboxStatus, new: SandboxStatus) -> bool {
    if s.is_exited() || *s == new {
        return false;
    }
    *s = new;
    true
}

/// Undoes a half-made sandbox when create fails part-way.
struct Cleanup {
    layout: Option<Layout>,
    cgroup: Option<Arc<Cgroup>>,
}

impl Cleanup {
    fn disarm(&mut self) {
        self.layout = None;
        self.cgroup = None;
    }
    async fn run(self) {
        if let Some(cg) = self.cgroup {
            let _ = cg.kill_all().await;
            let _ = cg.remove().await;
        }
        if let Some(l) = self.layout {
            let _ = std::fs::remove_dir_all(&l.dir);
        }
    }
}

/// The host's cgroup setup, for `den doctor`.
pub(crate) struct CgroupProbe;

impl CgroupProbe {
    pub(crate) fn describe() -> std::result::Result<String, String> {
        CgroupLayout::detect()
            .map(|l| l.describe())
            .map_err(|e| e.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxStats {
    pub pids: u64,
    pub pid_limit_hits: u64,
    pub oom_kills: u64,
    /// Sum of the resident set sizes of all processes in the sandbox.
    pub rss_kb: u64,
    pub uid: u32,
    /// The CPU quota in force, in thousandths of a CPU (`None`: unlimited or unreadable).
    pub cpu_millicpus: Option<u32>,
}

fn rss_kb(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn host_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(u64::MAX, |kb| kb * 1024)
}

fn check_traversable(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = dir
        .canonicalize()
        .ctx(|| format!("resolve {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))
        .ctx(|| format!("chmod {}", dir.display()))?;
    for a in dir.ancestors() {
        let mode = std::fs::metadata(a)
            .ctx(|| format!("stat {}", a.display()))?
            .permissions()
            .mode();
        if mode & 0o001 == 0 {
            return Err(SandboxError::Host(format!(
                "{} is not traversable by other users (chmod o+x), so sandboxes under {} cannot start",
                a.display(),
                dir.display()
            )));
        }
    }
    Ok(())
}

impl SandboxRuntime for LocalRuntime {
    fn create(
        &self,
        spec: SandboxSpec,
        progress: Option<ProgressSender>,
    ) -> BoxFuture<'_, Result<SandboxHandle>> {
        Box::pin(self.create_inner(spec, None, progress))
    }

    fn restore<'a>(
        &'a self,
        artifact: &'a Path,
        spec: SandboxSpec,
        progress: Option<ProgressSender>,
    ) -> BoxFuture<'a, Result<SandboxHandle>> {
        Box::pin(self.create_inner(spec, Some(artifact), progress))
    }

    fn attach_workspace<'a>(
        &'a self,
        id: &'a SandboxId,
        workspace: &'a Path,
        home_files: Vec<crate::spec::HomeFile>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let live = self.get(id)?;
            if !workspace.is_dir() {
                return Err(SandboxError::MissingWorkspace {
                    path: workspace.to_path_buf(),
                });
            }
            if *live.status.borrow() != SandboxStatus::Running {
                return Err(SandboxError::NotRunning { id: id.clone() });
            }
            if !live
                .awaits_workspace
                .swap(false, std::sync::atomic::Ordering::SeqCst)
            {
                return Err(SandboxError::InvalidSpec(format!(
                    "sandbox {id} already has its workspace"
                )));
            }
            attach::attach_workspace(&live, workspace).await?;
            for file in home_files {
                attach::write_home_file(&live, file).await?;
            }
            live.restart_lifetime.notify_one();
            Ok(())
        })
    }

    fn status(&self, id: &SandboxId) -> Result<SandboxStatus> {
        Ok(self.get(id)?.status.borrow().clone())
    }

    fn watch(&self, id: &SandboxId) -> Result<watch::Receiver<SandboxStatus>> {
        Ok(self.get(id)?.status.clone())
    }

    fn connect<'a>(&'a self, id: &'a SandboxId, port: u16) -> BoxFuture<'a, Result<BoxStream>> {
        Box::pin(async move {
            let live = self.get(id)?;
            if !live.expose.contains(&port) {
                return Err(SandboxError::PortNotExposed {
                    id: id.clone(),
                    port,
                });
            }
            if live.status.borrow().is_exited() {
                return Err(SandboxError::NotRunning { id: id.clone() });
            }
            let s = net::connect(&live.netns, port)
                .await
                .ctx(|| format!("connect to port {port} in {id}"))?;
            Ok(Box::new(s) as BoxStream)
        })
    }

    fn freeze<'a>(&'a self, id: &'a SandboxId) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.freeze_inner(id))
    }

    fn thaw<'a>(&'a self, id: &'a SandboxId) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.thaw_inner(id))
    }

    fn snapshot<'a>(
        &'a self,
        id: &'a SandboxId,
        dest: &'a Path,
    ) -> BoxFuture<'a, Result<ArtifactInfo>> {
        Box::pin(self.snapshot_inner(id, dest))
    }

    fn stop<'a>(&'a self, id: &'a SandboxId) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.stop_inner(id))
    }

    fn destroy<'a>(&'a self, id: &'a SandboxId) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.destroy_inner(id))
    }

    fn exec<'a>(
        &'a self,
        id: &'a SandboxId,
        request: ExecRequest,
    ) -> BoxFuture<'a, Result<ExecOutput>> {
        Box::pin(async move {
            let live = self.get(id)?;
            if *live.status.borrow() != SandboxStatus::Running {
                return Err(SandboxError::NotRunning { id: id.clone() });
            }
            exec::exec(&live, request).await
        })
    }

    fn logs<'a>(&'a self, id: &'a SandboxId, max_bytes: usize) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            let live = self.get(id)?;
            let data = tokio::fs::read(live.layout.log()).await.unwrap_or_default();
            Ok(data[data.len().saturating_sub(max_bytes)..].to_vec())
        })
    }
}
