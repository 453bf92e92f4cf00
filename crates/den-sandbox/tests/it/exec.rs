use std::time::Duration;

use crate::harness::Harness;
use den_sandbox::{ExecRequest, SandboxError, SandboxRuntime};

/// A command den runs beside the agent sees the agent's files (its writable layer included),
/// runs as the agent's user in the sandbox's own root, and cannot outlive its timeout.
#[tokio::test]
async fn exec_runs_beside_the_agent_with_its_view_and_user() {
    let h = Harness::new().await;
    h.git_init();
    let spec = h.spec("echo agent-wrote > note.txt; echo ready; exec sleep 300");
    let sandbox = h.rt.create(spec, None).await.unwrap();
    let log = h
        .dir
        .path()
        .join("state/sandboxes")
        .join(sandbox.id.as_str())
        .join("log");
    crate::limits_wait(&log).await;

    let run = |argv: &[&str]| ExecRequest::new(argv.iter().copied());
    let out =
        h.rt.exec(
            &sandbox.id,
            run(&[
                "/bin/sh",
                "-c",
                "id -u; hostname; pwd; cat note.txt; ls /; git status --porcelain",
            ]),
        )
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        &lines[..4],
        ["1000", "sandbox", "/workspace", "agent-wrote"],
        "{stdout}"
    );
    assert!(
        !stdout.contains("root\n"),
        "the host's root is not visible: {stdout}"
    );
    assert!(stdout.contains("?? note.txt"), "{stdout}");

    // What exec writes, the agent sees (and the host's checkout does not).
    let out =
        h.rt.exec(
            &sandbox.id,
            run(&["/bin/sh", "-c", "echo from-den > den.txt"]),
        )
        .await
        .unwrap();
    assert!(out.success());
    assert!(!h.workspace.join("den.txt").exists());
    let out =
        h.rt.exec(&sandbox.id, run(&["/bin/cat", "den.txt"]))
            .await
            .unwrap();
    assert_eq!(out.stdout, b"from-den\n");

    // Input, exit codes, the output cap.
    let mut cat = run(&["/bin/sh", "-c", "cat; exit 3"]);
    cat.stdin = b"piped".to_vec();
    let out = h.rt.exec(&sandbox.id, cat).await.unwrap();
    assert_eq!((out.code, out.stdout.as_slice()), (Some(3), &b"piped"[..]));
    let mut big = run(&["/bin/sh", "-c", "head -c 100000 /dev/zero"]);
    big.max_output = 1000;
    let out = h.rt.exec(&sandbox.id, big).await.unwrap();
    assert!(out.success() && out.stdout_truncated && out.stdout.len() == 1000);

    let mut slow = run(&["/bin/sleep", "30"]);
    slow.timeout = Duration::from_millis(300);
    let err = h.rt.exec(&sandbox.id, slow).await.unwrap_err();
    assert!(matches!(err, SandboxError::Timeout { .. }), "{err}");

    let err =
        h.rt.exec(&sandbox.id, run(&["sh", "-c", "true"]))
            .await
            .unwrap_err();
    assert!(matches!(err, SandboxError::InvalidSpec(_)), "{err}");

    h.rt.freeze(&sandbox.id).await.unwrap();
    let err =
        h.rt.exec(&sandbox.id, run(&["/bin/true"]))
            .await
            .unwrap_err();
    assert!(matches!(err, SandboxError::NotRunning { .. }), "{err}");
    h.rt.thaw(&sandbox.id).await.unwrap();

    h.rt.destroy(&sandbox.id).await.unwrap();
    h.finish().await;
}

/// den runs commands beside the agent concurrently (the diff after a turn, a push, a person's
/// diff request): each joins the sandbox while the others' short-lived processes come and go,
/// and every one runs where the agent is, never failing on a process that just exited.
#[tokio::test]
async fn concurrent_execs_each_find_the_sandbox() {
    let h = Harness::new().await;
    h.git_init();
    let spec = h.spec("echo ready; exec sleep 300");
    let sandbox = h.rt.create(spec, None).await.unwrap();
    let log = h
        .dir
        .path()
        .join("state/sandboxes")
        .join(sandbox.id.as_str())
        .join("log");
    crate::limits_wait(&log).await;

    for _round in 0..10 {
        let runs = (0..6).map(|_| {
            h.rt.exec(
                &sandbox.id,
                ExecRequest::new(["/bin/sh", "-c", "id -u; hostname"]),
            )
        });
        for out in futures::future::join_all(runs).await {
            let out = out.unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "1000\nsandbox\n",
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    h.rt.destroy(&sandbox.id).await.unwrap();
    h.finish().await;
}
