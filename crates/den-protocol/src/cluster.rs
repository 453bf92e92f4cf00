//! What den nodes sharing one database send each other: a session's command forwarded to the
//! node that owns the session. Never sent to or accepted from people's clients.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::events::{ClientMessage, PromptAccepted};

/// `POST /api/internal/sessions/{id}/command`: a command another node received for a session
/// this node owns, on behalf of the session's owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForwardedCommand {
    /// The session's owner, as the receiving node checked it.
    pub owner_id: Uuid,
    pub command: ClientMessage,
    /// Who answered, for a forwarded `answer` (the username its closing event records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// What a forwarded command answered (errors come as an `ErrorBody` with their status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForwardedOutcome {
    /// Set when the command was a prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<PromptAccepted>,
}
