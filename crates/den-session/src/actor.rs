//! The session actor: one tokio task per session that owns its state and is the only writer
//! of its event log. It reacts to a closed set of inputs: commands from handles, progress of a
//! start in the background, OpenCode's events, the sandbox's status, the results of its own
//! slow work (agent calls, snapshots, the diff), and its two timers (idle pause, turn
//! inactivity).
//!
//! The loop never awaits slow work: anything that can take longer than a store round trip runs
//! in a child task that reports back as a [`Work`] wake-up, so a stop request or an agent event
//! is handled while a snapshot of a large repository is still being written.

mod asks;
mod changes;
mod lifecycle;
pub(crate) mod ownership;
mod turn;
mod work;

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::Duration;

use den_opencode::{EventEnvelope, EventStream, OpencodeClient, OpencodeError};
use den_protocol::events::{ProgressStep, QueuedPrompt, SequencedEvent, SessionEvent, StepState};
use den_protocol::pause::PauseReason;
use den_protocol::sessions::SessionStatus;
use den_sandbox::{ArtifactStore, SandboxHandle, SandboxRuntime, SandboxStatus};
use den_store::{SessionRecord, Store};
use futures::StreamExt;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

use crate::config::SessionConfig;
use crate::error::{Result, SessionError};
use crate::eventlog::{EventLog, LiveSender};
use crate::handle::Command;
use crate::manager::ListChange;
use crate::mapping::TurnMapper;
use crate::registry::Registry;

pub(crate) use work::Work;

/// How many commands may wait in a session's mailbox; senders wait beyond that.
const MAILBOX: usize = 64;

/// What every actor shares.
#[derive(Clone)]
pub(crate) struct Services {
    pub(crate) store: Store,
    pub(crate) runtime: Arc<dyn SandboxRuntime>,
    /// Where snapshots are kept between a pause and a resume (the record holds its key).
    pub(crate) artifacts: Arc<dyn ArtifactStore>,
    pub(crate) config: Arc<SessionConfig>,
    pub(crate) list: broadcast::Sender<ListChange>,
    /// Booted sandboxes waiting for new sessions (`None`: no warm pool).
    pub(crate) pool: Option<Arc<crate::pool::WarmPool>>,
    /// The lease this actor writes under (the registry's template holds epoch 0, which no
    /// lease ever has: a write with it is refused).
    pub(crate) fence: den_store::Fence,
    /// Set once when the node joins the cluster (forwarding, notifier, lease TTL).
    pub(crate) cluster: Arc<std::sync::OnceLock<crate::cluster::ClusterConfig>>,
}

impl Services {
    pub(crate) fn cluster(&self) -> Option<&crate::cluster::ClusterConfig> {
        self.cluster.get()
    }

    pub(crate) fn notifier(&self) -> Option<&Arc<dyn crate::cluster::Notifier>> {
        self.cluster().and_then(|c| c.notifier.as_ref())
    }
}

/// What the registry hands a new actor: the session's live broadcast and relay floor, and the
/// token cancelled when its lease is lost.
pub(crate) struct Wiring {
    pub(crate) live: LiveSender,
    pub(crate) floor: Arc<std::sync::atomic::AtomicI64>,
    pub(crate) lost: tokio_util::sync::CancellationToken,
}

/// A step of a start in the background, for the actor to record.
pub(crate) type ProgressNote = (ProgressStep, StepState, Option<String>);

/// A running sandbox with a ready agent.
pub(crate) struct Live {
    pub(crate) sandbox: SandboxHandle,
    pub(crate) client: OpencodeClient,
    pub(crate) events: EventStream,
    pub(crate) agent_session_id: String,
    /// The commit the session's branch started from.
    pub(crate) base_commit: String,
    /// The terminals open in this sandbox; dropped with it, which ends them.
    pub(crate) terminals: crate::terminal::TerminalGate,
}

/// The turn in progress.
pub(crate) struct Turn {
    pub(crate) id: String,
    pub(crate) mapper: TurnMapper,
    /// When it started: the gateway's metering after this belongs to it.
    pub(crate) started_at: chrono::DateTime<chrono::Utc>,
    /// The prompt's delivery to the agent, while it is under way; ended with the turn.
    pub(crate) sending: Option<AbortHandle>,
    /// The agent accepted the prompt (so an idle agent means the turn is over).
    pub(crate) accepted: bool,
    /// A stop request to the agent under way, and who waits for its answer.
    pub(crate) stopping: Option<Stopping>,
    /// The last time the agent showed any sign of working on this turn.
    pub(crate) last_activity: Instant,
}

