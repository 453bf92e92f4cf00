//! Resource limits, freeze and kill through cgroups.
//!
//! Two layouts are handled by one type: on a pure cgroup2 host every controller lives in one
//! directory; on a hybrid host (like the machine this was built on) cpu, memory and pids are v1
//! hierarchies while the cgroup2 tree only offers its core files. The core files are all we need
//! from v2 on either host: `cgroup.freeze`, `cgroup.kill`, `cgroup.events` (frozen/populated) and
//! `cgroup.procs`, and it is also what nftables matches slirp4netns's sockets against. So cgroup2
//! must be mounted; the limit controllers come from wherever the host enables them.
//!
//! Everything is nested under den's own cgroup in each hierarchy (on the spike machine our memory
//! cgroup is the harness's `/process_api/<id>`, and creating siblings at the root is not ours to
//! do), inside a directory named after the runtime instance, so the reaper finds it.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{IoContext, Result, SandboxError};
use crate::spec::Limits;

const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

#[derive(Debug, Clone)]
pub(crate) struct CgroupLayout {
    /// Where cgroup2 is mounted (`/sys/fs/cgroup` or `/sys/fs/cgroup/unified`).
    v2_mount: PathBuf,
    /// Our own cgroup2 directory.
    v2_own: PathBuf,
    /// Controller → our own directory in the hierarchy that serves it.
    controllers: BTreeMap<&'static str, Ctl>,
}

#[derive(Debug, Clone)]
struct Ctl {
    own: PathBuf,
    v2: bool,
}

