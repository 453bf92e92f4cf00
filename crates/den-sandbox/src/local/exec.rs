//! Runs a command inside a running sandbox for den's own steps (git diff, commit): the command
//! joins the sandbox's cgroups and namespaces and drops to its user, so it sees exactly what the
//! agent sees and can do nothing the agent could not. Nothing of the repository runs on the host.
//!
//! The namespaces are joined between fork and exec, in an order the kernel accepts: the network
//! namespace (den made it, owned by the host's user namespace) while still root on the host;
//! then the user namespace that owns the sandbox's mounts, which gives the capabilities to join
//! its mount, UTS, IPC and cgroup namespaces; then the innermost user namespace (bubblewrap's
//! `--disable-userns` nests one) and the sandbox uid. The pid namespace is not joined: the
//! command stays killable by den on a timeout, and sandbox processes cannot see it.

#![expect(
    unsafe_code,
    reason = "setns and the ns ioctl have no safe wrappers; they run between fork and exec"
)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;

use nix::libc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::error::{IoContext, Result, SandboxError};
use crate::exec::{ExecOutput, ExecRequest};
use crate::local::{Live, seccomp};

/// `NS_GET_USERNS` from linux/nsfs.h: the user namespace that owns a namespace.
const NS_GET_USERNS: libc::c_ulong = 0xb701;

/// The sandbox's namespaces, opened before fork.
struct Namespaces {
    net: std::sync::Arc<OwnedFd>,
    /// Owner of the mount namespace (bubblewrap's first user namespace).
    outer_user: OwnedFd,
    mnt: OwnedFd,
    uts: OwnedFd,
    ipc: OwnedFd,
    cgroup: OwnedFd,
    /// The command's own user namespace, when it is nested inside `outer_user`.
    inner_user: Option<OwnedFd>,
}

fn open_ns(pid: i32, name: &str) -> Result<OwnedFd> {
    let file = std::fs::File::open(format!("/proc/{pid}/ns/{name}"))
        .ctx(|| format!("open the {name} namespace of sandbox process {pid}"))?;
    Ok(file.into())
}

fn ns_id(pid: i32, name: &str) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}")).ok()
}

/// The parent of a process, if it is still there.
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so read after the last ')'.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The processes of the sandbox's command, newest first: any of them shows `exec` the
/// namespaces to join. Not bubblewrap's launcher (it stays in the host's user namespace), and
/// not another `exec`'s command (den's own child, which may be halfway through joining).
fn sandbox_processes(live: &Live) -> Vec<i32> {
    let den = std::process::id() as i32;
    let host_user = ns_id(den, "user");
    let mut pids: Vec<i32> = live
        .cgroup
        .pids()
        .into_iter()
        .filter(|pid| ns_id(*pid, "user").is_some_and(|ns| Some(&ns) != host_user.as_ref()))
        .filter(|pid| parent_of(*pid) != Some(den))
        .collect();
    // The highest pid is usually the newest: the command rather than bubblewrap's init.
    pids.sort_unstable_by(|a, b| b.cmp(a));
    pids
}

/// The sandbox's namespaces, from the first of its processes that is still there when they are
/// opened: a process can exit between the listing and the opening (a short-lived tool of the
/// agent, or another `exec`'s git, which joins the same cgroup), and then the next one serves.
fn namespaces(live: &Live) -> Result<Namespaces> {
    let mut last = None;
    for pid in sandbox_processes(live) {
        match namespaces_of(live, pid) {
            Ok(namespaces) => return Ok(namespaces),
            Err(err) => last = Some(err),
        }
    }
    Err(last.unwrap_or_else(|| {
        SandboxError::Host("the sandbox has no process to run a command beside".into())
    }))
}

/// The sandbox's mount namespace (where its `/workspace` is), once bubblewrap has made it: from
/// a process of the sandbox whose root is no longer the host's (bubblewrap's child starts in
/// a copy of the host's mounts and pivots into the sandbox's own root when they are ready).
/// `None` while no process is that far.
pub(crate) fn ready_mount_namespace(live: &Live) -> Option<OwnedFd> {
    let host_root = std::fs::metadata("/").ok()?;
    let same_file = |a: &std::fs::Metadata, b: &std::fs::Metadata| {
        use std::os::unix::fs::MetadataExt;
        (a.dev(), a.ino()) == (b.dev(), b.ino())
    };
    sandbox_processes(live).into_iter().find_map(|pid| {
        let root = std::fs::metadata(format!("/proc/{pid}/root")).ok()?;
        let pivoted = !same_file(&root, &host_root)
            && std::fs::metadata(format!("/proc/{pid}/root{}", crate::spec::WORKSPACE_DIR))
                .is_ok_and(|m| m.is_dir());
        pivoted.then(|| open_ns(pid, "mnt").ok()).flatten()
    })
}