/// A stop request under way: its task (ended with the turn) and the callers waiting for it.
pub(crate) struct Stopping {
    pub(crate) task: AbortHandle,
    pub(crate) waiters: Vec<oneshot::Sender<Result<()>>>,
}

/// A snapshot being written by a child task.
pub(crate) struct Snapshotting {
    pub(crate) task: AbortHandle,
}

/// A pause under way: it waits for a running snapshot, takes one if the sandbox changed since,
/// then stops the sandbox.
pub(crate) struct Pausing {
    pub(crate) waiters: Vec<oneshot::Sender<Result<()>>>,
    /// The idle timer asked for it (a failure then fails the session; a caller's pause just
    /// reports it).
    pub(crate) idle: bool,
}

pub(crate) struct SessionActor {
    services: Services,
    record: SessionRecord,
    log: EventLog,
    commands: mpsc::Receiver<Command>,
    progress_tx: mpsc::UnboundedSender<ProgressNote>,
    progress_rx: mpsc::UnboundedReceiver<ProgressNote>,
    work_tx: mpsc::UnboundedSender<Work>,
    work_rx: mpsc::UnboundedReceiver<Work>,
    starting: Option<JoinHandle<Result<Live>>>,
    /// The sandbox the running start has created, if it got that far: a start stopped midway
    /// (the session deleted or den stopping) cannot remove it itself.
    starting_sandbox: StartedSandbox,
    live: Option<Live>,
    turn: Option<Turn>,
    queue: VecDeque<QueuedPrompt>,
    /// Whether clients were last shown a non-empty queue (so they must see it shrink).
    queue_shown: bool,
    /// Bumped each time the sandbox may have changed (a turn started, or a fresh sandbox);
    /// a pause must snapshot again unless the last snapshot covers the current generation.
    changes: u64,
    /// The generation the recorded snapshot covers.
    snapshotted: u64,
    snapshotting: Option<Snapshotting>,
    /// The session was deleted: its live side ends with this actor.
    deleted: bool,
    /// Commands that run in the sandbox (diff, push), held while a snapshot freezes it.
    after_snapshot: Vec<Command>,
    pausing: Option<Pausing>,
    /// A push (commit and push of the branch) is under way; the next turn waits for it.
    pushing: bool,
    /// A failed turn the agent is being told to stop; the next turn waits for its answer.
    settling: Option<String>,
    /// The agent's event stream broke since the last reconciliation: what happened meanwhile
    /// must be read back from the agent once the stream is connected again.
    stream_broken: bool,
    /// The title the latest prompt would give a session nobody named: a session still titled
    /// so (or after its repository) takes the title OpenCode generates instead, which may
    /// arrive after the turn ended.
    prompt_title: Option<String>,
    idle_deadline: Option<Instant>,
    /// Permission asks and questions waiting for the person.
    asks: asks::PendingAsks,
    /// Cancelled when this node no longer holds the session's lease.
    lost: tokio_util::sync::CancellationToken,
    /// The queue as last stored, so only a change is written.
    persisted_queue: Vec<QueuedPrompt>,
}

/// Where a start records the sandbox it created (see `SessionActor::starting_sandbox`).
pub(crate) type StartedSandbox = std::sync::Arc<std::sync::Mutex<Option<den_sandbox::SandboxId>>>;

/// Why the actor woke up.
enum Wake {
    Command(Option<Command>),
    Progress(ProgressNote),
    Started(Result<Live>),
    Agent(Option<std::result::Result<EventEnvelope, OpencodeError>>),
    SandboxStatus(SandboxStatus),
    Work(Work),
    Idle,
    TurnInactive,
    AskExpired,
    /// The heartbeat found the lease gone (or could not renew it in time).
    LeaseLost,
}

