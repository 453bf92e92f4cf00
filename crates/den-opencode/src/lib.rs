//! A typed async client for the pinned OpenCode server ([`PINNED_VERSION`]): the endpoints den calls and
//! the `/event` stream as typed events.
//!
//! It knows nothing of den (no users, no den sessions, no wire protocol): den's session actor
//! maps these types onto its own. It reaches OpenCode over TCP or over a unix socket (how den
//! talks to OpenCode inside a sandbox), with optional basic auth.
//!
//! Layout:
//! - `config`: where the server is and the timeouts ([`OpencodeConfig`], [`Target`]).
//! - `endpoints`: the single table of (method, path) the client calls; the contract test checks
//!   it against `openapi/openapi-<PINNED_VERSION>.json` (vendored; see
//!   `openapi/README.md`).
//! - `client`: [`OpencodeClient`] and its calls.
//! - `sse`: [`EventStream`], the reconnecting event stream.
//! - `event`, `message`, `session`: serde types.
//! - `error`: [`OpencodeError`].

mod client;
mod config;
mod endpoints;
mod error;
mod event;
mod event_size;
mod message;
mod session;
mod sse;

#[cfg(test)]
mod contract_tests;

pub use client::OpencodeClient;

/// The OpenCode version den pins (npm package `opencode-ai`): the one place it is written.
/// Everything else reads it from here: den's crates through this constant, `den doctor
/// --print-opencode-version` prints it, and the scripts (which may run before den is built)
/// read this line through `scripts/opencode-version`; keep it on one line in this form.
pub const PINNED_VERSION: &str = "1.18.33";
pub use config::{OpencodeConfig, Target};
pub use error::{OpencodeError, Result};
pub use event::{
    Event, EventEnvelope, KNOWN_EVENT_TYPES, PermissionRequest, PermissionTool, Question,
    QuestionOption, QuestionRequest, SessionInfo,
};
pub use message::{
    AssistantMessage, AssistantMessageTime, CacheTokens, Message, MessageError, MessageWithParts,
    Part, PartIds, PatchPart, ReasoningPart, StepFinishPart, TextPart, Tokens, ToolPart, ToolState,
    ToolTime, UserMessage, UserMessageTime,
};
pub use session::{
    CreateSession, FileDiff, Health, ModelRef, PartInput, PermissionAction, PermissionReply,
    PermissionRule, PromptRequest, Session, SessionStatus, SessionSummary, SessionTime, Todo,
};
pub use sse::EventStream;
