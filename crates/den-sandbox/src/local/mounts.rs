//! The sandbox's file system view: overlays whose lower layers are read-only, shared host
//! directories (the workspace checkout, the HOME template) and whose upper layers are the
//! sandbox's own (what a snapshot archives).
//!
//! The lower layers belong to host root. Seen through a plain overlay they would show up as
//! `nobody` inside and the sandbox could not modify them, so each lower is mounted *idmapped*:
//! on-disk uid/gid 0 appear as the sandbox's host uid (as the spike verified on this kernel).
//!
//! All of it happens in a private mount namespace of the launcher process, between fork and
//! exec, as root, just before dropping to the sandbox uid. The mounts therefore exist only for
//! the sandbox and vanish with its last process: nothing to unmount on the host, nothing for the
//! reaper to find after a crash. The code that runs there only makes raw syscalls on data
//! prepared beforehand, because after fork in a multi-threaded program allocation is unsafe.

#![expect(
    unsafe_code,
    reason = "mount syscalls without safe wrappers, run between fork and exec"
)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::libc;

use crate::error::{IoContext, Result, SandboxError};

pub(crate) const SYS_OPEN_TREE: libc::c_long = 428;
pub(crate) const SYS_MOVE_MOUNT: libc::c_long = 429;
const SYS_MOUNT_SETATTR: libc::c_long = 442;
pub(crate) const OPEN_TREE_CLONE: libc::c_uint = 1;
pub(crate) const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
const MOUNT_ATTR_RDONLY: u64 = 1;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

pub(crate) fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| SandboxError::InvalidSpec(format!("path {} contains NUL", p.display())))
}

/// A user namespace mapping uid/gid 0 to `uid`, used only as the mapping of idmapped mounts.
/// The kernel needs a process to create one; it is killed as soon as its namespace is opened.
#[expect(
    clippy::disallowed_methods,
    reason = "den-sandbox starts a placeholder process"
)]
pub(crate) fn idmap_userns(uid: u32) -> Result<OwnedFd> {
    let mut cmd = std::process::Command::new("/bin/sleep");
    cmd.arg("600")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: unshare and prctl are async-signal-safe; the closure allocates nothing.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0
                || libc::unshare(libc::CLONE_NEWUSER) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().ctx(|| "start the idmap helper".into())?;
    let result = (|| {
        let proc = format!("/proc/{}", child.id());
        let map = format!("0 {uid} 1\n");
        std::fs::write(format!("{proc}/uid_map"), &map).ctx(|| "write uid_map".into())?;
        std::fs::write(format!("{proc}/gid_map"), &map).ctx(|| "write gid_map".into())?;
        let fd: OwnedFd = std::fs::File::open(format!("{proc}/ns/user"))
            .ctx(|| "open the idmap user namespace".into())?
            .into();
        Ok(fd)
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// One overlay: `lower` (host dir) idmapped onto `lower_mnt`, then overlay on `merged`.
#[derive(Debug)]
struct Overlay {
    lower: CString,
    lower_mnt: CString,
    merged: CString,
    data: CString,
}

/// A read-only bind of a host path onto a staging path in the sandbox dir, made as root so that
/// bwrap (running as the sandbox uid) can bind it even if the host path is not readable to it.
#[derive(Debug)]
struct Bind {
    src: CString,
    dst: CString,
}

/// Everything the launcher mounts between fork and exec.
#[derive(Debug)]
pub(crate) struct MountPlan {
    userns: OwnedFd,
    overlays: Vec<Overlay>,
    binds: Vec<Bind>,
    empty: CString,
    root: CString,
    overlay: CString,
}

impl MountPlan {
    pub(crate) fn new(userns: OwnedFd) -> Self {
        Self {
            userns,
            overlays: Vec::new(),
            binds: Vec::new(),
            empty: CString::default(),
            root: c"/".to_owned(),
            overlay: c"overlay".to_owned(),
        }
    }

    /// `lower` is never written; writes land in `upper` (with `work` as overlay's scratch dir).
    pub(crate) fn overlay(
        &mut self,
        lower: &Path,
        lower_mnt: &Path,
        upper: &Path,
        work: &Path,
        merged: &Path,
    ) -> Result<()> {
        for p in [lower_mnt, upper, work] {
            let s = p.to_string_lossy();
            if s.contains([',', ':', '\\']) {
                return Err(SandboxError::Host(format!(
                    "the sandbox root dir path must not contain ',', ':' or '\\': {s}"
                )));
            }
        }
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower_mnt.display(),
            upper.display(),
            work.display()
        );
        self.overlays.push(Overlay {
            lower: cstr(lower)?,
            lower_mnt: cstr(lower_mnt)?,
            merged: cstr(merged)?,
            data: CString::new(data).map_err(|_| SandboxError::Host("NUL in path".into()))?,
        });
        Ok(())
    }

    pub(crate) fn bind(&mut self, src: &Path, dst: &Path) -> Result<()> {
        self.binds.push(Bind {
            src: cstr(src)?,
            dst: cstr(dst)?,
        });
        Ok(())
    }

    /// Runs in the forked launcher before exec. Only raw syscalls on prepared data.
    pub(crate) fn apply(&self) -> std::io::Result<()> {
        let err = || Err(std::io::Error::last_os_error());
        // SAFETY: all pointers are to NUL-terminated strings or a properly sized mount_attr
        // owned by `self`, which outlives the calls.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS) < 0 {
                return err();
            }
            let flags = libc::MS_REC | libc::MS_PRIVATE;
            if libc::mount(
                std::ptr::null(),
                self.root.as_ptr(),
                std::ptr::null(),
                flags,
                std::ptr::null(),
            ) < 0
            {
                return err();
            }
            for o in &self.overlays {
                let fd = libc::syscall(
                    SYS_OPEN_TREE,
                    libc::AT_FDCWD,
                    o.lower.as_ptr(),
                    OPEN_TREE_CLONE
                        | libc::O_CLOEXEC as libc::c_uint
                        | libc::AT_RECURSIVE as libc::c_uint,
                );
                if fd < 0 {
                    return err();
                }
                let fd = fd as RawFd;
                let attr = libc::mount_attr {
                    attr_set: MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY,
                    attr_clr: 0,
                    propagation: 0,
                    userns_fd: self.userns.as_raw_fd() as u64,
                };
                let r = libc::syscall(
                    SYS_MOUNT_SETATTR,
                    fd,
                    self.empty.as_ptr(),
                    libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
                    &attr as *const libc::mount_attr,
                    std::mem::size_of::<libc::mount_attr>(),
                );
                if r < 0 {
                    libc::close(fd);
                    return err();
                }
                let r = libc::syscall(
                    SYS_MOVE_MOUNT,
                    fd,
                    self.empty.as_ptr(),
                    libc::AT_FDCWD,
                    o.lower_mnt.as_ptr(),
                    MOVE_MOUNT_F_EMPTY_PATH,
                );
                libc::close(fd);
                if r < 0 {
                    return err();
                }
                if libc::mount(
                    self.overlay.as_ptr(),
                    o.merged.as_ptr(),
                    self.overlay.as_ptr(),
                    0,
                    o.data.as_ptr().cast(),
                ) < 0
                {
                    return err();
                }
            }
            for b in &self.binds {
                if libc::mount(
                    b.src.as_ptr(),
                    b.dst.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ) < 0
                {
                    return err();
                }
            }
        }
        Ok(())
    }
}
