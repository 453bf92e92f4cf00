//! Slow work in child tasks, and what the actor does with each result: the prompt's delivery,
//! a stop request, snapshots, the diff after a turn, and reading back a turn after the agent's
//! event stream broke. Also the pause, which waits for a running snapshot.

use den_opencode::{MessageWithParts, SessionStatus as AgentStatus};
use den_protocol::changes::DiffSummary;
use den_protocol::events::SessionEvent;
use den_protocol::pause::PauseReason;
use den_protocol::sessions::SessionStatus;
use den_store::SessionRecord;
use tokio::sync::oneshot;

use super::{Pausing, SessionActor, Snapshotting};
use crate::error::{Result, SessionError};
use crate::{changes, workspace};

/// A child task's result, back in the actor's loop.
pub(crate) enum Work {
    /// The agent accepted (or refused) the turn's prompt; the record when the turn switched
    /// the session's model.
    PromptSent {
        turn_id: String,
        result: std::result::Result<Option<Box<SessionRecord>>, String>,
    },
    /// The agent answered a stop request.
    StopAnswered {
        turn_id: String,
        result: std::result::Result<(), String>,
    },
    /// A snapshot was written and recorded under `key` (or failed; the previous one stays).
    Snapshotted {
        generation: u64,
        agent_session_id: String,
        result: Result<String>,
    },
    /// The diff after a turn, saved for when no sandbox runs.
    DiffComputed { summary: DiffSummary },
    /// A push finished; its caller waits for `result`.
    Pushed {
        result: Result<den_protocol::changes::PushResult>,
        reply: oneshot::Sender<Result<den_protocol::changes::PushResult>>,
    },
    /// What the agent says about the turn after its event stream came back.
    Reconciled {
        turn_id: String,
        result: std::result::Result<Reconciliation, String>,
    },
    /// The agent took (or refused) an answer to one of its asks.
    AskDelivered {
        id: String,
        result: std::result::Result<(), String>,
    },
}

/// The agent's own account of a turn whose events may have been lost.
pub(crate) struct Reconciliation {
    /// Still working on it: the stream carries on from here.
    pub(crate) busy: bool,
    /// The conversation, when not busy: the turn's end is read from it.
    pub(crate) messages: Vec<MessageWithParts>,
}

impl SessionActor {
    pub(super) async fn on_work(&mut self, work: Work) {
        match work {
            Work::PromptSent { turn_id, result } => self.on_prompt_sent(&turn_id, result).await,
            Work::StopAnswered { turn_id, result } => {
                self.on_stop_answered(&turn_id, result).await;
            }
            Work::Snapshotted {
                generation,
                agent_session_id,
                result,
            } => {
                self.snapshotting = None;
                self.on_snapshotted(generation, agent_session_id, result)
                    .await;
                // Commands that needed the sandbox unfrozen run now.
                for command in std::mem::take(&mut self.after_snapshot) {
                    Box::pin(self.handle_command(command)).await;
                }
            }
            Work::DiffComputed { summary } => {
                self.emit(SessionEvent::DiffChanged { summary }).await;
            }
            Work::Reconciled { turn_id, result } => self.on_reconciled(&turn_id, result).await,
            Work::Pushed { result, reply } => {
                self.pushing = false;
                let _ = reply.send(result);
                self.run_next_turn().await;
            }
            Work::AskDelivered { id, result } => self.on_ask_delivered(&id, result).await,
        }
    }

    /// Starts writing a snapshot of the running sandbox unless one is being written. With
    /// `diff_first`, the session's diff is computed (and reported) before: the snapshot
    /// freezes the sandbox, where the diff runs.
    pub(super) fn begin_snapshot(&mut self, diff_first: bool) {
        if self.snapshotting.is_some() {
            return;
        }
        let Some((sandbox_id, agent_session_id, base)) = self.live.as_ref().map(|live| {
            (
                live.sandbox.id.clone(),
                live.agent_session_id.clone(),
                live.base_commit.clone(),
            )
        }) else {
            return;
        };
        let generation = self.changes;
        let services = self.services.clone();
        let session_id = self.session_id();
        let previous = self.record.snapshot_id.clone();
        let done = self.work_tx.clone();
        let task = self.spawn_work(async move {
            if diff_first
                && let Some(summary) = refresh_diff(&services, session_id, &sandbox_id, &base).await
            {
                let _ = done.send(Work::DiffComputed { summary });
            }
            let result = write_snapshot(
                &services,
                session_id,
                &sandbox_id,
                &agent_session_id,
                previous.as_deref(),
            )
            .await;
            Work::Snapshotted {
                generation,
                agent_session_id,
                result,
            }
        });
        self.snapshotting = Some(Snapshotting { task });
    }

