//! The `sessions` table: coding sessions and their lifecycle fields.
//!
//! Every read and write that a user can cause takes the owner's id and filters on it, so a
//! session of another user is indistinguishable from a missing one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use den_protocol::asks::ApprovalMode;
use den_protocol::sessions::{Session, SessionStatus};
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use crate::{Result, Store, StoreError, now, with_pool};

/// What creating a session needs.
pub struct NewSession<'a> {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub title: &'a str,
    pub repository: &'a str,
    pub base_branch: Option<&'a str>,
    pub work_branch: &'a str,
    pub model: &'a str,
}

/// A session row, including the fields only den itself uses.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRecord {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub title: String,
    pub repository: String,
    pub base_branch: Option<String>,
    pub work_branch: String,
    pub model: String,
    pub status: String,
    pub error: Option<String>,
    /// The OpenCode conversation this session continues across pauses.
    pub agent_session_id: Option<String>,
    /// The artifact of the last snapshot.
    pub snapshot_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    /// `auto` or `ask` (see [`ApprovalMode`]).
    pub approval_mode: String,
}

impl SessionRecord {
    pub fn status(&self) -> Result<SessionStatus> {
        SessionStatus::parse(&self.status)
            .ok_or_else(|| StoreError::Corrupt(format!("session status {:?}", self.status)))
    }

    /// Whether file edits and shell commands wait for the person.
    pub fn approval_mode(&self) -> Result<ApprovalMode> {
        ApprovalMode::parse(&self.approval_mode).ok_or_else(|| {
            StoreError::Corrupt(format!("session approval mode {:?}", self.approval_mode))
        })
    }

    /// The session as its owner sees it.
    pub fn to_protocol(&self) -> Result<Session> {
        Ok(Session {
            id: self.id,
            title: self.title.clone(),
            repository: self.repository.clone(),
            base_branch: self.base_branch.clone(),
            work_branch: self.work_branch.clone(),
            model: self.model.clone(),
            status: self.status()?,
            error: self.error.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_activity_at: self.last_activity_at,
            approval_mode: self.approval_mode()?,
        })
    }
}

/// A position in the newest-activity-first listing: the last row of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCursor {
    pub last_activity_at: DateTime<Utc>,
    pub id: Uuid,
}

impl SessionCursor {
    /// An opaque string for clients.
    pub fn encode(&self) -> String {
        let text = format!("{}|{}", self.last_activity_at.to_rfc3339(), self.id);
        URL_SAFE_NO_PAD.encode(text)
    }

    /// The inverse of [`SessionCursor::encode`]; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (at, id) = text.split_once('|')?;
        Some(Self {
            last_activity_at: DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc),
            id: id.parse().ok()?,
        })
    }
}

const SESSION_COLUMNS: &str = "id, owner_id, title, repository, base_branch, work_branch, model, \
     status, error, agent_session_id, snapshot_id, created_at, updated_at, last_activity_at, \
     approval_mode";

