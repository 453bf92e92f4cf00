//! A session's event stream: den's own vocabulary, mapped from OpenCode's events.
//!
//! Every event is stored with a per-session sequence number before anyone sees it. A client
//! resumes with "after N" and gets exactly the events after N, then live ones. Clients build
//! the transcript from these events alone (see docs/protocol.md).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::sessions::SessionStatus;

/// An event with its place in the session's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SequencedEvent {
    /// 1, 2, 3, … per session, with no gap and no repeat.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub event: SessionEvent,
}

/// What happened in a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionEvent {
    /// The session's status changed.
    Status {
        status: SessionStatus,
        error: Option<String>,
        /// Why, when `status` is `paused` and den knows (events stored before den recorded
        /// reasons have none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pause: Option<crate::pause::PauseReason>,
    },
    /// A step of starting or resuming the session.
    Progress {
        step: ProgressStep,
        state: StepState,
        detail: Option<String>,
    },
    /// The session was renamed.
    Renamed { title: String },
    /// A turn began: the user's prompt is being answered.
    TurnStarted {
        #[serde(rename = "turnId")]
        turn_id: String,
        prompt: String,
        /// The model that answers this turn (`provider/model`); absent in turns recorded
        /// before den kept it.
        #[serde(default)]
        model: Option<String>,
    },
    /// What den's gateway metered for a turn's model requests (title requests included), sent
    /// just before `turn_finished` when any were metered.
    TurnUsage {
        #[serde(rename = "turnId")]
        turn_id: String,
        usage: crate::models::UsageTotals,
    },
    /// A turn ended.
    TurnFinished {
        #[serde(rename = "turnId")]
        turn_id: String,
        outcome: TurnOutcome,
        tokens: TokenUsage,
        cost: f64,
        error: Option<String>,
    },
    /// A message was created (user or assistant).
    Message {
        #[serde(rename = "messageId")]
        message_id: String,
        role: Role,
        /// The user's text; `None` for assistant messages, whose content arrives as parts.
        text: Option<String>,
    },
    /// Text streaming into a part of an assistant message.
    TextDelta {
        #[serde(rename = "messageId")]
        message_id: String,
        #[serde(rename = "partId")]
        part_id: String,
        delta: String,
    },
    /// Reasoning streaming into a part of an assistant message.
    ReasoningDelta {
        #[serde(rename = "messageId")]
        message_id: String,
        #[serde(rename = "partId")]
        part_id: String,
        delta: String,
    },
    /// The complete text of a text or reasoning part (sent when the part is finished, so a
    /// client that missed deltas still ends with the right text).
    PartText {
        #[serde(rename = "messageId")]
        message_id: String,
        #[serde(rename = "partId")]
        part_id: String,
        kind: TextKind,
        text: String,
    },
    /// A tool call, each time its state changes.
    Tool(ToolCall),
    /// The agent's todo list, whole.
    Todos { todos: Vec<Todo> },
    /// The queue of prompts waiting for the running turn, whole.
    Queue { items: Vec<QueuedPrompt> },
    /// Something went wrong that the user should see.
    Error { code: String, message: String },
    /// The session's changes were computed again (after each turn): a client showing the diff
    /// fetches `GET /api/sessions/{id}/diff`.
    DiffChanged {
        summary: crate::changes::DiffSummary,
    },
    /// An OpenCode event den does not map, kept as it came.
    Agent {
        kind: String,
        #[schema(value_type = Object)]
        properties: serde_json::Value,
    },
    /// The agent waits for the person to allow a command or a file change (`ask` mode).
    PermissionAsked(crate::asks::PermissionAsk),
    /// The agent waits for the person to answer its questions.
    QuestionAsked(crate::asks::QuestionAsk),
    /// A permission ask or question was closed (answered, rejected or expired).
    AskClosed(crate::asks::AskClosed),
    /// The session's approval mode changed.
    ApprovalModeChanged {
        mode: crate::asks::ApprovalMode,
        /// Who changed it.
        by: String,
    },
}

