//! Nodes and session leases: which den node owns a session's actor, with a fencing epoch.
//!
//! Several den nodes may share one PostgreSQL database. A session's actor runs on at most one
//! of them: the holder of the session's lease. A lease has an expiry (renewed by the owner's
//! heartbeat) and an epoch that grows by one on every acquisition. Every write of the actor
//! (event append, status, snapshot record, queue) names the epoch it holds and is made only if
//! the lease still carries that epoch, checked in the same statement under `FOR SHARE` on
//! PostgreSQL: a steal (an `UPDATE` of the lease row) waits for a write in flight, and a write
//! after the steal finds no row. So a node that was paused or cut off past its lease can never
//! append an event or change a status once another node took over, whatever the clocks say.
//! `FOR KEY SHARE` would not do: a non-key `UPDATE` does not wait for it.
//!
//! Expiry times are on the database's clock (milliseconds since the epoch), so nodes with
//! skewed clocks agree on what expired. SQLite (one node) runs the same rules: its writes are
//! serialised anyway, so it needs no row lock.
//!
//! No advisory locks: they vanish with a connection while the node keeps running, pin a
//! connection per session, and carry no token to fence writes with.

use std::time::Duration;

use uuid::Uuid;

use crate::{Backend, Result, Store, with_pool};

/// The right to write a session's state: the node and the lease epoch it acquired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub node: String,
    pub epoch: i64,
}

/// What acquiring a lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// This node owns the session now, under the returned fence.
    Acquired(Fence),
    /// Another node holds an unexpired lease.
    Held {
        owner: String,
        /// Where that node takes forwarded commands (`None`: it has not registered).
        internal_url: Option<String>,
    },
}

/// A session's lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub owner_node: Option<String>,
    pub epoch: i64,
    /// Whether it expired by the database's clock.
    pub expired: bool,
}

/// A registered node.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NodeRecord {
    pub node_id: String,
    pub internal_url: String,
    pub heartbeat_at_ms: i64,
    pub draining: bool,
}

/// The database's clock in milliseconds since the Unix epoch, as an SQL expression.
fn db_now_ms(backend: &Backend) -> &'static str {
    match backend {
        Backend::Sqlite(_) => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
        Backend::Postgres(_) => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    }
}

/// `EXISTS (…)` true while the lease of `$session` still carries `$node`'s `$epoch`, holding
/// the lease row under `FOR SHARE` on PostgreSQL until the statement's transaction ends.
pub(crate) fn fence_check(backend: &Backend, session: &str, node: &str, epoch: &str) -> String {
    let lock = match backend {
        Backend::Sqlite(_) => "",
        Backend::Postgres(_) => " FOR SHARE",
    };
    format!(
        "EXISTS (SELECT 1 FROM session_leases WHERE session_id = {session} \
         AND owner_node = {node} AND epoch = {epoch}{lock})"
    )
}

fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Registers (or re-registers after a restart) this node and its internal address.
    pub async fn register_node(&self, node_id: &str, internal_url: &str) -> Result<()> {
        let now = db_now_ms(&self.backend);
        let sql = format!(
            "INSERT INTO den_nodes (node_id, internal_url, started_at_ms, heartbeat_at_ms, draining) \
             VALUES ($1, $2, {now}, {now}, FALSE) ON CONFLICT (node_id) DO UPDATE SET \
             internal_url = EXCLUDED.internal_url, started_at_ms = EXCLUDED.started_at_ms, \
             heartbeat_at_ms = EXCLUDED.heartbeat_at_ms, draining = FALSE"
        );
        with_pool!(self, |pool| sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(node_id)
            .bind(internal_url)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// The node's heartbeat: marks it alive and renews every lease it holds by `ttl`, in one
    /// transaction. Returns the sessions and epochs it still holds: an actor whose lease is
    /// not among them lost it.
    pub async fn heartbeat(&self, node_id: &str, ttl: Duration) -> Result<Vec<(Uuid, i64)>> {
        let now = db_now_ms(&self.backend);
        let beat = format!("UPDATE den_nodes SET heartbeat_at_ms = {now} WHERE node_id = $1");
        let renew = format!(
            "UPDATE session_leases SET expires_at_ms = {now} + $2 WHERE owner_node = $1 \
             RETURNING session_id, epoch"
        );
        with_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            sqlx::query(sqlx::AssertSqlSafe(beat.clone()))
                .bind(node_id)
                .execute(&mut *tx)
                .await?;
            let held: Vec<(Uuid, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(renew.clone()))
                .bind(node_id)
                .bind(millis(ttl))
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(held)
        }
        .await)
        .map_err(Into::into)
    }

    /// Marks the node as draining (it stops taking sessions) or not.
    pub async fn set_node_draining(&self, node_id: &str, draining: bool) -> Result<()> {
        let sql = "UPDATE den_nodes SET draining = $2 WHERE node_id = $1";
        with_pool!(self, |pool| sqlx::query(sql)
            .bind(node_id)
            .bind(draining)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// Removes the node's registration (it stopped).
    pub async fn remove_node(&self, node_id: &str) -> Result<()> {
        let sql = "DELETE FROM den_nodes WHERE node_id = $1";
        with_pool!(self, |pool| sqlx::query(sql)
            .bind(node_id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// The nodes that heartbeat within `alive_within` and are not draining.
    pub async fn live_nodes(&self, alive_within: Duration) -> Result<Vec<NodeRecord>> {
        let now = db_now_ms(&self.backend);
        let sql = format!(
            "SELECT node_id, internal_url, heartbeat_at_ms, draining FROM den_nodes \
             WHERE heartbeat_at_ms > {now} - $1 AND NOT draining ORDER BY node_id"
        );
        Ok(with_pool!(self, |pool| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(millis(alive_within))
        .fetch_all(pool)
        .await)?)
    }

    /// Acquires the session's lease for `node` for `ttl`: when nobody holds it, its holder
    /// released it or let it expire, or `node` holds it already (a restarted node; the epoch
    /// still grows, so anything its earlier run had under way is fenced out).
    pub async fn acquire_lease(
        &self,
        session_id: Uuid,
        node: &str,
        ttl: Duration,
    ) -> Result<LeaseOutcome> {
        let now = db_now_ms(&self.backend);
        let sql = format!(
            "INSERT INTO session_leases AS l (session_id, owner_node, epoch, expires_at_ms) \
             VALUES ($1, $2, 1, {now} + $3) ON CONFLICT (session_id) DO UPDATE \
             SET owner_node = EXCLUDED.owner_node, epoch = l.epoch + 1, \
             expires_at_ms = EXCLUDED.expires_at_ms \
             WHERE l.owner_node IS NULL OR l.expires_at_ms < {now} OR l.owner_node = $2 \
             RETURNING epoch"
        );
        let epoch: Option<i64> = with_pool!(self, |pool| sqlx::query_scalar(sqlx::AssertSqlSafe(
            sql.clone()
        ))
        .bind(session_id)
        .bind(node)
        .bind(millis(ttl))
        .fetch_optional(pool)
        .await)?;
        if let Some(epoch) = epoch {
            return Ok(LeaseOutcome::Acquired(Fence {
                node: node.to_owned(),
                epoch,
            }));
        }
        let sql = "SELECT l.owner_node, n.internal_url FROM session_leases l \
                   LEFT JOIN den_nodes n ON n.node_id = l.owner_node WHERE l.session_id = $1";
        let held: Option<(Option<String>, Option<String>)> =
            with_pool!(self, |pool| sqlx::query_as(sql)
                .bind(session_id)
                .fetch_optional(pool)
                .await)?;
        match held {
            Some((Some(owner), internal_url)) => Ok(LeaseOutcome::Held {
                owner,
                internal_url,
            }),
            // Released or gone between the two statements: try again.
            _ => Box::pin(self.acquire_lease(session_id, node, ttl)).await,
        }
    }

    /// Extends a lease the fence still holds; `false` when it was lost.
    pub async fn renew_lease(
        &self,
        session_id: Uuid,
        fence: &Fence,
        ttl: Duration,
    ) -> Result<bool> {
        let now = db_now_ms(&self.backend);
        let sql = format!(
            "UPDATE session_leases SET expires_at_ms = {now} + $4 \
             WHERE session_id = $1 AND owner_node = $2 AND epoch = $3"
        );
        let done = with_pool!(self, |pool| sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(session_id)
            .bind(&fence.node)
            .bind(fence.epoch)
            .bind(millis(ttl))
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(done > 0)
    }

    /// Gives the lease up at once (a graceful stop), so another node need not wait for it to
    /// expire; `false` when the fence no longer held it.
    pub async fn release_lease(&self, session_id: Uuid, fence: &Fence) -> Result<bool> {
        let sql = "UPDATE session_leases SET owner_node = NULL, expires_at_ms = 0 \
                   WHERE session_id = $1 AND owner_node = $2 AND epoch = $3";
        let done = with_pool!(self, |pool| sqlx::query(sql)
            .bind(session_id)
            .bind(&fence.node)
            .bind(fence.epoch)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(done > 0)
    }

    /// The session's lease, if it ever had one.
    pub async fn lease(&self, session_id: Uuid) -> Result<Option<LeaseRecord>> {
        let now = db_now_ms(&self.backend);
        let sql = format!(
            "SELECT owner_node, epoch, expires_at_ms < {now} FROM session_leases \
             WHERE session_id = $1"
        );
        let row: Option<(Option<String>, i64, bool)> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(session_id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(|(owner_node, epoch, expired)| LeaseRecord {
            owner_node,
            epoch,
            expired,
        }))
    }

    /// Makes every lease of `node` expire now (tests and operators: a node known to be dead).
    pub async fn expire_leases_of(&self, node: &str) -> Result<u64> {
        let sql = "UPDATE session_leases SET expires_at_ms = 0 WHERE owner_node = $1";
        Ok(with_pool!(self, |pool| sqlx::query(sql)
            .bind(node)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?)
    }
}
