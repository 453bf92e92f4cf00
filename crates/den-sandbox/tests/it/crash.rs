//! A den killed at any moment must be able to start again, and leave nothing behind once it
//! has: the sweep at start walks every cgroup hierarchy of this host (cgroup2 and the v1
//! hierarchies of cpu, memory and pids on a hybrid host), children first.
//!
//! The cgroup paths here are read from /proc independently of the code under test.

use std::path::{Path, PathBuf};
use std::time::Duration;

use den_sandbox::{LocalConfig, LocalRuntime, SandboxId, SandboxRuntime, SandboxSpec};
use tokio::io::AsyncBufReadExt;

use crate::harness::Harness;

/// This process's cgroup directory for cgroup2 and for each of cpu, memory and pids (the
/// cgroup2 one when no v1 hierarchy serves that controller).
fn own_cgroups() -> Vec<(&'static str, PathBuf)> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut v2_mount = None;
    let mut v1_mounts: Vec<(Vec<String>, PathBuf)> = Vec::new();
    for line in mountinfo.lines() {
        let (left, right) = line.split_once(" - ").unwrap();
        let mountpoint = PathBuf::from(left.split(' ').nth(4).unwrap());
        let fields: Vec<&str> = right.split(' ').collect();
        match fields[0] {
            "cgroup2" => v2_mount = Some(mountpoint),
            "cgroup" => v1_mounts.push((
                fields[2].split(',').map(str::to_owned).collect(),
                mountpoint,
            )),
            _ => {}
        }
    }
    let v2_mount = v2_mount.expect("cgroup2 is mounted");
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mut v2 = v2_mount.clone();
    let mut v1: Vec<(Vec<String>, String)> = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctls, path) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        let rel = path.trim_start_matches('/');
        if ctls.is_empty() {
            v2 = v2_mount.join(rel);
        } else {
            v1.push((ctls.split(',').map(str::to_owned).collect(), rel.to_owned()));
        }
    }
    let v2_ctls = std::fs::read_to_string(v2.join("cgroup.controllers")).unwrap_or_default();
    let mut out = vec![("cgroup2", v2.clone())];
    for ctl in ["cpu", "memory", "pids"] {
        let dir = if v2_ctls.split_whitespace().any(|c| c == ctl) {
            v2.clone()
        } else {
            let (_, rel) = v1.iter().find(|(c, _)| c.iter().any(|c| c == ctl)).unwrap();
            let (_, mnt) = v1_mounts
                .iter()
                .find(|(opts, _)| opts.iter().any(|o| o == ctl))
                .unwrap();
            mnt.join(rel)
        };
        out.push((ctl, dir));
    }
    out
}

/// The instance's directory in every hierarchy den uses.
fn instance_dirs(instance: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = own_cgroups()
        .into_iter()
        .map(|(_, d)| d.join(format!("densbx-{instance}")))
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Every sandbox cgroup (`sbx-…`) of the instance, in any hierarchy.
fn sandbox_cgroups(instance: &str) -> Vec<PathBuf> {
    instance_dirs(instance)
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|entries| entries.flatten())
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with("sbx-"))
        .collect()
}

#[expect(
    clippy::disallowed_methods,
    reason = "the test asks nft what is installed"
)]
fn nft_table_exists(instance: &str) -> bool {
    std::process::Command::new("nft")
        .args(["list", "table", "inet", &format!("densbx_{instance}")])
        .output()
        .unwrap()
        .status
        .success()
}

/// Nothing of the instance on the host: no cgroup in any hierarchy, no nftables table.
fn assert_nothing_left(instance: &str) {
    for d in instance_dirs(instance) {
        assert!(!d.exists(), "cgroup {} is left", d.display());
    }
    assert!(!nft_table_exists(instance), "the nftables table is left");
}

/// Polls a condition the kernel or another process makes true, with a timeout.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A runtime of a dead den's instance: shut down cleanly first, so its name is free.
async fn dead_instance_config(h: &Harness, state: &str) -> LocalConfig {
    let mut cfg = h.rt.config().clone();
    h.rt.shutdown().await.unwrap();
    cfg.root_dir = h.dir.path().join(state);
    cfg.uid_base += 16;
    cfg.uid_count = 8;
    cfg
}

/// Starts the instance again; it must start, and leave nothing of itself or the dead run once
/// shut down.
async fn start_again_and_finish(cfg: LocalConfig) -> den_sandbox::ReapReport {
    let instance = cfg.instance.clone();
    let root = cfg.root_dir.clone();
    let (rt, report) = LocalRuntime::start(cfg)
        .await
        .expect("den starts again after the crash");
    assert!(report.left.is_empty(), "{report:?}");
    let left = sandbox_cgroups(&instance);
    assert!(
        left.is_empty(),
        "the dead run's sandbox cgroups remain: {left:?}"
    );
    assert_eq!(
        std::fs::read_dir(root.join("sandboxes")).unwrap().count(),
        0,
        "the dead run's sandbox directories remain"
    );
    // The new runtime works.
    let ws = root.join("..").join("checkout");
    let h = rt
        .create(SandboxSpec::new(&ws, vec!["/bin/true".into()]), None)
        .await
        .unwrap();
    let mut status = h.status.clone();
    tokio::time::timeout(
        Duration::from_secs(60),
        status.wait_for(den_sandbox::SandboxStatus::is_exited),
    )
    .await
    .unwrap()
    .unwrap();
    rt.destroy(&h.id).await.unwrap();
    rt.shutdown().await.unwrap();
    let left = rt.leftovers().await;
    assert!(left.is_empty(), "leaked after restarting: {left:#?}");
    assert_nothing_left(&instance);
    report
}