impl CgroupLayout {
    pub(crate) fn detect() -> Result<Self> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .ctx(|| "read /proc/self/mountinfo".into())?;
        let own =
            std::fs::read_to_string("/proc/self/cgroup").ctx(|| "read /proc/self/cgroup".into())?;
        let mut v2_mount = None;
        let mut v1_mounts: BTreeMap<String, PathBuf> = BTreeMap::new();
        for line in mountinfo.lines() {
            // "<id> <parent> <maj:min> <root> <mountpoint> <opts> [optional...] - <fstype> <src> <superopts>"
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mountpoint = left.split(' ').nth(4).unwrap_or_default();
            let mut r = right.split(' ');
            match (r.next(), r.nth(1)) {
                (Some("cgroup2"), _) => v2_mount = Some(PathBuf::from(mountpoint)),
                (Some("cgroup"), Some(superopts)) => {
                    for opt in superopts.split(',') {
                        v1_mounts.insert(opt.to_owned(), PathBuf::from(mountpoint));
                    }
                }
                _ => {}
            }
        }
        let v2_mount = v2_mount.ok_or_else(|| {
            SandboxError::Host(
                "cgroup2 is not mounted; mount it (mount -t cgroup2 none /sys/fs/cgroup/unified)"
                    .into(),
            )
        })?;
        let mut v2_own = v2_mount.clone();
        let mut v1_own: BTreeMap<String, String> = BTreeMap::new();
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, ctls, path) = (parts.next(), parts.next(), parts.next());
            let (Some(ctls), Some(path)) = (ctls, path) else {
                continue;
            };
            if ctls.is_empty() {
                v2_own = v2_mount.join(path.trim_start_matches('/'));
            } else {
                for c in ctls.split(',') {
                    v1_own.insert(c.to_owned(), path.to_owned());
                }
            }
        }
        let v2_available =
            std::fs::read_to_string(v2_own.join("cgroup.controllers")).unwrap_or_default();
        let mut controllers = BTreeMap::new();
        for c in CONTROLLERS {
            if v2_available.split_whitespace().any(|x| x == c) {
                controllers.insert(
                    c,
                    Ctl {
                        own: v2_own.clone(),
                        v2: true,
                    },
                );
            } else if let (Some(mnt), Some(path)) = (v1_mounts.get(c), v1_own.get(c)) {
                let own = mnt.join(path.trim_start_matches('/'));
                controllers.insert(c, Ctl { own, v2: false });
            } else {
                return Err(SandboxError::Host(format!(
                    "the cgroup controller {c:?} is available neither in cgroup2 nor in cgroup v1"
                )));
            }
        }
        Ok(Self {
            v2_mount,
            v2_own,
            controllers,
        })
    }

    pub(crate) fn describe(&self) -> String {
        let ctls: Vec<String> = self
            .controllers
            .iter()
            .map(|(n, c)| format!("{n}: {}", if c.v2 { "v2" } else { "v1" }))
            .collect();
        format!(
            "cgroup2 at {}; {}",
            self.v2_mount.display(),
            ctls.join(", ")
        )
    }

    /// Every directory that belongs to a runtime instance, deepest last (for creation).
    pub(crate) fn instance_dirs(&self, instance: &str) -> Vec<PathBuf> {
        let mut dirs = vec![self.v2_own.join(instance)];
        for ctl in self.controllers.values().filter(|c| !c.v2) {
            let d = ctl.own.join(instance);
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        dirs
    }

    /// The prefixes (`densbx-*`) of every instance with a cgroup directory on this host.
    pub(crate) fn instances(&self) -> Vec<String> {
        let mut roots = vec![self.v2_own.clone()];
        roots.extend(
            self.controllers
                .values()
                .filter(|c| !c.v2)
                .map(|c| c.own.clone()),
        );
        let mut found: Vec<String> = roots
            .iter()
            .filter_map(|root| std::fs::read_dir(root).ok())
            .flat_map(|entries| entries.flatten())
            .filter(|entry| entry.path().is_dir())
            .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
            .filter(|name| name.starts_with("densbx-"))
            .collect();
        found.sort();
        found.dedup();
        found
    }

    /// Creates the instance directories and, on cgroup2, delegates the controllers to them.
    pub(crate) fn prepare_instance(&self, instance: &str) -> Result<()> {
        for d in self.instance_dirs(instance) {
            mkdir(&d)?;
        }
        let v2_ctls: Vec<String> = self
            .controllers
            .iter()
            .filter(|(_, c)| c.v2)
            .map(|(n, _)| format!("+{n}"))
            .collect();
        if !v2_ctls.is_empty() {
            let line = v2_ctls.join(" ");
            for d in [self.v2_own.clone(), self.v2_own.join(instance)] {
                std::fs::write(d.join("cgroup.subtree_control"), &line).ctx(|| {
                    format!(
                        "enable {line} in {} (on cgroup2, den must run in a cgroup delegated to it with no processes of its own besides den)",
                        d.display()
                    )
                })?;
            }
        }
        Ok(())
    }

    /// The cgroup2 directory for slirp4netns processes, and its nftables name and level.
    pub(crate) fn slirp_dir(&self, instance: &str) -> PathBuf {
        self.v2_own.join(instance).join("slirp")
    }

    /// nftables resolves `socket cgroupv2` paths relative to /sys/fs/cgroup and matches the
    /// ancestor at `level` (depth below the cgroup2 root).
    pub(crate) fn nft_cgroup_ref(&self, dir: &Path) -> Result<(String, usize)> {
        let rel = dir.strip_prefix("/sys/fs/cgroup").map_err(|_| {
            SandboxError::Host("cgroup2 is not mounted under /sys/fs/cgroup".into())
        })?;
        let level = dir
            .strip_prefix(&self.v2_mount)
            .map(|p| p.components().count())
            .unwrap_or(0);
        Ok((rel.to_string_lossy().into_owned(), level))
    }

    pub(crate) fn create(&self, instance: &str, name: &str, limits: &Limits) -> Result<Cgroup> {
        let v2 = self.v2_own.join(instance).join(name);
        let mut cg = Cgroup {
            v2,
            dirs: Vec::new(),
            files: BTreeMap::new(),
        };
        mkdir(&cg.v2)?;
        cg.dirs.push(cg.v2.clone());
        // A reused cgroup2 directory could still be frozen; reset so the sandbox starts running.
        write(&cg.v2.join("cgroup.freeze"), "0")?;
        for (name, ctl) in &self.controllers {
            let dir = if ctl.v2 {
                cg.v2.clone()
            } else {
                ctl.own.join(instance).join(name_of(&cg.v2))
            };
            if !cg.dirs.contains(&dir) {
                mkdir(&dir)?;
                cg.dirs.push(dir.clone());
            }
            cg.files.insert(name, (dir, ctl.v2));
        }
        cg.apply_limits(limits)?;
        Ok(cg)
    }

    /// Every cgroup directory of the instance in every hierarchy den uses, children before
    /// their parents (each hierarchy's instance directory after everything below it). A crash
    /// can leave a sandbox's directory in one hierarchy and not in the others (or a den started
    /// in another v1 cgroup may have removed the others), so no hierarchy stands for the rest.
    pub(crate) fn instance_tree(&self, instance: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for root in self.instance_dirs(instance) {
            if root.is_dir() {
                push_children_first(&root, &mut out);
            }
        }
        out
    }

    /// The processes in any cgroup of the instance, in any hierarchy.
    pub(crate) fn instance_pids(&self, instance: &str) -> Vec<i32> {
        let mut pids: Vec<i32> = self
            .instance_tree(instance)
            .iter()
            .flat_map(|dir| procs_of(dir))
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Kills every process in the instance's cgroups (what a dead run of this instance left)
    /// and waits until they are gone. `cgroup.kill` takes the whole cgroup2 subtree at once,
    /// forks included; a process found only in a v1 hierarchy, or a kernel without
    /// `cgroup.kill`, is killed by pid, again and again until none is left. A frozen sandbox
    /// (a crash while snapshotting) is thawed after the signal so it dies at once.
    pub(crate) async fn kill_instance(&self, instance: &str) -> Result<()> {
        if self.instance_pids(instance).is_empty() {
            return Ok(());
        }
        let kill = self.v2_own.join(instance).join("cgroup.kill");
        if kill.exists() {
            write(&kill, "1")?;
        }
        wait_until(
            Duration::from_secs(20),
            "killing the processes a dead den left",
            || {
                let tree = self.instance_tree(instance);
                let pids = self.instance_pids(instance);
                for pid in &pids {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(*pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                for dir in &tree {
                    let freeze = dir.join("cgroup.freeze");
                    if freeze.exists() {
                        let _ = std::fs::write(freeze, "0");
                    }
                }
                pids.is_empty()
            },
        )
        .await
    }

    /// Removes the instance's cgroup directories in every hierarchy, children first. What
    /// cannot be removed (a cgroup that still has processes) is described in the result rather
    /// than failing: a leftover must never stop den from starting, and the next start tries
    /// again.
    pub(crate) async fn remove_instance(&self, instance: &str) -> RemovedCgroups {
        let roots = self.instance_dirs(instance);
        let mut removed = std::collections::BTreeSet::new();
        let mut left: Vec<PathBuf> = Vec::new();
        let mut notes = Vec::new();
        // One deadline for the whole tree: a just-emptied cgroup can report EBUSY for a moment.
        let deadline = Instant::now() + Duration::from_secs(10);
        for dir in self.instance_tree(instance) {
            if left.iter().any(|l| l.starts_with(&dir)) {
                notes.push(format!(
                    "cgroup {} (a cgroup below it remains)",
                    dir.display()
                ));
                left.push(dir);
                continue;
            }
            let pids = procs_of(&dir);
            let result = if pids.is_empty() {
                remove_dir_patiently(&dir, deadline).await
            } else {
                Err(format!("it still has processes {pids:?}"))
            };
            match result {
                Ok(()) => {
                    if let Some(rel) = roots
                        .iter()
                        .find_map(|root| dir.strip_prefix(root).ok())
                        .filter(|rel| !rel.as_os_str().is_empty())
                    {
                        removed.insert(rel.to_path_buf());
                    }
                }
                Err(why) => {
                    notes.push(format!("cgroup {}: {why}", dir.display()));
                    left.push(dir);
                }
            }
        }
        RemovedCgroups {
            removed: removed.len(),
            left: notes,
        }
    }
}

/// What `CgroupLayout::remove_instance` did.
#[derive(Debug, Default)]
pub(crate) struct RemovedCgroups {
    /// Sandbox (and slirp) cgroups removed, each counted once however many hierarchies held it.
    pub(crate) removed: usize,
    /// What is still there, and why.
    pub(crate) left: Vec<String>,
}

fn push_children_first(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                push_children_first(&entry.path(), out);
            }
        }
    }
    out.push(dir.to_path_buf());
}

