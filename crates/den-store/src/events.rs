//! The per-session event log: the source of truth for a session's history.
//!
//! The session actor appends each event with the next sequence number before anyone sees it; a
//! client that reconnects asks for the events after the last number it has. The primary key
//! (session id, sequence) makes a duplicate number impossible, even across restarts.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{Result, Store, StoreError, with_pool};

/// One stored event.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredEvent {
    pub seq: i64,
    pub kind: String,
    pub payload: Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Appends an event with sequence number `seq`; [`StoreError::Conflict`] if that number is
    /// taken, which means two writers: a bug the caller must hear about.
    pub async fn append_event(
        &self,
        session_id: Uuid,
        seq: i64,
        kind: &str,
        payload: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let sql = "INSERT INTO session_events (session_id, seq, kind, payload, created_at) \
                   VALUES ($1, $2, $3, $4, $5)";
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(session_id)
                .bind(seq)
                .bind(kind)
                .bind(Json(payload))
                .bind(at)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(|err| StoreError::unique(err, "an event with that sequence number"))?;
        Ok(())
    }

    /// Appends an event under the session's next sequence number, chosen by the insert itself
    /// (nothing cached outside the database that a second writer could collide with), and
    /// returns that number. Two writers racing for the same number make one insert fail on the
    /// primary key ([`StoreError::Conflict`]); the caller may simply try again.
    pub async fn append_next_event(
        &self,
        session_id: Uuid,
        kind: &str,
        payload: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<i64> {
        let sql = "INSERT INTO session_events (session_id, seq, kind, payload, created_at) \
                   SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4 FROM session_events \
                   WHERE session_id = $1 RETURNING seq";
        with_pool!(self, |pool| {
            sqlx::query_scalar(sql)
                .bind(session_id)
                .bind(kind)
                .bind(Json(payload))
                .bind(at)
                .fetch_one(pool)
                .await
        })
        .map_err(|err| StoreError::unique(err, "an event with that sequence number"))
    }

    /// Up to `limit` events with a sequence number above `after`, in order.
    pub async fn events_after(
        &self,
        session_id: Uuid,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        let sql = "SELECT seq, kind, payload, created_at FROM session_events \
                   WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(session_id)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        })?)
    }

    /// The highest sequence number of the session, 0 when it has no events.
    pub async fn last_event_seq(&self, session_id: Uuid) -> Result<i64> {
        let sql = "SELECT COALESCE(MAX(seq), 0) FROM session_events WHERE session_id = $1";
        let seq: Option<i64> = with_pool!(self, |pool| sqlx::query_scalar(sql)
            .bind(session_id)
            .fetch_one(pool)
            .await)?;
        Ok(seq.unwrap_or(0))
    }
}

impl Store {
    /// Like [`Store::append_next_event`], made only while `fence` still holds the session's
    /// lease (checked in the same statement, see `leases`); [`StoreError::Fenced`] otherwise.
    /// The event records the epoch that wrote it.
    pub async fn append_next_event_fenced(
        &self,
        session_id: Uuid,
        fence: &crate::Fence,
        kind: &str,
        payload: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<i64> {
        let check = crate::leases::fence_check(&self.backend, "$1", "$2", "$3");
        let sql = format!(
            "INSERT INTO session_events (session_id, seq, epoch, kind, payload, created_at) \
             SELECT $1, next.seq, $3, $4, $5, $6 FROM \
             (SELECT COALESCE(MAX(seq), 0) + 1 AS seq FROM session_events WHERE session_id = $1) \
             AS next WHERE {check} RETURNING seq"
        );
        let seq: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
                .bind(session_id)
                .bind(&fence.node)
                .bind(fence.epoch)
                .bind(kind)
                .bind(Json(payload))
                .bind(at)
                .fetch_optional(pool)
                .await
        })
        .map_err(|err| StoreError::unique(err, "an event with that sequence number"))?;
        seq.ok_or(StoreError::Fenced)
    }
}