impl Store {
    /// Creates a session in `idle`.
    pub async fn create_session(&self, new: NewSession<'_>) -> Result<SessionRecord> {
        let at = now();
        let sql = format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, NULL, $9, $9, $9, 'auto') \
             RETURNING {SESSION_COLUMNS}"
        );
        with_pool!(self, |pool| {
            sqlx::query_as(AssertSqlSafe(sql.clone()))
                .bind(new.id)
                .bind(new.owner_id)
                .bind(new.title)
                .bind(new.repository)
                .bind(new.base_branch)
                .bind(new.work_branch)
                .bind(new.model)
                .bind(SessionStatus::Idle.as_str())
                .bind(at)
                .fetch_one(pool)
                .await
        })
        .map_err(|err| StoreError::unique(err, "a session with that id"))
    }

    /// The owner's session; [`StoreError::NotFound`] if missing or someone else's.
    pub async fn session_of(&self, owner_id: Uuid, id: Uuid) -> Result<SessionRecord> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1 AND owner_id = $2");
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(AssertSqlSafe(sql.clone()))
                .bind(id)
                .bind(owner_id)
                .fetch_one(pool)
                .await
        })?)
    }

    /// A session by id alone, for den's own use (session actors, restart recovery).
    pub async fn session(&self, id: Uuid) -> Result<SessionRecord> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1");
        Ok(with_pool!(self, |pool| sqlx::query_as(AssertSqlSafe(
            sql.clone()
        ))
        .bind(id)
        .fetch_one(pool)
        .await)?)
    }

    /// One page of the owner's sessions, newest activity first, after `cursor`.
    pub async fn list_sessions(
        &self,
        owner_id: Uuid,
        cursor: Option<SessionCursor>,
        limit: u32,
    ) -> Result<Vec<SessionRecord>> {
        let limit = i64::from(limit);
        match cursor {
            None => {
                let sql = format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE owner_id = $1 \
                     ORDER BY last_activity_at DESC, id DESC LIMIT $2"
                );
                Ok(with_pool!(self, |pool| {
                    sqlx::query_as(AssertSqlSafe(sql.clone()))
                        .bind(owner_id)
                        .bind(limit)
                        .fetch_all(pool)
                        .await
                })?)
            }
            Some(cursor) => {
                let sql = format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE owner_id = $1 \
                     AND (last_activity_at < $2 OR (last_activity_at = $2 AND id < $3)) \
                     ORDER BY last_activity_at DESC, id DESC LIMIT $4"
                );
                Ok(with_pool!(self, |pool| {
                    sqlx::query_as(AssertSqlSafe(sql.clone()))
                        .bind(owner_id)
                        .bind(cursor.last_activity_at)
                        .bind(cursor.id)
                        .bind(limit)
                        .fetch_all(pool)
                        .await
                })?)
            }
        }
    }

    /// Sessions in any of `statuses`, filtered by the database.
    pub async fn sessions_with_status(
        &self,
        statuses: &[SessionStatus],
    ) -> Result<Vec<SessionRecord>> {
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders = (1..=statuses.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE status IN ({placeholders}) \
             ORDER BY created_at"
        );
        Ok(with_pool!(self, |pool| {
            let mut query = sqlx::query_as(AssertSqlSafe(sql.clone()));
            for status in statuses {
                query = query.bind(status.as_str());
            }
            query.fetch_all(pool).await
        })?)
    }

    /// Starting or running sessions that `runner` was running, or that no runner claimed:
    /// after a restart, those lost their sandbox with the previous process. Sessions another
    /// den runs are not among them.
    pub async fn sessions_to_recover(&self, runner: &str) -> Result<Vec<SessionRecord>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions \
             WHERE status IN ('starting', 'running') AND (runner IS NULL OR runner = $1) \
             ORDER BY created_at"
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(AssertSqlSafe(sql.clone()))
                .bind(runner)
                .fetch_all(pool)
                .await
        })?)
    }

    /// Sessions whose snapshot is recorded as a host path (a `/` in it), as den recorded them
    /// before snapshots went through the artifact store; artifact keys never hold a `/`.
    pub async fn sessions_with_host_path_snapshots(&self) -> Result<Vec<SessionRecord>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE snapshot_id LIKE '%/%' ORDER BY created_at"
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(AssertSqlSafe(sql.clone()))
                .fetch_all(pool)
                .await
        })?)
    }

    /// Records that `runner` (a den instance) starts the session's sandbox.
    pub async fn set_session_runner(&self, id: Uuid, runner: &str) -> Result<()> {
        let sql = "UPDATE sessions SET runner = $2 WHERE id = $1";
        let done = with_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(runner)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Renames the owner's session.
    /// Sets the model the session's next turns use (the model gateway reads it per request).
    pub async fn set_session_model(
        &self,
        owner_id: Uuid,
        id: Uuid,
        model: &str,
    ) -> Result<SessionRecord> {
        let sql = format!(
            "UPDATE sessions SET model = $3, updated_at = $4 WHERE id = $1 AND owner_id = $2 \
             RETURNING {SESSION_COLUMNS}"
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(AssertSqlSafe(sql.clone()))
                .bind(id)
                .bind(owner_id)
                .bind(model)
                .bind(now())
                .fetch_one(pool)
                .await
        })?)
    }

    pub async fn rename_session(
        &self,
        owner_id: Uuid,
        id: Uuid,
        title: &str,
    ) -> Result<SessionRecord> {
        let sql = format!(
            "UPDATE sessions SET title = $3, updated_at = $4 WHERE id = $1 AND owner_id = $2 \
             RETURNING {SESSION_COLUMNS}"
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(AssertSqlSafe(sql.clone()))
                .bind(id)
                .bind(owner_id)
                .bind(title)
                .bind(now())
                .fetch_one(pool)
                .await
        })?)
    }

    /// Sets the owner's session's approval mode.
    pub async fn set_session_approval_mode(
        &self,
        owner_id: Uuid,
        id: Uuid,
        mode: ApprovalMode,
    ) -> Result<SessionRecord> {
        let sql = format!(
            "UPDATE sessions SET approval_mode = $3, updated_at = $4 \
             WHERE id = $1 AND owner_id = $2 RETURNING {SESSION_COLUMNS}"
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(AssertSqlSafe(sql.clone()))
                .bind(id)
                .bind(owner_id)
                .bind(mode.as_str())
                .bind(now())
                .fetch_one(pool)
                .await
        })?)
    }

    /// Sets the status and error reason (the session actor is the only caller).
    pub async fn set_session_status(
        &self,
        id: Uuid,
        status: SessionStatus,
        error: Option<&str>,
    ) -> Result<SessionRecord> {
        let at = now();
        let sql = format!(
            "UPDATE sessions SET status = $2, error = $3, updated_at = $4, last_activity_at = $4 \
             WHERE id = $1 RETURNING {SESSION_COLUMNS}"
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(AssertSqlSafe(sql.clone()))
                .bind(id)
                .bind(status.as_str())
                .bind(error)
                .bind(at)
                .fetch_one(pool)
                .await
        })?)
    }

    /// Records the OpenCode conversation and the last snapshot (the session actor's bookkeeping).
    pub async fn set_session_agent_state(
        &self,
        id: Uuid,
        agent_session_id: Option<&str>,
        snapshot_id: Option<&str>,
    ) -> Result<()> {
        let sql = "UPDATE sessions SET agent_session_id = $2, snapshot_id = $3, updated_at = $4 \
                   WHERE id = $1";
        let done = with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(id)
                .bind(agent_session_id)
                .bind(snapshot_id)
                .bind(now())
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Every snapshot key a session record points at (all owners): what the object storage
    /// sweeper must keep. Not user-reachable.
    pub async fn recorded_snapshot_ids(&self) -> Result<Vec<String>> {
        let sql = "SELECT snapshot_id FROM sessions WHERE snapshot_id IS NOT NULL";
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar(sql).fetch_all(pool).await
        })?)
    }

    /// Marks activity now, which moves the session to the top of its owner's list.
    pub async fn touch_session(&self, id: Uuid) -> Result<()> {
        let sql = "UPDATE sessions SET last_activity_at = $2 WHERE id = $1";
        with_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(now())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// Deletes the owner's session and, by cascade, its events.
    pub async fn delete_session(&self, owner_id: Uuid, id: Uuid) -> Result<()> {
        let sql = "DELETE FROM sessions WHERE id = $1 AND owner_id = $2";
        let done = with_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(owner_id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

impl Store {
    /// Records the hash of the token the session's sandbox uses at den's model gateway.
    pub async fn set_gateway_token(&self, id: Uuid, token_hash: &str) -> Result<()> {
        let sql = "UPDATE sessions SET gateway_token_hash = $2 WHERE id = $1";
        let done = with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(id)
                .bind(token_hash)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The session whose sandbox holds the gateway token with this hash.
    pub async fn session_by_gateway_token(&self, token_hash: &str) -> Result<SessionRecord> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE gateway_token_hash = $1");
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(AssertSqlSafe(sql.clone()))
                .bind(token_hash)
                .fetch_one(pool)
                .await
        })?)
    }
}

