//! Users, sign-in and API tokens.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A person who can sign in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub is_admin: bool,
    /// The linked GitHub login, when the user signed in with GitHub.
    pub github_login: Option<String>,
    /// True when the user has a password (false for accounts that so far sign in only by a
    /// one-time link or GitHub): settings then ask for the current one before changing it.
    pub has_password: bool,
    pub created_at: DateTime<Utc>,
}

/// `POST /api/auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// `PUT /api/auth/password`: sets or changes the caller's password.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetPasswordRequest {
    /// The password now; required when the user has one.
    #[serde(default)]
    pub current: Option<String>,
    /// At least 8 characters, at most 1024 bytes (the rules of `den user passwd`).
    pub new: String,
}

/// What the sign-in screen needs to know before anyone signs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthOptions {
    /// True when "Sign in with GitHub" is configured.
    pub github: bool,
}

/// `POST /api/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// A label for people, 1 to 100 characters.
    pub name: String,
}

/// An API token as listed: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiToken {
    pub id: Uuid,
    pub name: String,
    /// The first characters of the token (`den_abcd`), so people can tell tokens apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The answer to `POST /api/tokens`: the only time the token is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    /// Send as `Authorization: Bearer <token>`. Shown once; den keeps only its SHA-256.
    pub token: String,
    pub info: ApiToken,
}
