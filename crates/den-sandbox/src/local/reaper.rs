//! Removes what a crashed den left behind: processes (sandboxes and slirp4netns) in the
//! instance's cgroups, the cgroups, the nftables table, stray mounts and sandbox directories.
//! Network namespaces need nothing: they are held by fds only and die with their processes.

use std::path::Path;

use crate::error::{IoContext, Result};
use crate::local::cgroup::CgroupLayout;
use crate::local::firewall;

/// What `reap` found and removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReapReport {
    pub cgroups: usize,
    pub processes: usize,
    pub mounts: usize,
    pub sandbox_dirs: usize,
    pub firewall_table: bool,
    /// Other instances whose den is gone, whose cgroups and firewall table were removed.
    pub dead_instances: usize,
    /// What could not be removed (e.g. a cgroup whose processes would not die), and why: a
    /// warning, never a reason not to start.
    pub left: Vec<String>,
}

impl ReapReport {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

fn mounts_under(root: &Path) -> Vec<String> {
    let Ok(root) = root.canonicalize() else {
        return Vec::new();
    };
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<String> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(&root))
        .map(str::to_owned)
        .collect();
    // Deepest first, so nested mounts come off before their parents.
    found.sort_by_key(|m| std::cmp::Reverse(m.len()));
    found
}

pub(crate) async fn reap(root: &Path, layout: &CgroupLayout, prefix: &str) -> Result<ReapReport> {
    // Every hierarchy, not only cgroup2: a crash can leave a sandbox's cgroup in some
    // hierarchies and not in others, and one left child makes its instance directory busy.
    let mut report = ReapReport {
        processes: layout.instance_pids(prefix).len(),
        ..ReapReport::default()
    };
    if let Err(err) = layout.kill_instance(prefix).await {
        report.left.push(err.to_string());
    }
    let removed = layout.remove_instance(prefix).await;
    report.cgroups = removed.removed;
    report.left.extend(removed.left);
    for left in &report.left {
        tracing::warn!(instance = %prefix, %left, "could not remove what an earlier run left; going on, the next start tries again");
    }
    let table = firewall::table_name(prefix);
    if firewall::exists(&table).await? {
        firewall::remove(&table).await?;
        report.firewall_table = true;
    }
    for m in mounts_under(root) {
        nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH)
            .ctx(|| format!("unmount {m}"))?;
        report.mounts += 1;
    }
    if let Ok(entries) = std::fs::read_dir(root.join("sandboxes")) {
        for e in entries.flatten() {
            std::fs::remove_dir_all(e.path()).ctx(|| format!("remove {}", e.path().display()))?;
            report.sandbox_dirs += 1;
        }
    }
    Ok(report)
}

/// Everything of the instance that still exists on the host, described (empty = no leak).
pub(crate) async fn leftovers(
    root: &Path,
    layout: &CgroupLayout,
    prefix: &str,
    uids: std::ops::Range<u32>,
) -> Vec<String> {
    let mut out = Vec::new();
    for pid in processes_of(uids) {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        out.push(format!(
            "process {pid} ({}) running as a sandbox uid",
            cmd.trim()
        ));
    }
    for dir in layout.instance_tree(prefix) {
        out.push(format!("cgroup {}", dir.display()));
    }
    for pid in layout.instance_pids(prefix) {
        out.push(format!("process {pid} in a cgroup of {prefix}"));
    }
    if firewall::exists(&firewall::table_name(prefix))
        .await
        .unwrap_or(false)
    {
        out.push(format!("nft table inet {}", firewall::table_name(prefix)));
    }
    for m in mounts_under(root) {
        out.push(format!("mount {m}"));
    }
    if let Ok(entries) = std::fs::read_dir(root.join("sandboxes")) {
        for e in entries.flatten() {
            out.push(format!("dir {}", e.path().display()));
        }
    }
    out
}

/// Pids of live host processes whose real uid is in `uids`. Zombies do not count: bwrap's
/// monitor exits without reaping the sandbox's pid 1, which the host's init then reaps a little
/// later; a zombie holds nothing but its pid.
fn processes_of(uids: std::ops::Range<u32>) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .filter(|s| {
                    !s.lines()
                        .any(|l| l.starts_with("State:") && l.contains("Z (zombie)"))
                })
                .and_then(|s| {
                    let line = s.lines().find(|l| l.starts_with("Uid:"))?;
                    line.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                .is_some_and(|uid| uids.contains(&uid))
        })
        .collect()
}
