//! Forks of a session ("Fork", "Try N variants") and read-only share links.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::sessions::{Session, SessionStatus};

/// The most forks one request makes ("Try N variants").
pub const MAX_FORKS: u32 = 5;

/// `POST /api/sessions/{id}/fork`: new sessions from the source's last snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForkRequest {
    /// How many forks, 1 to 5 (default 1).
    #[serde(default)]
    pub count: Option<u32>,
    /// A prompt sent to every fork once it exists (the same one to each: best of N).
    #[serde(default)]
    pub prompt: Option<String>,
}

/// The forks made, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForkResponse {
    pub sessions: Vec<Session>,
}

/// `POST /api/sessions/{id}/shares`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateShareLinkRequest {
    /// When the link stops working; absent: until revoked. Must be in the future.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A share link as its owner sees it (the token itself is shown once, at creation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShareLink {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A new share link and its token. The viewer's page is `/share/<token>`; den keeps only the
/// token's hash, so this is the only time it is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedShareLink {
    pub link: ShareLink,
    pub token: String,
}

/// What a share link's viewer learns of the session besides its transcript: nothing of its
/// owner, repository or branches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SharedSession {
    pub title: String,
    pub status: SessionStatus,
    pub created_at: DateTime<Utc>,
}
