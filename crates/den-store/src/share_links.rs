//! The `share_links` table: read-only links to a session's transcript, and the event copy a
//! fork starts with.
//!
//! A link's token is stored only as its SHA-256 (hex, computed by the caller). The owner's
//! queries filter by owner; a viewer's lookup by hash finds only a link that is neither revoked
//! nor expired, so such a link is indistinguishable from one that never existed.

use chrono::{DateTime, Utc};
use den_protocol::sharing::ShareLink;
use uuid::Uuid;

use crate::{Result, Store, StoreError, now, with_pool};

/// What creating a share link needs.
pub struct NewShareLink<'a> {
    pub id: Uuid,
    pub session_id: Uuid,
    pub owner_id: Uuid,
    pub token_hash: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A share link row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ShareLinkRecord {
    pub id: Uuid,
    pub session_id: Uuid,
    pub owner_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ShareLinkRecord {
    pub fn to_protocol(&self) -> ShareLink {
        ShareLink {
            id: self.id,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
        }
    }
}

const COLUMNS: &str = "id, session_id, owner_id, created_at, expires_at, revoked_at";

impl Store {
    /// Records a share link of the owner's session; [`StoreError::NotFound`] if the session is
    /// missing or someone else's.
    pub async fn create_share_link(&self, new: NewShareLink<'_>) -> Result<ShareLinkRecord> {
        // The insert takes the session only if the owner owns it.
        let sql = format!(
            "INSERT INTO share_links (id, session_id, owner_id, token_hash, created_at, expires_at) \
             SELECT $1, id, owner_id, $4, $5, $6 FROM sessions WHERE id = $2 AND owner_id = $3 \
             RETURNING {COLUMNS}"
        );
        let created: Option<ShareLinkRecord> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(new.id)
                .bind(new.session_id)
                .bind(new.owner_id)
                .bind(new.token_hash)
                .bind(now())
                .bind(new.expires_at)
                .fetch_optional(pool)
                .await
        })
        .map_err(|err| StoreError::unique(err, "a share link with that token"))?;
        created.ok_or(StoreError::NotFound)
    }

    /// The owner's links of one session, newest first (revoked and expired ones included).
    pub async fn share_links_of(
        &self,
        owner_id: Uuid,
        session_id: Uuid,
    ) -> Result<Vec<ShareLinkRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM share_links WHERE session_id = $1 AND owner_id = $2 \
             ORDER BY created_at DESC, id DESC"
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(session_id)
                .bind(owner_id)
                .fetch_all(pool)
                .await
        })?)
    }

    /// Revokes one of the owner's links (revoking it again changes nothing);
    /// [`StoreError::NotFound`] if there is no such link of that session and owner.
    pub async fn revoke_share_link(
        &self,
        owner_id: Uuid,
        session_id: Uuid,
        id: Uuid,
    ) -> Result<()> {
        let sql = "UPDATE share_links SET revoked_at = COALESCE(revoked_at, $4) \
                   WHERE id = $1 AND session_id = $2 AND owner_id = $3";
        let done = with_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(session_id)
            .bind(owner_id)
            .bind(now())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The link with this token hash if it still works (not revoked, not expired).
    pub async fn live_share_link(&self, token_hash: &str) -> Result<ShareLinkRecord> {
        let sql = format!(
            "SELECT {COLUMNS} FROM share_links WHERE token_hash = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2)"
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(token_hash)
                .bind(now())
                .fetch_one(pool)
                .await
        })?)
    }

    /// Copies the source session's events up to `up_to` (inclusive) into `target`, under the
    /// same sequence numbers: a fork starts with its source's history. `target` must have no
    /// events yet.
    pub async fn copy_events(&self, source: Uuid, target: Uuid, up_to: i64) -> Result<u64> {
        let sql = "INSERT INTO session_events (session_id, seq, kind, payload, created_at) \
                   SELECT $2, seq, kind, payload, created_at FROM session_events \
                   WHERE session_id = $1 AND seq <= $3";
        with_pool!(self, |pool| sqlx::query(sql)
            .bind(source)
            .bind(target)
            .bind(up_to)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
        .map_err(|err| StoreError::unique(err, "an event with that sequence number"))
    }

    /// The sequence number of the session's last `turn_finished` event (0 without one).
    pub async fn last_finished_turn_seq(&self, session_id: Uuid) -> Result<i64> {
        let sql = "SELECT COALESCE(MAX(seq), 0) FROM session_events \
                   WHERE session_id = $1 AND kind = 'turn_finished'";
        let seq: Option<i64> = with_pool!(self, |pool| sqlx::query_scalar(sql)
            .bind(session_id)
            .fetch_one(pool)
            .await)?;
        Ok(seq.unwrap_or(0))
    }
}
