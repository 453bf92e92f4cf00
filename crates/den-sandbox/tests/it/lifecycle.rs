//! Snapshot and restore, bad input, and the reaper after a crash.

use std::time::Duration;

use crate::harness::Harness;
use den_sandbox::{
    ArtifactStore, ExitReason, Limits, LocalArtifactStore, SandboxError, SandboxRuntime,
};

#[tokio::test]
async fn snapshot_and_restore_under_another_uid_keep_edits_deletions_and_home() {
    let h = Harness::new().await;
    let script = "echo edited > README.md && rm src/lib.rs && mkdir -p new/dir && echo n > new/dir/f \
        && echo h > $HOME/state && echo ready && exec sleep 600";
    let a = h.rt.create(h.spec(script), None).await.unwrap();
    let log =
        h.rt.config()
            .root_dir
            .join("sandboxes")
            .join(a.id.as_str())
            .join("log");
    crate::limits_wait(&log).await;
    let uid_a = h.rt.stats(&a.id).unwrap().uid;
    let store = LocalArtifactStore::new(h.dir.path().join("artifacts"));
    let tmp = h.dir.path().join("snap.tar.zst");
    let info = h.rt.snapshot(&a.id, &tmp).await.unwrap();
    assert!(info.size_bytes > 0);
    // The sandbox keeps running after a snapshot.
    assert_eq!(
        h.rt.status(&a.id).unwrap(),
        den_sandbox::SandboxStatus::Running
    );
    store.put("a", &tmp).await.unwrap();
    h.rt.destroy(&a.id).await.unwrap();
    // Hold a uid so the restored sandbox cannot get the same one.
    let holder = h.rt.create(h.spec("exec sleep 600"), None).await.unwrap();
    let artifact = store.fetch("a").await.unwrap();
    let check = "cat README.md; test ! -e src/lib.rs && echo deleted; cat new/dir/f; cat $HOME/state; \
        echo again > README.md && echo writable; id -u";
    let b = h.rt.restore(&artifact, h.spec(check), None).await.unwrap();
    let uid_b = h.rt.stats(&b.id).unwrap().uid;
    assert_ne!(uid_a, uid_b);
    assert_eq!(
        h.wait_exit(&b, Duration::from_secs(60)).await,
        ExitReason::Exited { code: 0 }
    );
    let out = h.logs(&b).await;
    assert_eq!(out, "edited\ndeleted\nn\nh\nwritable\n1000\n");
    h.rt.destroy(&b.id).await.unwrap();
    h.rt.destroy(&holder.id).await.unwrap();
    h.finish().await;
}