fn procs_of(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// rmdir, retrying EBUSY until `deadline`; a directory already gone counts as removed.
async fn remove_dir_patiently(dir: &Path, deadline: Instant) -> std::result::Result<(), String> {
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() < deadline && e.raw_os_error() == Some(nix::libc::EBUSY) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn mkdir(d: &Path) -> Result<()> {
    match std::fs::create_dir(d) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(e).ctx(|| format!("create cgroup {}", d.display()))
        }
        _ => Ok(()),
    }
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).ctx(|| format!("write {value:?} to {}", path.display()))
}

/// One sandbox's cgroups (one directory per hierarchy in use).
#[derive(Debug)]
pub(crate) struct Cgroup {
    pub(crate) v2: PathBuf,
    dirs: Vec<PathBuf>,
    files: BTreeMap<&'static str, (PathBuf, bool)>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct CgroupStats {
    pub(crate) pids_current: u64,
    pub(crate) pids_max_hits: u64,
    pub(crate) oom_kills: u64,
}

impl Cgroup {
    /// The CPU quota in force, in thousandths of a CPU.
    pub(crate) fn cpu_millicpus(&self) -> Option<u32> {
        let (d, v2) = self.files.get("cpu")?;
        let text = if *v2 {
            std::fs::read_to_string(d.join("cpu.max")).ok()?
        } else {
            std::fs::read_to_string(d.join("cpu.cfs_quota_us")).ok()?
        };
        let quota: u64 = text.split_whitespace().next()?.parse().ok()?;
        u32::try_from(quota / 100).ok()
    }

