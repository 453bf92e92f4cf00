//! The warm pool: sandboxes whose OpenCode has booted and answers, waiting for a new session.
//!
//! OpenCode's boot (seconds of CPU) is the floor of a session's start; a pool sandbox has paid
//! it before anyone asks. Nothing of any session is in it: it runs den's base config, a server
//! password of its own, an empty read-only `/workspace`, and its agent works in `/tmp`. A new
//! session claims one and gives it, at that moment, its workspace (the checkout, mounted into
//! the running sandbox by den-sandbox), its OpenCode config (providers with the session's
//! gateway token, its model: a file OpenCode reads when it opens the workspace) and git's
//! setup for the git gateway. A pool sandbox is used once: it leaves the pool when claimed,
//! and is destroyed like any session's sandbox; it never returns.
//!
//! The pool refills in the background, one sandbox at a time, through the sandbox runtime's
//! create queue like any start (so it never takes more than one of the queue's slots).
//! Resuming a paused session does not go through the pool: its OpenCode must open the
//! snapshot's database, which a booted OpenCode already holds open (see ARCHITECTURE.md).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::agent_sandbox::OPENCODE_PORT;
use den_opencode::{OpencodeClient, OpencodeConfig, Target};
use den_sandbox::probe::BasicAuth;
use den_sandbox::{SandboxHandle, SandboxRuntime, SandboxStatus};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::SessionConfig;
use crate::error::{Result, SessionError};
use crate::workspace;

/// A booted sandbox waiting to be claimed, and the password its OpenCode was started with.
pub(crate) struct Warm {
    pub(crate) sandbox: SandboxHandle,
    pub(crate) auth: BasicAuth,
}

/// After a failed boot, the pool waits this long before trying again (a host that cannot
/// start sandboxes should not be asked continuously).
const RETRY_AFTER: Duration = Duration::from_secs(10);

pub(crate) struct WarmPool {
    size: usize,
    ready: Mutex<VecDeque<Warm>>,
    /// Something to do: a sandbox was claimed or exited, or the pool is stopping.
    wake: Notify,
    stop: CancellationToken,
}

impl WarmPool {
    /// A pool of `config.warm_pool` sandboxes, filling in the background from now on.
    pub(crate) fn start(runtime: Arc<dyn SandboxRuntime>, config: Arc<SessionConfig>) -> Arc<Self> {
        let pool = Arc::new(Self {
            size: config.warm_pool,
            ready: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            stop: CancellationToken::new(),
        });
        tokio::spawn(pool.clone().refill(runtime, config));
        pool
    }

    /// A booted sandbox, if one is waiting; the pool boots a replacement.
    pub(crate) fn claim(&self) -> Option<Warm> {
        let claimed = {
            let mut ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
            // One that exited while it waited (its lifetime, the OOM killer) is no use.
            ready.retain(|warm| !warm.sandbox.status.borrow().is_exited());
            ready.pop_front()
        };
        if claimed.is_some() {
            metrics::counter!("den_warm_pool_claims_total").increment(1);
        } else {
            metrics::counter!("den_warm_pool_misses_total").increment(1);
        }
        self.publish();
        self.wake.notify_one();
        claimed
    }

    /// Reports how many sandboxes wait (`den_warm_pool_waiting` in den's metrics).
    fn publish(&self) {
        metrics::gauge!("den_warm_pool_waiting").set(self.waiting() as f64);
    }

    /// How many booted sandboxes wait now.
    pub(crate) fn waiting(&self) -> usize {
        self.ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Stops refilling and destroys the waiting sandboxes.
    pub(crate) async fn shutdown(&self, runtime: &dyn SandboxRuntime) {
        self.stop.cancel();
        let waiting: Vec<Warm> = self
            .ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        for warm in waiting {
            if let Err(err) = runtime.destroy(&warm.sandbox.id).await {
                tracing::warn!(error = %err, "cannot destroy a warm pool sandbox");
            }
        }
    }

    async fn refill(self: Arc<Self>, runtime: Arc<dyn SandboxRuntime>, config: Arc<SessionConfig>) {
        loop {
            let exited: VecDeque<Warm> = {
                let mut ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
                let (gone, alive) = ready
                    .drain(..)
                    .partition(|warm| warm.sandbox.status.borrow().is_exited());
                *ready = alive;
                gone
            };
            for warm in exited {
                let _ = runtime.destroy(&warm.sandbox.id).await;
            }
            self.publish();
            if self.waiting() < self.size {
                let booted = tokio::select! {
                    () = self.stop.cancelled() => return,
                    booted = boot(runtime.as_ref(), &config) => booted,
                };
                match booted {
                    Ok(warm) if self.stop.is_cancelled() => {
                        let _ = runtime.destroy(&warm.sandbox.id).await;
                        return;
                    }
                    Ok(warm) => {
                        self.watch_exit(&warm);
                        self.ready
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push_back(warm);
                        metrics::counter!("den_warm_pool_boots_total").increment(1);
                        self.publish();
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot boot a warm pool sandbox");
                        tokio::select! {
                            () = self.stop.cancelled() => return,
                            () = tokio::time::sleep(RETRY_AFTER) => {}
                        }
                    }
                }
                continue;
            }
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = self.wake.notified() => {}
            }
        }
    }

    /// Wakes the refill when the sandbox exits while it waits.
    fn watch_exit(self: &Arc<Self>, warm: &Warm) {
        let mut status = warm.sandbox.status.clone();
        let pool = Arc::downgrade(self);
        tokio::spawn(async move {
            let _ = status.wait_for(SandboxStatus::is_exited).await;
            if let Some(pool) = pool.upgrade() {
                pool.wake.notify_one();
            }
        });
    }
}

/// Boots one pool sandbox and waits until its OpenCode answers. It opens a scratch project
/// (`/tmp`, nothing of a session) once, so that what OpenCode loads once per process is
/// loaded before a session waits for it.
async fn boot(runtime: &dyn SandboxRuntime, config: &SessionConfig) -> Result<Warm> {
    let auth = BasicAuth {
        user: "opencode".to_owned(),
        password: workspace::random_secret()?,
    };
    let mut spec = workspace::agent_spec(config, &config.workspaces_dir, &auth, true);
    spec.workspace_later = true;
    let sandbox = runtime.create(spec, None).await?;
    let ready = async {
        let socket = sandbox
            .endpoints
            .get(&OPENCODE_PORT)
            .cloned()
            .ok_or_else(|| {
                SessionError::Internal("the sandbox does not expose OpenCode".to_owned())
            })?;
        let client = OpencodeClient::new(
            OpencodeConfig::new(Target::Unix(socket))
                .with_password(auth.password.clone())
                .with_directory("/tmp"),
        )?;
        client
            .wait_ready(tokio::time::Instant::now() + config.ready_timeout)
            .await?;
        client.session_statuses().await?;
        Ok::<_, SessionError>(())
    }
    .await;
    sandbox.start_slot.mark_ready();
    if let Err(err) = ready {
        let _ = runtime.destroy(&sandbox.id).await;
        return Err(err);
    }
    Ok(Warm { sandbox, auth })
}
