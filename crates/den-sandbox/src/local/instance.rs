//! One runtime per instance name, and the sweep of what dead instances left on the host.
//!
//! Each runtime holds an exclusive lock on `/run/densbx/<prefix>.lock` for its life. The kernel
//! drops the lock when the process dies, however it dies, so a lock anyone can take means the
//! instance's den is gone: its cgroups and nftables table are leftovers. Those matter beyond
//! tidiness: every table's output chain runs for every packet the host sends, so a few dozen
//! tables left by killed dens once cost a third of den's CPU on its own WebSocket traffic.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{IoContext, Result, SandboxError};
use crate::local::cgroup::CgroupLayout;
use crate::local::firewall;

/// Where the instance locks live: on tmpfs, cleared at boot like the state they guard.
const LOCK_DIR: &str = "/run/densbx";
/// How long a starting runtime waits for its lock, which another runtime's sweep may hold for
/// a moment while it checks whether the instance is alive.
/// Longer than a sweep can hold it (removing a just-emptied cgroup retries for up to 10 s).
const ACQUIRE_PATIENCE: Duration = Duration::from_secs(12);

/// The held lock of one instance; released when dropped or when the process dies.
#[derive(Debug)]
pub(crate) struct InstanceLock {
    file: File,
    path: PathBuf,
}

fn lock_path(prefix: &str) -> PathBuf {
    PathBuf::from(LOCK_DIR).join(format!("{prefix}.lock"))
}

impl InstanceLock {
    /// The lock of `prefix` if nobody holds it.
    fn try_acquire(prefix: &str) -> Result<Option<Self>> {
        std::fs::create_dir_all(LOCK_DIR).ctx(|| format!("create {LOCK_DIR}"))?;
        let path = lock_path(prefix);
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .ctx(|| format!("open {}", path.display()))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(err)) => {
                    return Err(err).ctx(|| format!("lock {}", path.display()));
                }
            }
            // The holder may have removed the file between our open and our lock: then this
            // lock guards nothing, and the name's lock is a new file.
            let locked = file.metadata().ctx(|| format!("stat {}", path.display()))?;
            if std::fs::metadata(&path).is_ok_and(|now| now.ino() == locked.ino()) {
                return Ok(Some(Self { file, path }));
            }
        }
    }

    /// Removes the lock file, then lets go: for an instance with nothing left on the host.
    pub(crate) fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
        drop(self.file);
    }

    /// The lock of this runtime's own instance; an error if another live runtime has it.
    pub(crate) async fn acquire(prefix: &str, instance: &str) -> Result<Self> {
        let deadline = tokio::time::Instant::now() + ACQUIRE_PATIENCE;
        loop {
            if let Some(lock) = Self::try_acquire(prefix)? {
                return Ok(lock);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SandboxError::Host(format!(
                    "another den on this host runs sandboxes as instance {instance:?} (it has held \
                     {} for {} s); give each den its own sandbox instance",
                    lock_path(prefix).display(),
                    ACQUIRE_PATIENCE.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Removes the cgroups and firewall tables of instances whose runtime is gone (nobody holds
/// their lock) and that have no process left. Best effort: what cannot be swept is logged and
/// left for the next start. Returns how many instances were swept.
pub(crate) async fn sweep_dead(layout: &CgroupLayout, own_prefix: &str) -> Result<usize> {
    let mut prefixes = layout.instances();
    if let Ok(entries) = std::fs::read_dir(LOCK_DIR) {
        prefixes.extend(entries.flatten().filter_map(|entry| {
            let name = entry
                .file_name()
                .to_str()?
                .strip_suffix(".lock")?
                .to_owned();
            name.starts_with("densbx-").then_some(name)
        }));
    }
    for table in firewall::tables().await? {
        if let Some(instance) = table.strip_prefix("densbx_") {
            prefixes.push(format!("densbx-{instance}"));
        }
    }
    prefixes.sort();
    prefixes.dedup();
    let mut swept = 0;
    for prefix in prefixes.iter().filter(|p| p.as_str() != own_prefix) {
        match sweep_one(layout, prefix).await {
            Ok(true) => swept += 1,
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(instance = %prefix, error = %err, "could not sweep a dead sandbox instance");
            }
        }
    }
    Ok(swept)
}

/// Sweeps one instance if it is dead; whether it had state to remove.
async fn sweep_one(layout: &CgroupLayout, prefix: &str) -> Result<bool> {
    // Held while sweeping, so a den starting under this name waits rather than races.
    let Some(lock) = InstanceLock::try_acquire(prefix)? else {
        return Ok(false);
    };
    let table = firewall::table_name(prefix);
    // Processes without a den, or a guard whose cgroup (wherever it is) still has processes:
    // not ours to judge (a den from before instance locks, or one with another /run).
    let rules = firewall::list(&table).await?;
    let guarded_busy = match rules.as_deref().and_then(firewall::guarded_cgroup) {
        Some(path) => std::fs::read_to_string(
            PathBuf::from("/sys/fs/cgroup")
                .join(path)
                .join("cgroup.procs"),
        )
        .is_ok_and(|procs| !procs.trim().is_empty()),
        None => false,
    };
    if guarded_busy || !layout.instance_pids(prefix).is_empty() {
        tracing::warn!(instance = %prefix, "left alone: a sandbox instance without a den still has processes");
        return Ok(false);
    }
    let had_state = !layout.instance_tree(prefix).is_empty() || rules.is_some();
    // Every hierarchy, children first: a crash can leave a sandbox's cgroup in one only.
    let removed = layout.remove_instance(prefix).await;
    if rules.is_some() {
        firewall::remove(&table).await?;
    }
    if !removed.left.is_empty() {
        return Err(SandboxError::Host(removed.left.join("; ")));
    }
    lock.remove();
    Ok(had_state)
}