fn namespaces_of(live: &Live, pid: i32) -> Result<Namespaces> {
    let mnt = open_ns(pid, "mnt")?;
    // SAFETY: an ioctl on a namespace fd we own; it returns a new fd or -1.
    let owner = unsafe { libc::ioctl(mnt.as_raw_fd(), NS_GET_USERNS) };
    if owner < 0 {
        return Err(SandboxError::Io {
            what: "find the owner of the sandbox's mount namespace".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: the ioctl returned a fresh fd that nothing else owns.
    let outer_user = unsafe { OwnedFd::from_raw_fd(owner) };
    let user = open_ns(pid, "user")?;
    let same = |a: &OwnedFd, b: &OwnedFd| -> bool {
        let (Ok(a), Ok(b)) = (nix::sys::stat::fstat(a), nix::sys::stat::fstat(b)) else {
            return false;
        };
        (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
    };
    let inner_user = (!same(&user, &outer_user)).then_some(user);
    Ok(Namespaces {
        net: live.netns.clone(),
        outer_user,
        mnt,
        uts: open_ns(pid, "uts")?,
        ipc: open_ns(pid, "ipc")?,
        cgroup: open_ns(pid, "cgroup")?,
        inner_user,
    })
}

/// The uid and gid of the agent inside every sandbox.
const SANDBOX_ID: libc::uid_t = 1000;

#[expect(clippy::disallowed_methods, reason = "den-sandbox starts processes")]
pub(crate) async fn exec(live: &Live, request: ExecRequest) -> Result<ExecOutput> {
    let program = request
        .argv
        .first()
        .ok_or_else(|| SandboxError::InvalidSpec("exec needs a command".into()))?
        .clone();
    if !program.starts_with('/') {
        return Err(SandboxError::InvalidSpec(format!(
            "exec needs an absolute program path, not {program:?}"
        )));
    }
    let ns = namespaces(live)?;
    let procs = live.cgroup.procs_files()?;
    let cwd = CString::new(request.cwd.as_os_str().as_bytes())
        .map_err(|_| SandboxError::InvalidSpec("exec cwd contains NUL".into()))?;
    let filters = seccomp::filters()?;
    let seccomp_programs = [
        seccomp::kernel_program(&filters.refuse),
        seccomp::kernel_program(&filters.unimplemented),
    ];
    let mut command = tokio::process::Command::new(&program);
    command
        .args(&request.argv[1..])
        .env_clear()
        .envs(&request.env)
        .stdin(if request.stdin.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: the closure makes only async-signal-safe syscalls on fds and strings prepared
    // above; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            let check = |r: libc::c_int| {
                if r < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(())
                }
            };
            // Still root on the host: drop supplementary groups, join the cgroups and the
            // network namespace den owns.
            check(libc::setgroups(0, std::ptr::null()))?;
            for f in &procs {
                if libc::write(f.as_raw_fd(), b"0".as_ptr().cast(), 1) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            check(libc::setns(ns.net.as_raw_fd(), libc::CLONE_NEWNET))?;
            check(libc::setns(ns.outer_user.as_raw_fd(), libc::CLONE_NEWUSER))?;
            check(libc::setns(ns.mnt.as_raw_fd(), libc::CLONE_NEWNS))?;
            check(libc::setns(ns.uts.as_raw_fd(), libc::CLONE_NEWUTS))?;
            check(libc::setns(ns.ipc.as_raw_fd(), libc::CLONE_NEWIPC))?;
            check(libc::setns(ns.cgroup.as_raw_fd(), libc::CLONE_NEWCGROUP))?;
            if let Some(inner) = &ns.inner_user {
                check(libc::setns(inner.as_raw_fd(), libc::CLONE_NEWUSER))?;
            }
            check(libc::chdir(cwd.as_ptr()))?;
            check(libc::setresgid(SANDBOX_ID, SANDBOX_ID, SANDBOX_ID))?;
            check(libc::setresuid(SANDBOX_ID, SANDBOX_ID, SANDBOX_ID))?;
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
            // Last: the filters refuse `setns`, which the steps above need.
            for program in &seccomp_programs {
                check(seccomp::install(program))?;
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .ctx(|| format!("run {program} in the sandbox"))?;
    let stdin = child.stdin.take();
    let input = request.stdin;
    let feed = async move {
        if let Some(mut stdin) = stdin {
            // A command that stops reading early is its own business.
            let _ = stdin.write_all(&input).await;
        }
    };
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let limit = request.max_output;
    let run = async {
        let ((), (stdout, stdout_truncated), (stderr, _), status) = tokio::join!(
            feed,
            read_capped(stdout, limit),
            read_capped(stderr, 64 * 1024),
            child.wait()
        );
        let status = status.ctx(|| format!("wait for {program} in the sandbox"))?;
        Ok::<_, SandboxError>(ExecOutput {
            code: status.code(),
            stdout,
            stdout_truncated,
            stderr,
        })
    };
    let seconds = request.timeout.as_secs();
    tokio::time::timeout(request.timeout, run)
        .await
        .map_err(|_| SandboxError::Timeout {
            what: format!("{program} in the sandbox"),
            secs: seconds,
        })?
}

/// Reads everything, keeping the first `limit` bytes (reading on, so the writer never blocks).
async fn read_capped(source: Option<impl AsyncRead + Unpin>, limit: usize) -> (Vec<u8>, bool) {
    let Some(mut source) = source else {
        return (Vec::new(), false);
    };
    let (mut kept, mut truncated) = (Vec::new(), false);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match source.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = limit.saturating_sub(kept.len());
                if n > room {
                    truncated = true;
                }
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (kept, truncated)
}