/// The writes of a session's actor, each made only while its [`crate::Fence`] still holds the
/// session's lease (see `leases`); [`StoreError::Fenced`] otherwise.
impl Store {
    /// Sets the status and error reason.
    pub async fn set_session_status_fenced(
        &self,
        id: Uuid,
        fence: &crate::Fence,
        status: SessionStatus,
        error: Option<&str>,
    ) -> Result<SessionRecord> {
        let at = now();
        let check = crate::leases::fence_check(&self.backend, "$1", "$5", "$6");
        let sql = format!(
            "UPDATE sessions SET status = $2, error = $3, updated_at = $4, last_activity_at = $4 \
             WHERE id = $1 AND {check} RETURNING {SESSION_COLUMNS}"
        );
        let record = with_pool!(self, |pool| {
            sqlx::query_as(AssertSqlSafe(sql.clone()))
                .bind(id)
                .bind(status.as_str())
                .bind(error)
                .bind(at)
                .bind(&fence.node)
                .bind(fence.epoch)
                .fetch_optional(pool)
                .await
        })?;
        record.ok_or(StoreError::Fenced)
    }

    /// Records the OpenCode conversation and the last snapshot.
    pub async fn set_session_agent_state_fenced(
        &self,
        id: Uuid,
        fence: &crate::Fence,
        agent_session_id: Option<&str>,
        snapshot_id: Option<&str>,
    ) -> Result<()> {
        let check = crate::leases::fence_check(&self.backend, "$1", "$5", "$6");
        let sql = format!(
            "UPDATE sessions SET agent_session_id = $2, snapshot_id = $3, updated_at = $4 \
             WHERE id = $1 AND {check}"
        );
        let done = with_pool!(self, |pool| {
            sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(id)
                .bind(agent_session_id)
                .bind(snapshot_id)
                .bind(now())
                .bind(&fence.node)
                .bind(fence.epoch)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        if done == 0 {
            return Err(StoreError::Fenced);
        }
        Ok(())
    }
}