#[tokio::test]
async fn an_empty_sandbox_cgroup_left_in_one_v1_hierarchy_does_not_stop_den_from_starting() {
    let h = Harness::new().await;
    let cfg = dead_instance_config(&h, "crashed-state").await;
    // A den killed while it ran: its instance's cgroups and table stay on the host.
    let (rt, _) = LocalRuntime::start(cfg.clone()).await.unwrap();
    drop(rt);
    // As reported: the sandbox's memory cgroup (v1 on this host) is left, empty, while its
    // cgroup2, cpu and pids siblings are gone.
    let (_, memory) = own_cgroups()
        .into_iter()
        .find(|(c, _)| *c == "memory")
        .unwrap();
    let leftover = memory
        .join(format!("densbx-{}", cfg.instance))
        .join(SandboxId::new().as_str());
    std::fs::create_dir(&leftover).unwrap();
    assert_eq!(sandbox_cgroups(&cfg.instance), vec![leftover.clone()]);
    start_again_and_finish(cfg).await;
    assert!(!leftover.exists());
    h.finish().await;
}

#[tokio::test]
async fn a_dead_instance_with_a_sandbox_cgroup_left_in_one_hierarchy_is_swept_by_another_den() {
    let h = Harness::new().await;
    let mut dead = h.rt.config().clone();
    dead.instance = format!("{}d", dead.instance);
    dead.root_dir = h.dir.path().join("dead-state");
    let (rt, _) = LocalRuntime::start(dead.clone()).await.unwrap();
    drop(rt);
    let (_, memory) = own_cgroups()
        .into_iter()
        .find(|(c, _)| *c == "memory")
        .unwrap();
    std::fs::create_dir(
        memory
            .join(format!("densbx-{}", dead.instance))
            .join(SandboxId::new().as_str()),
    )
    .unwrap();
    let mut other = h.rt.config().clone();
    other.instance = format!("{}o", other.instance);
    other.root_dir = h.dir.path().join("other-state");
    let (sweeper, _) = LocalRuntime::start(other).await.unwrap();
    // Swept by this runtime's start, or by one starting in a test beside this one.
    assert_nothing_left(&dead.instance);
    sweeper.shutdown().await.unwrap();
    h.finish().await;
}

#[tokio::test]
#[expect(
    clippy::disallowed_methods,
    reason = "the test starts a process to leave behind"
)]
async fn a_process_left_in_a_sandbox_cgroup_of_one_hierarchy_is_killed_at_the_next_start() {
    let h = Harness::new().await;
    let cfg = dead_instance_config(&h, "crashed-state").await;
    let (rt, _) = LocalRuntime::start(cfg.clone()).await.unwrap();
    drop(rt);
    let (_, pids) = own_cgroups()
        .into_iter()
        .find(|(c, _)| *c == "pids")
        .unwrap();
    let leftover = pids
        .join(format!("densbx-{}", cfg.instance))
        .join(SandboxId::new().as_str());
    std::fs::create_dir(&leftover).unwrap();
    let mut orphan = tokio::process::Command::new("sleep")
        .arg("600")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    std::fs::write(
        leftover.join("cgroup.procs"),
        orphan.id().unwrap().to_string(),
    )
    .unwrap();
    let report = start_again_and_finish(cfg).await;
    assert_eq!(report.processes, 1, "{report:?}");
    let status = tokio::time::timeout(Duration::from_secs(10), orphan.wait())
        .await
        .expect("the left process was killed")
        .unwrap();
    assert!(!status.success());
    h.finish().await;
}

