//! What a session changed in its repository: `GET /api/sessions/{id}/diff`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every file the session changed against its base commit, committed or not (untracked files
/// included, ignored ones not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionDiff {
    /// The commit the session's branch started from (`None` before the session's first start).
    pub base_commit: Option<String>,
    pub files: Vec<FileChange>,
    pub summary: DiffSummary,
    /// Where the diff was computed: from the running sandbox, or (for a session without one)
    /// the one computed when its last turn ended.
    pub source: DiffSource,
    pub computed_at: DateTime<Utc>,
    /// The whole diff was too large: files past the limit are listed without their patch.
    pub truncated: bool,
}

impl SessionDiff {
    /// The diff of a session that never ran.
    pub fn unchanged(computed_at: DateTime<Utc>) -> Self {
        Self {
            base_commit: None,
            files: Vec::new(),
            summary: DiffSummary::default(),
            source: DiffSource::Unchanged,
            computed_at,
            truncated: false,
        }
    }
}

/// Totals of a diff (also sent in the `diff_changed` event).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiffSummary {
    pub files: u64,
    pub additions: u64,
    pub deletions: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiffSource {
    /// Computed now in the running sandbox.
    Live,
    /// Computed when the last turn ended (the session has no running sandbox).
    LastTurn,
    /// The session never ran: nothing changed.
    Unchanged,
}

/// One changed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileChange {
    /// The path now (for a deleted file, the path it had).
    pub path: String,
    /// The path before, for a renamed or copied file.
    pub old_path: Option<String>,
    pub status: FileStatus,
    /// Lines added (0 for a binary file).
    pub additions: u64,
    /// Lines removed (0 for a binary file).
    pub deletions: u64,
    pub binary: bool,
    /// The unified diff of this file (git's format, 3 lines of context); empty for a binary
    /// file or one whose patch did not fit.
    pub patch: String,
    /// The patch was cut (at a line boundary) because it was too large.
    pub patch_truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    Added,
    Modified,
    Deleted,
    Renamed,
    Copied,
    /// Became a symlink, or stopped being one.
    TypeChanged,
}

/// `POST /api/sessions/{id}/push`: commits what is uncommitted, then pushes the session's
/// branch.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PushRequest {
    /// The commit message for uncommitted work (default: the session's title).
    pub message: Option<String>,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushResult {
    /// The branch pushed (the session's `workBranch`).
    pub branch: String,
    /// The commit the branch now points at on the remote.
    pub commit: String,
    /// Whether uncommitted work was committed first.
    pub committed: bool,
}

/// `POST /api/sessions/{id}/pull-request`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PullRequestRequest {
    /// Default: the session's title.
    pub title: Option<String>,
    pub body: Option<String>,
    /// Open it as a draft.
    #[serde(default)]
    pub draft: bool,
}

/// The session's pull request, as GitHub has it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PullRequest {
    pub number: u64,
    /// The page on GitHub.
    pub url: String,
    pub state: PullRequestState,
    pub draft: bool,
    /// Whether this call opened it (false: it existed already).
    pub created: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PullRequestState {
    Open,
    Closed,
    Merged,
}
