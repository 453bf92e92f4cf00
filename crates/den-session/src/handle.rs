//! `SessionHandle`: how everything outside the actor talks to a session.

use std::sync::Arc;

use den_protocol::events::PromptAccepted;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::error::{Result, SessionError};
use crate::eventlog::EventSubscription;
use crate::registry::Registry;

/// What a client can ask of a session, whichever way it arrives (REST or WebSocket): one
/// place to add a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCommand {
    /// Run `text` now or queue it, switching to `model` when its turn starts (the caller
    /// checked that the owner may use it).
    Prompt {
        text: String,
        model: Option<String>,
    },
    Abort,
    Pause,
    Resume,
    Dequeue {
        id: String,
    },
    EditQueued {
        id: String,
        text: String,
    },
    ClearQueue,
    /// Answers a pending permission ask or question; `by` is the person's username.
    Answer {
        ask_id: String,
        reply: den_protocol::asks::AskReply,
        by: String,
    },
    /// Switches the session's approval mode; `by` is the person's username.
    SetApprovalMode {
        mode: den_protocol::asks::ApprovalMode,
        by: String,
    },
}

impl SessionCommand {
    /// The command a client's WebSocket message (or a message forwarded by another node)
    /// asks for, on behalf of `by` (the person's username); `None` for a ping, which is no
    /// command. A prompt's model is the caller's to check first.
    pub fn from_client(message: den_protocol::events::ClientMessage, by: &str) -> Option<Self> {
        use den_protocol::events::ClientMessage;
        Some(match message {
            ClientMessage::Ping => return None,
            ClientMessage::Prompt { text, model } => Self::Prompt { text, model },
            ClientMessage::Abort => Self::Abort,
            ClientMessage::Pause => Self::Pause,
            ClientMessage::Resume => Self::Resume,
            ClientMessage::Dequeue { id } => Self::Dequeue { id },
            ClientMessage::EditQueued { id, text } => Self::EditQueued { id, text },
            ClientMessage::ClearQueue => Self::ClearQueue,
            ClientMessage::Answer { ask_id, reply } => Self::Answer {
                ask_id,
                reply,
                by: by.to_owned(),
            },
        })
    }
}

/// What a [`SessionCommand`] answered.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandOutcome {
    Prompt(PromptAccepted),
    Done,
}