/// Starts the actor of `record` and returns its mailbox. `live` is the session's live
/// broadcast (it outlives the actor while anyone subscribes).
pub(crate) fn spawn(
    services: Services,
    registry: Weak<Registry>,
    record: SessionRecord,
    wiring: Wiring,
) -> mpsc::Sender<Command> {
    let (commands_tx, commands) = mpsc::channel(MAILBOX);
    let mailbox = commands_tx.downgrade();
    let span = tracing::info_span!("session", session.id = %record.id);
    tokio::spawn(
        async move {
            let log = EventLog::new(services.store.clone(), record.id, wiring.live).owned(
                services.fence.clone(),
                Some(wiring.floor),
                services.notifier().cloned(),
            );
            let (progress_tx, progress_rx) = mpsc::unbounded_channel();
            let (work_tx, work_rx) = mpsc::unbounded_channel();
            let actor = SessionActor {
                services,
                record,
                log,
                commands,
                progress_tx,
                progress_rx,
                work_tx,
                work_rx,
                starting: None,
                starting_sandbox: StartedSandbox::default(),
                live: None,
                turn: None,
                queue: VecDeque::new(),
                queue_shown: false,
                changes: 0,
                snapshotted: 0,
                snapshotting: None,
                after_snapshot: Vec::new(),
                deleted: false,
                pausing: None,
                pushing: false,
                settling: None,
                stream_broken: false,
                prompt_title: None,
                idle_deadline: None,
                asks: asks::PendingAsks::default(),
                lost: wiring.lost,
                persisted_queue: Vec::new(),
            };
            actor.run(registry, mailbox).await;
        }
        .instrument(span),
    );
    commands_tx
}

impl SessionActor {
    async fn run(mut self, registry: Weak<Registry>, mailbox: mpsc::WeakSender<Command>) {
        self.take_over().await;
        let ended = loop {
            if self.fenced() {
                self.abandon().await;
                break true;
            }
            let wake = self.wait().await;
            let keep_going = match wake {
                Wake::Command(None) => false,
                Wake::Command(Some(command)) => self.handle_command(command).await,
                Wake::Progress((step, state, detail)) => {
                    self.emit(SessionEvent::Progress {
                        step,
                        state,
                        detail,
                    })
                    .await;
                    true
                }
                Wake::Started(result) => {
                    self.starting = None;
                    self.on_started(result).await;
                    true
                }
                Wake::Agent(event) => {
                    self.on_agent_event(event).await;
                    true
                }
                Wake::SandboxStatus(status) => {
                    self.on_sandbox_status(status).await;
                    true
                }
                Wake::Work(work) => {
                    self.on_work(work).await;
                    true
                }
                Wake::Idle => {
                    self.on_idle().await;
                    true
                }
                Wake::TurnInactive => {
                    self.on_turn_inactive().await;
                    true
                }
                Wake::AskExpired => {
                    self.expire_asks().await;
                    true
                }
                Wake::LeaseLost => {
                    self.log.mark_fenced();
                    true
                }
            };
            if self.fenced() {
                self.abandon().await;
                break true;
            }
            self.persist_queue().await;
            if !keep_going {
                break true;
            }
            // A session with no sandbox, nothing starting and nothing under way has nothing
            // for an actor to do: it exits, and the next command starts a fresh one from the
            // record.
            if self.is_dormant() {
                break false;
            }
        };
        if !self.fenced() && !self.deleted {
            // Handed back at once, so another node need not wait for it to expire.
            let _ = self
                .services
                .store
                .release_lease(self.record.id, &self.services.fence)
                .await;
        }
        if let Some(registry) = registry.upgrade() {
            if self.deleted {
                // Its clients are disconnected: the live side goes with the session.
                registry.remove(self.session_id());
            } else if let Some(mailbox) = mailbox.upgrade() {
                registry.forget(self.session_id(), &mailbox);
            }
        }
        self.commands.close();
        // Commands sent before the registry forgot this actor go to its successor (a deleted
        // or stopping session has none: their callers hear that it is gone).
        let mut leftover = Vec::new();
        while let Ok(command) = self.commands.try_recv() {
            leftover.push(command);
        }
        if !ended
            && !leftover.is_empty()
            && let Some(registry) = registry.upgrade()
            && let Ok(successor) = registry.restart(self.record.clone()).await
        {
            for command in leftover {
                let _ = successor.send(command).await;
            }
        }
    }

    /// Nothing runs, starts, waits or is being written: the record says all there is.
    fn is_dormant(&self) -> bool {
        self.live.is_none()
            && self.starting.is_none()
            && self.turn.is_none()
            && self.queue.is_empty()
            && self.snapshotting.is_none()
            && self.after_snapshot.is_empty()
            && self.pausing.is_none()
            && self.settling.is_none()
            && !self.pushing
            && matches!(
                self.record.status().ok(),
                Some(SessionStatus::Paused | SessionStatus::Idle | SessionStatus::Error)
            )
    }

