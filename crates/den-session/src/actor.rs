//! The session actor: one tokio task per session that owns its state and is the only writer
//! of its event log. It reacts to a closed set of inputs: commands from handles, progress of a
//! start in the background, OpenCode's events, the sandbox's status, and the idle timer.

mod changes;
mod lifecycle;
mod turn;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use den_opencode::{EventEnvelope, EventStream, OpencodeClient, OpencodeError};
use den_protocol::events::{ProgressStep, QueuedPrompt, SequencedEvent, SessionEvent, StepState};
use den_protocol::sessions::SessionStatus;
use den_sandbox::{SandboxHandle, SandboxRuntime, SandboxStatus};
use den_store::{SessionRecord, Store};
use futures::StreamExt;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

use crate::config::SessionConfig;
use crate::error::{Result, SessionError};
use crate::eventlog::EventLog;
use crate::handle::{Command, SessionHandle};
use crate::manager::ListChange;
use crate::mapping::TurnMapper;

/// How many commands may wait in a session's mailbox; senders wait beyond that.
const MAILBOX: usize = 64;

/// What every actor shares.
#[derive(Clone)]
pub(crate) struct Services {
    pub(crate) store: Store,
    pub(crate) runtime: Arc<dyn SandboxRuntime>,
    pub(crate) config: Arc<SessionConfig>,
    pub(crate) list: broadcast::Sender<ListChange>,
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
}

/// The turn in progress.
pub(crate) struct Turn {
    pub(crate) id: String,
    pub(crate) mapper: TurnMapper,
    /// When it started: the gateway's metering after this belongs to it.
    pub(crate) started_at: chrono::DateTime<chrono::Utc>,
}

pub(crate) struct SessionActor {
    services: Services,
    record: SessionRecord,
    log: EventLog,
    commands: mpsc::Receiver<Command>,
    progress_tx: mpsc::UnboundedSender<ProgressNote>,
    progress_rx: mpsc::UnboundedReceiver<ProgressNote>,
    starting: Option<JoinHandle<Result<Live>>>,
    /// The sandbox the running start has created, if it got that far: a start stopped midway
    /// (the session deleted or den stopping) cannot remove it itself.
    starting_sandbox: StartedSandbox,
    live: Option<Live>,
    turn: Option<Turn>,
    queue: VecDeque<QueuedPrompt>,
    /// Whether clients were last shown a non-empty queue (so they must see it shrink).
    queue_shown: bool,
    /// Whether the sandbox changed since its last snapshot (a turn ran, or it never had one),
    /// so a pause knows whether it must snapshot again.
    unsnapshotted: bool,
    idle_deadline: Option<Instant>,
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
    Idle,
}

/// Starts the actor of `record` and returns its handle.
pub(crate) fn spawn(services: Services, record: SessionRecord) -> SessionHandle {
    let (commands_tx, commands) = mpsc::channel(MAILBOX);
    let (live_tx, _) = broadcast::channel(crate::eventlog::LIVE_BUFFER);
    let handle = SessionHandle::new(
        record.id,
        record.owner_id,
        commands_tx,
        live_tx.clone(),
        services.store.clone(),
    );
    let span = tracing::info_span!("session", session.id = %record.id);
    tokio::spawn(
        async move {
            let log = match EventLog::open(services.store.clone(), record.id, live_tx).await {
                Ok(log) => log,
                Err(err) => {
                    tracing::error!(error = %err, "cannot open the session's event log");
                    return;
                }
            };
            let (progress_tx, progress_rx) = mpsc::unbounded_channel();
            let actor = SessionActor {
                services,
                record,
                log,
                commands,
                progress_tx,
                progress_rx,
                starting: None,
                starting_sandbox: StartedSandbox::default(),
                live: None,
                turn: None,
                queue: VecDeque::new(),
                queue_shown: false,
                unsnapshotted: false,
                idle_deadline: None,
            };
            actor.run().await;
        }
        .instrument(span),
    );
    handle
}

impl SessionActor {
    async fn run(mut self) {
        loop {
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
                Wake::Idle => {
                    self.idle_deadline = None;
                    tracing::info!("idle timeout: pausing");
                    if let Err(err) = self.pause().await {
                        self.fail(&err).await;
                    }
                    true
                }
            };
            if !keep_going {
                break;
            }
        }
    }

    async fn wait(&mut self) -> Wake {
        let commands = &mut self.commands;
        let progress = &mut self.progress_rx;
        let starting = &mut self.starting;
        let live = &mut self.live;
        let idle_deadline = self.idle_deadline.filter(|_| self.turn.is_none());
        tokio::select! {
            // Progress first, so a start's steps are recorded before its outcome.
            biased;
            Some(note) = progress.recv() => Wake::Progress(note),
            command = commands.recv() => Wake::Command(command),
            started = async {
                match starting.as_mut() {
                    Some(task) => task.await,
                    None => std::future::pending().await,
                }
            } => Wake::Started(started.unwrap_or_else(|err| Err(SessionError::Io(std::io::Error::other(err.to_string()))))),
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
            () = async {
                match idle_deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            } => Wake::Idle,
        }
    }

    /// Records an event; a failure to store it is logged (the event is then lost to history,
    /// which is why the store's failures also move the session to `error`).
    async fn emit(&mut self, event: SessionEvent) -> Option<SequencedEvent> {
        match self.log.append(event).await {
            Ok(event) => Some(event),
            Err(err) => {
                tracing::error!(error = %err, "cannot record a session event");
                None
            }
        }
    }

    /// Moves the session to `status`, records it, and tells the owner's session lists.
    async fn set_status(&mut self, status: SessionStatus, error: Option<String>) {
        let current = self.record.status().ok();
        if current == Some(status) && self.record.error == error {
            return;
        }
        match self
            .services
            .store
            .set_session_status(self.record.id, status, error.as_deref())
            .await
        {
            Ok(record) => self.record = record,
            Err(err) => tracing::error!(error = %err, "cannot save the session's status"),
        }
        self.emit(SessionEvent::Status { status, error }).await;
        self.announce();
    }

    /// Pushes the session's current record to its owner's session lists.
    fn announce(&self) {
        if let Ok(session) = self.record.to_protocol() {
            let update = den_protocol::events::SessionListUpdate::Upsert { session };
            let _ = self.services.list.send(ListChange {
                owner_id: self.record.owner_id,
                update,
            });
        }
    }

    async fn handle_command(&mut self, command: Command) -> bool {
        match command {
            Command::Prompt { text, model, reply } => {
                let result = self.prompt(text, model).await;
                let _ = reply.send(result);
            }
            Command::Abort { reply } => {
                let _ = reply.send(self.abort().await);
            }
            Command::Pause { reply } => {
                let result = self.pause_on_request().await;
                let _ = reply.send(result);
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
            Command::Rename { title, reply } => {
                let result = self.rename(title).await;
                let _ = reply.send(result);
            }
            Command::Delete { reply } => {
                let result = self.delete().await;
                let _ = reply.send(result);
                return false;
            }
            Command::Diff { reply } => self.diff(reply),
            Command::Push {
                author,
                message,
                reply,
            } => {
                let _ = reply.send(self.push(&author, message).await);
            }
            Command::AgentClient { reply } => {
                let _ = reply.send(Ok(self.live.as_ref().map(|live| live.client.clone())));
            }
            Command::Shutdown { reply } => {
                self.shutdown().await;
                let _ = reply.send(());
                return false;
            }
        }
        true
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
}

/// How long one agent call (prompt, abort) may take before the session gives up on it.
pub(crate) const AGENT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
