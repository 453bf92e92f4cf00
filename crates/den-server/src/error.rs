//! `ApiError`: the one place where an HTTP status is chosen for a failure.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use den_protocol::error::ErrorBody;
use den_session::SessionError;
use den_store::StoreError;

/// Every way an API request can fail, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("sign in first: this route needs a session cookie or an API token")]
    Unauthorized,
    #[error("wrong username or password")]
    BadCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    /// Something inside a resource the caller may see is missing (an ask of their session):
    /// 404, saying what.
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("request body is too large")]
    PayloadTooLarge,
    #[error("{0}")]
    Conflict(String),
    #[error("too many attempts; try again in {retry_after_secs} seconds")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// Something den depends on (a session's agent) failed or did not answer.
    #[error("{0}")]
    BadGateway(String),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    pub(crate) fn internal(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(err))
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized | Self::BadCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound | Self::Missing(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::BadCredentials => "bad_credentials",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound | Self::Missing(_) => "not_found",
            Self::BadRequest(_) => "invalid_request",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Conflict(_) => "conflict",
            Self::TooManyRequests { .. } => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::BadGateway(_) => "bad_gateway",
            Self::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // The full chain goes to the log; the client gets only the safe message.
            tracing::error!(error = ?self, "request failed");
        }
        let retry_after = match &self {
            Self::TooManyRequests { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        let body = ErrorBody::new(self.code(), self.to_string());
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            StoreError::Fenced => {
                Self::Unavailable("the session moved to another den node; try again".to_owned())
            }
            StoreError::UnsupportedUrl
            | StoreError::Connect(_)
            | StoreError::Migrate(_)
            | StoreError::Database(_)
            | StoreError::Corrupt(_)
            | StoreError::Crypto(_) => Self::internal(err),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Self::PayloadTooLarge;
        }
        match rejection {
            JsonRejection::MissingJsonContentType(_) => {
                Self::bad_request("expected a JSON body with Content-Type: application/json")
            }
            other => Self::BadRequest(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

impl From<SessionError> for ApiError {
    fn from(err: SessionError) -> Self {
        match err {
            SessionError::NotFound => Self::NotFound,
            SessionError::InvalidPrompt(message) | SessionError::InvalidAnswer(message) => {
                Self::BadRequest(message)
            }
            SessionError::AskNotFound => Self::Missing(err.to_string()),
            SessionError::Conflict(message) => Self::Conflict(message),
            SessionError::Push(_) => Self::Conflict(err.to_string()),
            SessionError::ActorGone => {
                Self::Unavailable("the session is shutting down; try again".to_owned())
            }
            SessionError::AgentUnreachable(message) => Self::BadGateway(message),
            // Diff, push, rename and delete are not forwarded: the owning node answers them.
            SessionError::OwnedElsewhere { .. } => Self::Unavailable(
                "the session runs on another den node; ask that node or try again".to_owned(),
            ),
            SessionError::NodeUnavailable(message) => Self::Unavailable(message),
            SessionError::Store(err) => Self::from(err),
            SessionError::Snapshot(_)
            | SessionError::Internal(_)
            | SessionError::Sandbox(_)
            | SessionError::Agent(_)
            | SessionError::Git(_)
            | SessionError::Diff(_)
            | SessionError::Io(_)
            | SessionError::Encode(_) => Self::internal(err),
        }
    }
}
