//! What runs beside each live sandbox in den: the supervisor task (exit detection, lifetime,
//! cleanup of processes and helpers) and the bridges for exposed ports and forwards.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::local::cgroup::Cgroup;
use crate::local::net::{self, Slirp};
use crate::spec::{ExitReason, SandboxStatus};

/// Shared between the runtime (which may request a stop) and the supervisor.
#[derive(Debug, Default)]
pub(crate) struct StopRequest(Mutex<Option<ExitReason>>);

impl StopRequest {
    /// The first reason wins: a lifetime kill stays a lifetime kill even if stop follows.
    pub(crate) fn set(&self, reason: ExitReason) {
        crate::runtime::lock(&self.0).get_or_insert(reason);
    }
    fn get(&self) -> Option<ExitReason> {
        crate::runtime::lock(&self.0).clone()
    }
}

pub(crate) struct Supervised {
    pub(crate) child: tokio::process::Child,
    pub(crate) slirp: Option<Slirp>,
    pub(crate) bridges: JoinSet<()>,
    pub(crate) cgroup: Arc<Cgroup>,
    pub(crate) lifetime: Duration,
    /// Starts the lifetime again: a sandbox that waited for its workspace (in a warm pool)
    /// lives its whole lifetime from the moment it is given one.
    pub(crate) restart_lifetime: Arc<tokio::sync::Notify>,
    pub(crate) stop: Arc<StopRequest>,
    pub(crate) status: watch::Sender<SandboxStatus>,
}

impl Supervised {
    pub(crate) async fn run(mut self) {
        let oom_before = self.cgroup.stats().oom_kills;
        let restart = self.restart_lifetime.clone();
        let lifetime = self.lifetime;
        let exit = loop {
            tokio::select! {
                s = self.child.wait() => break s,
                () = tokio::time::sleep(lifetime) => {
                    self.stop.set(ExitReason::LifetimeExceeded);
                    let _ = self.cgroup.kill_all().await;
                    break self.child.wait().await;
                }
                () = restart.notified() => {}
            }
        };
        // The command is gone; whatever it left running goes too.
        let kill = self.cgroup.kill_all().await;
        // SIGKILL slirp4netns now but reap it after publishing the exit: waiting for it would add
        // ~20 ms to every stop, and it can no longer reach the (dead) sandbox anyway.
        let mut slirp = self.slirp.take();
        if let Some(s) = slirp.as_mut() {
            s.kill();
        }
        self.bridges.shutdown().await;
        let reason = if let Some(r) = self.stop.get() {
            r
        } else if let Err(e) = kill {
            ExitReason::Failed {
                message: e.to_string(),
            }
        } else {
            match exit {
                Err(e) => ExitReason::Failed {
                    message: format!("waiting for the sandbox: {e}"),
                },
                Ok(status) => {
                    use std::os::unix::process::ExitStatusExt;
                    let oom = self.cgroup.stats().oom_kills > oom_before;
                    match (status.code(), status.signal()) {
                        // bwrap reports a command killed by SIGKILL as 137.
                        (Some(137), _) | (_, Some(9)) if oom => ExitReason::OutOfMemory,
                        (Some(code), _) => ExitReason::Exited { code },
                        (None, Some(signal)) => ExitReason::Signaled { signal },
                        (None, None) => ExitReason::Failed {
                            message: "unknown exit status".into(),
                        },
                    }
                }
            }
        };
        tracing::debug!(%reason, "sandbox exited");
        self.status.send_replace(SandboxStatus::Exited { reason });
        if let Some(s) = slirp {
            s.stop().await;
        }
    }
}

/// Accepts on a host unix socket and connects each client to `127.0.0.1:port` in the sandbox.
pub(crate) fn expose(
    set: &mut JoinSet<()>,
    listener: UnixListener,
    netns: Arc<OwnedFd>,
    port: u16,
) {
    set.spawn(async move {
        let mut conns = JoinSet::new();
        while let Ok((mut client, _)) = listener.accept().await {
            let netns = netns.clone();
            conns.spawn(async move {
                if let Ok(mut inner) = net::connect(&netns, port).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut inner).await;
                }
            });
            while conns.try_join_next().is_some() {}
        }
    });
}

/// Accepts on `127.0.0.1:port` inside the sandbox and connects each client to a host socket.
pub(crate) fn forward(
    set: &mut JoinSet<()>,
    listener: tokio::net::TcpListener,
    host_socket: PathBuf,
) {
    set.spawn(async move {
        let mut conns = JoinSet::new();
        while let Ok((mut client, _)) = listener.accept().await {
            let path = host_socket.clone();
            conns.spawn(async move {
                if let Ok(mut host) = tokio::net::UnixStream::connect(&path).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut host).await;
                }
            });
            while conns.try_join_next().is_some() {}
        }
    });
}
