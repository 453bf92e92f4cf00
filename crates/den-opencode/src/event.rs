//! Typed events of OpenCode's `GET /event` stream.
//!
//! Every event is `{"id": "evt_…", "type": "…", "properties": {…}}`. Types den maps have a
//! variant; any other type, or a known type whose payload no longer parses, becomes
//! [`Event::Unknown`] with the raw properties, so nothing is ever dropped.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::message::{Message, MessageError, Part};
use crate::session::{FileDiff, PermissionReply, Session, SessionStatus, Todo};

/// One event as it came off the stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// OpenCode's event id (`evt_…`). The stream has no SSE `id:` lines and no replay, so this
    /// is informational only.
    pub id: Option<String>,
    #[serde(flatten)]
    pub event: Event,
}

impl EventEnvelope {
    /// Shorthand for consumers that only care about the payload.
    pub fn into_event(self) -> Event {
        self.event
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "properties")]
pub enum Event {
    /// First event of every connection, including each reconnection.
    #[serde(rename = "server.connected")]
    ServerConnected {},
    /// Sent every few seconds on an idle stream; absent from the OpenAPI document.
    #[serde(rename = "server.heartbeat")]
    ServerHeartbeat {},
    #[serde(rename = "session.created")]
    SessionCreated(SessionInfo),
    #[serde(rename = "session.updated")]
    SessionUpdated(SessionInfo),
    #[serde(rename = "session.deleted")]
    SessionDeleted(SessionInfo),
    #[serde(rename = "session.status")]
    SessionStatus {
        #[serde(rename = "sessionID")]
        session_id: String,
        status: SessionStatus,
    },
    /// The turn finished (successfully, with an error, or aborted).
    #[serde(rename = "session.idle")]
    SessionIdle {
        #[serde(rename = "sessionID")]
        session_id: String,
    },
    #[serde(rename = "session.error")]
    SessionError {
        #[serde(rename = "sessionID")]
        session_id: Option<String>,
        error: Option<MessageError>,
    },
    #[serde(rename = "session.diff")]
    SessionDiff {
        #[serde(rename = "sessionID")]
        session_id: String,
        diff: Vec<FileDiff>,
    },
    #[serde(rename = "session.compacted")]
    SessionCompacted {
        #[serde(rename = "sessionID")]
        session_id: String,
    },
    #[serde(rename = "message.updated")]
    MessageUpdated {
        #[serde(rename = "sessionID")]
        session_id: String,
        info: Message,
    },
    #[serde(rename = "message.removed")]
    MessageRemoved {
        #[serde(rename = "sessionID")]
        session_id: String,
        #[serde(rename = "messageID")]
        message_id: String,
    },
    #[serde(rename = "message.part.updated")]
    MessagePartUpdated {
        #[serde(rename = "sessionID")]
        session_id: String,
        part: Part,
    },
    /// Streaming text: append `delta` to the part's `field` (so far always `text`).
    #[serde(rename = "message.part.delta")]
    MessagePartDelta {
        #[serde(rename = "sessionID")]
        session_id: String,
        #[serde(rename = "messageID")]
        message_id: String,
        #[serde(rename = "partID")]
        part_id: String,
        field: String,
        delta: String,
    },
    #[serde(rename = "message.part.removed")]
    MessagePartRemoved {
        #[serde(rename = "sessionID")]
        session_id: String,
        #[serde(rename = "messageID")]
        message_id: String,
        #[serde(rename = "partID")]
        part_id: String,
    },
    #[serde(rename = "permission.asked")]
    PermissionAsked(PermissionRequest),
    #[serde(rename = "permission.replied")]
    PermissionReplied {
        #[serde(rename = "sessionID")]
        session_id: String,
        #[serde(rename = "requestID")]
        request_id: String,
        reply: PermissionReply,
    },
    #[serde(rename = "question.asked")]
    QuestionAsked(QuestionRequest),
    #[serde(rename = "question.replied")]
    QuestionReplied {
        #[serde(rename = "sessionID")]
        session_id: String,
        #[serde(rename = "requestID")]
        request_id: String,
        answers: Vec<Vec<String>>,
    },
    #[serde(rename = "question.rejected")]
    QuestionRejected {
        #[serde(rename = "sessionID")]
        session_id: String,
        #[serde(rename = "requestID")]
        request_id: String,
    },
    #[serde(rename = "todo.updated")]
    TodoUpdated {
        #[serde(rename = "sessionID")]
        session_id: String,
        todos: Vec<Todo>,
    },
    /// A file the agent changed, as an absolute path inside OpenCode's filesystem.
    #[serde(rename = "file.edited")]
    FileEdited { file: String },
    #[serde(untagged)]
    Unknown {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        properties: Value,
    },
}

