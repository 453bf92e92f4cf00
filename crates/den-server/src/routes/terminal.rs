//! The terminal: a shell in the session's sandbox over a WebSocket, relayed to OpenCode's PTY
//! (see `den_session::Terminal`). Owner only; Origin checked like the session WebSocket.
//!
//! Every frame is a JSON text message (`den_protocol::terminal`). The socket closes with 1000
//! when the shell exits, 1001 when the session's sandbox stops (pause, stop, delete) and 1012
//! when den stops; the shell ends with it.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use den_protocol::error::ErrorBody;
use den_protocol::terminal::{MAX_TERMINAL_CELLS, TerminalClientMessage, TerminalServerMessage};
use den_session::{Terminal, TerminalClosing, TerminalSize};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, check_origin};
use crate::error::ApiError;
use crate::extract::{ApiQuery, IdPath};
use crate::{AppState, CLOSE_RESTARTING};

/// The largest message a client may send: a large paste fits.
const MAX_CLIENT_MESSAGE: usize = 256 * 1024;
/// Close codes (RFC 6455): the shell exited; the sandbox went away; the relay broke.
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_INTERNAL: u16 = 1011;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(terminal))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct TerminalQuery {
    /// The terminal's first width in columns (1 to 1000; with `rows`).
    cols: Option<u16>,
    /// The terminal's first height in rows (1 to 1000; with `cols`).
    rows: Option<u16>,
}

/// A shell inside the session's running sandbox, over a WebSocket: `TerminalClientMessage`
/// in, `TerminalServerMessage` out. A session whose sandbox is not running answers 409.
#[utoipa::path(get, path = "/api/sessions/{id}/terminal", tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "the session's id"), TerminalQuery),
    responses((status = 101, description = "WebSocket: TerminalServerMessage out, TerminalClientMessage in"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn terminal(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiQuery(query): ApiQuery<TerminalQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    // Browsers send the cookie with cross-site WebSocket handshakes too: refuse foreign origins.
    check_origin(&headers, &state)?;
    let session = super::live::session_of(&state, &caller, id).await?;
    let size = match (query.cols, query.rows) {
        (Some(cols), Some(rows)) => Some(checked_size(cols, rows).map_err(ApiError::BadRequest)?),
        (None, None) => None,
        _ => return Err(ApiError::bad_request("give both cols and rows, or neither")),
    };
    let stopping = state.sessions()?.stopping();
    let slow_client = state.config().slow_client;
    // The shell starts before the upgrade, so a failure is an HTTP answer the client can read.
    let terminal = session.open_terminal(size).await?;
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| relay(socket, terminal, stopping, slow_client))
        .into_response())
}

fn checked_size(cols: u16, rows: u16) -> Result<TerminalSize, String> {
    let range = 1..=MAX_TERMINAL_CELLS;
    if range.contains(&cols) && range.contains(&rows) {
        Ok(TerminalSize { cols, rows })
    } else {
        Err(format!(
            "cols and rows must each be between 1 and {MAX_TERMINAL_CELLS}"
        ))
    }
}

/// Why the relay ended: the close frame to send, if the client is still there.
type Ending = Option<(u16, &'static str)>;

async fn relay(
    mut socket: WebSocket,
    mut terminal: Terminal,
    stopping: impl std::future::Future<Output = ()>,
    slow_client: Duration,
) {
    let sandbox_closing = terminal.sandbox_closing();
    tokio::pin!(stopping, sandbox_closing);
    let mut keepalive = tokio::time::interval(Duration::from_secs(30));
    let ending: Ending = loop {
        let outgoing = tokio::select! {
            // den stopping is told as such, though its sandboxes stop too.
            biased;
            () = &mut stopping => break Some((CLOSE_RESTARTING, "den is restarting")),
            closing = &mut sandbox_closing => break Some(match closing {
                TerminalClosing::SandboxStopped => (CLOSE_GOING_AWAY, "the session's sandbox stopped"),
                TerminalClosing::DenStopping => (CLOSE_RESTARTING, "den is restarting"),
            }),
            output = terminal.next_output() => match output {
                Some(Ok(data)) => TerminalServerMessage::Output { data },
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "the terminal's connection failed");
                    break Some((CLOSE_INTERNAL, "the terminal's connection failed"));
                }
                None => break Some((CLOSE_NORMAL, "the shell exited")),
            },
            message = socket.recv() => match message {
                Some(Ok(Message::Text(text))) => match handle(&mut terminal, &text).await {
                    Ok(None) => continue,
                    Ok(Some(refusal)) => refusal,
                    Err(err) => {
                        tracing::warn!(error = %err, "the terminal's connection failed");
                        break Some((CLOSE_INTERNAL, "the terminal's connection failed"));
                    }
                },
                Some(Ok(Message::Binary(_))) => refused("invalid_message", "messages are JSON text"),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_)) | Err(_)) | None => break None,
            },
            _ = keepalive.tick() => {
                if send(&mut socket, Message::Ping(Vec::new().into()), slow_client).await.is_err() {
                    break None;
                }
                continue;
            }
        };
        let Ok(text) = serde_json::to_string(&outgoing) else {
            continue;
        };
        if send(&mut socket, Message::Text(text.into()), slow_client)
            .await
            .is_err()
        {
            break None;
        }
    };
    if let Some((code, reason)) = ending {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = send(
            &mut socket,
            Message::Close(Some(frame)),
            Duration::from_secs(1),
        )
        .await;
    }
    terminal.close().await;
}

/// Sends one message, giving up on a client that does not take it within `limit`.
async fn send(socket: &mut WebSocket, message: Message, limit: Duration) -> Result<(), ()> {
    match tokio::time::timeout(limit, socket.send(message)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Runs one client message; a refusal (nothing changed) goes back to the client.
async fn handle(
    terminal: &mut Terminal,
    text: &str,
) -> Result<Option<TerminalServerMessage>, den_session::SessionError> {
    let message = match serde_json::from_str::<TerminalClientMessage>(text) {
        Ok(message) => message,
        Err(err) => return Ok(Some(refused("invalid_message", &err.to_string()))),
    };
    match message {
        TerminalClientMessage::Input { data } => terminal.send_input(&data).await?,
        TerminalClientMessage::Resize { cols, rows } => match checked_size(cols, rows) {
            Ok(size) => terminal.resize(size).await?,
            Err(message) => return Ok(Some(refused("invalid_size", &message))),
        },
    }
    Ok(None)
}

fn refused(code: &str, message: &str) -> TerminalServerMessage {
    TerminalServerMessage::Refused {
        code: code.to_owned(),
        message: message.to_owned(),
    }
}
