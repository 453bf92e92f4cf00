//! Network namespaces and the ways in and out of them.
//!
//! Each sandbox gets a network namespace that den creates (as root, so it belongs to the initial
//! user namespace and the sandbox cannot reconfigure it) before bubblewrap starts; this also
//! avoids the bwrap `--unshare-net` + slirp4netns loopback race the spike hit 3 times in 10. The
//! namespace is held by an fd, never bind-mounted to a file, so a crashed den leaves no mount
//! behind: it disappears with its last process.
//!
//! den talks to services inside through sockets it creates *inside* the namespace from a
//! short-lived thread that has `setns`'d into it: a socket stays in the namespace it was created
//! in, and the thread's switch does not affect the rest of the process. We chose this over a
//! runner process inside the sandbox because (1) the bridge then lives outside the agent's reach
//! (a runner would run as the sandbox's uid, so the agent could kill or impersonate it), (2) no
//! extra process or memory per sandbox, (3) 0.24 ms per connect in the spike. It needs
//! CAP_SYS_ADMIN, which den already needs for namespaces, mounts and cgroups.

#![expect(
    unsafe_code,
    reason = "SIOCSIFFLAGS ioctl and fd flag changes after fork need libc"
)]

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sched::CloneFlags;

use crate::error::{IoContext, Result, SandboxError};

/// Runs `f` on a fresh thread that has joined `netns`. The thread ends afterwards, so the
/// namespace switch never leaks into a pooled thread.
pub(crate) async fn in_netns<T, F>(netns: &OwnedFd, f: F) -> std::io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> std::io::Result<T> + Send + 'static,
{
    let fd = netns.try_clone()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("den-netns".into())
        .spawn(move || {
            let r = nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)
                .and_then(|()| f());
            let _ = tx.send(r);
        })?;
    rx.await
        .unwrap_or_else(|_| Err(std::io::Error::other("netns thread panicked")))
}

/// Creates a network namespace with `lo` up and returns a handle to it.
pub(crate) async fn create_netns() -> Result<OwnedFd> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("den-netns-new".into())
        .spawn(move || {
            let r = (|| {
                nix::sched::unshare(CloneFlags::CLONE_NEWNET)?;
                let fd: OwnedFd = std::fs::File::open("/proc/thread-self/ns/net")?.into();
                loopback_up()?;
                Ok::<_, std::io::Error>(fd)
            })();
            let _ = tx.send(r);
        })
        .ctx(|| "spawn a thread".into())?;
    rx.await
        .unwrap_or_else(|_| Err(std::io::Error::other("netns thread panicked")))
        .ctx(|| "create a network namespace".into())
}

fn loopback_up() -> std::io::Result<()> {
    // A new namespace's lo has no address yet; any AF_INET socket serves for the ioctl.
    let fd: OwnedFd = std::net::UdpSocket::bind("0.0.0.0:0")?.into();
    // SAFETY: ifreq is plain old data; the name is NUL-terminated and fits IFNAMSIZ.
    unsafe {
        let mut req: nix::libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as nix::libc::c_char;
        }
        if nix::libc::ioctl(fd.as_raw_fd(), nix::libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= (nix::libc::IFF_UP | nix::libc::IFF_RUNNING) as i16;
        if nix::libc::ioctl(fd.as_raw_fd(), nix::libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Connects to `127.0.0.1:port` inside `netns`.
pub(crate) async fn connect(netns: &OwnedFd, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let std_stream = in_netns(netns, move || {
        let s = TcpStream::connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))?;
        s.set_nonblocking(true)?;
        Ok(s)
    })
    .await?;
    tokio::net::TcpStream::from_std(std_stream)
}

/// Listens on `127.0.0.1:port` inside `netns`.
pub(crate) async fn listen(netns: &OwnedFd, port: u16) -> std::io::Result<tokio::net::TcpListener> {
    let l = in_netns(netns, move || {
        let l = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))?;
        l.set_nonblocking(true)?;
        Ok(l)
    })
    .await?;
    tokio::net::TcpListener::from_std(l)
}

/// A running slirp4netns, which gives the namespace a NATed route to the internet.
#[derive(Debug)]
pub(crate) struct Slirp {
    child: tokio::process::Child,
    /// slirp4netns exits when this pipe closes, including when den dies.
    _exit_w: OwnedFd,
}

impl Slirp {
    /// Starts slirp4netns for `netns` inside the cgroup whose `cgroup.procs` is `cgroup_procs`
    /// (the nftables guard matches that cgroup), and waits until it has configured the tap.
    #[expect(
        clippy::disallowed_methods,
        reason = "den-sandbox starts the sandbox's helper processes"
    )]
    pub(crate) async fn start(
        slirp_bin: &str,
        netns: &OwnedFd,
        cgroup_procs: std::fs::File,
        log: std::fs::File,
    ) -> Result<Self> {
        let (ready_r, ready_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
        let (exit_r, exit_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
        let (ready_fd, exit_fd, ns_fd) =
            (ready_w.as_raw_fd(), exit_r.as_raw_fd(), netns.as_raw_fd());
        let procs_fd = cgroup_procs.as_raw_fd();
        let mut cmd = tokio::process::Command::new(slirp_bin);
        cmd.args([
            "--configure",
            "--mtu=65520",
            "--disable-host-loopback",
            "--enable-sandbox",
            "--enable-seccomp",
            &format!("--ready-fd={ready_fd}"),
            &format!("--exit-fd={exit_fd}"),
            "--netns-type=path",
            &format!("/proc/self/fd/{ns_fd}"),
            "tap0",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true);
        // SAFETY: only async-signal-safe calls (write, fcntl) on fds opened before fork.
        unsafe {
            cmd.pre_exec(move || {
                if nix::libc::write(procs_fd, b"0".as_ptr().cast(), 1) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                for fd in [ready_fd, exit_fd, ns_fd] {
                    if nix::libc::fcntl(fd, nix::libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().ctx(|| format!("start {slirp_bin}"))?;
        drop((ready_w, exit_r, cgroup_procs));
        let ready = tokio::net::unix::pipe::Receiver::from_owned_fd(ready_r)
            .ctx(|| "slirp4netns ready pipe".into())?;
        let mut buf = [0u8; 1];
        let got = tokio::time::timeout(std::time::Duration::from_secs(20), async {
            loop {
                ready.readable().await?;
                match ready.try_read(&mut buf) {
                    Ok(n) => return Ok::<_, std::io::Error>(n),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
        })
        .await;
        match got {
            Ok(Ok(1)) => Ok(Self {
                child,
                _exit_w: exit_w,
            }),
            _ => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                Err(SandboxError::Command {
                    command: "slirp4netns".into(),
                    detail: "did not become ready (see slirp.log in the sandbox dir)".into(),
                })
            }
        }
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.start_kill();
    }

    pub(crate) async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