/// A request to the session's actor; each carries where to send the answer.
pub(crate) enum Command {
    Prompt {
        text: String,
        model: Option<String>,
        reply: oneshot::Sender<Result<PromptAccepted>>,
    },
    Abort {
        reply: oneshot::Sender<Result<()>>,
    },
    Pause {
        reply: oneshot::Sender<Result<()>>,
    },
    Resume {
        reply: oneshot::Sender<Result<()>>,
    },
    Dequeue {
        id: String,
        reply: oneshot::Sender<Result<()>>,
    },
    ClearQueue {
        reply: oneshot::Sender<Result<()>>,
    },
    EditQueued {
        id: String,
        text: String,
        reply: oneshot::Sender<Result<()>>,
    },
    Rename {
        title: String,
        reply: oneshot::Sender<Result<()>>,
    },
    Answer {
        ask_id: String,
        answer: den_protocol::asks::AskReply,
        by: String,
        reply: oneshot::Sender<Result<()>>,
    },
    SetApprovalMode {
        mode: den_protocol::asks::ApprovalMode,
        by: String,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Stops the sandbox, deletes snapshots and the checkout, then the session's records.
    Delete {
        reply: oneshot::Sender<Result<()>>,
    },
    /// What the session changed against its base commit.
    Diff {
        reply: oneshot::Sender<Result<den_protocol::changes::SessionDiff>>,
    },
    /// Commit uncommitted work as `author`, then push the session's branch.
    Push {
        author: crate::push::Author,
        message: Option<String>,
        reply: oneshot::Sender<Result<den_protocol::changes::PushResult>>,
    },
    /// The agent's client and a terminal ticket, while the sandbox runs.
    Terminal {
        reply: oneshot::Sender<Result<crate::terminal::TerminalGrant>>,
    },
    /// A client of the running agent (for `den bench`), if the sandbox is live.
    AgentClient {
        reply: oneshot::Sender<Result<Option<den_opencode::OpencodeClient>>>,
    },
    /// Answered once no snapshot is being written (at once when none is): the record then
    /// holds the newest snapshot there will be for the last finished turn (for a fork).
    SnapshotSettled {
        reply: oneshot::Sender<Result<()>>,
    },
    /// den is stopping: stop the sandbox, close the running turn as interrupted.
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// A cloneable handle to one session. It names the session, not an actor: each command goes
/// to the session's running actor, or starts one from the stored record.
#[derive(Clone)]
pub struct SessionHandle {
    id: Uuid,
    owner_id: Uuid,
    registry: Arc<Registry>,
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl SessionHandle {
    /// The owner was checked by whoever made the handle.
    pub(crate) fn new(id: Uuid, owner_id: Uuid, registry: Arc<Registry>) -> Self {
        Self {
            id,
            owner_id,
            registry,
        }
    }

    pub fn id(&self) -> Uuid {
        self.id
    }

    pub fn owner_id(&self) -> Uuid {
        self.owner_id
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T>>) -> Command,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.send(command(reply)).await?;
        answer.await.map_err(|_| SessionError::ActorGone)?
    }

    /// Delivers `command` to the session's actor. An actor that exited between the lookup and
    /// the send (its session went dormant) is replaced by a fresh one.
    async fn send(&self, mut command: Command) -> Result<()> {
        for _ in 0..3 {
            let mailbox = self.registry.mailbox(self.owner_id, self.id).await?;
            match mailbox.send(command).await {
                Ok(()) => return Ok(()),
                Err(mpsc::error::SendError(returned)) => command = returned,
            }
        }
        Err(SessionError::ActorGone)
    }

    /// Runs one client command, the same way whether it came over REST or the WebSocket.
    /// A session another den node owns gets the command there (forwarded); one whose node
    /// died is taken over here.
    pub async fn dispatch(&self, command: SessionCommand) -> Result<CommandOutcome> {
        match self.dispatch_here(command.clone()).await {
            Err(SessionError::OwnedElsewhere {
                node,
                internal_url: Some(url),
            }) => {
                let forwarder = self
                    .registry
                    .services()
                    .cluster()
                    .and_then(|cluster| cluster.forwarder.clone())
                    .ok_or_else(|| {
                        SessionError::NodeUnavailable(format!(
                            "the session runs on den node {node}, which this node cannot reach"
                        ))
                    })?;
                forwarder
                    .forward(url, self.owner_id, self.id, command)
                    .await
            }
            Err(SessionError::OwnedElsewhere { node, .. }) => Err(SessionError::NodeUnavailable(
                format!("the session runs on den node {node}, which is not answering yet"),
            )),
            other => other,
        }
    }

    /// Runs a command forwarded by another node: here or nowhere (never forwarded again, so
    /// two nodes that disagree for a moment cannot bounce it between them).
    pub async fn dispatch_here(&self, command: SessionCommand) -> Result<CommandOutcome> {
        Ok(match command {
            SessionCommand::Prompt { text, model } => CommandOutcome::Prompt(
                self.ask(|reply| Command::Prompt { text, model, reply })
                    .await?,
            ),
            SessionCommand::Abort => {
                self.ask(|reply| Command::Abort { reply }).await?;
                CommandOutcome::Done
            }
            SessionCommand::Pause => {
                self.ask(|reply| Command::Pause { reply }).await?;
                CommandOutcome::Done
            }
            SessionCommand::Resume => {
                self.ask(|reply| Command::Resume { reply }).await?;
                CommandOutcome::Done
            }
            SessionCommand::Dequeue { id } => {
                self.ask(|reply| Command::Dequeue { id, reply }).await?;
                CommandOutcome::Done
            }
            SessionCommand::EditQueued { id, text } => {
                self.ask(|reply| Command::EditQueued { id, text, reply })
                    .await?;
                CommandOutcome::Done
            }
            SessionCommand::ClearQueue => {
                self.ask(|reply| Command::ClearQueue { reply }).await?;
                CommandOutcome::Done
            }
            SessionCommand::Answer { ask_id, reply, by } => {
                self.ask(|answered| Command::Answer {
                    ask_id,
                    answer: reply,
                    by,
                    reply: answered,
                })
                .await?;
                CommandOutcome::Done
            }
            SessionCommand::SetApprovalMode { mode, by } => {
                self.ask(|reply| Command::SetApprovalMode { mode, by, reply })
                    .await?;
                CommandOutcome::Done
            }
        })
    }

    /// Runs `text` now, or queues it behind the running turn (starting or resuming the session
    /// first when it is not running).
    pub async fn prompt(&self, text: String) -> Result<PromptAccepted> {
        self.prompt_with_model(text, None).await
    }

    /// Like [`Self::prompt`], switching the session to `model` when this prompt's turn starts
    /// (the caller checked the owner may use it).
    pub async fn prompt_with_model(
        &self,
        text: String,
        model: Option<String>,
    ) -> Result<PromptAccepted> {
        match self
            .dispatch(SessionCommand::Prompt { text, model })
            .await?
        {
            CommandOutcome::Prompt(accepted) => Ok(accepted),
            CommandOutcome::Done => Err(SessionError::Internal(
                "a prompt was answered without its acceptance".to_owned(),
            )),
        }
    }

    /// Stops the running turn (no-op when none runs).
    pub async fn abort(&self) -> Result<()> {
        self.dispatch(SessionCommand::Abort).await.map(drop)
    }

    /// Snapshots and stops the sandbox.
    pub async fn pause(&self) -> Result<()> {
        self.dispatch(SessionCommand::Pause).await.map(drop)
    }

    /// Restores the last snapshot and starts the agent, without a prompt.
    pub async fn resume(&self) -> Result<()> {
        self.dispatch(SessionCommand::Resume).await.map(drop)
    }

    pub async fn dequeue(&self, id: String) -> Result<()> {
        self.dispatch(SessionCommand::Dequeue { id })
            .await
            .map(drop)
    }

    pub async fn clear_queue(&self) -> Result<()> {
        self.dispatch(SessionCommand::ClearQueue).await.map(drop)
    }

    /// Replaces the text of a queued prompt (one that has not started).
    pub async fn edit_queued(&self, id: String, text: String) -> Result<()> {
        self.dispatch(SessionCommand::EditQueued { id, text })
            .await
            .map(drop)
    }

    pub async fn rename(&self, title: String) -> Result<()> {
        self.ask(|reply| Command::Rename { title, reply }).await
    }

    /// Every file the session changed against its base commit: computed in the running
    /// sandbox, or (without one) the diff saved when the last turn ended.
    pub async fn diff(&self) -> Result<den_protocol::changes::SessionDiff> {
        self.ask(|reply| Command::Diff { reply }).await
    }

    /// Commits any uncommitted work as `author` (message: `message`, or the session's title)
    /// and pushes the session's branch through den's git gateway. Needs a running sandbox and
    /// no running turn.
    pub async fn push(
        &self,
        author: crate::push::Author,
        message: Option<String>,
    ) -> Result<den_protocol::changes::PushResult> {
        self.ask(|reply| Command::Push {
            author,
            message,
            reply,
        })
        .await
    }

    /// A client of the agent inside the running sandbox (`None` when not running). Only for
    /// `den bench`, which reads the agent's own event stream as a baseline.
    #[doc(hidden)]
    pub async fn agent_client(&self) -> Result<Option<den_opencode::OpencodeClient>> {
        self.ask(|reply| Command::AgentClient { reply }).await
    }

    /// Waits until no snapshot of the session is being written.
    pub(crate) async fn snapshot_settled(&self) -> Result<()> {
        self.ask(|reply| Command::SnapshotSettled { reply }).await
    }

    /// Opens a shell in the session's running sandbox (`size`: its first size). A session
    /// whose sandbox is not running (or is pausing) is a conflict: resume it first.
    pub async fn open_terminal(
        &self,
        size: Option<crate::terminal::TerminalSize>,
    ) -> Result<crate::terminal::Terminal> {
        let grant = self.ask(|reply| Command::Terminal { reply }).await?;
        crate::terminal::Terminal::open(grant, size).await
    }

    pub(crate) async fn delete(&self) -> Result<()> {
        self.ask(|reply| Command::Delete { reply }).await
    }

    /// The session's events after `after`: stored history first, then live, each once.
    pub fn subscribe(&self, after: i64) -> EventSubscription {
        // Subscribing before the subscription reads history is what closes the gap between
        // the two; `EventSubscription` skips what it already replayed.
        let store = self.registry.services().store.clone();
        let (live, floor) = self.registry.live(self.id);
        EventSubscription::new(self.id, store, live.subscribe(), after).with_floor(floor)
    }
}
