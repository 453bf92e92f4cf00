//! The `model_usage` table: one row per metered model request.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Result, Store, now, with_pool};

/// One metered model request.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUsage<'a> {
    pub owner_id: Uuid,
    pub session_id: Uuid,
    /// `provider/model`.
    pub model: &'a str,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub reasoning_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_usd: f64,
}

/// Sums over some requests.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct UsageTotals {
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub reasoning_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_usd: f64,
}

const SUMS: &str = "CAST(COUNT(*) AS BIGINT) AS requests, \
    CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens, \
    CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens, \
    CAST(COALESCE(SUM(reasoning_tokens), 0) AS BIGINT) AS reasoning_tokens, \
    CAST(COALESCE(SUM(cache_read_tokens), 0) AS BIGINT) AS cache_read_tokens, \
    CAST(COALESCE(SUM(cache_write_tokens), 0) AS BIGINT) AS cache_write_tokens, \
    CAST(COALESCE(SUM(cost_usd), 0.0) AS DOUBLE PRECISION) AS cost_usd";

impl Store {
    pub async fn record_usage(&self, usage: NewUsage<'_>) -> Result<()> {
        let sql = "INSERT INTO model_usage (owner_id, session_id, model, input_tokens, \
                   output_tokens, reasoning_tokens, cache_read_tokens, cache_write_tokens, \
                   cost_usd, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        with_pool!(self, |pool| sqlx::query(sql)
            .bind(usage.owner_id)
            .bind(usage.session_id)
            .bind(usage.model)
            .bind(usage.input_tokens)
            .bind(usage.output_tokens)
            .bind(usage.reasoning_tokens)
            .bind(usage.cache_read_tokens)
            .bind(usage.cache_write_tokens)
            .bind(usage.cost_usd)
            .bind(now())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// The owner's usage since `since`.
    pub async fn usage_since(&self, owner_id: Uuid, since: DateTime<Utc>) -> Result<UsageTotals> {
        let sql =
            format!("SELECT {SUMS} FROM model_usage WHERE owner_id = $1 AND created_at >= $2");
        Ok(with_pool!(self, |pool| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(owner_id)
        .bind(since)
        .fetch_one(pool)
        .await)?)
    }

    /// One session's usage since `since`.
    pub async fn session_usage_since(
        &self,
        owner_id: Uuid,
        session_id: Uuid,
        since: DateTime<Utc>,
    ) -> Result<UsageTotals> {
        let sql = format!(
            "SELECT {SUMS} FROM model_usage \
             WHERE owner_id = $1 AND session_id = $2 AND created_at >= $3"
        );
        Ok(with_pool!(self, |pool| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(owner_id)
        .bind(session_id)
        .bind(since)
        .fetch_one(pool)
        .await)?)
    }

    /// The owner's usage since `since`, per session (most expensive first).
    pub async fn usage_by_session(
        &self,
        owner_id: Uuid,
        since: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, UsageTotals)>> {
        let sql = format!(
            "SELECT session_id, {SUMS} FROM model_usage WHERE owner_id = $1 AND created_at >= $2 \
             GROUP BY session_id ORDER BY cost_usd DESC, session_id"
        );
        let rows: Vec<SessionUsageRow> = with_pool!(self, |pool| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(owner_id)
        .bind(since)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|row| (row.session_id, row.totals))
            .collect())
    }
}

#[derive(sqlx::FromRow)]
struct SessionUsageRow {
    session_id: Uuid,
    #[sqlx(flatten)]
    totals: UsageTotals,
}
