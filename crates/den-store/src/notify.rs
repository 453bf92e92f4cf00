//! PostgreSQL `NOTIFY`/`LISTEN`, for hints between den nodes sharing the database.
//!
//! A notification is only a hint: PostgreSQL drops what arrives while a listener reconnects,
//! and a payload must stay under 8000 bytes. So the tables stay the truth, a listener says
//! when it reconnected ([`Notice::Reconnected`]: the caller reads what it may have missed), and
//! nothing of value travels in a payload. SQLite has one node and nobody to tell: `notify` does
//! nothing and `listen` gives `None`.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPoolOptions};

use crate::{Backend, Result, Store, StoreError};

/// The longest payload PostgreSQL takes (8000 bytes in a default build), less a margin.
pub const MAX_PAYLOAD: usize = 7900;

/// What a listener hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Payload(String),
    /// The connection was lost and made again: notifications sent meanwhile are lost.
    Reconnected,
}

/// One dedicated connection listening on one channel; it reconnects by itself.
pub struct StoreListener {
    options: sqlx::postgres::PgConnectOptions,
    channel: String,
    listener: Option<PgListener>,
}

impl std::fmt::Debug for StoreListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreListener")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Sends `payload` (at most [`MAX_PAYLOAD`] bytes) on `channel` to every listening node.
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        if let Backend::Postgres(pool) = &self.backend {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// Listens on `channel` on a dedicated connection named `application_name` (so an operator
    /// can tell it apart in `pg_stat_activity`); `None` on SQLite.
    pub async fn listen(
        &self,
        channel: &str,
        application_name: &str,
    ) -> Result<Option<StoreListener>> {
        let Backend::Postgres(pool) = &self.backend else {
            return Ok(None);
        };
        let options = (*pool.connect_options())
            .clone()
            .application_name(application_name);
        let mut listener = StoreListener {
            options,
            channel: channel.to_owned(),
            listener: None,
        };
        listener.connect().await?;
        Ok(Some(listener))
    }
}

impl StoreListener {
    async fn connect(&mut self) -> Result<()> {
        // A pool of one without lifetime or idle limits: PgListener reconnects through it.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_with(self.options.clone())
            .await
            .map_err(StoreError::Connect)?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(&self.channel).await?;
        self.listener = Some(listener);
        Ok(())
    }

    /// The next notice. Never fails: a broken connection is made again (retrying every
    /// `retry`), and reported as [`Notice::Reconnected`] once it listens again.
    pub async fn next(&mut self, retry: Duration) -> Notice {
        loop {
            if let Some(listener) = self.listener.as_mut() {
                match listener.try_recv().await {
                    Ok(Some(notification)) => {
                        return Notice::Payload(notification.payload().to_owned());
                    }
                    // Lost and (eagerly) reconnected by PgListener itself.
                    Ok(None) => return Notice::Reconnected,
                    Err(err) => {
                        tracing::warn!(error = %err, channel = %self.channel, "the database listener failed; reconnecting");
                        self.listener = None;
                    }
                }
            }
            match self.connect().await {
                Ok(()) => return Notice::Reconnected,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen to the database yet");
                    // Back off before the next attempt (the database may be restarting).
                    tokio::time::sleep(retry).await;
                }
            }
        }
    }
}
