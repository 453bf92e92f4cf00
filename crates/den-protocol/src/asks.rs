//! The person in the loop: the agent's questions, its permission asks (in a session's `ask`
//! approval mode), and their answers. An ask is part of the session's history: the event that
//! asks it, then the one that closes it (answered, or expired), so every client sees it
//! pending until then.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Who decides the agent's file edits and shell commands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalMode {
    /// They run at once: the sandbox is the boundary.
    #[default]
    Auto,
    /// Each waits for the person (reads do not).
    Ask,
}

impl ApprovalMode {
    /// The name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Ask => "ask",
        }
    }

    /// The inverse of [`ApprovalMode::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "auto" => Some(Self::Auto),
            "ask" => Some(Self::Ask),
            _ => None,
        }
    }
}

/// `PUT /api/sessions/{id}/approval-mode`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApprovalModeRequest {
    pub mode: ApprovalMode,
}

/// The agent wants to run a command or change a file and waits for the person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionAsk {
    /// Answer with `POST /api/sessions/{id}/asks/{askId}`.
    pub ask_id: String,
    /// What is asked for: `bash` (a shell command) or `edit` (a file change).
    pub permission: String,
    /// The shell command that would run.
    pub command: Option<String>,
    /// The file that would change (relative to the repository when inside it).
    pub file: Option<String>,
    /// The change, as a unified diff.
    pub diff: Option<String>,
    /// What this request covers, as OpenCode matches it.
    pub patterns: Vec<String>,
    /// What "always" would allow for the rest of the session.
    pub always: Vec<String>,
    /// When it is rejected if nobody answers.
    pub expires_at: DateTime<Utc>,
}

/// The agent asks the person one or more questions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuestionAsk {
    /// Answer with `POST /api/sessions/{id}/asks/{askId}`.
    pub ask_id: String,
    pub questions: Vec<AgentQuestion>,
    /// When it is dismissed if nobody answers.
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentQuestion {
    pub question: String,
    /// A very short label for it.
    pub header: String,
    pub options: Vec<QuestionChoice>,
    /// More than one option may be chosen.
    pub multiple: bool,
    /// A typed answer is allowed besides the options.
    pub free_text: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuestionChoice {
    pub label: String,
    pub description: Option<String>,
}

/// How an ask was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AskOutcome {
    /// Allowed this one time.
    Once,
    /// Allowed, and the same pattern from now on in this session.
    Always,
    /// Refused (the message, if any, goes to the agent).
    Rejected,
    /// The questions were answered.
    Answered,
    /// The questions were dismissed unanswered.
    Dismissed,
    /// Nobody answered in time, or den restarted while it waited: refused.
    Expired,
    /// Its turn ended first (stopped, failed or finished), so it no longer waits.
    Cancelled,
}

/// An ask was closed: by whom and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AskClosed {
    pub ask_id: String,
    pub outcome: AskOutcome,
    /// The person's username; `None` when den closed it (expiry, restart).
    pub by: Option<String>,
    /// The message sent to the agent with a rejection.
    pub message: Option<String>,
    /// The chosen labels or typed text, one list per question.
    pub answers: Option<Vec<Vec<String>>>,
}

/// `POST /api/sessions/{id}/asks/{askId}`, and the WebSocket's `answer` command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "reply", rename_all = "snake_case", deny_unknown_fields)]
pub enum AskReply {
    /// Allow this one request (permission asks). (Struct variants, so unknown fields are
    /// refused: serde ignores them beside a unit variant's tag.)
    Once {},
    /// Allow it and the same pattern for the rest of the session (permission asks).
    Always {},
    /// Refuse; `message` tells the agent why (permission asks), or dismiss the questions.
    Reject {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Answers to the questions, one list of chosen labels (or typed text) per question.
    Answer { answers: Vec<Vec<String>> },
}

/// The longest message sent to the agent with a rejection, or typed answer, in bytes.
pub const MAX_ASK_TEXT: usize = 4000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_tagged_and_refuse_unknown_fields() {
        assert_eq!(
            serde_json::from_str::<AskReply>(r#"{"reply":"once"}"#).unwrap(),
            AskReply::Once {}
        );
        assert_eq!(
            serde_json::from_str::<AskReply>(r#"{"reply":"reject","message":"no"}"#).unwrap(),
            AskReply::Reject {
                message: Some("no".into())
            }
        );
        assert!(serde_json::from_str::<AskReply>(r#"{"reply":"maybe"}"#).is_err());
        assert!(serde_json::from_str::<AskReply>(r#"{"reply":"once","x":1}"#).is_err());
    }

    #[test]
    fn approval_modes_round_trip() {
        for mode in [ApprovalMode::Auto, ApprovalMode::Ask] {
            assert_eq!(ApprovalMode::parse(mode.as_str()), Some(mode));
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
        }
        assert_eq!(ApprovalMode::parse("never"), None);
    }
}
