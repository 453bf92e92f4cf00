//! Sessions and the request bodies den sends. Response types read only the fields den uses;
//! they derive `Serialize` too so the contract test can check those fields against the spec.

use serde::{Deserialize, Serialize};

/// `GET /global/health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub healthy: bool,
    pub version: String,
}

/// One OpenCode conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: String,
    pub title: String,
    pub directory: String,
    #[serde(rename = "parentID")]
    pub parent_id: Option<String>,
    pub version: String,
    pub time: SessionTime,
    pub summary: Option<SessionSummary>,
    pub cost: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTime {
    pub created: u64,
    pub updated: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub additions: f64,
    pub deletions: f64,
    pub files: f64,
}

/// What a session is doing right now (`session.status` events).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SessionStatus {
    Idle,
    Busy,
    /// The provider failed and OpenCode will try again at `next` (epoch milliseconds).
    Retry {
        attempt: u64,
        message: String,
        next: u64,
    },
}

/// One changed file, as `GET /session/{id}/diff` and `session.diff` report it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileDiff {
    pub file: Option<String>,
    pub patch: Option<String>,
    pub additions: f64,
    pub deletions: f64,
    /// `added`, `deleted` or `modified`.
    pub status: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Todo {
    pub content: String,
    /// `pending`, `in_progress`, `completed` or `cancelled`.
    pub status: String,
    pub priority: String,
}

/// Body of `POST /session`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CreateSession {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Rules for this session on top of the config's `permission`; later rules win.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission: Option<Vec<PermissionRule>>,
}

/// One permission rule, e.g. ask before any `bash` command: `("bash", "*", Ask)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionRule {
    /// The permission name: `bash`, `edit`, `read`, `external_directory`, …
    pub permission: String,
    /// A glob over what the permission applies to (a command, a path); `*` for everything.
    pub pattern: String,
    pub action: PermissionAction,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PermissionAction {
    Ask,
    Allow,
    Deny,
}

/// Which configured model answers a prompt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    #[serde(rename = "providerID")]
    pub provider_id: String,
    #[serde(rename = "modelID")]
    pub model_id: String,
}

/// Body of `POST /session/{id}/prompt_async`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PromptRequest {
    /// Lets the caller know the user message id before OpenCode echoes it (must start `msg`).
    #[serde(rename = "messageID", skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub parts: Vec<PartInput>,
}

impl PromptRequest {
    /// A plain text prompt for the given model.
    pub fn text(text: impl Into<String>, model: Option<ModelRef>) -> Self {
        Self {
            message_id: None,
            model,
            agent: None,
            parts: vec![PartInput::Text { text: text.into() }],
        }
    }
}

/// An input part of a prompt; den sends only text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum PartInput {
    Text { text: String },
}

/// Answer to a `permission.asked` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PermissionReply {
    Once,
    Always,
    Reject,
}

/// Body of `POST /permission/{id}/reply`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct PermissionReplyRequest<'a> {
    pub(crate) reply: PermissionReply,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<&'a str>,
}

/// Body of `POST /question/{id}/reply`: one list of chosen labels per question, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct QuestionReplyRequest<'a> {
    pub(crate) answers: &'a [Vec<String>],
}