#[tokio::test]
async fn bad_input_gives_clear_errors_and_leaves_nothing_behind() {
    let h = Harness::new().await;
    let mut spec = h.spec("true");
    spec.limits = Limits {
        millicpus: 1000,
        memory_bytes: 1 << 60,
        pids: 512,
    };
    let err = h.rt.create(spec, None).await.unwrap_err();
    assert!(matches!(err, SandboxError::InvalidSpec(_)), "{err}");
    assert!(err.to_string().contains("memory limit"), "{err}");

    let mut spec = h.spec("true");
    spec.workspace = h.dir.path().join("no-such-checkout");
    let err = h.rt.create(spec, None).await.unwrap_err();
    assert!(
        matches!(err, SandboxError::MissingWorkspace { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("no-such-checkout"), "{err}");

    let missing = h.dir.path().join("missing.tar.zst");
    let err =
        h.rt.restore(&missing, h.spec("true"), None)
            .await
            .unwrap_err();
    assert!(matches!(err, SandboxError::MissingArtifact { .. }), "{err}");

    let garbage = h.dir.path().join("garbage.tar.zst");
    std::fs::write(&garbage, b"this is not a snapshot").unwrap();
    let err =
        h.rt.restore(&garbage, h.spec("true"), None)
            .await
            .unwrap_err();
    assert!(matches!(err, SandboxError::CorruptArtifact { .. }), "{err}");

    // A truncated real snapshot is corrupt too.
    let a =
        h.rt.create(h.spec("echo x > f; exec sleep 600"), None)
            .await
            .unwrap();
    let snap = h.dir.path().join("real.tar.zst");
    h.rt.snapshot(&a.id, &snap).await.unwrap();
    h.rt.destroy(&a.id).await.unwrap();
    let bytes = std::fs::read(&snap).unwrap();
    std::fs::write(&snap, &bytes[..bytes.len() / 2]).unwrap();
    let err = h.rt.restore(&snap, h.spec("true"), None).await.unwrap_err();
    assert!(matches!(err, SandboxError::CorruptArtifact { .. }), "{err}");

    let sandboxes = h.rt.config().root_dir.join("sandboxes");
    assert_eq!(
        std::fs::read_dir(&sandboxes).unwrap().count(),
        0,
        "a failed create left a sandbox dir"
    );
    h.finish().await;
}

/// Not a test on its own: the child half of `the_reaper_cleans_up_after_a_crashed_den`.
#[tokio::test]
#[ignore = "run by the_reaper_cleans_up_after_a_crashed_den"]
async fn crash_child() {
    let Ok(root) = std::env::var("DEN_SANDBOX_CRASH_ROOT") else {
        return;
    };
    let instance = std::env::var("DEN_SANDBOX_CRASH_INSTANCE").unwrap();
    let mut cfg = den_sandbox::LocalConfig::new(&root);
    cfg.instance = instance;
    cfg.uid_base = std::env::var("DEN_SANDBOX_CRASH_UID")
        .unwrap()
        .parse()
        .unwrap();
    cfg.uid_count = 8;
    let (rt, _) = den_sandbox::LocalRuntime::start(cfg).await.unwrap();
    let ws = std::path::Path::new(&root).join("..").join("checkout");
    for _ in 0..2 {
        let spec = den_sandbox::SandboxSpec::new(
            &ws,
            vec![
                "/bin/sh".into(),
                "-c".into(),
                "sleep 600 & exec sleep 600".into(),
            ],
        );
        rt.create(spec, None).await.unwrap();
    }
    println!("DEN-CRASH-READY");
    std::future::pending::<()>().await;
}

#[tokio::test]
#[expect(
    clippy::disallowed_methods,
    reason = "the test starts a second den-like process to kill it"
)]
async fn the_reaper_cleans_up_after_a_crashed_den() {
    use tokio::io::AsyncBufReadExt;
    let h = Harness::new().await;
    let cfg = h.rt.config().clone();
    h.rt.shutdown().await.unwrap();
    let root = h.dir.path().join("crashed-state");
    let uid_base = cfg.uid_base + 16;
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "lifecycle::crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("DEN_SANDBOX_CRASH_ROOT", &root)
        .env("DEN_SANDBOX_CRASH_INSTANCE", &cfg.instance)
        .env("DEN_SANDBOX_CRASH_UID", uid_base.to_string())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if l.contains("DEN-CRASH-READY") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(ready, "the crash child did not start its sandboxes");
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let mut cfg2 = cfg.clone();
    cfg2.root_dir = root;
    cfg2.uid_base = uid_base;
    cfg2.uid_count = 8;
    let (rt, report) = den_sandbox::LocalRuntime::start(cfg2).await.unwrap();
    // The crashed den's cgroups and table may already be gone: a runtime starting in a test
    // running beside this one sweeps the host state of dead instances. Its sandbox
    // directories are only this instance's to remove.
    assert_eq!(report.sandbox_dirs, 2, "{report:?}");
    rt.shutdown().await.unwrap();
    let left = rt.leftovers().await;
    assert!(left.is_empty(), "leaked after reaping: {left:#?}");
}

