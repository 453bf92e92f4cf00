//! Credentials for git hosts: a person's username and token for an https host, sealed at rest.
//! The token is only ever sent in; no response carries it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `PUT /api/git-credentials/{host}`: stores (or replaces) the caller's credential for `host`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitCredentialRequest {
    /// The username the host expects with the token (GitHub accepts any, e.g. `x-access-token`).
    pub username: String,
    /// A personal access token (or password) for the host.
    pub token: String,
}

impl std::fmt::Debug for GitCredentialRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitCredentialRequest")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A stored credential, without its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitCredential {
    /// The host name, lowercase, with `:port` when not 443 (e.g. `git.example.com`).
    pub host: String,
    pub username: String,
    pub updated_at: DateTime<Utc>,
}

/// `GET /api/github`: the caller's GitHub connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GithubStatus {
    /// Whether this den has GitHub settings at all (else nothing here can be connected).
    pub available: bool,
    /// Whether den holds a GitHub token for the caller.
    pub connected: bool,
    /// The linked GitHub login.
    pub login: Option<String>,
    /// GitHub refused to renew the caller's token: connect again.
    pub needs_reconnect: bool,
}

/// `POST /api/github/connect`: where to send the browser to approve den on GitHub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GithubConnect {
    /// GitHub's authorization page; it returns to den's callback, which links the account.
    pub url: String,
}
