//! What can go wrong talking to den.

/// A failed call. Messages are sentences for people and never contain the token.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// den did not accept the token (revoked, expired, or for another den).
    #[error("den at {url} did not accept the token ({message})")]
    Unauthorized { url: String, message: String },
    /// den refused the username and password (or throttled the attempts).
    #[error("den refused the sign-in: {0}")]
    SignInRefused(String),
    /// The session (or other resource) does not exist, or belongs to someone else.
    #[error("{message}")]
    NotFound { message: String },
    /// den refused the request; `code` is den's stable error code.
    #[error("den refused the request ({status} {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// den could not be reached, or the connection broke.
    #[error("cannot reach den at {url}: {source}")]
    Network {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// den answered something this client does not understand.
    #[error("unexpected answer from den: {0}")]
    Protocol(String),
    /// The base URL is not an http(s) URL.
    #[error("not a den URL: {0} (expected http://host:port or https://host)")]
    BadUrl(String),
    /// The event stream kept failing to reconnect.
    #[error("lost the connection to den and could not resume after {attempts} attempts: {last}")]
    GaveUp { attempts: u32, last: String },
}

impl ClientError {
    /// Whether trying the same request again may succeed (a network break, den restarting).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Network { .. } | Self::Protocol(_) => true,
            Self::Refused { status, .. } => *status >= 500,
            _ => false,
        }
    }
}
