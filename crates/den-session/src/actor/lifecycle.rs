//! Starting (fresh or from a snapshot), pausing, failing, deleting and shutting down.

use crate::agent_sandbox::OPENCODE_PORT;
use den_opencode::{CreateSession, OpencodeClient, OpencodeConfig, Target};
use den_protocol::events::{ProgressStep, SessionEvent, StepState, TurnOutcome};
use den_protocol::pause::PauseReason;
use den_protocol::sessions::SessionStatus;
use den_sandbox::probe::BasicAuth;
use den_sandbox::{ExitReason, SandboxStatus};
use den_store::SessionRecord;
use tokio::sync::mpsc;

use super::{Live, ProgressNote, Services, SessionActor, StartedSandbox};
use crate::error::{Result, SessionError};
use crate::workspace;

impl SessionActor {
    /// Starts the sandbox in the background (fresh, or from the last snapshot), unless it is
    /// running or already starting.
    pub(super) fn begin_start(&mut self) {
        if self.live.is_some() || self.starting.is_some() {
            return;
        }
        self.idle_deadline = None;
        let services = self.services.clone();
        let record = self.record.clone();
        let progress = self.progress_tx.clone();
        self.starting_sandbox = StartedSandbox::default();
        let created = self.starting_sandbox.clone();
        self.starting = Some(tokio::spawn(start(services, record, progress, created)));
    }

    pub(super) async fn on_started(&mut self, result: Result<Live>) {
        match result {
            Ok(live) => {
                // A sandbox restored from a snapshot starts equal to it; a fresh one does not.
                self.snapshotted = self.changes;
                if self.record.snapshot_id.is_none() {
                    self.changes += 1;
                }
                self.record.agent_session_id = Some(live.agent_session_id.clone());
                self.live = Some(live);
                self.set_status(SessionStatus::Running, None).await;
                self.emit(SessionEvent::Progress {
                    step: ProgressStep::Ready,
                    state: StepState::Done,
                    detail: None,
                })
                .await;
                self.run_next_turn().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "the session could not start");
                self.queue.clear();
                self.emit_queue().await;
                self.fail(&err).await;
            }
        }
    }

    /// Stops and removes the sandbox, if any.
    pub(super) async fn stop_sandbox(&mut self) {
        if let Some(task) = self.starting.take() {
            task.abort();
            // Aborting drops the start wherever it was; a sandbox it already created would
            // otherwise run on, unowned, until its lifetime ends.
            let created = match task.await {
                Ok(Ok(live)) => Some(live.sandbox.id),
                _ => self
                    .starting_sandbox
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take(),
            };
            if let Some(id) = created
                && let Err(err) = self.services.runtime.destroy(&id).await
            {
                tracing::warn!(error = %err, "cannot destroy the sandbox of a stopped start");
            }
        }
        if let Some(snapshotting) = self.snapshotting.take() {
            snapshotting.task.abort();
        }
        if let Some(mut live) = self.live.take()
            && let Err(err) = {
                // Terminals hear why before their sandbox goes (unless told already).
                live.terminals
                    .close_all(crate::terminal::TerminalClosing::SandboxStopped);
                self.services.runtime.destroy(&live.sandbox.id).await
            }
        {
            tracing::warn!(error = %err, "cannot destroy the sandbox");
        }
        // Whatever waited for the snapshot is answered without the sandbox.
        for command in std::mem::take(&mut self.after_snapshot) {
            Box::pin(self.handle_command(command)).await;
        }
    }

    /// The sandbox changed state on its own.
    pub(super) async fn on_sandbox_status(&mut self, status: SandboxStatus) {
        let SandboxStatus::Exited { reason } = status else {
            return;
        };
        let reason = match reason {
            ExitReason::Exited { code } => format!("the agent exited with status {code}"),
            ExitReason::Signaled { signal } => format!("the agent was killed by signal {signal}"),
            ExitReason::OutOfMemory => "the sandbox ran out of memory".to_owned(),
            ExitReason::LifetimeExceeded => "the sandbox reached its time limit".to_owned(),
            ExitReason::Stopped => "the sandbox was stopped".to_owned(),
            ExitReason::Failed { message } => format!("the sandbox failed: {message}"),
        };
        tracing::warn!(%reason, "the sandbox stopped");
        self.close_turn(TurnOutcome::Interrupted, Some(reason.clone()))
            .await;
        self.stop_sandbox().await;
        self.queue.clear();
        self.emit_queue().await;
        self.set_status(
            SessionStatus::Error,
            Some(format!(
                "{reason}; send a prompt to recover from the last snapshot"
            )),
        )
        .await;
    }

    /// Moves the session to `error` because of `err`.
    pub(super) async fn fail(&mut self, err: &SessionError) {
        let message = err.user_message();
        if let Some(pausing) = self.pausing.take() {
            for waiter in pausing.waiters {
                let _ = waiter.send(Err(SessionError::Internal(message.clone())));
            }
        }
        self.close_turn(TurnOutcome::Failed, Some(message.clone()))
            .await;
        self.stop_sandbox().await;
        self.emit(SessionEvent::Error {
            code: "session_failed".to_owned(),
            message: message.clone(),
        })
        .await;
        self.set_status(SessionStatus::Error, Some(message)).await;
    }

    pub(super) async fn delete(&mut self) -> Result<()> {
        self.stop_sandbox().await;
        if let Some(snapshot) = self.record.snapshot_id.take() {
            super::work::delete_snapshot(&self.services, &snapshot).await;
        }
        let config = &self.services.config;
        let _ =
            tokio::fs::remove_dir_all(workspace::snapshots_dir(config, self.session_id())).await;
        let checkout = workspace::checkout_dir(config, self.session_id());
        if let Some(session_dir) = checkout.parent() {
            let _ = tokio::fs::remove_dir_all(session_dir).await;
        }
        self.services
            .store
            .delete_session(self.record.owner_id, self.session_id())
            .await?;
        let update = den_protocol::events::SessionListUpdate::Removed {
            id: self.session_id(),
        };
        let _ = self.services.list.send(crate::manager::ListChange {
            owner_id: self.record.owner_id,
            update,
        });
        Ok(())
    }

    /// den is stopping: the running turn is closed as interrupted, the sandbox stopped, and the
    /// session left paused at its last snapshot (or idle without one).
    pub(super) async fn shutdown(&mut self) {
        self.close_turn(
            TurnOutcome::Interrupted,
            Some("den stopped while the turn ran".to_owned()),
        )
        .await;
        if let Some(pausing) = self.pausing.take() {
            for waiter in pausing.waiters {
                let _ = waiter.send(Err(SessionError::ActorGone));
            }
        }
        let running = self.live.is_some() || self.starting.is_some();
        if let Some(live) = self.live.as_mut() {
            live.terminals
                .close_all(crate::terminal::TerminalClosing::DenStopping);
        }
        self.stop_sandbox().await;
        if running {
            let (status, pause) = if self.record.snapshot_id.is_some() {
                (SessionStatus::Paused, Some(PauseReason::DenStopped))
            } else {
                (SessionStatus::Idle, None)
            };
            self.set_status_because(status, None, pause).await;
        }
    }
}

