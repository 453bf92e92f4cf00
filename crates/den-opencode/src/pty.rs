//! OpenCode's pseudo-terminals: the request and answer bodies of `/pty`, and the WebSocket a
//! terminal's bytes travel on (`GET /pty/{id}/connect`).
//!
//! What the pinned binary does (checked against it): a text frame from OpenCode is terminal
//! output; a binary frame starting with `0x00` is metadata (`{"cursor":N}`, how far into the
//! terminal's buffer the client has read) and is not output; every text frame sent to it is
//! typed into the terminal as it is (JSON included), so resizing is `PUT /pty/{id}`, not a
//! message on the socket.

use std::collections::BTreeMap;
use std::pin::Pin;

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Message, http};

use crate::client::OpencodeClient;
use crate::config::Target;
use crate::endpoints;
use crate::error::{OpencodeError, Result};

/// `POST /pty`. Every field is optional: OpenCode starts the user's login shell in the
/// project's directory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CreatePty {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Variables set on top of OpenCode's own environment (which the shell inherits); a value
    /// of `""` blanks one.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// One terminal, as OpenCode describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pty {
    /// `pty_…`.
    pub id: String,
    pub command: String,
    pub cwd: String,
    /// `running` or `exited`.
    pub status: String,
}

/// A terminal's size in character cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PtySize {
    pub rows: u16,
    pub cols: u16,
}

/// `PUT /pty/{id}` with a new size.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct ResizePty {
    pub(crate) size: PtySize,
}

/// Any byte stream the terminal's WebSocket can run over (TCP, or the sandbox's unix socket).
trait Transport: AsyncRead + AsyncWrite + Send + Sync + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin> Transport for T {}

/// An open terminal connection: output from [`Self::next_output`], keystrokes through
/// [`Self::send_input`]. Both are cancel-safe, so one task may `select!` over them.
pub struct PtyConnection {
    socket: WebSocketStream<Pin<Box<dyn Transport>>>,
}

impl std::fmt::Debug for PtyConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PtyConnection").finish_non_exhaustive()
    }
}

impl PtyConnection {
    /// Opens the terminal's WebSocket with the client's credentials, within its request
    /// timeout.
    pub(crate) async fn connect(client: &OpencodeClient, pty_id: &str) -> Result<Self> {
        let endpoint = endpoints::PTY_CONNECT;
        let config = client.config();
        let failed = |reason: String| OpencodeError::PtyConnect { reason };
        let path = endpoint.path_with(&[pty_id]);
        let open = async {
            let (transport, authority): (Pin<Box<dyn Transport>>, String) = match &config.target {
                Target::Unix(socket) => {
                    let stream = tokio::net::UnixStream::connect(socket)
                        .await
                        .map_err(|err| failed(err.to_string()))?;
                    (Box::pin(stream), "opencode".to_owned())
                }
                Target::Tcp(base) => {
                    let url = reqwest::Url::parse(base).map_err(|err| failed(err.to_string()))?;
                    let host = url.host_str().unwrap_or_default().to_owned();
                    let port = url.port_or_known_default().unwrap_or(80);
                    let stream = tokio::net::TcpStream::connect((host.as_str(), port))
                        .await
                        .map_err(|err| failed(err.to_string()))?;
                    (Box::pin(stream), format!("{host}:{port}"))
                }
            };
            let mut request = format!("ws://{authority}{path}")
                .into_client_request()
                .map_err(|err| failed(err.to_string()))?;
            if let Some(password) = &config.password {
                let credentials = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{password}", config.username));
                let value = http::HeaderValue::from_str(&format!("Basic {credentials}"))
                    .map_err(|err| failed(err.to_string()))?;
                request
                    .headers_mut()
                    .insert(http::header::AUTHORIZATION, value);
            }
            // The terminal belongs to the project it was made in: a connection that named no
            // directory would look for it in the server's own, and never be answered.
            if let Some(directory) = &config.directory {
                let value = http::HeaderValue::from_str(directory)
                    .map_err(|err| failed(err.to_string()))?;
                request
                    .headers_mut()
                    .insert(crate::client::DIRECTORY_HEADER, value);
            }
            let (socket, _) = tokio_tungstenite::client_async(request, transport)
                .await
                .map_err(|err| failed(err.to_string()))?;
            Ok(Self { socket })
        };
        tokio::time::timeout(config.request_timeout, open)
            .await
            .map_err(|_| OpencodeError::Timeout {
                operation: endpoint.operation,
                after: config.request_timeout,
            })?
    }

    /// The terminal's next output; `None` once the terminal closed (its shell exited, or
    /// OpenCode went away). Metadata frames are skipped.
    pub async fn next_output(&mut self) -> Option<Result<String>> {
        loop {
            match self.socket.next().await? {
                Ok(Message::Text(text)) => return Some(Ok(text.to_string())),
                Ok(Message::Close(_)) => return None,
                Ok(
                    Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_),
                ) => {}
                Err(err) => {
                    return Some(Err(OpencodeError::PtyConnect {
                        reason: err.to_string(),
                    }));
                }
            }
        }
    }

    /// Types `keys` into the terminal.
    pub async fn send_input(&mut self, keys: &str) -> Result<()> {
        self.socket
            .send(Message::Text(keys.into()))
            .await
            .map_err(|err| OpencodeError::PtyConnect {
                reason: err.to_string(),
            })
    }

    /// Closes the connection (the terminal itself lives on until removed).
    pub async fn close(&mut self) {
        let _ = self.socket.close(None).await;
    }
}
