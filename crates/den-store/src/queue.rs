//! The prompts waiting behind a session's running turn. They live in the database, not only
//! in the actor's memory, so a node that takes a session over (its owner died or drained)
//! keeps them.

use den_protocol::events::QueuedPrompt;
use uuid::Uuid;

use crate::{Fence, Result, Store, StoreError, with_pool};

impl Store {
    /// Replaces the session's queue with `items`, in order, while `fence` holds the session's
    /// lease ([`StoreError::Fenced`] otherwise). One transaction: the lease row is locked
    /// first (`FOR SHARE` on PostgreSQL), so a steal waits for it.
    pub async fn replace_queue(
        &self,
        session_id: Uuid,
        fence: &Fence,
        items: &[QueuedPrompt],
    ) -> Result<()> {
        let check = crate::leases::fence_check(&self.backend, "$1", "$2", "$3");
        let lock = format!("SELECT {check}");
        with_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            let held: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(lock.clone()))
                .bind(session_id)
                .bind(&fence.node)
                .bind(fence.epoch)
                .fetch_one(&mut *tx)
                .await?;
            if !held {
                return Ok(false);
            }
            sqlx::query("DELETE FROM session_queue WHERE session_id = $1")
                .bind(session_id)
                .execute(&mut *tx)
                .await?;
            for (position, item) in (0_i64..).zip(items) {
                sqlx::query(
                    "INSERT INTO session_queue (session_id, position, id, text, model) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(session_id)
                .bind(position)
                .bind(&item.id)
                .bind(&item.text)
                .bind(item.model.as_deref())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(true)
        }
        .await)
        .map_err(StoreError::from)?
        .then_some(())
        .ok_or(StoreError::Fenced)
    }

    /// The session's queue, in order.
    pub async fn queue(&self, session_id: Uuid) -> Result<Vec<QueuedPrompt>> {
        let sql = "SELECT id, text, model FROM session_queue WHERE session_id = $1 \
                   ORDER BY position";
        let rows: Vec<(String, String, Option<String>)> = with_pool!(self, |pool| {
            sqlx::query_as(sql).bind(session_id).fetch_all(pool).await
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, text, model)| QueuedPrompt { id, text, model })
            .collect())
    }
}