/// The background start: checkout (or snapshot), sandbox, agent, conversation.
async fn start(
    services: Services,
    record: SessionRecord,
    progress: mpsc::UnboundedSender<ProgressNote>,
    started_sandbox: StartedSandbox,
) -> Result<Live> {
    services
        .store
        .set_session_runner(record.id, &services.config.runner)
        .await?;
    let snapshot = match &record.snapshot_id {
        Some(key) => Some(services.artifacts.fetch(key).await?),
        None => None,
    };
    let (sandbox, auth, base_commit) = match snapshot {
        Some(artifact) => {
            restore(&services, &record, &progress, &started_sandbox, &artifact).await?
        }
        None => fresh(&services, &record, &progress, &started_sandbox).await?,
    };
    note(&progress, ProgressStep::Agent, StepState::Started, None);
    match connect_agent(&services, &record, &sandbox, &auth).await {
        Ok((client, events, agent_session_id)) => {
            note(&progress, ProgressStep::Agent, StepState::Done, None);
            Ok(Live {
                sandbox,
                client,
                events,
                agent_session_id,
                base_commit,
                terminals: crate::terminal::TerminalGate::new(),
            })
        }
        Err(err) => {
            note(
                &progress,
                ProgressStep::Agent,
                StepState::Failed,
                Some(err.to_string()),
            );
            let _ = services.runtime.destroy(&sandbox.id).await;
            started_sandbox
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            Err(err)
        }
    }
}

fn note(
    progress: &mpsc::UnboundedSender<ProgressNote>,
    step: ProgressStep,
    state: StepState,
    detail: Option<String>,
) {
    let _ = progress.send((step, state, detail));
}

/// Remembers the start's sandbox, so a start stopped midway can remove it.
fn record_started(started_sandbox: &StartedSandbox, id: &den_sandbox::SandboxId) {
    *started_sandbox
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(id.clone());
}

