//! Coding sessions: a repository, a branch, a model and an agent working on them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The life of a session: `idle → starting → running ⇄ paused`, and `error` from any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Created; no sandbox yet.
    Idle,
    /// A sandbox is being created or restored.
    Starting,
    /// The sandbox runs and the agent answers.
    Running,
    /// Snapshotted and stopped; a prompt resumes it.
    Paused,
    /// Something failed; `error` says what. A prompt recovers from the last snapshot.
    Error,
}

impl SessionStatus {
    /// The name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Error => "error",
        }
    }

    /// The inverse of [`SessionStatus::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "idle" => Some(Self::Idle),
            "starting" => Some(Self::Starting),
            "running" => Some(Self::Running),
            "paused" => Some(Self::Paused),
            "error" => Some(Self::Error),
            _ => None,
        }
    }
}

/// A coding session as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: Uuid,
    pub title: String,
    /// A git URL (https) or a local path the admin allowed.
    pub repository: String,
    /// The branch the work starts from; `None` means the repository's default branch.
    pub base_branch: Option<String>,
    /// The branch the agent works on (`den/<short id>`).
    pub work_branch: String,
    /// `provider/model`, for example `opencode/gpt-5-nano`.
    pub model: String,
    pub status: SessionStatus,
    /// Why the session is in `error`; `None` otherwise.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    /// Whether the agent's file edits and shell commands wait for the person.
    #[serde(default)]
    pub approval_mode: crate::asks::ApprovalMode,
}

/// `POST /api/sessions`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSessionRequest {
    pub repository: String,
    pub title: Option<String>,
    pub model: Option<String>,
    pub base_branch: Option<String>,
    /// A first prompt: the session starts at once and runs it.
    pub prompt: Option<String>,
    /// `auto` (the default) or `ask`.
    #[serde(default)]
    pub approval_mode: Option<crate::asks::ApprovalMode>,
}

/// `PATCH /api/sessions/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateSessionRequest {
    pub title: String,
}

/// One page of `GET /api/sessions`, newest activity first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionPage {
    pub sessions: Vec<Session>,
    /// Pass as `cursor` to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// The default model: OpenCode Zen's free model, which needs no API key (`opencode/gpt-5-nano`,
/// the original product's default, is paid in OpenCode 1.18.33; see the README).
pub const DEFAULT_MODEL: &str = "opencode/big-pickle";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip_through_the_wire_and_the_database() {
        for status in [
            SessionStatus::Idle,
            SessionStatus::Starting,
            SessionStatus::Running,
            SessionStatus::Paused,
            SessionStatus::Error,
        ] {
            let wire = serde_json::to_value(status).unwrap();
            assert_eq!(wire, serde_json::Value::String(status.as_str().to_owned()));
            assert_eq!(SessionStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(SessionStatus::parse("stopped"), None);
    }

    #[test]
    fn create_request_refuses_unknown_fields() {
        let err = serde_json::from_str::<CreateSessionRequest>(r#"{"repository":"x","repo":"y"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `repo`"), "{err}");
    }
}