    /// Sets the CPU quota (thousandths of a CPU); also used to end a start's burst.
    pub(crate) fn set_cpu(&self, millicpus: u32) -> Result<()> {
        if let Some((d, v2)) = self.files.get("cpu") {
            let quota = u64::from(millicpus) * 100;
            if *v2 {
                write(&d.join("cpu.max"), &format!("{quota} 100000"))?;
            } else {
                write(&d.join("cpu.cfs_period_us"), "100000")?;
                write(&d.join("cpu.cfs_quota_us"), &quota.to_string())?;
            }
        }
        Ok(())
    }

    fn apply_limits(&self, l: &Limits) -> Result<()> {
        self.set_cpu(l.millicpus)?;
        if let Some((d, v2)) = self.files.get("memory") {
            let bytes = l.memory_bytes.to_string();
            if *v2 {
                write(&d.join("memory.max"), &bytes)?;
                // "memory including swap": no swap on top of memory.max.
                if d.join("memory.swap.max").exists() {
                    write(&d.join("memory.swap.max"), "0")?;
                }
            } else {
                write(&d.join("memory.limit_in_bytes"), &bytes)?;
                if d.join("memory.memsw.limit_in_bytes").exists() {
                    write(&d.join("memory.memsw.limit_in_bytes"), &bytes)?;
                }
            }
        }
        if let Some((d, _)) = self.files.get("pids") {
            write(&d.join("pids.max"), &l.pids.to_string())?;
        }
        Ok(())
    }