/// A session's first start (or one without a snapshot): a sandbox from the warm pool, or one
/// booting while the checkout is made (OpenCode's boot and the clone overlap); then the
/// checkout and the session's files are given to the running sandbox.
async fn fresh(
    services: &Services,
    record: &SessionRecord,
    progress: &mpsc::UnboundedSender<ProgressNote>,
    started_sandbox: &StartedSandbox,
) -> Result<(den_sandbox::SandboxHandle, BasicAuth, String)> {
    let config = &services.config;
    note(
        progress,
        ProgressStep::Clone,
        StepState::Started,
        Some(record.repository.clone()),
    );
    let warm = services.pool.as_ref().and_then(|pool| pool.claim());
    if let Some(warm) = &warm {
        record_started(started_sandbox, &warm.sandbox.id);
        tracing::debug!(sandbox = %warm.sandbox.id, "claimed a warm pool sandbox");
    }
    let sandbox = async {
        if let Some(warm) = warm {
            return Ok((warm.sandbox, warm.auth));
        }
        let auth = BasicAuth {
            user: "opencode".to_owned(),
            password: workspace::random_secret()?,
        };
        let git_gateway = workspace::uses_git_gateway(config, record);
        let mut spec = workspace::agent_spec(config, &config.workspaces_dir, &auth, git_gateway);
        spec.workspace_later = true;
        let sandbox = services.runtime.create(spec, None).await?;
        record_started(started_sandbox, &sandbox.id);
        Ok::<_, SessionError>((sandbox, auth))
    };
    let checkout = async {
        let auth = clone_credential(services, record).await?;
        workspace::ensure_checkout(config, record, auth.as_ref()).await
    };
    let (sandbox, checkout) = tokio::join!(sandbox, checkout);
    let checkout = match checkout {
        Ok(checkout) => checkout,
        Err(err) => {
            note(
                progress,
                ProgressStep::Clone,
                StepState::Failed,
                Some(err.to_string()),
            );
            if let Ok((sandbox, _)) = &sandbox {
                let _ = services.runtime.destroy(&sandbox.id).await;
                started_sandbox
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take();
            }
            return Err(err);
        }
    };
    note(progress, ProgressStep::Clone, StepState::Done, None);
    note(progress, ProgressStep::Sandbox, StepState::Started, None);
    let given = async {
        let (sandbox, auth) = sandbox?;
        let prepared = async {
            // The host checkout is den's and the sandbox never writes it: its HEAD is the base.
            let base_commit = den_git::head_commit(&checkout, config.clone_timeout).await?;
            let files = session_files(services, record).await?;
            services
                .runtime
                .attach_workspace(&sandbox.id, &checkout, files)
                .await?;
            Ok::<_, SessionError>(base_commit)
        }
        .await;
        match prepared {
            Ok(base_commit) => Ok((sandbox, auth, base_commit)),
            Err(err) => {
                let _ = services.runtime.destroy(&sandbox.id).await;
                started_sandbox
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take();
                Err(err)
            }
        }
    }
    .await;
    match &given {
        Ok(_) => note(progress, ProgressStep::Sandbox, StepState::Done, None),
        Err(err) => note(
            progress,
            ProgressStep::Sandbox,
            StepState::Failed,
            Some(err.to_string()),
        ),
    }
    given
}

/// A start from the session's snapshot: its OpenCode must boot on the snapshot's HOME (its
/// database), so the sandbox starts with it; the checkout is made first if it is gone.
async fn restore(
    services: &Services,
    record: &SessionRecord,
    progress: &mpsc::UnboundedSender<ProgressNote>,
    started_sandbox: &StartedSandbox,
    artifact: &std::path::Path,
) -> Result<(den_sandbox::SandboxHandle, BasicAuth, String)> {
    let config = &services.config;
    let checkout = workspace::checkout_dir(config, record.id);
    if !checkout.exists() {
        note(
            progress,
            ProgressStep::Clone,
            StepState::Started,
            Some(record.repository.clone()),
        );
        let cloned = match clone_credential(services, record).await {
            Ok(auth) => workspace::ensure_checkout(config, record, auth.as_ref()).await,
            Err(err) => Err(err),
        };
        match cloned {
            Ok(_) => note(progress, ProgressStep::Clone, StepState::Done, None),
            Err(err) => {
                note(
                    progress,
                    ProgressStep::Clone,
                    StepState::Failed,
                    Some(err.to_string()),
                );
                return Err(err);
            }
        }
    }
    let base_commit = den_git::head_commit(&checkout, config.clone_timeout).await?;
    let auth = BasicAuth {
        user: "opencode".to_owned(),
        password: workspace::random_secret()?,
    };
    let git_gateway = workspace::uses_git_gateway(config, record);
    let mut spec = workspace::agent_spec(config, &checkout, &auth, git_gateway);
    spec.home_files
        .extend(session_files(services, record).await?);
    note(progress, ProgressStep::Restore, StepState::Started, None);
    match services.runtime.restore(artifact, spec, None).await {
        Ok(sandbox) => {
            record_started(started_sandbox, &sandbox.id);
            note(progress, ProgressStep::Restore, StepState::Done, None);
            Ok((sandbox, auth, base_commit))
        }
        Err(err) => {
            note(
                progress,
                ProgressStep::Restore,
                StepState::Failed,
                Some(err.to_string()),
            );
            Err(err.into())
        }
    }
}