    async fn on_snapshotted(
        &mut self,
        generation: u64,
        agent_session_id: String,
        result: Result<String>,
    ) {
        match result {
            Ok(key) => {
                self.record.snapshot_id = Some(key);
                self.record.agent_session_id = Some(agent_session_id);
                self.snapshotted = self.snapshotted.max(generation);
            }
            Err(SessionError::Store(den_store::StoreError::Fenced)) => {
                // Another node owns the session: its record is not this node's to change.
                self.log.mark_fenced();
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot snapshot the sandbox");
                self.emit(SessionEvent::Error {
                    code: "snapshot_failed".to_owned(),
                    message: format!("{}; the previous snapshot is kept", err.user_message()),
                })
                .await;
                if let Some(pausing) = self.pausing.take() {
                    let message = err.user_message();
                    for waiter in pausing.waiters {
                        let _ = waiter.send(Err(SessionError::Snapshot(message.clone())));
                    }
                    if pausing.idle {
                        self.fail(&err).await;
                    } else {
                        self.run_next_turn().await;
                    }
                }
                return;
            }
        }
        if self.pausing.is_some() {
            self.continue_pause().await;
        } else if self.turn.is_none() && self.changes != self.snapshotted {
            // A turn ran (and ended) while this snapshot was written: its diff and snapshot
            // were left for now.
            self.begin_snapshot(true);
        }
    }

    /// Refuses a pause the caller cannot have now.
    pub(super) fn check_pausable(&self) -> Result<()> {
        if self.pushing {
            return Err(SessionError::Conflict(
                "a push is under way: pause once it finished".to_owned(),
            ));
        }
        if self.turn.is_some() {
            return Err(SessionError::Conflict(
                "a turn is running: stop it before pausing".to_owned(),
            ));
        }
        if self.starting.is_some() {
            return Err(SessionError::Conflict(
                "the session is starting: pause it once it runs".to_owned(),
            ));
        }
        Ok(())
    }

    /// Pauses the session: once no snapshot is being written and the last one covers the
    /// sandbox's state, the sandbox stops and the session is `paused`. `waiter` hears the end.
    pub(super) async fn begin_pause(
        &mut self,
        waiter: Option<oneshot::Sender<Result<()>>>,
        idle: bool,
    ) {
        self.idle_deadline = None;
        // Terminals end as the pause begins: the snapshot then holds no half-typed command.
        if let Some(live) = self.live.as_mut() {
            live.terminals
                .close_all(crate::terminal::TerminalClosing::SandboxStopped);
        }
        if self.live.is_none() {
            if let Some(waiter) = waiter {
                let _ = waiter.send(Ok(()));
            }
            return;
        }
        match &mut self.pausing {
            Some(pausing) => pausing.waiters.extend(waiter),
            None => {
                self.pausing = Some(Pausing {
                    waiters: waiter.into_iter().collect(),
                    idle,
                });
            }
        }
        self.continue_pause().await;
    }

    /// The next step of a pause under way.
    pub(super) async fn continue_pause(&mut self) {
        if self.pausing.is_none() || self.snapshotting.is_some() {
            return;
        }
        if self.live.is_some() && self.changes != self.snapshotted {
            self.begin_snapshot(false);
            return;
        }
        // The snapshot holds everything; tearing the sandbox down (processes, network, cgroups,
        // directories: most of a pause's time) need not hold up the session.
        if let Some(live) = self.live.take() {
            let runtime = self.services.runtime.clone();
            tokio::spawn(async move {
                if let Err(err) = runtime.destroy(&live.sandbox.id).await {
                    tracing::warn!(error = %err, "cannot destroy the paused sandbox");
                }
            });
        }
        let reason = match &self.pausing {
            Some(pausing) if pausing.idle => PauseReason::Idle {
                minutes: u32::try_from(self.services.config.idle_timeout.as_secs().div_ceil(60))
                    .unwrap_or(u32::MAX),
            },
            _ => PauseReason::Person,
        };
        self.set_status_because(SessionStatus::Paused, None, Some(reason))
            .await;
        if let Some(pausing) = self.pausing.take() {
            for waiter in pausing.waiters {
                let _ = waiter.send(Ok(()));
            }
        }
        // Prompts that arrived during the pause start the session again.
        if !self.queue.is_empty() {
            self.set_status(SessionStatus::Starting, None).await;
            self.begin_start();
        }
    }