    async fn wait(&mut self) -> Wake {
        let commands = &mut self.commands;
        let progress = &mut self.progress_rx;
        let work = &mut self.work_rx;
        let starting = &mut self.starting;
        let live = &mut self.live;
        let lost = &self.lost;
        let idle_deadline = self
            .idle_deadline
            .filter(|_| self.turn.is_none() && self.pausing.is_none());
        // A turn waiting for the person is not inactive; its asks have their own deadline.
        let turn_deadline = self
            .turn
            .as_ref()
            .filter(|_| !self.asks.is_waiting())
            .map(|turn| turn.last_activity + self.services.config.turn_inactivity_timeout);
        let ask_deadline = self.asks.next_deadline();
        tokio::select! {
            // Progress first, so a start's steps are recorded before its outcome.
            biased;
            Some(note) = progress.recv() => Wake::Progress(note),
            Some(done) = work.recv() => Wake::Work(done),
            command = commands.recv() => Wake::Command(command),
            started = async {
                match starting.as_mut() {
                    Some(task) => task.await,
                    None => std::future::pending().await,
                }
            } => Wake::Started(started.unwrap_or_else(|err| Err(SessionError::Internal(format!("the start task failed: {err}"))))),
            wake = async {
                match live.as_mut() {
                    Some(live) => tokio::select! {
                        event = live.events.next() => Wake::Agent(event),
                        changed = live.sandbox.status.changed() => match changed {
                            Ok(()) => Wake::SandboxStatus(live.sandbox.status.borrow_and_update().clone()),
                            Err(_) => Wake::SandboxStatus(SandboxStatus::Exited { reason: den_sandbox::ExitReason::Stopped }),
                        },
                    },
                    None => std::future::pending().await,
                }
            } => wake,
            () = sleep_until(idle_deadline) => Wake::Idle,
            () = sleep_until(turn_deadline) => Wake::TurnInactive,
            () = sleep_until(ask_deadline) => Wake::AskExpired,
            () = lost.cancelled() => Wake::LeaseLost,
        }
    }

    /// Records an event. Returns `None` when it could not be stored: it is then lost to
    /// history and nobody saw it, and the caller decides what that means (a turn fails).
    async fn emit(&mut self, event: SessionEvent) -> Option<SequencedEvent> {
        match self.log.append(event).await {
            Ok(event) => Some(event),
            Err(err) => {
                tracing::error!(error = %err, "cannot record a session event");
                None
            }
        }
    }

    /// Moves the session to `status`, records it, and tells the owner's session lists. When the
    /// status cannot be saved nothing is announced: clients would otherwise see a state the
    /// record does not have.
    async fn set_status(&mut self, status: SessionStatus, error: Option<String>) {
        self.set_status_because(status, error, None).await;
    }

    /// `set_status`, saying why when the session pauses.
    async fn set_status_because(
        &mut self,
        status: SessionStatus,
        error: Option<String>,
        pause: Option<PauseReason>,
    ) {
        let current = self.record.status().ok();
        if current == Some(status) && self.record.error == error {
            return;
        }
        match self
            .services
            .store
            .set_session_status_fenced(
                self.record.id,
                &self.services.fence,
                status,
                error.as_deref(),
            )
            .await
        {
            Ok(record) => self.record = record,
            Err(den_store::StoreError::Fenced) => {
                self.log.mark_fenced();
                return;
            }
            Err(err) => {
                tracing::error!(error = %err, ?status, "cannot save the session's status");
                return;
            }
        }
        self.emit(SessionEvent::Status {
            status,
            error,
            pause,
        })
        .await;
        self.announce();
    }

    /// Pushes the session's current record to its owner's session lists (on every node).
    fn announce(&self) {
        if let Some(notifier) = self.services.notifier() {
            notifier.list_changed(self.record.owner_id, self.record.id);
        }
        if let Ok(session) = self.record.to_protocol() {
            let update = den_protocol::events::SessionListUpdate::Upsert { session };
            let _ = self.services.list.send(ListChange {
                owner_id: self.record.owner_id,
                update,
            });
        }
    }