/// The session's files for its sandbox's HOME, with a new gateway token (recorded now: the
/// previous start's token no longer opens anything).
async fn session_files(
    services: &Services,
    record: &SessionRecord,
) -> Result<Vec<den_sandbox::HomeFile>> {
    let config = &services.config;
    let gateway_token = workspace::random_secret()?;
    services
        .store
        .set_gateway_token(record.id, &workspace::token_hash(&gateway_token))
        .await?;
    // The owner's own endpoints as they are now; one added later appears at the next start.
    let endpoints = services.store.model_endpoints(record.owner_id).await?;
    let opencode_config =
        workspace::opencode_config(config, &record.model, &gateway_token, &endpoints);
    let git_token = workspace::uses_git_gateway(config, record).then_some(gateway_token.as_str());
    Ok(workspace::session_files(&opencode_config, git_token))
}

/// The person's credential for the repository's host, for den's clone on the host.
async fn clone_credential(
    services: &Services,
    record: &SessionRecord,
) -> Result<Option<den_git::HttpAuth>> {
    let Some(host) = workspace::http_host(&record.repository) else {
        return Ok(None);
    };
    let credential = services
        .store
        .git_credential(record.owner_id, &host)
        .await?;
    if let Some(c) = credential {
        return Ok(Some(den_git::HttpAuth {
            username: c.username,
            password: c.token.to_string(),
        }));
    }
    // None stored for the host: the server's source (the person's GitHub token on GitHub).
    match &services.config.credentials {
        Some(source) => source
            .0
            .credential(record.owner_id, &host)
            .await
            .map_err(SessionError::Conflict),
        None => Ok(None),
    }
}

/// Waits for OpenCode, subscribes to its events (before any prompt, so none is missed), and
/// continues the session's conversation, or starts one.
async fn connect_agent(
    services: &Services,
    record: &SessionRecord,
    sandbox: &den_sandbox::SandboxHandle,
    auth: &BasicAuth,
) -> Result<(OpencodeClient, den_opencode::EventStream, String)> {
    let socket = sandbox
        .endpoints
        .get(&OPENCODE_PORT)
        .cloned()
        .ok_or_else(|| SessionError::Internal("the sandbox does not expose OpenCode".to_owned()))?;
    // Every request names the workspace: a sandbox from the warm pool booted its OpenCode
    // elsewhere, before the workspace existed.
    let client = OpencodeClient::new(
        OpencodeConfig::new(Target::Unix(socket))
            .with_password(auth.password.clone())
            .with_directory(den_sandbox::WORKSPACE_DIR),
    )?;
    let deadline = tokio::time::Instant::now() + services.config.ready_timeout;
    let ready = client.wait_ready(deadline).await;
    // The create queue holds the next start until this one's agent answers (or failed).
    sandbox.start_slot.mark_ready();
    ready?;
    let events = client.subscribe().await?;
    let existing = match &record.agent_session_id {
        Some(id) => match client.session(id).await {
            Ok(session) => Some(session.id),
            Err(err) if err.is_not_found() => None,
            Err(err) => return Err(err.into()),
        },
        None => None,
    };
    let agent_session_id = match existing {
        Some(id) => id,
        None => {
            if record.agent_session_id.is_some() {
                tracing::warn!("the snapshot lacks the agent's conversation; starting a new one");
            }
            let created = client
                .create_session(&CreateSession {
                    // No title: OpenCode then generates one after the first prompt, which the
                    // session takes while nobody named it (see `take_agent_title`).
                    title: None,
                    permission: None,
                })
                .await?;
            services
                .store
                .set_session_agent_state_fenced(
                    record.id,
                    &services.fence,
                    Some(&created.id),
                    record.snapshot_id.as_deref(),
                )
                .await?;
            created.id
        }
    };
    Ok((client, events, agent_session_id))
}
