//! The system call filter: every call it denies is refused inside a sandbox, for the agent
//! (started by bwrap) and for what den runs beside it (exec), while threads, processes and the
//! usual tools keep working.

use std::time::Duration;

use nix::libc;

use crate::harness::Harness;
use den_sandbox::{ExecRequest, ExitReason, SandboxRuntime};

/// A python probe: calls each system call with harmless arguments and prints its errno (0 when
/// it succeeded). The arguments are chosen so that, without the filter, most calls give an
/// answer other than EPERM (succeed, EFAULT, EBADF, ENOSPC, EINVAL), so the test sees the
/// filter and not a missing privilege.
fn probe() -> String {
    let calls: [(&str, libc::c_long, &str); 17] = [
        ("ptrace", libc::SYS_ptrace, "0, 0, 0, 0"), // PTRACE_TRACEME
        (
            "process_vm_readv",
            libc::SYS_process_vm_readv,
            "os.getpid(), 0, 0, 0, 0, 0",
        ),
        ("kcmp", libc::SYS_kcmp, "os.getpid(), os.getpid(), 0, 0, 0"),
        ("keyctl", libc::SYS_keyctl, "0, -3, 0"), // get the session keyring's id
        ("bpf", libc::SYS_bpf, "0, 0, 0"),
        (
            "perf_event_open",
            libc::SYS_perf_event_open,
            "0, 0, -1, -1, 0",
        ),
        ("userfaultfd", libc::SYS_userfaultfd, "0"),
        ("io_uring_setup", libc::SYS_io_uring_setup, "1, 0"),
        (
            "name_to_handle_at",
            libc::SYS_name_to_handle_at,
            "-100, 0, 0, 0, 0",
        ),
        ("open_by_handle_at", libc::SYS_open_by_handle_at, "-1, 0, 0"),
        ("mount", libc::SYS_mount, "0, 0, 0, 0, 0"),
        ("setns", libc::SYS_setns, "-1, 0"),
        (
            "unshare_user",
            libc::SYS_unshare,
            &libc::CLONE_NEWUSER.to_string(),
        ),
        (
            "unshare_net",
            libc::SYS_unshare,
            &libc::CLONE_NEWNET.to_string(),
        ),
        (
            "clone_user",
            libc::SYS_clone,
            &format!("{} | 17, 0, 0, 0, 0", libc::CLONE_NEWUSER),
        ),
        ("syslog", libc::SYS_syslog, "10, 0, 0"), // the kernel log's size
        ("clone3", libc::SYS_clone3, "0, 0"),
    ];
    let mut script = String::from(
        "import ctypes, os, threading, subprocess\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         libc.syscall.restype = ctypes.c_long\n\
         def errno(nr, *args):\n    \
             ctypes.set_errno(0)\n    \
             r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])\n    \
             return 0 if r >= 0 else ctypes.get_errno()\n",
    );
    for (name, nr, args) in calls {
        script.push_str(&format!("print('{name}', errno({nr}, {args}))\n"));
    }
    // What must keep working: threads (glibc tries clone3 first, then clone) and processes;
    // and the filter is in place.
    script.push_str(
        "t = threading.Thread(target=lambda: None); t.start(); t.join(); print('thread 0')\n\
         print('subprocess', subprocess.run(['/bin/true']).returncode)\n\
         print('seccomp_mode', libc.prctl(21, 0, 0, 0, 0))\n",
    );
    script
}

fn expected() -> Vec<(String, String)> {
    let eperm = libc::EPERM.to_string();
    let mut lines: Vec<(String, String)> = [
        "ptrace",
        "process_vm_readv",
        "kcmp",
        "keyctl",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "io_uring_setup",
        "name_to_handle_at",
        "open_by_handle_at",
        "mount",
        "setns",
        "unshare_user",
        "unshare_net",
        "clone_user",
        "syslog",
    ]
    .into_iter()
    .map(|name| (name.to_owned(), eperm.clone()))
    .collect();
    lines.push(("clone3".into(), libc::ENOSYS.to_string()));
    lines.push(("thread".into(), "0".into()));
    lines.push(("subprocess".into(), "0".into()));
    // PR_GET_SECCOMP: mode 2 is "filter" (/proc/self is not this process's in an exec, which
    // joins the sandbox's mounts but not its pid namespace).
    lines.push(("seccomp_mode".into(), "2".into()));
    lines
}

fn parse(output: &str) -> Vec<(String, String)> {
    output
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(name, value)| (name.to_owned(), value.trim().to_owned()))
        .collect()
}

#[tokio::test]
async fn the_agent_and_commands_beside_it_are_refused_every_denied_call() {
    let h = Harness::new().await;
    std::fs::write(h.workspace.join("probe.py"), probe()).unwrap();

    // The agent's side: bwrap's command.
    let (reason, out) = h.run(h.spec("python3 probe.py")).await;
    assert_eq!(reason, ExitReason::Exited { code: 0 }, "{out}");
    assert_eq!(
        parse(&out),
        expected(),
        "inside the agent's process:\n{out}"
    );

    // den's side: a command run beside the agent.
    let sandbox =
        h.rt.create(h.spec("echo ready; exec sleep 300"), None)
            .await
            .unwrap();
    let log = h
        .dir
        .path()
        .join("state/sandboxes")
        .join(sandbox.id.as_str())
        .join("log");
    crate::limits_wait(&log).await;
    let mut request = ExecRequest::new(["/usr/bin/python3", "probe.py"]);
    request.timeout = Duration::from_secs(60);
    let output = h.rt.exec(&sandbox.id, request).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(parse(&stdout), expected(), "inside an exec:\n{stdout}");
    h.rt.destroy(&sandbox.id).await.unwrap();
    h.finish().await;
}
