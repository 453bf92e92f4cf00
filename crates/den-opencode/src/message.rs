//! Messages and their parts, as `GET /session/{id}/message` and the message events carry them.
//!
//! Part and message kinds den does not model land in an `Other` variant with the raw JSON, so
//! a newer OpenCode never makes a whole message unreadable.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::session::ModelRef;

/// One entry of `GET /session/{id}/message`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageWithParts {
    pub info: Message,
    pub parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Message {
    User(UserMessage),
    Assistant(AssistantMessage),
    #[serde(untagged)]
    Other(Value),
}

impl Message {
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::User(message) => Some(&message.id),
            Self::Assistant(message) => Some(&message.id),
            Self::Other(value) => value.get("id").and_then(Value::as_str),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserMessage {
    pub id: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    pub time: UserMessageTime,
    pub agent: Option<String>,
    pub model: Option<ModelRef>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserMessageTime {
    pub created: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssistantMessage {
    pub id: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    /// The user message this reply answers.
    #[serde(rename = "parentID")]
    pub parent_id: String,
    pub time: AssistantMessageTime,
    pub error: Option<MessageError>,
    #[serde(rename = "modelID")]
    pub model_id: String,
    #[serde(rename = "providerID")]
    pub provider_id: String,
    pub cost: f64,
    pub tokens: Tokens,
    /// Why the model stopped: `stop`, `tool-calls`, `length`, … (absent while streaming).
    pub finish: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssistantMessageTime {
    pub created: u64,
    pub completed: Option<u64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tokens {
    pub input: f64,
    pub output: f64,
    pub reasoning: f64,
    pub cache: CacheTokens,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheTokens {
    pub read: f64,
    pub write: f64,
}

/// OpenCode's error objects (`ProviderAuthError`, `APIError`, `MessageAbortedError`, …) all
/// share `{name, data: {message, …}}`; den keeps the name and the raw data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageError {
    pub name: String,
    #[serde(default)]
    pub data: Value,
}

impl MessageError {
    pub fn message(&self) -> Option<&str> {
        self.data.get("message").and_then(Value::as_str)
    }

    /// True for the error OpenCode records when a turn was aborted on request.
    pub fn is_aborted(&self) -> bool {
        self.name == "MessageAbortedError"
    }
}

/// A piece of a message. `message.part.updated` always carries the whole part; streaming text
/// arrives separately as `message.part.delta`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Part {
    Text(TextPart),
    Reasoning(ReasoningPart),
    Tool(ToolPart),
    StepStart(PartIds),
    StepFinish(StepFinishPart),
    Patch(PatchPart),
    #[serde(untagged)]
    Other(Value),
}

impl Part {
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::Text(part) => Some(&part.id),
            Self::Reasoning(part) => Some(&part.id),
            Self::Tool(part) => Some(&part.id),
            Self::StepStart(part) => Some(&part.id),
            Self::StepFinish(part) => Some(&part.id),
            Self::Patch(part) => Some(&part.id),
            Self::Other(value) => value.get("id").and_then(Value::as_str),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartIds {
    pub id: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    #[serde(rename = "messageID")]
    pub message_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextPart {
    pub id: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    #[serde(rename = "messageID")]
    pub message_id: String,
    /// The full text so far (not a delta).
    pub text: String,
    /// Set on text OpenCode added itself rather than the user or the model.
    pub synthetic: Option<bool>,
}

/// The model's visible thinking; streams through `message.part.delta` like text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasoningPart {
    pub id: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    #[serde(rename = "messageID")]
    pub message_id: String,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolPart {
    pub id: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    #[serde(rename = "messageID")]
    pub message_id: String,
    #[serde(rename = "callID")]
    pub call_id: String,
    /// The tool's name: `write`, `edit`, `bash`, `read`, `todowrite`, …
    pub tool: String,
    pub state: ToolState,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum ToolState {
    Pending {
        input: Value,
    },
    Running {
        input: Value,
        title: Option<String>,
    },
    Completed {
        input: Value,
        output: String,
        title: String,
        metadata: Value,
        time: ToolTime,
    },
    /// A failed tool carries its message in `error`, not in `output`.
    Error {
        input: Value,
        error: String,
        time: ToolTime,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolTime {
    pub start: u64,
    pub end: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepFinishPart {
    pub id: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    #[serde(rename = "messageID")]
    pub message_id: String,
    pub reason: String,
    pub cost: f64,
    pub tokens: Tokens,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchPart {
    pub id: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    #[serde(rename = "messageID")]
    pub message_id: String,
    pub hash: String,
    /// Absolute paths of the files this step changed.
    pub files: Vec<String>,
}
