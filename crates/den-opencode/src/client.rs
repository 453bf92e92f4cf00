use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::config::{OpencodeConfig, Target};
use crate::endpoints::{self, Endpoint, Method};
use crate::error::{OpencodeError, Result};
use crate::message::MessageWithParts;
use crate::pty::{CreatePty, Pty, PtyConnection, PtySize, ResizePty};
use crate::session::{
    CreateSession, FileDiff, Health, PermissionReply, PermissionReplyRequest, PromptRequest,
    QuestionReplyRequest, Session,
};
use crate::sse::EventStream;

/// Error bodies are kept for diagnosis but cut so a huge HTML page cannot flood logs.
const MAX_ERROR_BODY: usize = 512;
/// Pause between readiness probes; probes themselves are bounded by `probe_timeout`.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// A typed client for one OpenCode server. Cheap to clone; clones share connections.
#[derive(Clone, Debug)]
pub struct OpencodeClient {
    http: reqwest::Client,
    /// Scheme and authority every path is appended to. Over a unix socket the host is a
    /// placeholder: reqwest sends every request through the socket regardless.
    base: Arc<str>,
    config: Arc<OpencodeConfig>,
}

/// The header naming the project directory a request is about (OpenCode's server keeps one
/// instance per directory; without it, the server's working directory).
pub(crate) const DIRECTORY_HEADER: &str = "x-opencode-directory";

/// Placeholder authority for requests that travel over a unix socket.
const UNIX_BASE: &str = "http://opencode";

impl OpencodeClient {
    pub fn new(config: OpencodeConfig) -> Result<Self> {
        // No client-wide timeout: it would also cut the long-lived event stream. Ordinary
        // calls get `request_timeout` each; the stream watches for idleness instead.
        let builder = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(config.probe_timeout.max(Duration::from_secs(2)));
        let (builder, base) = match &config.target {
            Target::Tcp(url) => (builder, validate_base_url(url)?),
            Target::Unix(path) => (builder.unix_socket(path.as_path()), UNIX_BASE.to_owned()),
        };
        let http = builder.build().map_err(OpencodeError::Client)?;
        Ok(Self {
            http,
            base: base.into(),
            config: Arc::new(config),
        })
    }

    pub fn config(&self) -> &OpencodeConfig {
        &self.config
    }

    /// One readiness probe, bounded by `probe_timeout`.
    pub async fn health(&self) -> Result<Health> {
        let health: Health = self
            .call(
                endpoints::HEALTH,
                &[],
                None::<&()>,
                self.config.probe_timeout,
            )
            .await?;
        if !health.healthy {
            return Err(OpencodeError::Unhealthy {
                version: health.version,
            });
        }
        Ok(health)
    }

