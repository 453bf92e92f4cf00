//! The `model_budgets` table: a person's monthly model spending caps (the admin's for them, and
//! their own lower one). Which cap applies is the caller's rule; this stores what it is given.

use uuid::Uuid;

use crate::{Result, Store, now, with_pool};

/// A person's caps in US dollars a calendar month; `None` where none is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, sqlx::FromRow)]
pub struct BudgetRecord {
    /// The admin's cap for this person (`None`: den's default applies).
    pub admin_cap_usd: Option<f64>,
    /// The cap the person set for themselves.
    pub own_cap_usd: Option<f64>,
}

impl Store {
    /// The person's caps (both `None` when nothing was ever set).
    pub async fn budget(&self, user_id: Uuid) -> Result<BudgetRecord> {
        let sql = "SELECT admin_cap_usd, own_cap_usd FROM model_budgets WHERE user_id = $1";
        let row: Option<BudgetRecord> = with_pool!(self, |pool| sqlx::query_as(sql)
            .bind(user_id)
            .fetch_optional(pool)
            .await)?;
        Ok(row.unwrap_or_default())
    }

    /// Sets (or with `None` clears) the admin's cap for the person.
    pub async fn set_admin_budget(&self, user_id: Uuid, cap_usd: Option<f64>) -> Result<()> {
        let sql = "INSERT INTO model_budgets (user_id, admin_cap_usd, own_cap_usd, updated_at) \
                   VALUES ($1, $2, NULL, $3) ON CONFLICT (user_id) DO UPDATE \
                   SET admin_cap_usd = excluded.admin_cap_usd, updated_at = excluded.updated_at";
        self.upsert_budget(sql, user_id, cap_usd).await
    }

    /// Sets (or with `None` clears) the person's own cap.
    pub async fn set_own_budget(&self, user_id: Uuid, cap_usd: Option<f64>) -> Result<()> {
        let sql = "INSERT INTO model_budgets (user_id, admin_cap_usd, own_cap_usd, updated_at) \
                   VALUES ($1, NULL, $2, $3) ON CONFLICT (user_id) DO UPDATE \
                   SET own_cap_usd = excluded.own_cap_usd, updated_at = excluded.updated_at";
        self.upsert_budget(sql, user_id, cap_usd).await
    }

    async fn upsert_budget(
        &self,
        sql: &'static str,
        user_id: Uuid,
        cap_usd: Option<f64>,
    ) -> Result<()> {
        with_pool!(self, |pool| sqlx::query(sql)
            .bind(user_id)
            .bind(cap_usd)
            .bind(now())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }
}
