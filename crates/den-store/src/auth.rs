//! Sign-in state: browser sessions, one-time sign-in links, OAuth states and API tokens.
//!
//! Every token is stored as the hex SHA-256 of its value, computed by the caller: a leaked
//! database does not hand out working credentials.

use chrono::{DateTime, Utc};
use den_protocol::auth::ApiToken;
use uuid::Uuid;

use crate::{Result, Store, StoreError, now, with_pool};

/// What creating an API token needs.
pub struct NewApiToken<'a> {
    pub user_id: Uuid,
    pub name: &'a str,
    pub prefix: &'a str,
    pub token_hash: &'a str,
}

/// Who an API token belongs to, as found by its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiTokenOwner {
    pub token_id: Uuid,
    pub user_id: Uuid,
}

#[derive(sqlx::FromRow)]
struct ApiTokenRow {
    id: Uuid,
    name: String,
    prefix: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiTokenRow> for ApiToken {
    fn from(row: ApiTokenRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        }
    }
}

impl Store {
    /// Records a browser session that lasts until `expires_at`.
    pub async fn create_web_session(
        &self,
        token_hash: &str,
        user_id: Uuid,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let sql = "INSERT INTO web_sessions (token_hash, user_id, created_at, expires_at) \
                   VALUES ($1, $2, $3, $4)";
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(token_hash)
                .bind(user_id)
                .bind(now())
                .bind(expires_at)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(())
    }

    /// The user of an unexpired browser session.
    pub async fn web_session_user(&self, token_hash: &str) -> Result<Uuid> {
        let sql = "SELECT user_id FROM web_sessions WHERE token_hash = $1 AND expires_at > $2";
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar(sql)
                .bind(token_hash)
                .bind(now())
                .fetch_one(pool)
                .await
        })?)
    }

    pub async fn delete_web_session(&self, token_hash: &str) -> Result<()> {
        let sql = "DELETE FROM web_sessions WHERE token_hash = $1";
        with_pool!(self, |pool| sqlx::query(sql)
            .bind(token_hash)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// Ends every browser session of `user_id` except the one whose token hash is `keep`
    /// (a password change signs out the other browsers); returns how many ended.
    pub async fn delete_other_web_sessions(
        &self,
        user_id: Uuid,
        keep: Option<&str>,
    ) -> Result<u64> {
        let sql = "DELETE FROM web_sessions WHERE user_id = $1 AND token_hash <> $2";
        // No token hash is empty, so `""` keeps nothing.
        let keep = keep.unwrap_or_default();
        Ok(with_pool!(self, |pool| sqlx::query(sql)
            .bind(user_id)
            .bind(keep)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?)
    }

    /// Creates a one-time sign-in link for `user_id`.
    pub async fn create_login_link(
        &self,
        token_hash: &str,
        user_id: Uuid,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let sql = "INSERT INTO login_links (token_hash, user_id, created_at, expires_at) \
                   VALUES ($1, $2, $3, $4)";
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(token_hash)
                .bind(user_id)
                .bind(now())
                .bind(expires_at)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(())
    }

    /// Uses a sign-in link: returns its user if the link exists, is unexpired and unused, and
    /// marks it used in the same statement, so two concurrent uses cannot both succeed.
    pub async fn consume_login_link(&self, token_hash: &str) -> Result<Uuid> {
        let at = now();
        let sql = "UPDATE login_links SET used_at = $2 \
                   WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id";
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar(sql)
                .bind(token_hash)
                .bind(at)
                .fetch_one(pool)
                .await
        })?)
    }

    /// Remembers an OAuth `state` and its PKCE verifier until `expires_at`.
    pub async fn create_oauth_state(
        &self,
        state: &str,
        pkce_verifier: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let sql = "INSERT INTO oauth_states (state, pkce_verifier, created_at, expires_at) \
                   VALUES ($1, $2, $3, $4)";
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(state)
                .bind(pkce_verifier)
                .bind(now())
                .bind(expires_at)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(())
    }

    /// Takes (and deletes) the PKCE verifier of an unexpired OAuth `state`.
    pub async fn take_oauth_state(&self, state: &str) -> Result<String> {
        let sql = "DELETE FROM oauth_states WHERE state = $1 AND expires_at > $2 \
                   RETURNING pkce_verifier";
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar(sql)
                .bind(state)
                .bind(now())
                .fetch_one(pool)
                .await
        })?)
    }

    pub async fn create_api_token(&self, new: NewApiToken<'_>) -> Result<ApiToken> {
        let sql = "INSERT INTO api_tokens (id, user_id, name, prefix, token_hash, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6) \
                   RETURNING id, name, prefix, created_at, last_used_at";
        let row: ApiTokenRow = with_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(Uuid::now_v7())
                .bind(new.user_id)
                .bind(new.name)
                .bind(new.prefix)
                .bind(new.token_hash)
                .bind(now())
                .fetch_one(pool)
                .await
        })
        .map_err(|err| StoreError::unique(err, "that token"))?;
        Ok(row.into())
    }

    /// The owner of a token, found by its hash; records the use.
    pub async fn use_api_token(&self, token_hash: &str) -> Result<ApiTokenOwner> {
        let sql = "UPDATE api_tokens SET last_used_at = $2 WHERE token_hash = $1 \
                   RETURNING id, user_id";
        let (token_id, user_id) = with_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(token_hash)
                .bind(now())
                .fetch_one(pool)
                .await
        })?;
        Ok(ApiTokenOwner { token_id, user_id })
    }

    /// The user's tokens, newest first.
    pub async fn list_api_tokens(&self, user_id: Uuid) -> Result<Vec<ApiToken>> {
        let sql = "SELECT id, name, prefix, created_at, last_used_at FROM api_tokens \
                   WHERE user_id = $1 ORDER BY created_at DESC, id DESC";
        let rows: Vec<ApiTokenRow> = with_pool!(self, |pool| sqlx::query_as(sql)
            .bind(user_id)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(ApiToken::from).collect())
    }

    /// Revokes one of the user's tokens; [`StoreError::NotFound`] if it is not theirs.
    pub async fn delete_api_token(&self, user_id: Uuid, token_id: Uuid) -> Result<()> {
        let sql = "DELETE FROM api_tokens WHERE id = $1 AND user_id = $2";
        let done = with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(token_id)
                .bind(user_id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
