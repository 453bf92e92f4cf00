//! Forwarding a session's command to the den node that owns it, over HTTP to that node's
//! internal address, authenticated by the secret every node derives from the shared master
//! key (`NodeSecret`). The owner answers only once it stored what the command did, so an
//! acknowledged prompt is durable whichever node took it.

use std::time::Duration;

use den_protocol::cluster::{ForwardedCommand, ForwardedOutcome};
use den_protocol::error::ErrorBody;
use den_protocol::events::ClientMessage;
use den_session::cluster::Forwarder;
use den_session::{CommandOutcome, SessionCommand, SessionError};
use futures::future::BoxFuture;
use reqwest::StatusCode;
use uuid::Uuid;

/// The secret den nodes present to each other. Its `Debug` never shows it.
#[derive(Clone)]
pub struct NodeSecret(String);

impl NodeSecret {
    /// Derived from the master key every node of one den shares.
    pub fn from_store(store: &den_store::Store) -> Self {
        Self(store.derive_secret("den node-to-node v1").to_string())
    }

    pub(crate) fn header_value(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Compares in constant time.
    pub(crate) fn matches(&self, presented: &str) -> bool {
        let expected = self.header_value();
        expected.len() == presented.len()
            && expected
                .bytes()
                .zip(presented.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl std::fmt::Debug for NodeSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeSecret(…)")
    }
}

/// [`Forwarder`] over HTTP.
pub struct HttpForwarder {
    http: reqwest::Client,
    secret: NodeSecret,
}

impl HttpForwarder {
    pub fn new(secret: NodeSecret) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self { http, secret })
    }
}

impl Forwarder for HttpForwarder {
    fn forward(
        &self,
        internal_url: String,
        owner_id: Uuid,
        session_id: Uuid,
        command: SessionCommand,
    ) -> BoxFuture<'static, den_session::Result<CommandOutcome>> {
        let http = self.http.clone();
        let authorization = self.secret.header_value();
        Box::pin(async move {
            let mut answered_by = None;
            let command = match command {
                SessionCommand::Prompt { text, model } => ClientMessage::Prompt { text, model },
                SessionCommand::Abort => ClientMessage::Abort,
                SessionCommand::Pause => ClientMessage::Pause,
                SessionCommand::Resume => ClientMessage::Resume,
                SessionCommand::Dequeue { id } => ClientMessage::Dequeue { id },
                SessionCommand::EditQueued { id, text } => ClientMessage::EditQueued { id, text },
                SessionCommand::ClearQueue => ClientMessage::ClearQueue,
                SessionCommand::Answer { ask_id, reply, by } => {
                    answered_by = Some(by);
                    ClientMessage::Answer { ask_id, reply }
                }
                SessionCommand::SetApprovalMode { .. } => {
                    return Err(SessionError::NodeUnavailable(
                        "the approval mode of a session running on another den node cannot be \
                         changed from here yet; try again once it is paused"
                            .to_owned(),
                    ));
                }
            };
            let url = format!(
                "{}/api/internal/sessions/{session_id}/command",
                internal_url.trim_end_matches('/')
            );
            let unreachable = |err: reqwest::Error| {
                tracing::warn!(error = %err, %url, "cannot reach the session's node");
                SessionError::NodeUnavailable(
                    "the den node running the session is not answering; try again in a few seconds"
                        .to_owned(),
                )
            };
            let response = http
                .post(&url)
                .header(reqwest::header::AUTHORIZATION, authorization)
                .json(&ForwardedCommand {
                    owner_id,
                    command,
                    by: answered_by,
                })
                .send()
                .await
                .map_err(unreachable)?;
            let status = response.status();
            if status.is_success() {
                let outcome: ForwardedOutcome = response.json().await.map_err(unreachable)?;
                return Ok(match outcome.accepted {
                    Some(accepted) => CommandOutcome::Prompt(accepted),
                    None => CommandOutcome::Done,
                });
            }
            let message = response
                .json::<ErrorBody>()
                .await
                .map(|body| body.error.message)
                .unwrap_or_else(|_| format!("the session's node answered {status}"));
            Err(match status {
                StatusCode::BAD_REQUEST => SessionError::InvalidPrompt(message),
                StatusCode::NOT_FOUND => SessionError::NotFound,
                StatusCode::CONFLICT => SessionError::Conflict(message),
                StatusCode::BAD_GATEWAY => SessionError::AgentUnreachable(message),
                StatusCode::SERVICE_UNAVAILABLE => SessionError::NodeUnavailable(message),
                _ => SessionError::Internal(format!("the session's node answered {status}")),
            })
        })
    }
}
