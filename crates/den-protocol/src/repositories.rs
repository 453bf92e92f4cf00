//! The repositories a person can start a session on: their GitHub repositories (own,
//! collaborator and organisation ones) and the git repositories in the local directories the
//! admin allowed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One GitHub repository the caller can reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GithubRepository {
    /// `owner/name`.
    pub full_name: String,
    /// The https URL to clone (what a session's `repository` takes).
    pub clone_url: String,
    /// The repository's page on GitHub.
    pub html_url: String,
    pub private: bool,
    pub archived: bool,
    pub default_branch: String,
    /// When something was last pushed (the list is ordered by it, newest first).
    pub pushed_at: Option<DateTime<Utc>>,
    /// Whether the caller may push to it (else a session's branch cannot be pushed back).
    pub can_push: bool,
}

/// A git repository directly inside one of the admin's local roots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalRepository {
    /// The directory's name.
    pub name: String,
    /// Its absolute path (what a session's `repository` takes).
    pub path: String,
}

/// `GET /api/repositories`: one page of the caller's repositories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryList {
    /// Whether den could ask GitHub for the caller: false when this den has no `[github]`
    /// settings or the caller never signed in with GitHub (then `github` is empty).
    pub github_connected: bool,
    /// This page of GitHub repositories, most recently pushed first.
    pub github: Vec<GithubRepository>,
    /// Local repositories matching the query; only on page 1 (they are few).
    pub local: Vec<LocalRepository>,
    /// The page after this one, when there is one.
    pub next_page: Option<u32>,
    /// The directories the admin allowed local repositories in (`repositories.local_roots`),
    /// so the page can say where a local path may point; empty when none are allowed.
    pub local_roots: Vec<String>,
}

/// `GET /api/repositories/branches?repository=`: the branches a session could start from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BranchList {
    /// The repository's default branch (what a session starts from when none is picked),
    /// when known.
    pub default_branch: Option<String>,
    /// Branch names, the default first, then by name; at most 1,000.
    pub branches: Vec<String>,
}