    /// `cgroup.procs` of every hierarchy, opened for the launcher to write "0" (= itself) to
    /// after fork, where opening files would not be async-signal-safe.
    pub(crate) fn procs_files(&self) -> Result<Vec<File>> {
        self.dirs
            .iter()
            .map(|d| {
                let p = d.join("cgroup.procs");
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .ctx(|| format!("open {}", p.display()))
            })
            .collect()
    }

    pub(crate) fn pids(&self) -> Vec<i32> {
        procs_of(&self.v2)
    }

    fn event(&self, key: &str) -> Option<u64> {
        let events = std::fs::read_to_string(self.v2.join("cgroup.events")).ok()?;
        events
            .lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.event("populated ")
            .map_or_else(|| self.pids().is_empty(), |p| p == 0)
    }

    pub(crate) async fn set_frozen(&self, frozen: bool) -> Result<()> {
        write(
            &self.v2.join("cgroup.freeze"),
            if frozen { "1" } else { "0" },
        )?;
        let want = u64::from(frozen);
        // cgroup.events changes when the kernel has actually frozen every task; poll it.
        wait_until(Duration::from_secs(10), "freezing the sandbox", || {
            self.is_empty() || self.event("frozen ") == Some(want)
        })
        .await
    }

    /// Kills every process, frozen or not, and waits until the cgroup is empty (unmounting or
    /// removing anything earlier fails with EBUSY).
    pub(crate) async fn kill_all(&self) -> Result<()> {
        let kill = self.v2.join("cgroup.kill");
        if kill.exists() {
            write(&kill, "1")?;
        } else {
            // Kernels before 5.14: freeze so nothing forks while we kill, then thaw so the
            // signals are delivered.
            write(&self.v2.join("cgroup.freeze"), "1")?;
            for pid in self.pids() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            write(&self.v2.join("cgroup.freeze"), "0")?;
        }
        wait_until(
            Duration::from_secs(20),
            "killing the sandbox's processes",
            || self.is_empty(),
        )
        .await
    }

    pub(crate) fn stats(&self) -> CgroupStats {
        let mut s = CgroupStats::default();
        if let Some((d, v2)) = self.files.get("pids") {
            s.pids_current = read_u64(&d.join("pids.current"));
            let events = std::fs::read_to_string(d.join("pids.events")).unwrap_or_default();
            s.pids_max_hits = kv(&events, "max");
            let _ = v2;
        }
        if let Some((d, v2)) = self.files.get("memory") {
            let file = if *v2 {
                "memory.events"
            } else {
                "memory.oom_control"
            };
            s.oom_kills = kv(
                &std::fs::read_to_string(d.join(file)).unwrap_or_default(),
                "oom_kill",
            );
        }
        s
    }

    /// Removes the directories; the cgroup must be empty.
    pub(crate) async fn remove(&self) -> Result<()> {
        for d in self.dirs.iter().rev() {
            // A just-emptied cgroup can report EBUSY for a moment while the last task exits.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match std::fs::remove_dir(d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e)
                        if Instant::now() < deadline
                            && e.raw_os_error() == Some(nix::libc::EBUSY) =>
                    {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err(e) => return Err(e).ctx(|| format!("remove cgroup {}", d.display())),
                }
            }
        }
        Ok(())
    }
}

fn read_u64(p: &Path) -> u64 {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn kv(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}

/// Polls a kernel-side condition that offers no event we can await from tokio (cgroup files
/// can be watched with inotify, but a 2 ms poll costs nothing at these durations).
pub(crate) async fn wait_until(
    limit: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + limit;
    while !cond() {
        if Instant::now() >= deadline {
            return Err(SandboxError::Timeout {
                what: what.to_owned(),
                secs: limit.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}
