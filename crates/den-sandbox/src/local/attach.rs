//! Gives a running sandbox its workspace (`SandboxSpec::workspace_later`): the same overlay a
//! sandbox started with its workspace has (the checkout idmapped as the read-only lower layer,
//! the sandbox's own upper layer), mounted over the empty `/workspace` of its mount namespace.
//!
//! A helper process does it between fork and exec, as root: in a private mount namespace of its
//! own it makes the overlay exactly as the launcher does (`MountPlan`), takes a detached copy
//! of it (`open_tree`), joins the sandbox's mount namespace (possible only for a single-threaded
//! process, hence the fork) and moves the copy onto `/workspace` there. The mount then lives
//! only in the sandbox's namespace and goes with its last process, like the ones made at start;
//! the helper's own namespace vanishes when it exits.

#![expect(
    unsafe_code,
    reason = "open_tree, setns and move_mount have no safe wrappers; they run between fork and exec"
)]

use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Stdio;

use nix::libc;

use crate::error::{IoContext, Result, SandboxError};
use crate::exec::ExecRequest;
use crate::local::Live;
use crate::local::exec::ready_mount_namespace;
use crate::local::mounts::{
    MOVE_MOUNT_F_EMPTY_PATH, MountPlan, OPEN_TREE_CLONE, SYS_MOVE_MOUNT, SYS_OPEN_TREE, cstr,
    idmap_userns,
};
use crate::spec::{HOME_DIR, HomeFile, WORKSPACE_DIR};

/// How long a sandbox may take to set up its mounts (bubblewrap needs milliseconds; a loaded
/// host more).
const SETUP_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// The sandbox's mount namespace, waiting for bubblewrap to have made it: a create returns
/// once bubblewrap is started, and a workspace may be ready before its sandbox is.
async fn sandbox_mounts(live: &Live) -> Result<std::os::fd::OwnedFd> {
    let deadline = tokio::time::Instant::now() + SETUP_WITHIN;
    let mut status = live.status.clone();
    loop {
        if let Some(ns) = ready_mount_namespace(live) {
            return Ok(ns);
        }
        if status.borrow().is_exited() {
            return Err(SandboxError::Host(
                "the sandbox exited before its workspace was mounted".into(),
            ));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(SandboxError::Timeout {
                what: "waiting for the sandbox to set up its mounts".into(),
                secs: SETUP_WITHIN.as_secs(),
            });
        }
        // Nothing announces the end of bubblewrap's set-up: look again shortly, or as soon
        // as the sandbox exits.
        let _ = tokio::time::timeout(
            std::time::Duration::from_millis(10),
            status.wait_for(crate::spec::SandboxStatus::is_exited),
        )
        .await;
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "den-sandbox starts the helper that mounts"
)]
pub(crate) async fn attach_workspace(live: &Live, workspace: &Path) -> Result<()> {
    let l = &live.layout;
    let mut plan = MountPlan::new(idmap_userns(live.uid)?);
    plan.overlay(
        workspace,
        &l.ws("lower"),
        &l.ws("upper"),
        &l.ws("work"),
        &l.ws("merged"),
    )?;
    let merged = cstr(&l.ws("merged"))?;
    let target = cstr(Path::new(WORKSPACE_DIR))?;
    let empty = c"".to_owned();
    let sandbox_mounts = sandbox_mounts(live).await?;
    // `/bin/true` is run in the sandbox's view of the files (the host's /usr, read-only): the
    // helper has nothing left to do once the mount is moved.
    let mut command = tokio::process::Command::new("/bin/true");
    command
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    // SAFETY: the closure makes only async-signal-safe syscalls on data prepared above (see
    // `MountPlan::apply`); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            plan.apply()?;
            let tree = libc::syscall(
                SYS_OPEN_TREE,
                libc::AT_FDCWD,
                merged.as_ptr(),
                OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
            );
            if tree < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let tree = tree as libc::c_int;
            if libc::setns(sandbox_mounts.as_raw_fd(), libc::CLONE_NEWNS) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let moved = libc::syscall(
                SYS_MOVE_MOUNT,
                tree,
                empty.as_ptr(),
                libc::AT_FDCWD,
                target.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            );
            if moved < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(tree);
            Ok(())
        });
    }
    let status = command
        .status()
        .await
        .ctx(|| "mount the workspace into the sandbox".into())?;
    if !status.success() {
        return Err(SandboxError::Host(format!(
            "the helper that mounts the workspace into the sandbox ended with {status}"
        )));
    }
    Ok(())
}

/// Writes one file into the sandbox's HOME as its user (so it owns it as if it made it), with
/// the file's mode. The contents travel on standard input: they may be secret (the session's
/// gateway token), and a command line is readable by every user of the host.
pub(crate) async fn write_home_file(live: &Live, file: HomeFile) -> Result<()> {
    let path = Path::new(HOME_DIR).join(&file.path);
    let request = ExecRequest {
        stdin: file.contents,
        cwd: HOME_DIR.into(),
        timeout: std::time::Duration::from_secs(30),
        ..ExecRequest::new([
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            // The file is replaced by a new one made with the mode already set, so its
            // contents are never readable under a wider mode.
            "umask 077 && mkdir -p \"$(dirname \"$1\")\" && cat > \"$1.den-new\" && chmod \"$2\" \"$1.den-new\" && mv -f \"$1.den-new\" \"$1\"".to_owned(),
            "sh".to_owned(),
            path.display().to_string(),
            format!("{:o}", file.mode),
        ])
    };
    let out = crate::local::exec::exec(live, request).await?;
    if !out.success() {
        return Err(SandboxError::Command {
            command: format!("write {}", path.display()),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}