#[tokio::test]
async fn a_second_runtime_of_a_live_instance_is_refused_and_the_first_keeps_working() {
    let h = Harness::new().await;
    let mut cfg = h.rt.config().clone();
    cfg.root_dir = h.dir.path().join("second-state");
    let err = match den_sandbox::LocalRuntime::start(cfg).await {
        Ok(_) => panic!("a second runtime of a live instance started"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains("another den"), "{err}");
    let (reason, out) = h.run(h.spec("echo still here")).await;
    assert!(
        matches!(reason, ExitReason::Exited { code: 0 }),
        "{reason:?}"
    );
    assert!(out.contains("still here"), "{out}");
    h.finish().await;
}

#[tokio::test]
async fn a_starting_runtime_sweeps_what_dead_instances_left_on_the_host() {
    let h = Harness::new().await;
    let mut dead = h.rt.config().clone();
    dead.instance = format!("{}d", dead.instance);
    dead.root_dir = h.dir.path().join("dead-state");
    // A runtime that goes away without shutting down, as a killed den does: its cgroups and
    // firewall table stay on the host.
    let (rt, _) = den_sandbox::LocalRuntime::start(dead.clone())
        .await
        .unwrap();
    drop(rt);
    let mut other = h.rt.config().clone();
    other.instance = format!("{}o", other.instance);
    other.root_dir = h.dir.path().join("other-state");
    let (sweeper, _) = den_sandbox::LocalRuntime::start(other).await.unwrap();
    // Started again, the dead instance finds nothing of its earlier run left to reap.
    let (again, report) = den_sandbox::LocalRuntime::start(dead).await.unwrap();
    assert!(
        report.cgroups == 0 && !report.firewall_table,
        "left for the instance itself: {report:?}"
    );
    again.shutdown().await.unwrap();
    sweeper.shutdown().await.unwrap();
    h.finish().await;
}

/// A sandbox started without its workspace boots with an empty, read-only `/workspace` and
/// gets the checkout while it runs: its processes then see the checkout there (through the
/// overlay, so writes land in the sandbox's own layer and the checkout stays untouched), and a
/// second attach is refused.
#[tokio::test]
async fn a_workspace_attached_later_appears_in_the_running_sandbox() {
    let h = Harness::new().await;
    let mut spec = h.spec(
        "pwd; ls -A /workspace | wc -l; touch /workspace/early 2>/dev/null && echo writable; \
         echo looked; \
         while [ ! -e /workspace/README.md ]; do sleep 0.05; done; \
         cd /workspace && cat README.md && echo mine > README.md && echo new > added.txt && \
         echo done",
    );
    spec.workspace = "/nonexistent-before-attach".into();
    spec.workspace_later = true;
    let sandbox = h.rt.create(spec, None).await.unwrap();
    // The script has looked at its empty workspace before the checkout is given.
    tokio::time::timeout(Duration::from_secs(60), async {
        while !h.logs(&sandbox).await.contains("looked") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the script never looked at its workspace");
    h.rt.attach_workspace(&sandbox.id, &h.workspace, Vec::new())
        .await
        .unwrap();
    let reason = h.wait_exit(&sandbox, Duration::from_secs(60)).await;
    let out = h.logs(&sandbox).await;
    assert_eq!(reason, ExitReason::Exited { code: 0 }, "{out}");
    assert_eq!(out, "/tmp\n0\nlooked\nseed\ndone\n", "{out}");
    assert_eq!(
        std::fs::read_to_string(h.workspace.join("README.md")).unwrap(),
        "seed\n",
        "the checkout must stay untouched"
    );
    assert!(!h.workspace.join("added.txt").exists());
    h.rt.destroy(&sandbox.id).await.unwrap();
    h.finish().await;
}

/// The workspace goes to one sandbox only, once: a second attach to a running sandbox is
/// refused with a clear error, and a sandbox started with its workspace takes none. The HOME
/// files given with it belong to the sandbox's user, with their mode.
#[tokio::test]
async fn a_workspace_is_attached_once_and_only_to_a_sandbox_waiting_for_one() {
    let h = Harness::new().await;
    let mut spec = h.spec("sleep 60");
    spec.workspace_later = true;
    let waiting = h.rt.create(spec, None).await.unwrap();
    let file = den_sandbox::HomeFile {
        path: ".config/den/session.json".into(),
        contents: b"{\"secret\":1}".to_vec(),
        mode: 0o600,
    };
    h.rt.attach_workspace(&waiting.id, &h.workspace, vec![file])
        .await
        .unwrap();
    let out = h
        .rt
        .exec(
            &waiting.id,
            den_sandbox::ExecRequest::new([
                "/bin/sh",
                "-c",
                "stat -c '%a %u' $HOME/.config/den/session.json && cat $HOME/.config/den/session.json",
            ]),
        )
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "600 1000\n{\"secret\":1}",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err =
        h.rt.attach_workspace(&waiting.id, &h.workspace, Vec::new())
            .await
            .unwrap_err()
            .to_string();
    assert!(err.contains("already has its workspace"), "{err}");
    let out =
        h.rt.exec(
            &waiting.id,
            den_sandbox::ExecRequest::new(["/bin/cat", "/workspace/README.md"]),
        )
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "seed\n");
    let started_with_one = h.rt.create(h.spec("sleep 60"), None).await.unwrap();
    let err =
        h.rt.attach_workspace(&started_with_one.id, &h.workspace, Vec::new())
            .await
            .unwrap_err()
            .to_string();
    assert!(err.contains("already has its workspace"), "{err}");
    h.rt.destroy(&waiting.id).await.unwrap();
    h.rt.destroy(&started_with_one.id).await.unwrap();
    h.finish().await;
}
