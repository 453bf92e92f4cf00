use crate::crypto::KeyringError;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("database URL must start with sqlite: or postgres:")]
    UnsupportedUrl,
    #[error("cannot connect to the database")]
    Connect(#[source] sqlx::Error),
    #[error("cannot apply database migrations")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("a stored value is invalid: {0}")]
    Corrupt(String),
    /// The write named a lease epoch the session's lease no longer carries: another node took
    /// the session over, and this writer must stop.
    #[error("this node no longer owns the session (its lease was taken over)")]
    Fenced,
    #[error("cannot open a sealed secret")]
    Crypto(#[from] KeyringError),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => Self::NotFound,
            _ => Self::Database(err),
        }
    }
}

impl StoreError {
    /// Maps a unique-constraint violation to [`StoreError::Conflict`] naming `what`.
    pub(crate) fn unique(err: sqlx::Error, what: &'static str) -> Self {
        if let sqlx::Error::Database(db) = &err
            && db.is_unique_violation()
        {
            return Self::Conflict(what);
        }
        Self::from(err)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
