//! den's database: one [`Store`] handle over SQLite (the embedded default) or PostgreSQL.
//!
//! The backend is chosen at run time from the URL, and both are always compiled. Every query is
//! written once in portable SQL (`$1` placeholders, `RETURNING`, `ON CONFLICT`) and run on either
//! pool through [`with_pool!`]; one contract test suite runs against both.
//!
//! What it does not do: HTTP, sessions' live state, or password hashing. It stores what it is
//! given. Secrets are the exception: it seals them with [`crypto::Keyring`] before they touch a
//! table, so no caller can store a secret in the clear by mistake.
//!
//! Layout:
//! - [`crypto`]: AES-256-GCM sealing with versioned master keys.
//! - `users`, `auth`, `sessions`, `events`, `secrets`: the tables, one module each.
//! - `providers`: a person's model provider keys (sealed secrets) and own endpoints.
//! - `share_links`: read-only share links of a session (token hashes only).
//! - `leases`: nodes, session leases and the fencing epoch every actor write checks;
//!   `queue`: the prompts waiting behind a session's running turn.
//! - `usage`: metered model requests; `budgets`: each person's monthly spending caps.

mod auth;
mod budgets;
pub mod crypto;
mod error;
mod events;
mod git_credentials;
mod leases;
pub mod notify;
mod providers;
mod queue;
mod secrets;
mod sessions;
mod share_links;
mod usage;
mod users;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use auth::{ApiTokenOwner, NewApiToken};
pub use budgets::BudgetRecord;
pub use crypto::{Keyring, KeyringError};
pub use error::{Result, StoreError};
pub use events::StoredEvent;
pub use git_credentials::GitCredential;
pub use leases::{Fence, LeaseOutcome, LeaseRecord, NodeRecord};
pub use providers::{KeyInfo, ModelEndpointRecord, NewModelEndpoint, key_fingerprint};
pub use sessions::{NewSession, SessionCursor, SessionRecord};
pub use share_links::{NewShareLink, ShareLinkRecord};
pub use usage::{NewUsage, UsageTotals};
pub use users::{NewUser, UserRecord};

/// Runs `$body` with `$pool` bound to whichever pool the store holds. The body is written once
/// and compiled for both backends, which is what keeps the SQL portable.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite($pool) => $body,
            $crate::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// A cloneable handle to the database. Cheap to clone: it wraps a connection pool.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    keyring: Keyring,
}

#[derive(Clone)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl std::fmt::Debug for Store {
    // The URL may hold a password, so only the kind of backend is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend_name())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to `url` (`sqlite:` or `postgres:`/`postgresql:`) and applies pending migrations.
    pub async fn connect(url: &str, keyring: Keyring) -> Result<Self> {
        let store = Self::connect_without_migrating(url, keyring).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without touching the schema (for `den migrate`, which reports what it applies).
    pub async fn connect_without_migrating(url: &str, keyring: Keyring) -> Result<Self> {
        let backend = if url.starts_with("sqlite:") {
            // WAL lets readers run beside the one writer; the busy timeout makes a writer wait
            // for the lock instead of failing at once; foreign keys are off by default in SQLite.
            let options = SqliteConnectOptions::from_str(url)
                .map_err(StoreError::Connect)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await
                .map_err(StoreError::Connect)?;
            Backend::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url).map_err(StoreError::Connect)?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(StoreError::Connect)?;
            Backend::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        Ok(Self { backend, keyring })
    }

    /// Applies every migration not yet applied; returns how many ran.
    pub async fn migrate(&self) -> Result<usize> {
        let applied_before = self.applied_migrations().await.unwrap_or(0);
        match &self.backend {
            Backend::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await,
            Backend::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await,
        }
        .map_err(StoreError::Migrate)?;
        Ok(self
            .applied_migrations()
            .await?
            .saturating_sub(applied_before))
    }

    async fn applied_migrations(&self) -> Result<usize> {
        let count: i64 = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(pool)
                .await
        })?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// A cheap round trip, for `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        with_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// A secret derived from the master key for `purpose` (see [`Keyring::derive_secret`]).
    pub fn derive_secret(&self, purpose: &str) -> zeroize::Zeroizing<String> {
        self.keyring.derive_secret(purpose)
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Closes every pooled connection (graceful shutdown).
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await);
    }
}

/// Creates an empty PostgreSQL database `name` on the server of `admin_url` and returns its
/// URL (for `den bench cluster`, which runs its nodes on a scratch database). `name` must be a
/// plain identifier.
pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<String> {
    use sqlx::Connection;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(StoreError::Corrupt(format!("database name {name:?}")));
    }
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(StoreError::Connect)?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await?;
    let (base, _) = admin_url
        .rsplit_once('/')
        .ok_or(StoreError::UnsupportedUrl)?;
    Ok(format!("{base}/{name}"))
}

/// Drops the PostgreSQL database `name` that [`create_postgres_database`] made.
pub async fn drop_postgres_database(admin_url: &str, name: &str) -> Result<()> {
    use sqlx::Connection;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(StoreError::Corrupt(format!("database name {name:?}")));
    }
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(StoreError::Connect)?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await?;
    Ok(())
}

/// The current time at the precision both backends keep (microseconds), so a value read back
/// equals the value written.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