/// Not a test on its own: the den that `crash_during` kills. Starts a runtime, prepares the
/// operation, prints `DEN-CRASH-READY <sandbox id>` and starts the operation.
#[tokio::test]
#[ignore = "run by the crash_during_* tests"]
async fn crash_during_child() {
    let Ok(root) = std::env::var("DEN_CRASH_ROOT") else {
        return;
    };
    let op = std::env::var("DEN_CRASH_OP").unwrap();
    let mut cfg = LocalConfig::new(&root);
    cfg.instance = std::env::var("DEN_CRASH_INSTANCE").unwrap();
    cfg.uid_base = std::env::var("DEN_CRASH_UID").unwrap().parse().unwrap();
    cfg.uid_count = 8;
    let (rt, _) = LocalRuntime::start(cfg).await.unwrap();
    let ws = Path::new(&root).join("..").join("checkout");
    // Enough data that a snapshot and a restore take a while.
    let script = "head -c 67108864 /dev/urandom > big && echo ready && sleep 600 & exec sleep 600";
    let spec = || SandboxSpec::new(&ws, vec!["/bin/sh".into(), "-c".into(), script.into()]);
    let ready = |id: &SandboxId| {
        let log = Path::new(&root)
            .join("sandboxes")
            .join(id.as_str())
            .join("log");
        async move { crate::limits_wait(&log).await }
    };
    let snap = Path::new(&root).join("..").join("snap.tar.zst");
    if op == "create" {
        println!("DEN-CRASH-READY -");
        rt.create(spec(), None).await.unwrap();
    } else {
        let h = rt.create(spec(), None).await.unwrap();
        ready(&h.id).await;
        println!("DEN-CRASH-READY {}", h.id.as_str());
        match op.as_str() {
            "snapshot" => {
                rt.snapshot(&h.id, &snap).await.unwrap();
            }
            "destroy" => rt.destroy(&h.id).await.unwrap(),
            "restore" => {
                rt.snapshot(&h.id, &snap).await.unwrap();
                rt.destroy(&h.id).await.unwrap();
                println!("DEN-CRASH-RESTORING");
                rt.restore(&snap, spec(), None).await.unwrap();
            }
            other => panic!("unknown operation {other}"),
        }
    }
    println!("DEN-CRASH-DONE");
    std::future::pending::<()>().await;
}

/// Runs `crash_during_child` for `op`, SIGKILLs it once `moment` is true, and starts the
/// same instance again.
#[expect(
    clippy::disallowed_methods,
    reason = "the test starts a den-like process to kill it"
)]
async fn crash_during(op: &str, moment: impl Fn(&Path, &str, &SandboxId) -> bool) {
    let h = Harness::new().await;
    let cfg = dead_instance_config(&h, "crashed-state").await;
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "crash::crash_during_child",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("DEN_CRASH_ROOT", &cfg.root_dir)
        .env("DEN_CRASH_INSTANCE", &cfg.instance)
        .env("DEN_CRASH_UID", cfg.uid_base.to_string())
        .env("DEN_CRASH_OP", op)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let wanted = if op == "restore" {
        "DEN-CRASH-RESTORING"
    } else {
        "DEN-CRASH-READY"
    };
    let mut id = None;
    tokio::time::timeout(Duration::from_secs(180), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if let Some(rest) = l.strip_prefix("DEN-CRASH-READY ") {
                id = SandboxId::parse(rest.trim());
            }
            if l.starts_with(wanted) {
                return;
            }
        }
        panic!("the crash child ended before {op}");
    })
    .await
    .expect("the crash child got ready");
    let id = id.unwrap_or_else(SandboxId::new);
    wait_for(&format!("the moment to crash during {op}"), || {
        moment(&cfg.root_dir, &cfg.instance, &id)
    })
    .await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    start_again_and_finish(cfg).await;
    h.finish().await;
}

/// The sandbox's cgroup2 directory.
fn v2_cgroup(instance: &str, id: &SandboxId) -> PathBuf {
    own_cgroups()[0]
        .1
        .join(format!("densbx-{instance}"))
        .join(id.as_str())
}

#[tokio::test]
async fn den_starts_again_after_a_crash_while_creating_a_sandbox() {
    // The first cgroup of the new sandbox exists; its other hierarchies may not yet.
    crash_during("create", |_, instance, _| {
        !sandbox_cgroups(instance).is_empty()
    })
    .await;
}

#[tokio::test]
async fn den_starts_again_after_a_crash_while_snapshotting_a_frozen_sandbox() {
    crash_during("snapshot", |_, instance, id| {
        std::fs::read_to_string(v2_cgroup(instance, id).join("cgroup.freeze"))
            .is_ok_and(|f| f.trim() == "1")
    })
    .await;
}

#[tokio::test]
async fn den_starts_again_after_a_crash_while_restoring_a_snapshot() {
    // The restored sandbox's directory is being unpacked.
    crash_during("restore", |root, _, _| {
        std::fs::read_dir(root.join("sandboxes")).is_ok_and(|mut d| d.next().is_some())
    })
    .await;
}

#[tokio::test]
async fn den_starts_again_after_a_crash_while_launching_a_restored_sandbox() {
    // Unpacked; the restored sandbox's cgroups are being made.
    crash_during("restore", |_, instance, _| {
        !sandbox_cgroups(instance).is_empty()
    })
    .await;
}

#[tokio::test]
async fn den_starts_again_after_a_crash_while_removing_a_sandbox_s_cgroups() {
    // Some hierarchies still hold the destroyed sandbox's cgroup, others no longer do.
    crash_during("destroy", |_, instance, _| {
        sandbox_cgroups(instance).len() < instance_dirs(instance).len()
    })
    .await;
}

#[tokio::test]
async fn den_starts_again_after_a_crash_while_destroying_a_sandbox() {
    // Its processes are gone and its cgroups are being removed.
    crash_during("destroy", |_, instance, id| {
        std::fs::read_to_string(v2_cgroup(instance, id).join("cgroup.events"))
            .map_or(true, |e| e.contains("populated 0"))
    })
    .await;
}