impl SessionEvent {
    /// The `type` tag, as stored in the event log's `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Status { .. } => "status",
            Self::Progress { .. } => "progress",
            Self::Renamed { .. } => "renamed",
            Self::TurnStarted { .. } => "turn_started",
            Self::TurnUsage { .. } => "turn_usage",
            Self::TurnFinished { .. } => "turn_finished",
            Self::Message { .. } => "message",
            Self::TextDelta { .. } => "text_delta",
            Self::ReasoningDelta { .. } => "reasoning_delta",
            Self::PartText { .. } => "part_text",
            Self::Tool(_) => "tool",
            Self::Todos { .. } => "todos",
            Self::Queue { .. } => "queue",
            Self::Error { .. } => "error",
            Self::DiffChanged { .. } => "diff_changed",
            Self::Agent { .. } => "agent",
            Self::PermissionAsked(_) => "permission_asked",
            Self::QuestionAsked(_) => "question_asked",
            Self::AskClosed(_) => "ask_closed",
            Self::ApprovalModeChanged { .. } => "approval_mode_changed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProgressStep {
    Sandbox,
    Clone,
    Restore,
    Agent,
    Ready,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Started,
    Done,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TurnOutcome {
    Completed,
    Aborted,
    Failed,
    /// den stopped (or the sandbox died) while the turn ran.
    Interrupted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TextKind {
    Text,
    Reasoning,
}

/// Tokens used by a turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
    pub reasoning: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

/// A tool call's current state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolCall {
    pub message_id: String,
    pub part_id: String,
    pub call_id: String,
    /// `bash`, `write`, `edit`, `read`, …
    pub tool: String,
    pub state: ToolState,
    /// A short human title when the agent gave one (e.g. the file path).
    pub title: Option<String>,
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
    pub output: Option<String>,
    pub error: Option<String>,
    /// For file edits: a unified diff of the change.
    pub diff: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ToolState {
    Pending,
    Running,
    Completed,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Todo {
    pub content: String,
    /// `pending`, `in_progress`, `completed`, `cancelled`.
    pub status: String,
    pub priority: Option<String>,
}

/// A prompt waiting its turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueuedPrompt {
    pub id: String,
    pub text: String,
    /// The model this prompt switches the session to, when it asked for one.
    #[serde(default)]
    pub model: Option<String>,
}

/// What a client sends over the session WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Runs now, or queues behind the running turn; `model` switches the session to that model
    /// from this prompt's turn on (checked as `POST …/prompt` checks it).
    Prompt {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
    },
    /// Stops the running turn.
    Abort,
    Pause,
    Resume,
    /// Removes a queued prompt.
    Dequeue {
        id: String,
    },
    /// Replaces the text of a queued prompt.
    EditQueued {
        id: String,
        text: String,
    },
    /// Removes every queued prompt.
    ClearQueue,
    Ping,
    /// Answers a pending permission ask or question (as `POST …/asks/{askId}` does).
    Answer {
        #[serde(rename = "askId")]
        ask_id: String,
        reply: crate::asks::AskReply,
    },
}

/// What the server sends over the session WebSocket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// One event of the session's history or live stream.
    Event(Box<SequencedEvent>),
    /// Replay has caught up: everything up to `seq` was sent; what follows is live.
    Live {
        seq: i64,
    },
    /// A command from this client was refused; nothing changed.
    Refused {
        code: String,
        message: String,
    },
    Pong,
}

/// `POST /api/sessions/{id}/prompt`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromptRequest {
    pub text: String,
    /// Switches the session to this model (`provider/model`, see `GET /api/models`) from this
    /// prompt on. Only for `POST …/prompt`; a queued prompt's model cannot be edited.
    #[serde(default)]
    pub model: Option<String>,
}

/// The answer to a prompt: whether it runs now or waits in the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromptAccepted {
    pub id: String,
    pub queued: bool,
}

/// One change to the caller's session list (`GET /api/sessions/stream`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionListUpdate {
    /// A session was created or changed (status, title, activity).
    Upsert {
        session: crate::sessions::Session,
    },
    Removed {
        id: uuid::Uuid,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_have_a_type_tag_and_camel_case_fields() {
        let event = SessionEvent::TextDelta {
            message_id: "m".into(),
            part_id: "p".into(),
            delta: "hi".into(),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "text_delta", "messageId": "m", "partId": "p", "delta": "hi"})
        );
        assert_eq!(event.kind(), "text_delta");
        let tool = SessionEvent::Tool(ToolCall {
            message_id: "m".into(),
            part_id: "p".into(),
            call_id: "c".into(),
            tool: "write".into(),
            state: ToolState::Completed,
            title: None,
            input: serde_json::json!({"filePath": "a"}),
            output: Some("ok".into()),
            error: None,
            diff: None,
        });
        let json = serde_json::to_value(&tool).unwrap();
        assert_eq!(json["type"], "tool");
        assert_eq!(json["callId"], "c");
        assert_eq!(serde_json::from_value::<SessionEvent>(json).unwrap(), tool);
    }

    #[test]
    fn client_messages_refuse_unknown_types_and_fields() {
        assert_eq!(
            serde_json::from_str::<ClientMessage>(r#"{"type":"abort"}"#).unwrap(),
            ClientMessage::Abort
        );
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"explode"}"#).is_err());
        assert_eq!(
            serde_json::from_str::<ClientMessage>(r#"{"type":"prompt","text":"x","model":"a/b"}"#)
                .unwrap(),
            ClientMessage::Prompt {
                text: "x".to_owned(),
                model: Some("a/b".to_owned())
            }
        );
        assert!(
            serde_json::from_str::<ClientMessage>(r#"{"type":"prompt","text":"x","colour":"y"}"#)
                .is_err()
        );
    }
}