    /// Runs a command. Slow ones answer from the child task that does their work (or when it
    /// reports back), so the loop goes on meanwhile.
    async fn handle_command(&mut self, command: Command) -> bool {
        if self.snapshotting.is_some()
            && matches!(
                command,
                Command::Diff { .. } | Command::Push { .. } | Command::SnapshotSettled { .. }
            )
        {
            self.after_snapshot.push(command);
            return true;
        }
        match command {
            Command::Prompt { text, model, reply } => {
                let result = self.prompt(text, model).await;
                let _ = reply.send(result);
            }
            Command::Abort { reply } => self.abort(reply),
            Command::Pause { reply } => {
                if let Err(err) = self.check_pausable() {
                    let _ = reply.send(Err(err));
                } else {
                    self.begin_pause(Some(reply), false).await;
                }
            }
            Command::Resume { reply } => {
                self.begin_start();
                let _ = reply.send(Ok(()));
            }
            Command::Dequeue { id, reply } => {
                let before = self.queue.len();
                self.queue.retain(|item| item.id != id);
                let result = if self.queue.len() == before {
                    Err(SessionError::Conflict(
                        "that prompt is not in the queue (it may have started)".to_owned(),
                    ))
                } else {
                    self.emit_queue().await;
                    Ok(())
                };
                let _ = reply.send(result);
            }
            Command::EditQueued { id, text, reply } => {
                let result = self.edit_queued(&id, &text).await;
                let _ = reply.send(result);
            }
            Command::ClearQueue { reply } => {
                self.queue.clear();
                self.emit_queue().await;
                let _ = reply.send(Ok(()));
            }
            Command::Answer {
                ask_id,
                answer,
                by,
                reply,
            } => {
                let result = self.answer(&ask_id, answer, by).await;
                let _ = reply.send(result);
            }
            Command::SetApprovalMode { mode, by, reply } => {
                let result = self.set_approval_mode(mode, by).await;
                let _ = reply.send(result);
            }
            Command::Rename { title, reply } => {
                let result = self.rename(title).await;
                let _ = reply.send(result);
            }
            Command::Delete { reply } => {
                let result = self.delete().await;
                self.deleted = result.is_ok();
                let _ = reply.send(result);
                return false;
            }
            Command::Diff { reply } => self.diff(reply),
            Command::Push {
                author,
                message,
                reply,
            } => self.push(author, message, reply),
            Command::Terminal { reply } => {
                let _ = reply.send(self.terminal_grant());
            }
            Command::AgentClient { reply } => {
                let _ = reply.send(Ok(self.live.as_ref().map(|live| live.client.clone())));
            }
            Command::SnapshotSettled { reply } => {
                let _ = reply.send(Ok(()));
            }
            Command::Shutdown { reply } => {
                self.shutdown().await;
                let _ = reply.send(());
                return false;
            }
        }
        true
    }

    /// The idle timer ran out: the session pauses, unless a terminal is open in it (a person
    /// typing there is using it), in which case the timer starts again.
    async fn on_idle(&mut self) {
        let terminals = self
            .live
            .as_ref()
            .map_or(0, |live| live.terminals.open_count());
        if terminals > 0 {
            self.idle_deadline = Some(Instant::now() + self.services.config.idle_timeout);
            return;
        }
        self.idle_deadline = None;
        tracing::info!("idle timeout: pausing");
        self.begin_pause(None, true).await;
    }

    /// The agent's client and a ticket for one more terminal, while the sandbox runs and no
    /// pause is under way.
    fn terminal_grant(&self) -> Result<crate::terminal::TerminalGrant> {
        match &self.live {
            Some(live) if self.pausing.is_none() => Ok(crate::terminal::TerminalGrant {
                client: live.client.clone(),
                ticket: live.terminals.ticket(),
            }),
            Some(_) => Err(SessionError::Conflict(
                "the session is pausing: resume it to open a terminal".to_owned(),
            )),
            None => Err(SessionError::Conflict(
                "the session's sandbox is not running: resume it to open a terminal".to_owned(),
            )),
        }
    }

    async fn emit_queue(&mut self) {
        self.queue_shown = !self.queue.is_empty();
        let items = self.queue.iter().cloned().collect();
        self.emit(SessionEvent::Queue { items }).await;
    }

    pub(super) async fn rename(&mut self, title: String) -> Result<()> {
        self.record = self
            .services
            .store
            .rename_session(self.record.owner_id, self.record.id, &title)
            .await?;
        self.emit(SessionEvent::Renamed { title }).await;
        self.announce();
        Ok(())
    }

    fn session_id(&self) -> Uuid {
        self.record.id
    }

    /// Runs `work` in a child task whose result comes back to the loop as a wake-up.
    fn spawn_work<F>(&self, work: F) -> AbortHandle
    where
        F: std::future::Future<Output = Work> + Send + 'static,
    {
        let done = self.work_tx.clone();
        let task = tokio::spawn(
            async move {
                let _ = done.send(work.await);
            }
            .in_current_span(),
        );
        task.abort_handle()
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// How long one agent call (prompt, abort) may take before the session gives up on it.
pub(crate) const AGENT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