    /// Probes until OpenCode answers or `deadline` passes. OpenCode accepts connections before
    /// it has initialised and silently drops requests that arrive too early, so each probe is
    /// short and a hung probe is simply retried.
    pub async fn wait_ready(&self, deadline: Instant) -> Result<Health> {
        let started = Instant::now();
        loop {
            let error = match self.health().await {
                Ok(health) => return Ok(health),
                Err(error) => error,
            };
            if Instant::now() + PROBE_INTERVAL >= deadline {
                return Err(OpencodeError::NotReady {
                    waited: started.elapsed(),
                    last: Box::new(error),
                });
            }
            tracing::trace!(error = %error, "opencode not ready yet");
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }

    pub async fn create_session(&self, request: &CreateSession) -> Result<Session> {
        self.call(
            endpoints::SESSION_CREATE,
            &[],
            Some(request),
            self.timeout(),
        )
        .await
    }

    pub async fn session(&self, session_id: &str) -> Result<Session> {
        self.call(
            endpoints::SESSION_GET,
            &[session_id],
            None::<&()>,
            self.timeout(),
        )
        .await
    }

    /// What each session is doing now. OpenCode lists only sessions that are not idle, so a
    /// session missing from the map is idle.
    pub async fn session_statuses(
        &self,
    ) -> Result<std::collections::HashMap<String, crate::session::SessionStatus>> {
        self.call(endpoints::SESSION_STATUS, &[], None::<&()>, self.timeout())
            .await
    }

    /// All sessions, most recently updated first.
    pub async fn sessions(&self) -> Result<Vec<Session>> {
        self.call(endpoints::SESSION_LIST, &[], None::<&()>, self.timeout())
            .await
    }

    /// Starts a turn and returns as soon as OpenCode accepted it; the reply arrives as events.
    pub async fn prompt_async(&self, session_id: &str, request: &PromptRequest) -> Result<()> {
        self.send(
            endpoints::SESSION_PROMPT_ASYNC,
            &[session_id],
            Some(request),
            self.timeout(),
        )
        .await
        .map(drop)
    }

    /// Stops the running turn. Returns OpenCode's answer (`true` when it aborted something).
    pub async fn abort(&self, session_id: &str) -> Result<bool> {
        self.call(
            endpoints::SESSION_ABORT,
            &[session_id],
            None::<&()>,
            self.timeout(),
        )
        .await
    }

    /// The full transcript, oldest message first.
    pub async fn messages(&self, session_id: &str) -> Result<Vec<MessageWithParts>> {
        self.call(
            endpoints::SESSION_MESSAGES,
            &[session_id],
            None::<&()>,
            self.timeout(),
        )
        .await
    }

    /// The files the session changed.
    pub async fn diff(&self, session_id: &str) -> Result<Vec<FileDiff>> {
        self.call(
            endpoints::SESSION_DIFF,
            &[session_id],
            None::<&()>,
            self.timeout(),
        )
        .await
    }

    pub async fn reply_permission(
        &self,
        request_id: &str,
        reply: PermissionReply,
        message: Option<&str>,
    ) -> Result<bool> {
        let body = PermissionReplyRequest { reply, message };
        self.call(
            endpoints::PERMISSION_REPLY,
            &[request_id],
            Some(&body),
            self.timeout(),
        )
        .await
    }

    /// `answers` holds one list of chosen option labels per question, in question order.
    pub async fn reply_question(&self, request_id: &str, answers: &[Vec<String>]) -> Result<bool> {
        let body = QuestionReplyRequest { answers };
        self.call(
            endpoints::QUESTION_REPLY,
            &[request_id],
            Some(&body),
            self.timeout(),
        )
        .await
    }

    pub async fn reject_question(&self, request_id: &str) -> Result<bool> {
        self.call(
            endpoints::QUESTION_REJECT,
            &[request_id],
            None::<&()>,
            self.timeout(),
        )
        .await
    }

    /// Starts a terminal (the user's login shell in the project's directory).
    pub async fn create_pty(&self, request: &CreatePty) -> Result<Pty> {
        self.call(endpoints::PTY_CREATE, &[], Some(request), self.timeout())
            .await
    }

    /// Sets a terminal's size; its programs see it at once (`SIGWINCH`).
    pub async fn resize_pty(&self, pty_id: &str, size: PtySize) -> Result<()> {
        self.send(
            endpoints::PTY_UPDATE,
            &[pty_id],
            Some(&ResizePty { size }),
            self.timeout(),
        )
        .await
        .map(drop)
    }

    /// Ends a terminal (its shell is killed) and forgets it.
    pub async fn remove_pty(&self, pty_id: &str) -> Result<()> {
        self.send(
            endpoints::PTY_REMOVE,
            &[pty_id],
            None::<&()>,
            self.timeout(),
        )
        .await
        .map(drop)
    }

    /// Connects to a terminal's input and output (a WebSocket, `endpoints::PTY_CONNECT`).
    pub async fn connect_pty(&self, pty_id: &str) -> Result<PtyConnection> {
        PtyConnection::connect(self, pty_id).await
    }

    /// Subscribes to the event stream and returns once OpenCode has confirmed the subscription
    /// (its `server.connected` event, which the stream still yields first). Everything that
    /// happens after this returns is on the stream, so subscribe before prompting.
    pub async fn subscribe(&self) -> Result<EventStream> {
        EventStream::connect(self.clone()).await
    }

    /// Opens one raw `GET /event` connection; [`EventStream`] handles decoding and reconnects.
    pub(crate) async fn open_event_response(&self) -> Result<reqwest::Response> {
        let endpoint = endpoints::EVENTS;
        let request = self
            .request(endpoint, &[])
            .header(reqwest::header::ACCEPT, "text/event-stream");
        // Only the wait for the response head is bounded here; the body is open-ended.
        let response = tokio::time::timeout(self.timeout(), request.send())
            .await
            .map_err(|_| OpencodeError::Timeout {
                operation: endpoint.operation,
                after: self.timeout(),
            })?
            .map_err(|source| OpencodeError::Transport {
                operation: endpoint.operation,
                source,
            })?;
        check_status(endpoint, response).await
    }

    fn timeout(&self) -> Duration {
        self.config.request_timeout
    }

    fn request(&self, endpoint: Endpoint, params: &[&str]) -> reqwest::RequestBuilder {
        let url = format!("{}{}", self.base, endpoint.path_with(params));
        let builder = match endpoint.method {
            Method::Get => self.http.get(url),
            Method::Post => self.http.post(url),
            Method::Put => self.http.put(url),
            Method::Delete => self.http.delete(url),
        };
        let builder = match &self.config.directory {
            Some(directory) => builder.header(DIRECTORY_HEADER, directory),
            None => builder,
        };
        match &self.config.password {
            Some(password) => builder.basic_auth(&self.config.username, Some(password)),
            None => builder,
        }
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        params: &[&str],
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<T> {
        let bytes = self.send(endpoint, params, body, timeout).await?;
        serde_json::from_slice(&bytes).map_err(|source| OpencodeError::Decode {
            operation: endpoint.operation,
            source,
        })
    }

    /// Sends one request and returns the body of a 2xx answer, all within `timeout`.
    async fn send<B: Serialize>(
        &self,
        endpoint: Endpoint,
        params: &[&str],
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<Vec<u8>> {
        let mut request = self.request(endpoint, params);
        if let Some(body) = body {
            request = request.json(body);
        }
        let exchange = async {
            let transport = |source| OpencodeError::Transport {
                operation: endpoint.operation,
                source,
            };
            let response = request.send().await.map_err(transport)?;
            let response = check_status(endpoint, response).await?;
            let bytes = response.bytes().await.map_err(transport)?;
            Ok(bytes.to_vec())
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| OpencodeError::Timeout {
                operation: endpoint.operation,
                after: timeout,
            })?
    }
}

async fn check_status(
    endpoint: Endpoint,
    response: reqwest::Response,
) -> Result<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    let body = match body.char_indices().nth(MAX_ERROR_BODY) {
        Some((cut, _)) => format!("{}…", &body[..cut]),
        None => body,
    };
    Err(OpencodeError::Status {
        operation: endpoint.operation,
        status: status.as_u16(),
        body,
    })
}

fn validate_base_url(url: &str) -> Result<String> {
    let invalid = |reason: &str| OpencodeError::InvalidBaseUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|error| invalid(&error.to_string()))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(invalid("scheme must be http or https"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid("credentials belong in the config, not the url"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid("must not have a query or fragment"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}
