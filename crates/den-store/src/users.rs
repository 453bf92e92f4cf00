//! The `users` table.

use chrono::{DateTime, Utc};
use den_protocol::auth::User;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use crate::{Result, Store, StoreError, now, with_pool};

/// A user row. `Debug` leaves out the password hash.
#[derive(Clone, sqlx::FromRow)]
pub struct UserRecord {
    pub id: Uuid,
    pub username: String,
    /// An argon2id PHC string; `None` for users who sign in only by link or GitHub.
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub github_id: Option<i64>,
    pub github_login: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("is_admin", &self.is_admin)
            .finish_non_exhaustive()
    }
}

impl UserRecord {
    /// The user as the API shows it.
    pub fn to_protocol(&self) -> User {
        User {
            id: self.id,
            username: self.username.clone(),
            is_admin: self.is_admin,
            github_login: self.github_login.clone(),
            has_password: self.password_hash.is_some(),
            created_at: self.created_at,
        }
    }
}

/// What creating a user needs.
pub struct NewUser<'a> {
    pub username: &'a str,
    pub password_hash: Option<&'a str>,
    pub is_admin: bool,
    pub github: Option<(i64, &'a str)>,
}

const USER_COLUMNS: &str =
    "id, username, password_hash, is_admin, github_id, github_login, created_at, updated_at";

impl Store {
    /// Creates a user; [`StoreError::Conflict`] when the name or GitHub id is taken.
    pub async fn create_user(&self, new: NewUser<'_>) -> Result<UserRecord> {
        let (github_id, github_login) = new
            .github
            .map_or((None, None), |(id, l)| (Some(id), Some(l)));
        let at = now();
        let sql = format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             RETURNING {USER_COLUMNS}"
        );
        with_pool!(self, |pool| {
            sqlx::query_as(AssertSqlSafe(sql.clone()))
                .bind(Uuid::now_v7())
                .bind(new.username)
                .bind(new.password_hash)
                .bind(new.is_admin)
                .bind(github_id)
                .bind(github_login)
                .bind(at)
                .fetch_one(pool)
                .await
        })
        .map_err(|err| StoreError::unique(err, "a user with that name"))
    }

    pub async fn user_by_id(&self, id: Uuid) -> Result<UserRecord> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        Ok(with_pool!(self, |pool| sqlx::query_as(AssertSqlSafe(
            sql.clone()
        ))
        .bind(id)
        .fetch_one(pool)
        .await)?)
    }

    pub async fn user_by_name(&self, username: &str) -> Result<UserRecord> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
        Ok(with_pool!(self, |pool| sqlx::query_as(AssertSqlSafe(
            sql.clone()
        ))
        .bind(username)
        .fetch_one(pool)
        .await)?)
    }

    pub async fn user_by_github_id(&self, github_id: i64) -> Result<UserRecord> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE github_id = $1");
        Ok(with_pool!(self, |pool| sqlx::query_as(AssertSqlSafe(
            sql.clone()
        ))
        .bind(github_id)
        .fetch_one(pool)
        .await)?)
    }

    /// Every user, oldest first.
    pub async fn list_users(&self) -> Result<Vec<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY created_at, id");
        Ok(with_pool!(self, |pool| sqlx::query_as(AssertSqlSafe(
            sql.clone()
        ))
        .fetch_all(pool)
        .await)?)
    }

    pub async fn count_users(&self) -> Result<i64> {
        let sql = "SELECT COUNT(*) FROM users";
        Ok(with_pool!(self, |pool| sqlx::query_scalar(sql)
            .fetch_one(pool)
            .await)?)
    }

    /// Replaces the password hash (or removes it with `None`).
    pub async fn set_password_hash(&self, user_id: Uuid, hash: Option<&str>) -> Result<()> {
        let sql = "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1";
        let done = with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(user_id)
                .bind(hash)
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

    /// Links a GitHub account to an existing user ("Connect GitHub" in settings);
    /// [`StoreError::Conflict`] when another user has that GitHub account.
    pub async fn link_github(&self, user_id: Uuid, github_id: i64, login: &str) -> Result<()> {
        let sql =
            "UPDATE users SET github_id = $2, github_login = $3, updated_at = $4 WHERE id = $1";
        let done = with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(user_id)
                .bind(github_id)
                .bind(login)
                .bind(now())
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(|err| StoreError::unique(err, "a den account linked to that GitHub account"))?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Updates the GitHub login shown for a linked user.
    pub async fn set_github_login(&self, user_id: Uuid, login: &str) -> Result<()> {
        let sql = "UPDATE users SET github_login = $2, updated_at = $3 WHERE id = $1";
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(user_id)
                .bind(login)
                .bind(now())
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(())
    }

    /// Deletes a user and, by cascade, everything they own.
    pub async fn delete_user(&self, user_id: Uuid) -> Result<()> {
        let sql = "DELETE FROM users WHERE id = $1";
        let done = with_pool!(self, |pool| sqlx::query(sql)
            .bind(user_id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