    /// Whether the agent is still on the turn, asked after its event stream came back.
    pub(super) fn reconcile(&mut self) {
        let Some(turn) = self.turn.as_ref().filter(|turn| turn.accepted) else {
            return;
        };
        let Some(live) = &self.live else {
            return;
        };
        let (client, agent_session_id, turn_id) = (
            live.client.clone(),
            live.agent_session_id.clone(),
            turn.id.clone(),
        );
        tracing::info!("reading the turn back from the agent after its event stream broke");
        self.spawn_work(async move {
            let result = async {
                let statuses = client.session_statuses().await?;
                let busy = matches!(
                    statuses.get(&agent_session_id),
                    Some(AgentStatus::Busy | AgentStatus::Retry { .. })
                );
                let messages = if busy {
                    Vec::new()
                } else {
                    client.messages(&agent_session_id).await?
                };
                Ok::<_, den_opencode::OpencodeError>(Reconciliation { busy, messages })
            }
            .await
            .map_err(|err| err.to_string());
            Work::Reconciled { turn_id, result }
        });
    }
}

/// After a turn: computes the diff, saves it for when the sandbox is gone, and returns its
/// summary for clients. A failure is logged; the turn's outcome does not depend on it.
async fn refresh_diff(
    services: &super::Services,
    session_id: uuid::Uuid,
    sandbox: &den_sandbox::SandboxId,
    base: &str,
) -> Option<DiffSummary> {
    let diff = match changes::compute(services.runtime.as_ref(), sandbox, base).await {
        Ok(diff) => diff,
        Err(err) => {
            tracing::warn!(error = %err, "cannot compute the session's diff after the turn");
            return None;
        }
    };
    let dir = workspace::snapshots_dir(&services.config, session_id);
    if let Err(err) = changes::save(&dir, &diff).await {
        tracing::warn!(error = %err, "cannot save the session's diff");
    }
    Some(diff.summary)
}

/// Writes the sandbox's snapshot, stores it under a new key, records the key (and the agent's
/// conversation) and only then deletes the previous snapshot: a failure at any step keeps the
/// previous one as the session's last good state.
async fn write_snapshot(
    services: &super::Services,
    session_id: uuid::Uuid,
    sandbox_id: &den_sandbox::SandboxId,
    agent_session_id: &str,
    previous: Option<&str>,
) -> Result<String> {
    let dir = workspace::snapshots_dir(&services.config, session_id);
    tokio::fs::create_dir_all(&dir).await?;
    let key = format!("{session_id}-{}", uuid::Uuid::now_v7());
    let partial = dir.join(format!("{key}.partial"));
    let written = match services.runtime.snapshot(sandbox_id, &partial).await {
        Ok(info) => info,
        Err(err) => {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(err.into());
        }
    };
    if let Err(err) = services.artifacts.put(&key, &written.path).await {
        let _ = tokio::fs::remove_file(&written.path).await;
        return Err(err.into());
    }
    if let Err(err) = services
        .store
        .set_session_agent_state_fenced(
            session_id,
            &services.fence,
            Some(agent_session_id),
            Some(&key),
        )
        .await
    {
        let _ = services.artifacts.delete(&key).await;
        return Err(err.into());
    }
    if let Some(previous) = previous {
        delete_snapshot(services, previous).await;
    }
    Ok(key)
}

/// Deletes a recorded snapshot from the artifact store.
pub(crate) async fn delete_snapshot(services: &super::Services, key: &str) {
    if let Err(err) = services.artifacts.delete(key).await {
        tracing::warn!(error = %err, "cannot delete the previous snapshot");
    }
}
