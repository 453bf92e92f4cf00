use den_git::GitError;
use den_opencode::OpencodeError;
use den_sandbox::SandboxError;
use den_store::StoreError;

/// Everything a session operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session not found")]
    NotFound,
    #[error("{0}")]
    InvalidPrompt(String),
    #[error("{0}")]
    Conflict(String),
    /// No ask or question of the session has that id.
    #[error("no pending ask or question has that id")]
    AskNotFound,
    /// An answer that does not fit its ask (bad labels, the wrong kind of reply).
    #[error("{0}")]
    InvalidAnswer(String),
    /// The session's actor stopped (den is shutting down, or the session was deleted).
    #[error("the session is no longer running")]
    ActorGone,
    /// Another node owns the session (holds its unexpired lease): the command must go there.
    #[error("the session runs on another den node ({node})")]
    OwnedElsewhere {
        node: String,
        /// Where that node takes forwarded commands (`None`: it has not registered).
        internal_url: Option<String>,
    },
    /// The node owning the session cannot be reached now (it may be stopping or dead: once
    /// its lease expires any node takes the session over).
    #[error("{0}")]
    NodeUnavailable(String),
    /// The agent did not answer, or den lost its connection to it (a fault on den's side of
    /// the request, not the caller's).
    #[error("{0}")]
    AgentUnreachable(String),
    /// A snapshot could not be written; the previous one is kept.
    #[error("{0}")]
    Snapshot(String),
    /// Something in den itself went wrong.
    #[error("{0}")]
    Internal(String),
    #[error("database error")]
    Store(#[from] StoreError),
    #[error("sandbox error: {0}")]
    Sandbox(#[from] SandboxError),
    #[error("agent error: {0}")]
    Agent(#[from] OpencodeError),
    #[error("{0}")]
    Git(#[from] GitError),
    /// A push was refused or failed; git's explanation.
    #[error("the push failed: {0}")]
    Push(String),
    /// The session's diff could not be computed.
    #[error("{0}")]
    Diff(String),
    #[error("file system error: {0}")]
    Io(#[from] std::io::Error),
    /// An event could not be encoded as JSON (a bug, not bad input).
    #[error("cannot encode an event: {0}")]
    Encode(String),
}

impl SessionError {
    /// The message shown to the session's owner when this makes the session fail.
    pub(crate) fn user_message(&self) -> String {
        match self {
            Self::Store(_) => "den could not save the session's state".to_owned(),
            other => other.to_string(),
        }
    }
}

pub type Result<T, E = SessionError> = std::result::Result<T, E>;