/// Every `type` that has its own variant (kept in step with the enum by a unit test).
pub const KNOWN_EVENT_TYPES: &[&str] = &[
    "server.connected",
    "server.heartbeat",
    "session.created",
    "session.updated",
    "session.deleted",
    "session.status",
    "session.idle",
    "session.error",
    "session.diff",
    "session.compacted",
    "message.updated",
    "message.removed",
    "message.part.updated",
    "message.part.delta",
    "message.part.removed",
    "permission.asked",
    "permission.replied",
    "question.asked",
    "question.replied",
    "question.rejected",
    "todo.updated",
    "file.edited",
];

impl Event {
    /// The session this event belongs to, when it belongs to one. The stream carries the
    /// events of every session of the server, so consumers filter on this.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            Self::SessionCreated(info)
            | Self::SessionUpdated(info)
            | Self::SessionDeleted(info) => Some(&info.session_id),
            Self::SessionStatus { session_id, .. }
            | Self::SessionIdle { session_id }
            | Self::SessionDiff { session_id, .. }
            | Self::SessionCompacted { session_id }
            | Self::MessageUpdated { session_id, .. }
            | Self::MessageRemoved { session_id, .. }
            | Self::MessagePartUpdated { session_id, .. }
            | Self::MessagePartDelta { session_id, .. }
            | Self::MessagePartRemoved { session_id, .. }
            | Self::PermissionReplied { session_id, .. }
            | Self::QuestionReplied { session_id, .. }
            | Self::QuestionRejected { session_id, .. }
            | Self::TodoUpdated { session_id, .. } => Some(session_id),
            Self::SessionError { session_id, .. } => session_id.as_deref(),
            Self::PermissionAsked(request) => Some(&request.session_id),
            Self::QuestionAsked(request) => Some(&request.session_id),
            Self::Unknown { properties, .. } => properties.get("sessionID").and_then(Value::as_str),
            Self::ServerConnected {} | Self::ServerHeartbeat {} | Self::FileEdited { .. } => None,
        }
    }

    /// The event's `type` string as OpenCode sent it.
    pub fn kind(&self) -> &str {
        match self {
            Self::ServerConnected {} => "server.connected",
            Self::ServerHeartbeat {} => "server.heartbeat",
            Self::SessionCreated(_) => "session.created",
            Self::SessionUpdated(_) => "session.updated",
            Self::SessionDeleted(_) => "session.deleted",
            Self::SessionStatus { .. } => "session.status",
            Self::SessionIdle { .. } => "session.idle",
            Self::SessionError { .. } => "session.error",
            Self::SessionDiff { .. } => "session.diff",
            Self::SessionCompacted { .. } => "session.compacted",
            Self::MessageUpdated { .. } => "message.updated",
            Self::MessageRemoved { .. } => "message.removed",
            Self::MessagePartUpdated { .. } => "message.part.updated",
            Self::MessagePartDelta { .. } => "message.part.delta",
            Self::MessagePartRemoved { .. } => "message.part.removed",
            Self::PermissionAsked(_) => "permission.asked",
            Self::PermissionReplied { .. } => "permission.replied",
            Self::QuestionAsked(_) => "question.asked",
            Self::QuestionReplied { .. } => "question.replied",
            Self::QuestionRejected { .. } => "question.rejected",
            Self::TodoUpdated { .. } => "todo.updated",
            Self::FileEdited { .. } => "file.edited",
            Self::Unknown { kind, .. } => kind,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    #[serde(rename = "sessionID")]
    pub session_id: String,
    pub info: Session,
}

/// The agent wants to do something its permission rules say to ask about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PermissionRequest {
    /// Answer with `OpencodeClient::reply_permission(id, …)`.
    pub id: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    /// What is asked for: `bash`, `edit`, `external_directory`, …
    pub permission: String,
    pub patterns: Vec<String>,
    pub metadata: Value,
    pub always: Vec<String>,
    pub tool: Option<PermissionTool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionTool {
    #[serde(rename = "messageID")]
    pub message_id: String,
    #[serde(rename = "callID")]
    pub call_id: String,
}

/// The agent asks the user one or more questions (its `question` tool).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuestionRequest {
    pub id: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    pub questions: Vec<Question>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Question {
    pub question: String,
    pub header: String,
    pub options: Vec<QuestionOption>,
    pub multiple: Option<bool>,
    /// Whether a free-text answer is allowed besides the options.
    pub custom: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionOption {
    pub label: String,
    pub description: Option<String>,
}
