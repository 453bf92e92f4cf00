-- Monthly model spending caps per person (issue 10), in US dollars. `admin_cap_usd` is the
-- admin's cap for this person (NULL: den's default, `models.monthly_budget_usd`);
-- `own_cap_usd` is a lower cap the person set for themselves (NULL: none). A missing row means
-- both are NULL. Keep in step with the PostgreSQL file.
CREATE TABLE model_budgets (
    user_id BLOB PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    admin_cap_usd REAL,
    own_cap_usd REAL,
    updated_at TEXT NOT NULL
);
