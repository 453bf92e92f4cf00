use std::time::Duration;

/// Everything that can go wrong talking to an OpenCode server.
///
/// `operation` is the OpenAPI `operationId` of the call (for example `session.prompt_async`),
/// so logs name the endpoint without leaking URLs or credentials.
#[derive(Debug, thiserror::Error)]
pub enum OpencodeError {
    #[error("invalid opencode base url {url:?}: {reason}")]
    InvalidBaseUrl { url: String, reason: String },
    #[error("failed to build the http client")]
    Client(#[source] reqwest::Error),
    #[error("{operation} failed to reach opencode")]
    Transport {
        operation: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("{operation} timed out after {after:?}")]
    Timeout {
        operation: &'static str,
        after: Duration,
    },
    #[error("{operation} returned status {status}: {body}")]
    Status {
        operation: &'static str,
        status: u16,
        /// The response body, cut to a few hundred bytes; OpenCode puts its error JSON here.
        body: String,
    },
    #[error("could not decode the {operation} response")]
    Decode {
        operation: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("could not decode an event from the event stream")]
    DecodeEvent(#[source] serde_json::Error),
    #[error("the event stream broke")]
    Stream(#[source] sse_stream::Error),
    #[error("the event stream was idle for {idle:?}")]
    StreamIdle { idle: Duration },
    #[error("the event stream ended")]
    StreamEnded,
    #[error("opencode was not ready after {waited:?}")]
    NotReady {
        waited: Duration,
        #[source]
        last: Box<Self>,
    },
    #[error("the terminal connection failed: {reason}")]
    PtyConnect { reason: String },
    #[error("opencode reported itself unhealthy (version {version})")]
    Unhealthy { version: String },
}

impl OpencodeError {
    /// True when OpenCode answered 404, e.g. an unknown session or an already answered
    /// permission request; callers usually treat that as "gone" rather than as a failure.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Status { status: 404, .. })
    }
}

pub type Result<T, E = OpencodeError> = std::result::Result<T, E>;
